//! dnsmasq for a network: its configuration ([`conf`]), the supervised
//! process ([`process`]) and its lease file ([`leases`]).

pub mod conf;
pub mod leases;
pub mod process;

pub use conf::{ConfParams, DnsmasqCaps, DnsmasqConfig, generate, host_file_paths};
