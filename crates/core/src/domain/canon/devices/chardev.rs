//! Character devices and the devices built on one: `<serial>`,
//! `<parallel>`, `<console>`, `<channel>`, and the chardev backends of
//! `<smartcard mode='passthrough'>`, `<redirdev>` and `<rng><backend
//! model='egd'>`.
//!
//! libvirt stores a chardev source per backend type and prints it back in
//! one shape: `mode` is always stated for sockets (connect unless bind),
//! UDP prints its bind source before its connect source, TCP always has a
//! `<protocol>` (raw by default), a UNIX socket without a path has no
//! `<source>`, and attributes that mean nothing for the type are dropped.

use crate::domain::canon::values::{attr, parse_u64};
use crate::error::Result;
use crate::xml::{Document, Element, Node, XPath};

use super::Guest;

/// Devices that are chardevs themselves.
const CHARDEVS: &[&str] = &["serial", "parallel", "console", "channel"];

/// Source attributes libvirt reads per backend type (others are dropped
/// from `<source>` by its parser).
const SOURCE_ATTRS: &[(&str, &[&str])] = &[
    ("pty", &["path"]),
    ("dev", &["path"]),
    ("file", &["path", "append"]),
    ("pipe", &["path"]),
    ("unix", &["mode", "path"]),
    ("tcp", &["mode", "host", "service", "tls"]),
    ("udp", &["mode", "host", "service"]),
    ("spiceport", &["channel"]),
    ("nmdm", &["master", "slave"]),
];

/// The element holding the chardev of `dev`, if it has one: the device
/// itself, or an rng's egd backend. Smartcards are chardevs only in
/// passthrough mode.
fn chardev_of(dev: &Element) -> Option<&Element> {
    match dev.name() {
        n if CHARDEVS.contains(&n) => Some(dev),
        "redirdev" => Some(dev),
        "smartcard" if dev.attr("mode").as_deref() == Some("passthrough") => Some(dev),
        "rng" => dev
            .child("backend")
            .filter(|b| b.attr("model").as_deref() == Some("egd")),
        _ => None,
    }
}

fn chardev_of_mut(dev: &mut Element) -> Option<&mut Element> {
    match dev.name() {
        n if CHARDEVS.contains(&n) || n == "redirdev" => Some(dev),
        "smartcard" if dev.attr("mode").as_deref() == Some("passthrough") => Some(dev),
        "rng" => dev
            .child_mut("backend")
            .filter(|b| b.attr("model").as_deref() == Some("egd")),
        _ => None,
    }
}

/// Whether `mode` names a listening socket.
fn is_bind(source: &Element) -> bool {
    source.attr("mode").as_deref() == Some("bind")
}

/// The checks libvirt's chardev parser and validator make.
pub(super) fn validate(doc: &Document, dev: &Element, dev_path: &XPath) -> Result<()> {
    let Some(chr) = chardev_of(dev) else {
        return Ok(());
    };
    let path = if std::ptr::eq(chr, dev) {
        dev_path.clone()
    } else {
        dev_path.child(dev, chr)
    };
    let ty = attr(chr, "type").unwrap_or_else(|| "pty".to_string());
    let sources: Vec<&Element> = chr.children_named("source").collect();
    let what = format!("<{}> of type '{ty}'", dev.name());
    if sources.len() > 1 && ty != "udp" {
        return Err(doc.error_at(
            sources[1],
            &path.child(chr, sources[1]),
            format!("only one <source> is allowed for a {what}"),
        ));
    }
    if sources.len() > 2 {
        return Err(doc.error_at(
            sources[2],
            &path.child(chr, sources[2]),
            format!("at most two <source> elements (bind and connect) are allowed for a {what}"),
        ));
    }
    for s in &sources {
        let sp = path.child(chr, s);
        if let Some(mode) = s.attr("mode")
            && matches!(ty.as_str(), "unix" | "tcp" | "udp")
            && !matches!(mode.as_ref(), "bind" | "connect")
        {
            return Err(doc.error_at_attr(
                s,
                &sp,
                "mode",
                format!("unknown source mode '{mode}' (use bind or connect)"),
            ));
        }
        check_reconnect(doc, s, &sp, &ty)?;
    }
    let first = sources.first().copied();
    let missing = |attr_name: &str, hint: &str| {
        let (el, p) = match first {
            Some(s) => (s, path.child(chr, s)),
            None => (chr, path.clone()),
        };
        doc.error_at(
            el,
            &p,
            format!("{what} needs a source '{attr_name}' attribute ({hint})"),
        )
    };
    let has = |name: &str| first.is_some_and(|s| s.attr(name).is_some_and(|v| !v.is_empty()));
    match ty.as_str() {
        "file" | "dev" | "pipe" if !has("path") => {
            return Err(missing("path", "<source path='...'/>"));
        }
        "tcp" if !has("host") => {
            return Err(missing(
                "host",
                "<source mode='connect' host='...' service='...'/>",
            ));
        }
        "tcp" if !has("service") => {
            return Err(missing(
                "service",
                "<source mode='connect' host='...' service='...'/>",
            ));
        }
        "udp" => {
            let connect_service = sources
                .iter()
                .any(|s| !is_bind(s) && s.attr("service").is_some_and(|v| !v.is_empty()));
            if !connect_service {
                return Err(missing("service", "a connect-mode <source service='...'/>"));
            }
        }
        "unix" if !has("path") => {
            // Only a virtio or Xen channel may leave the path to the driver.
            let target = dev.child("target").and_then(|t| t.attr("type"));
            let auto =
                dev.name() == "channel" && matches!(target.as_deref(), Some("virtio" | "xen"));
            if !auto {
                return Err(missing(
                    "path",
                    "<source mode='bind|connect' path='/path/to/socket'/>",
                ));
            }
        }
        "spiceport" if !has("channel") => {
            return Err(missing("channel", "<source channel='org.qemu.console.0'/>"));
        }
        "nmdm" if !has("master") => {
            return Err(missing("master", "<source master='...' slave='...'/>"));
        }
        "nmdm" if !has("slave") => {
            return Err(missing("slave", "<source master='...' slave='...'/>"));
        }
        _ => {}
    }
    Ok(())
}

