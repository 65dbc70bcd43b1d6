//! One client's session: the reader loop, the writer task, the open driver
//! connection, event forwarding and keepalive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};
use virtkit_core::{Connection, Error, ErrorKind, Result};

use super::{Peer, Server, dispatch};
use crate::protocol::frame::{FrameError, read_message};
use crate::protocol::header::{Encodable, Header, MessageType, Status, encode_message};
use crate::protocol::{KEEPALIVE_PROGRAM, PROTOCOL_VERSION, keepalive};
use crate::xdr::Void;

/// State of one client.
pub(crate) struct Session {
    pub server: Arc<Server>,
    pub peer: Peer,
    conn: Mutex<Option<Arc<dyn Connection>>>,
    out: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_queued_bytes: usize,
    closed: Notify,
    is_closed: AtomicBool,
    pub authenticated: AtomicBool,
    pub keepalive_wanted: AtomicBool,
    /// The client registered for connection-close events (360); kept so a
    /// driver-side close can be reported with message 362 once drivers
    /// signal one (none does yet).
    pub close_callback: AtomicBool,
    events: Mutex<HashMap<i32, (CallbackKind, Option<AbortHandle>)>>,
    next_callback: AtomicI32,
    streams: Mutex<HashMap<u32, StreamSlot>>,
    last_rx: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.peer.addr)
    }
}

impl Session {
    /// The open driver connection.
    pub fn conn(&self) -> Result<Arc<dyn Connection>> {
        self.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::InvalidConn, "connection not open"))
    }

    /// Whether a driver connection is open.
    pub fn has_conn(&self) -> bool {
        self.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Installs (or removes) the driver connection.
    pub fn set_conn(&self, c: Option<Arc<dyn Connection>>) -> Option<Arc<dyn Connection>> {
        std::mem::replace(&mut *self.conn.lock().unwrap_or_else(|p| p.into_inner()), c)
    }

    /// Queues a message for the client. A client whose queue is full is not
    /// reading: it is disconnected instead of being waited on.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        let len = frame.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::SeqCst) + len;
        if queued > self.max_queued_bytes && queued > len {
            self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            warn!(peer = %self.peer.addr, queued, "client does not read its replies; disconnecting");
            self.close();
            return false;
        }
        match self.out.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
                warn!(peer = %self.peer.addr, "client does not read its replies; disconnecting");
                self.close();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
                false
            }
        }
    }

    /// Encodes and queues a message.
    pub fn send_message(&self, header: &Header, body: &dyn Encodable) -> bool {
        match encode_message(header, body) {
            Ok(m) => self.send(m),
            Err(e) => {
                warn!(peer = %self.peer.addr, "cannot send message: {e}");
                false
            }
        }
    }

    /// Ends the session.
    pub fn close(&self) {
        self.is_closed.store(true, Ordering::SeqCst);
        // notify_one leaves a permit for a reader that is not waiting yet.
        self.closed.notify_waiters();
        self.closed.notify_one();
    }

    /// Whether the session is ending.
    pub fn is_closed(&self) -> bool {
        self.is_closed.load(Ordering::SeqCst)
    }

    /// Registers an event callback; `task` forwards its events.
    pub fn add_callback(&self, kind: CallbackKind, task: Option<AbortHandle>) -> i32 {
        let id = self.next_callback.fetch_add(1, Ordering::Relaxed);
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (kind, task));
        id
    }

    /// Removes an event callback of `kind` (a domain callback id does not
    /// deregister a network callback, as in libvirt).
    pub fn remove_callback(&self, kind: CallbackKind, id: i32) -> bool {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.get(&id).is_none_or(|(k, _)| *k != kind) {
            return false;
        }
        if let Some((_, Some(t))) = events.remove(&id) {
            t.abort();
        }
        true
    }

    /// Opens a stream for the call `serial` of procedure `proc_`: client
    /// stream messages with that serial go to the returned receiver. Fails
    /// when the serial is in use or the client has too many streams.
    pub fn add_stream(&self, serial: u32, proc_: i32) -> Result<mpsc::Receiver<StreamMsg>> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.len() >= MAX_STREAMS {
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!("too many open streams on this connection (limit {MAX_STREAMS})"),
            ));
        }
        if streams.contains_key(&serial) {
            return Err(Error::new(
                ErrorKind::Rpc,
                format!("a stream with serial {serial} is already open"),
            ));
        }
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        streams.insert(
            serial,
            StreamSlot {
                proc_,
                tx,
                task: None,
            },
        );
        Ok(rx)
    }

    /// Records the task serving a stream (aborted when the session ends).
    pub fn set_stream_task(&self, serial: u32, task: AbortHandle) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match streams.get_mut(&serial) {
            Some(slot) => slot.task = Some(task),
            // The stream already ended.
            None => task.abort(),
        }
    }

    /// Forgets a stream (its task is ending).
    pub fn remove_stream(&self, serial: u32) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&serial);
    }

    /// Where stream messages for `serial` and `proc_` go, if such a stream
    /// is open.
    pub fn stream_sender(&self, serial: u32, proc_: i32) -> Option<mpsc::Sender<StreamMsg>> {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&serial)
            .filter(|s| s.proc_ == proc_)
            .map(|s| s.tx.clone())
    }

    /// Bytes queued for the client and not written yet.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::SeqCst)
    }

    /// Waits until at most `limit` bytes are queued for the client (stream
    /// producers pace themselves on the client's reading). `false` when the
    /// session ended meanwhile.
    pub async fn wait_for_room(&self, limit: usize) -> bool {
        while self.queued_bytes() > limit {
            if self.is_closed() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        !self.is_closed()
    }

    /// Resolves when the session is ending.
    pub async fn closing(&self) {
        // Polled: the `closed` notification's single stored permit belongs
        // to the reader loop.
        while !self.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Number of event callbacks (bounded per client).
    pub fn callback_count(&self) -> usize {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn mark_rx(&self) {
        self.last_rx
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_rx.load(Ordering::Relaxed)))
    }

    fn shutdown(&self) {
        for (_, (_, task)) in self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            if let Some(t) = task {
                t.abort();
            }
        }
        for (_, slot) in self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            if let Some(t) = slot.task {
                t.abort();
            }
        }
    }
}

