//! The one error type every virtkit API returns.
//!
//! An [`Error`] carries a [`ErrorKind`] that maps one-to-one onto libvirt's
//! `virErrorNumber` (so the daemon can put it on the wire unchanged and virsh
//! prints the same words), the [`ErrorDomain`] it came from, and a detail
//! message that says what and where. Its `Display` is libvirt's full message:
//! the kind's prefix followed by the detail, e.g.
//! `Requested operation is not valid: domain is not running`.

use std::fmt;

/// Result alias used across virtkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in an XML document something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlLocation {
    /// Name of the document (a file path, or `(domain_definition)` for a string).
    pub source: Option<String>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// XPath-like location, e.g. `/domain/devices/disk[2]/source/@file`.
    pub path: String,
}

impl fmt::Display for XmlLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(src) = &self.source {
            write!(f, "{src}:")?;
        }
        write!(f, "{}:{}", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, " ({})", self.path)?;
        }
        Ok(())
    }
}

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $code:expr, $prefix:expr; )*) => {
        /// The kind of an error, with libvirt's `virErrorNumber` as its code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// libvirt's numeric error code (`virErrorNumber`).
            pub fn code(self) -> i32 {
                match self { $( ErrorKind::$variant => $code, )* }
            }

            /// The kind for a libvirt error code; unknown codes become `Internal`.
            pub fn from_code(code: i32) -> ErrorKind {
                match code { $( $code => ErrorKind::$variant, )* _ => ErrorKind::Internal }
            }

            /// The words libvirt puts before the detail message (empty when the
            /// detail is printed alone).
            pub fn prefix(self) -> &'static str {
                match self { $( ErrorKind::$variant => $prefix, )* }
            }
        }
    };
}

error_kinds! {
    /// Something went wrong inside virtkit or a hypervisor.
    Internal = 1, "internal error";
    /// The driver does not implement this function.
    NoSupport = 3, "this function is not supported by the connection driver";
    /// A host name could not be resolved.
    UnknownHost = 4, "unknown host";
    /// No connection driver could be opened for a URI.
    NoConnect = 5, "no connection driver available";
    /// The connection is not valid (closed).
    InvalidConn = 6, "invalid connection pointer in";
    /// The domain handle is not valid.
    InvalidDomain = 7, "invalid domain pointer in";
    /// An argument is invalid.
    InvalidArg = 8, "invalid argument";
    /// An operation failed.
    OperationFailed = 9, "operation failed";
    /// Wrong OS type in a definition.
    OsType = 16, "unknown OS type";
    /// A definition has no name.
    NoName = 21, "missing name information in";
    /// A definition has no OS section.
    NoOs = 22, "missing operating system information for";
    /// An XML document is malformed or describes something invalid.
    XmlError = 27, "XML error";
    /// A domain of that name or UUID exists already.
    DomExist = 28, "operation failed";
    /// The operation is forbidden (read-only connection, policy).
    OperationDenied = 29, "operation forbidden";
    /// A file could not be opened.
    OpenFailed = 30, "failed to open";
    /// A file could not be read.
    ReadFailed = 31, "failed to read";
    /// A configuration could not be parsed.
    ParseFailed = 32, "failed to parse";
    /// A configuration file has a syntax error.
    ConfSyntax = 33, "configuration file syntax error";
    /// A file could not be written.
    WriteFailed = 34, "failed to write";
    /// XML detail error (libxml2-level failure).
    XmlDetail = 35, "";
    /// The network handle is not valid.
    InvalidNetwork = 36, "invalid network pointer in";
    /// A network of that name or UUID exists already.
    NetworkExist = 37, "this network exists already";
    /// A system call failed.
    SystemError = 38, "";
    /// An RPC failed.
    Rpc = 39, "RPC error";
    /// No domain matches.
    NoDomain = 42, "Domain not found";
    /// No network matches.
    NoNetwork = 43, "Network not found";
    /// A MAC address is invalid.
    InvalidMac = 44, "invalid MAC address";
    /// Authentication failed.
    AuthFailed = 45, "authentication failed";
    /// No storage pool matches.
    NoStoragePool = 49, "Storage pool not found";
    /// No storage volume matches.
    NoStorageVol = 50, "Storage volume not found";
    /// No node device matches.
    NoNodeDevice = 53, "Node device not found";
    /// The operation is not valid in the object's current state.
    OperationInvalid = 55, "Requested operation is not valid";
    /// No host interface matches.
    NoInterface = 57, "Interface not found";
    /// The configuration asks for something the driver does not support.
    ConfigUnsupported = 67, "unsupported configuration";
    /// A deadline passed.
    OperationTimeout = 68, "Timed out during operation";
    /// An argument value is not supported.
    ArgumentUnsupported = 74, "argument unsupported";
    /// The operation was aborted.
    OperationAborted = 78, "operation aborted";
    /// A value does not fit.
    Overflow = 82, "value too large";
    /// The driver cannot do this operation.
    OperationUnsupported = 84, "Operation not supported";
    /// The guest agent does not answer.
    AgentUnresponsive = 86, "Guest agent is not responding";
    /// A resource is busy.
    ResourceBusy = 87, "resource busy";
    /// Access was denied by policy.
    AccessDenied = 88, "access denied";
    /// A document does not validate against its schema.
    XmlInvalidSchema = 92, "XML document failed to validate against schema";
    /// A device is missing.
    DeviceMissing = 99, "device not found";
}

