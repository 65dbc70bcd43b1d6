//! dnsmasq's configuration for a network, as libvirt 9.0 writes it
//! (`networkDnsmasqConfContents`): the `.conf` file, the DHCP hosts file
//! (`dhcp-hostsfile`) and the DNS hosts file (`addn-hosts`).
//!
//! Pure text generation from the model; the byte layout follows libvirt so
//! that `networkxml2confdata` compares byte for byte.

use std::fmt::Write as _;
use std::net::IpAddr;

use virtkit_core::network::addr;
use virtkit_core::network::def::{DhcpHost, ForwardMode, IpDef, Network};
use virtkit_core::xml::escape_libvirt;

use crate::error::{NetworkError, Result};

/// What dnsmasq's `--version` reports, as far as the configuration depends
/// on it. libvirt 9.0 requires 2.67 and no longer varies the file by
/// version; the value is kept for the log and for future options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqCaps {
    /// Path of the binary.
    pub binary: String,
    /// Version as `(major, minor)`.
    pub version: (u32, u32),
}

impl DnsmasqCaps {
    /// The capability set libvirt's `networkxml2conftest` uses: a
    /// `/usr/sbin/dnsmasq` that reports `Dnsmasq version 2.67`.
    pub fn test_2_67() -> DnsmasqCaps {
        DnsmasqCaps {
            binary: "/usr/sbin/dnsmasq".into(),
            version: (2, 67),
        }
    }

    /// Reads the version from `--version` output text.
    pub fn from_version_output(binary: &str, text: &str) -> Result<DnsmasqCaps> {
        let rest = text
            .strip_prefix("Dnsmasq version ")
            .ok_or_else(|| NetworkError::Helper {
                program: binary.into(),
                detail: format!(
                    "cannot parse the version in '{}' (expected 'Dnsmasq version X.Y')",
                    text.lines().next().unwrap_or_default()
                ),
            })?;
        let ver = rest.split_whitespace().next().unwrap_or_default();
        let mut parts = ver.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if version < (2, 67) {
            return Err(NetworkError::Helper {
                program: binary.into(),
                detail: format!(
                    "dnsmasq {ver} is too old: version 2.67 or newer is required (install Debian's dnsmasq-base)"
                ),
            });
        }
        Ok(DnsmasqCaps {
            binary: binary.into(),
            version,
        })
    }
}

/// Where the generated files live and what the running dnsmasq is told.
#[derive(Debug, Clone)]
pub struct ConfParams {
    /// Directory of the hosts files (`/var/lib/libvirt/dnsmasq` for libvirt).
    pub state_dir: String,
    /// `pid-file=` line, if dnsmasq should write one.
    pub pid_file: Option<String>,
    /// Extra lines virtkit's own driver adds (lease file, ...), appended
    /// before the user's `<dnsmasq:options>`; empty for libvirt's layout.
    pub extra: Vec<String>,
}

impl ConfParams {
    /// The inputs of libvirt's `networkxml2conftest`.
    pub fn libvirt_test() -> ConfParams {
        ConfParams {
            state_dir: "/var/lib/libvirt/dnsmasq".into(),
            pid_file: None,
            extra: Vec::new(),
        }
    }
}

/// The three files of one network's dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqConfig {
    /// The configuration file.
    pub conf: String,
    /// `dhcp-hostsfile`: static DHCP leases, one per line.
    pub hostsfile: String,
    /// `addn-hosts`: DNS host records.
    pub addnhosts: String,
    /// Path of the hosts file named in `conf`.
    pub hostsfile_path: String,
    /// Path of the addn-hosts file named in `conf`.
    pub addnhosts_path: String,
}

/// The hosts-file paths of a network: `<dir>/<name>.hostsfile`, the name
/// escaped as libvirt's buffer escaping does.
pub fn host_file_paths(state_dir: &str, name: &str) -> (String, String) {
    let n = escape_libvirt(name);
    (
        format!("{state_dir}/{n}.hostsfile"),
        format!("{state_dir}/{n}.addnhosts"),
    )
}

fn config_err(msg: impl Into<String>) -> NetworkError {
    NetworkError::Config(msg.into())
}

/// Refuses values that would break the line-oriented file.
fn check_line(record: &str, field: &str, value: Option<&str>) -> Result<()> {
    if value.is_some_and(|v| v.contains(['\r', '\n'])) {
        return Err(config_err(format!(
            "DNS {record} record {field} must not contain line breaks"
        )));
    }
    Ok(())
}

