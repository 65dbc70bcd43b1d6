//! virtkit-network: libvirt's virtual networks on the host.
//!
//! A network with a virtkit-owned bridge (forward mode nat, route, open or
//! none) starts the way libvirt's network driver starts it
//! (`lifecycle`): a bridge created with its MAC, its MTU, STP, IPv6
//! sysctls, nftables rules in virtkit's own table ([`firewall`]),
//! addresses, link up, forwarding, then a supervised dnsmasq for DHCP, DNS
//! and IPv6 router advertisements ([`dnsmasq`]). Any failure undoes what was
//! done, in reverse order; destroy removes everything.
//!
//! - [`driver`]: the `network:///` URIs and the core traits.
//! - [`service::Service`]: one instance (one directory layout, [`paths`]),
//!   shared by its connections, with the definitions and live state on
//!   disk ([`state`]); a new process finds running networks again.
//! - [`port`]: the port API the QEMU and LXC drivers use for
//!   `<interface type='network'>`.
//!
//! Everything acts in the network namespace of the thread that first opened
//! the instance (`nsexec`), which is how the tests run whole networks in
//! throwaway namespaces.

pub mod dnsmasq;
pub mod driver;
pub mod error;
pub mod firewall;
mod hostnet;
mod lifecycle;
mod nsexec;
pub mod paths;
pub mod port;
pub mod service;
pub mod state;

pub use driver::{NetworkConnection, NetworkDriver};
pub use error::{NetworkError, Result};
pub use paths::Layout;
pub use port::{NetworkPort, PortRequest};
pub use service::Service;
