//! The 24-byte message header and whole-message encoding: a length word
//! that counts itself, the header, then the XDR body.

use crate::xdr::{Reader, Writer, XdrEncode, XdrError};

use super::{HEADER_LEN, MESSAGE_MAX, PROTOCOL_VERSION};

xdr_enum! {
    /// `virNetMessageType`.
    pub enum MessageType {
        /// A call that expects a reply.
        Call = 0,
        /// The reply to a call.
        Reply = 1,
        /// An asynchronous message (event, keepalive).
        Message = 2,
        /// Stream data.
        Stream = 3,
        /// A call carrying file descriptors.
        CallWithFds = 4,
        /// A reply carrying file descriptors.
        ReplyWithFds = 5,
        /// A hole in a sparse stream.
        StreamHole = 6,
    }
}

xdr_enum! {
    /// `virNetMessageStatus`.
    pub enum Status {
        /// Success (or a call).
        Ok = 0,
        /// The body is a `remote_error`.
        Error = 1,
        /// More stream data follows.
        Continue = 2,
    }
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Program number.
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number.
    pub proc_: i32,
    /// Message type.
    pub kind: MessageType,
    /// Serial chosen by the caller, echoed in the reply.
    pub serial: u32,
    /// Status.
    pub status: Status,
}

/// Why a header is unusable. Unknown type or status words are reported
/// with the serial so that a reply can still be addressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than 24 bytes.
    #[error("message header truncated")]
    Truncated,
    /// A type word outside `virNetMessageType`.
    #[error("unknown message type {0}")]
    Type(i32),
    /// A status word outside `virNetMessageStatus`.
    #[error("unknown message status {0}")]
    Status(i32),
}

impl Header {
    /// A call header of the given program.
    pub fn call(prog: u32, proc_: i32, serial: u32) -> Header {
        Header {
            prog,
            vers: PROTOCOL_VERSION,
            proc_,
            kind: MessageType::Call,
            serial,
            status: Status::Ok,
        }
    }

    /// The reply header for this call.
    pub fn reply(&self, status: Status) -> Header {
        Header {
            kind: MessageType::Reply,
            status,
            ..*self
        }
    }

    /// Decodes a header from the first 24 bytes after the length word.
    pub fn decode(buf: &[u8]) -> Result<Header, HeaderError> {
        let mut r = Reader::new(buf);
        let word = |r: &mut Reader<'_>| r.get_u32("header").map_err(|_| HeaderError::Truncated);
        let prog = word(&mut r)?;
        let vers = word(&mut r)?;
        let proc_ = word(&mut r)? as i32;
        let kind = word(&mut r)? as i32;
        let serial = word(&mut r)?;
        let status = word(&mut r)? as i32;
        Ok(Header {
            prog,
            vers,
            proc_,
            kind: MessageType::from_i32(kind).ok_or(HeaderError::Type(kind))?,
            serial,
            status: Status::from_i32(status).ok_or(HeaderError::Status(status))?,
        })
    }

    fn encode_into(&self, w: &mut Writer) {
        w.put_u32(self.prog);
        w.put_u32(self.vers);
        w.put_i32(self.proc_);
        self.kind.encode(w);
        w.put_u32(self.serial);
        self.status.encode(w);
    }
}

/// Reads just the serial of a header whose other words may be invalid.
pub fn raw_serial(buf: &[u8]) -> Option<u32> {
    buf.get(16..20)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A message too large for libvirt's limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message of {len} bytes exceeds the protocol maximum of {MESSAGE_MAX} bytes")]
pub struct TooLarge {
    /// Encoded length.
    pub len: usize,
}

/// Encodes a whole message: length word, header, body.
pub fn encode_message(header: &Header, body: &dyn Encodable) -> Result<Vec<u8>, TooLarge> {
    let mut w = Writer::from_vec(Vec::with_capacity(256));
    w.put_u32(0);
    header.encode_into(&mut w);
    body.encode_dyn(&mut w);
    let len = w.len();
    if len > MESSAGE_MAX {
        return Err(TooLarge { len });
    }
    w.patch_u32(0, len as u32);
    Ok(w.into_inner())
}

/// Object-safe view of [`XdrEncode`] so message bodies can be passed as
/// `&dyn`.
pub trait Encodable {
    /// Appends the encoding.
    fn encode_dyn(&self, w: &mut Writer);
}

impl<T: XdrEncode> Encodable for T {
    fn encode_dyn(&self, w: &mut Writer) {
        self.encode(w);
    }
}

/// Splits a received message (without its length word) into header and body.
pub fn split(frame: &[u8]) -> Result<(Header, &[u8]), HeaderError> {
    let header = Header::decode(frame)?;
    Ok((header, &frame[HEADER_LEN - 4..]))
}

/// Decodes a body completely, rejecting trailing bytes.
pub fn decode_body<'a, T: crate::xdr::XdrDecode<'a>>(body: &'a [u8]) -> Result<T, XdrError> {
    crate::xdr::from_bytes(body)
}