/// The part of virtkit (libvirt's `virErrorDomain`) an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i32)]
pub enum ErrorDomain {
    /// Unspecified.
    None = 0,
    /// XML parsing.
    Xml = 5,
    /// Domain handling (generic).
    Dom = 6,
    /// RPC layer.
    Rpc = 7,
    /// Configuration files.
    Conf = 9,
    /// QEMU driver.
    Qemu = 10,
    /// Test driver.
    Test = 12,
    /// Remote driver.
    Remote = 13,
    /// LXC driver.
    Lxc = 17,
    /// Network driver.
    Network = 19,
    /// Domain configuration.
    Domain = 20,
    /// Host network devices.
    Net = 11,
    /// URI handling.
    Uri = 45,
    /// Xen (libxl).
    Libxl = 41,
    /// VMware ESX.
    Esx = 28,
    /// Hyper-V.
    Hyperv = 43,
    /// VirtualBox.
    Vbox = 25,
    /// bhyve.
    Bhyve = 57,
}

const ALL_DOMAINS: &[ErrorDomain] = &[
    ErrorDomain::None,
    ErrorDomain::Xml,
    ErrorDomain::Dom,
    ErrorDomain::Rpc,
    ErrorDomain::Conf,
    ErrorDomain::Qemu,
    ErrorDomain::Test,
    ErrorDomain::Remote,
    ErrorDomain::Lxc,
    ErrorDomain::Network,
    ErrorDomain::Domain,
    ErrorDomain::Net,
    ErrorDomain::Uri,
    ErrorDomain::Libxl,
    ErrorDomain::Esx,
    ErrorDomain::Hyperv,
    ErrorDomain::Vbox,
    ErrorDomain::Bhyve,
];

impl ErrorDomain {
    /// libvirt's numeric `virErrorDomain`.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The domain for libvirt's number; unknown numbers become `None`.
    pub fn from_code(code: i32) -> ErrorDomain {
        ALL_DOMAINS
            .iter()
            .copied()
            .find(|d| d.code() == code)
            .unwrap_or(ErrorDomain::None)
    }
}

/// Detail for errors that need more than a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorDetail {
    /// Nothing beyond the message.
    None,
    /// Where in an XML document the problem is.
    Xml(XmlLocation),
    /// An error received from a peer over RPC: the message is printed as
    /// sent, and libvirt's raw numbers are kept (they may name codes or
    /// domains virtkit has no variant for).
    Remote {
        /// libvirt's `virErrorNumber`.
        code: i32,
        /// libvirt's `virErrorDomain`.
        domain: i32,
    },
    /// The message stands alone, without the kind's prefix (libvirt's
    /// argument checks, e.g. "unsupported flags (0x1) in function ...").
    Bare,
    /// A driver cannot do an operation.
    Unsupported {
        /// Driver name, e.g. `test`.
        driver: String,
        /// Operation name, e.g. `domain.reset`.
        operation: String,
    },
}

/// virtkit's error: a libvirt error kind, where it came from, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    domain: ErrorDomain,
    message: String,
    detail: ErrorDetail,
}

