//! `<video>`: the primary video device comes first and is the one printed
//! with `primary='yes'`; a video without a model gets libvirt's generic
//! `default` type; a domain with graphics but no video gets the driver's
//! default video card, with libvirt's default memory and one head.

use crate::error::Result;
use crate::xml::{Document, Element, Node, XPath};

fn is_primary(v: &Element) -> bool {
    v.child("model").and_then(|m| m.attr("primary")).as_deref() == Some("yes")
}

/// Only one video device may be primary.
pub(super) fn validate(doc: &Document, devices: &Element, dp: &XPath) -> Result<()> {
    let mut seen = false;
    for v in devices.children_named("video") {
        if is_primary(v) {
            if seen {
                let vp = dp.child(devices, v);
                return Err(doc.error_at(v, &vp, "only one primary video device is supported; remove primary='yes' from all but one <video>"));
            }
            seen = true;
        }
    }
    Ok(())
}

/// Video memory libvirt gives a model when none is written, in KiB.
fn default_vram(model: &str) -> Option<u32> {
    match model {
        "vga" | "cirrus" | "vmvga" => Some(16 * 1024),
        "xen" => Some(4 * 1024),
        "qxl" => Some(64 * 1024),
        _ => None,
    }
}

/// A domain with graphics and no video gets one of the driver's default model.
pub(super) fn add_implicit(devices: &mut Element, default_model: Option<&str>) {
    let Some(model) = default_model else { return };
    if devices.child("graphics").is_none() || devices.child("video").is_some() {
        return;
    }
    let mut m = Element::new("model").with_attr("type", model);
    if let Some(vram) = default_vram(model) {
        m.set_attr("vram", &vram.to_string());
    }
    m.set_attr("heads", "1");
    devices.push(Element::new("video").with_child(m));
}

pub(super) fn normalise(devices: &mut Element) {
    let slots: Vec<usize> = devices
        .children
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n, Node::Element(e) if e.name() == "video"))
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = slots.first() else { return };
    // The primary one moves to the front of the videos.
    if let Some(&p) = slots
        .iter()
        .find(|&&i| matches!(&devices.children[i], Node::Element(v) if is_primary(v)))
        && p != first
    {
        let node = devices.children.remove(p);
        devices.children.insert(first, node);
    }
    for (n, i) in slots.iter().enumerate() {
        let Node::Element(v) = &mut devices.children[*i] else {
            continue;
        };
        let model = v.child_or_insert("model");
        if !model.has_attr("type") {
            model.set_attr("type", "default");
        }
        let none = model.attr("type").as_deref() == Some("none");
        if n == 0 && !none {
            model.set_attr("primary", "yes");
        } else {
            model.remove_attr("primary");
        }
    }
}
