//! Host devices passed to the guest: PCI functions and mediated devices
//! through VFIO, USB devices by bus and device number. Preparing the host
//! (binding a `managed` PCI device to vfio-pci) is the runtime's job; the
//! command line only names the device.

use virtkit_core::Result;

use super::{Gen, Props, address, alias, attr, child_attr, invalid, switch, unsupported};
use crate::profile::address::parse_num;

/// USB guest-reset policies: (libvirt value, guest-reset, guest-resets-all).
const USB_RESETS: &[(&str, bool, bool)] = &[
    ("off", false, false),
    ("uninitialized", true, false),
    ("on", true, true),
];

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, h) in devices.children_named("hostdev").enumerate() {
        let p = g.path(h);
        if attr(h, "mode").as_deref() != Some("subsystem") {
            return Err(unsupported(
                p.attr("mode"),
                "host devices in capabilities mode",
            ));
        }
        let ty = attr(h, "type").unwrap_or_default();
        let id = alias(h, format!("hostdev{i}"));
        let source = h.child("source");
        let src_addr = source.and_then(|s| s.child("address"));
        let bootindex = child_attr(h, "boot", "order").and_then(|v| parse_num(&v));
        let o = match ty.as_str() {
            "pci" => {
                if h.child("driver")
                    .and_then(|d| attr(d, "name"))
                    .is_some_and(|n| n != "vfio")
                {
                    return Err(unsupported(
                        p.named("driver").attr("name"),
                        "PCI passthrough other than VFIO",
                    ));
                }
                if h.child("rom").is_some() {
                    return Err(unsupported(p.named("rom"), "PCI ROM settings"));
                }
                let a = src_addr.ok_or_else(|| {
                    invalid(
                        p.named("source"),
                        "a PCI host device needs a source address",
                    )
                })?;
                let n = |k: &str| attr(a, k).and_then(|v| parse_num(&v)).unwrap_or(0);
                let host = format!(
                    "{:04x}:{:02x}:{:02x}.{:x}",
                    n("domain"),
                    n("bus"),
                    n("slot"),
                    n("function")
                );
                let o = Props::new()
                    .set("driver", "vfio-pci")
                    .set("host", host)
                    .set("id", id);
                address::pci(g, h, o.opt("bootindex", bootindex))
            }
            "mdev" => {
                if attr(h, "model").as_deref() != Some("vfio-pci") {
                    return Err(unsupported(
                        p.attr("model"),
                        "mediated devices other than vfio-pci",
                    ));
                }
                let uuid = src_addr.and_then(|a| attr(a, "uuid")).ok_or_else(|| {
                    invalid(p.named("source"), "a mediated device needs a source uuid")
                })?;
                let ramfb = switch(attr(h, "ramfb")) == Some(true);
                let driver = if ramfb {
                    "vfio-pci-nohotplug"
                } else {
                    "vfio-pci"
                };
                let mut o = Props::new()
                    .set("driver", driver)
                    .set("id", id)
                    .set("sysfsdev", format!("/sys/bus/mdev/devices/{uuid}"));
                if let Some(d) = switch(attr(h, "display")) {
                    o = o.set("display", if d { "on" } else { "off" });
                }
                if ramfb {
                    o = o.set("ramfb", true);
                }
                address::pci(g, h, o.opt("bootindex", bootindex))
            }
            "usb" => {
                if source
                    .is_some_and(|s| s.child("vendor").is_some() || s.child("product").is_some())
                {
                    return Err(unsupported(
                        p.named("source"),
                        "USB host devices chosen by vendor and product",
                    ));
                }
                let a = src_addr.ok_or_else(|| {
                    invalid(
                        p.named("source"),
                        "a USB host device needs a source address",
                    )
                })?;
                let n = |k: &str| attr(a, k).and_then(|v| parse_num(&v)).unwrap_or(0);
                let mut o = Props::new()
                    .set("driver", "usb-host")
                    .set(
                        "hostdevice",
                        format!("/dev/bus/usb/{:03}/{:03}", n("bus"), n("device")),
                    )
                    .set("id", id);
                if let Some(reset) = source
                    .and_then(|s| attr(s, "guestReset"))
                    .filter(|r| r != "default")
                {
                    let (_, one, all) =
                        USB_RESETS
                            .iter()
                            .find(|(k, ..)| *k == reset)
                            .ok_or_else(|| {
                                invalid(
                                    p.named("source").attr("guestReset"),
                                    format!("unknown guest reset policy '{reset}'"),
                                )
                            })?;
                    o = o.set("guest-reset", *one).set("guest-resets-all", *all);
                }
                address::usb(g, h, o.opt("bootindex", bootindex))
            }
            other => {
                return Err(unsupported(
                    p.attr("type"),
                    format!("host device type '{other}'"),
                ));
            }
        };
        g.device(&o);
    }
    Ok(())
}
