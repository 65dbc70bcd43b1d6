//! `<graphics>`: ports, `autoport` and listen addresses.
//!
//! libvirt keeps a list of `<listen>` elements and prints the first
//! listen's address again as the old `listen` attribute (and a socket
//! listen as the VNC `socket` attribute). Without `<listen>` children it
//! builds one from those attributes; a VNC `socket` attribute replaces an
//! address or network listen. A VNC display with `autoport` has port -1.

use crate::domain::canon::FormatOptions;
use crate::domain::canon::values::{attr, parse_i64, parse_yes_no};
use crate::error::Result;
use crate::xml::{Document, Element, Node, XPath};

/// Listen types and the one attribute each may carry.
const LISTEN_ATTRS: &[(&str, &str)] = &[
    ("address", "address"),
    ("network", "network"),
    ("socket", "socket"),
];

/// Graphics types whose displays listen (and so have `<listen>`).
fn listens(ty: &str) -> bool {
    matches!(ty, "vnc" | "spice" | "rdp")
}

/// The checks of libvirt's listen parser.
pub(super) fn validate(doc: &Document, g: &Element, gp: &XPath) -> Result<()> {
    let ty = attr(g, "type").unwrap_or_default();
    let listen_attr = attr(g, "listen");
    let socket_attr = if ty == "vnc" { attr(g, "socket") } else { None };
    for (i, l) in g.children_named("listen").enumerate() {
        let lp = gp.child(g, l);
        let Some(lt) = attr(l, "type") else {
            return Err(doc.error_at(
                l,
                &lp,
                "graphics listen type must be specified (address, network, socket or none)",
            ));
        };
        if !matches!(lt.as_str(), "address" | "network" | "socket" | "none") {
            return Err(doc.error_at_attr(
                l,
                &lp,
                "type",
                format!(
                    "unknown graphics listen type '{lt}' (use address, network, socket or none)"
                ),
            ));
        }
        if lt == "socket" && !matches!(ty.as_str(), "vnc" | "spice") {
            return Err(doc.error_at_attr(
                l,
                &lp,
                "type",
                format!("listen type 'socket' is not available for graphics type '{ty}'"),
            ));
        }
        for (owner, a) in LISTEN_ATTRS {
            if *owner != lt && l.attr(a).is_some_and(|v| !v.is_empty()) {
                return Err(doc.error_at_attr(
                    l,
                    &lp,
                    a,
                    format!("{a} attribute is not supported for listen type '{lt}'"),
                ));
            }
        }
        match lt.as_str() {
            "address" if i == 0 => {
                if let (Some(a), Some(compat)) = (attr(l, "address"), &listen_attr)
                    && a != *compat
                {
                    return Err(doc.error_at_attr(
                        l,
                        &lp,
                        "address",
                        format!("graphics 'listen' attribute '{compat}' must match 'address' attribute of first listen element (found '{a}')"),
                    ));
                }
            }
            "network" if l.attr("network").is_none() => {
                return Err(doc.error_at(
                    l,
                    &lp,
                    "'network' attribute is required for listen type 'network'",
                ));
            }
            "socket" if i == 0 => {
                if let (Some(s), Some(compat)) = (attr(l, "socket"), &socket_attr)
                    && s != *compat
                {
                    return Err(doc.error_at_attr(
                        l,
                        &lp,
                        "socket",
                        format!("graphics 'socket' attribute '{compat}' must match 'socket' attribute of first listen element (found '{s}')"),
                    ));
                }
            }
            _ => {}
        }
    }
    for a in ["port", "tlsPort", "websocket"] {
        if let Some(v) = attr(g, a)
            && parse_i64(&v).is_none()
        {
            return Err(doc.error_at_attr(
                g,
                gp,
                a,
                format!("cannot parse {ty} {a} '{v}' (expected a number, or -1 for automatic)"),
            ));
        }
    }
    if let Some(v) = attr(g, "autoport")
        && parse_yes_no(&v).is_none()
    {
        return Err(doc.error_at_attr(
            g,
            gp,
            "autoport",
            format!("invalid autoport value '{v}' (use yes or no)"),
        ));
    }
    Ok(())
}

pub(super) fn normalise(g: &mut Element, opts: &FormatOptions) {
    let ty = attr(g, "type").unwrap_or_default();
    if listens(&ty) {
        build_listens(g, &ty);
    }
    match ty.as_str() {
        "vnc" => vnc_ports(g),
        "spice" => spice_ports(g, opts),
        _ => {}
    }
    if listens(&ty) {
        compat_attrs(g, &ty, opts);
    }
}

