//! Host network devices for guest interfaces.
//!
//! Every `<interface type='network'|'bridge'|'ethernet'>` gets a tap from
//! netdev (on the bridge of the network port the network driver allocates,
//! for `type='network'`),
//! created with the host-side MAC (libvirt's 0xFE rule) and the bridge's MTU
//! before it joins the bridge. The taps are owned by the file descriptors
//! QEMU inherits, so they disappear when QEMU exits, whatever the reason;
//! virtkit's own copies of the fds are closed once QEMU runs.
//! `<interface type='user'>` needs no host device.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, MacAddr, Result};
use virtkit_netdev::{Netdev, Tap, TapConfig};
use virtkit_network::{NetworkPort, PortRequest, Service};

use crate::argv::NetFds;

/// The host side of one guest interface while QEMU starts.
#[derive(Debug)]
pub(crate) struct PreparedNic {
    /// The tap (owns virtkit's copies of its fds), if the interface has one.
    pub tap: Option<Tap>,
    /// vhost-net fds, one per queue.
    pub vhost: Vec<OwnedFd>,
    /// The port on a virtual network (`type='network'`).
    pub port: Option<NetworkPort>,
}

impl PreparedNic {
    /// The fds for QEMU's command line.
    pub fn fds(&self) -> NetFds {
        NetFds {
            tap: self
                .tap
                .as_ref()
                .map(|t| t.fds().iter().map(AsRawFd::as_raw_fd).collect())
                .unwrap_or_default(),
            vhost: self.vhost.iter().map(AsRawFd::as_raw_fd).collect(),
        }
    }

    /// Every fd QEMU must inherit.
    pub fn keep_fds(&self) -> Vec<RawFd> {
        let f = self.fds();
        f.tap.into_iter().chain(f.vhost).collect()
    }
}

fn attr(e: &Element, child: &str, name: &str) -> Option<String> {
    e.child(child)
        .and_then(|c| c.attr(name))
        .map(|v| v.into_owned())
}

fn vhost_fds(queues: usize) -> Vec<OwnedFd> {
    (0..queues)
        .map_while(|_| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/vhost-net")
                .ok()
                .map(OwnedFd::from)
        })
        .collect()
}

/// Creates the host devices for every `<interface>` of `domain` (the
/// normalised tree), in document order. On error nothing is left behind:
/// the taps made so far are dropped (which removes them) and the network
/// ports released.
pub(crate) async fn prepare(
    nd: &Netdev,
    networks: Option<&Service>,
    domain: &Element,
    accel_kvm: bool,
) -> Result<Vec<PreparedNic>> {
    let mut out = Vec::new();
    match prepare_into(nd, networks, domain, accel_kvm, &mut out).await {
        Ok(()) => Ok(out),
        Err(e) => {
            if let Some(svc) = networks {
                release_ports(svc, &out);
            }
            Err(e)
        }
    }
}

/// Claims again, for a guest found running by a new process, the ports its
/// `<interface type='network'>` devices hold, so that the network driver
/// knows them (duplicate MACs are refused, the ports are released when the
/// guest stops). A port that cannot be claimed (the network was stopped
/// meanwhile) is logged and skipped: the guest keeps running.
pub(crate) async fn reclaim_ports(
    svc: &Service,
    domain: &Element,
    name: &str,
) -> Vec<virtkit_network::NetworkPort> {
    let mut ports = Vec::new();
    let Some(devices) = domain.child("devices") else {
        return ports;
    };
    for iface in devices.children_named("interface") {
        if iface.attr("type").as_deref() != Some("network") {
            continue;
        }
        let claimed = match virtkit_network::PortRequest::from_interface(iface) {
            Ok(req) => svc.allocate_port(&req).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(p) => ports.push(p),
            Err(e) => {
                tracing::warn!(domain = name, error = %e, "cannot claim the guest's network port again")
            }
        }
    }
    ports
}

/// Gives the guest's network ports back.
pub(crate) fn release_ports(svc: &Service, nics: &[PreparedNic]) {
    for p in nics.iter().filter_map(|n| n.port.as_ref()) {
        svc.release_port(p);
    }
}

