//! What libvirt's QEMU driver adds to a definition after parsing it, for
//! x86 PCs: the default CPU model and device settings, the controllers and
//! devices every PC has, an audio backend, and the addresses devices get
//! on PCI and virtio-serial buses. libvirt persists these, so they show in
//! `dumpxml` and the command line is built from them. USB ports are
//! handed out when the guest starts ([`usb::assign`]), as libvirt does for
//! existing definitions.
//!
//! The profile assumes a current QEMU (the capabilities of a real binary:
//! `qemu-xhci`, `piix3-usb-uhci`, `lsi`, `cirrus-vga` are all present).

pub mod address;
mod controllers;
mod defaults;
pub mod machine;
mod pci;
pub mod usb;
mod virtio_serial;

use virtkit_core::domain::DomainProfile;
use virtkit_core::xml::Element;

use machine::Chipset;

/// libvirt's QEMU defaults.
#[derive(Debug, Default, Clone, Copy)]
pub struct QemuProfile;

impl DomainProfile for QemuProfile {
    fn name(&self) -> &str {
        "qemu"
    }

    fn default_video_model(&self) -> Option<&str> {
        Some("cirrus")
    }

    fn add_default_devices(&self, domain: &mut Element) {
        if !is_hvm(domain) {
            return;
        }
        let chipset = Chipset::of_domain(domain);
        controllers::add_defaults(domain.child_or_insert("devices"), chipset);
    }

    fn post_parse(&self, domain: &mut Element) {
        if !is_hvm(domain) {
            return;
        }
        enrolled_keys_imply_secure_boot(domain);
        let chipset = Chipset::of_domain(domain);
        defaults::cpu(domain, chipset);
        {
            let devices = domain.child_or_insert("devices");
            defaults::devices(devices, chipset);
            controllers::default_models(devices, chipset);
            defaults::implicit_devices(devices, chipset);
            defaults::audio(devices);
            virtio_serial::assign(devices);
        }
        pci::assign(domain, chipset);
    }
}

/// Whether the domain is a full-virtualisation guest (the only kind the
/// QEMU driver runs).
fn is_hvm(domain: &Element) -> bool {
    domain
        .child("os")
        .and_then(|o| o.child("type"))
        .is_some_and(|t| t.text().trim() == "hvm")
}

/// Enrolled keys only make sense with secure boot: asking for them asks
/// for secure boot too (as libvirt's QEMU driver records it).
fn enrolled_keys_imply_secure_boot(domain: &mut Element) {
    let Some(fw) = domain.child_mut("os").and_then(|o| o.child_mut("firmware")) else {
        return;
    };
    let enabled = |name: &str| {
        fw.children_named("feature")
            .find(|f| f.attr("name").as_deref() == Some(name))
            .map(|f| f.attr("enabled").as_deref() == Some("yes"))
    };
    if enabled("enrolled-keys") == Some(true) && enabled("secure-boot").is_none() {
        let mut f = Element::new("feature");
        f.set_attr("enabled", "yes");
        f.set_attr("name", "secure-boot");
        fw.append_element(f);
    }
}

#[cfg(test)]
mod tests {
    use virtkit_core::domain::DomainDef;
    use virtkit_core::xml::Element;

    use super::QemuProfile;
    use super::address::PciAddr;

    fn normalised(machine: &str, devices: &str) -> Element {
        let xml = format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>\
             <os><type arch='x86_64' machine='{machine}'>hvm</type></os>\
             <devices>{devices}</devices></domain>"
        );
        DomainDef::parse(&xml).unwrap().normalised(&QemuProfile)
    }

    /// (element name, bus, slot, function) of every device with a PCI address.
    fn layout(domain: &Element) -> Vec<(String, u32, u32, u32)> {
        domain
            .child("devices")
            .unwrap()
            .elements()
            .filter_map(|d| {
                PciAddr::of(d).map(|a| (d.name().to_string(), a.bus, a.slot, a.function))
            })
            .collect()
    }

    #[test]
    fn i440fx_devices_fill_slots_after_the_chipset_and_video() {
        let d = normalised(
            "pc",
            "<interface type='user'><model type='virtio'/></interface>\
             <disk type='file'><source file='/a'/><target dev='vda' bus='virtio'/></disk>\
             <graphics type='vnc'/>",
        );
        let l = layout(&d);
        // USB on the PIIX3, video on slot 2, then NIC, disk, balloon.
        assert!(l.contains(&("controller".into(), 0, 1, 2)), "{l:?}");
        assert!(l.contains(&("video".into(), 0, 2, 0)), "{l:?}");
        assert!(l.contains(&("interface".into(), 0, 3, 0)), "{l:?}");
        assert!(l.contains(&("disk".into(), 0, 4, 0)), "{l:?}");
        assert!(l.contains(&("memballoon".into(), 0, 5, 0)), "{l:?}");
    }

    #[test]
    fn q35_devices_get_root_ports_and_one_spare() {
        let d = normalised(
            "q35",
            "<interface type='user'><model type='virtio'/></interface>",
        );
        let ports: Vec<PciAddr> = d
            .child("devices")
            .unwrap()
            .children_named("controller")
            .filter(|c| c.attr("model").as_deref() == Some("pcie-root-port"))
            .filter_map(PciAddr::of)
            .collect();
        // NIC, USB controller, balloon, plus a spare for hotplug, sharing
        // slot 1 of the root complex function by function.
        assert_eq!(ports.len(), 4);
        assert!(ports.iter().all(|a| a.bus == 0 && a.slot == 1));
        let l = layout(&d);
        assert!(
            l.contains(&("controller".into(), 0, 0x1f, 2)),
            "SATA: {l:?}"
        );
        assert!(l.contains(&("interface".into(), 1, 0, 0)), "{l:?}");
    }
}
