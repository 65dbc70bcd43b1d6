//! Reading length-prefixed messages from a byte stream with libvirt's
//! limits. Memory grows with the bytes actually received, so a peer that
//! announces 32 MiB and then stalls costs 64 KiB, not 32 MiB.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{HEADER_LEN, MESSAGE_MAX};

/// Why no message could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length word is below the header size.
    #[error("message length {0} is below the minimum of {HEADER_LEN} bytes")]
    TooShort(u32),
    /// The length word is above the maximum.
    #[error("message length {0} exceeds the maximum of {max} bytes", max = MESSAGE_MAX)]
    TooLong(u32),
    /// The stream ended inside a message.
    #[error("connection closed in the middle of a message ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// Reading failed.
    #[error("cannot read from the connection: {0}")]
    Io(#[from] std::io::Error),
}

const CHUNK: usize = 64 * 1024;

/// Reads one message and returns it without its length word (header +
/// body). `Ok(None)` is a clean end of stream between messages.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len_buf[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { got, want: 4 });
        }
        got += n;
    }
    let len = u32::from_be_bytes(len_buf);
    if (len as usize) < HEADER_LEN {
        return Err(FrameError::TooShort(len));
    }
    if len as usize > max.min(MESSAGE_MAX) {
        return Err(FrameError::TooLong(len));
    }
    let want = len as usize - 4;
    let mut buf = Vec::with_capacity(want.min(CHUNK));
    while buf.len() < want {
        if buf.capacity() == buf.len() {
            buf.reserve((want - buf.len()).min(buf.len().max(CHUNK)));
        }
        let room = (want - buf.len()).min(buf.capacity() - buf.len());
        let n = (&mut *r).take(room as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: buf.len() + 4,
                want: len as usize,
            });
        }
    }
    Ok(Some(buf))
}
