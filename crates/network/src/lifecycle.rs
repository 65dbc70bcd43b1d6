//! Starting and stopping a network on the host, in libvirt's order
//! (`networkStartNetworkVirtual`, netdev-reference §5), with an undo list:
//! any failure undoes what was done so far, in reverse order, and a stop
//! removes everything a start made.

use std::time::Duration;

use virtkit_core::network::NetworkDef;
use virtkit_core::network::addr;
use virtkit_core::xml::XPath;
use virtkit_netdev::{Bridge, Netdev};

use crate::dnsmasq::{self, ConfParams, DnsmasqCaps, process};
use crate::error::{NetworkError, Result};
use crate::service::Service;
use crate::state::{Live, NetFiles, remove, save};
use crate::{firewall, hostnet};

/// Steps to undo, most recent last.
enum Undo {
    DeleteBridge(String),
    Firewall(String),
    Down(String),
    Dnsmasq(u32, std::path::PathBuf),
    Files(Box<NetFiles>),
}

async fn undo(svc: &Service, nd: &Netdev, steps: Vec<Undo>) {
    for step in steps.into_iter().rev() {
        match step {
            Undo::Dnsmasq(pid, conf) => {
                let _ = svc.worker.run(move || process::stop(pid, &conf)).await;
            }
            Undo::Down(b) => {
                let _ = nd.set_down(&b).await;
            }
            Undo::Firewall(b) => {
                let _ = svc.worker.run(move || firewall::remove(&b)).await;
            }
            Undo::DeleteBridge(b) => {
                let _ = nd.delete(&b).await;
            }
            Undo::Files(f) => {
                for p in f.runtime() {
                    remove(p);
                }
            }
        }
    }
}

/// An error pointing at `<bridge name>` or the `n`th `<ip>` of `def`.
fn at_element(
    def: &NetworkDef,
    name: &str,
    nth: usize,
    attr: Option<&str>,
    msg: String,
) -> NetworkError {
    let doc = def.document();
    let root = &doc.root;
    let el = root.children_named(name).nth(nth);
    let err = match el {
        Some(e) => {
            let p = XPath::root("network").child(root, e);
            match attr {
                Some(a) => doc.error_at_attr(e, &p, a, msg),
                None => doc.error_at(e, &p, msg),
            }
        }
        None => virtkit_core::Error::operation_invalid(msg),
    };
    NetworkError::Core(err)
}

