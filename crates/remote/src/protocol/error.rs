//! libvirt's `remote_error` and its mapping to and from
//! [`virtkit_core::Error`]: code, domain and the complete message travel
//! unchanged, so a virsh talking to virtkitd prints the same words as one
//! talking to libvirt, and virtkit prints what libvirtd said.

use virtkit_core::{Error, ErrorKind};

use super::remote::RemoteError;
use crate::xdr::XdrError;

/// `VIR_ERR_ERROR`: the level of every error virtkit reports.
const LEVEL_ERROR: i32 = 2;

impl RemoteError {
    /// The wire form of an error.
    pub fn from_error(e: &Error) -> RemoteError {
        RemoteError {
            code: e.raw_code(),
            domain: e.raw_domain(),
            message: Some(e.to_string()),
            level: LEVEL_ERROR,
            ..RemoteError::default()
        }
    }

    /// The error this describes.
    pub fn into_error(self) -> Error {
        let message = self
            .message
            .unwrap_or_else(|| format!("unknown error (code {})", self.code));
        Error::from_remote(self.code, self.domain, message)
    }
}

/// An argument body that does not decode: libvirt answers "Unable to
/// decode message payload".
pub fn bad_args(proc_name: &str, e: &XdrError) -> Error {
    Error::new(
        ErrorKind::Rpc,
        format!("cannot decode the arguments of {proc_name}: {e}"),
    )
    .in_domain(virtkit_core::ErrorDomain::Rpc)
}

/// A reply body that does not decode.
pub fn bad_reply(proc_name: &str, e: &XdrError) -> Error {
    Error::new(
        ErrorKind::Rpc,
        format!("cannot decode the reply to {proc_name} from the server: {e}"),
    )
    .in_domain(virtkit_core::ErrorDomain::Rpc)
}
