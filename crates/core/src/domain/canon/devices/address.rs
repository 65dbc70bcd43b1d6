//! Device addresses (`<address type=..>`) printed the way libvirt does:
//! every part of a PCI address in hex with fixed widths, drive addresses
//! with all four numbers, and so on per address type.

use crate::domain::canon::values::parse_u64_auto;
use crate::xml::Element;

/// How one address part is printed.
#[derive(Clone, Copy)]
enum Fmt {
    /// Decimal.
    Dec,
    /// `0x` and at least this many hex digits.
    Hex(usize),
}

/// One address part: name, format, value printed when it is missing
/// (`None`: omitted when missing).
type Part = (&'static str, Fmt, Option<u64>);

/// Address types and their parts, from libvirt's formatter.
const LAYOUTS: &[(&str, &[Part])] = &[
    (
        "pci",
        &[
            ("domain", Fmt::Hex(4), Some(0)),
            ("bus", Fmt::Hex(2), Some(0)),
            ("slot", Fmt::Hex(2), Some(0)),
            ("function", Fmt::Hex(1), Some(0)),
        ],
    ),
    (
        "drive",
        &[
            ("controller", Fmt::Dec, Some(0)),
            ("bus", Fmt::Dec, Some(0)),
            ("target", Fmt::Dec, Some(0)),
            ("unit", Fmt::Dec, Some(0)),
        ],
    ),
    (
        "virtio-serial",
        &[
            ("controller", Fmt::Dec, Some(0)),
            ("bus", Fmt::Dec, Some(0)),
            ("port", Fmt::Dec, None),
        ],
    ),
    (
        "ccid",
        &[
            ("controller", Fmt::Dec, Some(0)),
            ("slot", Fmt::Dec, Some(0)),
        ],
    ),
    (
        "usb",
        &[("bus", Fmt::Dec, Some(0)), ("port", Fmt::Dec, None)],
    ),
    ("spapr-vio", &[("reg", Fmt::Hex(8), None)]),
    (
        "ccw",
        &[
            ("cssid", Fmt::Hex(1), None),
            ("ssid", Fmt::Hex(1), None),
            ("devno", Fmt::Hex(4), None),
        ],
    ),
    (
        "isa",
        &[("iobase", Fmt::Hex(1), None), ("irq", Fmt::Hex(1), None)],
    ),
    (
        "dimm",
        &[("slot", Fmt::Dec, Some(0)), ("base", Fmt::Hex(1), None)],
    ),
];

/// Normalises one `<address>` element.
pub(super) fn normalise(addr: &mut Element) {
    let Some(ty) = addr.attr("type").map(|t| t.into_owned()) else {
        return;
    };
    let Some((_, parts)) = LAYOUTS.iter().find(|(t, _)| *t == ty) else {
        return;
    };
    for (name, fmt, default) in parts.iter() {
        let value = match addr.attr(name) {
            Some(v) => match parse_u64_auto(&v) {
                Some(n) => Some(n),
                None => continue, // not a number: keep as written
            },
            None => *default,
        };
        if let Some(n) = value {
            let text = match fmt {
                Fmt::Dec => n.to_string(),
                Fmt::Hex(w) => format!("0x{n:0w$x}", w = *w),
            };
            addr.set_attr(name, &text);
        }
    }
}

/// Normalises the addresses of a device and of elements nested in it
/// (a hostdev's `<source><address>`, a disk's NVMe source...).
pub(super) fn normalise_all(dev: &mut Element) {
    for child in dev.elements_mut() {
        if child.name() == "address" {
            normalise(child);
        } else {
            normalise_all(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(attrs: &[(&str, &str)]) -> String {
        let mut e = Element::new("address");
        for (k, v) in attrs {
            e.set_attr(k, v);
        }
        normalise(&mut e);
        e.attrs()
            .iter()
            .map(|a| format!("{}={}", a.name(), a.value()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn pci_addresses_are_printed_in_fixed_width_hex() {
        assert_eq!(
            addr(&[("type", "pci"), ("slot", "3")]),
            "type=pci slot=0x03 domain=0x0000 bus=0x00 function=0x0"
        );
        assert_eq!(
            addr(&[("type", "pci"), ("bus", "0x1"), ("slot", "0x1f")]),
            "type=pci bus=0x01 slot=0x1f domain=0x0000 function=0x0"
        );
    }

    #[test]
    fn drive_addresses_print_all_four_numbers() {
        assert_eq!(
            addr(&[("type", "drive"), ("controller", "0"), ("unit", "1")]),
            "type=drive controller=0 unit=1 bus=0 target=0"
        );
    }
}
