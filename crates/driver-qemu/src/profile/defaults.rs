//! The defaults libvirt's QEMU driver fills into a definition, device by
//! device: the default CPU model, disk driver and format, NIC model,
//! serial port target, LUKS by QEMU, the vsock model, the audio backend,
//! the PS/2 inputs of a PC and the memory balloon.

use virtkit_core::xml::Element;

use super::machine::Chipset;

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// The CPU model QEMU's PC machines use by default (`qemu64` for the
/// x86_64 binary, also for i686 guests on it).
const DEFAULT_CPU_MODEL: &str = "qemu64";

/// A guest without a CPU model gets the machine's default one, printed as
/// libvirt does: `custom`, `exact`, no checking, no fallback.
pub fn cpu(domain: &mut Element, chipset: Chipset) {
    if chipset == Chipset::Other {
        return;
    }
    let needs_model = match domain.child("cpu") {
        None => true,
        Some(c) => {
            matches!(attr(c, "mode").as_deref(), None | Some("custom"))
                && c.child("model").is_none_or(|m| m.text().trim().is_empty())
        }
    };
    if !needs_model {
        return;
    }
    let cpu = domain.child_or_insert("cpu");
    for (k, v) in [("mode", "custom"), ("match", "exact"), ("check", "none")] {
        if !cpu.has_attr(k) {
            cpu.set_attr(k, v);
        }
    }
    let model = cpu.child_or_insert("model");
    model.set_text(DEFAULT_CPU_MODEL);
    if !model.has_attr("fallback") {
        model.set_attr("fallback", "forbid");
    }
}

/// Disks name QEMU as their driver and raw as their format unless told.
fn disk(d: &mut Element) {
    if attr(d, "type").as_deref() == Some("volume") && d.child("driver").is_none() {
        return;
    }
    let drv = d.child_or_insert("driver");
    if !drv.has_attr("name") {
        drv.set_attr("name", "qemu");
    }
    if !drv.has_attr("type") {
        drv.set_attr("type", "raw");
    }
    luks_engine(d);
}

/// LUKS encryption of a disk, its source or a backing image is done by
/// QEMU unless the definition names another engine.
fn luks_engine(layer: &mut Element) {
    if let Some(src) = layer.child_mut("source") {
        luks_engine_here(src);
    }
    luks_engine_here(layer);
    if let Some(b) = layer.child_mut("backingStore") {
        luks_engine(b);
    }
}

fn luks_engine_here(e: &mut Element) {
    if let Some(enc) = e.child_mut("encryption")
        && enc.attr("format").as_deref() == Some("luks")
        && !enc.has_attr("engine")
    {
        enc.set_attr("engine", "qemu");
    }
}

/// NICs without a model get QEMU's default PC NIC.
fn interface(n: &mut Element) {
    if attr(n, "type").as_deref() == Some("hostdev") {
        return;
    }
    if n.child("model").is_none_or(|m| !m.has_attr("type")) {
        n.child_or_insert("model").set_attr("type", "rtl8139");
    }
}

/// Serial ports on a PC are ISA serial ports unless told otherwise.
fn serial(s: &mut Element) {
    let t = s.child_or_insert("target");
    if !t.has_attr("type") {
        t.set_attr("type", "isa-serial");
    }
    let model = match attr(t, "type").as_deref() {
        Some("isa-serial") => "isa-serial",
        Some("usb-serial") => "usb-serial",
        Some("pci-serial") => "pci-serial",
        _ => return,
    };
    if t.child("model").is_none_or(|m| !m.has_attr("name")) {
        t.child_or_insert("model").set_attr("name", model);
    }
}

/// Video memory (KiB) libvirt gives a model when none is written:
/// (model, attribute, value).
const VIDEO_MEMORY: &[(&str, &str, &str)] = &[
    ("vga", "vram", "16384"),
    ("cirrus", "vram", "16384"),
    ("vmvga", "vram", "16384"),
    ("bochs", "vram", "16384"),
    ("qxl", "ram", "65536"),
    ("qxl", "vram", "65536"),
    ("qxl", "vgamem", "16384"),
];

/// Video cards: the driver's default model, video memory and one head.
fn video(v: &mut Element) {
    let m = v.child_or_insert("model");
    if matches!(attr(m, "type").as_deref(), None | Some("default")) {
        m.set_attr("type", "cirrus");
    }
    let ty = attr(m, "type").unwrap_or_default();
    if ty == "none" {
        return;
    }
    for (model, key, value) in VIDEO_MEMORY {
        if *model == ty && !m.has_attr(key) {
            m.set_attr(key, value);
        }
    }
    if !m.has_attr("heads") {
        m.set_attr("heads", "1");
    }
}

/// Per-device defaults.
pub fn devices(devices: &mut Element, chipset: Chipset) {
    for dev in devices.elements_mut() {
        match dev.name() {
            "disk" => disk(dev),
            "interface" => interface(dev),
            "video" => video(dev),
            "serial" if chipset != Chipset::Other => serial(dev),
            "vsock" if !dev.has_attr("model") => dev.set_attr("model", "virtio"),
            _ => {}
        }
    }
}

/// The PS/2 mouse and keyboard of a PC, and the memory balloon.
pub fn implicit_devices(devices: &mut Element, chipset: Chipset) {
    if chipset != Chipset::Other {
        for ty in ["mouse", "keyboard"] {
            let present = devices.children_named("input").any(|i| {
                attr(i, "type").as_deref() == Some(ty) && attr(i, "bus").as_deref() == Some("ps2")
            });
            if !present {
                devices.push(
                    Element::new("input")
                        .with_attr("type", ty)
                        .with_attr("bus", "ps2"),
                );
            }
        }
    }
    if devices.child("memballoon").is_none() {
        devices.push(Element::new("memballoon").with_attr("model", "virtio"));
    }
}

/// Without an `<audio>` backend, libvirt gives the domain one that fits
/// its graphics: SPICE's own for SPICE, none for VNC or no graphics.
/// Display types that carry no audio (egl-headless, dbus...) add none.
pub fn audio(devices: &mut Element) {
    if devices.child("audio").is_some() {
        return;
    }
    let mut backend = None;
    let mut graphics = false;
    for g in devices.children_named("graphics") {
        graphics = true;
        match attr(g, "type").as_deref() {
            Some("vnc") | Some("sdl") => backend = Some("none"),
            Some("spice") => backend = Some("spice"),
            _ => {}
        }
    }
    if !graphics {
        backend = Some("none");
    }
    if let Some(b) = backend {
        devices.push(
            Element::new("audio")
                .with_attr("id", "1")
                .with_attr("type", b),
        );
    }
}