/// Generates dnsmasq's files for `net`.
pub fn generate(net: &Network, caps: &DnsmasqCaps, params: &ConfParams) -> Result<DnsmasqConfig> {
    let _ = caps;
    let bridge = net.bridge.as_deref().ok_or_else(|| {
        config_err(format!(
            "network '{}' has no bridge name; define it through a network driver, which assigns one",
            net.name
        ))
    })?;
    let dns = &net.dns;
    let want_dns = dns.enable != Some(false);
    let mut c = String::new();
    let _ = write!(
        c,
        "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n\
         ##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:\n\
         ##    virsh net-edit {}\n\
         ## or other application using the libvirt API.\n\
         ##\n\
         ## dnsmasq conf file created by libvirt\n\
         strict-order\n",
        net.name
    );
    if !want_dns {
        c.push_str("port=0\n");
    }
    if want_dns && !dns.forwarders.is_empty() {
        // Without a domain, an address takes every query nobody else
        // claims, so the host's resolv.conf is not needed any more.
        let mut no_resolv = false;
        for f in &dns.forwarders {
            c.push_str("server=");
            if let Some(d) = &f.domain {
                let _ = write!(c, "/{d}/");
            }
            match f.addr {
                Some(a) => {
                    c.push_str(&a.to_string());
                    if let Some(p) = f.port {
                        let _ = write!(c, "#{p}");
                    }
                    c.push('\n');
                    no_resolv |= f.domain.is_none();
                }
                // "do not forward this domain"
                None => c.push_str("#\n"),
            }
        }
        if no_resolv {
            c.push_str("no-resolv\n");
        }
    }
    if let Some(d) = &net.domain {
        if d.local_only == Some(true) {
            let _ = writeln!(c, "local=/{}/", d.name);
        }
        let _ = write!(c, "domain={}\nexpand-hosts\n", d.name);
    }
    if want_dns {
        for ip in net.ips.iter().filter(|i| i.local_ptr == Some(true)) {
            let prefix = ip.prefix_len().unwrap_or(0);
            let zone = addr::ptr_domain(ip.address, prefix).ok_or_else(|| {
                config_err(format!(
                    "PTR domain for {} network with prefix {prefix} cannot be automatically created",
                    if ip.is_v4() { "IPv4" } else { "IPv6" }
                ))
            })?;
            let _ = writeln!(c, "local=/{zone}/");
        }
    }
    if want_dns && dns.forward_plain_names == Some(false) {
        c.push_str("domain-needed\nlocal=//\n");
    }
    if let Some(p) = &params.pid_file {
        let _ = writeln!(c, "pid-file={p}");
    }
    c.push_str("except-interface=lo\n");
    // bind-dynamic with only an interface: dnsmasq answers nothing that
    // arrives from outside the bridge (CVE-2012-3411).
    let _ = write!(c, "bind-dynamic\ninterface={bridge}\n");
    if net.forward.mode == ForwardMode::None {
        // Isolated: no default route, no upstream DNS, and IPv6 RAs that
        // announce no default route.
        c.push_str("dhcp-option=3\nno-resolv\nra-param=*,0,0\n");
    }
    if want_dns {
        for t in &dns.txts {
            check_line("TXT", "name", Some(&t.name))?;
            check_line("TXT", "value", Some(&t.value))?;
            let _ = writeln!(c, "txt-record={},{}", t.name, t.value);
        }
        for s in &dns.srvs {
            let (Some(service), Some(protocol)) = (&s.service, &s.protocol) else {
                return Err(config_err(format!(
                    "Missing required 'service' attribute in SRV record of network '{}'",
                    net.name
                )));
            };
            for (f, v) in [
                ("service", Some(service.as_str())),
                ("protocol", Some(protocol.as_str())),
                ("domain", s.domain.as_deref()),
                ("target", s.target.as_deref()),
            ] {
                check_line("SRV", f, v)?;
            }
            let _ = write!(c, "srv-host=_{service}._{protocol}");
            if let Some(d) = &s.domain {
                let _ = write!(c, ".{d}");
            }
            // An empty or "." target means "no such service here" (RFC
            // 2782): port, priority and weight are then meaningless. Each is
            // positional, so an earlier one is written when a later one is.
            if let Some(t) = s.target.as_deref().filter(|t| *t != ".") {
                let _ = write!(c, ",{t}");
                if s.port != 0 || s.priority != 0 || s.weight != 0 {
                    let _ = write!(c, ",{}", if s.port != 0 { s.port } else { 1 });
                }
                if s.priority != 0 || s.weight != 0 {
                    let _ = write!(c, ",{}", s.priority);
                }
                if s.weight != 0 {
                    let _ = write!(c, ",{}", s.weight);
                }
            }
            c.push('\n');
        }
    }

    // The first DHCP-serving address of each family; TFTP per IPv4 address.
    let mut v4: Option<&IpDef> = None;
    let mut v6: Option<&IpDef> = None;
    let mut tftp_enabled = false;
    for ip in &net.ips {
        let slot = if ip.is_v4() { &mut v4 } else { &mut v6 };
        if ip.has_dhcp() {
            if slot.is_some() {
                return Err(config_err(format!(
                    "For {}, multiple DHCP definitions cannot be specified.",
                    if ip.is_v4() { "IPv4" } else { "IPv6" }
                )));
            }
            *slot = Some(ip);
        }
        if ip.is_v4()
            && let Some(root) = &ip.tftp_root
        {
            if !tftp_enabled {
                c.push_str("enable-tftp\n");
                tftp_enabled = true;
            }
            let _ = writeln!(c, "tftp-root={root}");
        }
    }
    let mut lease_max: u64 = 0;
    let mut hosts = String::new();
    for ip in [v4, v6].into_iter().flatten() {
        dhcp_section(&mut c, &mut hosts, ip, &mut lease_max);
    }
    if lease_max > 0 {
        let _ = writeln!(c, "dhcp-lease-max={lease_max}");
    }
    let (hostsfile_path, addnhosts_path) = host_file_paths(&params.state_dir, &net.name);
    // Written even when empty, so that hosts can be added at run time.
    if v4.is_some() || v6.is_some() {
        let _ = writeln!(c, "dhcp-hostsfile={hostsfile_path}");
    }
    if want_dns {
        let _ = writeln!(c, "addn-hosts={addnhosts_path}");
    }
    if let Some(mtu) = net.mtu {
        let _ = writeln!(c, "dhcp-option=option:mtu,{mtu}");
    }
    if v6.is_some() {
        c.push_str("enable-ra\n");
    } else {
        for ip in net.ips.iter().filter(|i| !i.is_v4() && !i.has_dhcp()) {
            let _ = writeln!(c, "dhcp-range={},ra-only", ip.address);
        }
    }
    for line in &params.extra {
        let _ = writeln!(c, "{line}");
    }
    for o in &net.dnsmasq_options {
        let _ = writeln!(c, "{o}");
    }
    Ok(DnsmasqConfig {
        conf: c,
        hostsfile: hosts,
        addnhosts: addn_hosts(net),
        hostsfile_path,
        addnhosts_path,
    })
}