/// Serves one client stream until it closes.
pub async fn serve_stream<S>(server: Arc<Server>, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let cfg = server.config().clone();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(cfg.write_queue.max(1));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let session = Arc::new(Session {
        authenticated: AtomicBool::new(peer.auth == super::AuthScheme::None),
        server,
        peer,
        conn: Mutex::new(None),
        out: tx,
        queued_bytes: queued_bytes.clone(),
        max_queued_bytes: cfg.write_queue_bytes,
        closed: Notify::new(),
        is_closed: AtomicBool::new(false),
        keepalive_wanted: AtomicBool::new(false),
        close_callback: AtomicBool::new(false),
        events: Mutex::new(HashMap::new()),
        next_callback: AtomicI32::new(1),
        streams: Mutex::new(HashMap::new()),
        last_rx: AtomicU64::new(0),
        started: Instant::now(),
    });
    debug!(peer = %session.peer.addr, read_only = session.peer.read_only, "client connected");

    // The writer holds the session weakly: it must end when the last sender
    // (inside the session) goes, which a strong reference would prevent.
    let writer_session = Arc::downgrade(&session);
    let peer_addr = session.peer.addr.clone();
    let write_timeout = cfg.write_timeout;
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let written = tokio::time::timeout(write_timeout, wr.write_all(&frame)).await;
            queued_bytes.fetch_sub(frame.len(), Ordering::SeqCst);
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!(peer = %peer_addr, "write failed: {e}");
                    break;
                }
                Err(_) => {
                    warn!(peer = %peer_addr, "write stalled; disconnecting");
                    break;
                }
            }
        }
        if let Some(s) = writer_session.upgrade() {
            s.close();
        }
        let _ = wr.shutdown().await;
    });

    let keepalive = cfg.keepalive.map(|(interval, count)| {
        let s = session.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if s.is_closed() {
                    break;
                }
                if !s.keepalive_wanted.load(Ordering::Relaxed) {
                    continue;
                }
                let quiet = s.quiet_for();
                if quiet >= interval * (count + 1) {
                    info!(peer = %s.peer.addr, "no keepalive response; disconnecting");
                    s.close();
                    break;
                }
                if quiet >= interval {
                    let h = Header {
                        prog: KEEPALIVE_PROGRAM,
                        vers: PROTOCOL_VERSION,
                        proc_: keepalive::PING,
                        kind: MessageType::Message,
                        serial: 0,
                        status: Status::Ok,
                    };
                    s.send_message(&h, &Void);
                }
            }
        })
    });

    // Ends the session's helper tasks however this function ends, even if
    // its task is aborted: otherwise they would keep the reply queue (and
    // with it the socket) open.
    let _guard = Cleanup {
        session: session.clone(),
        keepalive,
    };
    let inflight = Inflight {
        calls: Arc::new(Semaphore::new(cfg.max_requests.max(1))),
        bytes: Arc::new(Semaphore::new(cfg.inflight_bytes.max(cfg.max_message))),
    };
    loop {
        let msg = tokio::select! {
            m = read_message(&mut rd, cfg.max_message) => m,
            _ = session.closed.notified() => break,
        };
        if session.is_closed() {
            break;
        }
        let frame = match msg {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                debug!(peer = %session.peer.addr, "read failed: {e}");
                break;
            }
            Err(e) => {
                // A bad length word leaves no way to find the next message.
                warn!(peer = %session.peer.addr, "closing connection: {e}");
                break;
            }
        };
        session.mark_rx();
        if !dispatch::message(&session, frame, &inflight).await {
            break;
        }
    }

    session.close();
    session.shutdown();
    // Let queued replies go out (the writer ends when every sender is gone).
    let conn = session.set_conn(None);
    drop(session);
    drop(_guard);
    let _ = writer.await;
    if let Some(c) = conn {
        let _ = c.close().await;
    }
    debug!("client disconnected");
}

