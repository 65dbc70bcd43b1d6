//! Video cards. The first one is the primary display (a VGA-compatible
//! device where the model has one), later ones are secondary devices.

use virtkit_core::Result;
use virtkit_core::xml::Element;

use super::controller::virtio_options;
use super::{Gen, Props, address, alias, attr, child_attr, switch, unsupported};
use crate::profile::address::parse_num;

/// (model, primary device, secondary device).
const DRIVERS: &[(&str, &str, Option<&str>)] = &[
    ("vga", "VGA", None),
    ("cirrus", "cirrus-vga", None),
    ("vmvga", "vmware-svga", None),
    ("qxl", "qxl-vga", Some("qxl")),
    ("virtio", "virtio-vga", Some("virtio-gpu-pci")),
    ("bochs", "bochs-display", Some("bochs-display")),
    ("ramfb", "ramfb", None),
];

fn kib(m: &Element, n: &str) -> Option<u64> {
    attr(m, n).and_then(|v| parse_num(&v)).map(u64::from)
}

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, v) in devices.children_named("video").enumerate() {
        let p = g.path(v);
        let Some(m) = v.child("model") else { continue };
        let model = attr(m, "type").unwrap_or_default();
        if model == "none" {
            continue;
        }
        if v.child("driver").and_then(|d| attr(d, "name")).as_deref() == Some("vhostuser") {
            return Err(unsupported(
                p.named("driver").attr("name"),
                "vhost-user video",
            ));
        }
        if m.child("acceleration")
            .is_some_and(|a| switch(attr(a, "accel3d")) == Some(true))
        {
            return Err(unsupported(
                p.named("model").named("acceleration"),
                "3D acceleration",
            ));
        }
        if m.child("resolution").is_some() || m.child("acceleration").is_some() {
            return Err(unsupported(
                p.named("model"),
                "video resolution or acceleration settings",
            ));
        }
        let (_, primary, secondary) =
            DRIVERS.iter().find(|(k, ..)| *k == model).ok_or_else(|| {
                unsupported(
                    p.named("model").attr("type"),
                    format!("video model '{model}'"),
                )
            })?;
        let driver = if i == 0 {
            *primary
        } else {
            secondary.ok_or_else(|| unsupported(&p, format!("a secondary '{model}' video card")))?
        };
        let heads = kib(m, "heads");
        let mut o = Props::new().set("driver", driver);
        if model == "virtio" {
            o = o.extend(virtio_options(v));
        }
        o = o.set("id", alias(v, format!("video{i}")));
        match model.as_str() {
            "vga" | "vmvga" => o = o.opt("vgamem_mb", kib(m, "vram").map(|k| k / 1024)),
            "qxl" => {
                o = o
                    .opt("max_outputs", heads)
                    .opt("ram_size", kib(m, "ram").map(|k| k * 1024))
                    .opt("vram_size", kib(m, "vram").map(|k| k * 1024))
                    .set("vram64_size_mb", kib(m, "vram64").unwrap_or(0) / 1024)
                    .opt("vgamem_mb", kib(m, "vgamem").map(|k| k / 1024));
            }
            "virtio" => o = o.opt("max_outputs", heads),
            "bochs" => o = o.opt("vgamem", kib(m, "vram").map(|k| k * 1024)),
            _ => {}
        }
        o = address::pci(g, v, o);
        o = o.opt(
            "acpi-index",
            child_attr(v, "acpi", "index").and_then(|x| parse_num(&x)),
        );
        g.device(&o);
    }
    Ok(())
}
