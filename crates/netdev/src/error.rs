//! The crate's error type, and how OS and netlink failures map onto it.
//!
//! Each variant's `Display` says what failed and on which device; the
//! underlying errno is its `source` (not repeated inline). [`NetdevError::report`]
//! prints the whole chain once, and the conversion into [`virtkit_core::Error`]
//! uses it, so a user sees e.g. `Failed to set MTU 9000 on 'br0': Invalid argument (os error 22)`.

use std::io;

use virtkit_core::{ErrorDomain, ErrorKind, MacAddr};

/// Result alias for this crate.
pub type Result<T, E = NetdevError> = std::result::Result<T, E>;

/// Everything that can go wrong creating, changing or querying a host network device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetdevError {
    /// A device name or name template breaks the kernel's rules.
    #[error("Invalid network device name '{name}': {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it and what is allowed.
        reason: String,
    },

    /// A MAC address cannot be given to a device (zero or multicast).
    #[error("Invalid MAC address {mac} for '{device}'")]
    InvalidMac {
        /// The device it was meant for.
        device: String,
        /// The address.
        mac: MacAddr,
        /// Why it was refused (from [`MacAddr::check_unicast`]).
        #[source]
        source: virtkit_core::Error,
    },

    /// Some other argument is out of range.
    #[error("Invalid argument: {0}")]
    InvalidArg(String),

    /// A device of that name is already there.
    #[error(
        "Network device '{name}' already exists; pick another name or delete the existing device first"
    )]
    AlreadyExists {
        /// The name that is taken.
        name: String,
    },

    /// No device of that name (or index) in this network namespace.
    #[error("Network device '{name}' does not exist in this network namespace")]
    NotFound {
        /// The name (or `#index`) that was looked up.
        name: String,
    },

    /// The kernel refused with EPERM/EACCES: the caller lacks CAP_NET_ADMIN.
    #[error(
        "Permission denied to {action}: this needs CAP_NET_ADMIN in the device's network \
         namespace (run as root, or inside a user+net namespace you own)"
    )]
    PermissionDenied {
        /// What was being done, e.g. `create bridge 'virbr0'`.
        action: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// The kernel does not implement the operation (EOPNOTSUPP and friends).
    #[error("This kernel does not support the request to {action}")]
    Unsupported {
        /// What was being done.
        action: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// `/dev/net/tun` could not be opened.
    #[error(
        "Cannot open /dev/net/tun to {action}: load the tun module (modprobe tun) and make sure \
         the device node exists and is accessible"
    )]
    NoTun {
        /// What it was needed for.
        action: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// Any other failed system call or netlink request.
    #[error("Failed to {action}")]
    Os {
        /// What was being done, e.g. `set MTU 9000 on 'br0'`.
        action: String,
        /// The errno (or a netlink transport error).
        #[source]
        source: io::Error,
    },
}

impl NetdevError {
    /// Classifies an OS error raised while doing `action` on device `name`.
    ///
    /// `EEXIST` (and `EBUSY` from `TUNSETIFF` with `IFF_TUN_EXCL`) become
    /// [`AlreadyExists`](Self::AlreadyExists) only when the caller says the
    /// operation creates `name`; elsewhere they stay plain OS errors.
    pub(crate) fn from_os(action: String, name: &str, creating: bool, err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetdevError::PermissionDenied {
                action,
                source: err,
            },
            Some(libc::EEXIST) | Some(libc::EBUSY) if creating => NetdevError::AlreadyExists {
                name: name.to_string(),
            },
            Some(libc::ENODEV) if !creating => NetdevError::NotFound {
                name: name.to_string(),
            },
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::ENOTTY) => {
                NetdevError::Unsupported {
                    action,
                    source: err,
                }
            }
            _ => NetdevError::Os {
                action,
                source: err,
            },
        }
    }

    /// The errno behind this error, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetdevError::PermissionDenied { source, .. }
            | NetdevError::Unsupported { source, .. }
            | NetdevError::NoTun { source, .. }
            | NetdevError::Os { source, .. } => source.raw_os_error(),
            NetdevError::AlreadyExists { .. } => Some(libc::EEXIST),
            NetdevError::NotFound { .. } => Some(libc::ENODEV),
            _ => None,
        }
    }

    /// The message with every `source` appended, separated by `": "`.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            out.push_str(": ");
            out.push_str(&s.to_string());
            src = s.source();
        }
        out
    }

    /// The libvirt error kind this maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetdevError::InvalidName { .. } | NetdevError::InvalidArg(_) => ErrorKind::InvalidArg,
            NetdevError::InvalidMac { .. } => ErrorKind::InvalidMac,
            NetdevError::AlreadyExists { .. } => ErrorKind::OperationFailed,
            NetdevError::NotFound { .. } => ErrorKind::DeviceMissing,
            NetdevError::PermissionDenied { .. } => ErrorKind::OperationDenied,
            NetdevError::Unsupported { .. } => ErrorKind::OperationUnsupported,
            NetdevError::NoTun { .. } | NetdevError::Os { .. } => ErrorKind::SystemError,
        }
    }
}

impl From<NetdevError> for virtkit_core::Error {
    fn from(e: NetdevError) -> Self {
        // The core error keeps one message: flatten the chain into it once.
        let message = match &e {
            // check_unicast already says what is wrong and what to give instead.
            NetdevError::InvalidMac { device, source, .. } => {
                format!("for '{device}': {}", source.message())
            }
            _ => e.report(),
        };
        virtkit_core::Error::new(e.kind(), message).in_domain(ErrorDomain::Net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_says_cap_net_admin() {
        let e = NetdevError::from_os(
            "create bridge 'br0'".into(),
            "br0",
            true,
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(matches!(e, NetdevError::PermissionDenied { .. }));
        assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        let core: virtkit_core::Error = e.into();
        assert_eq!(core.kind(), ErrorKind::OperationDenied);
        assert!(core.message().contains("Operation not permitted"), "{core}");
    }

    #[test]
    fn eexist_only_when_creating() {
        let mk = |creating| {
            NetdevError::from_os(
                "x".into(),
                "vnet0",
                creating,
                io::Error::from_raw_os_error(libc::EEXIST),
            )
        };
        assert!(matches!(mk(true), NetdevError::AlreadyExists { .. }));
        assert!(matches!(mk(false), NetdevError::Os { .. }));
    }

    #[test]
    fn report_prints_the_chain_once() {
        let e = NetdevError::Os {
            action: "set MTU 9000 on 'br0'".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(e.to_string(), "Failed to set MTU 9000 on 'br0'");
        assert!(
            e.report()
                .starts_with("Failed to set MTU 9000 on 'br0': Invalid argument")
        );
        let core: virtkit_core::Error = e.into();
        assert_eq!(core.kind(), ErrorKind::SystemError);
        assert_eq!(core.domain(), ErrorDomain::Net);
    }

    #[test]
    fn invalid_mac_converts_to_invalid_mac_kind() {
        let mac = MacAddr([1, 2, 3, 4, 5, 6]);
        let e = NetdevError::InvalidMac {
            device: "br0".into(),
            mac,
            source: mac.check_unicast().unwrap_err(),
        };
        let core: virtkit_core::Error = e.into();
        assert_eq!(core.kind(), ErrorKind::InvalidMac);
        assert!(core.message().contains("multicast"), "{core}");
    }
}
