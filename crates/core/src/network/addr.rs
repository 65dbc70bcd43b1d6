//! IP address arithmetic as libvirt's network code does it: prefixes from
//! netmasks or address classes, subnet membership, DHCP range sizes (with
//! libvirt's checks and messages) and reverse-DNS (PTR) zone names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses a numeric IPv4 or IPv6 address (no names, no surrounding blanks).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// The prefix length of a contiguous IPv4 netmask.
pub fn netmask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    // Contiguous: every bit after the leading ones is zero.
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The IPv4 netmask of a prefix length (0-32).
pub fn prefix_netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))
}

/// The natural (class A/B/C) prefix of an IPv4 address, libvirt's default
/// when neither `prefix` nor `netmask` is given; `None` for class D/E.
pub fn natural_prefix(a: Ipv4Addr) -> Option<u8> {
    let first = a.octets()[0];
    match first {
        f if f & 0x80 == 0 => Some(8),
        f if f & 0xC0 == 0x80 => Some(16),
        f if f & 0xE0 == 0xC0 => Some(24),
        _ => None,
    }
}

/// `addr` with every bit past `prefix` cleared.
pub fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let m = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let m = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The last address of `addr`'s subnet (IPv4 broadcast).
pub fn last_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let host = u32::MAX.checked_shr(p).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let host = u128::MAX.checked_shr(p).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | host))
        }
    }
}

/// Whether `a` lies in `net`/`prefix`.
pub fn in_subnet(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    a.is_ipv4() == net.is_ipv4() && network_of(a, prefix) == network_of(net, prefix)
}

/// Whether two subnets overlap (one contains the other's network).
pub fn subnets_overlap(a: IpAddr, pa: u8, b: IpAddr, pb: u8) -> bool {
    if a.is_ipv4() != b.is_ipv4() {
        return false;
    }
    let p = pa.min(pb);
    network_of(a, p) == network_of(b, p)
}

/// The number of addresses from `start` to `end` inclusive, with libvirt's
/// checks (`virSocketAddrGetRange`): same family, inside `net` (address and
/// prefix) when given, not the IPv4 network or broadcast address, not
/// reversed, and for IPv6 at most 65535 addresses. The error is libvirt's
/// message.
pub fn range_size(start: IpAddr, end: IpAddr, net: Option<(IpAddr, u8)>) -> Result<u64, String> {
    if start.is_ipv4() != end.is_ipv4() {
        return Err(format!(
            "mismatch of address family in range {start} - {end}"
        ));
    }
    if let Some((addr, prefix)) = net {
        if addr.is_ipv4() != start.is_ipv4() {
            return Err(format!(
                "{} family specified for network {addr}, but range {start} - {end} is {}",
                if addr.is_ipv4() { "IPv4" } else { "IPv6" },
                if start.is_ipv4() { "IPv4" } else { "IPv6" },
            ));
        }
        if !in_subnet(start, addr, prefix) || !in_subnet(end, addr, prefix) {
            return Err(format!(
                "range {start} - {end} is not entirely within network {addr}/{prefix}"
            ));
        }
        if start.is_ipv4() && prefix < 31 {
            if start == network_of(addr, prefix) {
                return Err(format!(
                    "start of range {start} - {end} in network {addr}/{prefix} is the network address"
                ));
            }
            if end == last_of(addr, prefix) {
                return Err(format!(
                    "end of range {start} - {end} in network {addr}/{prefix} is the broadcast address"
                ));
            }
        }
    }
    let size: i128 = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => i128::from(u32::from(e)) - i128::from(u32::from(s)) + 1,
        (IpAddr::V6(s), IpAddr::V6(e)) => {
            let (s, e) = (s.segments(), e.segments());
            if s[..7] != e[..7] {
                return Err(format!(
                    "range {start} - {end} is too large (more than 65535 addresses)"
                ));
            }
            i128::from(e[7]) - i128::from(s[7]) + 1
        }
        _ => {
            return Err(format!(
                "mismatch of address family in range {start} - {end}"
            ));
        }
    };
    if size < 1 {
        return Err(format!("range {start} - {end} is reversed"));
    }
    Ok(size as u64)
}

/// The reverse-DNS zone of a subnet (`122.168.192.in-addr.arpa`), or `None`
/// when the prefix does not fall on an octet (IPv4) or nibble (IPv6)
/// boundary, where no zone can be named.
pub fn ptr_domain(addr: IpAddr, prefix: u8) -> Option<String> {
    match addr {
        IpAddr::V4(a) => {
            if !prefix.is_multiple_of(8) || prefix == 0 || prefix > 32 {
                return None;
            }
            let o = a.octets();
            let n = usize::from(prefix / 8);
            let mut parts: Vec<String> = o[..n].iter().map(u8::to_string).collect();
            parts.reverse();
            Some(format!("{}.in-addr.arpa", parts.join(".")))
        }
        IpAddr::V6(a) => {
            if !prefix.is_multiple_of(4) || prefix == 0 || prefix > 128 {
                return None;
            }
            let bytes = a.octets();
            let nibbles: Vec<u8> = bytes.iter().flat_map(|b| [b >> 4, b & 0xf]).collect();
            let n = usize::from(prefix / 4);
            let parts: Vec<String> = nibbles[..n]
                .iter()
                .rev()
                .map(|x| format!("{x:x}"))
                .collect();
            Some(format!("{}.ip6.arpa", parts.join(".")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_and_masks() {
        assert_eq!(netmask_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(netmask_prefix("255.0.255.0".parse().unwrap()), None);
        assert_eq!(netmask_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(prefix_netmask(20).to_string(), "255.255.240.0");
        assert_eq!(natural_prefix("10.24.10.1".parse().unwrap()), Some(8));
        assert_eq!(natural_prefix("192.168.1.1".parse().unwrap()), Some(24));
        assert_eq!(natural_prefix("224.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn range_checks_use_libvirt_messages() {
        let net = Some((ip("192.168.122.1"), 24));
        assert_eq!(
            range_size(ip("192.168.122.2"), ip("192.168.122.254"), net),
            Ok(253)
        );
        assert!(
            range_size(ip("192.168.122.2"), ip("192.168.123.254"), net)
                .unwrap_err()
                .contains("not entirely within network 192.168.122.1/24")
        );
        assert!(
            range_size(ip("192.168.122.9"), ip("192.168.122.3"), net)
                .unwrap_err()
                .contains("reversed")
        );
        assert!(
            range_size(ip("192.168.122.0"), ip("192.168.122.3"), net)
                .unwrap_err()
                .contains("network address")
        );
        let v6 = Some((ip("2001:db8:ac10:fd01::1"), 64));
        assert_eq!(
            range_size(
                ip("2001:db8:ac10:fd01::1:10"),
                ip("2001:db8:ac10:fd01::1:ff"),
                v6
            ),
            Ok(240)
        );
    }

    #[test]
    fn ptr_zones() {
        assert_eq!(
            ptr_domain(ip("192.168.122.1"), 24).as_deref(),
            Some("122.168.192.in-addr.arpa")
        );
        assert_eq!(
            ptr_domain(ip("2001:db8:ac10:fe01::1"), 64).as_deref(),
            Some("1.0.e.f.0.1.c.a.8.b.d.0.1.0.0.2.ip6.arpa")
        );
        assert_eq!(ptr_domain(ip("10.0.0.1"), 12), None);
    }

    #[test]
    fn overlap() {
        assert!(subnets_overlap(ip("10.0.0.1"), 24, ip("10.0.0.128"), 25));
        assert!(!subnets_overlap(ip("10.0.0.1"), 24, ip("10.0.1.1"), 24));
    }
}
