//! The netlink side of a handle: one rtnetlink connection, and request helpers
//! that insist on seeing the kernel's answer.
//!
//! rtnetlink's own `execute()` methods treat a stream that simply ends as
//! success, which is also what a dead connection looks like. These helpers ask
//! netlink-proto to forward ACKs and DONE markers and fail unless one arrives,
//! so "no error" always means "the kernel said yes". Requests can be issued
//! concurrently on one handle: netlink-proto matches replies by sequence
//! number, which is how [`WINDOW`] requests are kept in flight at once.

use std::io;

use futures::StreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::sys::AsyncSocket;

/// How many requests a bulk operation keeps in flight on one socket. Enough
/// to hide the round trip; small enough that the ACKs never overflow the
/// socket's receive buffer (which would lose them: ENOBUFS).
pub(crate) const WINDOW: usize = 128;

/// Receive buffer asked for, so a full window of replies always fits.
const RX_BUF: usize = 1 << 20;

/// Flags for creating a new object that must not exist yet.
pub(crate) const CREATE_EXCL: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
/// Flags for changing an existing object.
pub(crate) const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// Opens a NETLINK_ROUTE socket in the calling thread's network namespace and
/// spawns its connection task on the current tokio runtime.
pub(crate) fn connect() -> io::Result<Handle> {
    let (mut conn, handle, _unsolicited) = rtnetlink::new_connection()?;
    conn.set_forward_ack(true);
    conn.set_forward_done(true);
    // Best effort: without it the kernel default (~200 KiB) still holds a
    // window of ACKs; with it, dumps of thousands of links need fewer reads.
    let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(RX_BUF);
    tokio::spawn(conn);
    Ok(handle)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the netlink connection closed before the kernel answered",
    )
}

/// Sends `msg` and waits for the kernel's ACK; a NACK becomes its errno.
pub(crate) async fn ack(handle: &Handle, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = flags | NLM_F_ACK;
    let mut replies = handle.clone().request(req).map_err(|_| closed())?;
    while let Some(reply) = replies.next().await {
        if let NetlinkPayload::Error(e) = reply.payload {
            return match e.code {
                Some(_) => Err(e.to_io()),
                None => Ok(()),
            };
        }
    }
    Err(closed())
}

/// RTM_GETLINK for one device (selected by index or IFLA_IFNAME in `msg`).
pub(crate) async fn get_link(handle: &Handle, msg: LinkMessage) -> io::Result<LinkMessage> {
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(msg));
    req.header.flags = NLM_F_REQUEST;
    let mut replies = handle.clone().request(req).map_err(|_| closed())?;
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => return Ok(link),
            NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
            _ => {}
        }
    }
    Err(closed())
}

/// RTM_GETLINK dump of every device in the namespace.
pub(crate) async fn dump_links(handle: &Handle) -> io::Result<Vec<LinkMessage>> {
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(LinkMessage::default()));
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut replies = handle.clone().request(req).map_err(|_| closed())?;
    let mut out = Vec::new();
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => out.push(link),
            NetlinkPayload::Done(_) => return Ok(out),
            NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
            _ => {}
        }
    }
    Err(closed())
}