/// What an event callback forwards. libvirt numbers domain and network
/// callbacks in separate tables; virtkit numbers them from one counter but
/// deregisters each only through its own procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallbackKind {
    /// Domain events (316/317).
    Domain,
    /// Network events (313/314).
    Network,
}

/// Streams one client may have open at once.
const MAX_STREAMS: usize = 16;
/// Client stream messages (each at most `STREAM_CHUNK_MAX` bytes) queued
/// for one stream before reading from the client waits: with
/// `MAX_STREAMS`, at most 64 MiB of queued stream data per client.
const STREAM_QUEUE: usize = 16;

/// A message the client sent on a stream: data (`Continue`), finish
/// (`Ok`), abort (`Error`), or a hole.
#[derive(Debug)]
pub(crate) struct StreamMsg {
    /// `Stream` or `StreamHole`.
    pub kind: MessageType,
    /// The message status.
    pub status: Status,
    /// The raw payload.
    pub body: Vec<u8>,
}

/// An open stream of one client.
struct StreamSlot {
    proc_: i32,
    tx: mpsc::Sender<StreamMsg>,
    task: Option<AbortHandle>,
}

/// What one client may have running at once.
pub(crate) struct Inflight {
    /// One permit per call.
    pub calls: Arc<Semaphore>,
    /// One permit per byte of received call.
    pub bytes: Arc<Semaphore>,
}

/// Stops a session's helper tasks on drop.
struct Cleanup {
    session: Arc<Session>,
    keepalive: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.session.close();
        self.session.shutdown();
        if let Some(k) = self.keepalive.take() {
            k.abort();
        }
    }
}
