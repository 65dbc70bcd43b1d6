//! Device addresses as the profile and the command line read and write
//! them: PCI (`domain:bus:slot.function`), USB (`bus` and a port path) and
//! virtio-serial ports.

use virtkit_core::xml::Element;

/// Parses a number the way libvirt's address parser does: `0x` hex or decimal.
pub fn parse_num(v: &str) -> Option<u32> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The `<address>` child of `dev` when it has type `ty`.
pub fn address_of<'a>(dev: &'a Element, ty: &str) -> Option<&'a Element> {
    dev.child("address")
        .filter(|a| a.attr("type").as_deref() == Some(ty))
}

/// A PCI address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr {
    /// PCI domain (always 0 here).
    pub domain: u32,
    /// Bus number: the index of the PCI controller providing it.
    pub bus: u32,
    /// Slot on that bus, 0..=31.
    pub slot: u32,
    /// Function, 0..=7.
    pub function: u32,
}

impl PciAddr {
    /// The device's PCI address, if it has a PCI address that is set (an
    /// all-zero address means "assign one").
    pub fn of(dev: &Element) -> Option<PciAddr> {
        let a = address_of(dev, "pci")?;
        let n = |k: &str| a.attr(k).and_then(|v| parse_num(&v)).unwrap_or(0);
        let addr = PciAddr {
            domain: n("domain"),
            bus: n("bus"),
            slot: n("slot"),
            function: n("function"),
        };
        (addr != PciAddr::default()).then_some(addr)
    }

    /// Whether `dev` asks for a PCI address to be assigned: no address at
    /// all, or a PCI address with nothing set.
    pub fn wanted(dev: &Element) -> bool {
        match dev.child("address") {
            None => true,
            Some(a) => a.attr("type").as_deref() == Some("pci") && PciAddr::of(dev).is_none(),
        }
    }

    /// Whether the device's address asks for `multifunction='on'`.
    pub fn multifunction(dev: &Element) -> Option<bool> {
        address_of(dev, "pci")
            .and_then(|a| a.attr("multifunction"))
            .map(|m| m == "on")
    }

    /// Writes the address into `dev` in libvirt's printed form, keeping an
    /// explicit `multifunction` setting.
    pub fn store(self, dev: &mut Element, multifunction: bool) {
        let keep_multi =
            address_of(dev, "pci").and_then(|a| a.attr("multifunction").map(|m| m.into_owned()));
        let mut a = Element::new("address")
            .with_attr("type", "pci")
            .with_attr("domain", &format!("0x{:04x}", self.domain))
            .with_attr("bus", &format!("0x{:02x}", self.bus))
            .with_attr("slot", &format!("0x{:02x}", self.slot))
            .with_attr("function", &format!("0x{:x}", self.function));
        match keep_multi {
            Some(m) => a.set_attr("multifunction", &m),
            None if multifunction => a.set_attr("multifunction", "on"),
            None => {}
        }
        dev.remove_children_named("address");
        dev.push(a);
    }

    /// QEMU's `addr` property: `0x2`, or `0x1.0x2` for a non-zero function.
    pub fn qemu_addr(self) -> String {
        if self.function == 0 {
            format!("{:#x}", self.slot)
        } else {
            format!("{:#x}.{:#x}", self.slot, self.function)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_round_trip_in_libvirt_form() {
        let mut dev = Element::new("disk");
        assert!(PciAddr::wanted(&dev));
        let a = PciAddr {
            domain: 0,
            bus: 0,
            slot: 1,
            function: 2,
        };
        a.store(&mut dev, false);
        let el = dev.child("address").unwrap();
        assert_eq!(el.attr("slot").as_deref(), Some("0x01"));
        assert_eq!(el.attr("function").as_deref(), Some("0x2"));
        assert_eq!(PciAddr::of(&dev), Some(a));
        assert!(!PciAddr::wanted(&dev));
        assert_eq!(a.qemu_addr(), "0x1.0x2");
    }

    #[test]
    fn an_all_zero_pci_address_is_still_wanted() {
        let dev = Element::new("disk").with_child(Element::new("address").with_attr("type", "pci"));
        assert!(PciAddr::wanted(&dev));
        let dev =
            Element::new("disk").with_child(Element::new("address").with_attr("type", "drive"));
        assert!(!PciAddr::wanted(&dev));
    }
}
