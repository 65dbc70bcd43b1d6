//! Values and defaults as libvirt's network formatter prints them, applied
//! to a copy of the tree with the parsed model at hand.

use crate::ids::Uuid;
use crate::network::addr;
use crate::network::def::parse::{DNSMASQ_NS, dnsmasq_prefix, parse_uint};
use crate::network::def::{ForwardIf, ForwardMode, Network};
use crate::xml::{Element, Node};

use super::FormatOptions;

/// Elements libvirt reads only once (`./x[1]`): later copies are dropped.
const SINGLE: &[&str] = &[
    "name",
    "uuid",
    "title",
    "description",
    "metadata",
    "forward",
    "bridge",
    "mtu",
    "mac",
    "domain",
    "dns",
    "vlan",
    "bandwidth",
    "port",
    "virtualport",
];

/// Root attributes libvirt prints (the rest of its attributes are read
/// elsewhere or not at all).
const ROOT_ATTRS_DROPPED: &[&str] = &["connections"];

pub(super) fn network(root: &mut Element, n: &Network, opts: &FormatOptions) {
    for name in SINGLE {
        keep_first(root, name);
    }
    root_attrs(root, n);
    if root.child("uuid").is_none() {
        // libvirt generates one at parse time.
        let u = n.uuid.unwrap_or_else(Uuid::random);
        root.push(Element::new("uuid").with_text(&u.to_string()));
    } else if let Some(u) = root.child_mut("uuid")
        && let Ok(v) = u.text().parse::<Uuid>()
    {
        u.set_text(&v.to_string());
    }
    if root.child("metadata").is_some_and(|m| !m.has_elements()) {
        root.remove_children_named("metadata");
    }
    forward(root, n, opts);
    bridge(root, n);
    match n.mtu {
        Some(m) => set(root.child_or_insert("mtu"), "size", &m.to_string()),
        None => {
            root.remove_children_named("mtu");
        }
    }
    match n.mac {
        Some(m) => set(root.child_or_insert("mac"), "address", &m.to_string()),
        None => {
            root.remove_children_named("mac");
        }
    }
    domain(root, n);
    dns(root);
    if let Some(v) = root.child_mut("vlan") {
        vlan(v);
    }
    if let Some(b) = root.child_mut("bandwidth") {
        bandwidth(b);
    }
    if root.child("port").is_some_and(|p| !p.has_attr("isolated")) {
        root.remove_children_named("port");
    }
    for ip_el in root.elements_mut().filter(|e| e.name() == "ip") {
        ip(ip_el);
    }
    for r in root.elements_mut().filter(|e| e.name() == "route") {
        route(r);
    }
    for pg in root.elements_mut().filter(|e| e.name() == "portgroup") {
        portgroup(pg);
    }
}

fn root_attrs(root: &mut Element, n: &Network) {
    let prefix = dnsmasq_prefix(root);
    // Namespaces are printed by their users: metadata children carry their
    // own declarations (libvirt copies them there), dnsmasq's goes on the root.
    let decls: Vec<(String, String)> = root
        .attrs()
        .iter()
        .filter_map(|a| {
            a.name()
                .strip_prefix("xmlns:")
                .map(|p| (p.to_string(), a.value().into_owned()))
        })
        .collect();
    root.retain_attrs(|a| {
        !(a.name() == "xmlns"
            || a.name().starts_with("xmlns:")
            || ROOT_ATTRS_DROPPED.contains(&a.name()))
    });
    if let Some(m) = root.child_mut("metadata") {
        for c in m.elements_mut() {
            if let Some(p) = c.prefix().map(str::to_string)
                && !c.has_attr(&format!("xmlns:{p}"))
                && let Some((_, uri)) = decls.iter().find(|(d, _)| *d == p)
            {
                c.set_attr(&format!("xmlns:{p}"), uri);
            }
        }
    }
    if n.ipv6_no_gateway {
        root.set_attr("ipv6", "yes");
    } else {
        root.remove_attr("ipv6");
    }
    // The dnsmasq options, under libvirt's own prefix.
    let opts_name = prefix.as_ref().map(|p| format!("{p}:options"));
    let opt_name = prefix.as_ref().map(|p| format!("{p}:option"));
    root.children.retain(|c| match (c, &opts_name) {
        (Node::Element(e), Some(o)) => e.name() != o || !n.dnsmasq_options.is_empty(),
        _ => true,
    });
    if !n.dnsmasq_options.is_empty()
        && let (Some(on), Some(o1)) = (opts_name, opt_name)
    {
        root.set_attr("xmlns:dnsmasq", DNSMASQ_NS);
        let mut first = true;
        root.children.retain(|c| match c {
            Node::Element(e) if e.name() == on => std::mem::replace(&mut first, false),
            _ => true,
        });
        if let Some(opts) = root.child_mut(&on) {
            opts.set_name("dnsmasq:options");
            opts.retain_attrs(|_| false);
            opts.children
                .retain(|c| matches!(c, Node::Element(e) if e.name() == o1));
            for o in opts.elements_mut() {
                o.set_name("dnsmasq:option");
                o.retain_attrs(|a| a.name() == "value");
                o.children.clear();
            }
        }
    }
}

