//! What guest ports inherit from a network: `<portgroup>`, `<vlan>`,
//! `<bandwidth>` and `<virtualport>`.

use super::PortGroup;
use super::parse::{Cx, kids, parse_uint};
use crate::error::{ErrorKind, Result};
use crate::xml::{Element, XPath};

/// `<virtualport type>` values libvirt knows.
const VIRTUALPORT_TYPES: &[&str] = &["802.1Qbg", "802.1Qbh", "openvswitch", "midonet"];

/// `<bandwidth>` rate attributes (KiB/s or KiB).
const RATE_ATTRS: &[&str] = &["average", "peak", "floor", "burst"];

pub(crate) fn portgroup(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<PortGroup> {
    let Some(name) = el.attr("name") else {
        return Err(cx.err(el, p, "Missing required name attribute in portgroup"));
    };
    cx.tristate(el, p, "trustGuestRxFilters")?;
    let virtualport = match el.child("virtualport") {
        Some(v) => Some(virtualport(cx, v, &p.named("virtualport"), false)?),
        None => None,
    };
    let bandwidth = match el.child("bandwidth") {
        Some(b) => {
            bandwidth(cx, b, &p.named("bandwidth"))?;
            true
        }
        None => false,
    };
    let vlan_tags = match el.child("vlan") {
        Some(v) => vlan(cx, v, &p.named("vlan"))?,
        None => 0,
    };
    Ok(PortGroup {
        name: name.into_owned(),
        default: el
            .attr("default")
            .is_some_and(|d| d.eq_ignore_ascii_case("yes")),
        vlan_tags,
        virtualport,
        bandwidth,
    })
}

/// Checks a `<virtualport>`; returns its type ("" when untyped).
pub(super) fn virtualport(
    cx: &Cx<'_>,
    el: &Element,
    p: &XPath,
    require_type: bool,
) -> Result<String> {
    match el.attr("type") {
        Some(t) if VIRTUALPORT_TYPES.contains(&&*t) => Ok(t.into_owned()),
        Some(t) => Err(cx.at_attr(
            ErrorKind::ConfigUnsupported,
            el,
            p,
            "type",
            format!("unknown virtualport type {t}"),
        )),
        None if require_type => Err(cx.at(
            ErrorKind::ConfigUnsupported,
            el,
            p,
            "missing required virtualport type",
        )),
        None => Ok(String::new()),
    }
}

/// Checks a `<bandwidth>`: numeric rates, `average` (or `floor` inbound)
/// required.
pub(super) fn bandwidth(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<()> {
    for dir in ["inbound", "outbound"] {
        let found: Vec<_> = kids(el, p, dir).collect();
        if found.len() > 1 {
            return Err(cx.err(el, p, format!("Only one child <{dir}> element allowed")));
        }
        if let Some((d, dp)) = found.first() {
            for a in RATE_ATTRS {
                if let Some(v) = d.attr(a)
                    && parse_uint(&v).is_none()
                {
                    return Err(cx.err_attr(
                        d,
                        dp,
                        a,
                        format!("could not convert bandwidth {a} value '{v}'"),
                    ));
                }
            }
            if d.attr("floor").is_some() && dir == "outbound" {
                return Err(cx.err_attr(
                    d,
                    dp,
                    "floor",
                    "floor attribute is supported only for inbound bandwidth",
                ));
            }
            if d.attr("average").is_none() && d.attr("floor").is_none() {
                return Err(cx.err(d, dp, "Missing mandatory average or floor attributes"));
            }
        }
    }
    Ok(())
}

/// Checks a `<vlan>`; returns the number of tags.
pub(super) fn vlan(cx: &Cx<'_>, el: &Element, p: &XPath) -> Result<usize> {
    let tags: Vec<_> = kids(el, p, "tag").collect();
    if tags.is_empty() {
        return Err(cx.err(
            el,
            p,
            "missing tag id - each <vlan> must have at least one <tag id='n'/> subelement",
        ));
    }
    for (t, tp) in &tags {
        match t.attr("id") {
            Some(v) if parse_uint(&v).is_some_and(|n| n <= 4095) => {}
            _ => {
                return Err(cx.err_attr(
                    t,
                    tp,
                    "id",
                    "missing or invalid vlan tag id (expected 0-4095)",
                ));
            }
        }
        if let Some(m) = t.attr("nativeMode")
            && m != "tagged"
            && m != "untagged"
        {
            return Err(cx.err_attr(
                t,
                tp,
                "nativeMode",
                format!("Invalid \"nativeMode='{m}'\" in vlan <tag> element"),
            ));
        }
    }
    if el.attr("trunk").as_deref() == Some("no") && tags.len() > 1 {
        return Err(cx.err_attr(
            el,
            p,
            "trunk",
            "invalid \"trunk='no'\" in <vlan> - trunk='no' is not allowed with multiple tags",
        ));
    }
    Ok(tags.len())
}
