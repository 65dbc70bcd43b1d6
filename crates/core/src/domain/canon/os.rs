//! `<os>`: guest architecture and the default boot device.

use super::Ctx;
use crate::xml::{Element, Node};

/// Fills the architecture from the driver profile and, for HVM guests
/// that name no boot device anywhere, libvirt's `<boot dev='hd'/>`.
pub(super) fn normalise(root: &mut Element, ctx: &Ctx<'_>) {
    // A bootloader (Xen's pygrub, bhyve's grub) picks the boot device itself.
    let bootloader = root.child("bootloader").is_some();
    let per_device_boot = root
        .child("devices")
        .is_some_and(|d| d.elements().any(has_boot_order));
    let os = root.child_or_insert("os");
    let os_type = os.child("type").map(|t| t.text().trim().to_string());
    if let Some(t) = os.child_mut("type") {
        let text = t.text().trim().to_string();
        t.set_text(&text);
        if !t.has_attr("arch") {
            let arch = ctx
                .profile
                .default_arch(os_type.as_deref().unwrap_or("hvm"));
            // arch is printed first; the order pass places it.
            t.set_attr("arch", arch);
        }
    }
    // A loader given by path alone is a ROM image.
    if let Some(loader) = os.child_mut("loader")
        && !loader.has_attr("type")
        && !loader.text().trim().is_empty()
    {
        loader.set_attr("type", "rom");
    }
    let hvm = os_type.as_deref() == Some("hvm");
    if hvm && os.child("boot").is_none() && !per_device_boot && !bootloader {
        os.push(Element::new("boot").with_attr("dev", "hd"));
    }
}

/// Whether a device (or a device nested in it, such as a hostdev in an
/// interface) carries `<boot order=..>`.
fn has_boot_order(dev: &Element) -> bool {
    dev.children.iter().any(|n| match n {
        Node::Element(e) if e.name() == "boot" => e.has_attr("order"),
        _ => false,
    })
}
