//! The RPC client core: numbered calls matched to replies by serial, event
//! messages routed by callback id, keepalive, per-call timeouts, and a
//! clean failure of every pending call when the connection drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;
use virtkit_core::{Error, ErrorDomain, ErrorKind, LifecycleEvent, LifecycleKind, Result};

use crate::protocol::convert::dom_ref;
use crate::protocol::error::bad_reply;
use crate::protocol::frame::read_message;
use crate::protocol::header::{Header, MessageType, Status, encode_message, split};
use crate::protocol::remote::{DomainEventCallbackLifecycleMsg, IntRet, RemoteError};
use crate::protocol::{KEEPALIVE_PROGRAM, MESSAGE_MAX, PROTOCOL_VERSION, REMOTE_PROGRAM};
use crate::protocol::{keepalive, procs};
use crate::xdr::{Void, XdrDecode, XdrEncode, from_bytes};

/// Where events of one registered callback go.
pub(crate) type EventSink = mpsc::Sender<LifecycleEvent>;

struct Pending {
    reply: oneshot::Sender<Result<Vec<u8>>>,
    /// For an event registration: installed under the returned callback id
    /// by the reader itself, before it reads the next message, so no event
    /// can arrive unrouted.
    sink: Option<EventSink>,
}

/// A connected RPC client.
pub(crate) struct RpcClient {
    out: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u32, Pending>>,
    events: Mutex<HashMap<i32, EventSink>>,
    serial: AtomicU32,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
    timeout: Duration,
    last_rx: AtomicU64,
    started: Instant,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpcClient")
    }
}

