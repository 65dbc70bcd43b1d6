//! Bridges, created with their MAC address (libvirt commit 13ec827052fc).
//!
//! A bridge whose MAC was never set by userspace takes the lowest MAC of its
//! ports and recomputes it on every attach and detach; since systemd 242, udev
//! may also give it a "persistent" MAC of its own. Giving the MAC in the very
//! request that creates the bridge (IFLA_ADDRESS in RTM_NEWLINK) marks it as
//! set by userspace (`addr_assign_type` 3) before anyone can see another one,
//! so it stays exactly what the network's XML says. The MTU is then set in a
//! separate request, because an MTU given at creation is not treated as
//! user-set and the first smaller port would pull it down.
//!
//! Paths: netlink (normal), ioctl (`SIOCBRADDBR` + `SIOCSIFHWADDR` +
//! `SIOCSIFMTU`, used when the kernel answers the netlink request with
//! EOPNOTSUPP, and selectable so tests run both), and FreeBSD (see `bsd.rs`).

use std::time::Duration;

use rtnetlink::LinkBridge;
use rtnetlink::LinkMessageBuilder;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::BridgeStpState;
use virtkit_core::MacAddr;

use crate::error::{NetdevError, Result};
use crate::link::{LinkInfo, check_mac, check_mtu};
use crate::name::{MAX_NAME_LEN, validate_name};
use crate::{Netdev, nl};

/// Which kernel interface creates a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BridgeCreatePath {
    /// Netlink, falling back to the ioctls when the kernel answers EOPNOTSUPP
    /// (what libvirt does).
    #[default]
    Auto,
    /// Netlink only.
    Netlink,
    /// The ioctls only.
    Ioctl,
}

/// A host bridge. Dropping this value leaves the bridge in place: bridges
/// outlive the daemon that made them; call [`Bridge::delete`] to remove one.
#[derive(Debug, Clone)]
pub struct Bridge {
    nd: Netdev,
    name: String,
}

impl Bridge {
    /// Creates bridge `name` with MAC `mac` (mandatory: see the module docs),
    /// then sets `mtu` if given. The bridge is left down: bring it up with
    /// [`Bridge::up`] once addresses and firewall rules are in place, as
    /// libvirt's network start does. Nothing is left behind on error.
    pub async fn create(nd: &Netdev, name: &str, mac: MacAddr, mtu: Option<u32>) -> Result<Bridge> {
        Bridge::create_with(nd, name, mac, mtu, BridgeCreatePath::Auto).await
    }

