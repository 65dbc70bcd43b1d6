//! USB port assignment: every USB device without an address gets the first
//! free port of the first USB bus (`<address type='usb' bus='0'
//! port='1'/>`); ports of a hub are `N.M`. libvirt does this when a guest
//! starts, so the command-line builder calls it on its copy of the
//! definition.

use std::collections::BTreeMap;

use virtkit_core::xml::{Element, Node};

use super::address::{address_of, parse_num};

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// Root ports per USB controller model (QEMU's defaults).
const PORTS: &[(&str, u32)] = &[
    ("piix3-uhci", 2),
    ("piix4-uhci", 2),
    ("vt82c686b-uhci", 2),
    ("ich9-uhci1", 2),
    ("ich9-uhci2", 2),
    ("ich9-uhci3", 2),
    ("ehci", 6),
    ("ich9-ehci1", 6),
    ("pci-ohci", 3),
    ("nec-xhci", 4),
    ("qemu-xhci", 4),
];

/// Ports a hub offers.
const HUB_PORTS: u32 = 8;

/// Whether `dev` is a USB device, in libvirt's foreach order group
/// (hubs first, so their ports exist before anything is placed).
fn usb_group(dev: &Element) -> Option<usize> {
    let ty = attr(dev, "type");
    let bus = attr(dev, "bus");
    let target_attr = |n: &str| dev.child("target").and_then(|t| attr(t, n));
    let g = match dev.name() {
        "hub" if ty.as_deref() == Some("usb") => 0,
        "hostdev" if ty.as_deref() == Some("usb") => 1,
        "disk" if target_attr("bus").as_deref() == Some("usb") => 2,
        "controller" if ty.as_deref() == Some("ccid") => 3,
        "input" if bus.as_deref() == Some("usb") => 4,
        "serial" if target_attr("type").as_deref() == Some("usb-serial") => 5,
        "sound" if attr(dev, "model").as_deref() == Some("usb") => 6,
        "redirdev" if bus.as_deref() == Some("usb") => 7,
        _ => return None,
    };
    Some(g)
}

/// The ports used and available on each USB bus.
struct Buses {
    /// bus index -> port paths that exist, in search order.
    ports: BTreeMap<u32, Vec<String>>,
    used: Vec<(u32, String)>,
}

impl Buses {
    fn new(devices: &Element) -> Buses {
        let mut ports: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for c in devices.children_named("controller") {
            if attr(c, "type").as_deref() != Some("usb") {
                continue;
            }
            let model = attr(c, "model").unwrap_or_default();
            if model == "none" {
                continue;
            }
            let idx = attr(c, "index").and_then(|i| parse_num(&i)).unwrap_or(0);
            let n = attr(c, "ports")
                .and_then(|p| parse_num(&p))
                .or_else(|| PORTS.iter().find(|(m, _)| *m == model).map(|(_, n)| *n))
                .unwrap_or(2);
            let list = ports.entry(idx).or_default();
            if (list.len() as u32) < n {
                *list = (1..=n).map(|p| p.to_string()).collect();
            }
        }
        Buses {
            ports,
            used: Vec::new(),
        }
    }

    /// A hub on `bus` at `port` adds ports below it.
    fn add_hub(&mut self, bus: u32, port: &str) {
        if let Some(list) = self.ports.get_mut(&bus) {
            list.extend((1..=HUB_PORTS).map(|p| format!("{port}.{p}")));
        }
    }

    fn take(&mut self) -> Option<(u32, String)> {
        for (bus, list) in &self.ports {
            for p in list {
                if !self.used.iter().any(|(b, u)| b == bus && u == p) {
                    let found = (*bus, p.clone());
                    self.used.push(found.clone());
                    return Some(found);
                }
            }
        }
        None
    }
}

/// Gives every USB device without an address a port.
pub fn assign(devices: &mut Element) {
    let mut buses = Buses::new(devices);
    if buses.ports.is_empty() {
        return;
    }
    // Ports already taken, and hubs already placed.
    for dev in devices.elements() {
        if usb_group(dev).is_none() {
            continue;
        }
        if let Some(a) = address_of(dev, "usb") {
            let bus = attr(a, "bus").and_then(|b| parse_num(&b)).unwrap_or(0);
            if let Some(port) = attr(a, "port") {
                buses.used.push((bus, port.clone()));
                if dev.name() == "hub" {
                    buses.add_hub(bus, &port);
                }
            }
        }
    }
    let mut order: Vec<(usize, usize)> = devices
        .children
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Node::Element(e) if e.child("address").is_none() => usb_group(e).map(|g| (g, i)),
            _ => None,
        })
        .collect();
    order.sort();
    for (_, i) in order {
        let Some((bus, port)) = buses.take() else {
            return;
        };
        if let Some(Node::Element(dev)) = devices.children.get_mut(i) {
            if dev.name() == "hub" {
                buses.add_hub(bus, &port);
            }
            dev.push(
                Element::new("address")
                    .with_attr("type", "usb")
                    .with_attr("bus", &bus.to_string())
                    .with_attr("port", &port),
            );
        }
    }
}
