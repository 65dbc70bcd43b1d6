//! veth pairs for containers (the LXC driver): the host end goes into a
//! bridge, the peer end is moved into the container's network namespace
//! ([`Netdev::move_to_netns`]), renamed there and brought up by the container
//! side.
//!
//! Both ends, with their MACs and MTU, are made by one RTM_NEWLINK (the peer's
//! attributes travel in IFLA_INFO_DATA / VETH_INFO_PEER), so there is no moment
//! at which a half-configured pair exists. Deleting either end removes both.

use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use virtkit_core::MacAddr;

use crate::error::{NetdevError, Result};
use crate::link::{check_mac, check_mtu};
use crate::name::{IfName, MAX_NAME_ATTEMPTS, next_candidate, validate_name};
use crate::{Netdev, nl};

/// How to create a veth pair. Start from [`VethConfig::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethConfig {
    host: IfName,
    peer: IfName,
    host_mac: Option<MacAddr>,
    peer_mac: Option<MacAddr>,
    mtu: Option<u32>,
    bridge: Option<String>,
    host_up: bool,
}

impl VethConfig {
    /// A pair named `host` and `peer` (each exact or a `%d` template), host
    /// end brought up, no bridge, kernel-chosen MACs.
    pub fn new(host: impl Into<IfName>, peer: impl Into<IfName>) -> VethConfig {
        VethConfig {
            host: host.into(),
            peer: peer.into(),
            host_mac: None,
            peer_mac: None,
            mtu: None,
            bridge: None,
            host_up: true,
        }
    }

    /// MAC of the host end (libvirt leaves the kernel's random one).
    pub fn host_mac(mut self, mac: MacAddr) -> Self {
        self.host_mac = Some(mac);
        self
    }

    /// MAC of the peer (container) end: the guest MAC as in the XML, without
    /// the tap rule's 0xFE.
    pub fn peer_mac(mut self, mac: MacAddr) -> Self {
        self.peer_mac = Some(mac);
        self
    }

    /// MTU of both ends; without one, a bridged pair takes the bridge's MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Attach the host end to this bridge.
    pub fn bridge(mut self, bridge: impl Into<String>) -> Self {
        self.bridge = Some(bridge.into());
        self
    }

    /// Whether to bring the host end up (default: yes). The peer stays down.
    pub fn host_up(mut self, on: bool) -> Self {
        self.host_up = on;
        self
    }
}

/// The names of a created veth pair. Nothing is removed on drop: delete
/// either end with [`Netdev::delete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// The host end.
    pub host: String,
    /// The peer (container) end.
    pub peer: String,
}

fn pick(name: &IfName) -> Result<String> {
    match name {
        IfName::Exact(n) => Ok(n.clone()),
        IfName::Template(t) => next_candidate(t),
    }
}

impl Veth {
    /// Creates the pair as `cfg` says; nothing is left behind on error.
    pub async fn create(nd: &Netdev, cfg: &VethConfig) -> Result<Veth> {
        cfg.host.validate()?;
        cfg.peer.validate()?;
        for (end, mac) in [(&cfg.host, cfg.host_mac), (&cfg.peer, cfg.peer_mac)] {
            if let Some(m) = mac {
                check_mac(end.as_str(), m)?;
            }
        }
        if let Some(m) = cfg.mtu {
            check_mtu(m)?;
        }
        let bridge = match &cfg.bridge {
            Some(b) => {
                validate_name(b)?;
                let info = nd.link(b).await?;
                if info.kind.as_deref() != Some("bridge") {
                    return Err(NetdevError::InvalidArg(format!(
                        "cannot attach a veth to '{b}': it is not a bridge"
                    )));
                }
                Some(info)
            }
            None => None,
        };
        let mtu = cfg.mtu.or(bridge.as_ref().map(|b| b.mtu));
        let templated =
            matches!(cfg.host, IfName::Template(_)) || matches!(cfg.peer, IfName::Template(_));

        let mut attempts = 0;
        let (host, peer) = loop {
            let host = pick(&cfg.host)?;
            let mut peer = pick(&cfg.peer)?;
            if peer == host {
                // Same template for both ends: take the next number.
                peer = pick(&cfg.peer)?;
            }
            let mut p = LinkUnspec::new_with_name(&peer);
            if let Some(m) = cfg.peer_mac {
                p = p.address(m.0.to_vec());
            }
            if let Some(m) = mtu {
                p = p.mtu(m);
            }
            let mut b = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(host.clone())
                .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())));
            if let Some(m) = cfg.host_mac {
                b = b.address(m.0.to_vec());
            }
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            match nl::ack(
                &nd.inner.nl,
                RouteNetlinkMessage::NewLink(b.build()),
                nl::CREATE_EXCL,
            )
            .await
            {
                Ok(()) => break (host, peer),
                Err(e)
                    if e.raw_os_error() == Some(libc::EEXIST)
                        && templated
                        && attempts < MAX_NAME_ATTEMPTS =>
                {
                    attempts += 1;
                }
                Err(e) => {
                    let which = if e.raw_os_error() == Some(libc::EEXIST) {
                        format!("{host}' or '{peer}")
                    } else {
                        host.clone()
                    };
                    return Err(NetdevError::from_os(
                        format!("create veth pair '{host}' / '{peer}'"),
                        &which,
                        true,
                        e,
                    ));
                }
            }
        };

        let mut setup = LinkUnspec::new_with_name(&host);
        let mut any = false;
        if let Some(br) = &bridge {
            setup = setup.controller(br.index);
            any = true;
        }
        if cfg.host_up {
            setup = setup.up();
            any = true;
        }
        if any {
            let action = format!("attach and bring up veth end '{host}'");
            if let Err(e) = nd.setlink(&host, setup.build(), action).await {
                let _ = nd.delete(&host).await;
                return Err(e);
            }
        }
        Ok(Veth { host, peer })
    }
}