    /// [`Bridge::create`] through a chosen path.
    pub async fn create_with(
        nd: &Netdev,
        name: &str,
        mac: MacAddr,
        mtu: Option<u32>,
        path: BridgeCreatePath,
    ) -> Result<Bridge> {
        validate_name(name)?;
        check_mac(name, mac)?;
        if let Some(m) = mtu {
            check_mtu(m)?;
        }
        let use_ioctl = match path {
            BridgeCreatePath::Ioctl => true,
            BridgeCreatePath::Netlink | BridgeCreatePath::Auto => {
                match create_netlink(nd, name, mac).await {
                    Ok(()) => false,
                    Err(e)
                        if path == BridgeCreatePath::Auto
                            && matches!(e, NetdevError::Unsupported { .. }) =>
                    {
                        true
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if use_ioctl {
            create_ioctl(nd, name, mac, mtu).await?;
        } else if let Some(m) = mtu {
            // A separate RTM_SETLINK: only an MTU set after creation sticks.
            if let Err(e) = nd.set_mtu(name, m).await {
                let _ = nd.delete(name).await;
                return Err(e);
            }
        }
        Ok(Bridge {
            nd: nd.clone(),
            name: name.to_string(),
        })
    }

    /// An existing bridge; fails if `name` is missing or not a bridge.
    pub async fn open(nd: &Netdev, name: &str) -> Result<Bridge> {
        let info = nd.link(name).await?;
        if info.kind.as_deref() != Some("bridge") {
            return Err(NetdevError::InvalidArg(format!(
                "'{name}' is not a bridge (kind {})",
                info.kind.as_deref().unwrap_or("unknown")
            )));
        }
        Ok(Bridge {
            nd: nd.clone(),
            name: name.to_string(),
        })
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the kernel reports about it (MAC, MTU, STP, forward delay...).
    pub async fn info(&self) -> Result<LinkInfo> {
        self.nd.link(&self.name).await
    }

    /// Brings the bridge up.
    pub async fn up(&self) -> Result<()> {
        self.nd.set_up(&self.name).await
    }

    /// Brings the bridge down.
    pub async fn down(&self) -> Result<()> {
        self.nd.set_down(&self.name).await
    }

    /// Sets the bridge's MTU (sticks even when smaller ports are attached).
    pub async fn set_mtu(&self, mtu: u32) -> Result<()> {
        self.nd.set_mtu(&self.name, mtu).await
    }

    /// Names of the bridge's ports.
    pub async fn ports(&self) -> Result<Vec<String>> {
        self.nd.bridge_ports(&self.name).await
    }

    /// Turns STP on (the kernel's implementation inside a network namespace)
    /// or off.
    pub async fn set_stp(&self, on: bool) -> Result<()> {
        let state = if on {
            BridgeStpState::KernelStp
        } else {
            BridgeStpState::Disabled
        };
        let msg = LinkMessageBuilder::<LinkBridge>::new(&self.name)
            .stp_state(state)
            .build();
        self.changelink(
            msg,
            format!(
                "turn STP {} on bridge '{}'",
                if on { "on" } else { "off" },
                self.name
            ),
        )
        .await
    }

    /// Sets the forward delay (libvirt's `<bridge delay='N'>` is N seconds).
    /// With STP on the kernel accepts 2 to 30 seconds; with STP off, anything.
    pub async fn set_forward_delay(&self, delay: Duration) -> Result<()> {
        // The kernel counts bridge timers in USER_HZ ticks (centiseconds).
        let cs = u32::try_from(delay.as_millis() / 10)
            .map_err(|_| NetdevError::InvalidArg(format!("forward delay {delay:?} is too long")))?;
        let msg = LinkMessageBuilder::<LinkBridge>::new(&self.name)
            .forward_delay(cs)
            .build();
        self.changelink(
            msg,
            format!("set forward delay {delay:?} on bridge '{}'", self.name),
        )
        .await
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ERANGE) => NetdevError::InvalidArg(format!(
                "forward delay {delay:?} on bridge '{}' is out of range: with STP on the kernel \
                 accepts 2 to 30 seconds",
                self.name
            )),
            _ => e,
        })
    }

    async fn changelink(
        &self,
        msg: rtnetlink::packet_route::link::LinkMessage,
        action: String,
    ) -> Result<()> {
        // RTM_NEWLINK without NLM_F_CREATE on an existing device is the
        // kernel's "changelink": the only way to set IFLA_INFO_DATA options.
        nl::ack(
            &self.nd.inner.nl,
            RouteNetlinkMessage::NewLink(msg),
            nl::CHANGE,
        )
        .await
        .map_err(|e| NetdevError::from_os(action, &self.name, false, e))
    }

    /// Deletes the bridge (its ports are detached by the kernel, not deleted).
    pub async fn delete(self) -> Result<()> {
        match self.nd.delete(&self.name).await {
            Err(NetdevError::Unsupported { .. }) => {
                // Bridges made by SIOCBRADDBR on old kernels: delete the same way.
                let name = self.name.clone();
                self.nd
                    .inner
                    .worker
                    .run(move |ctl| {
                        let _ = ctl.set_up(&name, false);
                        ctl.bridge_del(&name)
                    })
                    .await
                    .and_then(|r| r)
                    .map_err(|e| {
                        NetdevError::from_os(
                            format!("delete bridge '{}'", self.name),
                            &self.name,
                            false,
                            e,
                        )
                    })
            }
            other => other,
        }
    }

    /// Deletes the `<bridge>-nic` dummy tap that libvirt before 6.8 attached
    /// to give the bridge its MAC, if a host upgraded from it still has one.
    /// Returns whether one was deleted. virtkit never creates it.
    pub async fn delete_leftover_dummy_nic(&self) -> Result<bool> {
        let nic = dummy_nic_name(&self.name);
        match self.nd.delete(&nic).await {
            Ok(()) => Ok(true),
            Err(NetdevError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// libvirt's `networkBridgeDummyNicName`: `<bridge>-nic`, or, when that would
/// not fit in 15 bytes, the bridge name's first 8 and last 3 bytes + `-nic`.
pub fn dummy_nic_name(bridge: &str) -> String {
    const SUFFIX: &str = "-nic";
    if bridge.len() + SUFFIX.len() > MAX_NAME_LEN && bridge.is_ascii() && bridge.len() >= 11 {
        format!("{}{}{SUFFIX}", &bridge[..8], &bridge[bridge.len() - 3..])
    } else {
        format!("{bridge}{SUFFIX}")
    }
}

async fn create_netlink(nd: &Netdev, name: &str, mac: MacAddr) -> Result<()> {
    let action = format!("create bridge '{name}' with MAC {mac} over netlink");
    if nd.simulating_netlink_bridge_unsupported() {
        return Err(NetdevError::Unsupported {
            action,
            source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        });
    }
    // LinkMessageBuilder::<LinkBridge>::new, unlike LinkBridge::new, does not
    // add IFF_UP: the bridge comes up later, when the network is ready.
    let msg = LinkMessageBuilder::<LinkBridge>::new(name)
        .address(mac.0.to_vec())
        .build();
    nl::ack(
        &nd.inner.nl,
        RouteNetlinkMessage::NewLink(msg),
        nl::CREATE_EXCL,
    )
    .await
    .map_err(|e| NetdevError::from_os(action, name, true, e))
}

/// The step of the ioctl path that failed.
#[derive(Debug, Clone, Copy)]
enum IoctlStep {
    Create,
    SetMac,
    SetMtu,
}

async fn create_ioctl(nd: &Netdev, name: &str, mac: MacAddr, mtu: Option<u32>) -> Result<()> {
    let owned = name.to_string();
    // One worker job, so the unwinding below cannot be interleaved with anything.
    let res = nd
        .inner
        .worker
        .run(
            move |ctl| -> std::result::Result<(), (IoctlStep, std::io::Error)> {
                ctl.bridge_add(&owned).map_err(|e| (IoctlStep::Create, e))?;
                // libvirt keeps the MAC error and deletes the half-made bridge.
                if let Err(e) = ctl.set_hwaddr(&owned, mac) {
                    let _ = ctl.bridge_del(&owned);
                    return Err((IoctlStep::SetMac, e));
                }
                if let Some(m) = mtu
                    && let Err(e) = ctl.set_mtu(&owned, m)
                {
                    let _ = ctl.bridge_del(&owned);
                    return Err((IoctlStep::SetMtu, e));
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| NetdevError::from_os(format!("create bridge '{name}'"), name, true, e))?;
    res.map_err(|(step, e)| {
        let action = match step {
            IoctlStep::Create => format!("create bridge '{name}' with SIOCBRADDBR"),
            IoctlStep::SetMac => format!("set MAC {mac} on new bridge '{name}' with SIOCSIFHWADDR"),
            IoctlStep::SetMtu => format!(
                "set MTU {} on new bridge '{name}' with SIOCSIFMTU",
                mtu.unwrap_or_default()
            ),
        };
        NetdevError::from_os(action, name, matches!(step, IoctlStep::Create), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_nic_names_match_libvirt() {
        assert_eq!(dummy_nic_name("virbr0"), "virbr0-nic");
        assert_eq!(dummy_nic_name("abcdefghijk"), "abcdefghijk-nic");
        assert_eq!(dummy_nic_name("abcdefghijkl"), "abcdefghjkl-nic");
        assert_eq!(dummy_nic_name("virbr-longname9"), "virbr-lome9-nic");
        assert!(dummy_nic_name("virbr-longname9").len() <= MAX_NAME_LEN);
    }
}
