//! Reading `<network>` into the model: the top-level elements, then the
//! consistency checks between them (forward mode against bridge, MTU,
//! addresses and routes).

use std::net::IpAddr;

use super::{DnsDomain, Forward, ForwardMode, Nat, Network};
use super::{dns, forward, ip, port};
use crate::connect::check_object_name;
use crate::error::{Error, ErrorKind, Result, XmlLocation};
use crate::ids::{MacAddr, Uuid};
use crate::network::addr;
use crate::xml::{Document, Element, XPath};

/// The namespace of `<dnsmasq:options>`.
pub const DNSMASQ_NS: &str = "http://libvirt.org/schemas/network/dnsmasq/1.0";

/// Error construction shared by the element readers: where the document
/// came from and the network's name (libvirt's messages name it).
pub(crate) struct Cx<'a> {
    pub doc: &'a Document,
    pub name: String,
}

impl Cx<'_> {
    fn loc(&self, pos: crate::xml::Pos, path: String) -> XmlLocation {
        XmlLocation {
            source: self.doc.source.clone(),
            line: pos.line,
            column: pos.column,
            path,
        }
    }

    /// An error of `kind` at element `el`.
    pub fn at(&self, kind: ErrorKind, el: &Element, p: &XPath, msg: impl Into<String>) -> Error {
        Error::xml_with_kind(kind, msg, self.loc(el.pos(), p.to_string()))
    }

    /// An XML error at element `el`.
    pub fn err(&self, el: &Element, p: &XPath, msg: impl Into<String>) -> Error {
        self.at(ErrorKind::XmlError, el, p, msg)
    }

    /// An error of `kind` at attribute `attr` of `el`.
    pub fn at_attr(
        &self,
        kind: ErrorKind,
        el: &Element,
        p: &XPath,
        attr: &str,
        msg: impl Into<String>,
    ) -> Error {
        let pos = el.attr_node(attr).map_or(el.pos(), |a| a.pos());
        Error::xml_with_kind(kind, msg, self.loc(pos, p.attr(attr)))
    }

    /// An XML error at attribute `attr` of `el`.
    pub fn err_attr(&self, el: &Element, p: &XPath, attr: &str, msg: impl Into<String>) -> Error {
        self.at_attr(ErrorKind::XmlError, el, p, attr, msg)
    }

    /// A `yes`/`no` attribute (libvirt's tristate), with libvirt's message.
    pub fn tristate(&self, el: &Element, p: &XPath, attr: &str) -> Result<Option<bool>> {
        match el.attr(attr).as_deref() {
            None => Ok(None),
            Some("yes") => Ok(Some(true)),
            Some("no") => Ok(Some(false)),
            Some(v) => Err(self.err_attr(
                el,
                p,
                attr,
                format!(
                    "Invalid value for attribute '{attr}' in element '{}': '{v}'. Expected 'yes' or 'no'",
                    el.name()
                ),
            )),
        }
    }

    /// An unsigned number attribute; `what` names it in the error.
    pub fn uint(&self, el: &Element, p: &XPath, attr: &str, max: u64) -> Result<Option<u64>> {
        let Some(v) = el.attr(attr) else {
            return Ok(None);
        };
        match parse_uint(&v).filter(|n| *n <= max) {
            Some(n) => Ok(Some(n)),
            None => Err(self.err_attr(
                el,
                p,
                attr,
                format!(
                    "Invalid value for attribute '{attr}' in element '{}': '{v}'. Expected an integer from 0 to {max}",
                    el.name()
                ),
            )),
        }
    }

    /// An IP address attribute, or `msg` as the error.
    pub fn ip_attr(
        &self,
        el: &Element,
        p: &XPath,
        attr: &str,
        kind: ErrorKind,
        msg: impl FnOnce(&str) -> String,
    ) -> Result<Option<IpAddr>> {
        match el.attr(attr) {
            None => Ok(None),
            Some(v) => match addr::parse_ip(&v) {
                Some(a) => Ok(Some(a)),
                None => Err(self.at_attr(kind, el, p, attr, msg(&v))),
            },
        }
    }
}

