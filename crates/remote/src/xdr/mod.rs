//! XDR (RFC 4506) encoding as libvirt's RPC uses it: big-endian 4-byte
//! units, strings and opaque data padded to 4 bytes, optional values as a
//! 0/1 word, unions with explicit discriminants, arrays bounded by
//! libvirt's maxima.
//!
//! [`XdrEncode`] writes into a [`Writer`] (a growing byte buffer);
//! [`XdrDecode`] reads from a [`Reader`] over a received frame. Decoding
//! never panics and never allocates more than the input can justify: every
//! length is checked against both its protocol maximum and the bytes left
//! before anything is reserved. `&str` and `&[u8]` decode without copying.

#[macro_use]
mod macros;
mod types;

pub use types::{CharArray, CharVec, Opaque, XdrVec};

use std::fmt;

/// Why a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// The input ended inside a value.
    #[error("message truncated: {what} needs {needed} more bytes at offset {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
        /// Where in the body.
        offset: usize,
    },
    /// A length word exceeds the protocol's maximum for that field.
    #[error("{what} has length {len}, above the protocol maximum of {max}")]
    TooLong {
        /// What was being read.
        what: &'static str,
        /// The length on the wire.
        len: u64,
        /// libvirt's maximum.
        max: u64,
    },
    /// A boolean or optional marker other than 0 or 1.
    #[error("invalid {what} marker {value} at offset {offset} (expected 0 or 1)")]
    BadMarker {
        /// What was being read.
        what: &'static str,
        /// The word found.
        value: u32,
        /// Where in the body.
        offset: usize,
    },
    /// A union or enum discriminant this side does not know.
    #[error("unknown {what} discriminant {value}")]
    BadDiscriminant {
        /// The union or enum.
        what: &'static str,
        /// The discriminant found.
        value: i32,
    },
    /// A string is not UTF-8.
    #[error("{what} is not valid UTF-8 (invalid byte at {at})")]
    NotUtf8 {
        /// What was being read.
        what: &'static str,
        /// Offset of the first bad byte inside the string.
        at: usize,
    },
    /// Bytes were left over after the value.
    #[error("{count} unexpected bytes after the message body")]
    Trailing {
        /// How many.
        count: usize,
    },
}

/// An output buffer for XDR encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A writer whose buffer starts with `buf` (e.g. a reserved header).
    pub fn from_vec(buf: Vec<u8>) -> Writer {
        Writer { buf }
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes one 4-byte big-endian word.
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a signed word.
    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes an 8-byte hyper.
    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes bytes followed by zero padding to a multiple of 4.
    pub fn put_padded(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let pad = (4 - bytes.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
    }

    /// Writes bytes as they are, without padding (the raw payload of a
    /// stream data message).
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Overwrites a word at `offset` (used to patch the length prefix).
    pub fn patch_u32(&mut self, offset: usize, v: u32) {
        if let Some(slot) = self.buf.get_mut(offset..offset + 4) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    }
}

/// A cursor over received bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], XdrError> {
        if self.remaining() < n {
            return Err(XdrError::Truncated {
                what,
                needed: n - self.remaining(),
                offset: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads one word.
    pub fn get_u32(&mut self, what: &'static str) -> Result<u32, XdrError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a signed word.
    pub fn get_i32(&mut self, what: &'static str) -> Result<i32, XdrError> {
        Ok(self.get_u32(what)? as i32)
    }

    /// Reads a hyper.
    pub fn get_u64(&mut self, what: &'static str) -> Result<u64, XdrError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads `len` bytes and skips their padding.
    pub fn get_padded(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], XdrError> {
        let padded = len
            .checked_add(3)
            .map(|l| l & !3)
            .ok_or(XdrError::TooLong {
                what,
                len: len as u64,
                max: u32::MAX as u64,
            })?;
        let b = self.take(padded, what)?;
        Ok(&b[..len])
    }

    /// Reads a length word and checks it against `max` and the input left
    /// (each element needs at least `min_elem` bytes).
    pub fn get_len(
        &mut self,
        max: u32,
        min_elem: usize,
        what: &'static str,
    ) -> Result<usize, XdrError> {
        let len = self.get_u32(what)?;
        if len > max {
            return Err(XdrError::TooLong {
                what,
                len: len as u64,
                max: max as u64,
            });
        }
        let len = len as usize;
        if len.saturating_mul(min_elem) > self.remaining() {
            return Err(XdrError::Truncated {
                what,
                needed: len.saturating_mul(min_elem) - self.remaining(),
                offset: self.pos,
            });
        }
        Ok(len)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), XdrError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(XdrError::Trailing { count }),
        }
    }
}

/// A value with an XDR encoding.
pub trait XdrEncode {
    /// Appends the encoding.
    fn encode(&self, w: &mut Writer);
}

/// A value that can be decoded from XDR; `'a` is the input's lifetime, so
/// borrowed types (`&str`) decode without copying.
pub trait XdrDecode<'a>: Sized {
    /// Reads one value.
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError>;
}

/// Encodes a value into a fresh buffer.
pub fn to_bytes<T: XdrEncode + ?Sized>(v: &T) -> Vec<u8> {
    let mut w = Writer::new();
    v.encode(&mut w);
    w.into_inner()
}

/// Decodes exactly one value from `buf` (no trailing bytes).
pub fn from_bytes<'a, T: XdrDecode<'a>>(buf: &'a [u8]) -> Result<T, XdrError> {
    let mut r = Reader::new(buf);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// The empty body (`void` in the protocol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Void;

impl XdrEncode for Void {
    fn encode(&self, _w: &mut Writer) {}
}

impl<'a> XdrDecode<'a> for Void {
    fn decode(_r: &mut Reader<'a>) -> Result<Self, XdrError> {
        Ok(Void)
    }
}

macro_rules! word {
    ($t:ty, $put:ident, $get:ident) => {
        impl XdrEncode for $t {
            fn encode(&self, w: &mut Writer) {
                w.$put(*self);
            }
        }
        impl<'a> XdrDecode<'a> for $t {
            fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
                r.$get(stringify!($t))
            }
        }
    };
}

word!(u32, put_u32, get_u32);
word!(i32, put_i32, get_i32);
word!(u64, put_u64, get_u64);

impl XdrEncode for i64 {
    fn encode(&self, w: &mut Writer) {
        w.put_u64(*self as u64);
    }
}

impl<'a> XdrDecode<'a> for i64 {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        Ok(r.get_u64("hyper")? as i64)
    }
}

impl XdrEncode for f64 {
    fn encode(&self, w: &mut Writer) {
        w.put_u64(self.to_bits());
    }
}

impl<'a> XdrDecode<'a> for f64 {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        Ok(f64::from_bits(r.get_u64("double")?))
    }
}

