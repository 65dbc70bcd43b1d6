//! `<controller>`: libvirt's controller list order, index assignment and
//! the controllers it adds for devices that need one (disk buses, virtio
//! serial ports, smartcards, SCSI host devices).

use crate::domain::canon::values::{attr, parse_u64};
use crate::xml::{Element, Node};

/// Disk buses served by a controller of the same name.
const DISK_BUS_CONTROLLERS: &[&str] = &["scsi", "fdc", "ide", "sata"];

/// USB2 controller models that share their companion's index.
const USB2_MODELS: &[&str] = &["ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3"];

fn is_controller(n: &Node) -> bool {
    matches!(n, Node::Element(e) if e.name() == "controller")
}

fn index_of(c: &Element) -> Option<u64> {
    c.attr("index").and_then(|i| parse_u64(&i))
}

/// Where libvirt's parser inserts `new` in its controller list (positions
/// count controllers only): after the last one of its type when it has no
/// index, else before the first of its type with a higher index (or the
/// same index, when that one is a USB companion and `new` its master),
/// else after the last of its type; at the end when it is the first of its
/// type.
fn insert_position(list: &[Element], new: &Element) -> usize {
    let ty = new.attr("type");
    let idx = index_of(new);
    // A USB2 companion (UHCI next to an EHCI master) sorts after its master.
    let is_companion = |c: &Element| {
        c.child("master").is_some() || c.attr("model").is_some_and(|m| m.starts_with("ich9-uhci"))
    };
    let mut at = None;
    for (i, cur) in list.iter().enumerate().rev() {
        if cur.attr("type") != ty {
            continue;
        }
        let Some(idx) = idx else {
            at = Some(i + 1);
            break;
        };
        let cur_idx = index_of(cur);
        if cur_idx.is_some_and(|c| c > idx)
            || (!is_companion(new) && is_companion(cur) && cur_idx == Some(idx))
        {
            at = Some(i);
        } else if at.is_none() {
            at = Some(i + 1);
        }
    }
    at.unwrap_or(list.len())
}

/// Rebuilds the controller list in libvirt's order (the parser sorts what
/// the user wrote; implicit controllers are appended), putting the
/// controllers back where controllers were in `devices`.
fn reorder(devices: &mut Element, extra: Vec<Element>) {
    let mut list: Vec<Element> = Vec::new();
    let mut first_slot = None;
    let mut rest = Vec::new();
    for n in std::mem::take(&mut devices.children) {
        match n {
            Node::Element(e) if e.name() == "controller" => {
                first_slot.get_or_insert(rest.len());
                let at = insert_position(&list, &e);
                list.insert(at, e);
            }
            other => rest.push(other),
        }
    }
    list.extend(extra);
    devices.children = rest;
    let at = first_slot.unwrap_or(devices.children.len());
    devices
        .children
        .splice(at..at, list.into_iter().map(Node::Element));
}

/// Whether a controller of `ty` with index `idx` exists.
fn has_controller(devices: &Element, ty: &str, idx: u64) -> bool {
    devices
        .children_named("controller")
        .any(|c| c.attr("type").as_deref() == Some(ty) && index_of(c) == Some(idx))
}

