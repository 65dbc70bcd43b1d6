//! The controllers a QEMU PC always has (USB, the Q35 SATA controller, the
//! PCI root), their default models, and where libvirt inserts a controller
//! it adds into its list.

use virtkit_core::xml::{Element, Node};

use super::address::parse_num;
use super::machine::Chipset;

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

fn index_of(c: &Element) -> Option<u32> {
    attr(c, "index").and_then(|i| parse_num(&i))
}

/// Inserts `new` into the controller list the way libvirt does: before
/// the first controller of its type with a higher index, else right after
/// the last one of its type, else after all controllers.
pub fn insert_controller(devices: &mut Element, new: Element) {
    let ty = attr(&new, "type");
    let idx = index_of(&new);
    let mut first_greater = None;
    let mut last_same = None;
    let mut last_controller = None;
    for (i, n) in devices.children.iter().enumerate() {
        let Node::Element(c) = n else { continue };
        if c.name() != "controller" {
            continue;
        }
        last_controller = Some(i);
        if attr(c, "type") != ty {
            continue;
        }
        last_same = Some(i);
        if let (Some(ci), Some(ni)) = (index_of(c), idx)
            && ci > ni
            && first_greater.is_none()
        {
            first_greater = Some(i);
        }
    }
    let pos = first_greater
        .or(last_same.map(|i| i + 1))
        .or(last_controller.map(|i| i + 1))
        .unwrap_or(devices.children.len());
    devices.children.insert(pos, Node::Element(new));
}

/// Whether a controller of `ty` with index `idx` exists. Controllers
/// written without an index count with the one libvirt's parser gives
/// them: the lowest free one of their type, in document order.
fn has_controller(devices: &Element, ty: &str, idx: u32) -> bool {
    let of_type: Vec<&Element> = devices
        .children_named("controller")
        .filter(|c| attr(c, "type").as_deref() == Some(ty))
        .collect();
    let mut taken: Vec<u32> = of_type.iter().filter_map(|c| index_of(c)).collect();
    for c in &of_type {
        if index_of(c).is_none() {
            let free = (0..).find(|i| !taken.contains(i)).unwrap_or(0);
            taken.push(free);
        }
    }
    taken.contains(&idx)
}

/// The USB controller model QEMU PCs get when none is named.
fn default_usb_model(chipset: Chipset) -> &'static str {
    match chipset {
        Chipset::Q35 => "qemu-xhci",
        _ => "piix3-uhci",
    }
}

/// Default models of the controllers written (or implicitly added)
/// without one.
pub fn default_models(devices: &mut Element, chipset: Chipset) {
    if chipset == Chipset::Other {
        return;
    }
    for c in devices.elements_mut().filter(|e| e.name() == "controller") {
        if c.has_attr("model") {
            continue;
        }
        match attr(c, "type").as_deref() {
            Some("usb") => c.set_attr("model", default_usb_model(chipset)),
            Some("scsi") => c.set_attr("model", "lsilogic"),
            _ => {}
        }
    }
}

/// The controllers every PC has: USB 0, the Q35 SATA controller and the
/// PCI (Express) root.
pub fn add_defaults(devices: &mut Element, chipset: Chipset) {
    if chipset == Chipset::Other {
        return;
    }
    if !has_controller(devices, "usb", 0) {
        insert_controller(
            devices,
            Element::new("controller")
                .with_attr("type", "usb")
                .with_attr("index", "0")
                .with_attr("model", default_usb_model(chipset)),
        );
    }
    if chipset == Chipset::Q35 && !has_controller(devices, "sata", 0) {
        insert_controller(
            devices,
            Element::new("controller")
                .with_attr("type", "sata")
                .with_attr("index", "0"),
        );
    }
    if !has_controller(devices, "pci", 0) {
        let model = match chipset {
            Chipset::Q35 => "pcie-root",
            _ => "pci-root",
        };
        insert_controller(
            devices,
            Element::new("controller")
                .with_attr("type", "pci")
                .with_attr("index", "0")
                .with_attr("model", model),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(ty: &str, idx: &str) -> Element {
        Element::new("controller")
            .with_attr("type", ty)
            .with_attr("index", idx)
    }

    fn order(devices: &Element) -> Vec<String> {
        devices
            .children_named("controller")
            .map(|c| format!("{}{}", attr(c, "type").unwrap(), attr(c, "index").unwrap()))
            .collect()
    }

    #[test]
    fn controllers_are_inserted_by_type_and_index() {
        let mut d = Element::new("devices")
            .with_child(Element::new("disk"))
            .with_child(ctl("usb", "0"))
            .with_child(ctl("pci", "0"))
            .with_child(ctl("pci", "2"))
            .with_child(Element::new("input"));
        insert_controller(&mut d, ctl("pci", "1"));
        insert_controller(&mut d, ctl("sata", "0"));
        assert_eq!(order(&d), ["usb0", "pci0", "pci1", "pci2", "sata0"]);
        assert_eq!(d.elements().last().unwrap().name(), "input");
    }

    #[test]
    fn pcs_get_usb_and_a_pci_root() {
        let mut d = Element::new("devices");
        add_defaults(&mut d, Chipset::Q35);
        assert_eq!(order(&d), ["usb0", "sata0", "pci0"]);
        let usb = d.child("controller").unwrap();
        assert_eq!(attr(usb, "model").as_deref(), Some("qemu-xhci"));
    }
}
