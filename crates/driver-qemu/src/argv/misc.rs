//! The smaller devices: 9p filesystems, watchdogs, the memory balloon,
//! random number generators and panic notifiers; and the final check that
//! no device was left out.

use virtkit_core::Result;
use virtkit_core::xml::Element;

use super::controller::virtio_options;
use super::{Gen, Opts, Props, address, alias, attr, child_attr, switch, unsupported};
use crate::profile::address::{address_of, parse_num};

/// 9p access modes: (accessmode, QEMU security model).
const FS_SECURITY: &[(&str, &str)] = &[
    ("passthrough", "passthrough"),
    ("mapped", "mapped"),
    ("squash", "none"),
];

pub(crate) fn emit_filesystems(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, fs) in devices.children_named("filesystem").enumerate() {
        let p = g.path(fs);
        let ty = attr(fs, "type").unwrap_or_else(|| "mount".into());
        if ty != "mount" {
            return Err(unsupported(
                p.attr("type"),
                format!("filesystem type '{ty}'"),
            ));
        }
        let drv = fs.child("driver");
        let dtype = drv
            .and_then(|d| attr(d, "type"))
            .unwrap_or_else(|| "path".into());
        if !matches!(dtype.as_str(), "path" | "handle") {
            return Err(unsupported(
                p.named("driver").attr("type"),
                format!("filesystem driver '{dtype}'"),
            ));
        }
        if drv.is_some_and(|d| d.has_attr("format") || d.has_attr("queue"))
            || fs.child("binary").is_some()
        {
            return Err(unsupported(&p, "filesystem driver settings"));
        }
        let id = alias(fs, format!("fs{i}"));
        let fsdev = format!("fsdev-{id}");
        let source = child_attr(fs, "source", "dir").unwrap_or_default();
        let target = child_attr(fs, "target", "dir").unwrap_or_default();
        let mut o = if dtype == "handle" {
            Opts::new("handle")
        } else {
            Opts::new("local")
        };
        let multidevs = attr(fs, "multidevs").filter(|m| m != "default");
        if dtype == "path" {
            let mode = attr(fs, "accessmode").unwrap_or_else(|| "passthrough".into());
            let sec = FS_SECURITY
                .iter()
                .find(|(m, _)| *m == mode)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    unsupported(p.attr("accessmode"), format!("access mode '{mode}'"))
                })?;
            o = o.kv("security_model", sec);
        }
        if let Some(m) = multidevs {
            o = o.kv("multidevs", m);
        }
        if let Some(w) = drv.and_then(|d| attr(d, "wrpolicy")) {
            o = o.kv("writeout", w);
        }
        o = o.kv("id", &fsdev).kv("path", source);
        if fs.child("readonly").is_some() {
            o = o.kv("readonly", "on");
        }
        g.a.opt("-fsdev", o.finish());
        let mut d = Props::new().set(
            "driver",
            match attr(fs, "model").as_deref() {
                Some("virtio-transitional") => "virtio-9p-pci-transitional",
                Some("virtio-non-transitional") => "virtio-9p-pci-non-transitional",
                _ => "virtio-9p-pci",
            },
        );
        d = d
            .extend(virtio_options(fs))
            .set("id", id)
            .set("fsdev", fsdev)
            .set("mount_tag", target);
        g.device(&address::pci(g, fs, d));
    }
    Ok(())
}

/// Watchdog models and their devices.
const WATCHDOGS: &[(&str, &str)] = &[("i6300esb", "i6300esb"), ("ib700", "ib700"), ("itco", "")];

pub(crate) fn emit_watchdogs(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, w) in devices.children_named("watchdog").enumerate() {
        let p = g.path(w);
        let model = attr(w, "model").unwrap_or_default();
        let driver = WATCHDOGS
            .iter()
            .find(|(m, d)| *m == model && !d.is_empty())
            .map(|(_, d)| *d)
            .ok_or_else(|| unsupported(p.attr("model"), format!("watchdog model '{model}'")))?;
        let o = Props::new()
            .set("driver", driver)
            .set("id", alias(w, format!("watchdog{i}")));
        g.device(&address::pci(g, w, o));
        // QEMU resets by default; libvirt performs dumps itself after
        // pausing the guest.
        match attr(w, "action").as_deref() {
            None | Some("reset") => {}
            Some("dump") => g.a.opt("-watchdog-action", "pause"),
            Some(a) => g.a.opt("-watchdog-action", a.to_string()),
        }
    }
    Ok(())
}

/// USB redirection: a chardev (SPICE's usbredir channel, a socket...)
/// and a `usb-redir` device on it.
pub(crate) fn emit_redirdevs(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    if let Some(f) = devices.child("redirfilter") {
        return Err(unsupported(g.path(f), "USB redirection filters"));
    }
    for (i, r) in devices.children_named("redirdev").enumerate() {
        let p = g.path(r);
        if attr(r, "bus").as_deref().is_some_and(|b| b != "usb") {
            return Err(unsupported(p.attr("bus"), "USB redirection outside USB"));
        }
        let id = alias(r, format!("redir{i}"));
        let chr = format!("char{id}");
        let chardev = super::chardev::backend(g, r, &chr, &p, None)?;
        g.a.opt("-chardev", chardev);
        let o = Props::new()
            .set("driver", "usb-redir")
            .set("chardev", chr)
            .set("id", id);
        let o = o.opt(
            "bootindex",
            child_attr(r, "boot", "order").and_then(|v| parse_num(&v)),
        );
        g.device(&address::usb(g, r, o));
    }
    Ok(())
}