/// Refuses a network whose subnets overlap those of a running one.
pub(crate) fn check_overlap(def: &NetworkDef, active: &[&NetworkDef]) -> Result<()> {
    for (i, ip) in def.model().ips.iter().enumerate() {
        let Some(p) = ip.prefix_len() else { continue };
        for other in active {
            for oip in &other.model().ips {
                let Some(op) = oip.prefix_len() else { continue };
                if addr::subnets_overlap(ip.address, p, oip.address, op) {
                    return Err(at_element(
                        def,
                        "ip",
                        i,
                        Some("address"),
                        format!(
                            "subnet {}/{p} of network '{}' overlaps {}/{op} of active network '{}' (bridge {}); choose another address for one of them",
                            addr::network_of(ip.address, p),
                            def.name(),
                            addr::network_of(oip.address, op),
                            other.name(),
                            other.bridge().unwrap_or("-")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Starts `def` (a network with a virtkit-owned bridge) and returns what
/// runs. `active` are the other running networks.
pub(crate) async fn start(svc: &Service, def: &NetworkDef, active: &[&NetworkDef]) -> Result<Live> {
    let m = def.model();
    if !m.forward.mode.owns_bridge() {
        // Host bridges, macvtap and hostdev pools: nothing to create.
        return Ok(Live {
            def: def.clone(),
            dnsmasq: None,
            firewall: false,
        });
    }
    let bridge = def
        .bridge()
        .ok_or_else(|| {
            NetworkError::Config(format!("network '{}' has no bridge name defined", m.name))
        })?
        .to_string();
    let mac = def
        .mac()
        .ok_or_else(|| NetworkError::Config(format!("network '{}' has no bridge MAC", m.name)))?;
    check_overlap(def, active)?;
    let net = m.clone();
    svc.worker
        .run(move || hostnet::check_route_collision(&net))
        .await??;
    let nd = svc.netdev().await?;
    if nd.exists(&bridge).await? {
        return Err(at_element(
            def,
            "bridge",
            0,
            Some("name"),
            format!(
                "bridge name '{bridge}' is already in use by a network interface on this host; choose another <bridge name> or leave it out to get a free virbrN"
            ),
        ));
    }
    let mut done: Vec<Undo> = Vec::new();
    match start_steps(svc, &nd, def, &bridge, mac, &mut done).await {
        Ok(live) => Ok(live),
        Err(e) => {
            undo(svc, &nd, done).await;
            Err(e)
        }
    }
}

async fn start_steps(
    svc: &Service,
    nd: &Netdev,
    def: &NetworkDef,
    bridge: &str,
    mac: virtkit_core::MacAddr,
    done: &mut Vec<Undo>,
) -> Result<Live> {
    let m = def.model();
    // 1. The bridge, with its MAC in the creating request, MTU afterwards.
    let br = Bridge::create(nd, bridge, mac, m.mtu).await?;
    done.push(Undo::DeleteBridge(bridge.to_string()));
    // 2. STP: forward delay in seconds in the XML.
    br.set_forward_delay(Duration::from_secs(m.delay)).await?;
    br.set_stp(m.stp).await?;
    // 3. IPv6 sysctls.
    let has_v6 = m.ips.iter().any(|i| !i.is_v4());
    let b = bridge.to_string();
    svc.worker
        .run(move || hostnet::ipv6_sysctls(&b, has_v6))
        .await??;
    // 4. Firewall rules (none for forward mode open).
    let net = m.clone();
    let b = bridge.to_string();
    let firewall = svc.worker.run(move || firewall::add(&net, &b)).await??;
    if firewall {
        done.push(Undo::Firewall(bridge.to_string()));
    }
    // 5. Addresses.
    let net = m.clone();
    let b = bridge.to_string();
    svc.worker
        .run(move || hostnet::add_addresses(&net, &b))
        .await??;
    // 6. Up, then static routes (errors ignored) and forwarding.
    br.up().await?;
    done.push(Undo::Down(bridge.to_string()));
    let net = m.clone();
    let b = bridge.to_string();
    let v4 = m.ips.iter().any(|i| i.is_v4());
    let fwd = hostnet::wants_forwarding(m);
    svc.worker
        .run(move || {
            hostnet::add_routes(&net, &b);
            if fwd {
                hostnet::enable_forwarding(v4, has_v6)
            } else {
                Ok(())
            }
        })
        .await??;
    // 7. dnsmasq (DHCP, DNS, IPv6 router advertisements).
    let files = NetFiles::new(&svc.layout, m.name.as_str());
    let mut pid = None;
    if m.needs_dnsmasq() {
        done.push(Undo::Files(Box::new(files.clone())));
        let bin = process::binary()?;
        let caps = svc.dnsmasq_caps(&bin).await?;
        let params = ConfParams {
            state_dir: svc.layout.dnsmasq_dir.display().to_string(),
            pid_file: None,
            extra: vec![format!("dhcp-leasefile={}", files.leases.display())],
        };
        let conf = dnsmasq::generate(m, &caps, &params)?;
        save(&files.dnsmasq_conf, &conf.conf)?;
        save(&files.hostsfile, &conf.hostsfile)?;
        save(&files.addnhosts, &conf.addnhosts)?;
        let pf = process::DnsmasqFiles {
            conf: files.dnsmasq_conf.clone(),
            pid: files.dnsmasq_pid.clone(),
            log: files.dnsmasq_log.clone(),
        };
        let p = svc.worker.run(move || process::start(&bin, &pf)).await??;
        done.push(Undo::Dnsmasq(p, files.dnsmasq_conf.clone()));
        pid = Some(p);
    }
    let live = Live {
        def: def.clone(),
        dnsmasq: pid,
        firewall,
    };
    crate::state::save_live(&svc.layout, &live)?;
    done.push(Undo::Files(Box::new(files)));
    Ok(live)
}

/// Stops a running network: dnsmasq, leftover dummy NIC, link down,
/// firewall rules, bridge, files. Best effort: every step runs even if an
/// earlier one failed; the first error is returned.
pub(crate) async fn stop(svc: &Service, live: &Live) -> Result<()> {
    let m = live.def.model();
    let files = NetFiles::new(&svc.layout, m.name.as_str());
    let mut first_err: Option<NetworkError> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r
            && first_err.is_none()
        {
            first_err = Some(e);
        }
    };
    if m.forward.mode.owns_bridge()
        && let Some(bridge) = live.def.bridge().map(str::to_string)
    {
        if let Some(pid) = live.dnsmasq {
            let conf = files.dnsmasq_conf.clone();
            note(svc.worker.run(move || process::stop(pid, &conf)).await);
        }
        let nd = svc.netdev().await?;
        if nd.exists(&bridge).await.unwrap_or(false) {
            if let Ok(br) = Bridge::open(&nd, &bridge).await {
                note(
                    br.delete_leftover_dummy_nic()
                        .await
                        .map(|_| ())
                        .map_err(Into::into),
                );
            }
            note(nd.set_down(&bridge).await.map_err(Into::into));
        }
        if live.firewall {
            let b = bridge.clone();
            note(
                svc.worker
                    .run(move || firewall::remove(&b))
                    .await
                    .and_then(|r| r),
            );
        }
        if nd.exists(&bridge).await.unwrap_or(false) {
            note(nd.delete(&bridge).await.map_err(Into::into));
        }
    }
    for p in files.runtime() {
        remove(p);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Rewrites the hosts files of a running network and asks dnsmasq to
/// re-read them (DHCP and DNS host changes).
pub(crate) async fn refresh_hosts(svc: &Service, live: &Live) -> Result<()> {
    let m = live.def.model();
    let files = NetFiles::new(&svc.layout, m.name.as_str());
    let params = ConfParams {
        state_dir: svc.layout.dnsmasq_dir.display().to_string(),
        pid_file: None,
        extra: Vec::new(),
    };
    let conf = dnsmasq::generate(m, &DnsmasqCaps::test_2_67(), &params)?;
    save(&files.hostsfile, &conf.hostsfile)?;
    save(&files.addnhosts, &conf.addnhosts)?;
    if let Some(pid) = live.dnsmasq {
        let c = files.dnsmasq_conf.clone();
        svc.worker.run(move || process::reload(pid, &c)).await?;
    }
    Ok(())
}

/// Restarts dnsmasq with a new configuration (DHCP range changes).
pub(crate) async fn restart_dnsmasq(svc: &Service, live: &mut Live) -> Result<()> {
    let m = live.def.model().clone();
    let files = NetFiles::new(&svc.layout, m.name.as_str());
    if let Some(pid) = live.dnsmasq.take() {
        let c = files.dnsmasq_conf.clone();
        svc.worker.run(move || process::stop(pid, &c)).await?;
    }
    if !m.needs_dnsmasq() {
        return Ok(());
    }
    let bin = process::binary()?;
    let caps = svc.dnsmasq_caps(&bin).await?;
    let params = ConfParams {
        state_dir: svc.layout.dnsmasq_dir.display().to_string(),
        pid_file: None,
        extra: vec![format!("dhcp-leasefile={}", files.leases.display())],
    };
    let conf = dnsmasq::generate(&m, &caps, &params)?;
    save(&files.dnsmasq_conf, &conf.conf)?;
    save(&files.hostsfile, &conf.hostsfile)?;
    save(&files.addnhosts, &conf.addnhosts)?;
    let pf = process::DnsmasqFiles {
        conf: files.dnsmasq_conf.clone(),
        pid: files.dnsmasq_pid.clone(),
        log: files.dnsmasq_log.clone(),
    };
    live.dnsmasq = Some(svc.worker.run(move || process::start(&bin, &pf)).await??);
    Ok(())
}
