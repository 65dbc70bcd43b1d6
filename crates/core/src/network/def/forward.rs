//! `<forward>`: mode, device pool (`dev`, `<interface>`, `<address>`,
//! `<pf>`), `<driver>` and `<nat>`.

use super::parse::{Cx, kids, parse_uint};
use super::{Forward, ForwardIf, ForwardMode, Nat};
use crate::error::{ErrorKind, Result};
use crate::network::addr;
use crate::xml::{Element, XPath};

pub(super) fn parse(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<Forward> {
    let name = &cx.name;
    let mode = match el.attr("mode") {
        None => ForwardMode::Nat,
        Some(m) => ForwardMode::from_name(&m).ok_or_else(|| {
            cx.at_attr(
                ErrorKind::ConfigUnsupported,
                el,
                p,
                "mode",
                format!(
                    "unknown forwarding type '{m}' (expected one of none, nat, route, open, bridge, private, vepa, passthrough, hostdev)"
                ),
            )
        })?,
    };
    let managed = el
        .attr("managed")
        .is_some_and(|m| m.eq_ignore_ascii_case("yes"));
    let driver = el
        .child("driver")
        .and_then(|d| d.attr("name"))
        .map(|s| s.into_owned());

    let nats: Vec<_> = kids(el, p, "nat").collect();
    if nats.len() > 1 {
        return Err(cx.err(
            el,
            p,
            format!("Only one <nat> element is allowed in <forward> of network {name}"),
        ));
    }
    let nat = match nats.first() {
        Some((n, np)) => nat(cx, n, np, mode)?,
        None => Nat::default(),
    };

    let dev = el.attr("dev").map(|s| s.into_owned());
    let addrs: Vec<_> = kids(el, p, "address").collect();
    let pfs: Vec<_> = kids(el, p, "pf").collect();
    let ifaces: Vec<_> = kids(el, p, "interface").collect();
    if dev.is_some() && (!addrs.is_empty() || !pfs.is_empty()) {
        return Err(cx.err_attr(
            el,
            p,
            "dev",
            format!(
                "the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements are present in network {name}"
            ),
        ));
    }
    let mut ifs = Vec::new();
    let mut pf = None;
    if !ifaces.is_empty() || dev.is_some() {
        if let Some(d) = &dev {
            ifs.push(ForwardIf::Netdev(d.clone()));
        }
        for (i, (ie, ip)) in ifaces.iter().enumerate() {
            let Some(d) = ie.attr("dev") else {
                return Err(cx.err(
                    ie,
                    ip,
                    format!(
                        "Missing required dev attribute in <forward> <interface> element of network {name}"
                    ),
                ));
            };
            if i == 0 && dev.is_some() {
                if dev.as_deref() != Some(&*d) {
                    return Err(cx.err_attr(
                        ie,
                        ip,
                        "dev",
                        format!(
                            "<forward dev='{}'> must match first <interface dev='{d}'/> in network {name}",
                            dev.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                continue;
            }
            if ifs.contains(&ForwardIf::Netdev(d.to_string())) {
                return Err(cx.err_attr(
                    ie,
                    ip,
                    "dev",
                    format!("interface '{d}' can only be listed once in network {name}"),
                ));
            }
            ifs.push(ForwardIf::Netdev(d.into_owned()));
        }
    } else if !addrs.is_empty() {
        for (a, ap) in &addrs {
            let Some(t) = a.attr("type") else {
                return Err(cx.err(a, ap, format!("missing address type in network {name}")));
            };
            if t != "pci" {
                return Err(cx.at_attr(
                    ErrorKind::ConfigUnsupported,
                    a,
                    ap,
                    "type",
                    format!("unknown address type '{t}' in network {name}"),
                ));
            }
            let pci = pci_address(cx, a, ap)?;
            if ifs.contains(&pci) {
                let ForwardIf::Pci {
                    domain,
                    bus,
                    slot,
                    function,
                } = pci
                else {
                    continue;
                };
                return Err(cx.err(
                    a,
                    ap,
                    format!(
                        "PCI device '{domain:04x}:{bus:02x}:{slot:02x}.{function:x}' can only be listed once in network {name}"
                    ),
                ));
            }
            ifs.push(pci);
        }
    } else if pfs.len() > 1 {
        return Err(cx.err(
            el,
            p,
            format!("Only one <pf> element is allowed in <forward> of network {name}"),
        ));
    } else if let Some((pe, pp)) = pfs.first() {
        match pe.attr("dev") {
            Some(d) => pf = Some(d.into_owned()),
            None => {
                return Err(cx.err(
                    pe,
                    pp,
                    format!("Missing required dev attribute in <pf> element of network '{name}'"),
                ));
            }
        }
    }
    Ok(Forward {
        mode,
        managed,
        driver,
        ifs,
        pf,
        nat,
    })
}

/// A number in C's base 0 (`0x1f`, `017`, `31`), as PCI addresses use.
pub(crate) fn parse_c_number(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return (!h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(h, 16).ok())
            .flatten();
    }
    if t.len() > 1 && t.starts_with('0') {
        return u64::from_str_radix(&t[1..], 8).ok();
    }
    parse_uint(t)
}

/// Limits of the parts of a PCI address, in XML attribute order.
const PCI_PARTS: &[(&str, u64)] = &[
    ("domain", 0xFFFF),
    ("bus", 0xFF),
    ("slot", 0x1F),
    ("function", 0x7),
];

fn pci_address(cx: &Cx<'_>, a: &Element, p: &XPath) -> Result<ForwardIf> {
    let mut v = [0u32; 4];
    for (i, (attr, max)) in PCI_PARTS.iter().enumerate() {
        if let Some(s) = a.attr(attr) {
            let n = parse_c_number(&s).filter(|n| n <= max).ok_or_else(|| {
                cx.err_attr(
                    a,
                    p,
                    attr,
                    format!("Invalid PCI address {attr} '{s}', must be at most {max:#x}"),
                )
            })?;
            v[i] = n as u32;
        }
    }
    Ok(ForwardIf::Pci {
        domain: v[0],
        bus: v[1],
        slot: v[2],
        function: v[3],
    })
}

fn nat(cx: &Cx<'_>, el: &Element, p: &XPath, mode: ForwardMode) -> Result<Nat> {
    let name = &cx.name;
    if mode != ForwardMode::Nat {
        return Err(cx.err(
            el,
            p,
            format!(
                "The <nat> element can only be used when <forward> 'mode' is 'nat' in network {name}"
            ),
        ));
    }
    let ipv6 = cx.tristate(el, p, "ipv6")?;
    let addrs: Vec<_> = kids(el, p, "address").collect();
    if addrs.len() > 1 {
        return Err(cx.err(
            el,
            p,
            format!(
                "Only one <address> element is allowed in <nat> in <forward> in network {name}"
            ),
        ));
    }
    let mut addr_range = None;
    if let Some((a, ap)) = addrs.first() {
        let get = |attr: &str| -> Result<std::net::Ipv4Addr> {
            let Some(v) = a.attr(attr) else {
                return Err(cx.err(
                    a,
                    ap,
                    format!(
                        "missing '{attr}' attribute in <address> element in <nat> in <forward> in network {name}"
                    ),
                ));
            };
            match addr::parse_ip(&v) {
                Some(std::net::IpAddr::V4(x)) => Ok(x),
                _ => Err(cx.err_attr(
                    a,
                    ap,
                    attr,
                    format!(
                        "Bad ipv4 {attr} address '{v}' in <nat> in <forward> in network '{name}'"
                    ),
                )),
            }
        };
        let (s, e) = (get("start")?, get("end")?);
        addr::range_size(s.into(), e.into(), None)
            .map_err(|m| cx.at(ErrorKind::ConfigUnsupported, a, ap, m))?;
        addr_range = Some((s, e));
    }
    let ports: Vec<_> = kids(el, p, "port").collect();
    if ports.len() > 1 {
        return Err(cx.err(
            el,
            p,
            format!("Only one <port> element is allowed in <nat> in <forward> in network {name}"),
        ));
    }
    let mut port_range = None;
    if let Some((pe, pp)) = ports.first() {
        let start = pe
            .attr("start")
            .and_then(|v| parse_uint(&v))
            .filter(|n| *n <= 65535);
        let Some(start) = start else {
            return Err(cx.at_attr(
                ErrorKind::XmlDetail,
                pe,
                pp,
                "start",
                format!(
                    "Missing or invalid 'start' attribute in <port> in <nat> in <forward> in network {name}"
                ),
            ));
        };
        let end = pe
            .attr("end")
            .and_then(|v| parse_uint(&v))
            .filter(|n| *n <= 65535 && *n >= start);
        let Some(end) = end else {
            return Err(cx.at_attr(
                ErrorKind::XmlDetail,
                pe,
                pp,
                "end",
                format!(
                    "Missing or invalid 'end' attribute in <port> in <nat> in <forward> in network {name}"
                ),
            ));
        };
        port_range = Some((start as u32, end as u32));
    }
    Ok(Nat {
        ipv6,
        addr: addr_range,
        ports: port_range,
    })
}
