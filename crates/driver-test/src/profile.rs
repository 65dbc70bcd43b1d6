//! What the test driver adds to domain definitions.

use virtkit_core::domain::{DomainDef, DomainProfile};
use virtkit_core::xml::Element;

/// Defaults of libvirt's test driver: i686 guests, a cirrus video card for
/// graphics, and `testnetN` host names for interfaces.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TestProfile;

impl DomainProfile for TestProfile {
    fn name(&self) -> &str {
        "test"
    }

    fn default_arch(&self, _os_type: &str) -> &str {
        "i686"
    }

    fn default_video_model(&self) -> Option<&str> {
        Some("cirrus")
    }

    /// Consoles without a target type are serial consoles, whatever the
    /// guest's OS type.
    fn post_parse(&self, domain: &mut Element) {
        let Some(devices) = domain.child_mut("devices") else {
            return;
        };
        for console in devices.elements_mut().filter(|e| e.name() == "console") {
            if let Some(t) = console.child_mut("target")
                && !t.has_attr("type")
            {
                let mut fresh = Element::new("target").with_attr("type", "serial");
                for a in t.attrs() {
                    fresh.set_attr(a.name(), &a.value());
                }
                *t = fresh;
            }
        }
    }
}

/// Gives every `<interface>` without a `<target dev>` the name `testnetN`,
/// N being the lowest number no interface of the domain uses yet (as
/// libvirt's test driver; kept in the definition).
pub(crate) fn assign_ifnames(def: &mut DomainDef) {
    let Some(devices) = def.root_mut().child_mut("devices") else {
        return;
    };
    let mut used: Vec<String> = devices
        .children_named("interface")
        .filter_map(|i| i.child("target")?.attr("dev").map(|d| d.into_owned()))
        .collect();
    for iface in devices.elements_mut().filter(|e| e.name() == "interface") {
        if iface.child("target").is_some_and(|t| t.has_attr("dev")) {
            continue;
        }
        let name = (0..)
            .map(|n| format!("testnet{n}"))
            .find(|n| !used.contains(n))
            .unwrap_or_default();
        used.push(name.clone());
        match iface.child_mut("target") {
            Some(t) => t.set_attr("dev", &name),
            None => iface.append_element(Element::new("target").with_attr("dev", &name)),
        }
    }
}
