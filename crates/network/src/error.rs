//! The network driver's error type. Each variant's message says what failed
//! and what to do; the conversion into [`virtkit_core::Error`] picks
//! libvirt's error kind so the CLI and the daemon report it as libvirt would.

use virtkit_core::{ErrorDomain, ErrorKind};

/// Result alias for this crate.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// What can go wrong running a network on the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// An error virtkit-core already phrased (XML, lookups, states).
    #[error("{0}")]
    Core(#[from] virtkit_core::Error),

    /// A host device operation failed (with the libvirt kind netdev gave
    /// it: invalid name, device missing, permission denied, ...).
    #[error("{message}")]
    Netdev {
        /// The kind of failure.
        kind: ErrorKind,
        /// The whole message, causes included.
        message: String,
    },

    /// A helper program (dnsmasq, nft, ip) could not run or failed.
    #[error("{program} failed: {detail}")]
    Helper {
        /// The program.
        program: String,
        /// What it printed or why it could not start, and what to do.
        detail: String,
    },

    /// A file of the driver's state could not be read or written.
    #[error("cannot {action} '{path}'")]
    File {
        /// What was being done (`write`, `read`, `create directory`).
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The network's configuration cannot be run as asked.
    #[error("{0}")]
    Config(String),

    /// The network is in the wrong state for the operation.
    #[error("{0}")]
    State(String),

    /// Something else on the host failed.
    #[error("{0}")]
    Host(String),
}

impl NetworkError {
    /// A file error.
    pub fn file(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        NetworkError::File {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<virtkit_netdev::NetdevError> for NetworkError {
    fn from(e: virtkit_netdev::NetdevError) -> Self {
        NetworkError::Netdev {
            kind: e.kind(),
            message: e.report(),
        }
    }
}

impl From<NetworkError> for virtkit_core::Error {
    fn from(e: NetworkError) -> Self {
        let kind = match &e {
            NetworkError::Core(c) => return c.clone(),
            NetworkError::Netdev { kind, .. } => *kind,
            NetworkError::Host(_) | NetworkError::Helper { .. } => ErrorKind::Internal,
            NetworkError::File { .. } => ErrorKind::SystemError,
            NetworkError::Config(_) => ErrorKind::ConfigUnsupported,
            NetworkError::State(_) => ErrorKind::OperationInvalid,
        };
        let msg = match &e {
            NetworkError::File { source, .. } => format!("{e}: {source}"),
            _ => e.to_string(),
        };
        virtkit_core::Error::new(kind, msg).in_domain(ErrorDomain::Network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netdev_failures_keep_their_kind() {
        let e = virtkit_netdev::NetdevError::InvalidArg("bad".into());
        let kind = e.kind();
        let core: virtkit_core::Error = NetworkError::from(e).into();
        assert_eq!(core.kind(), kind);
        assert_eq!(core.kind(), ErrorKind::InvalidArg);
    }
}
