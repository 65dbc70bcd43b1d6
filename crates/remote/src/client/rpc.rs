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
use virtkit_core::{
    Error, ErrorDomain, ErrorKind, LifecycleEvent, LifecycleKind, NetworkEvent, NetworkEventKind,
    Result,
};

use crate::protocol::convert::{dom_ref, net_ref};
use crate::protocol::error::bad_reply;
use crate::protocol::frame::read_message;
use crate::protocol::header::{Header, MessageType, Status, encode_message, split};
use crate::protocol::remote::{
    DomainEventCallbackLifecycleMsg, IntRet, NetworkEventLifecycleMsg, RemoteError,
};
use crate::protocol::{KEEPALIVE_PROGRAM, MESSAGE_MAX, PROTOCOL_VERSION, REMOTE_PROGRAM};
use crate::protocol::{keepalive, procs};
use crate::xdr::{Void, XdrDecode, XdrEncode, from_bytes};

/// Where events of one registered callback go.
#[derive(Debug, Clone)]
pub(crate) enum EventSink {
    /// Domain lifecycle events.
    Domain(mpsc::Sender<LifecycleEvent>),
    /// Network lifecycle events.
    Network(mpsc::Sender<NetworkEvent>),
}

impl EventSink {
    fn kind(&self) -> CallbackKind {
        match self {
            EventSink::Domain(_) => CallbackKind::Domain,
            EventSink::Network(_) => CallbackKind::Network,
        }
    }
}

/// Which table a callback id belongs to: a server numbers domain and
/// network callbacks separately (libvirtd does), so ids may repeat across
/// kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CallbackKind {
    /// Domain events.
    Domain,
    /// Network events.
    Network,
}

/// What arrives on a stream from the server.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// Data.
    Data(Vec<u8>),
    /// The end of the data.
    Eof,
    /// The server confirmed our finish or abort.
    Confirm,
    /// The stream failed.
    Error(Error),
}

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
    events: Mutex<HashMap<(CallbackKind, i32), EventSink>>,
    streams: Mutex<HashMap<u32, mpsc::UnboundedSender<StreamEvent>>>,
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
            streams: Mutex::new(HashMap::new()),
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
        for (_, st) in self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            let _ = st.send(StreamEvent::Error(closed_error(Some(reason))));
        }
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
                    // A failure of stream data we sent comes as a reply
                    // with the stream's serial.
                    if h.status == Status::Error {
                        self.to_stream(h.serial, StreamEvent::Error(remote_error(body)));
                    } else {
                        debug!("reply for unknown serial {}", h.serial);
                    }
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
                                .insert((sink.kind(), id.value), sink);
                        }
                        Ok(body.to_vec())
                    }
                    _ => Err(remote_error(body)),
                };
                let _ = p.reply.send(result);
            }
            MessageType::Message => self.event(h.proc_, body),
            MessageType::Stream => {
                let ev = match h.status {
                    Status::Continue if body.is_empty() => StreamEvent::Eof,
                    Status::Continue => StreamEvent::Data(body.to_vec()),
                    Status::Ok => StreamEvent::Confirm,
                    Status::Error => StreamEvent::Error(remote_error(body)),
                };
                self.to_stream(h.serial, ev);
            }
            _ => {}
        }
    }

    fn to_stream(&self, serial: u32, ev: StreamEvent) {
        let st = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&serial)
            .cloned();
        match st {
            Some(st) => {
                let _ = st.send(ev);
            }
            None => debug!("stream message for unknown serial {serial}"),
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
                    .get(&(CallbackKind::Domain, m.callback_id))
                    .cloned();
                if let Some(EventSink::Domain(sink)) = sink {
                    // A consumer that falls far behind loses events rather
                    // than stalling every call on this connection.
                    let _ = sink.try_send(LifecycleEvent::new(dom_ref(&m.dom), kind, m.detail));
                }
            }
            procs::NETWORK_EVENT_LIFECYCLE => {
                let Ok(m) = from_bytes::<NetworkEventLifecycleMsg>(body) else {
                    debug!("undecodable network lifecycle event");
                    return;
                };
                let kind = match m.event {
                    0 => NetworkEventKind::Defined,
                    1 => NetworkEventKind::Undefined,
                    2 => NetworkEventKind::Started,
                    3 => NetworkEventKind::Stopped,
                    _ => return,
                };
                let sink = self
                    .events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&(CallbackKind::Network, m.callback_id))
                    .cloned();
                if let Some(EventSink::Network(sink)) = sink {
                    let _ = sink.try_send(NetworkEvent {
                        network: net_ref(&m.net),
                        kind,
                    });
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
    pub fn drop_callback(&self, kind: CallbackKind, id: i32) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(kind, id));
    }

    /// Calls a procedure that opens a stream (`@readstream`): the stream
    /// is registered under the call's serial before the call goes out, so
    /// no data can arrive unrouted.
    pub fn call_stream<A, R>(
        self: &Arc<Self>,
        proc_: i32,
        args: &A,
    ) -> impl std::future::Future<Output = Result<(R, ClientStream)>> + Send + '_
    where
        A: XdrEncode + ?Sized,
        R: for<'a> XdrDecode<'a>,
    {
        let prepared = self.prepare(proc_, args);
        async move {
            let (serial, msg) = prepared?;
            let (tx, rx) = mpsc::unbounded_channel();
            self.streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(serial, tx);
            let mut stream = ClientStream {
                rpc: self.clone(),
                serial,
                proc_,
                rx,
                done: false,
            };
            // On failure, dropping `stream` unregisters it; a stream the
            // server refused to open needs no abort.
            let body = match self.exchange(proc_, (serial, msg), None).await {
                Ok(b) => b,
                Err(e) => {
                    stream.done = true;
                    return Err(e);
                }
            };
            let ret = from_bytes::<R>(&body)
                .map_err(|e| bad_reply(procs::lookup(proc_).map_or("a call", |p| p.name), &e))?;
            Ok((ret, stream))
        }
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

fn remote_error(body: &[u8]) -> Error {
    match from_bytes::<RemoteError>(body) {
        Ok(e) => e.into_error(),
        Err(e) => bad_reply("an error reply", &e),
    }
}

/// The client end of a stream opened by [`RpcClient::call_stream`]. Dropped
/// before it was finished, it aborts the stream.
pub(crate) struct ClientStream {
    rpc: Arc<RpcClient>,
    serial: u32,
    proc_: i32,
    rx: mpsc::UnboundedReceiver<StreamEvent>,
    done: bool,
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientStream({})", self.serial)
    }
}

