//! libvirt's RPC protocol: message header and framing ([`header`]), the
//! argument and return structures of the REMOTE program ([`remote`]), the
//! procedure table ([`procs`]) and the error structure ([`error`]).
//!
//! Numbers and layouts follow libvirt's `virnetprotocol.x` and
//! `remote_protocol.x`; only ever-appended procedure numbers are used, so
//! any libvirt since 1.x interoperates.

pub mod convert;
pub mod error;
pub mod frame;
pub mod header;
pub mod procs;
pub mod remote;

/// The REMOTE program (`REMOTE_PROGRAM`).
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// The QEMU-specific program (monitor passthrough), not served.
pub const QEMU_PROGRAM: u32 = 0x2000_8087;
/// The LXC-specific program, not served.
pub const LXC_PROGRAM: u32 = 0x0006_8000;
/// The admin program, not served.
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
/// The keepalive program ("keep").
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// Version of every program.
pub const PROTOCOL_VERSION: u32 = 1;

/// Keepalive procedures.
pub mod keepalive {
    /// PING: answer with PONG.
    pub const PING: i32 = 1;
    /// PONG: the answer to PING.
    pub const PONG: i32 = 2;
}

/// Size of the length word plus the header.
pub const HEADER_LEN: usize = 4 + 24;
/// Largest message, length word included (`VIR_NET_MESSAGE_MAX` + 4).
pub const MESSAGE_MAX: usize = 33_554_432 + 4;
/// Largest payload after the header (`VIR_NET_MESSAGE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 33_554_408;
/// Largest list of domains (`REMOTE_DOMAIN_LIST_MAX`).
pub const DOMAIN_LIST_MAX: u32 = 16384;
/// Largest list of networks.
pub const NETWORK_LIST_MAX: u32 = 16384;
/// Largest list of host interfaces.
pub const INTERFACE_LIST_MAX: u32 = 16384;
/// Largest list of storage pools.
pub const STORAGE_POOL_LIST_MAX: u32 = 16384;
/// Largest list of storage volumes.
pub const STORAGE_VOL_LIST_MAX: u32 = 16384;
/// Largest list of authentication types.
pub const AUTH_TYPE_LIST_MAX: u32 = 20;
/// Largest list of domain messages.
pub const DOMAIN_MESSAGES_MAX: u32 = 2048;
/// Most interfaces in an address answer (`REMOTE_DOMAIN_INTERFACE_MAX`).
pub const DOMAIN_INTERFACE_MAX: u32 = 2048;
/// Most addresses of one interface (`REMOTE_DOMAIN_IP_ADDR_MAX`).
pub const DOMAIN_IP_ADDR_MAX: u32 = 2048;
/// Largest list of DHCP leases (`REMOTE_NETWORK_DHCP_LEASES_MAX`).
pub const NETWORK_DHCP_LEASES_MAX: u32 = 65536;
/// Most typed parameters in one domain's statistics
/// (`REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX` of libvirt 9.0; later
/// versions accept more, 9.0 clients refuse more).
pub const CONNECT_GET_ALL_DOMAIN_STATS_MAX: u32 = 4096;
/// Most disk I/O limits (`REMOTE_DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX`).
pub const DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX: u32 = 32;
/// Most block statistics (`REMOTE_DOMAIN_BLOCK_STATS_PARAMETERS_MAX`).
pub const DOMAIN_BLOCK_STATS_PARAMETERS_MAX: u32 = 16;
/// Largest payload of one stream data message
/// (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX`), what libvirt sends at most.
pub const STREAM_CHUNK_MAX: usize = 262_120;
/// `VIR_SECURITY_MODEL_BUFLEN`.
pub const SECURITY_MODEL_MAX: u32 = 256 + 1;
/// `VIR_SECURITY_DOI_BUFLEN`.
pub const SECURITY_DOI_MAX: u32 = 256 + 1;
/// `VIR_SECURITY_LABEL_BUFLEN`.
pub const SECURITY_LABEL_MAX: u32 = 4096 + 1;

/// Driver features asked with `CONNECT_SUPPORTS_FEATURE` (`virDrvFeature`).
pub mod feature {
    /// The driver is the remote driver.
    pub const REMOTE: i32 = 2;
    /// Typed parameters may carry strings.
    pub const TYPED_PARAM_STRING: i32 = 9;
    /// The keepalive program is served.
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    /// Event callbacks carry a callback id (procedures 316 on).
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    /// Connection-close callbacks (procedures 360/361).
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
    /// `virNetworkUpdate` takes its arguments in the documented order.
    pub const NETWORK_UPDATE_HAS_CORRECT_ORDER: i32 = 16;
}
