//! Character devices: the `-chardev` backend (pty, file, UNIX or TCP
//! socket, host device, ...) and the guest side of serial and parallel
//! ports, virtio channels and consoles.

use virtkit_core::Result;
use virtkit_core::xml::{Element, XPath};

use super::{Gen, Opts, Props, address, alias, attr, child_attr, invalid, switch, unsupported};
use crate::profile::address::{address_of, parse_num};

/// `-chardev` for the backend of `chr`, with id `id`. `auto_path` is the
/// socket path to use for a listening UNIX socket written without one.
pub(crate) fn backend(
    g: &Gen<'_>,
    chr: &Element,
    id: &str,
    p: &XPath,
    auto_path: Option<String>,
) -> Result<String> {
    let ty = attr(chr, "type").unwrap_or_else(|| "pty".into());
    let source = chr.child("source");
    let src = |n: &str| source.and_then(|s| attr(s, n));
    let sp = p.named("source");
    let need_path = || {
        src("path").ok_or_else(|| {
            invalid(
                sp.attr("path"),
                format!("a '{ty}' character device needs a path"),
            )
        })
    };
    let mut o = match ty.as_str() {
        "pty" => Opts::new("pty").kv("id", id),
        "null" => Opts::new("null").kv("id", id),
        "vc" => Opts::new("vc").kv("id", id),
        "stdio" => Opts::new("stdio").kv("id", id),
        "file" => {
            let o = Opts::new("file").kv("id", id).kv("path", need_path()?);
            match switch(src("append")) {
                Some(v) => o.kv("append", if v { "on" } else { "off" }),
                None => o,
            }
        }
        "pipe" => Opts::new("pipe").kv("id", id).kv("path", need_path()?),
        "dev" => {
            let kind = if chr.name() == "parallel" {
                "parallel"
            } else {
                "serial"
            };
            Opts::new(kind).kv("id", id).kv("path", need_path()?)
        }
        "unix" => {
            let listen = src("mode").as_deref() == Some("bind") || source.is_none();
            let path = src("path").or(auto_path);
            let o = Opts::new("socket").kv("id", id);
            let o = match (listen, g.host.chardev_listen_fd) {
                (true, Some(fd)) => o.kv("fd", fd),
                _ => o.kv(
                    "path",
                    path.ok_or_else(|| invalid(sp.attr("path"), "a UNIX socket needs a path"))?,
                ),
            };
            let o = if listen {
                o.kv("server", "on").kv("wait", "off")
            } else {
                o
            };
            reconnect(source, o)
        }
        "tcp" => {
            let listen = src("mode").as_deref() == Some("bind");
            let o = Opts::new("socket")
                .kv("id", id)
                .kv("host", src("host").unwrap_or_default())
                .kv("port", src("service").unwrap_or_default());
            let telnet = child_attr(chr, "protocol", "type").as_deref() == Some("telnet");
            if child_attr(chr, "protocol", "type").is_some_and(|t| t != "raw" && t != "telnet") {
                return Err(unsupported(
                    p.named("protocol"),
                    "character device protocol",
                ));
            }
            if src("tls").is_some() {
                return Err(unsupported(sp.attr("tls"), "TLS character devices"));
            }
            let o = if telnet { o.kv("telnet", "on") } else { o };
            let o = if listen {
                o.kv("server", "on").kv("wait", "off")
            } else {
                o
            };
            reconnect(source, o)
        }
        "udp" => {
            let sources: Vec<&Element> = chr.children_named("source").collect();
            let by_mode = |m: &str| {
                sources
                    .iter()
                    .find(|s| attr(s, "mode").as_deref() == Some(m))
            };
            let connect = by_mode("connect");
            let bind = by_mode("bind");
            Opts::new("udp")
                .kv("id", id)
                .kv(
                    "host",
                    connect.and_then(|s| attr(s, "host")).unwrap_or_default(),
                )
                .kv(
                    "port",
                    connect.and_then(|s| attr(s, "service")).unwrap_or_default(),
                )
                .opt("localaddr", bind.and_then(|s| attr(s, "host")))
                .opt("localport", bind.and_then(|s| attr(s, "service")))
        }
        "spicevmc" => {
            let name = match chr.name() {
                "redirdev" => "usbredir",
                "smartcard" => "smartcard",
                _ => "vdagent",
            };
            Opts::new("spicevmc").kv("id", id).kv("name", name)
        }
        "qemu-vdagent" => {
            let on_off = |v: bool| if v { "on" } else { "off" };
            let mut o = Opts::new("qemu-vdagent").kv("id", id).kv("name", "vdagent");
            if let Some(c) = source
                .and_then(|s| s.child("clipboard"))
                .and_then(|c| switch(attr(c, "copypaste")))
            {
                o = o.kv("clipboard", on_off(c));
            }
            if let Some(m) = source
                .and_then(|s| s.child("mouse"))
                .and_then(|m| attr(m, "mode"))
            {
                o = o.kv("mouse", on_off(m == "client"));
            }
            o
        }
        "spiceport" => Opts::new("spiceport")
            .kv("id", id)
            .kv("name", src("channel").unwrap_or_default()),
        other => {
            return Err(unsupported(
                p.attr("type"),
                format!("character device type '{other}'"),
            ));
        }
    };
    if let Some(log) = chr.child("log") {
        o = o.opt("logfile", attr(log, "file"));
        if let Some(a) = switch(attr(log, "append")) {
            o = o.kv("logappend", if a { "on" } else { "off" });
        }
    }
    Ok(o.finish())
}

