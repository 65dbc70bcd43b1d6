//! Devices on the command line, in libvirt's order: controllers, disks,
//! network interfaces, serial ports, channels, consoles, inputs, audio,
//! graphics, video, memory balloon, random number generators.

use serde_json::{Map, Value, json};
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::{Args, Context, Opts, unsupported};

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

fn child_attr(e: &Element, child: &str, n: &str) -> Option<String> {
    e.child(child).and_then(|c| attr(c, n))
}

/// A JSON object being filled.
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Obj {
        Obj(Map::new())
    }
    fn set(mut self, k: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(k.to_string(), v.into());
        self
    }
    fn opt(self, k: &str, v: Option<impl Into<Value>>) -> Obj {
        match v {
            Some(v) => self.set(k, v),
            None => self,
        }
    }
    fn value(self) -> Value {
        Value::Object(self.0)
    }
}

/// PCI placement from an explicit `<address type='pci'>`, else none (QEMU
/// picks a free slot).
fn pci_addr(dev: &Element, root_bus: &str, o: Obj) -> Obj {
    let Some(a) = dev
        .child("address")
        .filter(|a| attr(a, "type").as_deref() == Some("pci"))
    else {
        return o;
    };
    let num = |n: &str| {
        attr(a, n).and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
    };
    let bus = num("bus").unwrap_or(0);
    let slot = num("slot").unwrap_or(0);
    let func = num("function").unwrap_or(0);
    let bus_name = if bus == 0 {
        root_bus.to_string()
    } else {
        format!("pci.{bus}")
    };
    let addr = if func == 0 {
        format!("{slot:#x}")
    } else {
        format!("{slot:#x}.{func:#x}")
    };
    o.set("bus", bus_name).set("addr", addr)
}

/// Boot indexes: `<boot order>` on devices wins; otherwise the
/// `<os><boot dev=..>` list gives its position to the first device of
/// each kind.
struct BootPlan {
    per_device: bool,
    order: Vec<String>,
    used: Vec<String>,
}

impl BootPlan {
    fn new(domain: &Element) -> BootPlan {
        let devices = domain.child("devices");
        let per_device = devices.is_some_and(|d| {
            d.elements()
                .any(|e| e.child("boot").is_some_and(|b| b.has_attr("order")))
        });
        let order = domain
            .child("os")
            .map(|o| {
                o.children_named("boot")
                    .filter_map(|b| attr(b, "dev"))
                    .collect()
            })
            .unwrap_or_default();
        BootPlan {
            per_device,
            order,
            used: Vec::new(),
        }
    }

    /// The bootindex for `dev` of kind `kind` (`hd`, `cdrom`, `fd`, `network`).
    fn index(&mut self, dev: &Element, kind: &str) -> Option<u32> {
        if self.per_device {
            return child_attr(dev, "boot", "order").and_then(|o| o.parse().ok());
        }
        if self.used.iter().any(|k| k == kind) {
            return None;
        }
        let pos = self.order.iter().position(|k| k == kind)?;
        self.used.push(kind.to_string());
        Some(pos as u32 + 1)
    }
}

