//! dnsmasq's lease file (`dhcp-leasefile`), read for `net-dhcp-leases`.
//!
//! IPv4 lines: `EXPIRY MAC IP HOSTNAME CLIENTID`; after a `duid SERVERDUID`
//! line, IPv6 lines: `EXPIRY IAID IP HOSTNAME CLIENTDUID`. `*` means empty.

use virtkit_core::NetworkDhcpLease;

/// Parses a lease file; malformed lines are skipped.
pub fn parse(text: &str, iface: &str, prefix_of: impl Fn(&str) -> u32) -> Vec<NetworkDhcpLease> {
    let opt = |s: &str| (s != "*").then(|| s.to_string());
    let mut out = Vec::new();
    let mut v6 = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"duid") {
            v6 = true;
            continue;
        }
        if f.len() < 4 {
            continue;
        }
        let Ok(expiry) = f[0].parse::<i64>() else {
            continue;
        };
        let ip = f[2].to_string();
        out.push(NetworkDhcpLease {
            iface: iface.to_string(),
            expiry_time: expiry,
            family: if v6 { "ipv6" } else { "ipv4" }.into(),
            mac: if v6 { String::new() } else { f[1].to_string() },
            iaid: v6.then(|| f[1].to_string()),
            prefix: prefix_of(&ip),
            ipaddr: ip,
            hostname: opt(f[3]),
            clientid: f.get(4).and_then(|c| opt(c)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_v4_and_v6_leases() {
        let text = "1700000000 52:54:00:aa:bb:cc 10.9.0.15 guest1 01:52:54:00:aa:bb:cc\n\
                    1700000100 52:54:00:aa:bb:cd 10.9.0.16 * *\n\
                    duid 00:01:00:01:2c:00\n\
                    1700000200 1234 fd00::15 g6 00:01:00:01\n";
        let l = super::parse(text, "virbr0", |ip| if ip.contains(':') { 64 } else { 24 });
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].hostname.as_deref(), Some("guest1"));
        assert_eq!(l[1].hostname, None);
        assert_eq!((l[2].family.as_str(), l[2].prefix), ("ipv6", 64));
        assert_eq!(l[2].iaid.as_deref(), Some("1234"));
    }
}
