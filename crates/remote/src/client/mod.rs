//! The `remote` driver: serves every URI with a transport or a host by
//! talking libvirt's RPC protocol to virtkitd or libvirtd.
//!
//! Opening follows libvirt's client: authentication list (polkit is
//! answered, SASL is refused with a clear error), keepalive support,
//! `CONNECT_OPEN` with the URI stripped of transport, host and client-only
//! parameters, then event-callback support. Calls time out after
//! `timeout=SECONDS` (default 300); keepalive is 5 s x 6 like virsh.

mod conn;
mod console;
mod rpc;
mod tls_noverify;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use virtkit_core::{Connection, Driver, Error, OpenFlags, Result, Uri, async_trait};

pub use conn::RemoteConnection;

/// The remote driver (registered as `remote`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RemoteDriver;

/// Seconds a call may wait for its reply, unless `?timeout=` says otherwise.
pub const DEFAULT_CALL_TIMEOUT: u64 = 300;

impl RemoteDriver {
    /// Opens a URI read-write through this driver (without the registry).
    pub async fn open_uri(&self, uri: &str) -> Result<Arc<dyn Connection>> {
        self.open(&Uri::parse(uri)?, OpenFlags::empty()).await
    }
}

#[async_trait]
impl Driver for RemoteDriver {
    fn name(&self) -> &'static str {
        "remote"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["remote"]
    }

    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        let timeout = match uri.param("timeout") {
            Some(t) => t.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
                Error::invalid_arg(format!(
                    "timeout '{t}' in '{uri}' is not a positive number of seconds"
                ))
            })?,
            None => DEFAULT_CALL_TIMEOUT,
        };
        let read_only = flags.contains(OpenFlags::READ_ONLY);
        let stream = transport::connect(uri, read_only).await?;
        let c =
            RemoteConnection::handshake(uri, flags, stream, Duration::from_secs(timeout)).await?;
        Ok(Arc::new(c))
    }
}
