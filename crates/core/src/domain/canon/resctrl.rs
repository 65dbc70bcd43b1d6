//! Resource control groups: `<cachetune>` and `<memorytune>` in
//! `<cputune>`.
//!
//! libvirt keeps one group per distinct vCPU set: a `<memorytune>` with the
//! same vCPUs as a `<cachetune>` joins its group, any other overlap is an
//! error. vCPU sets are cut to the domain's vCPUs and a tune left without
//! vCPUs is dropped. Within a group, cache allocations print sorted by
//! level, type and cache id (sizes in the largest exact unit), bandwidths
//! by node, and monitors after the allocations. All cachetunes print
//! before all memorytunes, each list in group order.

use std::collections::{BTreeMap, BTreeSet};

use super::cpu::max_vcpus;
use super::values::{format_bitmap, parse_bitmap, parse_u64};
use crate::domain::units;
use crate::error::Result;
use crate::xml::{Document, Element, Node, XPath};

/// Cache types in libvirt's enum order (the print order).
const CACHE_TYPES: &[&str] = &["both", "code", "data"];

/// Units for printing a cache size: the largest that divides it.
const PRETTY_UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// A tune's vCPUs, cut to the domain's vCPUs.
fn tune_vcpus(el: &Element, max: u32) -> Option<BTreeSet<u32>> {
    let set = parse_bitmap(&el.attr("vcpus")?)?;
    Some(set.into_iter().filter(|v| *v < max).collect())
}

/// The checks libvirt makes while building the groups.
pub(super) fn validate(doc: &Document, p: &XPath) -> Result<()> {
    let root = &doc.root;
    let Some(tune) = root.child("cputune") else {
        return Ok(());
    };
    let tp = p.child(root, tune);
    let max = max_vcpus(root);
    // Groups: vCPU set and whether it already has a memorytune.
    let mut groups: Vec<(BTreeSet<u32>, bool)> = Vec::new();
    for kind in ["cachetune", "memorytune"] {
        for el in tune.children_named(kind) {
            let ep = tp.child(tune, el);
            match el.attr("vcpus") {
                None => {
                    return Err(doc.error_at(
                        el,
                        &ep,
                        format!("missing 'vcpus' attribute in <{kind}>"),
                    ));
                }
                Some(v) if parse_bitmap(&v).is_none() => {
                    return Err(doc.error_at_attr(
                        el,
                        &ep,
                        "vcpus",
                        format!("invalid vCPU list '{v}' (use e.g. '0-3,6')"),
                    ));
                }
                Some(_) => {}
            }
            // vCPUs beyond the domain's are ignored; a tune left empty is dropped.
            let Some(vcpus) = tune_vcpus(el, max).filter(|s| !s.is_empty()) else {
                continue;
            };
            let mut matched = None;
            for (i, (g, _)) in groups.iter().enumerate() {
                if *g == vcpus {
                    matched = Some(i);
                } else if !g.is_disjoint(&vcpus) {
                    return Err(doc.error_at_attr(
                        el,
                        &ep,
                        "vcpus",
                        format!(
                            "vCPUs {} of this <{kind}> overlap another tune's vCPUs {}; tunes must use identical or disjoint vCPU sets",
                            format_bitmap(&vcpus),
                            format_bitmap(g)
                        ),
                    ));
                }
            }
            match (kind, matched) {
                ("cachetune", Some(_)) => {
                    return Err(doc.error_at_attr(
                        el,
                        &ep,
                        "vcpus",
                        "another <cachetune> already uses these vCPUs",
                    ));
                }
                ("memorytune", Some(i)) if groups[i].1 => {
                    return Err(doc.error_at_attr(
                        el,
                        &ep,
                        "vcpus",
                        "another <memorytune> already uses these vCPUs",
                    ));
                }
                ("memorytune", Some(i)) => groups[i].1 = true,
                _ => groups.push((vcpus.clone(), kind == "memorytune")),
            }
            check_allocations(doc, el, &ep)?;
            check_monitors(doc, el, &ep, &vcpus)?;
        }
    }
    Ok(())
}