async fn prepare_into(
    nd: &Netdev,
    networks: Option<&Service>,
    domain: &Element,
    accel_kvm: bool,
    out: &mut Vec<PreparedNic>,
) -> Result<()> {
    let Some(devices) = domain.child("devices") else {
        return Ok(());
    };
    let dp = XPath::root("domain").named("devices");
    for iface in devices.children_named("interface") {
        let p = dp.child(devices, iface);
        let ty = iface
            .attr("type")
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let mut port = None;
        let mut port_mtu = None;
        let bridge = match ty.as_str() {
            "bridge" => Some(attr(iface, "source", "bridge").ok_or_else(|| {
                Error::new(
                    ErrorKind::XmlError,
                    format!("<interface type='bridge'> needs <source bridge='NAME'/> ({p})"),
                )
            })?),
            "ethernet" => None,
            "user" => {
                out.push(PreparedNic {
                    tap: None,
                    vhost: Vec::new(),
                    port: None,
                });
                continue;
            }
            "network" => {
                let svc = networks.ok_or_else(|| {
                    Error::new(
                        ErrorKind::ConfigUnsupported,
                        format!(
                            "<interface type='network'> ({p}) needs the network driver, which is \
                             not available to this connection; use type='bridge'"
                        ),
                    )
                })?;
                let req = PortRequest::from_interface(iface).map_err(Error::from)?;
                let got = svc.allocate_port(&req).await.map_err(Error::from)?;
                let bridge = got.bridge.clone();
                port_mtu = got.mtu;
                port = Some(got);
                Some(bridge)
            }
            other => {
                return Err(crate::argv::unsupported(
                    p.attr("type"),
                    format!("interface type '{other}'"),
                ));
            }
        };
        let mac: MacAddr = attr(iface, "mac", "address")
            .ok_or_else(|| Error::internal(format!("interface without a MAC address ({p})")))?
            .parse()?;
        let virtio = attr(iface, "model", "type").is_none_or(|m| m == "virtio");
        let queues: usize = attr(iface, "driver", "queues")
            .and_then(|q| q.parse().ok())
            .filter(|q| *q >= 1)
            .unwrap_or(1);
        let name = attr(iface, "target", "dev")
            .filter(|d| !d.starts_with("vnet") && !d.contains('%'))
            .unwrap_or_else(|| "vnet%d".into());
        let mut cfg = TapConfig::new(name.as_str())
            .guest_mac(mac)
            .queues(queues)
            .vnet_hdr(virtio);
        if let Some(b) = &bridge {
            cfg = cfg.bridge(b.as_str());
        }
        if let Some(mtu) = attr(iface, "mtu", "size")
            .and_then(|m| m.parse().ok())
            .or(port_mtu)
        {
            cfg = cfg.mtu(mtu);
        }
        let tap = match Tap::create(nd, &cfg).await {
            Ok(t) => t,
            Err(e) => {
                if let (Some(svc), Some(p)) = (networks, &port) {
                    svc.release_port(p);
                }
                return Err(Error::from(e).context(format!("cannot create the tap for {p}")));
            }
        };
        let want_vhost =
            virtio && accel_kvm && attr(iface, "driver", "name").as_deref() != Some("qemu");
        let vhost = if want_vhost {
            vhost_fds(queues)
        } else {
            Vec::new()
        };
        out.push(PreparedNic {
            tap: Some(tap),
            vhost,
            port,
        });
    }
    Ok(())
}

/// Names the host devices in the live definition (`<target dev='vnet0'/>`),
/// as libvirt shows them while the guest runs.
pub(crate) fn record_targets(domain: &mut Element, nics: &[PreparedNic]) {
    let Some(devices) = domain.child_mut("devices") else {
        return;
    };
    for (iface, nic) in devices
        .elements_mut()
        .filter(|e| e.name() == "interface")
        .zip(nics)
    {
        if let Some(tap) = &nic.tap {
            match iface.child_mut("target") {
                Some(t) => t.set_attr("dev", tap.name()),
                None => iface.push(Element::new("target").with_attr("dev", tap.name())),
            }
        }
    }
}
