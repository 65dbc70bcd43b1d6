//! virtkit-remote: libvirt's RPC protocol in Rust.
//!
//! - [`xdr`]: an own XDR codec (no serde-xdr: unions need explicit
//!   discriminants, libvirt's `char` arrays take a word per byte).
//! - [`protocol`]: framing with libvirt's limits, the REMOTE and KEEPALIVE
//!   programs, the procedures virtkit speaks, `remote_error`.
//! - [`server`]: serves virtkit's drivers to any libvirt client (virsh,
//!   libvirt-python, virtkit itself); `virtkitd` puts it on sockets.
//! - [`client`]: the `remote` driver: URIs with a transport or a host
//!   (`qemu+unix:///system?socket=...`, `test+tcp://host/default`,
//!   `qemu+tls://...`, `qemu+ssh://user@host/system`) reach virtkitd or
//!   libvirtd.
//!
//! Streams are served for the guest console (both directions) and
//! screenshots; other stream procedures (volume upload and download,
//! channels, migration tunnels), sparse-stream holes and file-descriptor
//! passing are not implemented: such calls get a clean "not implemented"
//! or "not supported" error and the connection stays usable.

#[macro_use]
pub mod xdr;
pub mod client;
pub mod protocol;
pub mod server;

pub use client::RemoteDriver;

/// The library version reported by `virConnectGetLibVersion`
/// (major * 1,000,000 + minor * 1,000 + micro).
pub const LIB_VERSION: u64 = {
    const fn parse(s: &str) -> u64 {
        let b = s.as_bytes();
        let mut i = 0;
        let mut part = 0u64;
        let mut total = 0u64;
        while i < b.len() {
            if b[i] == b'.' {
                total = total * 1000 + part;
                part = 0;
            } else if b[i] >= b'0' && b[i] <= b'9' {
                part = part * 10 + (b[i] - b'0') as u64;
            } else {
                break;
            }
            i += 1;
        }
        total * 1000 + part
    }
    parse(env!("CARGO_PKG_VERSION"))
};

virtkit_core::register_driver!(client::RemoteDriver);
