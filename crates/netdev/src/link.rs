//! Device queries (exists, index, MAC, MTU, master, ports, operstate) and the
//! generic changes that apply to any device (MAC, MTU, up/down, master, name,
//! group, delete), all over the handle's netlink connection.

use std::time::Duration;

use rtnetlink::LinkUnspec;
use rtnetlink::packet_core::Nla;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoTun, LinkAttribute, LinkFlags,
    LinkInfo as NlLinkInfo, LinkMessage, State,
};
use virtkit_core::MacAddr;

use crate::error::{NetdevError, Result};
use crate::name::validate_name;
use crate::{Netdev, nl};

/// A device's operational state (RFC 2863, as the kernel reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperState {
    /// The kernel cannot tell (typical for loopback and for taps without carrier logic).
    Unknown,
    /// A component is missing.
    NotPresent,
    /// Down.
    Down,
    /// Down because a lower device is down.
    LowerLayerDown,
    /// In a test mode.
    Testing,
    /// Waiting for an external event.
    Dormant,
    /// Up and able to pass packets.
    Up,
    /// A value newer than this crate.
    Other(u8),
}

impl From<&State> for OperState {
    fn from(s: &State) -> OperState {
        match s {
            State::Unknown => OperState::Unknown,
            State::NotPresent => OperState::NotPresent,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Testing => OperState::Testing,
            State::Dormant => OperState::Dormant,
            State::Up => OperState::Up,
            State::Other(v) => OperState::Other(*v),
            _ => OperState::Unknown,
        }
    }
}

/// Bridge-only settings, read back from IFLA_LINKINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeState {
    /// Whether STP runs (kernel or user STP).
    pub stp: bool,
    /// Forward delay.
    pub forward_delay: Duration,
}

/// tun/tap settings, read back from IFLA_LINKINFO (IFLA_TUN_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunState {
    /// TUNSETOWNER uid, if set.
    pub owner: Option<u32>,
    /// TUNSETGROUP gid, if set.
    pub group: Option<u32>,
    /// IFF_VNET_HDR.
    pub vnet_hdr: bool,
    /// TUNSETPERSIST.
    pub persistent: bool,
    /// IFF_MULTI_QUEUE.
    pub multi_queue: bool,
    /// Attached queues (open fds); the kernel reports it for multiqueue taps only.
    pub queues: Option<u32>,
}

impl TunState {
    fn from_nlas(nlas: &[InfoTun]) -> TunState {
        // netlink-packet-route 0.34 does not decode IFLA_TUN_*; read them raw
        // (linux/if_link.h: OWNER 1 u32, GROUP 2 u32, VNET_HDR 5 u8,
        // PERSIST 6 u8, MULTI_QUEUE 7 u8, NUM_QUEUES 8 u32).
        let mut st = TunState::default();
        for nla in nlas {
            let mut v = vec![0u8; nla.value_len()];
            nla.emit_value(&mut v);
            let u32_of = |v: &[u8]| {
                v.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            };
            let flag = v.first().is_some_and(|b| *b != 0);
            match nla.kind() {
                1 => st.owner = u32_of(&v),
                2 => st.group = u32_of(&v),
                5 => st.vnet_hdr = flag,
                6 => st.persistent = flag,
                7 => st.multi_queue = flag,
                8 => st.queues = u32_of(&v),
                _ => {}
            }
        }
        st
    }
}

/// What the kernel reports about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Hardware address, for Ethernet-like devices.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u32,
    /// Index of the bridge (or other master) it is enslaved to.
    pub master: Option<u32>,
    /// Operational state.
    pub operstate: OperState,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Link kind (`bridge`, `tun`, `veth`...), when the driver reports one.
    pub kind: Option<String>,
    /// Device group (0 = default).
    pub group: u32,
    /// STP and forward delay, for bridges.
    pub bridge: Option<BridgeState>,
    /// Owner, group, queues and flags, for tun/tap devices.
    pub tun: Option<TunState>,
}

/// Centiseconds (the kernel's USER_HZ clock_t for bridge timers) to a Duration.
fn from_centis(cs: u32) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

