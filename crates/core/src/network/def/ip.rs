//! `<ip>` (address, netmask or prefix, DHCP ranges and static hosts, BOOTP,
//! TFTP) and `<route>`.

use std::net::IpAddr;

use super::parse::{Cx, kids, parse_uint};
use super::{DhcpHost, DhcpRange, IpDef, Lease, LeaseUnit, Route};
use crate::error::{ErrorKind, Result};
use crate::ids::MacAddr;
use crate::network::addr;
use crate::xml::{Element, XPath};

const LEASE_UNITS: &[(&str, LeaseUnit)] = &[
    ("seconds", LeaseUnit::Seconds),
    ("minutes", LeaseUnit::Minutes),
    ("hours", LeaseUnit::Hours),
];

pub(super) fn parse(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<IpDef> {
    let name = &cx.name;
    let family = el.attr("family").map(|s| s.into_owned());
    let Some(address_s) = el.attr("address") else {
        return Err(cx.err(
            el,
            p,
            format!("Missing required address attribute in network '{name}'"),
        ));
    };
    let address = addr::parse_ip(&address_s).ok_or_else(|| {
        cx.err_attr(
            el,
            p,
            "address",
            format!("Invalid address '{address_s}' in network '{name}'"),
        )
    })?;
    let netmask_s = el.attr("netmask");
    let netmask = match &netmask_s {
        Some(m) => Some(addr::parse_ip(m).ok_or_else(|| {
            cx.err_attr(
                el,
                p,
                "netmask",
                format!("Invalid netmask '{m}' in network '{name}'"),
            )
        })?),
        None => None,
    };
    let prefix = cx
        .uint(el, p, "prefix", u64::from(u32::MAX))?
        .map(|v| v as u32);
    let local_ptr = cx.tristate(el, p, "localPtr")?;
    let unsupported =
        |attr: &str, msg: String| cx.at_attr(ErrorKind::ConfigUnsupported, el, p, attr, msg);

    let mut netmask_v4 = None;
    match family.as_deref() {
        None | Some("ipv4") => {
            if !address.is_ipv4() {
                return Err(unsupported(
                    "address",
                    format!(
                        "{} family specified for non-IPv4 address '{address_s}' in network '{name}'",
                        if family.is_none() { "no" } else { "ipv4" }
                    ),
                ));
            }
            if let (Some(ms), Some(m)) = (&netmask_s, netmask) {
                match m {
                    IpAddr::V4(v4) => netmask_v4 = Some(v4),
                    IpAddr::V6(_) => {
                        return Err(unsupported(
                            "netmask",
                            format!(
                                "Invalid netmask '{ms}' for address '{address_s}' in network '{name}' (both must be IPv4)"
                            ),
                        ));
                    }
                }
                if prefix.is_some_and(|p| p > 0) {
                    return Err(unsupported(
                        "prefix",
                        format!(
                            "Network '{name}' IP address cannot have both a prefix and a netmask"
                        ),
                    ));
                }
            } else if prefix.is_some_and(|p| p > 32) {
                return Err(unsupported(
                    "prefix",
                    format!(
                        "Invalid IPv4 prefix '{}' in network '{name}'",
                        prefix.unwrap_or(0)
                    ),
                ));
            }
        }
        Some("ipv6") => {
            if !address.is_ipv6() {
                return Err(unsupported(
                    "address",
                    format!(
                        "Family 'ipv6' specified for non-IPv6 address '{address_s}' in network '{name}'"
                    ),
                ));
            }
            if netmask_s.is_some() {
                return Err(unsupported(
                    "netmask",
                    format!(
                        "netmask not allowed for IPv6 address '{address_s}' in network '{name}'"
                    ),
                ));
            }
            if prefix.is_some_and(|p| p > 128) {
                return Err(unsupported(
                    "prefix",
                    format!(
                        "Invalid IPv6 prefix '{}' in network '{name}'",
                        prefix.unwrap_or(0)
                    ),
                ));
            }
        }
        Some(f) => {
            return Err(cx.err_attr(
                el,
                p,
                "family",
                format!("Unrecognized family '{f}' in network '{name}'"),
            ));
        }
    }
    if let Some(m) = netmask_v4
        && addr::netmask_prefix(m).is_none()
    {
        return Err(cx.at_attr(
            ErrorKind::ConfigUnsupported,
            el,
            p,
            "netmask",
            format!("Invalid netmask '{m}' in network '{name}' (the mask bits must be contiguous)"),
        ));
    }

    let mut ip = IpDef {
        family,
        address,
        netmask: netmask_v4,
        prefix,
        local_ptr,
        ranges: Vec::new(),
        hosts: Vec::new(),
        bootp: None,
        tftp_root: None,
    };
    if ip.prefix_len().is_none() {
        return Err(cx.at_attr(
            ErrorKind::ConfigUnsupported,
            el,
            p,
            "address",
            format!(
                "Network '{name}' IP address '{address_s}' has no prefix or netmask and no natural class"
            ),
        ));
    }
    if let Some(dhcp) = el.child("dhcp") {
        dhcp_parse(cx, dhcp, &p.named("dhcp"), &mut ip)?;
    }
    if let Some(tftp) = el.child("tftp") {
        if !ip.is_v4() {
            return Err(cx.at(
                ErrorKind::ConfigUnsupported,
                tftp,
                &p.named("tftp"),
                format!("Unsupported <tftp> element in an IPv6 element in network '{name}'"),
            ));
        }
        ip.tftp_root = tftp.attr("root").map(|s| s.into_owned());
    }
    Ok(ip)
}

fn dhcp_parse(cx: &Cx<'_>, dhcp: &Element, p: &XPath, ip: &mut IpDef) -> Result<()> {
    let name = &cx.name;
    let prefix = ip.prefix_len().unwrap_or(0);
    for (r, rp) in kids(dhcp, p, "range") {
        let start_s = r.attr("start").ok_or_else(|| {
            cx.err(
                r,
                &rp,
                format!("Missing 'start' attribute in dhcp range for network '{name}'"),
            )
        })?;
        let bad = |a: &str, v: &str| {
            cx.err_attr(
                r,
                &rp,
                a,
                format!("Cannot parse address '{v}' in dhcp range of network '{name}'"),
            )
        };
        let start = addr::parse_ip(&start_s).ok_or_else(|| bad("start", &start_s))?;
        let end_s = r.attr("end").ok_or_else(|| {
            cx.err(
                r,
                &rp,
                format!("Missing 'end' attribute in dhcp range for network '{name}'"),
            )
        })?;
        let end = addr::parse_ip(&end_s).ok_or_else(|| bad("end", &end_s))?;
        let size = addr::range_size(start, end, Some((ip.address, prefix)))
            .map_err(|m| cx.at(ErrorKind::ConfigUnsupported, r, &rp, m))?;
        let lease = match r.child("lease") {
            Some(l) => lease(cx, l, &rp.named("lease"))?,
            None => None,
        };
        ip.ranges.push(DhcpRange {
            start,
            end,
            size,
            lease,
        });
    }
    for (h, hp) in kids(dhcp, p, "host") {
        ip.hosts.push(dhcp_host(cx, h, &hp, ip, false)?);
    }
    if let Some(b) = dhcp.child("bootp")
        && ip.is_v4()
    {
        let bp = p.named("bootp");
        let file = b.attr("file").ok_or_else(|| {
            cx.err(
                b,
                &bp,
                "Missing required attribute 'file' in element 'bootp'",
            )
        })?;
        let server = cx.ip_attr(b, &bp, "server", ErrorKind::XmlError, |v| {
            format!("Invalid BOOTP server address '{v}' in network '{name}'")
        })?;
        ip.bootp = Some((file.into_owned(), server));
    }
    Ok(())
}

/// A `<lease>`; `None` when it has no `expiry`.
fn lease(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<Option<Lease>> {
    let Some(expiry) = cx.uint(el, p, "expiry", u64::MAX)? else {
        return Ok(None);
    };
    let unit = match el.attr("unit") {
        None => LeaseUnit::Minutes,
        Some(u) => LEASE_UNITS
            .iter()
            .find(|(n, _)| *n == u)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                cx.err_attr(
                    el,
                    p,
                    "unit",
                    format!(
                        "Invalid value for attribute 'unit' in element 'lease': '{u}'. Expected seconds, minutes or hours"
                    ),
                )
            })?,
    };
    // dnsmasq's minimum lease is two minutes.
    if expiry > 0
        && ((unit == LeaseUnit::Seconds && expiry < 120)
            || (unit == LeaseUnit::Minutes && expiry < 2))
    {
        return Err(cx.at(
            ErrorKind::ConfigUnsupported,
            el,
            p,
            "The minimum lease time should be greater than 2 minutes",
        ));
    }
    Ok(Some(Lease { expiry, unit }))
}

