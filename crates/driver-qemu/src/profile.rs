//! What the QEMU driver adds to definitions: x86 guests, libvirt's implicit
//! devices (USB and PCI root controllers, PS/2 input, the memory balloon)
//! and the default video card.

use virtkit_core::domain::DomainProfile;
use virtkit_core::xml::Element;

/// libvirt's QEMU defaults.
#[derive(Debug, Default, Clone, Copy)]
pub struct QemuProfile;

fn machine_of(domain: &Element) -> String {
    domain
        .child("os")
        .and_then(|o| o.child("type"))
        .and_then(|t| t.attr("machine"))
        .map(|m| m.into_owned())
        .unwrap_or_default()
}

fn has(devices: &Element, name: &str, attr: &str, value: &str) -> bool {
    devices
        .children_named(name)
        .any(|e| e.attr(attr).as_deref() == Some(value))
}

impl DomainProfile for QemuProfile {
    fn name(&self) -> &str {
        "qemu"
    }

    fn default_video_model(&self) -> Option<&str> {
        Some("vga")
    }

    fn post_parse(&self, domain: &mut Element) {
        let q35 = machine_of(domain).contains("q35");
        let x86 = domain
            .child("os")
            .and_then(|o| o.child("type"))
            .and_then(|t| t.attr("arch"))
            .is_none_or(|a| a == "x86_64" || a == "i686");
        let Some(devices) = domain.child_mut("devices") else {
            return;
        };
        if !has(devices, "controller", "type", "usb") {
            let model = if q35 { "qemu-xhci" } else { "piix3-uhci" };
            devices.push(
                Element::new("controller")
                    .with_attr("type", "usb")
                    .with_attr("index", "0")
                    .with_attr("model", model),
            );
        }
        if !has(devices, "controller", "type", "pci") {
            devices.push(
                Element::new("controller")
                    .with_attr("type", "pci")
                    .with_attr("index", "0")
                    .with_attr("model", if q35 { "pcie-root" } else { "pci-root" }),
            );
        }
        if x86 {
            for ty in ["mouse", "keyboard"] {
                let present = devices.children_named("input").any(|i| {
                    i.attr("type").as_deref() == Some(ty) && i.attr("bus").as_deref() == Some("ps2")
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
}