/// Adds the controllers libvirt adds implicitly, and smartcard addresses.
pub(super) fn add_implicit(devices: &mut Element) {
    let mut wanted: Vec<(String, u64)> = Vec::new();
    for bus in DISK_BUS_CONTROLLERS {
        let max = devices
            .children_named("disk")
            .filter(|d| d.child("target").and_then(|t| t.attr("bus")).as_deref() == Some(*bus))
            .filter_map(|d| d.child("address"))
            .filter(|a| a.attr("type").as_deref() == Some("drive"))
            .filter_map(|a| a.attr("controller").and_then(|c| parse_u64(&c)))
            .max();
        if let Some(max) = max {
            wanted.extend((0..=max).map(|i| (bus.to_string(), i)));
        }
    }
    for dev in devices.elements() {
        let virtio_target =
            dev.child("target").and_then(|t| t.attr("type")).as_deref() == Some("virtio");
        if matches!(dev.name(), "channel" | "console") && virtio_target {
            let idx = dev
                .child("address")
                .filter(|a| a.attr("type").as_deref() == Some("virtio-serial"))
                .and_then(|a| a.attr("controller").and_then(|c| parse_u64(&c)))
                .unwrap_or(0);
            wanted.push(("virtio-serial".into(), idx));
        }
    }
    let scsi_hostdev_max = devices
        .children_named("hostdev")
        .filter(|h| h.attr("type").as_deref() == Some("scsi"))
        .filter_map(|h| h.child("address"))
        .filter(|a| a.attr("type").as_deref() == Some("drive"))
        .filter_map(|a| a.attr("controller").and_then(|c| parse_u64(&c)))
        .max();
    if let Some(max) = scsi_hostdev_max {
        wanted.extend((0..=max).map(|i| ("scsi".to_string(), i)));
    }
    wanted.extend(
        smartcard_addresses(devices)
            .into_iter()
            .map(|i| ("ccid".to_string(), i)),
    );

    let mut extra: Vec<Element> = Vec::new();
    for (ty, idx) in wanted {
        let known = has_controller(devices, &ty, idx)
            || extra.iter().any(|c| {
                c.attr("type").as_deref() == Some(ty.as_str()) && index_of(c) == Some(idx)
            });
        if !known {
            extra.push(
                Element::new("controller")
                    .with_attr("type", &ty)
                    .with_attr("index", &idx.to_string()),
            );
        }
    }
    if devices.children.iter().any(is_controller) || !extra.is_empty() {
        reorder(devices, extra);
    }
}

/// Gives every smartcard without an address the next CCID slot on
/// controller 0; returns the CCID controllers the smartcards use.
fn smartcard_addresses(devices: &mut Element) -> Vec<u64> {
    let mut used = Vec::new();
    let mut max_slot: i64 = -1;
    for s in devices.children_named("smartcard") {
        if let Some(a) = s
            .child("address")
            .filter(|a| a.attr("type").as_deref() == Some("ccid"))
            && a.attr("controller")
                .and_then(|c| parse_u64(&c))
                .unwrap_or(0)
                == 0
            && let Some(slot) = a.attr("slot").and_then(|v| parse_u64(&v))
        {
            max_slot = max_slot.max(slot as i64);
        }
    }
    for s in devices.elements_mut().filter(|e| e.name() == "smartcard") {
        match s.child("address") {
            Some(a) if a.attr("type").as_deref() == Some("ccid") => {
                used.push(
                    a.attr("controller")
                        .and_then(|c| parse_u64(&c))
                        .unwrap_or(0),
                );
            }
            Some(_) => {}
            None => {
                max_slot += 1;
                s.push(
                    Element::new("address")
                        .with_attr("type", "ccid")
                        .with_attr("controller", "0")
                        .with_attr("slot", &max_slot.to_string()),
                );
                used.push(0);
            }
        }
    }
    used
}

/// Gives controllers without an index the lowest unused index of their
/// type; a USB2 companion shares the index of the controller before it.
pub(super) fn assign_indexes(devices: &mut Element) {
    let mut prev: Option<(Option<String>, Option<String>, Option<u64>)> = None;
    let snapshot: Vec<(Option<String>, Option<u64>)> = devices
        .children_named("controller")
        .map(|c| (attr(c, "type"), index_of(c)))
        .collect();
    let mut taken: Vec<(Option<String>, u64)> = snapshot
        .iter()
        .filter_map(|(t, i)| i.map(|i| (t.clone(), i)))
        .collect();
    for c in devices.elements_mut().filter(|e| e.name() == "controller") {
        let ty = attr(c, "type");
        let model = attr(c, "model");
        if index_of(c).is_none() {
            let usb2 = |m: &Option<String>| m.as_deref().is_some_and(|m| USB2_MODELS.contains(&m));
            let idx = match &prev {
                Some((pt, pm, Some(pi))) if *pt == ty && usb2(pm) && usb2(&model) => *pi,
                _ => {
                    let mut i = 0;
                    while taken.iter().any(|(t, n)| *t == ty && *n == i) {
                        i += 1;
                    }
                    i
                }
            };
            c.set_attr("index", &idx.to_string());
            taken.push((ty.clone(), idx));
        }
        prev = Some((ty, model, index_of(c)));
    }
}