/// A `<dhcp><host>`; `partial` is for `net-update` deletions, where any
/// one of name, mac or ip identifies the entry.
pub(crate) fn dhcp_host(
    cx: &Cx<'_>,
    h: &Element,
    p: &XPath,
    ip: &IpDef,
    partial: bool,
) -> Result<DhcpHost> {
    let name = &cx.name;
    let v6 = !ip.is_v4();
    let mac = h.attr("mac").map(|s| s.into_owned());
    if let Some(m) = &mac {
        if v6 {
            return Err(cx.err_attr(
                h,
                p,
                "mac",
                format!(
                    "Invalid to specify MAC address '{m}' in network '{name}' IPv6 static host definition"
                ),
            ));
        }
        let parsed: MacAddr = m.parse().map_err(|_| {
            cx.err_attr(
                h,
                p,
                "mac",
                format!("Cannot parse MAC address '{m}' in network '{name}'"),
            )
        })?;
        if parsed.is_multicast() {
            return Err(cx.err_attr(
                h,
                p,
                "mac",
                format!("expected unicast mac address, found multicast '{m}' in network '{name}'"),
            ));
        }
    }
    let id = h.attr("id").map(|s| s.into_owned());
    if let Some(i) = &id
        && let Some(c) = i.chars().find(|c| !(c.is_ascii_hexdigit() || *c == ':'))
    {
        return Err(cx.err_attr(
            h,
            p,
            "id",
            format!("Invalid character '{c}' in id '{i}' of network '{name}'"),
        ));
    }
    let hname = h.attr("name").map(|s| s.into_owned());
    if let Some(n) = &hname
        && !n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(cx.err_attr(
            h,
            p,
            "name",
            format!("Cannot use host name '{n}' in network '{name}'"),
        ));
    }
    let addr_v = cx.ip_attr(h, p, "ip", ErrorKind::XmlError, |_| {
        format!("Invalid IP address in static host definition for network '{name}'")
    })?;
    if partial {
        if mac.is_none() && hname.is_none() && addr_v.is_none() {
            return Err(cx.err(
                h,
                p,
                format!(
                    "At least one of name, mac, or ip attribute must be specified for static host definition in network '{name}'"
                ),
            ));
        }
    } else {
        if v6 {
            if id.is_none() && hname.is_none() {
                return Err(cx.err(
                    h,
                    p,
                    format!(
                        "Static host definition in IPv6 network '{name}' must have id or name attribute"
                    ),
                ));
            }
        } else if mac.is_none() && hname.is_none() {
            return Err(cx.err(
                h,
                p,
                format!(
                    "Static host definition in IPv4 network '{name}' must have mac or name attribute"
                ),
            ));
        }
        if addr_v.is_none() {
            return Err(cx.err(
                h,
                p,
                format!("Missing IP address in static host definition for network '{name}'"),
            ));
        }
    }
    let lease = match h.child("lease") {
        Some(l) => lease(cx, l, &p.named("lease"))?,
        None => None,
    };
    Ok(DhcpHost {
        mac,
        id,
        name: hname,
        ip: addr_v,
        lease,
    })
}

