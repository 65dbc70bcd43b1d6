//! Which chipset a machine type stands for, as far as the defaults and the
//! PCI layout care: the i440FX PC, the Q35 PC, or something else.

use virtkit_core::xml::Element;

/// The chipset family of a machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chipset {
    /// `pc`, `pc-i440fx-*`, `pc-0.x`/`pc-1.x`: PIIX3 on a conventional PCI root.
    I440fx,
    /// `q35`, `pc-q35-*`: ICH9 on a PCI Express root complex.
    Q35,
    /// `isapc`, `microvm`, `none`, other architectures.
    Other,
}

impl Chipset {
    /// The family of machine type `name`.
    pub fn of_machine(name: &str) -> Chipset {
        if name == "q35" || name.starts_with("pc-q35") {
            Chipset::Q35
        } else if name == "pc"
            || name.starts_with("pc-i440fx")
            || name.starts_with("pc-0.")
            || name.starts_with("pc-1.")
        {
            Chipset::I440fx
        } else {
            Chipset::Other
        }
    }

    /// The family of a domain's machine (`<os><type machine=..>`); a domain
    /// that names none gets QEMU's default x86 machine, an i440FX PC.
    pub fn of_domain(domain: &Element) -> Chipset {
        let t = domain.child("os").and_then(|o| o.child("type"));
        let arch = t.and_then(|t| t.attr("arch"));
        if arch.is_some_and(|a| a != "x86_64" && a != "i686") {
            return Chipset::Other;
        }
        match t.and_then(|t| t.attr("machine")) {
            Some(m) => Chipset::of_machine(&m),
            None => Chipset::I440fx,
        }
    }

    /// Whether the machine has a PCI (or PCI Express) root bus.
    pub fn has_pci(self) -> bool {
        self != Chipset::Other
    }

    /// QEMU's id of the root bus.
    pub fn root_bus(self) -> &'static str {
        match self {
            Chipset::Q35 => "pcie.0",
            _ => "pci.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_map_to_chipsets() {
        assert_eq!(Chipset::of_machine("pc"), Chipset::I440fx);
        assert_eq!(Chipset::of_machine("pc-i440fx-8.0"), Chipset::I440fx);
        assert_eq!(Chipset::of_machine("pc-1.2"), Chipset::I440fx);
        assert_eq!(Chipset::of_machine("q35"), Chipset::Q35);
        assert_eq!(Chipset::of_machine("pc-q35-4.2"), Chipset::Q35);
        assert_eq!(Chipset::of_machine("isapc"), Chipset::Other);
        assert_eq!(Chipset::of_machine("microvm"), Chipset::Other);
    }
}
