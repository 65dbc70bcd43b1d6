//! Input devices: PS/2 ones are built into a PC; USB and virtio ones are
//! `-device`s, aliased `inputN` by their position among all inputs.

use virtkit_core::Result;

use super::controller::virtio_options;
use super::{Gen, Props, address, alias, attr, child_attr, unsupported};

/// (type, bus) -> QEMU driver.
const INPUT_DRIVERS: &[((&str, &str), &str)] = &[
    (("tablet", "usb"), "usb-tablet"),
    (("mouse", "usb"), "usb-mouse"),
    (("keyboard", "usb"), "usb-kbd"),
    (("tablet", "virtio"), "virtio-tablet-pci"),
    (("mouse", "virtio"), "virtio-mouse-pci"),
    (("keyboard", "virtio"), "virtio-keyboard-pci"),
    (("passthrough", "virtio"), "virtio-input-host-pci"),
];

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, inp) in devices.children_named("input").enumerate() {
        let p = g.path(inp);
        let ty = attr(inp, "type").unwrap_or_default();
        let bus = attr(inp, "bus").unwrap_or_else(|| "ps2".into());
        if bus == "ps2" && matches!(ty.as_str(), "mouse" | "keyboard") {
            continue;
        }
        if ty == "evdev" {
            // Host input passed through by QEMU itself.
            let src = inp.child("source");
            let sa = |n: &str| src.and_then(|s| attr(s, n));
            let mut o = Props::new()
                .set("qom-type", "input-linux")
                .set("id", alias(inp, format!("input{i}")))
                .opt("evdev", sa("dev"))
                .opt("repeat", super::switch(sa("repeat")));
            match sa("grab").as_deref() {
                Some("all") => o = o.set("grab_all", true),
                None => {}
                Some(other) => {
                    return Err(unsupported(
                        p.named("source").attr("grab"),
                        format!("evdev grab '{other}'"),
                    ));
                }
            }
            o = o.opt("grab-toggle", sa("grabToggle"));
            g.object(&o);
            continue;
        }
        let driver = INPUT_DRIVERS
            .iter()
            .find(|((t, b), _)| *t == ty && *b == bus)
            .map(|(_, d)| *d)
            .ok_or_else(|| unsupported(&p, format!("input '{ty}' on bus '{bus}'")))?;
        let mut o = Props::new().set("driver", driver);
        if bus == "virtio" {
            o = o.extend(virtio_options(inp));
        }
        o = o.set("id", alias(inp, format!("input{i}")));
        if ty == "passthrough" {
            o = o.opt("evdev", child_attr(inp, "source", "evdev"));
        }
        o = address::any(g, inp, o);
        g.device(&o);
    }
    Ok(())
}