fn forward(root: &mut Element, n: &Network, opts: &FormatOptions) {
    let f = &n.forward;
    if f.mode == ForwardMode::None {
        root.remove_children_named("forward");
        return;
    }
    let el = root.child_or_insert("forward");
    set(el, "mode", f.mode.as_str());
    set_opt(el, "dev", f.dev());
    if f.mode == ForwardMode::Hostdev {
        set(el, "managed", if f.managed { "yes" } else { "no" });
    } else {
        el.remove_attr("managed");
    }
    for name in ["driver", "nat", "pf"] {
        keep_first(el, name);
    }
    match f.driver.as_deref() {
        Some(d) if d != "default" => {
            let drv = el.child_or_insert("driver");
            drv.retain_attrs(|a| a.name() == "name");
        }
        _ => {
            el.remove_children_named("driver");
        }
    }
    let nat = &f.nat;
    if f.mode == ForwardMode::Nat
        && (nat.ipv6.is_some() || nat.addr.is_some() || nat.ports.is_some())
    {
        let ne = el.child_or_insert("nat");
        set_opt(ne, "ipv6", nat.ipv6.map(yes_no));
        keep_first(ne, "address");
        keep_first(ne, "port");
        match nat.addr {
            Some((s, e)) => {
                let a = ne.child_or_insert("address");
                set(a, "start", &s.to_string());
                set(a, "end", &e.to_string());
            }
            None => {
                ne.remove_children_named("address");
            }
        }
        match nat.ports {
            Some((s, e)) => {
                let p = ne.child_or_insert("port");
                set(p, "start", &s.to_string());
                set_opt(p, "end", (e != 0).then(|| e.to_string()).as_deref());
            }
            None => {
                ne.remove_children_named("port");
            }
        }
    } else {
        el.remove_children_named("nat");
    }
    if f.pf.is_none() {
        el.remove_children_named("pf");
    }
    // The pool is printed from the model: `dev=` becomes the first
    // `<interface>`, PCI addresses in libvirt's notation.
    let at = el
        .children
        .iter()
        .position(
            |c| matches!(c, Node::Element(e) if e.name() == "interface" || e.name() == "address"),
        )
        .unwrap_or(el.children.len());
    el.children.retain(
        |c| !matches!(c, Node::Element(e) if e.name() == "interface" || e.name() == "address"),
    );
    let show_pool = f.pf.is_none() || !opts.inactive;
    let at = at.min(el.children.len());
    if show_pool {
        for (i, d) in f.ifs.iter().enumerate() {
            let e = match d {
                ForwardIf::Netdev(dev) => Element::new("interface").with_attr("dev", dev),
                ForwardIf::Pci {
                    domain,
                    bus,
                    slot,
                    function,
                } => Element::new("address")
                    .with_attr("type", "pci")
                    .with_attr("domain", &format!("{domain:#06x}"))
                    .with_attr("bus", &format!("{bus:#04x}"))
                    .with_attr("slot", &format!("{slot:#04x}"))
                    .with_attr("function", &format!("{function:#x}")),
            };
            el.insert(at + i, e);
        }
    }
}

fn bridge(root: &mut Element, n: &Network) {
    let owns = n.forward.mode.owns_bridge();
    if !(owns || n.bridge.is_some() || n.mac_table_manager.is_some()) {
        root.remove_children_named("bridge");
        return;
    }
    let b = root.child_or_insert("bridge");
    if owns {
        set(b, "stp", if n.stp { "on" } else { "off" });
        set(b, "delay", &n.delay.to_string());
    } else {
        b.remove_attr("stp");
        b.remove_attr("delay");
    }
}

fn domain(root: &mut Element, n: &Network) {
    match &n.domain {
        Some(d) => {
            let el = root.child_or_insert("domain");
            set_opt(el, "localOnly", d.local_only.map(yes_no));
            set_opt(el, "register", d.register.map(yes_no));
        }
        None => {
            root.remove_children_named("domain");
        }
    }
}