/// The DHCP lines of one address and its static hosts.
fn dhcp_section(c: &mut String, hosts: &mut String, ip: &IpDef, lease_max: &mut u64) {
    let prefix = ip.prefix_len().unwrap_or(0);
    for r in &ip.ranges {
        if ip.is_v4() {
            // dnsmasq wants a netmask for IPv4, a prefix for IPv6.
            let _ = write!(
                c,
                "dhcp-range={},{},{}",
                r.start,
                r.end,
                addr::prefix_netmask(prefix)
            );
        } else {
            let _ = write!(c, "dhcp-range={},{},{prefix}", r.start, r.end);
        }
        if let Some(l) = &r.lease {
            let _ = write!(c, ",{}", l.dnsmasq());
        }
        c.push('\n');
        *lease_max += r.size;
    }
    // Static hosts only: a "static" range turns the DHCP service on.
    if ip.ranges.is_empty() && !ip.hosts.is_empty() {
        let _ = write!(c, "dhcp-range={},static", ip.address);
        if !ip.is_v4() {
            let _ = write!(c, ",{prefix}");
        }
        c.push('\n');
    }
    for h in &ip.hosts {
        if let Some(line) = dhcp_host_line(h, !ip.is_v4()) {
            hosts.push_str(&line);
            hosts.push('\n');
        }
    }
    if ip.is_v4() {
        if ip.has_dhcp() {
            c.push_str("dhcp-no-override\ndhcp-authoritative\n");
        }
        if let Some((file, server)) = &ip.bootp {
            match server {
                Some(s) => {
                    let _ = writeln!(c, "dhcp-boot={file},,{s}");
                }
                None => {
                    let _ = writeln!(c, "dhcp-boot={file}");
                }
            }
        }
    }
}

/// One `dhcp-hostsfile` line (dnsmasq's `--dhcp-host` syntax).
fn dhcp_host_line(h: &DhcpHost, v6: bool) -> Option<String> {
    let ip = h.ip?;
    let mut s = if v6 {
        let mut s = match (&h.id, &h.name) {
            (Some(id), Some(n)) => format!("id:{id},{n}"),
            (Some(id), None) => format!("id:{id}"),
            (None, Some(n)) => n.clone(),
            (None, None) => String::new(),
        };
        let _ = write!(s, ",[{ip}]");
        s
    } else {
        match (&h.mac, &h.name) {
            (Some(m), Some(n)) => format!("{m},{ip},{n}"),
            (None, Some(n)) => format!("{n},{ip}"),
            (Some(m), None) => format!("{m},{ip}"),
            (None, None) => ip.to_string(),
        }
    };
    if let Some(l) = &h.lease {
        let _ = write!(s, ",{}", l.dnsmasq());
    }
    Some(s)
}

/// The `addn-hosts` file: one line per address, its names tab-separated.
fn addn_hosts(net: &Network) -> String {
    let mut grouped: Vec<(IpAddr, Vec<&str>)> = Vec::new();
    for h in &net.dns.hosts {
        let names = h.names.iter().map(String::as_str);
        match grouped.iter_mut().find(|(ip, _)| *ip == h.ip) {
            Some((_, v)) => v.extend(names),
            None => grouped.push((h.ip, names.collect())),
        }
    }
    let mut s = String::new();
    for (ip, names) in grouped {
        let _ = write!(s, "{ip}\t");
        for n in names {
            let _ = write!(s, "{n}\t");
        }
        s.push('\n');
    }
    s
}