/// A `<route>` (`virNetDevIPRouteParseXML`).
pub(super) fn route(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<Route> {
    let name = &cx.name;
    let unsupported =
        |attr: &str, msg: String| cx.at_attr(ErrorKind::ConfigUnsupported, el, p, attr, msg);
    let family = el.attr("family");
    let address_s = el.attr("address").ok_or_else(|| {
        cx.err(
            el,
            p,
            format!("Missing required address attribute in route definition of network '{name}'"),
        )
    })?;
    let address = addr::parse_ip(&address_s).ok_or_else(|| {
        cx.err_attr(
            el,
            p,
            "address",
            format!("Bad network address '{address_s}' in route definition of network '{name}'"),
        )
    })?;
    let gateway_s = el.attr("gateway").ok_or_else(|| {
        cx.err(
            el,
            p,
            format!("Missing required gateway attribute in route definition of network '{name}'"),
        )
    })?;
    let gateway = addr::parse_ip(&gateway_s).ok_or_else(|| {
        cx.err_attr(
            el,
            p,
            "gateway",
            format!("Bad gateway address '{gateway_s}' in route definition of network '{name}'"),
        )
    })?;
    let v6 = family.as_deref() == Some("ipv6");
    match family.as_deref() {
        None | Some("ipv4") | Some("ipv6") => {}
        Some(f) => {
            return Err(cx.err_attr(
                el,
                p,
                "family",
                format!("Unrecognized family '{f}' in route definition of network '{name}'"),
            ));
        }
    }
    if address.is_ipv6() != v6 || gateway.is_ipv6() != v6 {
        return Err(unsupported(
            "address",
            format!(
                "{} family specified for route with address '{address_s}' and gateway '{gateway_s}' in network '{name}'",
                if v6 { "ipv6" } else { "ipv4 or no" }
            ),
        ));
    }
    let prefix_attr = cx.uint(el, p, "prefix", 128)?;
    let netmask = match el.attr("netmask") {
        Some(m) => match addr::parse_ip(&m) {
            Some(IpAddr::V4(v)) if !v6 => Some(addr::netmask_prefix(v).ok_or_else(|| {
                unsupported(
                    "netmask",
                    format!("Bad netmask '{m}' in route definition of network '{name}'"),
                )
            })?),
            _ => {
                return Err(unsupported(
                    "netmask",
                    format!("Bad netmask '{m}' in route definition of network '{name}'"),
                ));
            }
        },
        None => None,
    };
    if netmask.is_some() && prefix_attr.is_some() {
        return Err(unsupported(
            "prefix",
            format!("route definition of network '{name}' cannot have both a prefix and a netmask"),
        ));
    }
    let max = if v6 { 128 } else { 32 };
    let prefix = match (netmask, prefix_attr) {
        (Some(p), _) => p,
        (None, Some(p)) if p <= max => p as u8,
        (None, Some(p)) => {
            return Err(unsupported(
                "prefix",
                format!("Invalid prefix {p} in route definition of network '{name}'"),
            ));
        }
        (None, None) => match address {
            IpAddr::V4(a) => addr::natural_prefix(a).unwrap_or(32),
            IpAddr::V6(_) => 64,
        },
    };
    let metric = match el.attr("metric") {
        Some(m) => Some(
            parse_uint(&m)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    unsupported(
                        "metric",
                        format!("Bad metric '{m}' in route definition of network '{name}'"),
                    )
                })?,
        ),
        None => None,
    };
    if addr::network_of(address, prefix) != address {
        return Err(unsupported(
            "address",
            format!(
                "network '{name}' has an invalid netmask or IP address in route definition: {address}/{prefix} is not a network address"
            ),
        ));
    }
    Ok(Route {
        address,
        prefix,
        gateway,
        metric,
    })
}
