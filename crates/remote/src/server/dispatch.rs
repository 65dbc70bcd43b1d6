//! From a received message to its reply: program and type checks, the
//! procedure table (what a read-only or unauthenticated client may call),
//! one task per call.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use tracing::{debug, warn};
use virtkit_core::{Error, ErrorDomain, ErrorKind};

use super::handlers;
use super::session::{Inflight, Session, StreamMsg};
use crate::protocol::header::{Header, HeaderError, MessageType, Status, raw_serial, split};
use crate::protocol::procs::{self, Access};
use crate::protocol::remote::RemoteError;
use crate::protocol::{
    KEEPALIVE_PROGRAM, PROTOCOL_VERSION, REMOTE_PROGRAM, STREAM_CHUNK_MAX, keepalive,
};
use crate::xdr::{Void, Writer, XdrEncode};

/// A procedure implementation: decodes its arguments from the body and
/// returns the encoded return value.
pub(crate) type Handler =
    for<'a> fn(&'a Arc<Session>, &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>>;

/// A procedure that opens a stream: on success it sends its reply itself
/// (after registering the stream, before any data), so that the stream
/// can start right behind it.
pub(crate) type StreamHandler =
    for<'a> fn(&'a Arc<Session>, Header, &'a [u8]) -> BoxFuture<'a, Result<(), Error>>;

/// How a procedure is served.
#[derive(Clone, Copy)]
pub(crate) enum Served {
    /// A call and its reply.
    Call(Handler),
    /// A call that opens a stream.
    Stream(StreamHandler),
}

/// Already-encoded XDR, or the raw payload of a stream message: written
/// as is.
pub(crate) struct Raw<'a>(pub &'a [u8]);

impl XdrEncode for Raw<'_> {
    fn encode(&self, w: &mut Writer) {
        w.put_bytes(self.0);
    }
}

fn rpc_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Rpc, msg).in_domain(ErrorDomain::Rpc)
}

fn reply_error(session: &Session, call: &Header, e: &Error) -> bool {
    session.send_message(&call.reply(Status::Error), &RemoteError::from_error(e))
}