fn reconnect(source: Option<&Element>, o: Opts) -> Opts {
    let r = source.and_then(|s| s.child("reconnect"));
    match r {
        Some(r) if switch(attr(r, "enabled")) == Some(true) => {
            o.opt("reconnect", attr(r, "timeout"))
        }
        _ => o,
    }
}

/// Serial ports: a chardev and an ISA, PCI or USB serial device.
pub(crate) fn emit_serials(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, s) in devices.children_named("serial").enumerate() {
        let p = g.path(s);
        let a = alias(s, format!("serial{i}"));
        let chr_id = format!("char{a}");
        let chardev = backend(g, s, &chr_id, &p, None)?;
        let ttype = child_attr(s, "target", "type").unwrap_or_else(|| "isa-serial".into());
        let port: u32 = child_attr(s, "target", "port")
            .and_then(|v| parse_num(&v))
            .unwrap_or(0);
        let props = match ttype.as_str() {
            "isa-serial" => {
                let mut o = Props::new()
                    .set("driver", "isa-serial")
                    .set("chardev", chr_id)
                    .set("id", a)
                    .set("index", port);
                if let Some(isa) = address_of(s, "isa") {
                    o = o
                        .opt("iobase", attr(isa, "iobase").and_then(|v| parse_num(&v)))
                        .opt("irq", attr(isa, "irq").and_then(|v| parse_num(&v)));
                }
                o
            }
            "pci-serial" => address::pci(
                g,
                s,
                Props::new()
                    .set("driver", "pci-serial")
                    .set("chardev", chr_id)
                    .set("id", a),
            ),
            "usb-serial" => address::usb(
                g,
                s,
                Props::new()
                    .set("driver", "usb-serial")
                    .set("chardev", chr_id)
                    .set("id", a),
            ),
            other => {
                return Err(unsupported(
                    p.named("target").attr("type"),
                    format!("serial target type '{other}'"),
                ));
            }
        };
        g.a.opt("-chardev", chardev);
        g.device(&props);
    }
    Ok(())
}

/// Parallel ports.
pub(crate) fn emit_parallels(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, s) in devices.children_named("parallel").enumerate() {
        let p = g.path(s);
        let a = alias(s, format!("parallel{i}"));
        let chr_id = format!("char{a}");
        let chardev = backend(g, s, &chr_id, &p, None)?;
        g.a.opt("-chardev", chardev);
        g.device(
            &Props::new()
                .set("driver", "isa-parallel")
                .set("chardev", chr_id)
                .set("id", a),
        );
    }
    Ok(())
}

/// The virtio-serial bus and port number of a channel or console.
fn virtio_serial_port(g: &Gen<'_>, dev: &Element, o: Props) -> Props {
    let Some(a) = address_of(dev, "virtio-serial") else {
        return o;
    };
    let n = |k: &str| attr(a, k).and_then(|v| parse_num(&v));
    let ctl = n("controller").unwrap_or(0);
    let bus = n("bus").unwrap_or(0);
    let ctl_alias = g
        .devices
        .children_named("controller")
        .find(|c| {
            attr(c, "type").as_deref() == Some("virtio-serial")
                && attr(c, "index").and_then(|i| parse_num(&i)) == Some(ctl)
        })
        .map(|c| super::controller::controller_alias(g, c))
        .unwrap_or_else(|| format!("virtio-serial{ctl}"));
    let o = o.set("bus", format!("{ctl_alias}.{bus}"));
    o.opt("nr", n("port").filter(|p| *p > 0))
}

/// Channels: virtio ports (guest agent, SPICE agent, ...).
pub(crate) fn emit_channels(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, c) in devices.children_named("channel").enumerate() {
        let p = g.path(c);
        let ttype = child_attr(c, "target", "type").unwrap_or_default();
        if ttype != "virtio" {
            return Err(unsupported(
                p.named("target").attr("type"),
                format!("channel target type '{ttype}'"),
            ));
        }
        let name = child_attr(c, "target", "name");
        let a = alias(c, format!("channel{i}"));
        let chr_id = format!("char{a}");
        // A UNIX channel without a path gets one in the domain's directory.
        let auto = g
            .ctx
            .domain_dir
            .join(name.clone().unwrap_or_else(|| format!("channel{i}")));
        let chardev = backend(g, c, &chr_id, &p, Some(auto.display().to_string()))?;
        g.a.opt("-chardev", chardev);
        let o = virtio_serial_port(g, c, Props::new().set("driver", "virtserialport"));
        let o = o.set("chardev", chr_id).set("id", a).opt("name", name);
        g.device(&o);
    }
    Ok(())
}

/// Consoles: a serial console is its serial port (already on the command
/// line); a virtio console is a port of its own.
pub(crate) fn emit_consoles(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, c) in devices.children_named("console").enumerate() {
        let p = g.path(c);
        let ttype = child_attr(c, "target", "type").unwrap_or_else(|| "serial".into());
        match ttype.as_str() {
            "serial" => {}
            "virtio" => {
                let a = alias(c, format!("console{i}"));
                let chr_id = format!("char{a}");
                let chardev = backend(g, c, &chr_id, &p, None)?;
                g.a.opt("-chardev", chardev);
                let o = virtio_serial_port(g, c, Props::new().set("driver", "virtconsole"));
                g.device(&o.set("chardev", chr_id).set("id", a));
            }
            other => {
                return Err(unsupported(
                    p.named("target").attr("type"),
                    format!("console target type '{other}'"),
                ));
            }
        }
    }
    Ok(())
}
