//! Small per-device defaults libvirt's parser fills in: a table of
//! attribute defaults plus the few that depend on the guest.

use super::Guest;
use crate::xml::Element;

/// (device, attribute, value) set when the attribute is missing.
const ATTR_DEFAULTS: &[(&str, &str, &str)] = &[
    ("disk", "type", "file"),
    ("disk", "device", "disk"),
    ("watchdog", "action", "reset"),
    ("hostdev", "mode", "subsystem"),
    ("filesystem", "type", "mount"),
    ("redirdev", "type", "pty"),
];

/// Applies the defaults of one device.
pub(super) fn apply(dev: &mut Element, guest: &Guest) {
    for (name, attr, value) in ATTR_DEFAULTS {
        if dev.name() == *name && !dev.has_attr(attr) {
            dev.set_attr(attr, value);
        }
    }
    match dev.name() {
        "input" => input_bus(dev, guest),
        "hostdev" => hostdev_managed(dev),
        "interface" => mac_lowercase(dev),
        "filesystem" => filesystem_accessmode(dev),
        _ => {}
    }
}

/// Input devices without a bus: PS/2 for x86 HVM mice and keyboards, USB
/// for other HVM inputs, virtio on s390 and for passthrough, Xen's own bus
/// for Xen guests.
fn input_bus(dev: &mut Element, guest: &Guest) {
    if dev.has_attr("bus") {
        return;
    }
    let ty = dev.attr("type").unwrap_or_default().into_owned();
    // evdev passthrough has no guest-visible bus.
    if ty == "evdev" {
        return;
    }
    let x86 = matches!(guest.arch.as_str(), "x86_64" | "i686" | "");
    let bus = match guest.os_type.as_str() {
        "hvm" if matches!(ty.as_str(), "mouse" | "keyboard") && x86 => "ps2",
        "hvm" if guest.arch.starts_with("s390") || ty == "passthrough" => "virtio",
        "hvm" => "usb",
        "xen" | "xenpvh" => "xen",
        _ => return,
    };
    dev.set_attr("bus", bus);
}

/// Subsystem host devices always state whether libvirt manages them.
fn hostdev_managed(dev: &mut Element) {
    if dev.attr("mode").as_deref() == Some("subsystem") && !dev.has_attr("managed") {
        dev.set_attr("managed", "no");
    }
}

/// MAC addresses print in lowercase.
fn mac_lowercase(dev: &mut Element) {
    if let Some(mac) = dev.child_mut("mac")
        && let Some(a) = mac.attr("address").map(|a| a.to_ascii_lowercase())
    {
        mac.set_attr("address", &a);
    }
}

/// Mounted filesystems state their access mode (passthrough by default).
fn filesystem_accessmode(dev: &mut Element) {
    if dev.attr("type").as_deref() == Some("mount") && !dev.has_attr("accessmode") {
        dev.set_attr("accessmode", "passthrough");
    }
}