/// `<reconnect enabled='yes'>` needs a timeout and is only for clients.
fn check_reconnect(doc: &Document, source: &Element, sp: &XPath, ty: &str) -> Result<()> {
    let Some(rc) = source.child("reconnect") else {
        return Ok(());
    };
    let rp = sp.child(source, rc);
    let enabled = rc.attr("enabled");
    match enabled.as_deref() {
        Some("yes") => {
            match rc.attr("timeout") {
                None => {
                    return Err(doc.error_at(rc, &rp, "missing 'timeout' for chardev with reconnect enabled (e.g. <reconnect enabled='yes' timeout='10'/>)"));
                }
                Some(t) if parse_u64(&t).is_none_or(|n| n > u64::from(u32::MAX)) => {
                    return Err(doc.error_at_attr(rc, &rp, "timeout", format!("invalid reconnect timeout value '{t}' (expected seconds as a non-negative integer)")));
                }
                Some(_) => {}
            }
            if matches!(ty, "tcp" | "unix") && is_bind(source) {
                return Err(doc.error_at(rc, &rp, "chardev reconnect is possible only for connect mode; remove <reconnect> or use mode='connect'"));
            }
        }
        Some("no") | None => {}
        Some(other) => {
            return Err(doc.error_at_attr(
                rc,
                &rp,
                "enabled",
                format!("invalid reconnect enabled value '{other}' (use yes or no)"),
            ));
        }
    }
    Ok(())
}

/// Rewrites a chardev's `<source>` (and `<protocol>`) in libvirt's shape.
pub(super) fn normalise(dev: &mut Element) {
    let Some(chr) = chardev_of_mut(dev) else {
        return;
    };
    let ty = attr(chr, "type").unwrap_or_else(|| "pty".to_string());
    if chr.name() != "backend" && !chr.has_attr("type") {
        chr.set_attr("type", "pty");
    }
    // The allocated terminal is live state: a definition does not keep it.
    chr.remove_attr("tty");
    match ty.as_str() {
        "udp" => normalise_udp(chr),
        "tcp" | "unix" => {
            if let Some(s) = chr.child_mut("source") {
                if !is_bind(s) {
                    s.set_attr("mode", "connect");
                }
                tidy_reconnect(s);
            }
            if ty == "unix" && chr.child("source").is_none_or(|s| !s.has_attr("path")) {
                chr.remove_children_named("source");
            }
            if ty == "tcp" && chr.child("protocol").is_none() {
                chr.push(Element::new("protocol").with_attr("type", "raw"));
            }
        }
        _ => {}
    }
    if let Some((_, allowed)) = SOURCE_ATTRS.iter().find(|(t, _)| *t == ty)
        && let Some(s) = chr.child_mut("source")
    {
        s.retain_attrs(|a| {
            allowed.contains(&a.name()) || a.name().contains(':') || !is_known_source_attr(a.name())
        });
    }
    if ty != "tcp" {
        chr.remove_children_named("protocol");
    }
}

/// Attributes of `<source>` that belong to some chardev type: dropped when
/// they do not belong to this one. Anything else is kept.
fn is_known_source_attr(name: &str) -> bool {
    SOURCE_ATTRS.iter().any(|(_, attrs)| attrs.contains(&name))
}

/// A disabled reconnect prints no timeout.
fn tidy_reconnect(source: &mut Element) {
    if let Some(rc) = source.child_mut("reconnect")
        && rc.attr("enabled").as_deref() == Some("no")
    {
        rc.remove_attr("timeout");
    }
}