fn dns(root: &mut Element) {
    let Some(d) = root.child_mut("dns") else {
        return;
    };
    for c in d.elements_mut() {
        match c.name() {
            "forwarder" => {
                ip_attr(c, "addr");
                if c.attr("addr").is_none() {
                    c.remove_attr("port");
                }
                number_attr(c, "port", false);
            }
            "host" => ip_attr(c, "ip"),
            "srv" => {
                for a in ["port", "priority", "weight"] {
                    number_attr(c, a, false);
                }
            }
            _ => {}
        }
    }
    if !d.has_elements() && !d.has_attr("enable") && !d.has_attr("forwardPlainNames") {
        root.remove_children_named("dns");
    }
}

fn vlan(v: &mut Element) {
    let tags = v.children_named("tag").count();
    let trunk = v.attr("trunk").as_deref() == Some("yes") || tags > 1;
    set_opt(v, "trunk", trunk.then_some("yes"));
    for t in v.elements_mut().filter(|t| t.name() == "tag") {
        number_attr(t, "id", true);
    }
}

fn bandwidth(b: &mut Element) {
    for d in b.elements_mut() {
        for a in ["average", "peak", "floor", "burst"] {
            number_attr(d, a, false);
        }
    }
}

fn ip(el: &mut Element) {
    ip_attr(el, "address");
    ip_attr(el, "netmask");
    number_attr(el, "prefix", false);
    let v4 = el
        .attr("address")
        .and_then(|a| addr::parse_ip(&a))
        .is_some_and(|a| a.is_ipv4());
    keep_first(el, "tftp");
    keep_first(el, "dhcp");
    if el.child("tftp").is_some_and(|t| !t.has_attr("root")) {
        el.remove_children_named("tftp");
    }
    let Some(dhcp) = el.child_mut("dhcp") else {
        return;
    };
    if !v4 {
        dhcp.remove_children_named("bootp");
    }
    keep_first(dhcp, "bootp");
    for c in dhcp.elements_mut() {
        match c.name() {
            "range" => {
                ip_attr(c, "start");
                ip_attr(c, "end");
                lease(c);
            }
            "host" => {
                ip_attr(c, "ip");
                lease(c);
            }
            "bootp" => ip_attr(c, "server"),
            _ => {}
        }
    }
    if dhcp.children_named("range").next().is_none() && dhcp.children_named("host").next().is_none()
    {
        el.remove_children_named("dhcp");
    }
}

fn lease(parent: &mut Element) {
    keep_first(parent, "lease");
    let Some(l) = parent.child_mut("lease") else {
        return;
    };
    match l.attr("expiry").and_then(|e| parse_uint(&e)) {
        None => {
            parent.remove_children_named("lease");
        }
        Some(0) => {
            set(l, "expiry", "0");
            l.remove_attr("unit");
        }
        Some(x) => {
            set(l, "expiry", &x.to_string());
            if !l.has_attr("unit") {
                l.set_attr("unit", "minutes");
            }
        }
    }
}

fn route(r: &mut Element) {
    for a in ["address", "netmask", "gateway"] {
        ip_attr(r, a);
    }
    number_attr(r, "prefix", true);
    number_attr(r, "metric", false);
}

fn portgroup(pg: &mut Element) {
    let default = pg
        .attr("default")
        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
    set_opt(pg, "default", default.then_some("yes"));
    if let Some(v) = pg.child_mut("vlan") {
        vlan(v);
    }
    if let Some(b) = pg.child_mut("bandwidth") {
        bandwidth(b);
    }
}

// ---- small edits ----

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn set(el: &mut Element, attr: &str, value: &str) {
    el.set_attr(attr, value);
}

fn set_opt(el: &mut Element, attr: &str, value: Option<&str>) {
    match value {
        Some(v) => el.set_attr(attr, v),
        None => {
            el.remove_attr(attr);
        }
    }
}

/// Re-prints an address attribute the way libvirt formats addresses.
fn ip_attr(el: &mut Element, attr: &str) {
    if let Some(a) = el.attr(attr).and_then(|v| addr::parse_ip(&v)) {
        el.set_attr(attr, &a.to_string());
    }
}

/// Re-prints a number; a zero is dropped unless `keep_zero` (libvirt prints
/// most optional numbers only when they are set).
fn number_attr(el: &mut Element, attr: &str, keep_zero: bool) {
    if let Some(n) = el.attr(attr).and_then(|v| parse_uint(&v)) {
        if n == 0 && !keep_zero {
            el.remove_attr(attr);
        } else {
            el.set_attr(attr, &n.to_string());
        }
    }
}

/// Removes every child element named `name` but the first.
fn keep_first(el: &mut Element, name: &str) {
    let mut seen = false;
    el.children.retain(|c| match c {
        Node::Element(e) if e.name() == name => !std::mem::replace(&mut seen, true),
        _ => true,
    });
}