/// An unsigned decimal number as libvirt's `virStrToLong_ul*` reads it.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    let t = s.trim();
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// Children of `parent` named `name`, with their paths.
pub(crate) fn kids<'a>(
    parent: &'a Element,
    p: &'a XPath,
    name: &'a str,
) -> impl Iterator<Item = (&'a Element, XPath)> + 'a {
    parent
        .children_named(name)
        .map(move |c| (c, p.child(parent, c)))
}

/// Reads and checks a whole `<network>` document.
pub fn parse(doc: &Document) -> Result<Network> {
    let root = &doc.root;
    let p = XPath::root("network");
    if root.name() != "network" {
        return Err(doc.error_at(
            root,
            &XPath::root(root.name()),
            format!(
                "unexpected root element <{}>, expecting <network>",
                root.name()
            ),
        ));
    }
    let name_el = root
        .child("name")
        .ok_or_else(|| Error::new(ErrorKind::NoName, "network"))?;
    let name = name_el.text();
    if name.is_empty() {
        return Err(Error::new(ErrorKind::NoName, "network"));
    }
    let cx = Cx {
        doc,
        name: name.clone(),
    };
    check_object_name("network", &name)
        .map_err(|e| cx.err(name_el, &p.named("name"), e.message().to_string()))?;

    let uuid = match root.child("uuid") {
        Some(u) => Some(u.text().parse::<Uuid>().map_err(|_| {
            cx.at(
                ErrorKind::Internal,
                u,
                &p.named("uuid"),
                "malformed uuid element",
            )
        })?),
        None => None,
    };
    if let Some(t) = root.child("title")
        && t.text().contains('\n')
    {
        return Err(cx.err(t, &p.named("title"), "Network title can't contain newlines"));
    }
    let ipv6_no_gateway = match root.attr("ipv6").as_deref() {
        None => false,
        Some("yes") => true,
        Some("no") => false,
        Some(v) => {
            return Err(cx.err_attr(
                root,
                &p,
                "ipv6",
                format!("Invalid ipv6 setting '{v}' in network '{name}'"),
            ));
        }
    };
    cx.tristate(root, &p, "trustGuestRxFilters")?;

    let domain = match root.child("domain") {
        Some(d) => {
            let dp = p.named("domain");
            let local_only = cx.tristate(d, &dp, "localOnly")?;
            let register = cx.tristate(d, &dp, "register")?;
            if register == Some(true) && local_only != Some(true) {
                return Err(cx.at_attr(
                    ErrorKind::ConfigUnsupported,
                    d,
                    &dp,
                    "register",
                    format!(
                        "attribute 'register=yes' in <domain> element requires 'localOnly=yes' in network {name}"
                    ),
                ));
            }
            d.attr("name").map(|n| DnsDomain {
                name: n.into_owned(),
                local_only,
                register,
            })
        }
        None => None,
    };

    let bandwidth = match root.child("bandwidth") {
        Some(b) => {
            port::bandwidth(&cx, b, &p.named("bandwidth"))?;
            true
        }
        None => false,
    };
    let vlan_tags = match root.child("vlan") {
        Some(v) => port::vlan(&cx, v, &p.named("vlan"))?,
        None => 0,
    };
    if let Some(pe) = root.child("port") {
        cx.tristate(pe, &p.named("port"), "isolated")?;
    }

    // Bridge.
    let br = root.child("bridge");
    let bp = p.named("bridge");
    let bridge = br.and_then(|b| b.attr("name")).map(|s| s.into_owned());
    let bridge_zone = br.and_then(|b| b.attr("zone")).map(|s| s.into_owned());
    let stp_attr = br.and_then(|b| b.attr("stp"));
    let stp_given = stp_attr.is_some();
    let stp = stp_attr.as_deref() != Some("off");
    let mut delay = 0;
    if let Some(b) = br
        && let Some(d) = b.attr("delay")
    {
        delay = parse_uint(&d).ok_or_else(|| {
            cx.err_attr(
                b,
                &bp,
                "delay",
                format!("Invalid delay value in network '{name}'"),
            )
        })?;
    }
    let mac_table_manager = match br.and_then(|b| b.attr("macTableManager")) {
        None => None,
        Some(m) if m == "kernel" || m == "libvirt" => Some(m.into_owned()),
        Some(m) => {
            let b = br.unwrap_or(root);
            return Err(cx.err_attr(
                b,
                &bp,
                "macTableManager",
                format!("Invalid macTableManager setting '{m}' in network '{name}'"),
            ));
        }
    };

    let mac = match root.child("mac") {
        Some(m) => match m.attr("address") {
            Some(a) => {
                let mp = p.named("mac");
                let parsed: MacAddr = a.parse().map_err(|_| {
                    cx.err_attr(
                        m,
                        &mp,
                        "address",
                        format!("Invalid bridge mac address '{a}' in network '{name}'"),
                    )
                })?;
                if parsed.is_multicast() {
                    return Err(cx.err_attr(
                        m,
                        &mp,
                        "address",
                        format!("Invalid multicast bridge mac address '{a}' in network '{name}'"),
                    ));
                }
                Some(parsed)
            }
            None => None,
        },
        None => None,
    };

    let mtu = match root.child("mtu") {
        Some(m) => match m.attr("size") {
            Some(s) => Some(
                parse_uint(&s)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        cx.err_attr(
                            m,
                            &p.named("mtu"),
                            "size",
                            format!("Invalid mtu size '{s}' in network '{name}'"),
                        )
                    })?,
            ),
            None => None,
        },
        None => None,
    };

    let dns = match root.child("dns") {
        Some(d) => dns::parse(&cx, d, &p.named("dns"))?,
        None => Default::default(),
    };

    let virtualport = match root.child("virtualport") {
        Some(v) => {
            let t = port::virtualport(&cx, v, &p.named("virtualport"), true)?;
            Some(t)
        }
        None => None,
    };

    let mut portgroups = Vec::new();
    for (pg, pp) in kids(root, &p, "portgroup") {
        portgroups.push(port::portgroup(&cx, pg, &pp)?);
    }

    let mut ips = Vec::new();
    for (ie, ip_path) in kids(root, &p, "ip") {
        ips.push(ip::parse(&cx, ie, &ip_path)?);
    }

    let mut routes = Vec::new();
    for (re, rp) in kids(root, &p, "route") {
        let r = ip::route(&cx, re, &rp)?;
        // The gateway must be reachable on one of the network's subnets.
        let reachable = ips.iter().any(|i| {
            i.address.is_ipv4() == r.gateway.is_ipv4()
                && i.prefix_len()
                    .is_some_and(|pl| addr::in_subnet(r.gateway, i.address, pl))
        });
        if !reachable {
            return Err(cx.at_attr(
                ErrorKind::ConfigUnsupported,
                re,
                &rp,
                "gateway",
                format!(
                    "unreachable static route gateway '{}' specified for network '{name}'",
                    r.gateway
                ),
            ));
        }
        routes.push(r);
    }

    let forward = match root.child("forward") {
        Some(f) => forward::parse(&cx, f, &p.named("forward"))?,
        None => Forward {
            mode: ForwardMode::None,
            managed: false,
            driver: None,
            ifs: Vec::new(),
            pf: None,
            nat: Nat::default(),
        },
    };

    let net = Network {
        name,
        uuid,
        ipv6_no_gateway,
        domain,
        bridge,
        bridge_zone,
        stp_given,
        stp,
        delay,
        mac_table_manager,
        mac,
        mtu,
        dns,
        ips,
        routes,
        forward,
        portgroups,
        virtualport,
        bandwidth,
        vlan_tags,
        dnsmasq_options: dnsmasq_options(&cx, root, &p)?,
    };
    check_forward_mode(&cx, root, &p, &net)?;
    Ok(net)
}

