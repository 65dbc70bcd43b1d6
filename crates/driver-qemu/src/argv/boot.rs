//! Boot: `-boot` (menu, splash time, reboot timeout, strict), direct
//! kernel boot, and the boot index each device gets. libvirt turns the
//! `<os><boot dev=..>` list into indexes on the first disk, CD-ROM, floppy
//! and NIC; without that list, `<boot order=..>` on devices is used as is.

use virtkit_core::Result;
use virtkit_core::xml::{Element, XPath};

use super::{Gen, attr, child_attr, invalid, switch, unsupported};

/// `<os>` children this builder can express.
const OS_SUPPORTED: &[&str] = &[
    "type", "boot", "bootmenu", "kernel", "initrd", "cmdline", "dtb", "bios", "loader", "nvram",
    "firmware",
];

pub(crate) fn emit(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let os = g.domain.child("os");
    let op = p.named("os");
    if let Some(os) = os {
        if let Some(other) = os.elements().find(|e| !OS_SUPPORTED.contains(&e.name())) {
            return Err(unsupported(
                op.named(other.name()),
                format!("<os><{}>", other.name()),
            ));
        }
        if os
            .child("bios")
            .is_some_and(|b| switch(attr(b, "useserial")).is_some())
        {
            return Err(unsupported(op.named("bios"), "BIOS serial output"));
        }
    }
    let mut boot = Vec::new();
    if let Some(menu) = os.and_then(|o| o.child("bootmenu")) {
        match switch(attr(menu, "enable")) {
            Some(true) => {
                boot.push("menu=on".to_string());
                if let Some(t) = attr(menu, "timeout") {
                    boot.push(format!("splash-time={t}"));
                }
            }
            Some(false) => boot.push("menu=off".to_string()),
            None => {}
        }
    }
    if let Some(t) = os
        .and_then(|o| o.child("bios"))
        .and_then(|b| attr(b, "rebootTimeout"))
    {
        boot.push(format!("reboot-timeout={t}"));
    }
    boot.push("strict=on".to_string());
    g.a.opt("-boot", boot.join(","));
    for (el, flag) in [
        ("kernel", "-kernel"),
        ("initrd", "-initrd"),
        ("cmdline", "-append"),
        ("dtb", "-dtb"),
    ] {
        if let Some(v) = os.and_then(|o| o.child(el)) {
            let text = v.text();
            if el != "cmdline" && text.trim().is_empty() {
                return Err(invalid(op.named(el), format!("<{el}> is empty")));
            }
            g.a.opt(flag, text.trim().to_string());
        }
    }
    Ok(())
}

/// The boot index of `dev`, as libvirt computes it at start.
pub(crate) fn index(g: &Gen<'_>, dev: &Element) -> Option<u32> {
    let order: Vec<String> = g
        .domain
        .child("os")
        .map(|o| {
            o.children_named("boot")
                .filter_map(|b| attr(b, "dev"))
                .collect()
        })
        .unwrap_or_default();
    if order.is_empty() {
        return child_attr(dev, "boot", "order").and_then(|o| o.parse().ok());
    }
    let pos = |kind: &str| order.iter().rposition(|k| k == kind).map(|i| i as u32 + 1);
    match dev.name() {
        "disk" => {
            let kind_of = |d: &Element| match attr(d, "device").as_deref() {
                Some("cdrom") => "cdrom",
                Some("floppy") => "fd",
                _ => "hd",
            };
            let kind = kind_of(dev);
            let first = g
                .devices
                .children_named("disk")
                .find(|d| kind_of(d) == kind)?;
            if std::ptr::eq(first, dev) {
                pos(kind)
            } else {
                None
            }
        }
        "interface" => {
            let first = g.devices.children_named("interface").next()?;
            if std::ptr::eq(first, dev) {
                pos("network")
            } else {
                None
            }
        }
        _ => None,
    }
}
