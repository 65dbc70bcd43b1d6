//! nftables rules for a network, in a table that belongs to virtkit alone
//! (`inet virtkit`); no other table is read or changed.
//!
//! Each network gets its own base chains (input, output, forward and, for
//! NAT, postrouting), named after its bridge, so adding and removing one
//! network's rules is one atomic `nft -f` transaction that touches nothing
//! else. The rules follow libvirt's iptables rules for the same modes:
//! DHCP/DNS to and from the bridge, forwarding for the network's subnets
//! (replies only, for NAT), everything else to or from the bridge refused,
//! and masquerading with source ports 1024-65535 for TCP and UDP (or SNAT to
//! `<nat><address>`, with `<nat><port>`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use virtkit_core::network::addr;
use virtkit_core::network::def::{ForwardMode, Network};

use crate::error::{NetworkError, Result};

/// The table virtkit owns.
pub const TABLE: &str = "virtkit";
/// Its family.
pub const FAMILY: &str = "inet";

/// The chains of one network: `(name, definition)`.
fn chains(bridge: &str) -> Vec<(String, &'static str)> {
    let base: String = bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    vec![
        (
            format!("{base}_input"),
            "type filter hook input priority filter; policy accept;",
        ),
        (
            format!("{base}_output"),
            "type filter hook output priority filter; policy accept;",
        ),
        (
            format!("{base}_forward"),
            "type filter hook forward priority filter; policy accept;",
        ),
        (
            format!("{base}_postrouting"),
            "type nat hook postrouting priority srcnat; policy accept;",
        ),
    ]
}

/// The `nft -f` script that installs the rules of `net` (whose bridge is
/// `bridge`); `None` for modes without rules (open, and the non-bridge
/// modes).
pub fn ruleset(net: &Network, bridge: &str) -> Option<String> {
    let mode = net.forward.mode;
    if !matches!(
        mode,
        ForwardMode::None | ForwardMode::Nat | ForwardMode::Route
    ) {
        return None;
    }
    let ch = chains(bridge);
    let (input, output, forward, post) = (&ch[0].0, &ch[1].0, &ch[2].0, &ch[3].0);
    let mut s = format!("add table {FAMILY} {TABLE}\n");
    for (name, def) in &ch {
        let _ = writeln!(s, "add chain {FAMILY} {TABLE} {name} {{ {def} }}");
        let _ = writeln!(s, "flush chain {FAMILY} {TABLE} {name}");
    }
    let br = format!("\"{bridge}\"");
    let rule = |s: &mut String, chain: &str, r: &str| {
        let _ = writeln!(s, "add rule {FAMILY} {TABLE} {chain} {r}");
    };
    // DHCP and DNS for the guests.
    rule(
        &mut s,
        input,
        &format!("iifname {br} meta l4proto {{ tcp, udp }} th dport {{ 53, 67, 547 }} accept"),
    );
    rule(
        &mut s,
        output,
        &format!("oifname {br} meta l4proto {{ tcp, udp }} th dport {{ 53, 68, 546 }} accept"),
    );
    // Guest to guest.
    rule(
        &mut s,
        forward,
        &format!("iifname {br} oifname {br} accept"),
    );
    let out_dev = net
        .forward
        .dev()
        .map(|d| format!(" oifname \"{d}\""))
        .unwrap_or_default();
    let in_dev = net
        .forward
        .dev()
        .map(|d| format!(" iifname \"{d}\""))
        .unwrap_or_default();
    if mode != ForwardMode::None {
        for ip in &net.ips {
            let Some(prefix) = ip.prefix_len() else {
                continue;
            };
            let v6 = !ip.is_v4();
            // IPv6 is forwarded when routed, or NATed with <nat ipv6='yes'>.
            if v6 && mode == ForwardMode::Nat && net.forward.nat.ipv6 != Some(true) {
                continue;
            }
            let fam = if v6 { "ip6" } else { "ip" };
            let subnet = format!("{}/{prefix}", addr::network_of(ip.address, prefix));
            rule(
                &mut s,
                forward,
                &format!("iifname {br}{out_dev} {fam} saddr {subnet} accept"),
            );
            let replies = if mode == ForwardMode::Nat {
                " ct state established,related"
            } else {
                ""
            };
            rule(
                &mut s,
                forward,
                &format!("oifname {br}{in_dev} {fam} daddr {subnet}{replies} accept"),
            );
            if mode == ForwardMode::Nat {
                nat_rules(&mut s, post, net, ip.address, &subnet, &out_dev, fam);
            }
        }
    }
    // Everything else to or from the bridge is refused.
    rule(&mut s, forward, &format!("iifname {br} reject"));
    rule(&mut s, forward, &format!("oifname {br} reject"));
    Some(s)
}