pub(crate) fn emit_memballoon(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for m in devices.children_named("memballoon") {
        let p = g.path(m);
        let model = attr(m, "model").unwrap_or_else(|| "virtio".into());
        let driver = match model.as_str() {
            "none" => continue,
            "virtio" => "virtio-balloon-pci",
            "virtio-transitional" => "virtio-balloon-pci-transitional",
            "virtio-non-transitional" => "virtio-balloon-pci-non-transitional",
            other => {
                return Err(unsupported(
                    p.attr("model"),
                    format!("memballoon model '{other}'"),
                ));
            }
        };
        let mut o = Props::new()
            .set("driver", driver)
            .extend(virtio_options(m))
            .set("id", alias(m, "balloon0"));
        let reporting = switch(attr(m, "freePageReporting"));
        if reporting == Some(true) {
            g.require(
                "virtio-balloon.free-page-reporting",
                "freePageReporting is not supported by this QEMU binary",
            )?;
        }
        o = o
            .opt("deflate-on-oom", switch(attr(m, "autodeflate")))
            .opt("free-page-reporting", reporting);
        g.device(&address::pci(g, m, o));
    }
    Ok(())
}

fn rng_backend(g: &mut Gen<'_>, r: &Element, obj: &str) -> Result<()> {
    let p = g.path(r);
    let backend = r.child("backend");
    let model = backend
        .and_then(|b| attr(b, "model"))
        .unwrap_or_else(|| "random".into());
    let o = match model.as_str() {
        "random" => {
            let file = backend
                .map(|b| b.text().trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/dev/urandom".into());
            Props::new()
                .set("qom-type", "rng-random")
                .set("id", obj)
                .set("filename", file)
        }
        "builtin" => Props::new().set("qom-type", "rng-builtin").set("id", obj),
        other => {
            return Err(unsupported(
                p.named("backend").attr("model"),
                format!("RNG backend '{other}'"),
            ));
        }
    };
    g.object(&o);
    Ok(())
}

pub(crate) fn emit_rngs(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, r) in devices.children_named("rng").enumerate() {
        let p = g.path(r);
        let model = attr(r, "model").unwrap_or_default();
        let driver = match model.as_str() {
            "virtio" => "virtio-rng-pci",
            "virtio-transitional" => "virtio-rng-pci-transitional",
            "virtio-non-transitional" => "virtio-rng-pci-non-transitional",
            other => return Err(unsupported(p.attr("model"), format!("RNG model '{other}'"))),
        };
        let id = alias(r, format!("rng{i}"));
        let obj = format!("obj{id}");
        rng_backend(g, r, &obj)?;
        let mut o = Props::new()
            .set("driver", driver)
            .extend(virtio_options(r))
            .set("rng", obj)
            .set("id", id);
        if let Some(rate) = r.child("rate") {
            let bytes = attr(rate, "bytes").and_then(|v| parse_num(&v));
            o = o.opt("max-bytes", bytes);
            o = o.opt(
                "period",
                attr(rate, "period")
                    .and_then(|v| parse_num(&v))
                    .or(bytes.map(|_| 1000)),
            );
        }
        g.device(&address::pci(g, r, o));
    }
    Ok(())
}

pub(crate) fn emit_panics(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for pd in devices.children_named("panic") {
        let p = g.path(pd);
        match attr(pd, "model").as_deref() {
            // Hyper-V crash notification is a CPU property.
            Some("hyperv") => {}
            None | Some("isa") => {
                let o = Props::new().set("driver", "pvpanic");
                let o = o.opt(
                    "ioport",
                    address_of(pd, "isa")
                        .and_then(|a| attr(a, "iobase"))
                        .and_then(|v| parse_num(&v)),
                );
                g.device(&o);
            }
            Some("pci") => {
                let o = Props::new()
                    .set("driver", "pvpanic-pci")
                    .set("id", alias(pd, "panic0"));
                g.device(&address::pci(g, pd, o));
            }
            Some(other) => {
                return Err(unsupported(
                    p.attr("model"),
                    format!("panic model '{other}'"),
                ));
            }
        }
    }
    Ok(())
}

/// Device elements the builder turns into arguments (or that need none).
const HANDLED: &[&str] = &[
    "emulator",
    "controller",
    "disk",
    "filesystem",
    "interface",
    "serial",
    "parallel",
    "channel",
    "console",
    "input",
    "audio",
    "graphics",
    "video",
    "sound",
    "watchdog",
    "memballoon",
    "rng",
    "panic",
    "redirdev",
    "hostdev",
    "iommu",
    "memory",
];

/// Devices virtkit does not turn into arguments yet must not pass silently.
pub(crate) fn check_handled(g: &Gen<'_>) -> Result<()> {
    if let Some(other) = g.devices.elements().find(|e| !HANDLED.contains(&e.name())) {
        return Err(unsupported(g.path(other), format!("<{}>", other.name())));
    }
    Ok(())
}
