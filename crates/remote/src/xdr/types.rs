//! Bounded XDR container types whose protocol maximum is part of the type,
//! so a decoder can never be talked into a larger allocation.

use std::ops::{Deref, DerefMut};

use super::{Reader, Writer, XdrDecode, XdrEncode, XdrError};

/// A variable-length array `T x<MAX>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XdrVec<T, const MAX: u32>(pub Vec<T>);

impl<T, const MAX: u32> Deref for XdrVec<T, MAX> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T, const MAX: u32> DerefMut for XdrVec<T, MAX> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T, const MAX: u32> From<Vec<T>> for XdrVec<T, MAX> {
    fn from(v: Vec<T>) -> Self {
        XdrVec(v)
    }
}

impl<T: XdrEncode, const MAX: u32> XdrEncode for XdrVec<T, MAX> {
    fn encode(&self, w: &mut Writer) {
        // Callers keep lists within MAX (the server truncates with an
        // error before encoding); the peer enforces it as well.
        w.put_u32(self.0.len() as u32);
        for v in &self.0 {
            v.encode(w);
        }
    }
}

impl<'a, T: XdrDecode<'a>, const MAX: u32> XdrDecode<'a> for XdrVec<T, MAX> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        // Every XDR item takes at least 4 bytes: a bogus count cannot make
        // us reserve more than the frame could hold.
        let len = r.get_len(MAX, 4, "array")?;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            v.push(T::decode(r)?);
        }
        Ok(XdrVec(v))
    }
}

/// Variable-length opaque data `opaque x<MAX>`: packed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opaque<const MAX: u32>(pub Vec<u8>);

impl<const MAX: u32> XdrEncode for Opaque<MAX> {
    fn encode(&self, w: &mut Writer) {
        w.put_u32(self.0.len() as u32);
        w.put_padded(&self.0);
    }
}

impl<'a, const MAX: u32> XdrDecode<'a> for Opaque<MAX> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let len = r.get_len(MAX, 1, "opaque")?;
        Ok(Opaque(r.get_padded(len, "opaque")?.to_vec()))
    }
}

/// A fixed `char x[N]` (rpcgen encodes every `char` as a full word): a
/// NUL-padded C string such as `virNodeInfo.model`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharArray<const N: usize>(pub String);

impl<const N: usize> XdrEncode for CharArray<N> {
    fn encode(&self, w: &mut Writer) {
        let b = self.0.as_bytes();
        for i in 0..N {
            // The last byte stays NUL, as in the C struct.
            let c = if i + 1 < N { b.get(i).copied() } else { None };
            w.put_i32(c.map_or(0, |c| c as i8 as i32));
        }
    }
}

impl<'a, const N: usize> XdrDecode<'a> for CharArray<N> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let mut bytes = Vec::with_capacity(N);
        for _ in 0..N {
            bytes.push(r.get_i32("char")? as u8);
        }
        Ok(CharArray(c_string(bytes)))
    }
}

/// A variable `char x<MAX>` (one word per char) holding a C string with
/// its terminating NUL, as libvirt sends security models and labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharVec<const MAX: u32>(pub String);

impl<const MAX: u32> XdrEncode for CharVec<MAX> {
    fn encode(&self, w: &mut Writer) {
        let b = self.0.as_bytes();
        let n = b.len().min(MAX as usize - 1);
        w.put_u32(n as u32 + 1);
        for &c in &b[..n] {
            w.put_i32(c as i8 as i32);
        }
        w.put_i32(0);
    }
}

impl<'a, const MAX: u32> XdrDecode<'a> for CharVec<MAX> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, XdrError> {
        let len = r.get_len(MAX, 4, "char array")?;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            bytes.push(r.get_i32("char")? as u8);
        }
        Ok(CharVec(c_string(bytes)))
    }
}

/// The text before the first NUL, with invalid UTF-8 replaced.
fn c_string(mut bytes: Vec<u8>) -> String {
    if let Some(end) = bytes.iter().position(|b| *b == 0) {
        bytes.truncate(end);
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