/// Cache allocations may not collide (same cache id and level with the
/// same type, or `both` next to `code`/`data`); bandwidths are one per node.
fn check_allocations(doc: &Document, el: &Element, ep: &XPath) -> Result<()> {
    let mut caches: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    let mut nodes = BTreeSet::new();
    for c in el.elements() {
        let cp = ep.child(el, c);
        match c.name() {
            "cache" => {
                let num = |a: &str| {
                    c.attr(a).and_then(|v| parse_u64(&v)).ok_or_else(|| {
                        doc.error_at_attr(
                            c,
                            &cp,
                            a,
                            format!("<cache> needs a numeric '{a}' attribute"),
                        )
                    })
                };
                let (id, level) = (num("id")?, num("level")?);
                let ty = c.attr("type").map(|t| t.into_owned()).unwrap_or_default();
                if !CACHE_TYPES.contains(&ty.as_str()) {
                    return Err(doc.error_at_attr(
                        c,
                        &cp,
                        "type",
                        format!("unknown cache type '{ty}' (use both, code or data)"),
                    ));
                }
                let size = c.attr("size").unwrap_or_default().into_owned();
                let unit = c.attr("unit").map(|u| u.into_owned());
                units::parse_scaled(&size, unit.as_deref(), 1024).map_err(|m| {
                    doc.error_at_attr(c, &cp, "size", format!("invalid cache size: {m}"))
                })?;
                let types = caches.entry((level, id)).or_default();
                let collides = types.contains(&ty)
                    || (ty == "both" && !types.is_empty())
                    || (ty != "both" && types.contains("both"));
                if collides {
                    return Err(doc.error_at(
                        c,
                        &cp,
                        format!("cache allocation of type '{ty}' for cache id {id} level {level} collides with an earlier one in the same tune"),
                    ));
                }
                types.insert(ty);
            }
            "node" => {
                let id = c.attr("id").and_then(|v| parse_u64(&v)).ok_or_else(|| {
                    doc.error_at_attr(c, &cp, "id", "<node> needs a numeric 'id' attribute")
                })?;
                if !nodes.insert(id) {
                    return Err(doc.error_at_attr(
                        c,
                        &cp,
                        "id",
                        format!("memory bandwidth for node {id} is already defined in this tune"),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Monitors watch a subset of their tune's vCPUs, and may overlap another
/// monitor only where one of them covers the whole allocated group.
fn check_monitors(doc: &Document, el: &Element, ep: &XPath, group: &BTreeSet<u32>) -> Result<()> {
    let has_alloc = el.elements().any(|c| matches!(c.name(), "cache" | "node"));
    let mut seen: Vec<BTreeSet<u32>> = Vec::new();
    for m in el.children_named("monitor") {
        let mp = ep.child(el, m);
        let v = m.attr("vcpus").unwrap_or_default().into_owned();
        let set = parse_bitmap(&v).filter(|s| !s.is_empty()).ok_or_else(|| {
            doc.error_at_attr(m, &mp, "vcpus", format!("invalid monitor vCPU list '{v}'"))
        })?;
        if !set.is_subset(group) {
            return Err(doc.error_at_attr(
                m,
                &mp,
                "vcpus",
                format!(
                    "monitor vCPUs {} are not all in the tune's vCPUs {}",
                    format_bitmap(&set),
                    format_bitmap(group)
                ),
            ));
        }
        for other in &seen {
            let whole = has_alloc && (set == *group || other == group);
            if (*other == set || !other.is_disjoint(&set)) && !whole {
                return Err(doc.error_at_attr(
                    m,
                    &mp,
                    "vcpus",
                    format!(
                        "monitor vCPUs {} overlap another monitor's",
                        format_bitmap(&set)
                    ),
                ));
            }
        }
        seen.push(set);
    }
    Ok(())
}

pub(super) fn normalise(root: &mut Element) {
    let max = max_vcpus(root);
    let Some(tune) = root.child_mut("cputune") else {
        return;
    };
    // Group order: cachetunes in document order, then memorytunes that
    // start a group of their own.
    let mut groups: Vec<BTreeSet<u32>> = Vec::new();
    let mut group_of = |set: &BTreeSet<u32>| match groups.iter().position(|g| g == set) {
        Some(i) => i,
        None => {
            groups.push(set.clone());
            groups.len() - 1
        }
    };
    let mut cachetunes = Vec::new();
    let mut memorytunes = Vec::new();
    let mut slot = None;
    let mut kept = Vec::new();
    let mut children = std::mem::take(&mut tune.children);
    // Cachetunes first, as libvirt parses them first.
    children.sort_by_key(|n| !matches!(n, Node::Element(e) if e.name() == "cachetune"));
    for node in children {
        let (kind, mut el) = match node {
            Node::Element(e) if matches!(e.name(), "cachetune" | "memorytune") => {
                (e.name().to_string(), e)
            }
            other => {
                kept.push(other);
                continue;
            }
        };
        slot.get_or_insert(kept.len());
        let Some(set) = tune_vcpus(&el, max) else {
            kept.push(Node::Element(el));
            continue;
        };
        if set.is_empty() {
            continue;
        }
        el.set_attr("vcpus", &format_bitmap(&set));
        tidy_tune(&mut el);
        if !el.has_elements() {
            continue;
        }
        let g = group_of(&set);
        if kind == "cachetune" {
            cachetunes.push((g, el));
        } else {
            memorytunes.push((g, el));
        }
    }
    cachetunes.sort_by_key(|(g, _)| *g);
    memorytunes.sort_by_key(|(g, _)| *g);
    tune.children = kept;
    if let Some(at) = slot {
        let tunes: Vec<Node> = cachetunes
            .into_iter()
            .chain(memorytunes)
            .map(|(_, e)| Node::Element(e))
            .collect();
        let at = at.min(tune.children.len());
        tune.children.splice(at..at, tunes);
    }
}

/// Sorts a tune's allocations as libvirt stores them and prints cache sizes
/// in the largest unit that divides them.
fn tidy_tune(el: &mut Element) {
    for c in el.elements_mut().filter(|c| c.name() == "cache") {
        let size = c.attr("size").unwrap_or_default().into_owned();
        let unit = c.attr("unit").map(|u| u.into_owned());
        if let Ok(bytes) = units::parse_scaled(&size, unit.as_deref(), 1024) {
            let (value, unit) = pretty_size(bytes);
            c.set_attr("size", &value.to_string());
            c.set_attr("unit", unit);
        }
    }
    let key = |n: &Node| -> (u8, u64, usize, u64) {
        let Node::Element(e) = n else {
            return (2, 0, 0, 0);
        };
        let num = |a: &str| e.attr(a).and_then(|v| parse_u64(&v)).unwrap_or(0);
        match e.name() {
            "cache" => {
                let ty = e.attr("type").unwrap_or_default();
                let t = CACHE_TYPES.iter().position(|c| *c == ty).unwrap_or(0);
                (0, num("level"), t, num("id"))
            }
            "node" => (0, 0, 0, num("id")),
            _ => (1, 0, 0, 0),
        }
    };
    // Only allocations move; monitors and anything else keep their order.
    let slots: Vec<usize> = el
        .children
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n, Node::Element(e) if matches!(e.name(), "cache" | "node")))
        .map(|(i, _)| i)
        .collect();
    let mut allocs: Vec<Node> = slots.iter().map(|i| el.children[*i].clone()).collect();
    allocs.sort_by_key(key);
    for (i, n) in slots.into_iter().zip(allocs) {
        el.children[i] = n;
    }
}

/// libvirt's `virFormatIntPretty`: bytes when not a multiple of 1 KiB,
/// else the largest binary unit that divides the value.
fn pretty_size(bytes: u64) -> (u64, &'static str) {
    if bytes == 0 || !bytes.is_multiple_of(1024) {
        return (bytes, "B");
    }
    let mut v = bytes / 1024;
    let mut unit = PRETTY_UNITS[0];
    for u in &PRETTY_UNITS[1..] {
        if v == 0 || !v.is_multiple_of(1024) {
            break;
        }
        v /= 1024;
        unit = u;
    }
    (v, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_use_the_largest_exact_unit() {
        assert_eq!(pretty_size(6 << 20), (6, "MiB"));
        assert_eq!(pretty_size(7680 << 10), (7680, "KiB"));
        assert_eq!(pretty_size(100), (100, "B"));
    }
}
