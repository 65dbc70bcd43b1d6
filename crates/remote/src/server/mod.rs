//! The server side of libvirt's RPC: one [`Server`] serves any number of
//! byte streams (unix, TCP, TLS...), each with its own session. The daemon
//! owns the sockets; this module owns the protocol.
//!
//! Per client: messages are read one at a time with the size limit; each
//! call runs as its own task (so a slow call never blocks the next one or
//! another client), at most `max_requests` and `inflight_bytes` at once
//! (then reading pauses); replies and events go through a queue bounded in
//! messages and bytes to one writer task, and a client that stops reading
//! is dropped when that queue is full rather than waited on. Stream data
//! from the client (console input) is queued per stream, at most 16
//! messages of libvirt's 256 KiB each, for at most 16 streams. So one
//! client's memory is bounded by about `inflight_bytes + write_queue_bytes`
//! plus 4 MiB per open stream.

mod dispatch;
mod handlers;
mod session;
mod streams;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use virtkit_core::{Error, ErrorKind, Result, async_trait};

use crate::protocol::MESSAGE_MAX;

pub use session::serve_stream;

/// Limits and defaults of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most clients connected at once; more are refused at accept.
    pub max_clients: usize,
    /// Most calls of one client running at once; reading pauses beyond.
    pub max_requests: usize,
    /// Largest message accepted, length word included.
    pub max_message: usize,
    /// Replies and events queued for one client before it is dropped as
    /// not reading.
    pub write_queue: usize,
    /// Bytes of replies and events queued for one client before it is
    /// dropped as not reading (at least one largest message always fits).
    pub write_queue_bytes: usize,
    /// Bytes of received calls one client may have running at once;
    /// reading pauses beyond (at least one largest message always fits).
    pub inflight_bytes: usize,
    /// How long one write may stall before the client is dropped.
    pub write_timeout: Duration,
    /// Keepalive: interval between PINGs to a quiet client that asked for
    /// keepalive, and how many may go unanswered. `None` disables.
    pub keepalive: Option<(Duration, u32)>,
    /// URI opened when a client sends no name (libvirt probes; we use this).
    pub default_uri: Option<String>,
    /// Drivers whose state outlives the clients: the first connection to
    /// each of their URIs is kept open for the server's lifetime, so a
    /// driver's supervision (QEMU guests exiting, events, autostart) goes on
    /// between clients, as libvirtd keeps its drivers initialised. Drivers
    /// not listed (the test driver) lose their state with the last client,
    /// as in libvirt.
    pub retain_drivers: Vec<&'static str>,
    /// Where a daemon with a private root serves the system instances:
    /// `DRIVER:///system` (and `DRIVER:///`) is opened as
    /// `DRIVER:///embed?root=DIR`, one root shared by every driver (so
    /// guests and containers see the same networks) and nothing under the
    /// host's `/etc`, `/run` or `/var`. `None`: the system instances
    /// themselves (libvirtd's behaviour).
    pub system_root: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_clients: 5000,
            max_requests: 16,
            max_message: MESSAGE_MAX,
            write_queue: 1024,
            write_queue_bytes: 2 * MESSAGE_MAX,
            inflight_bytes: 2 * MESSAGE_MAX,
            write_timeout: Duration::from_secs(30),
            keepalive: Some((Duration::from_secs(5), 5)),
            default_uri: None,
            retain_drivers: vec!["qemu", "lxc", "network"],
            system_root: None,
        }
    }
}

/// How a client must authenticate before its first real call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// Trusted by the socket (permissions, client certificate).
    None,
    /// Asks polkit through the configured [`Authorizer`].
    Polkit,
}

/// Who is on the other end of a stream.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Read-only socket: every mutating procedure is denied.
    pub read_only: bool,
    /// Required authentication.
    pub auth: AuthScheme,
    /// Transport is encrypted or local (`virConnectIsSecure`).
    pub secure: bool,
    /// Peer process (unix sockets).
    pub pid: Option<u32>,
    /// Peer user (unix sockets).
    pub uid: Option<u32>,
    /// Printable address for logs.
    pub addr: String,
}

