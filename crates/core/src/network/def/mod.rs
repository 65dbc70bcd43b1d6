//! The typed model of a network definition, read from the XML tree with
//! libvirt's parse-time checks (`virNetworkDefParseXML`). Every check that
//! fails points at the element or attribute (line, column, XML path) and
//! keeps libvirt's wording.
//!
//! The model is what drivers use (bridge, addresses, DHCP, DNS, forward
//! mode); the tree stays the record of what the user wrote.

pub(crate) mod dns;
mod forward;
pub(crate) mod ip;
pub(crate) mod parse;
pub(crate) mod port;

use std::net::{IpAddr, Ipv4Addr};

use crate::ids::{MacAddr, Uuid};

pub use parse::parse;

/// `<forward mode=...>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// Isolated: no `<forward>`.
    None,
    /// NAT to the outside.
    Nat,
    /// Routed, no NAT.
    Route,
    /// Routed, no firewall rules at all.
    Open,
    /// An existing host bridge, or macvtap bridge mode.
    Bridge,
    /// macvtap private mode.
    Private,
    /// macvtap VEPA mode.
    Vepa,
    /// macvtap passthrough.
    Passthrough,
    /// SR-IOV functions assigned to guests.
    Hostdev,
}

/// XML names of the forward modes, in libvirt's enum order.
const FORWARD_MODES: &[(&str, ForwardMode)] = &[
    ("none", ForwardMode::None),
    ("nat", ForwardMode::Nat),
    ("route", ForwardMode::Route),
    ("open", ForwardMode::Open),
    ("bridge", ForwardMode::Bridge),
    ("private", ForwardMode::Private),
    ("vepa", ForwardMode::Vepa),
    ("passthrough", ForwardMode::Passthrough),
    ("hostdev", ForwardMode::Hostdev),
];

impl ForwardMode {
    /// The XML word.
    pub fn as_str(self) -> &'static str {
        FORWARD_MODES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("none", |(s, _)| s)
    }

    /// The mode for an XML word.
    pub fn from_name(s: &str) -> Option<ForwardMode> {
        FORWARD_MODES.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }

    /// Whether virtkit creates and owns the bridge (the "virtual" modes).
    pub fn owns_bridge(self) -> bool {
        matches!(
            self,
            ForwardMode::None | ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
        )
    }
}

/// One entry of the forward device pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardIf {
    /// A network device by name (`<interface dev=...>`, `<forward dev=...>`).
    Netdev(String),
    /// A PCI function (`<address type='pci' .../>`).
    Pci {
        /// PCI domain.
        domain: u32,
        /// Bus.
        bus: u32,
        /// Slot.
        slot: u32,
        /// Function.
        function: u32,
    },
}

/// `<forward><nat>`: source addresses and ports for SNAT/masquerade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nat {
    /// `ipv6='yes|no'`: also NAT IPv6.
    pub ipv6: Option<bool>,
    /// `<address start end>`.
    pub addr: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `<port start end>`.
    pub ports: Option<(u32, u32)>,
}

/// `<forward>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The mode (`None` when there is no `<forward>`).
    pub mode: ForwardMode,
    /// `managed='yes'` (hostdev).
    pub managed: bool,
    /// `<driver name=...>` (hostdev).
    pub driver: Option<String>,
    /// The device pool, `dev=` first.
    pub ifs: Vec<ForwardIf>,
    /// `<pf dev=...>`.
    pub pf: Option<String>,
    /// `<nat>`.
    pub nat: Nat,
}

impl Forward {
    /// The first pool device by name (`<forward dev=...>`).
    pub fn dev(&self) -> Option<&str> {
        match self.ifs.first() {
            Some(ForwardIf::Netdev(d)) if self.pf.is_none() => Some(d),
            _ => None,
        }
    }
}

/// Lease time units (`<lease unit=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseUnit {
    /// Seconds.
    Seconds,
    /// Minutes (the default).
    Minutes,
    /// Hours.
    Hours,
}

impl LeaseUnit {
    /// The XML word.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseUnit::Seconds => "seconds",
            LeaseUnit::Minutes => "minutes",
            LeaseUnit::Hours => "hours",
        }
    }
}

/// `<lease expiry unit>`; `expiry` 0 means infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Length in `unit`s; 0 = infinite.
    pub expiry: u64,
    /// Unit.
    pub unit: LeaseUnit,
}

impl Lease {
    /// dnsmasq's notation: `infinite`, `90m`, `2h`, `300s`.
    pub fn dnsmasq(&self) -> String {
        if self.expiry == 0 {
            "infinite".into()
        } else {
            let c = self.unit.as_str().chars().next().unwrap_or('m');
            format!("{}{c}", self.expiry)
        }
    }
}

/// `<dhcp><range>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
    /// Number of addresses.
    pub size: u64,
    /// Lease time.
    pub lease: Option<Lease>,
}

/// `<dhcp><host>`: a static lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpHost {
    /// MAC address as written (IPv4).
    pub mac: Option<String>,
    /// DHCPv6 client id.
    pub id: Option<String>,
    /// Host name.
    pub name: Option<String>,
    /// Address.
    pub ip: Option<IpAddr>,
    /// Lease time.
    pub lease: Option<Lease>,
}