/// UDP keeps one bind and one connect address; the first value of each
/// part wins, and the bind source prints first.
fn normalise_udp(chr: &mut Element) {
    let mut bind: Vec<(String, String)> = Vec::new();
    let mut connect: Vec<(String, String)> = Vec::new();
    let mut at = None;
    let mut kept = Vec::new();
    for node in std::mem::take(&mut chr.children) {
        match node {
            Node::Element(s) if s.name() == "source" => {
                at.get_or_insert(kept.len());
                let target = if is_bind(&s) { &mut bind } else { &mut connect };
                for part in ["host", "service"] {
                    if let Some(v) = s.attr(part).filter(|v| !v.is_empty())
                        && !target.iter().any(|(k, _)| k == part)
                    {
                        target.push((part.to_string(), v.into_owned()));
                    }
                }
            }
            other => kept.push(other),
        }
    }
    chr.children = kept;
    let Some(at) = at else { return };
    let mut sources = Vec::new();
    for (mode, parts) in [("bind", bind), ("connect", connect)] {
        if parts.is_empty() {
            continue;
        }
        let mut s = Element::new("source").with_attr("mode", mode);
        for part in ["host", "service"] {
            if let Some((_, v)) = parts.iter().find(|(k, _)| k == part) {
                s.set_attr(part, v);
            }
        }
        sources.push(Node::Element(s));
    }
    chr.children.splice(at..at, sources);
}

/// libvirt's console compatibility for HVM guests. A console of target
/// type `serial` is an alias of the serial port with the same position and
/// is printed as a copy of that port's backend. Without serial ports, the
/// first such console creates serial port 0; with serial ports but no such
/// console first, a console aliasing serial port 0 is put first.
pub(super) fn console_compat(devices: &mut Element, guest: &Guest) {
    if !guest.is_hvm() {
        return;
    }
    let is_serial_console = |c: &Element| {
        matches!(
            c.child("target").and_then(|t| attr(t, "type")).as_deref(),
            None | Some("serial")
        )
    };
    let serials: Vec<Element> = devices.children_named("serial").cloned().collect();
    let first_console = devices.children_named("console").next().cloned();
    match first_console {
        Some(c) if is_serial_console(&c) && serials.is_empty() => {
            let mut s = c.clone();
            s.set_name("serial");
            let port = s
                .child("target")
                .and_then(|t| attr(t, "port"))
                .unwrap_or_else(|| "0".into());
            s.remove_children_named("target");
            s.push(Element::new("target").with_attr("port", &port));
            devices.push(s);
            return;
        }
        Some(c) if is_serial_console(&c) => {}
        _ if serials.is_empty() => return,
        _ => {
            // A stub console in front of any other console.
            let at = devices
                .children
                .iter()
                .position(|n| matches!(n, Node::Element(e) if e.name() == "console"))
                .unwrap_or(devices.children.len());
            devices
                .children
                .insert(at, Node::Element(Element::new("console")));
        }
    }
    let mut n = 0;
    for node in devices.children.iter_mut() {
        let Node::Element(c) = node else { continue };
        if c.name() != "console" {
            continue;
        }
        if is_serial_console(c)
            && let Some(serial) = serials.get(n)
        {
            *c = console_from_serial(serial);
        }
        n += 1;
    }
}

/// A console printed as a copy of `serial`: its backend, a `serial`
/// target with the port's number.
fn console_from_serial(serial: &Element) -> Element {
    let mut c = serial.clone();
    c.set_name("console");
    let port = c
        .child("target")
        .and_then(|t| attr(t, "port"))
        .unwrap_or_else(|| "0".into());
    let at = c
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.name() == "target"))
        .unwrap_or(c.children.len());
    c.remove_children_named("target");
    let target = Element::new("target")
        .with_attr("type", "serial")
        .with_attr("port", &port);
    c.children
        .insert(at.min(c.children.len()), Node::Element(target));
    c
}

/// Consoles default to target type `serial` (HVM); serial, parallel and
/// console ports without a number take the next free one of their kind.
pub(super) fn assign_ports(devices: &mut Element, guest: &Guest) {
    for kind in ["serial", "parallel", "console"] {
        let mut max: i64 = -1;
        for dev in devices.elements().filter(|e| e.name() == kind) {
            if let Some(p) = dev
                .child("target")
                .and_then(|t| t.attr("port"))
                .and_then(|p| parse_u64(&p))
            {
                max = max.max(p as i64);
            }
        }
        for dev in devices.elements_mut().filter(|e| e.name() == kind) {
            let target = dev.child_or_insert("target");
            if kind == "console" && guest.is_hvm() && !target.has_attr("type") {
                target.set_attr("type", "serial");
            }
            if target.attr("port").and_then(|p| parse_u64(&p)).is_none() {
                max += 1;
                target.set_attr("port", &max.to_string());
            }
        }
    }
}
