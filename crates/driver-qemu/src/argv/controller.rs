//! Controllers as `-device`s, in libvirt's type order (PCI, USB, SCSI, IDE,
//! SATA, virtio-serial), then USB hubs and CCID. Controllers built into
//! the chipset (the PCI roots, the i440FX IDE and the Q35 SATA controller)
//! have no option of their own.

use virtkit_core::Result;
use virtkit_core::xml::Element;

use super::{Gen, Props, address, alias, attr, child_attr, invalid, switch, unsupported};
use crate::profile::address::parse_num;
use crate::profile::machine::Chipset;

/// Controller types in the order libvirt writes them.
const TYPE_ORDER: &[&str] = &["pci", "usb", "scsi", "ide", "sata", "virtio-serial"];

/// USB controller models: (libvirt model, QEMU driver).
const USB_DRIVERS: &[(&str, &str)] = &[
    ("piix3-uhci", "piix3-usb-uhci"),
    ("piix4-uhci", "piix4-usb-uhci"),
    ("ehci", "usb-ehci"),
    ("ich9-ehci1", "ich9-usb-ehci1"),
    ("ich9-uhci1", "ich9-usb-uhci1"),
    ("ich9-uhci2", "ich9-usb-uhci2"),
    ("ich9-uhci3", "ich9-usb-uhci3"),
    ("vt82c686b-uhci", "vt82c686b-usb-uhci"),
    ("pci-ohci", "pci-ohci"),
    ("nec-xhci", "nec-usb-xhci"),
    ("qemu-xhci", "qemu-xhci"),
];

/// First port each USB1 companion takes on its EHCI master.
const USB_COMPANION_PORT: &[(&str, u32)] =
    &[("ich9-uhci1", 0), ("ich9-uhci2", 2), ("ich9-uhci3", 4)];

/// SCSI controller models: (libvirt model, QEMU driver).
const SCSI_DRIVERS: &[(&str, &str)] = &[
    ("lsilogic", "lsi"),
    ("virtio-scsi", "virtio-scsi-pci"),
    ("virtio-transitional", "virtio-scsi-pci-transitional"),
    (
        "virtio-non-transitional",
        "virtio-scsi-pci-non-transitional",
    ),
    ("lsisas1068", "mptsas1068"),
    ("lsisas1078", "megasas"),
    ("vmpvscsi", "pvscsi"),
    ("am53c974", "am53c974"),
    ("dc390", "dc390"),
];

