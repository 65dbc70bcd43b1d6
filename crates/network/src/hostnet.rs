//! Host settings of a running network that netdev does not cover: IPv6
//! sysctls of the bridge, IP forwarding, the bridge's addresses and static
//! routes (one `ip -batch` run), and the routing-table collision check.
//! Blocking; the driver calls these on its namespace worker thread.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use virtkit_core::network::addr;
use virtkit_core::network::def::{ForwardMode, Network};

use crate::error::{NetworkError, Result};

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| NetworkError::file("write", std::path::Path::new(path), e))
}

/// `disable_ipv6` (1 without IPv6 addresses), `accept_ra` 0 and `autoconf`
/// 0 on the bridge: guests must not be able to redirect the host with
/// router advertisements, and a gateway never autoconfigures itself.
pub fn ipv6_sysctls(bridge: &str, has_v6: bool) -> Result<()> {
    let base = format!("/proc/sys/net/ipv6/conf/{bridge}");
    if !std::path::Path::new(&base).exists() {
        // IPv6 is disabled on this host altogether.
        return Ok(());
    }
    write_sysctl(
        &format!("{base}/disable_ipv6"),
        if has_v6 { "0" } else { "1" },
    )?;
    write_sysctl(&format!("{base}/accept_ra"), "0")?;
    write_sysctl(&format!("{base}/autoconf"), "0")
}

/// Turns on IP forwarding for the families in use.
pub fn enable_forwarding(v4: bool, v6: bool) -> Result<()> {
    if v4 {
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1\n")?;
    }
    if v6 {
        write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1\n")?;
    }
    Ok(())
}

fn ip_batch(script: &str) -> Result<()> {
    let helper = |detail: String| NetworkError::Helper {
        program: "ip".into(),
        detail,
    };
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| helper(format!("cannot run ({e}); install iproute2")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| helper(format!("cannot send commands: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| helper(format!("did not finish: {e}")))?;
    if !out.status.success() {
        return Err(helper(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Adds the network's addresses to its bridge.
pub fn add_addresses(net: &Network, bridge: &str) -> Result<()> {
    let mut script = String::new();
    for ip in &net.ips {
        let prefix = ip.prefix_len().ok_or_else(|| {
            NetworkError::Config(format!(
                "bridge '{bridge}' has an invalid netmask or IP address"
            ))
        })?;
        // IPv4 addresses get their broadcast address, as libvirt sets it.
        let brd = if ip.is_v4() && prefix < 31 {
            " broadcast +"
        } else {
            ""
        };
        script.push_str(&format!(
            "address add {}/{prefix}{brd} dev {bridge}\n",
            ip.address
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    ip_batch(&script)
}

/// Adds the static routes; failures are ignored as libvirt does (a route
/// through a guest that is not up yet is not an error for the network).
pub fn add_routes(net: &Network, bridge: &str) {
    for r in &net.routes {
        let mut cmd = format!(
            "route add {}/{} via {} dev {bridge}",
            r.address, r.prefix, r.gateway
        );
        if let Some(m) = r.metric {
            cmd.push_str(&format!(" metric {m}"));
        }
        let _ = ip_batch(&format!("{cmd}\n"));
    }
}

/// An IPv4 route of the routing table: interface, destination, mask.
fn routes_v4() -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(u32::from_be(v)))
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), hex(f.get(1)?)?, hex(f.get(7)?)?))
        })
        .collect()
}

/// libvirt's route-collision check: an IPv4 subnet of the network that the
/// host already routes to some interface is in use.
pub fn check_route_collision(net: &Network) -> Result<()> {
    let routes = routes_v4();
    for ip in net.ips.iter().filter(|i| i.is_v4()) {
        let Some(prefix) = ip.prefix_len() else {
            continue;
        };
        let IpAddr::V4(netaddr) = addr::network_of(ip.address, prefix) else {
            continue;
        };
        let mask = addr::prefix_netmask(prefix);
        if let Some((dev, _, _)) = routes.iter().find(|(_, d, m)| *d == netaddr && *m == mask) {
            return Err(NetworkError::State(format!(
                "Network is already in use by interface {dev}: {netaddr}/{prefix} of network '{}' is routed there; pick another subnet",
                net.name
            )));
        }
    }
    Ok(())
}

/// Whether forwarding must be on (every mode with a bridge but isolated
/// and open).
pub fn wants_forwarding(net: &Network) -> bool {
    !matches!(net.forward.mode, ForwardMode::None | ForwardMode::Open)
}