pub(crate) fn emit(a: &mut Args, domain: &Element, ctx: &Context<'_>, p: &XPath) -> Result<()> {
    let empty = Element::new("devices");
    let devices = domain.child("devices").unwrap_or(&empty);
    let dp = p.named("devices");
    let machine = super::machine::machine_name(domain, ctx)?;
    let root_bus = if machine.contains("q35") {
        "pcie.0"
    } else {
        "pci.0"
    };
    let mut boot = BootPlan::new(domain);

    for c in devices.children_named("controller") {
        emit_controller(a, c, root_bus, &machine, &dp.child(devices, c))?;
    }
    let ndisks = devices.children_named("disk").count();
    for (disk_no, d) in devices.children_named("disk").enumerate() {
        let p = dp.child(devices, d);
        emit_disk(a, d, ndisks - disk_no, root_bus, &mut boot, &p)?;
    }
    for (i, n) in devices.children_named("interface").enumerate() {
        emit_interface(a, n, i, ctx, root_bus, &mut boot, &dp.child(devices, n))?;
    }
    for s in devices.children_named("serial") {
        emit_serial(a, s, &dp.child(devices, s))?;
    }
    for (i, c) in devices.children_named("channel").enumerate() {
        emit_channel(a, c, i, ctx, &dp.child(devices, c))?;
    }
    for c in devices.children_named("console") {
        let t = child_attr(c, "target", "type").unwrap_or_else(|| "serial".into());
        if t != "serial" {
            return Err(unsupported(
                dp.child(devices, c),
                format!("console target type '{t}'"),
            ));
        }
        // A serial console is the first serial port, already on the command line.
    }
    for (i, inp) in devices.children_named("input").enumerate() {
        emit_input(a, inp, i, &dp.child(devices, inp))?;
    }
    a.json("-audiodev", json!({"id": "audio1", "driver": "none"}));
    for g in devices.children_named("graphics") {
        emit_graphics(a, g, &dp.child(devices, g))?;
    }
    for (i, v) in devices.children_named("video").enumerate() {
        emit_video(a, v, i, root_bus, &dp.child(devices, v))?;
    }
    for m in devices.children_named("memballoon") {
        let model = attr(m, "model").unwrap_or_else(|| "virtio".into());
        match model.as_str() {
            "none" => {}
            "virtio" => a.json(
                "-device",
                pci_addr(
                    m,
                    root_bus,
                    Obj::new()
                        .set("driver", "virtio-balloon-pci")
                        .set("id", "balloon0"),
                )
                .value(),
            ),
            other => {
                return Err(unsupported(
                    dp.child(devices, m),
                    format!("memballoon model '{other}'"),
                ));
            }
        }
    }
    for (i, r) in devices.children_named("rng").enumerate() {
        emit_rng(a, r, i, root_bus, &dp.child(devices, r))?;
    }
    // Devices virtkit does not turn into arguments yet must not pass silently.
    const HANDLED: &[&str] = &[
        "emulator",
        "controller",
        "disk",
        "interface",
        "serial",
        "channel",
        "console",
        "input",
        "graphics",
        "video",
        "memballoon",
        "rng",
        "audio",
    ];
    if let Some(other) = devices.elements().find(|e| !HANDLED.contains(&e.name())) {
        return Err(unsupported(
            dp.child(devices, other),
            format!("<{}>", other.name()),
        ));
    }
    Ok(())
}

fn emit_controller(
    a: &mut Args,
    c: &Element,
    root_bus: &str,
    machine: &str,
    p: &XPath,
) -> Result<()> {
    let ty = attr(c, "type").unwrap_or_default();
    let index = attr(c, "index").unwrap_or_else(|| "0".into());
    let model = attr(c, "model");
    match ty.as_str() {
        "usb" => {
            let driver = match model.as_deref() {
                Some("none") => return Ok(()),
                Some("piix3-uhci") => "piix3-usb-uhci",
                Some("qemu-xhci") => "qemu-xhci",
                Some("nec-xhci") => "nec-usb-xhci",
                Some("ehci") => "usb-ehci",
                Some(other) => {
                    return Err(unsupported(p, format!("USB controller model '{other}'")));
                }
                None if machine.contains("q35") => "qemu-xhci",
                None => "piix3-usb-uhci",
            };
            let id = if index == "0" {
                "usb".to_string()
            } else {
                format!("usb{index}")
            };
            a.json(
                "-device",
                pci_addr(c, root_bus, Obj::new().set("driver", driver).set("id", id)).value(),
            );
        }
        "virtio-serial" => {
            a.json(
                "-device",
                pci_addr(
                    c,
                    root_bus,
                    Obj::new()
                        .set("driver", "virtio-serial-pci")
                        .set("id", format!("virtio-serial{index}")),
                )
                .value(),
            );
        }
        "scsi" => {
            let driver = match model.as_deref() {
                None | Some("virtio-scsi") => "virtio-scsi-pci",
                Some("lsilogic") => "lsi",
                Some(other) => {
                    return Err(unsupported(p, format!("SCSI controller model '{other}'")));
                }
            };
            a.json(
                "-device",
                pci_addr(
                    c,
                    root_bus,
                    Obj::new()
                        .set("driver", driver)
                        .set("id", format!("scsi{index}")),
                )
                .value(),
            );
        }
        // Built into the machine: PCI roots, IDE, the q35 SATA controller, fdc.
        "pci" | "ide" | "fdc" => {}
        "sata" if machine.contains("q35") && index == "0" => {}
        other => return Err(unsupported(p, format!("controller type '{other}'"))),
    }
    Ok(())
}