/// The checks between the forward mode and the rest.
fn check_forward_mode(cx: &Cx<'_>, root: &Element, p: &XPath, n: &Network) -> Result<()> {
    let mode = n.forward.mode.as_str();
    let name = &n.name;
    let fwd_el = root.child("forward").unwrap_or(root);
    let fp = if root.child("forward").is_some() {
        p.named("forward")
    } else {
        p.clone()
    };
    let br_el = root.child("bridge").unwrap_or(root);
    let bp = if root.child("bridge").is_some() {
        p.named("bridge")
    } else {
        p.clone()
    };
    match n.forward.mode {
        ForwardMode::None => {}
        ForwardMode::Route | ForwardMode::Nat => {
            if n.ips.is_empty() {
                return Err(cx.err_attr(
                    fwd_el,
                    &fp,
                    "mode",
                    format!(
                        "{mode} forwarding requested, but no IP address provided for network '{name}'"
                    ),
                ));
            }
            if n.forward.ifs.len() > 1 {
                return Err(cx.err(
                    fwd_el,
                    &fp,
                    format!(
                        "multiple forwarding interfaces specified for network '{name}', only one is supported"
                    ),
                ));
            }
        }
        ForwardMode::Open => {
            if !n.forward.ifs.is_empty() {
                return Err(cx.err(
                    fwd_el,
                    &fp,
                    format!(
                        "forward dev not allowed for network '{name}' with forward mode='{mode}'"
                    ),
                ));
            }
        }
        ForwardMode::Bridge
        | ForwardMode::Private
        | ForwardMode::Vepa
        | ForwardMode::Passthrough
        | ForwardMode::Hostdev => {
            if n.forward.mode != ForwardMode::Bridge {
                if n.bridge.is_some() {
                    return Err(cx.err_attr(
                        br_el,
                        &bp,
                        "name",
                        format!("bridge name not allowed in {mode} mode (network '{name}')"),
                    ));
                }
                if n.bridge_zone.is_some() {
                    return Err(cx.err_attr(
                        br_el,
                        &bp,
                        "zone",
                        format!("bridge zone not allowed in {mode} mode (network '{name}')"),
                    ));
                }
                if n.mac_table_manager.is_some() {
                    return Err(cx.err_attr(
                        br_el,
                        &bp,
                        "macTableManager",
                        format!(
                            "bridge macTableManager setting not allowed in {mode} mode (network '{name}')"
                        ),
                    ));
                }
            }
            if n.delay != 0 || n.stp_given || n.bridge_zone.is_some() {
                return Err(cx.err(
                    br_el,
                    &bp,
                    format!(
                        "bridge delay/stp/zone options only allowed in open, route, nat, and isolated mode, not in {mode} (network '{name}')"
                    ),
                ));
            }
            if n.bridge.is_some() && (!n.forward.ifs.is_empty() || n.forward.pf.is_some()) {
                return Err(cx.err(
                    fwd_el,
                    &fp,
                    format!(
                        "A network with forward mode='{mode}' can specify a bridge name or a forward dev, but not both (network '{name}')"
                    ),
                ));
            }
        }
    }
    if n.mtu.is_some() && !n.forward.mode.owns_bridge() {
        let m = root.child("mtu").unwrap_or(root);
        return Err(cx.err(
            m,
            &p.named("mtu"),
            format!(
                "mtu size only allowed in open, route, nat, and isolated mode, not in {mode} (network '{name}')"
            ),
        ));
    }
    Ok(())
}

/// The prefix the document binds to the dnsmasq namespace, if any.
pub(crate) fn dnsmasq_prefix(root: &Element) -> Option<String> {
    root.attrs().iter().find_map(|a| {
        a.name()
            .strip_prefix("xmlns:")
            .filter(|_| a.value() == DNSMASQ_NS)
            .map(str::to_string)
    })
}

/// `<dnsmasq:options><dnsmasq:option value=...>`.
fn dnsmasq_options(cx: &Cx<'_>, root: &Element, p: &XPath) -> Result<Vec<String>> {
    let Some(prefix) = dnsmasq_prefix(root) else {
        return Ok(Vec::new());
    };
    let (opts_name, opt_name) = (format!("{prefix}:options"), format!("{prefix}:option"));
    let mut out = Vec::new();
    for (opts, op) in kids(root, p, &opts_name) {
        for (o, oo) in kids(opts, &op, &opt_name) {
            match o.attr("value") {
                Some(v) => out.push(v.into_owned()),
                None => {
                    return Err(cx.at(
                        ErrorKind::Internal,
                        o,
                        &oo,
                        "No dnsmasq options value specified",
                    ));
                }
            }
        }
    }
    Ok(out)
}
