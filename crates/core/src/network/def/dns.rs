//! `<dns>`: forwarders, host, SRV and TXT records.

use super::parse::{Cx, kids};
use super::{Dns, DnsHost, Forwarder, Srv, Txt};
use crate::error::{ErrorKind, Result};
use crate::network::addr;
use crate::xml::{Element, XPath};

/// Characters allowed in an SRV protocol (as in /etc/protocols, minus '.').
const PROTOCOL_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/";
/// Characters allowed in an SRV service.
const SERVICE_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/*";
/// Longest SRV service name (libvirt's `DNS_RECORD_LENGTH_SRV`).
const SRV_SERVICE_MAX: usize = 15;

pub(super) fn parse(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<Dns> {
    let name = &cx.name;
    let mut dns = Dns {
        enable: cx.tristate(el, p, "enable")?,
        forward_plain_names: cx.tristate(el, p, "forwardPlainNames")?,
        ..Dns::default()
    };
    for (f, fp) in kids(el, p, "forwarder") {
        let a = cx.ip_attr(f, &fp, "addr", ErrorKind::XmlError, |v| {
            format!("Invalid forwarder IP address '{v}' in network '{name}'")
        })?;
        let port = match f.attr("port") {
            Some(v) if a.is_some() => {
                let n = cx.uint(f, &fp, "port", 65535)?.unwrap_or(0);
                if n == 0 {
                    return Err(cx.err_attr(
                        f,
                        &fp,
                        "port",
                        format!("Invalid value for attribute 'port' in element 'forwarder': '{v}'. Expected a port from 1 to 65535"),
                    ));
                }
                Some(n as u16)
            }
            _ => None,
        };
        let domain = f.attr("domain").map(|s| s.into_owned());
        if a.is_none() && domain.is_none() {
            return Err(cx.err(
                f,
                &fp,
                "Invalid forwarder element, must contain at least one of addr or domain",
            ));
        }
        dns.forwarders.push(Forwarder {
            domain,
            addr: a,
            port,
        });
    }
    for (h, hp) in kids(el, p, "host") {
        dns.hosts.push(host(cx, h, &hp)?);
    }
    for (s, sp) in kids(el, p, "srv") {
        dns.srvs.push(srv(cx, s, &sp, false)?);
    }
    for (t, tp) in kids(el, p, "txt") {
        dns.txts.push(txt(cx, t, &tp, false)?);
    }
    if dns.enable == Some(false)
        && (!dns.forwarders.is_empty()
            || !dns.hosts.is_empty()
            || !dns.srvs.is_empty()
            || !dns.txts.is_empty())
    {
        return Err(cx.err(el, p, format!("Extra data in disabled network '{name}'")));
    }
    Ok(dns)
}

/// A `<dns><host ip>` with its `<hostname>`s.
pub(crate) fn host(cx: &Cx<'_>, h: &Element, p: &XPath) -> Result<DnsHost> {
    let name = &cx.name;
    let detail = |el: &Element, p: &XPath, m: String| cx.at(ErrorKind::XmlDetail, el, p, m);
    let mut names = Vec::new();
    for (n, np) in kids(h, p, "hostname") {
        let t = n.text();
        if t.is_empty() {
            return Err(detail(
                n,
                &np,
                format!("Missing hostname in network '{name}' DNS HOST record"),
            ));
        }
        names.push(t);
    }
    if names.is_empty() {
        return Err(detail(
            h,
            p,
            format!("Missing hostname in network '{name}' DNS HOST record"),
        ));
    }
    let Some(ip_s) = h.attr("ip") else {
        return Err(detail(
            h,
            p,
            format!("Missing IP address in network '{name}' DNS HOST record"),
        ));
    };
    let ip = addr::parse_ip(&ip_s).ok_or_else(|| {
        cx.at_attr(
            ErrorKind::XmlDetail,
            h,
            p,
            "ip",
            format!("Invalid IP address in network '{name}' DNS HOST record"),
        )
    })?;
    Ok(DnsHost { ip, names })
}

/// A `<dns><srv>`; `partial` (a record to delete) lets service and
/// protocol be left out, since only the given fields are matched.
pub(crate) fn srv(cx: &Cx<'_>, s: &Element, p: &XPath, partial: bool) -> Result<Srv> {
    let name = &cx.name;
    let detail = |attr: &str, m: String| cx.at_attr(ErrorKind::XmlDetail, s, p, attr, m);
    let service = s.attr("service").map(|v| v.into_owned());
    if partial && service.is_none() {
        return Ok(Srv {
            domain: s.attr("domain").map(|v| v.into_owned()),
            protocol: s.attr("protocol").map(|v| v.into_owned()),
            target: s.attr("target").map(|v| v.into_owned()),
            ..Srv::default()
        });
    }
    let Some(svc) = &service else {
        return Err(cx.at(
            ErrorKind::XmlDetail,
            s,
            p,
            format!("missing required service attribute in DNS SRV record of network '{name}'"),
        ));
    };
    if svc.len() > SRV_SERVICE_MAX {
        return Err(detail(
            "service",
            format!(
                "service attribute '{svc}' in network '{name}' is too long, limit is {SRV_SERVICE_MAX} bytes"
            ),
        ));
    }
    if !svc.chars().all(|c| SERVICE_CHARS.contains(c)) {
        return Err(detail(
            "service",
            format!(
                "invalid character in service attribute '{svc}' in DNS SRV record of network '{name}'"
            ),
        ));
    }
    let protocol = s.attr("protocol").map(|v| v.into_owned());
    let proto = match &protocol {
        Some(p) => p.as_str(),
        None if partial => "",
        None => {
            return Err(cx.at(
            ErrorKind::XmlDetail,
            s,
            p,
            format!(
                "missing required protocol attribute in DNS SRV record '{svc}' of network '{name}'"
            ),
        ));
        }
    };
    if !proto.chars().all(|c| PROTOCOL_CHARS.contains(c)) {
        return Err(detail(
            "protocol",
            format!(
                "invalid character in protocol attribute '{proto}' in DNS SRV record of network '{name}'"
            ),
        ));
    }
    let target = s.attr("target").map(|v| v.into_owned());
    let num = |attr: &str, max: u64, label: &str| -> Result<u32> {
        let Some(v) = s.attr(attr) else {
            return Ok(0);
        };
        if target.is_none() {
            return Err(detail(
                attr,
                format!(
                    "DNS SRV {attr} attribute not permitted without target for service '{svc}' in network '{name}'"
                ),
            ));
        }
        super::parse::parse_uint(&v)
            .filter(|n| *n <= max && (attr != "port" || *n >= 1))
            .map(|n| n as u32)
            .ok_or_else(|| {
                detail(
                    attr,
                    format!(
                        "{label} DNS SRV {attr} attribute for service '{svc}' in network '{name}'"
                    ),
                )
            })
    };
    let port = num("port", 65535, "invalid")?;
    let priority = num("priority", 65535, "Invalid")?;
    let weight = num("weight", 65535, "invalid")?;
    Ok(Srv {
        domain: s.attr("domain").map(|v| v.into_owned()),
        service,
        protocol,
        target,
        port,
        priority,
        weight,
    })
}

/// A `<dns><txt>`; `partial` (a record to delete) needs only the name.
pub(crate) fn txt(cx: &Cx<'_>, t: &Element, p: &XPath, partial: bool) -> Result<Txt> {
    let name = &cx.name;
    let Some(tname) = t.attr("name") else {
        return Err(cx.at(
            ErrorKind::XmlDetail,
            t,
            p,
            format!("missing required name attribute in DNS TXT record of network {name}"),
        ));
    };
    if tname.contains([' ', ',']) {
        return Err(cx.at_attr(
            ErrorKind::XmlDetail,
            t,
            p,
            "name",
            format!("prohibited character in DNS TXT record name '{tname}' of network {name}"),
        ));
    }
    let value = match t.attr("value") {
        Some(v) => v,
        None if partial => std::borrow::Cow::Borrowed(""),
        None => {
            return Err(cx.at(
            ErrorKind::XmlDetail,
            t,
            p,
            format!(
                "missing required value attribute in DNS TXT record named '{tname}' of network {name}"
            ),
        ));
        }
    };
    if value.contains(['\r', '\n']) {
        return Err(cx.at_attr(
            ErrorKind::XmlDetail,
            t,
            p,
            "value",
            "invalid line break in DNS TXT record value attribute",
        ));
    }
    Ok(Txt {
        name: tname.into_owned(),
        value: value.into_owned(),
    })
}