fn emit_disk(
    a: &mut Args,
    d: &Element,
    node_no: usize,
    root_bus: &str,
    boot: &mut BootPlan,
    p: &XPath,
) -> Result<()> {
    let dtype = attr(d, "type").unwrap_or_else(|| "file".into());
    let device = attr(d, "device").unwrap_or_else(|| "disk".into());
    let target = d
        .child("target")
        .ok_or_else(|| Error::new(ErrorKind::XmlError, format!("disk has no <target> ({p})")))?;
    let dev = attr(target, "dev").unwrap_or_default();
    let bus = attr(target, "bus").unwrap_or_else(|| "ide".into());
    let source = d.child("source");
    let path = match dtype.as_str() {
        "file" => source.and_then(|s| attr(s, "file")),
        "block" => source.and_then(|s| attr(s, "dev")),
        other => return Err(unsupported(p, format!("disk type '{other}'"))),
    };
    let driver = d.child("driver");
    let format = driver
        .and_then(|dr| attr(dr, "type"))
        .unwrap_or_else(|| "raw".into());
    let cache = driver.and_then(|dr| attr(dr, "cache"));
    let io = driver.and_then(|dr| attr(dr, "io"));
    let discard = driver.and_then(|dr| attr(dr, "discard"));
    let readonly = d.child("readonly").is_some() || device == "cdrom";
    if !matches!(format.as_str(), "raw" | "qcow2") {
        return Err(unsupported(
            p.named("driver").attr("type"),
            format!("disk format '{format}'"),
        ));
    }
    let (direct, no_flush, write_cache) = match cache.as_deref() {
        None | Some("default") => (None, None, None),
        Some("none") => (Some(true), Some(false), Some("on")),
        Some("writethrough") => (Some(false), Some(false), Some("off")),
        Some("writeback") => (Some(false), Some(false), Some("on")),
        Some("directsync") => (Some(true), Some(false), Some("off")),
        Some("unsafe") => (Some(false), Some(true), Some("on")),
        Some(other) => {
            return Err(unsupported(
                p.named("driver").attr("cache"),
                format!("cache mode '{other}'"),
            ));
        }
    };
    let cache_obj = direct.map(|dir| json!({"direct": dir, "no-flush": no_flush.unwrap_or(false)}));
    let node = format!("libvirt-{node_no}");
    let mut drive = None;
    if let Some(path) = &path {
        let storage = Obj::new()
            .set(
                "driver",
                if dtype == "block" {
                    "host_device"
                } else {
                    "file"
                },
            )
            .set("filename", path.as_str())
            .set("node-name", format!("{node}-storage"))
            .opt("cache", cache_obj.clone())
            .set("auto-read-only", true)
            .set("discard", "unmap")
            .opt("aio", io.clone());
        a.json("-blockdev", storage.value());
        let fmt = Obj::new()
            .set("node-name", format!("{node}-format"))
            .set("read-only", readonly)
            .opt("discard", discard.clone())
            .opt("cache", cache_obj)
            .set("driver", format.as_str())
            .set("file", format!("{node}-storage"));
        a.json("-blockdev", fmt.value());
        drive = Some(format!("{node}-format"));
    }
    let kind = match device.as_str() {
        "cdrom" => "cdrom",
        "floppy" => "fd",
        _ => "hd",
    };
    let bootindex = boot.index(d, kind);
    let index_of = |_prefix: &str| virtkit_core::domain::disk_name_index(&dev).unwrap_or(0);
    let o = match bus.as_str() {
        "virtio" => pci_addr(
            d,
            root_bus,
            Obj::new()
                .set("driver", "virtio-blk-pci")
                .set("id", format!("virtio-disk{}", index_of("vd"))),
        ),
        "ide" | "sata" => {
            let n = index_of(if bus == "ide" { "hd" } else { "sd" });
            let (bus_name, unit, id) = if bus == "ide" {
                (
                    format!("ide.{}", n / 2),
                    n % 2,
                    format!("ide0-{}-{}", n / 2, n % 2),
                )
            } else {
                (format!("ide.{n}"), 0, format!("sata0-0-{n}"))
            };
            Obj::new()
                .set(
                    "driver",
                    if device == "cdrom" {
                        "ide-cd"
                    } else {
                        "ide-hd"
                    },
                )
                .set("bus", bus_name)
                .opt("unit", (bus == "ide").then_some(unit))
                .set("id", id)
        }
        "scsi" => {
            let n = index_of("sd");
            Obj::new()
                .set(
                    "driver",
                    if device == "cdrom" {
                        "scsi-cd"
                    } else {
                        "scsi-hd"
                    },
                )
                .set("bus", "scsi0.0")
                .set("channel", 0)
                .set("scsi-id", 0)
                .set("lun", n)
                .set("id", format!("scsi0-0-0-{n}"))
        }
        other => {
            return Err(unsupported(
                p.named("target").attr("bus"),
                format!("disk bus '{other}'"),
            ));
        }
    };
    let o = o
        .opt("drive", drive)
        .opt("bootindex", bootindex)
        .opt("write-cache", write_cache);
    a.json("-device", o.value());
    Ok(())
}

