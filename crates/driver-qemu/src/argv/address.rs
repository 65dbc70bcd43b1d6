//! Where a device plugs in, as QEMU device properties: `bus` and `addr` for
//! PCI (bus ids are the PCI controllers' aliases), `bus` and `port` for USB.

use virtkit_core::xml::Element;

use super::{Gen, Props, alias, attr};
use crate::profile::address::{PciAddr, address_of, parse_num};

/// The id QEMU knows PCI bus `index` by: the root's fixed name, else the
/// controller's alias (`pci.N` unless the user named it).
pub(crate) fn pci_bus_id(g: &Gen<'_>, index: u32) -> String {
    if index == 0 {
        return g.chipset.root_bus().to_string();
    }
    g.devices
        .children_named("controller")
        .find(|c| {
            attr(c, "type").as_deref() == Some("pci")
                && attr(c, "index").and_then(|i| parse_num(&i)) == Some(index)
        })
        .map(|c| alias(c, format!("pci.{index}")))
        .unwrap_or_else(|| format!("pci.{index}"))
}

/// The id of USB bus `index`: the controller's alias plus `.0`.
pub(crate) fn usb_bus_id(g: &Gen<'_>, index: u32) -> String {
    let default = if index == 0 {
        "usb".to_string()
    } else {
        format!("usb{index}")
    };
    let name = g
        .devices
        .children_named("controller")
        .find(|c| {
            attr(c, "type").as_deref() == Some("usb")
                && attr(c, "index").and_then(|i| parse_num(&i)) == Some(index)
        })
        .map(|c| alias(c, default.clone()))
        .unwrap_or(default);
    format!("{name}.0")
}

/// Adds the PCI placement of `dev` (bus, multifunction, addr), if any.
pub(crate) fn pci(g: &Gen<'_>, dev: &Element, p: Props) -> Props {
    let Some(a) = PciAddr::of(dev) else { return p };
    let p = p.set("bus", pci_bus_id(g, a.bus));
    let p = p.opt("multifunction", PciAddr::multifunction(dev));
    p.set("addr", a.qemu_addr())
}

/// Adds the USB placement of `dev` (bus, port), if any.
pub(crate) fn usb(g: &Gen<'_>, dev: &Element, p: Props) -> Props {
    let Some(a) = address_of(dev, "usb") else {
        return p;
    };
    let bus = attr(a, "bus").and_then(|b| parse_num(&b)).unwrap_or(0);
    let p = p.set("bus", usb_bus_id(g, bus));
    p.opt("port", attr(a, "port"))
}

/// Adds whatever placement `dev` has (PCI or USB).
pub(crate) fn any(g: &Gen<'_>, dev: &Element, p: Props) -> Props {
    match dev
        .child("address")
        .and_then(|a| attr(a, "type"))
        .as_deref()
    {
        Some("pci") => pci(g, dev, p),
        Some("usb") => usb(g, dev, p),
        _ => p,
    }
}
