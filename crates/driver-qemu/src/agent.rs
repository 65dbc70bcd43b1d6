//! The QEMU guest agent over its virtio-serial channel
//! (`<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>`).
//!
//! Every session starts with `guest-sync` and a random id, so stale
//! replies left in the channel by an earlier session are skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use virtkit_core::xml::Element;
use virtkit_core::{Error, ErrorKind, Result};

/// The channel name the guest agent listens on.
pub const AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";

/// How long the agent gets to answer `guest-sync`.
const SYNC_DEADLINE: Duration = Duration::from_secs(5);

fn unresponsive(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::AgentUnresponsive,
        format!("QEMU guest agent is not connected ({why})"),
    )
}

/// The host socket of the guest agent channel of a running domain, if it
/// has one (`run_dir` holds the default path the command line gave it).
pub fn socket_path(live_def: &Element, run_dir: &Path) -> Option<PathBuf> {
    let devices = live_def.child("devices")?;
    let chan = devices.children_named("channel").find(|c| {
        c.child("target").and_then(|t| t.attr("name")).as_deref() == Some(AGENT_CHANNEL)
    })?;
    if chan.attr("type").as_deref() != Some("unix") {
        return None;
    }
    Some(
        chan.child("source")
            .and_then(|s| s.attr("path"))
            .map(|p| PathBuf::from(p.as_ref()))
            .unwrap_or_else(|| run_dir.join(AGENT_CHANNEL)),
    )
}

/// Connects and synchronises with the agent.
async fn session(
    path: &Path,
) -> Result<(
    BufReader<tokio::net::unix::OwnedReadHalf>,
    tokio::net::unix::OwnedWriteHalf,
)> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| unresponsive(format_args!("{}: {e}", path.display())))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut id_bytes = [0u8; 4];
    virtkit_core::ids::random_bytes(&mut id_bytes);
    let id = u32::from_le_bytes(id_bytes) as u64;
    let msg = json!({"execute": "guest-sync", "arguments": {"id": id}}).to_string() + "\n";
    w.write_all(msg.as_bytes()).await.map_err(unresponsive)?;
    let synced = tokio::time::timeout(SYNC_DEADLINE, async {
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let v: Value = serde_json::from_str(line.trim()).ok()?;
            if v.get("return").and_then(Value::as_u64) == Some(id) {
                return Some(());
            }
        }
    })
    .await;
    match synced {
        Ok(Some(())) => Ok((r, w)),
        _ => Err(unresponsive(
            "no answer to guest-sync; is qemu-guest-agent running in the guest?",
        )),
    }
}

/// Asks the guest to power off (or reboot) through the agent. The agent
/// does not answer these on success.
pub async fn shutdown(path: &Path, reboot: bool) -> Result<()> {
    let (_r, mut w) = session(path).await?;
    let mode = if reboot { "reboot" } else { "powerdown" };
    let msg = json!({"execute": "guest-shutdown", "arguments": {"mode": mode}}).to_string() + "\n";
    w.write_all(msg.as_bytes()).await.map_err(unresponsive)?;
    Ok(())
}