fn emit_interface(
    a: &mut Args,
    n: &Element,
    i: usize,
    ctx: &Context<'_>,
    root_bus: &str,
    boot: &mut BootPlan,
    p: &XPath,
) -> Result<()> {
    let ty = attr(n, "type").unwrap_or_default();
    let id = format!("hostnet{i}");
    match ty.as_str() {
        "network" | "bridge" | "ethernet" => {
            let fds = ctx
                .nets
                .get(i)
                .filter(|f| !f.tap.is_empty())
                .ok_or_else(|| {
                    Error::internal(format!(
                        "no tap device was prepared for interface {i} ({p})"
                    ))
                })?;
            let join = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(":");
            let mut o = Obj::new().set("type", "tap");
            o = if fds.tap.len() == 1 {
                o.set("fd", fds.tap[0].to_string())
            } else {
                o.set("fds", join(&fds.tap))
            };
            if !fds.vhost.is_empty() {
                o = o.set("vhost", true);
                o = if fds.vhost.len() == 1 {
                    o.set("vhostfd", fds.vhost[0].to_string())
                } else {
                    o.set("vhostfds", join(&fds.vhost))
                };
            }
            a.json("-netdev", o.set("id", id.as_str()).value());
        }
        "user" => a.json("-netdev", json!({"type": "user", "id": id})),
        other => {
            return Err(unsupported(
                p.attr("type"),
                format!("interface type '{other}'"),
            ));
        }
    }
    let model = child_attr(n, "model", "type").unwrap_or_else(|| "virtio".into());
    let driver = match model.as_str() {
        "virtio" => "virtio-net-pci",
        "e1000" => "e1000",
        "e1000e" => "e1000e",
        "rtl8139" => "rtl8139",
        other => {
            return Err(unsupported(
                p.named("model").attr("type"),
                format!("NIC model '{other}'"),
            ));
        }
    };
    let mac = child_attr(n, "mac", "address");
    let mtu = child_attr(n, "mtu", "size").and_then(|m| m.parse::<u32>().ok());
    let queues = child_attr(n, "driver", "queues").and_then(|q| q.parse::<u32>().ok());
    let mut o = Obj::new().set("driver", driver);
    if let Some(q) = queues.filter(|q| *q > 1 && model == "virtio") {
        o = o.set("mq", true).set("vectors", 2 * q + 2);
    }
    o = o
        .set("netdev", format!("hostnet{i}"))
        .set("id", format!("net{i}"))
        .opt("mac", mac)
        .opt("host_mtu", mtu.filter(|_| model == "virtio"));
    o = pci_addr(n, root_bus, o);
    o = o.opt("bootindex", boot.index(n, "network"));
    a.json("-device", o.value());
    Ok(())
}

