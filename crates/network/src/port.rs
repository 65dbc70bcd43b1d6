//! Ports: how a guest interface (`<interface type='network'>`) plugs into a
//! network. The QEMU and LXC drivers ask for a port when they start a guest
//! and release it when the guest stops; the answer says which bridge to
//! attach the tap or veth to and which MTU to give it.

use virtkit_core::network::def::ForwardMode;
use virtkit_core::xml::Element;
use virtkit_core::{Error, ErrorKind, MacAddr, NetworkRef};

use crate::error::Result;
use crate::service::Service;

/// A guest's connection to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPort {
    /// The network.
    pub network: NetworkRef,
    /// The bridge to attach the guest's device to.
    pub bridge: String,
    /// The network's MTU; `None`: use the bridge's current MTU.
    pub mtu: Option<u32>,
    /// The guest's MAC address.
    pub mac: MacAddr,
    /// The port group in effect (the requested one, else the default one).
    pub portgroup: Option<String>,
}

/// What a guest interface asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// `<source network>`.
    pub network: String,
    /// `<source portgroup>`.
    pub portgroup: Option<String>,
    /// `<mac address>`.
    pub mac: MacAddr,
}

impl PortRequest {
    /// Reads a domain's `<interface type='network'>` element.
    pub fn from_interface(iface: &Element) -> Result<PortRequest> {
        let bad = |m: &str| Error::new(ErrorKind::XmlError, m.to_string());
        if iface.attr("type").as_deref() != Some("network") {
            return Err(bad("interface is not of type 'network'").into());
        }
        let src = iface
            .child("source")
            .ok_or_else(|| bad("<interface type='network'> has no <source network=...>"))?;
        let network = src
            .attr("network")
            .ok_or_else(|| bad("<interface type='network'> has no <source network=...>"))?
            .into_owned();
        let mac = iface
            .child("mac")
            .and_then(|m| m.attr("address"))
            .ok_or_else(|| {
                bad("the interface has no <mac address>; assign one before plugging it")
            })?
            .parse::<MacAddr>()?;
        Ok(PortRequest {
            network,
            portgroup: src.attr("portgroup").map(|s| s.into_owned()),
            mac,
        })
    }
}

impl Service {
    /// Allocates a port on a running network: checks that the network
    /// runs and has a bridge, that the MAC is unicast, is not the bridge's
    /// own and is not already plugged into this network, and that a
    /// requested port group exists.
    pub async fn allocate_port(&self, req: &PortRequest) -> Result<NetworkPort> {
        let nets = self.nets.lock().await;
        let o = nets
            .iter()
            .find(|o| o.name() == req.network)
            .ok_or_else(|| {
                Error::no_network(format!("no network with matching name '{}'", req.network))
            })?;
        let Some(live) = &o.live else {
            return Err(Error::operation_invalid(format!(
                "network '{}' is not active; start it with net-start first",
                req.network
            ))
            .into());
        };
        let m = live.def.model();
        let bridge = match (m.forward.mode, &m.bridge) {
            (mode, Some(b)) if mode.owns_bridge() || mode == ForwardMode::Bridge => b.clone(),
            (mode, _) => {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "network '{}' has forward mode '{}' without a bridge; virtkit ports need a bridge",
                        req.network,
                        mode.as_str()
                    ),
                )
                .into());
            }
        };
        req.mac.check_unicast()?;
        if m.mac == Some(req.mac) {
            return Err(Error::new(
                ErrorKind::ConfigUnsupported,
                format!(
                    "MAC address {} is the bridge's own address on network '{}'; give the guest another one",
                    req.mac, req.network
                ),
            )
            .into());
        }
        let portgroup = match &req.portgroup {
            Some(pg) if !m.portgroups.iter().any(|p| &p.name == pg) => {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!("network '{}' has no portgroup '{pg}'", req.network),
                )
                .into());
            }
            Some(pg) => Some(pg.clone()),
            None => m
                .portgroups
                .iter()
                .find(|p| p.default)
                .map(|p| p.name.clone()),
        };
        let port = NetworkPort {
            network: o.handle(),
            bridge,
            mtu: m.mtu,
            mac: req.mac,
            portgroup,
        };
        let mut ports = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        let list = ports.entry(port.network.uuid).or_default();
        if list.iter().any(|p| p.mac == req.mac) {
            return Err(Error::operation_invalid(format!(
                "MAC address {} is already plugged into network '{}'",
                req.mac, req.network
            ))
            .into());
        }
        list.push(port.clone());
        Ok(port)
    }

    /// Releases a port (the guest stopped or unplugged).
    pub fn release_port(&self, port: &NetworkPort) {
        let mut ports = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = ports.get_mut(&port.network.uuid) {
            list.retain(|p| p.mac != port.mac);
        }
    }

    /// Ports currently plugged into a network.
    pub fn ports_of(&self, network: &NetworkRef) -> Vec<NetworkPort> {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&network.uuid)
            .cloned()
            .unwrap_or_default()
    }
}
