//! The LXC driver's defaults in canonical domain XML: what libvirt's LXC
//! post-parse callbacks fill in (the emulator, console target type) and
//! the filesystem details its formatter always prints.

use virtkit_core::domain::{DomainProfile, units};
use virtkit_core::xml::Element;

/// The `<emulator>` libvirt's LXC driver reports. virtkit's supervisor is
/// built into the driver, so the element is informational only; the value
/// is libvirt's, so definitions move between the two unchanged.
pub const LXC_EMULATOR: &str = "/usr/libexec/libvirt_lxc";

/// libvirt's LXC post-parse defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct LxcProfile;

impl DomainProfile for LxcProfile {
    fn name(&self) -> &str {
        "lxc"
    }

    fn post_parse(&self, domain: &mut Element) {
        let devices = domain.child_or_insert("devices");
        if devices.child("emulator").is_none() {
            devices.insert_element(0, Element::new("emulator").with_text(LXC_EMULATOR));
        }
        for dev in devices.elements_mut() {
            match dev.name() {
                "console" => console_target(dev),
                "filesystem" => filesystem(dev),
                _ => {}
            }
        }
    }
}

/// Consoles of a container are LXC consoles.
fn console_target(dev: &mut Element) {
    match dev.child_mut("target") {
        Some(t) if !t.has_attr("type") => t.set_attr("type", "lxc"),
        Some(_) => {}
        None => dev.push(Element::new("target").with_attr("type", "lxc")),
    }
}

/// libvirt prints every filesystem's access mode, and a RAM filesystem's
/// size in KiB.
fn filesystem(dev: &mut Element) {
    if !dev.has_attr("accessmode") {
        dev.set_attr("accessmode", "passthrough");
    }
    if dev.attr("type").as_deref() != Some("ram") {
        return;
    }
    let Some(src) = dev.child_mut("source") else {
        return;
    };
    let Some(usage) = src.attr("usage").map(|u| u.into_owned()) else {
        return;
    };
    let unit = src.attr("units").map(|u| u.into_owned());
    if let Ok(bytes) = units::parse_scaled(&usage, unit.as_deref(), 1024) {
        src.set_attr("usage", &(bytes / 1024).to_string());
        src.set_attr("units", "KiB");
    }
}