/// The `-chardev` for a character device's backend, with id `id`.
fn chardev(chr: &Element, id: &str, p: &XPath) -> Result<String> {
    let ty = attr(chr, "type").unwrap_or_else(|| "pty".into());
    let source = chr.child("source");
    let src = |n: &str| source.and_then(|s| attr(s, n));
    let mut o = match ty.as_str() {
        "pty" => Opts::new("pty").kv("id", id),
        "null" => Opts::new("null").kv("id", id),
        "file" => {
            let path = src("path").ok_or_else(|| {
                Error::new(
                    ErrorKind::XmlError,
                    format!("file chardev needs <source path=..> ({p})"),
                )
            })?;
            Opts::new("file")
                .kv("id", id)
                .kv("path", path)
                .opt("append", src("append").filter(|v| v == "on").map(|_| "on"))
        }
        "unix" => {
            let path = src("path").ok_or_else(|| {
                Error::new(
                    ErrorKind::XmlError,
                    format!("unix chardev needs <source path=..> ({p})"),
                )
            })?;
            let o = Opts::new("socket").kv("id", id).kv("path", path);
            if src("mode").as_deref() == Some("bind") {
                o.kv("server", "on").kv("wait", "off")
            } else {
                o
            }
        }
        "tcp" => {
            let o = Opts::new("socket")
                .kv("id", id)
                .kv("host", src("host").unwrap_or_else(|| "localhost".into()))
                .kv("port", src("service").unwrap_or_default());
            if src("mode").as_deref() == Some("bind") {
                o.kv("server", "on").kv("wait", "off")
            } else {
                o
            }
        }
        other => {
            return Err(unsupported(
                p.attr("type"),
                format!("character device type '{other}'"),
            ));
        }
    };
    if let Some(log) = chr.child("log") {
        o = o.opt("logfile", attr(log, "file")).opt(
            "logappend",
            attr(log, "append").map(|v| if v == "on" { "on" } else { "off" }),
        );
    }
    Ok(o.finish())
}

fn emit_serial(a: &mut Args, s: &Element, p: &XPath) -> Result<()> {
    let port: u32 = child_attr(s, "target", "port")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ttype = child_attr(s, "target", "type").unwrap_or_else(|| "isa-serial".into());
    if ttype != "isa-serial" {
        return Err(unsupported(
            p.named("target").attr("type"),
            format!("serial target type '{ttype}'"),
        ));
    }
    let id = format!("charserial{port}");
    a.opt("-chardev", chardev(s, &id, p)?);
    a.json(
        "-device",
        json!({"driver": "isa-serial", "chardev": id, "id": format!("serial{port}"), "index": port}),
    );
    Ok(())
}