/// PCI controller model names and the QEMU driver for each.
const PCI_DRIVERS: &[(&str, &str)] = &[
    ("pci-bridge", "pci-bridge"),
    ("pcie-root-port", "pcie-root-port"),
    ("ioh3420", "ioh3420"),
    ("x3130-upstream", "x3130-upstream"),
    ("xio3130-downstream", "xio3130-downstream"),
    ("i82801b11-bridge", "i82801b11-bridge"),
    ("pcie-pci-bridge", "pcie-pci-bridge"),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn index(c: &Element) -> u32 {
    attr(c, "index").and_then(|i| parse_num(&i)).unwrap_or(0)
}

/// The alias libvirt gives controller `c`: QEMU's own name for the
/// chipset's built-in controllers (the Q35 AHCI is `ide`).
pub(crate) fn controller_alias(g: &Gen<'_>, c: &Element) -> String {
    let ty = attr(c, "type").unwrap_or_default();
    let idx = index(c);
    let default = match ty.as_str() {
        "pci" => format!("pci.{idx}"),
        "ide" if idx == 0 => "ide".to_string(),
        "usb" if idx == 0 => "usb".to_string(),
        "sata" if idx == 0 && g.chipset == Chipset::Q35 => "ide".to_string(),
        _ => format!("{ty}{idx}"),
    };
    alias(c, default)
}

/// Virtio transport options of a device (`<driver iommu ats packed ..>`),
/// in libvirt's order.
pub(crate) fn virtio_options(dev: &Element) -> Props {
    let drv = dev.child("driver");
    let mut p = Props::new();
    for (xml, qemu) in [
        ("iommu", "iommu_platform"),
        ("ats", "ats"),
        ("packed", "packed"),
        ("page_per_vq", "page-per-vq"),
    ] {
        if let Some(v) = drv.and_then(|d| switch(attr(d, xml))) {
            p.put(qemu, v);
        }
    }
    p
}

fn emit_one(g: &mut Gen<'_>, c: &Element) -> Result<()> {
    let ty = attr(c, "type").unwrap_or_default();
    let model = attr(c, "model");
    let idx = index(c);
    let id = controller_alias(g, c);
    let cp = g.path(c);
    let props = match ty.as_str() {
        "pci" => {
            let model = model.unwrap_or_default();
            if matches!(model.as_str(), "pci-root" | "pcie-root") {
                return Ok(());
            }
            let name = c
                .child("model")
                .and_then(|m| attr(m, "name"))
                .ok_or_else(|| {
                    invalid(
                        &cp,
                        format!("PCI controller model '{model}' has no QEMU model name"),
                    )
                })?;
            let driver = lookup(PCI_DRIVERS, &name)
                .ok_or_else(|| unsupported(&cp, format!("PCI controller '{name}'")))?;
            let t = |n: &str| child_attr(c, "target", n).and_then(|v| parse_num(&v));
            let mut p = Props::new().set("driver", driver);
            match model.as_str() {
                "pci-bridge" => {
                    p = p.opt("chassis_nr", t("chassisNr"));
                }
                "pcie-root-port" | "pcie-switch-downstream-port" => {
                    p = p.opt("port", t("port")).opt("chassis", t("chassis"));
                }
                _ => {}
            }
            p = p.set("id", id);
            if let Some(h) = switch(child_attr(c, "target", "hotplug")) {
                p = p.set("hotplug", h);
            }
            address::pci(g, c, p)
        }
        "usb" => {
            let model = model.unwrap_or_default();
            if model == "none" {
                return Ok(());
            }
            let driver = lookup(USB_DRIVERS, &model)
                .ok_or_else(|| unsupported(&cp, format!("USB controller model '{model}'")))?;
            let mut p = Props::new().set("driver", driver);
            if let Some(ports) = attr(c, "ports").and_then(|v| parse_num(&v)) {
                if matches!(model.as_str(), "qemu-xhci" | "nec-xhci") {
                    p = p.set("p2", ports).set("p3", ports);
                } else {
                    return Err(unsupported(
                        cp.attr("ports"),
                        format!("port count on '{model}'"),
                    ));
                }
            }
            if let Some(first) = USB_COMPANION_PORT
                .iter()
                .find(|(m, _)| *m == model)
                .map(|(_, f)| *f)
            {
                let master = c
                    .child("master")
                    .and_then(|m| attr(m, "startport"))
                    .and_then(|s| parse_num(&s))
                    .unwrap_or(first);
                p = p
                    .set("masterbus", super::address::usb_bus_id(g, idx))
                    .set("firstport", master);
            } else {
                p = p.set("id", id.clone());
            }
            address::pci(g, c, p)
        }
        "scsi" => {
            let model = model.unwrap_or_else(|| "lsilogic".into());
            let driver = lookup(SCSI_DRIVERS, &model)
                .ok_or_else(|| unsupported(&cp, format!("SCSI controller model '{model}'")))?;
            let virtio = model.starts_with("virtio");
            let mut p = Props::new().set("driver", driver);
            if virtio {
                p = p
                    .opt(
                        "iothread",
                        child_attr(c, "driver", "iothread").map(|t| format!("iothread{t}")),
                    )
                    .extend(virtio_options(c));
            }
            p = p.set("id", id);
            if virtio {
                let d = |n: &str| child_attr(c, "driver", n);
                p = p
                    .opt("num_queues", d("queues").and_then(|v| parse_num(&v)))
                    .opt("cmd_per_lun", d("cmd_per_lun").and_then(|v| parse_num(&v)))
                    .opt("max_sectors", d("max_sectors").and_then(|v| parse_num(&v)))
                    .opt("ioeventfd", switch(d("ioeventfd")));
            }
            address::pci(g, c, p)
        }
        "ide" => {
            if g.chipset == Chipset::I440fx && idx == 0 {
                return Ok(());
            }
            return Err(unsupported(&cp, "an additional IDE controller"));
        }
        "sata" => {
            if g.chipset == Chipset::Q35 && idx == 0 {
                return Ok(());
            }
            address::pci(g, c, Props::new().set("driver", "ahci").set("id", id))
        }
        "virtio-serial" => {
            let mut p = Props::new().set(
                "driver",
                match model.as_deref() {
                    Some("virtio-transitional") => "virtio-serial-pci-transitional",
                    Some("virtio-non-transitional") => "virtio-serial-pci-non-transitional",
                    _ => "virtio-serial-pci",
                },
            );
            p = p.extend(virtio_options(c)).set("id", id);
            p = p
                .opt("max_ports", attr(c, "ports").and_then(|v| parse_num(&v)))
                .opt("vectors", attr(c, "vectors").and_then(|v| parse_num(&v)));
            address::pci(g, c, p)
        }
        _ => return Ok(()),
    };
    g.device(&props);
    Ok(())
}

/// Controller types this builder understands.
const KNOWN_TYPES: &[&str] = &[
    "pci",
    "usb",
    "scsi",
    "ide",
    "sata",
    "virtio-serial",
    "fdc",
    "ccid",
];

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for c in devices.children_named("controller") {
        let ty = attr(c, "type").unwrap_or_default();
        if !KNOWN_TYPES.contains(&ty.as_str()) {
            return Err(unsupported(g.path(c), format!("controller type '{ty}'")));
        }
    }
    for ty in TYPE_ORDER {
        for c in devices.children_named("controller") {
            if attr(c, "type").as_deref() == Some(*ty) {
                emit_one(g, c)?;
            }
        }
    }
    if let Some(h) = devices.child("hub") {
        return Err(unsupported(g.path(h), "USB hubs"));
    }
    for c in devices.children_named("controller") {
        if attr(c, "type").as_deref() == Some("ccid") {
            let p = Props::new()
                .set("driver", "usb-ccid")
                .set("id", controller_alias(g, c));
            let p = address::usb(g, c, p);
            g.device(&p);
        }
    }
    Ok(())
}