impl LinkInfo {
    pub(crate) fn from_message(msg: &LinkMessage) -> LinkInfo {
        let mut info = LinkInfo {
            name: String::new(),
            index: msg.header.index,
            mac: None,
            mtu: 0,
            master: None,
            operstate: OperState::Unknown,
            up: msg.header.flags.contains(LinkFlags::Up),
            kind: None,
            group: 0,
            bridge: None,
            tun: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => info.name = n.clone(),
                LinkAttribute::Address(a) if a.len() == 6 => {
                    let mut b = [0u8; 6];
                    b.copy_from_slice(a);
                    info.mac = Some(MacAddr(b));
                }
                LinkAttribute::Mtu(m) => info.mtu = *m,
                LinkAttribute::Controller(c) if *c != 0 => info.master = Some(*c),
                LinkAttribute::OperState(s) => info.operstate = s.into(),
                LinkAttribute::Group(g) => info.group = *g,
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            NlLinkInfo::Kind(k) => info.kind = Some(k.to_string()),
                            NlLinkInfo::Data(InfoData::Bridge(opts)) => {
                                let mut st = BridgeState {
                                    stp: false,
                                    forward_delay: Duration::ZERO,
                                };
                                for o in opts {
                                    match o {
                                        InfoBridge::StpState(s) => {
                                            st.stp = !matches!(s, BridgeStpState::Disabled)
                                        }
                                        InfoBridge::ForwardDelay(d) => {
                                            st.forward_delay = from_centis(*d)
                                        }
                                        _ => {}
                                    }
                                }
                                info.bridge = Some(st);
                            }
                            NlLinkInfo::Data(InfoData::Tun(nlas)) => {
                                info.tun = Some(TunState::from_nlas(nlas));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        info
    }
}

impl Netdev {
    /// Everything about the device `name`; [`NetdevError::NotFound`] if there is none.
    pub async fn link(&self, name: &str) -> Result<LinkInfo> {
        validate_name(name)?;
        let msg = LinkUnspec::new_with_name(name).build();
        let reply = nl::get_link(&self.inner.nl, msg)
            .await
            .map_err(|e| NetdevError::from_os(format!("look up '{name}'"), name, false, e))?;
        Ok(LinkInfo::from_message(&reply))
    }

    /// Everything about the device with interface index `index`.
    pub async fn link_by_index(&self, index: u32) -> Result<LinkInfo> {
        let msg = LinkUnspec::new_with_index(index).build();
        let label = format!("#{index}");
        let reply = nl::get_link(&self.inner.nl, msg).await.map_err(|e| {
            NetdevError::from_os(format!("look up interface index {index}"), &label, false, e)
        })?;
        Ok(LinkInfo::from_message(&reply))
    }

    /// Every device in the handle's network namespace.
    pub async fn links(&self) -> Result<Vec<LinkInfo>> {
        let all = nl::dump_links(&self.inner.nl)
            .await
            .map_err(|e| NetdevError::from_os("list network devices".into(), "", false, e))?;
        Ok(all.iter().map(LinkInfo::from_message).collect())
    }

    /// Whether a device called `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self.link(name).await {
            Ok(_) => Ok(true),
            Err(NetdevError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Interface index of `name`.
    pub async fn ifindex(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.index)
    }

    /// Hardware address of `name`.
    pub async fn mac(&self, name: &str) -> Result<MacAddr> {
        self.link(name).await?.mac.ok_or_else(|| {
            NetdevError::InvalidArg(format!("'{name}' has no Ethernet hardware address"))
        })
    }

    /// MTU of `name`.
    pub async fn mtu(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.mtu)
    }

    /// Operational state of `name`.
    pub async fn operstate(&self, name: &str) -> Result<OperState> {
        Ok(self.link(name).await?.operstate)
    }

    /// Name of the bridge (or other master) `name` is enslaved to.
    pub async fn master(&self, name: &str) -> Result<Option<String>> {
        match self.link(name).await?.master {
            Some(idx) => Ok(Some(self.link_by_index(idx).await?.name)),
            None => Ok(None),
        }
    }

    /// Names of the ports of bridge `bridge`, sorted.
    pub async fn bridge_ports(&self, bridge: &str) -> Result<Vec<String>> {
        let br = self.link(bridge).await?;
        if br.kind.as_deref() != Some("bridge") {
            return Err(NetdevError::InvalidArg(format!(
                "'{bridge}' is not a bridge (kind {})",
                br.kind.as_deref().unwrap_or("unknown")
            )));
        }
        let mut ports: Vec<String> = self
            .links()
            .await?
            .into_iter()
            .filter(|l| l.master == Some(br.index))
            .map(|l| l.name)
            .collect();
        ports.sort();
        Ok(ports)
    }

    /// Sends an RTM_SETLINK for an existing device; errors name `action`.
    pub(crate) async fn setlink(&self, name: &str, msg: LinkMessage, action: String) -> Result<()> {
        nl::ack(
            &self.inner.nl,
            RouteNetlinkMessage::SetLink(msg),
            nl::CHANGE,
        )
        .await
        .map_err(|e| NetdevError::from_os(action, name, false, e))
    }

    /// Sets the hardware address of `name` (must be unicast and non-zero).
    pub async fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()> {
        validate_name(name)?;
        check_mac(name, mac)?;
        let msg = LinkUnspec::new_with_name(name)
            .address(mac.0.to_vec())
            .build();
        self.setlink(name, msg, format!("set MAC {mac} on '{name}'"))
            .await
    }

    /// Sets the MTU of `name`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        validate_name(name)?;
        check_mtu(mtu)?;
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.setlink(name, msg, format!("set MTU {mtu} on '{name}'"))
            .await
    }

    /// Brings `name` up.
    pub async fn set_up(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let msg = LinkUnspec::new_with_name(name).up().build();
        self.setlink(name, msg, format!("bring '{name}' up")).await
    }