fn emit_channel(a: &mut Args, c: &Element, i: usize, ctx: &Context<'_>, p: &XPath) -> Result<()> {
    let ttype = child_attr(c, "target", "type").unwrap_or_default();
    if ttype != "virtio" {
        return Err(unsupported(
            p.named("target").attr("type"),
            format!("channel target type '{ttype}'"),
        ));
    }
    let name = child_attr(c, "target", "name").unwrap_or_default();
    let id = format!("charchannel{i}");
    let mut chr = c.clone();
    // A virtio channel on a unix socket without a path gets one in the
    // domain's directory (libvirt does the same).
    if attr(c, "type").as_deref() == Some("unix") && child_attr(c, "source", "path").is_none() {
        let path = ctx.domain_dir.join(if name.is_empty() {
            format!("channel{i}")
        } else {
            name.clone()
        });
        let src = Element::new("source")
            .with_attr("mode", "bind")
            .with_attr("path", &path.display().to_string());
        chr.remove_children_named("source");
        chr.push(src);
    }
    a.opt("-chardev", chardev(&chr, &id, p)?);
    let port: u32 = c
        .child("address")
        .and_then(|ad| attr(ad, "port"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(i as u32 + 1);
    a.json(
        "-device",
        Obj::new()
            .set("driver", "virtserialport")
            .set("bus", "virtio-serial0.0")
            .set("nr", port)
            .set("chardev", id)
            .set("id", format!("channel{i}"))
            .opt("name", (!name.is_empty()).then_some(name))
            .value(),
    );
    Ok(())
}

fn emit_input(a: &mut Args, inp: &Element, i: usize, p: &XPath) -> Result<()> {
    let ty = attr(inp, "type").unwrap_or_default();
    let bus = attr(inp, "bus").unwrap_or_else(|| "ps2".into());
    match (ty.as_str(), bus.as_str()) {
        (_, "ps2") => Ok(()),
        ("tablet", "usb") | ("mouse", "usb") | ("keyboard", "usb") => {
            let driver = format!("usb-{}", if ty == "keyboard" { "kbd" } else { &ty });
            a.json(
                "-device",
                json!({"driver": driver, "id": format!("input{i}"), "bus": "usb.0", "port": (i + 1).to_string()}),
            );
            Ok(())
        }
        ("tablet", "virtio") | ("mouse", "virtio") | ("keyboard", "virtio") => {
            a.json(
                "-device",
                json!({"driver": format!("virtio-{ty}-pci"), "id": format!("input{i}")}),
            );
            Ok(())
        }
        _ => Err(unsupported(p, format!("input '{ty}' on bus '{bus}'"))),
    }
}

fn emit_graphics(a: &mut Args, g: &Element, p: &XPath) -> Result<()> {
    let ty = attr(g, "type").unwrap_or_default();
    if ty != "vnc" {
        return Err(unsupported(p.attr("type"), format!("graphics type '{ty}'")));
    }
    let listen = g.child("listen");
    let ltype = listen
        .and_then(|l| attr(l, "type"))
        .unwrap_or_else(|| "address".into());
    let spec = match ltype.as_str() {
        "socket" => {
            let sock = listen.and_then(|l| attr(l, "socket")).ok_or_else(|| {
                Error::new(
                    ErrorKind::XmlError,
                    format!("VNC socket listen needs socket=.. ({p})"),
                )
            })?;
            Opts::new("")
                .kv("unix", sock)
                .finish()
                .trim_start_matches(',')
                .replacen("unix=", "unix:", 1)
        }
        "none" => "none".to_string(),
        _ => {
            let host = listen
                .and_then(|l| attr(l, "address"))
                .or_else(|| attr(g, "listen"))
                .unwrap_or_else(|| "127.0.0.1".into());
            let port: i32 = attr(g, "port").and_then(|v| v.parse().ok()).unwrap_or(-1);
            let display = if port >= 5900 {
                port - 5900
            } else {
                free_vnc_display(&host)
            };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("{host}:{display}")
        }
    };
    a.opt("-vnc", format!("{spec},audiodev=audio1"));
    Ok(())
}

/// The first VNC display (5900 + n) whose port is free on `host`.
fn free_vnc_display(host: &str) -> i32 {
    (0..100)
        .find(|n| std::net::TcpListener::bind((host, 5900 + *n as u16)).is_ok())
        .unwrap_or(0)
}

fn emit_video(a: &mut Args, v: &Element, i: usize, root_bus: &str, p: &XPath) -> Result<()> {
    let model = child_attr(v, "model", "type").unwrap_or_else(|| "vga".into());
    let primary = i == 0;
    let driver = match (model.as_str(), primary) {
        ("none", _) => return Ok(()),
        ("vga", true) => "VGA",
        ("cirrus", true) => "cirrus-vga",
        ("virtio", true) => "virtio-vga",
        ("virtio", false) => "virtio-gpu-pci",
        ("bochs", _) => "bochs-display",
        ("ramfb", _) => "ramfb",
        (other, _) => {
            return Err(unsupported(
                p.named("model").attr("type"),
                format!("video model '{other}'"),
            ));
        }
    };
    let vram = child_attr(v, "model", "vram").and_then(|x| x.parse::<u32>().ok());
    let o = Obj::new()
        .set("driver", driver)
        .set("id", format!("video{i}"));
    let o = match (model.as_str(), vram) {
        ("vga", Some(k)) => o.set("vgamem_mb", k / 1024),
        ("cirrus", Some(k)) => o.set("vgamem_mb", k / 1024),
        _ => o,
    };
    a.json("-device", pci_addr(v, root_bus, o).value());
    Ok(())
}

fn emit_rng(a: &mut Args, r: &Element, i: usize, root_bus: &str, p: &XPath) -> Result<()> {
    let model = attr(r, "model").unwrap_or_default();
    if model != "virtio" {
        return Err(unsupported(p.attr("model"), format!("RNG model '{model}'")));
    }
    let backend = r.child("backend");
    let bmodel = backend
        .and_then(|b| attr(b, "model"))
        .unwrap_or_else(|| "random".into());
    if bmodel != "random" {
        return Err(unsupported(
            p.named("backend").attr("model"),
            format!("RNG backend '{bmodel}'"),
        ));
    }
    let file = backend
        .map(|b| b.text().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/dev/urandom".into());
    a.json(
        "-object",
        json!({"qom-type": "rng-random", "id": format!("objrng{i}"), "filename": file}),
    );
    a.json(
        "-device",
        pci_addr(
            r,
            root_bus,
            Obj::new()
                .set("driver", "virtio-rng-pci")
                .set("rng", format!("objrng{i}"))
                .set("id", format!("rng{i}")),
        )
        .value(),
    );
    Ok(())
}