/// Handles one message. Returns false when the connection must close.
pub(crate) async fn message(session: &Arc<Session>, frame: Vec<u8>, inflight: &Inflight) -> bool {
    let header = match split(&frame) {
        Ok((h, _)) => h,
        Err(HeaderError::Truncated) => return false,
        Err(e) => {
            // The type or status word is garbage: answer the serial if we
            // can, then keep going (the framing is intact).
            warn!(peer = %session.peer.addr, "bad message header: {e}");
            if let Some(serial) = raw_serial(&frame) {
                let h = Header::call(REMOTE_PROGRAM, 0, serial);
                reply_error(
                    session,
                    &h,
                    &rpc_error(format!("malformed message header: {e}")),
                );
            }
            return true;
        }
    };

    if header.prog == KEEPALIVE_PROGRAM {
        if header.kind == MessageType::Message && header.proc_ == keepalive::PING {
            let pong = Header {
                proc_: keepalive::PONG,
                ..header
            };
            session.send_message(&pong, &Void);
        }
        // PONG only proves liveness, which reading it already recorded.
        return true;
    }

    match header.kind {
        MessageType::Call => {}
        MessageType::CallWithFds => {
            return reply_error(
                session,
                &header,
                &rpc_error("passing file descriptors is not supported by virtkitd"),
            );
        }
        MessageType::Stream | MessageType::StreamHole => {
            let target = (header.prog == REMOTE_PROGRAM)
                .then(|| session.stream_sender(header.serial, header.proc_))
                .flatten();
            let Some(tx) = target else {
                // Stream messages are not acknowledged, so some may still
                // arrive after a stream ended: libvirt drops them too.
                debug!(peer = %session.peer.addr, "ignoring stream data for serial {}", header.serial);
                return true;
            };
            let body = &frame[24..];
            if body.len() > STREAM_CHUNK_MAX {
                // libvirt's clients send at most this much per message;
                // bigger ones would let one stream hold its whole queue in
                // maximal messages. Refused, the stream goes on.
                return reply_error(
                    session,
                    &header,
                    &rpc_error(format!(
                        "stream message of {} bytes exceeds the maximum of {STREAM_CHUNK_MAX}",
                        body.len()
                    )),
                );
            }
            let msg = StreamMsg {
                kind: header.kind,
                status: header.status,
                body: body.to_vec(),
            };
            // A stream that cannot take more (its device does not drain)
            // holds up this client's reading, as in libvirt; a session that
            // ends meanwhile stops waiting.
            tokio::select! {
                _ = tx.send(msg) => {}
                _ = session.closing() => return false,
            }
            return true;
        }
        MessageType::Reply | MessageType::ReplyWithFds | MessageType::Message => {
            debug!(peer = %session.peer.addr, "ignoring unexpected {:?}", header.kind);
            return true;
        }
    }

    if header.prog != REMOTE_PROGRAM || header.vers != PROTOCOL_VERSION {
        return reply_error(
            session,
            &header,
            &rpc_error(format!(
                "cannot find program {} version {}",
                header.prog, header.vers
            )),
        );
    }
    if header.status != Status::Ok {
        return reply_error(
            session,
            &header,
            &rpc_error(format!("unexpected message status {:?}", header.status)),
        );
    }

    let (info, handler) = match (procs::lookup(header.proc_), handlers::find(header.proc_)) {
        (Some(info), Some(h)) => (info, h),
        _ if (1..=procs::LAST_KNOWN).contains(&header.proc_) => {
            // A libvirt procedure virtkit does not implement: answer as a
            // driver without the function does, so clients (virsh) fall
            // back exactly as they would with such a driver.
            debug!(peer = %session.peer.addr, procedure = header.proc_, "not implemented");
            return reply_error(
                session,
                &header,
                &Error::new(
                    ErrorKind::NoSupport,
                    format!(
                        "remote procedure {} is not implemented by virtkitd",
                        header.proc_
                    ),
                ),
            );
        }
        _ => {
            return reply_error(
                session,
                &header,
                &rpc_error(format!("unknown procedure: {}", header.proc_)),
            );
        }
    };

    if info.access != Access::Setup {
        if !session.authenticated.load(Ordering::SeqCst) {
            return reply_error(
                session,
                &header,
                &Error::new(ErrorKind::AuthFailed, "authentication required")
                    .in_domain(ErrorDomain::Rpc),
            );
        }
        if !session.has_conn() {
            return reply_error(
                session,
                &header,
                &Error::new(ErrorKind::Internal, "connection not open"),
            );
        }
        let read_only =
            session.peer.read_only || session.conn().map(|c| c.is_read_only()).unwrap_or_default();
        if info.access == Access::Write && read_only {
            return reply_error(
                session,
                &header,
                &Error::denied(format!("read only access prevents {}", info.api)),
            );
        }
    }

    let Ok(permit) = inflight.calls.clone().acquire_owned().await else {
        return false;
    };
    let Ok(bytes) = inflight
        .bytes
        .clone()
        .acquire_many_owned(u32::try_from(frame.len()).unwrap_or(u32::MAX))
        .await
    else {
        return false;
    };
    let session = session.clone();
    tokio::spawn(async move {
        let body = &frame[24..];
        let result = match handler {
            Served::Call(h) => h(&session, body)
                .await
                .map(|ret| session.send_message(&header.reply(Status::Ok), &Raw(&ret))),
            Served::Stream(h) => h(&session, header, body).await.map(|()| true),
        };
        if let Err(e) = result {
            debug!(procedure = info.name, "call failed: {e}");
            reply_error(&session, &header, &e);
        }
        drop((permit, bytes));
    });
    true
}