impl Peer {
    /// A trusted local peer.
    pub fn local(read_only: bool) -> Peer {
        Peer {
            read_only,
            auth: AuthScheme::None,
            secure: true,
            pid: None,
            uid: None,
            addr: "local".into(),
        }
    }
}

/// Decides whether a peer may use a read-write connection (polkit).
#[async_trait]
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// `Ok(true)` to allow.
    async fn authorize(&self, peer: &Peer) -> Result<bool>;
}

/// A protocol server shared by every listener of a daemon.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    authorizer: Option<Arc<dyn Authorizer>>,
    slots: Arc<Semaphore>,
    served: AtomicUsize,
    /// Connections kept for [`ServerConfig::retain_drivers`], by URI.
    retained: std::sync::Mutex<Vec<(String, Arc<dyn virtkit_core::driver::Connection>)>>,
    /// One lock per URI being opened: clients connecting at the same moment
    /// open a driver one after the other, so the first open (which starts
    /// the driver's instance) completes before the next one looks for it.
    opening: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Most URIs whose driver state one server keeps alive; beyond, further
/// URIs behave as unlisted drivers (state lives while clients use it).
const MAX_RETAINED: usize = 64;

impl Server {
    /// A server with limits.
    pub fn new(config: ServerConfig, authorizer: Option<Arc<dyn Authorizer>>) -> Arc<Server> {
        Arc::new(Server {
            slots: Arc::new(Semaphore::new(config.max_clients)),
            config,
            authorizer,
            served: AtomicUsize::new(0),
            retained: std::sync::Mutex::new(Vec::new()),
            opening: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The URI the server opens for a client's `uri`: the same, except that
    /// system instances of a daemon with [`ServerConfig::system_root`] are
    /// embedded instances under that root. The test driver is not mapped:
    /// `test:///default` has no files.
    pub fn serving_uri(&self, uri: virtkit_core::Uri) -> Result<virtkit_core::Uri> {
        let Some(root) = &self.config.system_root else {
            return Ok(uri);
        };
        let system = matches!(uri.path(), "/system" | "" | "/")
            && uri.host().is_none()
            && uri.query().is_none()
            && uri.driver() != "test";
        if !system {
            return Ok(uri);
        }
        let root = root.to_str().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!("system root '{}' is not UTF-8", root.display()),
            )
        })?;
        virtkit_core::Uri::from_parts(uri.driver(), None, "/embed", &[("root", root)])
    }

    /// Opens `uri` for a client; opens of one URI run one at a time.
    pub(crate) async fn open(
        &self,
        uri: &virtkit_core::Uri,
        flags: virtkit_core::OpenFlags,
    ) -> Result<Arc<dyn virtkit_core::driver::Connection>> {
        let key = uri.to_string();
        let lock = self
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let r = {
            let _turn = lock.lock().await;
            virtkit_core::registry::open(uri, flags).await
        };
        // Forget the lock once nobody else waits for it.
        let mut opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&lock) == 2 {
            opening.remove(&key);
        }
        r
    }

    /// Keeps `conn` (just opened for `uri`) alive for the server's lifetime
    /// if its driver is in [`ServerConfig::retain_drivers`] and no
    /// connection to the same URI is kept yet.
    pub fn retain(&self, uri: &str, conn: &Arc<dyn virtkit_core::driver::Connection>) {
        if !self.config.retain_drivers.contains(&conn.driver()) {
            return;
        }
        let mut kept = self.retained.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < MAX_RETAINED && !kept.iter().any(|(u, _)| u == uri) {
            kept.push((uri.to_string(), conn.clone()));
        }
    }

    /// The limits.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// A slot for one more client, or `None` when `max_clients` are
    /// connected (the caller closes the new connection at once).
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.config.max_clients - self.slots.available_permits()
    }

    /// Clients served since start.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Serves one client until it disconnects. The permit from
    /// [`admit`](Self::admit) is held for the duration.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, peer: Peer, permit: OwnedSemaphorePermit)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.served.fetch_add(1, Ordering::Relaxed);
        serve_stream(self.clone(), stream, peer).await;
        drop(permit);
    }
}