impl ClientStream {
    fn header(&self, status: Status) -> Header {
        Header {
            prog: REMOTE_PROGRAM,
            vers: PROTOCOL_VERSION,
            proc_: self.proc_,
            kind: MessageType::Stream,
            serial: self.serial,
            status,
        }
    }

    /// The next data from the server; `None` at its end.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        match self.rx.recv().await {
            Some(StreamEvent::Data(d)) => Ok(Some(d)),
            Some(StreamEvent::Eof) => Ok(None),
            Some(StreamEvent::Error(e)) => {
                self.done = true;
                Err(e)
            }
            Some(StreamEvent::Confirm) => Err(Error::new(
                ErrorKind::Rpc,
                "the server ended the stream unexpectedly",
            )
            .in_domain(ErrorDomain::Rpc)),
            None => {
                self.done = true;
                Err(closed_error(None))
            }
        }
    }

    /// Sends data to the server (no reply; in messages of libvirt's size).
    pub async fn send(&self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(crate::protocol::STREAM_CHUNK_MAX) {
            let m = encode_message(&self.header(Status::Continue), &RawBody(chunk))
                .map_err(|e| Error::new(ErrorKind::Rpc, e.to_string()))?;
            self.rpc.out.send(m).await.map_err(|_| closed_error(None))?;
        }
        Ok(())
    }

    /// Ends the stream (status OK, `virStreamFinish`) and waits for the
    /// server's confirmation.
    pub async fn finish(mut self) -> Result<()> {
        self.end(Status::Ok).await
    }

    /// Aborts the stream (status ERROR, `virStreamAbort`) and waits for the
    /// server's confirmation.
    pub async fn abort(mut self) -> Result<()> {
        self.end(Status::Error).await
    }

    async fn end(&mut self, status: Status) -> Result<()> {
        self.done = true;
        let m = encode_message(&self.header(status), &Void)
            .map_err(|e| Error::new(ErrorKind::Rpc, e.to_string()))?;
        self.rpc.out.send(m).await.map_err(|_| closed_error(None))?;
        let wait = async {
            loop {
                match self.rx.recv().await {
                    Some(StreamEvent::Confirm) => return Ok(()),
                    Some(StreamEvent::Error(e)) => return Err(e),
                    // Data still in flight before our end.
                    Some(StreamEvent::Data(_)) | Some(StreamEvent::Eof) => {}
                    None => return Err(closed_error(None)),
                }
            }
        };
        match tokio::time::timeout(self.rpc.timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::OperationTimeout,
                "no confirmation from the server for the end of a stream",
            )
            .in_domain(ErrorDomain::Rpc)),
        }
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        self.rpc
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.serial);
        if !self.done && !self.rpc.is_closed() {
            self.rpc.send(&self.header(Status::Error), &Void);
        }
    }
}

/// Raw stream payload: written as is, unpadded.
struct RawBody<'a>(&'a [u8]);

impl XdrEncode for RawBody<'_> {
    fn encode(&self, w: &mut crate::xdr::Writer) {
        w.put_bytes(self.0);
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