impl XdrEncode for bool {
    fn encode(&self, w: &mut Writer) {
        w.put_u32(u32::from(*self));
    }
}

impl<'a> XdrDecode<'a> for bool {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let offset = r.position();
        match r.get_u32("bool")? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(XdrError::BadMarker {
                what: "bool",
                value,
                offset,
            }),
        }
    }
}

/// libvirt's `REMOTE_STRING_MAX`: the longest string on the wire.
pub const STRING_MAX: u32 = 4_194_304;

impl XdrEncode for str {
    fn encode(&self, w: &mut Writer) {
        w.put_u32(self.len() as u32);
        w.put_padded(self.as_bytes());
    }
}

impl XdrEncode for String {
    fn encode(&self, w: &mut Writer) {
        self.as_str().encode(w);
    }
}

impl<T: XdrEncode + ?Sized> XdrEncode for &T {
    fn encode(&self, w: &mut Writer) {
        (**self).encode(w);
    }
}

impl<'a> XdrDecode<'a> for &'a str {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let len = r.get_len(STRING_MAX, 1, "string")?;
        let bytes = r.get_padded(len, "string")?;
        std::str::from_utf8(bytes).map_err(|e| XdrError::NotUtf8 {
            what: "string",
            at: e.valid_up_to(),
        })
    }
}

impl<'a> XdrDecode<'a> for String {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        <&str>::decode(r).map(str::to_owned)
    }
}

/// XDR optional data (`T *` in the protocol): a 0/1 word, then the value.
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            None => w.put_u32(0),
            Some(v) => {
                w.put_u32(1);
                v.encode(w);
            }
        }
    }
}

impl<'a, T: XdrDecode<'a>> XdrDecode<'a> for Option<T> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let offset = r.position();
        match r.get_u32("optional")? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            value => Err(XdrError::BadMarker {
                what: "optional",
                value,
                offset,
            }),
        }
    }
}

/// Fixed-length opaque data (`opaque x[N]`), e.g. a UUID: no length word.
impl<const N: usize> XdrEncode for [u8; N] {
    fn encode(&self, w: &mut Writer) {
        w.put_padded(self);
    }
}

impl<'a, const N: usize> XdrDecode<'a> for [u8; N] {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let b = r.get_padded(N, "fixed opaque")?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
}

impl fmt::Display for Void {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("void")
    }
}

#[cfg(test)]
mod tests;