/// Makes the `<listen>` list libvirt would hold.
fn build_listens(g: &mut Element, ty: &str) {
    let socket = if ty == "vnc" {
        attr(g, "socket").filter(|s| !s.is_empty())
    } else {
        None
    };
    let from_attr = match &socket {
        Some(s) => Element::new("listen")
            .with_attr("type", "socket")
            .with_attr("socket", s),
        None => {
            let mut l = Element::new("listen").with_attr("type", "address");
            if let Some(a) = attr(g, "listen").filter(|a| !a.is_empty()) {
                l.set_attr("address", &a);
            }
            l
        }
    };
    let listen_attr = attr(g, "listen").filter(|a| !a.is_empty());
    let first = g
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.name() == "listen"));
    let Some(first) = first else {
        g.push(from_attr);
        return;
    };
    if let Node::Element(l) = &mut g.children[first] {
        let lt = attr(l, "type").unwrap_or_default();
        if matches!(lt.as_str(), "address" | "network") && socket.is_some() {
            *l = from_attr;
        } else if lt == "address"
            && !l.has_attr("address")
            && let Some(a) = listen_attr
        {
            l.set_attr("address", &a);
        } else if lt == "socket"
            && !l.has_attr("socket")
            && let Some(s) = socket
        {
            l.set_attr("socket", &s);
        }
    }
    for l in g.elements_mut().filter(|e| e.name() == "listen") {
        // Empty values mean "not set".
        l.retain_attrs(|a| {
            !(matches!(a.name(), "address" | "network" | "socket") && a.value().is_empty())
        });
    }
}

/// The type of the first `<listen>`.
fn first_listen(g: &Element) -> Option<&Element> {
    g.child("listen")
}

/// VNC: no port means automatic; `autoport='yes'` drops a fixed port;
/// port and autoport print only for address and network listens.
fn vnc_ports(g: &mut Element) {
    let port = attr(g, "port").and_then(|p| parse_i64(&p));
    let mut autoport = port.is_none_or(|p| p == -1);
    if let Some(a) = attr(g, "autoport").and_then(|a| parse_yes_no(&a)) {
        autoport = a;
    }
    // libvirt resets a fixed port when autoport is on.
    let port = match port {
        Some(p) if p != -1 && !autoport => p,
        _ => 0,
    };
    let lt = first_listen(g)
        .and_then(|l| attr(l, "type"))
        .unwrap_or_default();
    g.remove_attr("port");
    g.remove_attr("autoport");
    if matches!(lt.as_str(), "address" | "network") {
        if port != 0 {
            g.set_attr("port", &port.to_string());
        } else if autoport {
            g.set_attr("port", "-1");
        }
        g.set_attr("autoport", if autoport { "yes" } else { "no" });
    } else {
        g.remove_attr("websocket");
    }
}

/// SPICE: `autoport` is always stated; port -1 with tlsPort -1 is the old
/// way to ask for automatic ports; a SPICE display with no ports and no
/// autoport listens nowhere.
fn spice_ports(g: &mut Element, opts: &FormatOptions) {
    let port = attr(g, "port").and_then(|p| parse_i64(&p)).unwrap_or(0);
    let tls = attr(g, "tlsPort").and_then(|p| parse_i64(&p)).unwrap_or(0);
    let mut autoport = attr(g, "autoport")
        .and_then(|a| parse_yes_no(&a))
        .unwrap_or(false);
    if port == -1 && tls == -1 {
        autoport = true;
    }
    let (port, tls) = if autoport && opts.inactive {
        (0, 0)
    } else {
        (port, tls)
    };
    let lt = first_listen(g)
        .and_then(|l| attr(l, "type"))
        .unwrap_or_default();
    if lt == "address"
        && port == 0
        && tls == 0
        && !autoport
        && let Some(l) = g.child_mut("listen")
    {
        l.set_attr("type", "none");
        l.remove_attr("address");
    }
    let lt = first_listen(g)
        .and_then(|l| attr(l, "type"))
        .unwrap_or_default();
    g.remove_attr("port");
    g.remove_attr("tlsPort");
    g.remove_attr("autoport");
    if matches!(lt.as_str(), "address" | "network") {
        if port != 0 {
            g.set_attr("port", &port.to_string());
        }
        if tls != 0 {
            g.set_attr("tlsPort", &tls.to_string());
        }
        g.set_attr("autoport", if autoport { "yes" } else { "no" });
    }
}

/// The old attributes libvirt prints from the first listen: `listen` for
/// an address (and a network's resolved address when live), `socket` for a
/// VNC socket listen.
fn compat_attrs(g: &mut Element, ty: &str, opts: &FormatOptions) {
    let first = first_listen(g).cloned();
    g.remove_attr("listen");
    if ty == "vnc" {
        g.remove_attr("socket");
    }
    let Some(l) = first else { return };
    match attr(&l, "type").as_deref() {
        Some("socket") if ty == "vnc" => {
            if let Some(s) = attr(&l, "socket") {
                g.set_attr("socket", &s);
            }
        }
        Some("address") => {
            if let Some(a) = attr(&l, "address") {
                g.set_attr("listen", &a);
            }
        }
        Some("network") if !opts.inactive => {
            if let Some(a) = attr(&l, "address") {
                g.set_attr("listen", &a);
            }
        }
        _ => {}
    }
}
