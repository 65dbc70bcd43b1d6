//! `<vcpu>`, `<vcpus>`, `<iothreads>` and `<cpu>`: counts, placement,
//! CPU mode/match/fallback defaults, topology and NUMA cells.

use super::values::{BITMAP_LEN, normalise_bitmap_attr, normalise_uint_text, parse_u64};
use crate::xml::{Element, Node};

/// The maximum number of vCPUs (`<vcpu>` text, 1 when missing).
pub(super) fn max_vcpus(root: &Element) -> u32 {
    root.child("vcpu")
        .and_then(|v| parse_u64(&v.text()))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1)
}

/// The IDs of the domain's I/O threads: `<iothreadids>` first, then the
/// smallest unused numbers up to the `<iothreads>` count.
pub(super) fn iothread_ids(root: &Element) -> Vec<u32> {
    let mut ids: Vec<u32> = root
        .child("iothreadids")
        .map(|t| {
            t.children_named("iothread")
                .filter_map(|i| i.attr("id").and_then(|v| parse_u64(&v)))
                .filter_map(|n| u32::try_from(n).ok())
                .collect()
        })
        .unwrap_or_default();
    // Thread IDs beyond a bitmap's range cannot be named anywhere.
    let count = root
        .child("iothreads")
        .and_then(|t| parse_u64(&t.text()))
        .unwrap_or(0)
        .min(u64::from(BITMAP_LEN)) as usize;
    let mut next = 1u32;
    while ids.len() < count {
        if !ids.contains(&next) {
            ids.push(next);
        }
        next += 1;
    }
    ids
}

pub(super) fn normalise(root: &mut Element) {
    normalise_vcpu(root);
    if let Some(t) = root.child_mut("iothreads") {
        normalise_uint_text(t);
    }
    if let Some(vcpus) = root.child_mut("vcpus") {
        sort_by_numeric_attr(vcpus, "vcpu", "id");
    }
    if let Some(cpu) = root.child_mut("cpu") {
        normalise_cpu(cpu);
    }
}

fn normalise_vcpu(root: &mut Element) {
    let vcpu = root.child_or_insert("vcpu");
    if parse_u64(&vcpu.text()).is_none() {
        vcpu.set_text("1");
    }
    normalise_uint_text(vcpu);
    if !vcpu.has_attr("placement") {
        vcpu.set_attr("placement", "static");
    }
    normalise_bitmap_attr(vcpu, "cpuset");
    // `current` is printed only when fewer vCPUs start than the maximum.
    let max = parse_u64(&vcpu.text());
    if let Some(cur) = vcpu.attr("current").and_then(|c| parse_u64(&c)) {
        if Some(cur) == max {
            vcpu.remove_attr("current");
        } else {
            vcpu.set_attr("current", &cur.to_string());
        }
    }
}

fn normalise_cpu(cpu: &mut Element) {
    let has_model = cpu
        .child("model")
        .is_some_and(|m| !m.text().trim().is_empty());
    let mode = cpu.attr("mode").map(|m| m.into_owned());
    let custom = mode.as_deref().is_none_or(|m| m == "custom");
    if has_model && custom {
        if mode.is_none() {
            cpu.set_attr("mode", "custom");
        }
        if !cpu.has_attr("match") {
            cpu.set_attr("match", "exact");
        }
        if let Some(model) = cpu.child_mut("model")
            && !model.has_attr("fallback")
        {
            model.set_attr("fallback", "allow");
        }
    }
    if let Some(topo) = cpu.child_mut("topology")
        && !topo.has_attr("dies")
    {
        topo.set_attr("dies", "1");
    }
    for f in cpu.elements_mut().filter(|e| e.name() == "feature") {
        if !f.has_attr("policy") {
            f.set_attr("policy", "require");
        }
    }
    if let Some(numa) = cpu.child_mut("numa") {
        for (i, cell) in numa
            .elements_mut()
            .filter(|e| e.name() == "cell")
            .enumerate()
        {
            if !cell.has_attr("id") {
                cell.set_attr("id", &i.to_string());
            }
            normalise_bitmap_attr(cell, "cpus");
        }
        sort_by_numeric_attr(numa, "cell", "id");
    }
}

/// Sorts the `child` elements of `parent` by a numeric attribute (libvirt
/// stores them in an array indexed by it), keeping other children in place.
pub(super) fn sort_by_numeric_attr(parent: &mut Element, child: &str, attr: &str) {
    let key = |n: &Node| match n {
        Node::Element(e) if e.name() == child => e.attr(attr).and_then(|v| parse_u64(&v)),
        _ => None,
    };
    let slots: Vec<usize> = parent
        .children
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n, Node::Element(e) if e.name() == child))
        .map(|(i, _)| i)
        .collect();
    let mut items: Vec<Node> = slots.iter().map(|i| parent.children[*i].clone()).collect();
    items.sort_by_key(|n| key(n).unwrap_or(u64::MAX));
    for (slot, item) in slots.into_iter().zip(items) {
        parent.children[slot] = item;
    }
}
