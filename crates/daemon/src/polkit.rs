//! polkit authorisation over D-Bus (zbus): a non-root client of the
//! read-write socket is allowed when polkit's authority says yes to
//! libvirt's action `org.libvirt.unix.manage` for its process.

use std::collections::HashMap;

use virtkit::{Error, ErrorKind, Result, async_trait};
use virtkit_remote::server::{Authorizer, Peer};
use zbus::wire::Variant;

/// libvirt's polkit action for full access.
pub const ACTION: &str = "org.libvirt.unix.manage";

#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
trait Authority {
    #[allow(clippy::type_complexity)]
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, Variant<'_>>),
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

/// Asks polkit on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the default).
#[derive(Debug, Default)]
pub struct PolkitAuthorizer;

/// The process start time polkit identifies a process by (field 22 of
/// /proc/PID/stat, after the parenthesised command name).
fn start_time(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Error::system(format!("cannot read /proc/{pid}/stat"), &e))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after
        .split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::internal(format!("cannot parse the start time of process {pid}")))
}

fn dbus_error(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::AuthFailed,
        format!("polkit authorization failed: {e}"),
    )
}

#[async_trait]
impl Authorizer for PolkitAuthorizer {
    async fn authorize(&self, peer: &Peer) -> Result<bool> {
        let pid = peer
            .pid
            .ok_or_else(|| dbus_error("the client's process id is unknown"))?;
        let start = start_time(pid)?;
        let conn = zbus::Connection::system().await.map_err(dbus_error)?;
        let proxy = AuthorityProxy::new(&conn).await.map_err(dbus_error)?;
        let mut details = HashMap::new();
        details.insert("pid", Variant::from(pid));
        details.insert("start-time", Variant::from(start));
        let (allowed, _challenge, _) = proxy
            .check_authorization(&("unix-process", details), ACTION, HashMap::new(), 0, "")
            .await
            .map_err(dbus_error)?;
        tracing::info!(pid, uid = ?peer.uid, allowed, "polkit decision");
        Ok(allowed)
    }
}