impl Error {
    /// A new error of `kind` with a detail message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            domain: ErrorDomain::None,
            message: message.into(),
            detail: ErrorDetail::None,
        }
    }

    /// Sets the domain the error comes from.
    pub fn in_domain(mut self, domain: ErrorDomain) -> Error {
        self.domain = domain;
        self
    }

    /// `Internal` error.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// libvirt's refusal of flags a function does not take, with libvirt's
    /// flag bits and function name (printed without a prefix, as libvirt does).
    pub fn unsupported_flags(flags: u32, function: &str) -> Error {
        let mut e = Error::new(
            ErrorKind::InvalidArg,
            format!("unsupported flags (0x{flags:x}) in function {function}"),
        );
        e.detail = ErrorDetail::Bare;
        e
    }
    /// `InvalidArg` error.
    pub fn invalid_arg(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArg, message)
    }

    /// `OperationInvalid` error: the object is in the wrong state.
    pub fn operation_invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::OperationInvalid, message)
    }

    /// `OperationDenied` error.
    pub fn denied(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::OperationDenied, message)
    }

    /// `NoDomain` error.
    pub fn no_domain(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NoDomain, message).in_domain(ErrorDomain::Domain)
    }

    /// `NoNetwork` error.
    pub fn no_network(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NoNetwork, message).in_domain(ErrorDomain::Network)
    }

    /// A driver cannot do `operation`: the typed "unsupported" error.
    pub fn unsupported(driver: &str, operation: &str) -> Error {
        Error {
            kind: ErrorKind::NoSupport,
            domain: ErrorDomain::None,
            message: format!("{operation} (driver '{driver}')"),
            detail: ErrorDetail::Unsupported {
                driver: driver.to_string(),
                operation: operation.to_string(),
            },
        }
    }

    /// An XML error at a location.
    pub fn xml(message: impl Into<String>, location: XmlLocation) -> Error {
        Error {
            kind: ErrorKind::XmlError,
            domain: ErrorDomain::Xml,
            message: message.into(),
            detail: ErrorDetail::Xml(location),
        }
    }

    /// An error of `kind` located in an XML document: for checks libvirt
    /// reports with a kind other than `XmlError` (`unsupported
    /// configuration`, ...) that virtkit can still point at.
    pub fn xml_with_kind(
        kind: ErrorKind,
        message: impl Into<String>,
        location: XmlLocation,
    ) -> Error {
        Error {
            kind,
            domain: ErrorDomain::Xml,
            message: message.into(),
            detail: ErrorDetail::Xml(location),
        }
    }

    /// An error received over RPC: `message` is libvirt's complete text
    /// (prefix included), printed unchanged; `code` and `domain` are kept
    /// even when virtkit has no kind or domain for them.
    pub fn from_remote(code: i32, domain: i32, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::from_code(code),
            domain: ErrorDomain::from_code(domain),
            message: message.into(),
            detail: ErrorDetail::Remote { code, domain },
        }
    }

    /// libvirt's error code: the peer's raw number for remote errors.
    pub fn raw_code(&self) -> i32 {
        match self.detail {
            ErrorDetail::Remote { code, .. } => code,
            _ => self.kind.code(),
        }
    }

    /// libvirt's error domain: the peer's raw number for remote errors.
    pub fn raw_domain(&self) -> i32 {
        match self.detail {
            ErrorDetail::Remote { domain, .. } => domain,
            _ => self.domain.code(),
        }
    }

    /// An error from a failed system call, with what was being done.
    pub fn system(context: impl fmt::Display, err: &std::io::Error) -> Error {
        Error::new(ErrorKind::SystemError, format!("{context}: {err}"))
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where it comes from.
    pub fn domain(&self) -> ErrorDomain {
        self.domain
    }

    /// The detail message, without the kind's prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Extra structured detail.
    pub fn detail(&self) -> &ErrorDetail {
        &self.detail
    }

    /// The XML location, for XML errors.
    pub fn xml_location(&self) -> Option<&XmlLocation> {
        match &self.detail {
            ErrorDetail::Xml(loc) => Some(loc),
            _ => None,
        }
    }

    /// Whether this is the typed "driver cannot do this" error.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.detail, ErrorDetail::Unsupported { .. })
    }

    /// Prefixes the message with context, keeping kind and detail.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.kind.prefix();
        match (&self.detail, prefix.is_empty()) {
            (ErrorDetail::Remote { .. } | ErrorDetail::Bare, _) => f.write_str(&self.message),
            (ErrorDetail::Xml(loc), _) => {
                write!(f, "{prefix}: {loc}: {}", self.message)
            }
            (_, true) => f.write_str(&self.message),
            (_, false) if self.message.is_empty() => f.write_str(prefix),
            (_, false) => write!(f, "{prefix}: {}", self.message),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_libvirt_prefix_and_detail() {
        let e = Error::operation_invalid("domain is not running");
        assert_eq!(
            e.to_string(),
            "Requested operation is not valid: domain is not running"
        );
        assert_eq!(e.kind().code(), 55);
        let e = Error::no_network("no network with matching name 'x'");
        assert_eq!(
            e.to_string(),
            "Network not found: no network with matching name 'x'"
        );
    }

    #[test]
    fn xml_errors_carry_position_and_path() {
        let e = Error::xml(
            "expected an unsigned integer, got 'abc'",
            XmlLocation {
                source: Some("vm.xml".into()),
                line: 3,
                column: 11,
                path: "/domain/memory".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "XML error: vm.xml:3:11 (/domain/memory): expected an unsigned integer, got 'abc'"
        );
        assert_eq!(e.xml_location().map(|l| l.line), Some(3));
    }

    #[test]
    fn codes_round_trip() {
        for k in [
            ErrorKind::NoDomain,
            ErrorKind::OperationDenied,
            ErrorKind::XmlError,
            ErrorKind::NoSupport,
        ] {
            assert_eq!(ErrorKind::from_code(k.code()), k);
        }
        assert!(Error::unsupported("test", "domain.reset").is_unsupported());
        assert_eq!(ErrorDomain::from_code(12), ErrorDomain::Test);
    }

    #[test]
    fn remote_errors_print_as_sent_and_keep_raw_numbers() {
        let e = Error::from_remote(
            55,
            12,
            "Requested operation is not valid: domain is not running",
        );
        assert_eq!(e.kind(), ErrorKind::OperationInvalid);
        assert_eq!(e.domain(), ErrorDomain::Test);
        assert_eq!(
            e.to_string(),
            "Requested operation is not valid: domain is not running"
        );
        let e = Error::from_remote(1001, 999, "something new");
        assert_eq!((e.raw_code(), e.raw_domain()), (1001, 999));
        assert_eq!(e.to_string(), "something new");
    }
}
