//! `<features>`: the Hyper-V enlightenment mode libvirt always states.

use crate::xml::Element;

pub(super) fn normalise(root: &mut Element) {
    let Some(features) = root.child_mut("features") else {
        return;
    };
    if let Some(hv) = features.child_mut("hyperv")
        && !hv.has_attr("mode")
    {
        hv.set_attr("mode", "custom");
    }
}
