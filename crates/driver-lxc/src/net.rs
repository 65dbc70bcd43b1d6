//! Network interfaces of containers: one veth pair per `<interface>`.
//!
//! Before the container exists, each pair is made by netdev in one request:
//! the container end with the guest MAC (libvirt gives veths no 0xFE rule)
//! and the MTU of the network or bridge, the host end up and attached to
//! the bridge of the port the network driver allocated (`type='network'`)
//! or of `<source bridge>`. Once the container's network namespace exists,
//! the container end is moved into it and renamed (`<guest dev>`, else
//! `ethN`), and the container's loopback and interfaces are brought up and
//! given the `<ip>` addresses and `<route>`s of the definition.

use std::os::fd::{AsFd, OwnedFd};

use virtkit_core::{Error, ErrorKind, Result};
use virtkit_netdev::{Netdev, NetnsRef, Veth, VethConfig};
use virtkit_network::{NetworkPort, PortRequest, Service};

use crate::def::{Iface, IfaceKind};

/// The host side of one interface while the container starts.
#[derive(Debug)]
pub(crate) struct PreparedNic {
    pub veth: Veth,
    pub port: Option<NetworkPort>,
}

/// Creates a veth pair for every interface. On error nothing is left:
/// the pairs made so far are deleted and the ports released.
pub(crate) async fn prepare(
    nd: &Netdev,
    networks: Option<&Service>,
    ifaces: &[Iface],
) -> Result<Vec<PreparedNic>> {
    let mut out: Vec<PreparedNic> = Vec::new();
    for iface in ifaces {
        match prepare_one(nd, networks, iface).await {
            Ok(n) => out.push(n),
            Err(e) => {
                discard(nd, networks, &out).await;
                return Err(e);
            }
        }
    }
    Ok(out)
}

async fn prepare_one(
    nd: &Netdev,
    networks: Option<&Service>,
    iface: &Iface,
) -> Result<PreparedNic> {
    let p = &iface.path;
    let (bridge, port) = match &iface.kind {
        IfaceKind::Network { element } => {
            let svc = networks.ok_or_else(|| {
                Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "<interface type='network'> ({p}) needs the network driver, which is not \
                         available to this connection; use type='bridge'"
                    ),
                )
            })?;
            let req = PortRequest::from_interface(element).map_err(Error::from)?;
            let port = svc.allocate_port(&req).await.map_err(Error::from)?;
            (Some(port.bridge.clone()), Some(port))
        }
        IfaceKind::Bridge(b) => (Some(b.clone()), None),
        IfaceKind::Ethernet => (None, None),
    };
    let host = iface.host_name.clone().unwrap_or_else(|| "vnet%d".into());
    let mut cfg = VethConfig::new(host.as_str(), "vnet%d").peer_mac(iface.mac);
    if let Some(b) = &bridge {
        cfg = cfg.bridge(b.as_str());
    }
    if let Some(mtu) = iface.mtu.or(port.as_ref().and_then(|p| p.mtu)) {
        cfg = cfg.mtu(mtu);
    }
    match Veth::create(nd, &cfg).await {
        Ok(veth) => Ok(PreparedNic { veth, port }),
        Err(e) => {
            if let (Some(svc), Some(port)) = (networks, &port) {
                svc.release_port(port);
            }
            Err(Error::from(e).context(format!("cannot create the veth pair for {p}")))
        }
    }
}

/// Deletes prepared pairs and releases their ports.
pub(crate) async fn discard(nd: &Netdev, networks: Option<&Service>, nics: &[PreparedNic]) {
    let hosts: Vec<String> = nics.iter().map(|n| n.veth.host.clone()).collect();
    unplug(nd, &hosts).await;
    if let Some(svc) = networks {
        for p in nics.iter().filter_map(|n| n.port.as_ref()) {
            svc.release_port(p);
        }
    }
}

