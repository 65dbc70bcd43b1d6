//! The guest IOMMU: Intel's emulated VT-d (`intel-iommu`), right after
//! `-boot`. Its interrupt remapping needs the split irqchip, which the
//! machine options add.

use virtkit_core::Result;
use virtkit_core::xml::Element;

use super::{Gen, Props, attr, child_attr, switch, unsupported};
use crate::profile::address::parse_num;
use crate::profile::machine::Chipset;

/// Intel IOMMU driver settings: (attribute, property, as a boolean; else
/// written `on`/`off`).
const INTEL_OPTIONS: &[(&str, &str, bool)] = &[
    ("intremap", "intremap", false),
    ("caching_mode", "caching-mode", true),
    ("eim", "eim", false),
    ("iotlb", "device-iotlb", true),
];

/// Whether the guest's IOMMU remaps interrupts.
pub(crate) fn remaps_interrupts(domain: &Element) -> bool {
    domain
        .child("devices")
        .and_then(|d| d.child("iommu"))
        .and_then(|i| switch(child_attr(i, "driver", "intremap")))
        == Some(true)
}

pub(crate) fn emit(g: &mut Gen<'_>) -> Result<()> {
    let Some(iommu) = g.devices.child("iommu") else {
        return Ok(());
    };
    let p = g.path(iommu);
    let model = attr(iommu, "model").unwrap_or_default();
    if model != "intel" {
        return Err(unsupported(
            p.attr("model"),
            format!("IOMMU model '{model}'"),
        ));
    }
    if g.chipset != Chipset::Q35 {
        return Err(unsupported(&p, "an Intel IOMMU outside a Q35 machine"));
    }
    let drv = iommu.child("driver");
    let mut o = Props::new()
        .set("driver", "intel-iommu")
        .set("id", "iommu0");
    for (xml, prop, boolean) in INTEL_OPTIONS {
        if let Some(v) = drv.and_then(|d| switch(attr(d, xml))) {
            if *boolean {
                o = o.set(prop, v);
            } else {
                o = o.set(prop, if v { "on" } else { "off" });
            }
        }
    }
    o = o.opt(
        "aw-bits",
        drv.and_then(|d| attr(d, "aw_bits"))
            .and_then(|v| parse_num(&v)),
    );
    g.device(&o);
    Ok(())
}