fn nat_rules(
    s: &mut String,
    chain: &str,
    net: &Network,
    address: IpAddr,
    subnet: &str,
    out_dev: &str,
    fam: &str,
) {
    let rule = |s: &mut String, r: String| {
        let _ = writeln!(s, "add rule {FAMILY} {TABLE} {chain} {r}");
    };
    let base = format!("{fam} saddr {subnet}{out_dev}");
    if address.is_ipv4() {
        // Multicast and broadcast never leave the subnet.
        rule(s, format!("{base} ip daddr 224.0.0.0/24 return"));
        rule(s, format!("{base} ip daddr 255.255.255.255 return"));
    } else {
        rule(s, format!("{base} ip6 daddr ff02::/16 return"));
    }
    let nat = &net.forward.nat;
    let (lo, hi) = nat.ports.unwrap_or((1024, 65535));
    let target = match (nat.addr, address.is_ipv4()) {
        (Some((a, b)), true) if a == b => format!("snat ip to {a}"),
        (Some((a, b)), true) => format!("snat ip to {a}-{b}"),
        _ => "masquerade".into(),
    };
    let ports = if target == "masquerade" {
        format!(" to :{lo}-{hi}")
    } else {
        format!(":{lo}-{hi}")
    };
    rule(
        s,
        format!("{base} {fam} daddr != {subnet} meta l4proto {{ tcp, udp }} {target}{ports}"),
    );
    rule(s, format!("{base} {fam} daddr != {subnet} {target}"));
}

/// The script that removes the rules of the network on `bridge`, and the
/// table when no other network has chains in it.
fn removal(bridge: &str) -> String {
    let mut s = format!("add table {FAMILY} {TABLE}\n");
    for (name, def) in chains(bridge) {
        // Adding first makes the delete valid even if the chain is gone.
        let _ = writeln!(s, "add chain {FAMILY} {TABLE} {name} {{ {def} }}");
        let _ = writeln!(s, "delete chain {FAMILY} {TABLE} {name}");
    }
    s
}

fn nft_binary() -> String {
    std::env::var("VIRTKIT_NFT").unwrap_or_else(|_| {
        ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nft")
            .to_string()
    })
}

/// Runs `nft -f -` with `script` (one atomic transaction).
fn nft(script: &str) -> Result<String> {
    let bin = nft_binary();
    let helper = |detail: String| NetworkError::Helper {
        program: bin.clone(),
        detail,
    };
    let mut child = Command::new(&bin)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            helper(format!(
                "cannot run ({e}); install nftables (scripts/install-test-deps net)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| helper(format!("cannot send the rules: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| helper(format!("did not finish: {e}")))?;
    if !out.status.success() {
        return Err(helper(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs the rules of `net`; returns whether any were installed.
pub fn add(net: &Network, bridge: &str) -> Result<bool> {
    match ruleset(net, bridge) {
        Some(script) => nft(&script).map(|_| true),
        None => Ok(false),
    }
}

/// Removes the rules of the network on `bridge`, and virtkit's table when
/// it is empty.
pub fn remove(bridge: &str) -> Result<()> {
    nft(&removal(bridge))?;
    let listing = nft(&format!("list table {FAMILY} {TABLE}\n"))?;
    if !listing.contains("chain ") {
        nft(&format!("delete table {FAMILY} {TABLE}\n"))?;
    }
    Ok(())
}

/// Whether virtkit's table exists (for tests and checks).
pub fn table_exists() -> bool {
    nft(&format!("list table {FAMILY} {TABLE}\n")).is_ok()
}
