//! Guest NUMA: one memory backend per cell (module `membackend`, bound to
//! host nodes as `<numatune>` says), the cell itself (`-numa node`) and the
//! distances between cells (`-numa dist`).

use virtkit_core::Result;
use virtkit_core::domain::units;
use virtkit_core::xml::{Element, XPath};

use super::{Gen, attr, invalid, unsupported};
use crate::profile::address::parse_num;

/// A guest NUMA cell.
pub(crate) struct Cell {
    pub id: u32,
    pub cpus: Vec<u32>,
    /// Size in MiB (libvirt rounds each cell up to whole MiB).
    pub mib: u64,
    /// `memAccess` (`Some(true)`: shared).
    pub mem_access: Option<bool>,
    /// `discard`.
    pub discard: Option<bool>,
}

/// Parses a libvirt bitmap (`0-3,5,^2`) into its members, ascending.
pub(crate) fn parse_bitmap(s: &str) -> Option<Vec<u32>> {
    let mut set = std::collections::BTreeSet::new();
    let mut exclude = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (neg, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi - lo > 65_536 {
            return None;
        }
        if neg {
            exclude.extend(lo..=hi);
        } else {
            set.extend(lo..=hi);
        }
    }
    for e in exclude {
        set.remove(&e);
    }
    Some(set.into_iter().collect())
}

/// Ranges of consecutive members: `[0,1,2,5]` -> `["0-2", "5"]`.
fn ranges(v: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out
}

/// `<cell>` attributes and children this builder expresses.
const CELL_ATTRS: &[&str] = &["id", "cpus", "memory", "unit", "memAccess", "discard"];

/// The guest's NUMA cells, in order.
pub(crate) fn cells(domain: &Element, p: &XPath) -> Result<Vec<Cell>> {
    let Some(numa) = domain.child("cpu").and_then(|c| c.child("numa")) else {
        return Ok(Vec::new());
    };
    let np = p.named("cpu").named("numa");
    let mut out = Vec::new();
    for (i, c) in numa.children_named("cell").enumerate() {
        let cp = np.named("cell");
        if let Some(a) = c.attrs().iter().find(|a| !CELL_ATTRS.contains(&a.name())) {
            return Err(unsupported(
                cp.attr(a.name()),
                format!("NUMA cell setting '{}'", a.name()),
            ));
        }
        if let Some(other) = c.elements().find(|e| e.name() != "distances") {
            return Err(unsupported(
                cp.named(other.name()),
                format!("NUMA cell <{}>", other.name()),
            ));
        }
        let id = attr(c, "id")
            .and_then(|v| parse_num(&v))
            .unwrap_or(i as u32);
        let cpus = match attr(c, "cpus") {
            Some(s) => parse_bitmap(&s)
                .ok_or_else(|| invalid(cp.attr("cpus"), format!("bad CPU list '{s}'")))?,
            None => Vec::new(),
        };
        let kib = units::element_kib(&memory_of(c)).map_err(|e| invalid(cp.attr("memory"), e))?;
        let (mem_access, discard) = super::membackend::cell_settings(c, &cp)?;
        out.push(Cell {
            id,
            cpus,
            mib: kib.div_ceil(1024),
            mem_access,
            discard,
        });
    }
    if numa.elements().any(|e| e.name() != "cell") {
        return Err(unsupported(
            &np,
            "NUMA settings other than cells (interconnects)",
        ));
    }
    Ok(out)
}

/// A cell's size as an element `units` can read.
fn memory_of(c: &Element) -> Element {
    let mut m = Element::new("memory").with_text(&attr(c, "memory").unwrap_or_default());
    if let Some(u) = attr(c, "unit") {
        m.set_attr("unit", &u);
    }
    m
}

/// libvirt's numatune modes and QEMU's memory policies (`None`: the
/// binding is left to cgroups).
const POLICIES: &[(&str, Option<&str>)] = &[
    ("strict", Some("bind")),
    ("preferred", Some("preferred")),
    ("interleave", Some("interleave")),
    ("restrictive", None),
];

/// The host nodes and policy for cell `id`: its `<memnode>`, else the
/// domain-wide `<memory>` setting.
pub(crate) fn binding(
    domain: &Element,
    id: u32,
    p: &XPath,
) -> Result<Option<(Vec<u32>, &'static str)>> {
    let Some(nt) = domain.child("numatune") else {
        return Ok(None);
    };
    let tp = p.named("numatune");
    let memnode = nt
        .children_named("memnode")
        .find(|m| attr(m, "cellid").and_then(|v| parse_num(&v)) == Some(id));
    let el = match memnode.or_else(|| nt.child("memory")) {
        Some(e) => e,
        None => return Ok(None),
    };
    if attr(el, "placement").as_deref() == Some("auto") {
        return Err(unsupported(
            tp.named("memory").attr("placement"),
            "automatic NUMA placement",
        ));
    }
    let mode = attr(el, "mode").unwrap_or_else(|| "strict".into());
    let policy = POLICIES
        .iter()
        .find(|(m, _)| *m == mode)
        .ok_or_else(|| {
            invalid(
                tp.named(el.name()).attr("mode"),
                format!("unknown numatune mode '{mode}'"),
            )
        })?
        .1;
    let (Some(policy), Some(nodeset)) = (policy, attr(el, "nodeset")) else {
        return Ok(None);
    };
    let nodes = parse_bitmap(&nodeset).ok_or_else(|| {
        invalid(
            tp.named(el.name()).attr("nodeset"),
            format!("bad node set '{nodeset}'"),
        )
    })?;
    Ok(Some((nodes, policy)))
}

/// The cells' RAM backends and `-numa` options (after `-smp`).
pub(crate) fn emit(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let domain = g.domain;
    let cells = cells(domain, p)?;
    if cells.is_empty() {
        if domain.child("numatune").is_some() {
            return Err(unsupported(
                p.named("numatune"),
                "binding memory to host nodes without guest NUMA cells",
            ));
        }
        return Ok(());
    }
    let backing = super::membackend::Backing::of(domain, p)?;
    for c in &cells {
        let id = format!("ram-node{}", c.id);
        super::membackend::emit(
            g,
            &backing,
            &super::membackend::Request {
                id: &id,
                file_name: &id,
                cell: Some(c.id),
                size_bytes: c.mib * 1024 * 1024,
                mem_access: c.mem_access,
                discard: c.discard,
                binding: binding(domain, c.id, p)?,
                ..Default::default()
            },
            p,
        )?;
        let mut node = format!("node,nodeid={}", c.id);
        for r in ranges(&c.cpus) {
            node.push_str(&format!(",cpus={r}"));
        }
        node.push_str(&format!(",memdev={id}"));
        g.a.opt("-numa", node);
    }
    let numa = domain.child("cpu").and_then(|c| c.child("numa"));
    for cell in numa.into_iter().flat_map(|n| n.children_named("cell")) {
        let Some(dist) = cell.child("distances") else {
            continue;
        };
        let src = attr(cell, "id").unwrap_or_default();
        for s in dist.children_named("sibling") {
            let (Some(dst), Some(val)) = (attr(s, "id"), attr(s, "value")) else {
                continue;
            };
            g.a.opt("-numa", format!("dist,src={src},dst={dst},val={val}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_with_exclusions() {
        assert_eq!(parse_bitmap("1-2,5-7,^6"), Some(vec![1, 2, 5, 7]));
        assert_eq!(parse_bitmap("0"), Some(vec![0]));
        assert_eq!(parse_bitmap("3-1"), None);
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), ["0-2", "5", "7-8"]);
    }
}