/// Deletes host ends (and so their container ends); already gone is fine.
pub(crate) async fn unplug(nd: &Netdev, hosts: &[String]) {
    for h in hosts {
        match nd.delete(h).await {
            Ok(()) => {}
            Err(virtkit_netdev::NetdevError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(device = %h, error = %e, "cannot delete a container's veth"),
        }
    }
}

/// Moves the container ends into the namespace of `init_pid`, renames
/// them and configures the container's side.
pub(crate) async fn plug(
    nd: &Netdev,
    nics: &[PreparedNic],
    ifaces: &[Iface],
    init_pid: i32,
) -> Result<()> {
    for (nic, iface) in nics.iter().zip(ifaces) {
        nd.move_to_netns(
            &nic.veth.peer,
            NetnsRef::Pid(init_pid as u32),
            Some(&iface.guest_name),
        )
        .await
        .map_err(|e| {
            Error::from(e).context(format!(
                "cannot move the container end of {} into the container",
                iface.path
            ))
        })?;
    }
    let ns: OwnedFd = std::fs::File::open(format!("/proc/{init_pid}/ns/net"))
        .map_err(|e| Error::system("cannot open the container's network namespace", &e))?
        .into();
    {
        // This handle's sockets live in the container's namespace: dropped
        // at the end of the block, so the namespace can go with the container.
        let inside = Netdev::open_in_netns(ns.as_fd()).await?;
        inside.set_up("lo").await?;
        for iface in ifaces.iter().filter(|i| i.up) {
            inside.set_up(&iface.guest_name).await?;
        }
    }
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for iface in ifaces {
        for ip in &iface.ips {
            let prefix = ip
                .prefix
                .unwrap_or(if ip.family == "ipv6" { 64 } else { 24 });
            cmds.push(
                [
                    "addr",
                    "add",
                    &format!("{}/{prefix}", ip.address),
                    "dev",
                    &iface.guest_name,
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        for r in &iface.routes {
            let dest = match r.prefix {
                Some(p) if p > 0 => format!("{}/{p}", r.address),
                _ if r.address == "0.0.0.0" || r.address == "::" => "default".into(),
                _ => r.address.clone(),
            };
            let mut c: Vec<String> = Vec::new();
            if r.gateway.contains(':') {
                c.push("-6".into());
            }
            c.extend(
                [
                    "route",
                    "add",
                    &dest,
                    "via",
                    &r.gateway,
                    "dev",
                    &iface.guest_name,
                ]
                .map(String::from),
            );
            cmds.push(c);
        }
    }
    if !cmds.is_empty() {
        run_ip_in(ns, cmds).await?;
    }
    Ok(())
}

/// Runs `ip` commands inside a network namespace (a thread enters it; the
/// commands it starts inherit it).
async fn run_ip_in(ns: OwnedFd, cmds: Vec<Vec<String>>) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("virtkit-lxc-ipcfg".into())
        .spawn(move || {
            let res = (|| -> Result<()> {
                crate::sys::setns(ns.as_fd(), libc::CLONE_NEWNET).map_err(|e| {
                    Error::system("cannot enter the container's network namespace", &e)
                })?;
                for c in &cmds {
                    let out = std::process::Command::new("ip")
                        .args(c)
                        .output()
                        .map_err(|e| Error::system("cannot run ip (iproute2)", &e))?;
                    if !out.status.success() {
                        return Err(Error::new(
                            ErrorKind::OperationFailed,
                            format!(
                                "ip {} failed in the container: {}",
                                c.join(" "),
                                String::from_utf8_lossy(&out.stderr).trim()
                            ),
                        ));
                    }
                }
                Ok(())
            })();
            let _ = tx.send(res);
        })
        .map_err(|e| Error::system("cannot start a thread", &e))?;
    rx.await
        .map_err(|_| Error::internal("the address configuration thread ended without an answer"))?
}

/// The counters of the container's interface `dev`, as the container
/// counts them.
pub(crate) fn guest_stats(init_pid: i32, dev: &str) -> Option<virtkit_core::InterfaceStats> {
    virtkit_netdev::counters::device_counters(Some(init_pid), dev)
}
