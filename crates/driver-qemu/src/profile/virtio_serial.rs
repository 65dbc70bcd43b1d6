//! Ports on virtio-serial controllers: channels take the lowest free port
//! from 1 on the first controller with room (`<address type='virtio-serial' controller='0' bus='0'
//! port='1'/>`).

use virtkit_core::xml::{Element, Node};

use super::address::{address_of, parse_num};

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// Ports one controller offers (QEMU's default `max_ports`).
const MAX_PORTS: u32 = 31;

fn is_virtio_chardev(dev: &Element, kind: &str) -> bool {
    dev.name() == kind
        && dev.child("target").and_then(|t| attr(t, "type")).as_deref() == Some("virtio")
}

/// Assigns ports to virtio consoles and channels.
pub fn assign(devices: &mut Element) {
    let mut controllers: Vec<u32> = devices
        .children_named("controller")
        .filter(|c| attr(c, "type").as_deref() == Some("virtio-serial"))
        .filter_map(|c| attr(c, "index").and_then(|i| parse_num(&i)))
        .collect();
    controllers.sort_unstable();
    if controllers.is_empty() {
        return;
    }
    let mut used: Vec<(u32, u32)> = Vec::new();
    for dev in devices.elements() {
        if let Some(a) = address_of(dev, "virtio-serial")
            && let Some(port) = attr(a, "port").and_then(|p| parse_num(&p))
        {
            let c = attr(a, "controller")
                .and_then(|c| parse_num(&c))
                .unwrap_or(0);
            used.push((c, port));
        }
    }
    // libvirt gives virtio consoles no address of their own.
    for (kind, allow_zero) in [("channel", false)] {
        for node in devices.children.iter_mut() {
            let Node::Element(dev) = node else { continue };
            if !is_virtio_chardev(dev, kind) {
                continue;
            }
            let given = address_of(dev, "virtio-serial");
            if given.is_some_and(|a| a.has_attr("port"))
                || (dev.child("address").is_some() && given.is_none())
            {
                continue;
            }
            let fixed_controller = given
                .and_then(|a| attr(a, "controller"))
                .and_then(|c| parse_num(&c));
            let first = if allow_zero { 0 } else { 1 };
            let found = controllers
                .iter()
                .filter(|c| fixed_controller.is_none_or(|f| f == **c))
                .find_map(|c| {
                    (first..=MAX_PORTS)
                        .find(|p| !used.contains(&(*c, *p)))
                        .map(|p| (*c, p))
                });
            let Some((c, port)) = found else { continue };
            used.push((c, port));
            dev.remove_children_named("address");
            dev.push(
                Element::new("address")
                    .with_attr("type", "virtio-serial")
                    .with_attr("controller", &c.to_string())
                    .with_attr("bus", "0")
                    .with_attr("port", &port.to_string()),
            );
        }
    }
}
