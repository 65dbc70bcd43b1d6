//! Memory sizes: `<memory>`, `<currentMemory>`, `<maxMemory>`, memory
//! tuning limits, huge page sizes, NUMA cell sizes and memory devices, all
//! printed in KiB with `unit='KiB'` as libvirt does.

use super::values::parse_u64;
use crate::domain::units;
use crate::error::Result;
use crate::xml::{Document, Element, XPath};

/// Top-level elements holding a size.
const SIZED: &[&str] = &["maxMemory", "memory", "currentMemory"];

/// `<memtune>` limits (printed in KiB; `unlimited` stays as libvirt's
/// maximum value written by the user).
const MEMTUNE: &[&str] = &[
    "hard_limit",
    "soft_limit",
    "min_guarantee",
    "swap_hard_limit",
];

/// Sizes inside a memory device's `<target>` or `<source>`.
const MEMORY_DEVICE_SIZES: &[&str] = &["size", "block", "requested", "current", "pagesize"];

/// Checks that sizes parse and that the domain has a memory size at all.
pub(super) fn validate(doc: &Document, p: &XPath) -> Result<()> {
    let root = &doc.root;
    for name in SIZED {
        if let Some(m) = root.child(name) {
            units::element_kib(m).map_err(|msg| doc.error_at(m, &p.child(root, m), msg))?;
        }
    }
    if let Some(mt) = root.child("memtune") {
        let mp = p.child(root, mt);
        for lim in mt.elements().filter(|e| MEMTUNE.contains(&e.name())) {
            units::element_kib(lim).map_err(|msg| doc.error_at(lim, &mp.child(mt, lim), msg))?;
        }
    }
    Ok(())
}

/// Rewrites an element holding a size as `<x unit='KiB'>N</x>`.
fn to_kib(el: &mut Element) -> Option<u64> {
    let kib = units::element_kib(el).ok()?;
    el.set_text(&kib.to_string());
    el.set_attr("unit", "KiB");
    Some(kib)
}

/// Rewrites a size held in `attr` (with `unit`) as KiB.
fn attr_to_kib(el: &mut Element, attr: &str) -> Option<u64> {
    let value = el.attr(attr)?.into_owned();
    let unit = el.attr("unit").map(|u| u.into_owned());
    let bytes = units::parse_scaled(&value, unit.as_deref(), 1024).ok()?;
    let kib = bytes.div_ceil(1024);
    el.set_attr(attr, &kib.to_string());
    el.set_attr("unit", "KiB");
    Some(kib)
}

/// Normalises every size and fills `<currentMemory>` (and `<memory>` from
/// NUMA cells when it is missing), clamping the balloon to the total.
pub(super) fn normalise(root: &mut Element) {
    for name in ["maxMemory", "currentMemory"] {
        if let Some(m) = root.child_mut(name) {
            to_kib(m);
        }
    }
    if let Some(mt) = root.child_mut("memtune") {
        for lim in mt.elements_mut().filter(|e| MEMTUNE.contains(&e.name())) {
            to_kib(lim);
        }
    }
    if let Some(mb) = root.child_mut("memoryBacking")
        && let Some(hp) = mb.child_mut("hugepages")
    {
        for page in hp.elements_mut().filter(|e| e.name() == "page") {
            attr_to_kib(page, "size");
        }
    }
    let mut numa_kib = 0u64;
    if let Some(numa) = root.child_mut("cpu").and_then(|c| c.child_mut("numa")) {
        for cell in numa.elements_mut().filter(|e| e.name() == "cell") {
            numa_kib = numa_kib.saturating_add(attr_to_kib(cell, "memory").unwrap_or(0));
        }
    }
    let mut hotplug_kib = 0u64;
    if let Some(devices) = root.child_mut("devices") {
        for mem in devices.elements_mut().filter(|e| e.name() == "memory") {
            for part in ["target", "source"] {
                if let Some(t) = mem.child_mut(part) {
                    for s in t
                        .elements_mut()
                        .filter(|e| MEMORY_DEVICE_SIZES.contains(&e.name()))
                    {
                        let kib = to_kib(s);
                        if part == "target" && s.name() == "size" {
                            hotplug_kib = hotplug_kib.saturating_add(kib.unwrap_or(0));
                        }
                    }
                    if let Some(label) = t.child_mut("label")
                        && let Some(size) = label.child_mut("size")
                    {
                        to_kib(size);
                    }
                }
            }
        }
    }

    let memory = match root.child_mut("memory") {
        Some(m) => to_kib(m),
        None if numa_kib > 0 => {
            let total = numa_kib.saturating_add(hotplug_kib);
            root.push(
                Element::new("memory")
                    .with_attr("unit", "KiB")
                    .with_text(&total.to_string()),
            );
            Some(total)
        }
        None => None,
    };
    let Some(total) = memory else { return };
    // The balloon starts at the total unless set lower (0 means unset).
    match root.child_mut("currentMemory") {
        Some(cur) => {
            let v = parse_u64(&cur.text()).unwrap_or(0);
            if v == 0 || v > total {
                cur.set_text(&total.to_string());
            }
        }
        None => root.push(
            Element::new("currentMemory")
                .with_attr("unit", "KiB")
                .with_text(&total.to_string()),
        ),
    }
}

/// Other sizes libvirt prints in a fixed unit: the SMM TSEG in MiB
/// (written without a unit it is MiB) and a qcow2 metadata cache's
/// `<max_size>` in bytes (written without a unit it is bytes), in disks and
/// their backing images.
pub(super) fn normalise_other_sizes(root: &mut Element) {
    if let Some(tseg) = root
        .child_mut("features")
        .and_then(|f| f.child_mut("smm"))
        .and_then(|s| s.child_mut("tseg"))
    {
        let unit = tseg.attr("unit").map(|u| u.into_owned());
        if let Ok(bytes) = units::parse_scaled(&tseg.text(), unit.as_deref(), 1 << 20)
            && bytes % (1 << 20) == 0
        {
            tseg.set_text(&(bytes >> 20).to_string());
            tseg.set_attr("unit", "MiB");
        }
    }
    if let Some(devices) = root.child_mut("devices") {
        for disk in devices.elements_mut().filter(|e| e.name() == "disk") {
            max_size_in_bytes(disk);
        }
    }
}

/// `<driver><metadata_cache><max_size>` of a disk, and `<format>`'s of
/// each backing image below it.
fn max_size_in_bytes(layer: &mut Element) {
    for holder in ["driver", "format"] {
        if let Some(m) = layer
            .child_mut(holder)
            .and_then(|h| h.child_mut("metadata_cache"))
            .and_then(|c| c.child_mut("max_size"))
        {
            let unit = m.attr("unit").map(|u| u.into_owned());
            if let Ok(bytes) = units::parse_scaled(&m.text(), unit.as_deref(), 1) {
                m.set_text(&bytes.to_string());
                m.set_attr("unit", "bytes");
            }
        }
    }
    if let Some(b) = layer.child_mut("backingStore") {
        max_size_in_bytes(b);
    }
}