fn closed_error(reason: Option<&str>) -> Error {
    Error::new(
        ErrorKind::InvalidConn,
        format!(
            "the connection to the server is closed{}",
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    )
    .in_domain(ErrorDomain::Rpc)
}

impl RpcClient {
    /// Starts the reader and writer tasks over a connected stream.
    pub fn start<S>(stream: S, timeout: Duration) -> Arc<RpcClient>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let client = Arc::new(RpcClient {
            out: tx,
            pending: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
            serial: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            timeout,
            last_rx: AtomicU64::new(0),
            started: Instant::now(),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&client);
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if let Err(e) = wr.write_all(&frame).await {
                    if let Some(c) = weak.upgrade() {
                        c.fail_all(&format!("cannot write to the server: {e}"));
                    }
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        let weak = Arc::downgrade(&client);
        let reader = tokio::spawn(async move {
            let reason = loop {
                match read_message(&mut rd, MESSAGE_MAX).await {
                    Ok(Some(frame)) => {
                        let Some(c) = weak.upgrade() else { return };
                        c.last_rx
                            .store(c.started.elapsed().as_millis() as u64, Ordering::Relaxed);
                        c.incoming(&frame);
                    }
                    Ok(None) => break "end of file from the server".to_string(),
                    Err(e) => break e.to_string(),
                }
            };
            if let Some(c) = weak.upgrade() {
                c.fail_all(&reason);
            }
        });
        client
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([writer.abort_handle(), reader.abort_handle()]);
        client
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn fail_all(&self, reason: &str) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        debug!("remote connection closed: {reason}");
        *self.close_reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in pending {
            let _ = p.reply.send(Err(closed_error(Some(reason))));
        }
        // Dropping the sinks ends every event stream.
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn incoming(&self, frame: &[u8]) {
        let (h, body) = match split(frame) {
            Ok(x) => x,
            Err(e) => {
                debug!("ignoring message with a bad header: {e}");
                return;
            }
        };
        if h.prog == KEEPALIVE_PROGRAM {
            if h.proc_ == keepalive::PING {
                let pong = Header {
                    proc_: keepalive::PONG,
                    ..h
                };
                if let Ok(m) = encode_message(&pong, &Void) {
                    let _ = self.out.try_send(m);
                }
            }
            return;
        }
        if h.prog != REMOTE_PROGRAM {
            return;
        }
        match h.kind {
            MessageType::Reply | MessageType::ReplyWithFds => {
                let Some(p) = self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&h.serial)
                else {
                    debug!("reply for unknown serial {}", h.serial);
                    return;
                };
                let result = match h.status {
                    Status::Ok => {
                        if let Some(sink) = p.sink
                            && let Ok(id) = from_bytes::<IntRet>(body)
                        {
                            self.events
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(id.value, sink);
                        }
                        Ok(body.to_vec())
                    }
                    _ => Err(match from_bytes::<RemoteError>(body) {
                        Ok(e) => e.into_error(),
                        Err(e) => bad_reply("an error reply", &e),
                    }),
                };
                let _ = p.reply.send(result);
            }
            MessageType::Message => self.event(h.proc_, body),
            _ => {}
        }
    }

    fn event(&self, proc_: i32, body: &[u8]) {
        match proc_ {
            procs::DOMAIN_EVENT_CALLBACK_LIFECYCLE => {
                let Ok(m) = from_bytes::<DomainEventCallbackLifecycleMsg>(body) else {
                    debug!("undecodable lifecycle event");
                    return;
                };
                let Some(kind) = LifecycleKind::from_code(m.event) else {
                    return;
                };
                let sink = self
                    .events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&m.callback_id)
                    .cloned();
                if let Some(sink) = sink {
                    // A consumer that falls far behind loses events rather
                    // than stalling every call on this connection.
                    let _ = sink.try_send(LifecycleEvent::new(dom_ref(&m.dom), kind, m.detail));
                }
            }
            procs::CONNECT_EVENT_CONNECTION_CLOSED => {
                self.fail_all("the server closed the connection");
            }
            _ => {}
        }
    }

    fn next_serial(&self) -> u32 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a message without expecting a reply.
    pub fn send(&self, header: &Header, body: &dyn crate::protocol::header::Encodable) {
        if let Ok(m) = encode_message(header, body) {
            let _ = self.out.try_send(m);
        }
    }

    /// Calls a procedure and decodes its reply. The arguments are encoded
    /// before the returned future first runs, so it borrows nothing but
    /// the client.
    pub fn call<A, R>(
        &self,
        proc_: i32,
        args: &A,
    ) -> impl std::future::Future<Output = Result<R>> + Send + '_
    where
        A: XdrEncode + ?Sized,
        R: for<'a> XdrDecode<'a>,
    {
        let prepared = self.prepare(proc_, args);
        async move {
            let body = self.exchange(proc_, prepared?, None).await?;
            from_bytes::<R>(&body)
                .map_err(|e| bad_reply(procs::lookup(proc_).map_or("a call", |p| p.name), &e))
        }
    }

    /// Calls an event registration; `sink` receives its events.
    pub fn call_register<A: XdrEncode>(
        &self,
        proc_: i32,
        args: &A,
        sink: EventSink,
    ) -> impl std::future::Future<Output = Result<i32>> + Send + '_ {
        let prepared = self.prepare(proc_, args);
        async move {
            let body = self.exchange(proc_, prepared?, Some(sink)).await?;
            from_bytes::<IntRet>(&body)
                .map(|r| r.value)
                .map_err(|e| bad_reply("the event registration", &e))
        }
    }

    fn prepare<A: XdrEncode + ?Sized>(&self, proc_: i32, args: &A) -> Result<(u32, Vec<u8>)> {
        let serial = self.next_serial();
        let header = Header::call(REMOTE_PROGRAM, proc_, serial);
        let msg = encode_message(&header, &Body(args))
            .map_err(|e| Error::new(ErrorKind::Rpc, e.to_string()).in_domain(ErrorDomain::Rpc))?;
        Ok((serial, msg))
    }

    async fn exchange(
        &self,
        proc_: i32,
        (serial, msg): (u32, Vec<u8>),
        sink: Option<EventSink>,
    ) -> Result<Vec<u8>> {
        if self.is_closed() {
            let r = self
                .close_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(closed_error(r.as_deref()));
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(serial, Pending { reply: tx, sink });
        if self.out.send(msg).await.is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&serial);
            return Err(closed_error(None));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(closed_error(None)),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&serial);
                let name = procs::lookup(proc_).map_or("a call", |p| p.api);
                Err(Error::new(
                    ErrorKind::OperationTimeout,
                    format!(
                        "no reply from the server to {name} within {} s",
                        self.timeout.as_secs()
                    ),
                )
                .in_domain(ErrorDomain::Rpc))
            }
        }
    }

    /// Stops routing events of a callback.
    pub fn drop_callback(&self, id: i32) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Sends keepalive PINGs while the server is quiet; closes the
    /// connection when `count` intervals pass without hearing from it.
    pub fn start_keepalive(self: &Arc<Self>, interval: Duration, count: u32) {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(c) = weak.upgrade() else { return };
                if c.is_closed() {
                    return;
                }
                let now = c.started.elapsed().as_millis() as u64;
                let quiet =
                    Duration::from_millis(now.saturating_sub(c.last_rx.load(Ordering::Relaxed)));
                if quiet > interval * (count + 1) {
                    c.fail_all("connection closed due to keepalive timeout");
                    c.abort_tasks();
                    return;
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
                    c.send(&h, &Void);
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
    }

    fn abort_tasks(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// Closes the connection (after CONNECT_CLOSE).
    pub fn shutdown(&self) {
        self.fail_all("closed by the client");
        self.abort_tasks();
    }
}

/// Lets an unsized argument be encoded as a message body.
struct Body<'a, A: ?Sized>(&'a A);

impl<A: XdrEncode + ?Sized> XdrEncode for Body<'_, A> {
    fn encode(&self, w: &mut crate::xdr::Writer) {
        self.0.encode(w);
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}