/// `<ip>`: an address of the bridge, with its DHCP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDef {
    /// `family` as written.
    pub family: Option<String>,
    /// The bridge's address.
    pub address: IpAddr,
    /// `netmask` (IPv4).
    pub netmask: Option<Ipv4Addr>,
    /// `prefix`.
    pub prefix: Option<u32>,
    /// `localPtr`.
    pub local_ptr: Option<bool>,
    /// DHCP ranges.
    pub ranges: Vec<DhcpRange>,
    /// Static DHCP hosts.
    pub hosts: Vec<DhcpHost>,
    /// `<bootp file server>`.
    pub bootp: Option<(String, Option<IpAddr>)>,
    /// `<tftp root>`.
    pub tftp_root: Option<String>,
}

impl IpDef {
    /// The prefix length in use: `prefix`, else the netmask's, else the
    /// class default (IPv4) or 64 (IPv6) (`virNetworkIPDefPrefix`).
    pub fn prefix_len(&self) -> Option<u8> {
        if let Some(p) = self.prefix.filter(|p| *p > 0) {
            return u8::try_from(p).ok();
        }
        if let Some(m) = self.netmask {
            return super::addr::netmask_prefix(m);
        }
        match self.address {
            IpAddr::V4(a) => super::addr::natural_prefix(a),
            IpAddr::V6(_) => Some(64),
        }
    }

    /// Whether it serves DHCP.
    pub fn has_dhcp(&self) -> bool {
        !self.ranges.is_empty() || !self.hosts.is_empty()
    }

    /// IPv4?
    pub fn is_v4(&self) -> bool {
        self.address.is_ipv4()
    }
}

/// `<route>`: a static route through a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub address: IpAddr,
    /// Destination prefix.
    pub prefix: u8,
    /// Gateway (a guest on this network).
    pub gateway: IpAddr,
    /// Metric.
    pub metric: Option<u32>,
}

/// `<dns><forwarder>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarder {
    /// Only for this domain.
    pub domain: Option<String>,
    /// Upstream server.
    pub addr: Option<IpAddr>,
    /// Upstream port.
    pub port: Option<u16>,
}

/// `<dns><host>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsHost {
    /// Address.
    pub ip: IpAddr,
    /// Names.
    pub names: Vec<String>,
}

/// `<dns><srv>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Srv {
    /// Service.
    pub service: Option<String>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Domain.
    pub domain: Option<String>,
    /// Target host.
    pub target: Option<String>,
    /// Port (0 = unset).
    pub port: u32,
    /// Priority (0 = unset).
    pub priority: u32,
    /// Weight (0 = unset).
    pub weight: u32,
}

/// `<dns><txt>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `<dns>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    /// `enable`.
    pub enable: Option<bool>,
    /// `forwardPlainNames`.
    pub forward_plain_names: Option<bool>,
    /// Upstream servers.
    pub forwarders: Vec<Forwarder>,
    /// Host records.
    pub hosts: Vec<DnsHost>,
    /// SRV records.
    pub srvs: Vec<Srv>,
    /// TXT records.
    pub txts: Vec<Txt>,
}

/// `<domain name localOnly register>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDomain {
    /// Domain name.
    pub name: String,
    /// `localOnly`.
    pub local_only: Option<bool>,
    /// `register`.
    pub register: Option<bool>,
}

/// `<portgroup>`: what matters for validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    /// Name.
    pub name: String,
    /// `default='yes'`.
    pub default: bool,
    /// Number of VLAN tags.
    pub vlan_tags: usize,
    /// `<virtualport type>` (empty string when untyped).
    pub virtualport: Option<String>,
    /// Has `<bandwidth>`.
    pub bandwidth: bool,
}

/// A whole network definition, as libvirt's parser reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Name.
    pub name: String,
    /// UUID (`None` until generated).
    pub uuid: Option<Uuid>,
    /// `ipv6='yes'`: guest-to-guest IPv6 without a gateway address.
    pub ipv6_no_gateway: bool,
    /// `<domain>`.
    pub domain: Option<DnsDomain>,
    /// `<bridge name>`.
    pub bridge: Option<String>,
    /// `<bridge zone>`.
    pub bridge_zone: Option<String>,
    /// Whether `stp` was written.
    pub stp_given: bool,
    /// STP on (default).
    pub stp: bool,
    /// Forward delay in seconds.
    pub delay: u64,
    /// `macTableManager`.
    pub mac_table_manager: Option<String>,
    /// `<mac address>`.
    pub mac: Option<MacAddr>,
    /// `<mtu size>`.
    pub mtu: Option<u32>,
    /// `<dns>`.
    pub dns: Dns,
    /// `<ip>` elements in order.
    pub ips: Vec<IpDef>,
    /// `<route>` elements.
    pub routes: Vec<Route>,
    /// `<forward>`.
    pub forward: Forward,
    /// `<portgroup>` elements.
    pub portgroups: Vec<PortGroup>,
    /// Network-level `<virtualport type>`.
    pub virtualport: Option<String>,
    /// Network-level `<bandwidth>`.
    pub bandwidth: bool,
    /// Network-level VLAN tags.
    pub vlan_tags: usize,
    /// `<dnsmasq:options>` values.
    pub dnsmasq_options: Vec<String>,
}

impl Network {
    /// The `n`th `<ip>` of a family (`None` = any).
    pub fn ip_by_family(&self, v4: Option<bool>) -> impl Iterator<Item = &IpDef> {
        self.ips
            .iter()
            .filter(move |i| v4.is_none_or(|v| i.is_v4() == v))
    }

    /// Whether the network needs a dnsmasq (`networkNeedsDnsmasq`).
    pub fn needs_dnsmasq(&self) -> bool {
        if self
            .ips
            .iter()
            .any(|i| i.has_dhcp() || i.tftp_root.is_some())
        {
            return true;
        }
        !self.ips.is_empty() && self.dns.enable != Some(false)
    }
}