    /// Brings `name` down.
    pub async fn set_down(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let msg = LinkUnspec::new_with_name(name).down().build();
        self.setlink(name, msg, format!("bring '{name}' down"))
            .await
    }

    /// Enslaves `port` to `bridge` as it is (see [`Netdev::attach_to_bridge`]
    /// for libvirt's MTU rule).
    pub async fn set_master(&self, port: &str, bridge: &str) -> Result<()> {
        validate_name(port)?;
        let br = self.ifindex(bridge).await?;
        let msg = LinkUnspec::new_with_name(port).controller(br).build();
        self.setlink(port, msg, format!("attach '{port}' to bridge '{bridge}'"))
            .await
    }

    /// Attaches `port` to `bridge` the way libvirt does: first gives the port
    /// `mtu`, or without one the bridge's current MTU (so attaching never pulls
    /// the bridge's MTU down), then enslaves it. Returns the MTU used.
    pub async fn attach_to_bridge(
        &self,
        port: &str,
        bridge: &str,
        mtu: Option<u32>,
    ) -> Result<u32> {
        validate_name(port)?;
        let br = self.link(bridge).await?;
        let mtu = mtu.unwrap_or(br.mtu);
        check_mtu(mtu)?;
        // MTU and master in one message: the kernel applies IFLA_MTU before
        // IFLA_MASTER (do_setlink), so the bridge never sees the old MTU.
        let msg = LinkUnspec::new_with_name(port)
            .mtu(mtu)
            .controller(br.index)
            .build();
        self.setlink(
            port,
            msg,
            format!("attach '{port}' to bridge '{bridge}' with MTU {mtu}"),
        )
        .await?;
        Ok(mtu)
    }

    /// Takes `port` out of whatever bridge it is in.
    pub async fn detach_from_bridge(&self, port: &str) -> Result<()> {
        validate_name(port)?;
        let msg = LinkUnspec::new_with_name(port).nocontroller().build();
        self.setlink(port, msg, format!("detach '{port}' from its bridge"))
            .await
    }

    /// Renames `old` to `new`. Kernels before 6.x refuse while the device
    /// is up; the error then says to bring it down first.
    pub async fn rename(&self, old: &str, new: &str) -> Result<()> {
        validate_name(old)?;
        validate_name(new)?;
        let index = self.ifindex(old).await?;
        let msg = LinkUnspec::new_with_index(index).name(new).build();
        nl::ack(
            &self.inner.nl,
            RouteNetlinkMessage::SetLink(msg),
            nl::CHANGE,
        )
        .await
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => NetdevError::InvalidArg(format!(
                "cannot rename '{old}' to '{new}' while it is up; bring it down first"
            )),
            _ => NetdevError::from_os(format!("rename '{old}' to '{new}'"), new, true, e),
        })
    }

    /// Puts `name` into device group `group` (see [`Netdev::delete_group`]).
    pub async fn set_group(&self, name: &str, group: u32) -> Result<()> {
        validate_name(name)?;
        let msg = LinkUnspec::new_with_name(name).link_group(group).build();
        self.setlink(name, msg, format!("put '{name}' into device group {group}"))
            .await
    }

    /// Deletes the device `name` (for a veth, both ends go).
    pub async fn delete(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let msg = LinkUnspec::new_with_name(name).build();
        nl::ack(
            &self.inner.nl,
            RouteNetlinkMessage::DelLink(msg),
            nl::CHANGE,
        )
        .await
        .map_err(|e| NetdevError::from_os(format!("delete '{name}'"), name, false, e))
    }

    /// Deletes every device in device group `group` with one RTM_DELLINK.
    ///
    /// The kernel unregisters them as one batch (one RCU grace period for all
    /// instead of one per device), which is what makes tearing down a network
    /// with many taps fast; see the crate docs.
    pub async fn delete_group(&self, group: u32) -> Result<()> {
        if group == 0 {
            return Err(NetdevError::InvalidArg(
                "device group 0 is the default group of every device; refusing to delete it".into(),
            ));
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Group(group));
        let label = format!("group {group}");
        nl::ack(
            &self.inner.nl,
            RouteNetlinkMessage::DelLink(msg),
            nl::CHANGE,
        )
        .await
        .map_err(|e| NetdevError::from_os(format!("delete device group {group}"), &label, false, e))
    }
}

/// Refuses zero and multicast addresses.
pub(crate) fn check_mac(device: &str, mac: MacAddr) -> Result<()> {
    mac.check_unicast()
        .map_err(|source| NetdevError::InvalidMac {
            device: device.to_string(),
            mac,
            source,
        })
}

/// Refuses MTUs no Ethernet device accepts (the kernel checks the real range).
pub(crate) fn check_mtu(mtu: u32) -> Result<()> {
    if mtu < 68 {
        return Err(NetdevError::InvalidArg(format!(
            "MTU {mtu} is below 68, the minimum for IPv4; give 68..=65535 (typically 1500 or 9000)"
        )));
    }
    Ok(())
}
