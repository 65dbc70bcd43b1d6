//! `<cputune>`: pinning and scheduler settings. libvirt stores pins and
//! scheduler policies per vCPU / I/O thread and prints them back sorted and
//! grouped, so equal settings written separately come out merged.

use std::collections::{BTreeMap, BTreeSet};

use super::cpu::{iothread_ids, max_vcpus, sort_by_numeric_attr};
use super::values::{
    BITMAP_LEN, format_bitmap, normalise_bitmap_attr, normalise_uint_text, parse_bitmap, parse_i64,
};
use crate::xml::{Element, Node};

/// Scheduler policies in the order libvirt prints their groups; `true`
/// where the policy takes a priority.
const POLICIES: &[(&str, bool)] = &[
    ("batch", false),
    ("idle", false),
    ("fifo", true),
    ("rr", true),
];

/// Plain numeric children of `<cputune>`.
const NUMBERS: &[&str] = &[
    "shares",
    "global_period",
    "global_quota",
    "period",
    "quota",
    "emulator_period",
    "emulator_quota",
    "iothread_period",
    "iothread_quota",
];

pub(super) fn normalise(root: &mut Element) {
    // Scheduler lists are bitmaps, so only vCPUs below BITMAP_LEN matter.
    let vcpus: BTreeSet<u32> = (0..max_vcpus(root).min(BITMAP_LEN)).collect();
    let iothreads: BTreeSet<u32> = iothread_ids(root).into_iter().collect();
    let Some(tune) = root.child_mut("cputune") else {
        return;
    };
    for el in tune.elements_mut() {
        if NUMBERS.contains(&el.name()) {
            normalise_uint_text(el);
        }
        if matches!(el.name(), "vcpupin" | "emulatorpin" | "iothreadpin") {
            normalise_bitmap_attr(el, "cpuset");
        }
    }
    sort_by_numeric_attr(tune, "vcpupin", "vcpu");
    sort_by_numeric_attr(tune, "iothreadpin", "iothread");
    regroup_sched(tune, "vcpusched", "vcpus", &vcpus);
    regroup_sched(tune, "iothreadsched", "iothreads", &iothreads);
    if tune.children.is_empty() {
        root.remove_children_named("cputune");
    }
}

/// One thread's scheduler setting.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sched {
    policy: usize,
    priority: i64,
}

/// Replaces the `<{name}>` elements by libvirt's grouping: one element per
/// policy (in [`POLICIES`] order), and per priority for policies that have
/// one, covering every thread of `threads` with that setting. Elements that
/// do not parse are kept as written.
fn regroup_sched(tune: &mut Element, name: &str, attr: &str, threads: &BTreeSet<u32>) {
    let mut per_thread: BTreeMap<u32, Sched> = BTreeMap::new();
    let mut first_slot = None;
    let mut kept = Vec::new();
    for node in std::mem::take(&mut tune.children) {
        let parsed = match &node {
            Node::Element(e) if e.name() == name => parse_sched(e, attr),
            _ => {
                kept.push(node);
                continue;
            }
        };
        match parsed {
            Some((ids, sched)) => {
                first_slot.get_or_insert(kept.len());
                for id in ids.into_iter().filter(|id| threads.contains(id)) {
                    per_thread.insert(id, sched);
                }
            }
            None => kept.push(node),
        }
    }
    tune.children = kept;
    let Some(slot) = first_slot else { return };
    let mut grouped = Vec::new();
    for (policy, (pname, has_priority)) in POLICIES.iter().enumerate() {
        let mut left: BTreeSet<u32> = per_thread
            .iter()
            .filter(|(_, s)| s.policy == policy)
            .map(|(id, _)| *id)
            .collect();
        while let Some(first) = left.iter().next().copied() {
            let prio = per_thread.get(&first).map_or(0, |s| s.priority);
            let group: BTreeSet<u32> = if *has_priority {
                left.iter()
                    .copied()
                    .filter(|id| per_thread.get(id).is_some_and(|s| s.priority == prio))
                    .collect()
            } else {
                left.clone()
            };
            let mut el = Element::new(name)
                .with_attr(attr, &format_bitmap(&group))
                .with_attr("scheduler", pname);
            if *has_priority {
                el.set_attr("priority", &prio.to_string());
            }
            grouped.push(Node::Element(el));
            left = left.difference(&group).copied().collect();
        }
    }
    let at = slot.min(tune.children.len());
    tune.children.splice(at..at, grouped);
}

fn parse_sched(e: &Element, attr: &str) -> Option<(BTreeSet<u32>, Sched)> {
    let ids = parse_bitmap(&e.attr(attr)?)?;
    let scheduler = e.attr("scheduler")?;
    let (policy, (_, has_priority)) = POLICIES
        .iter()
        .enumerate()
        .find(|(_, (n, _))| *n == scheduler)?;
    let priority = if *has_priority {
        parse_i64(&e.attr("priority")?)?
    } else {
        0
    };
    Some((ids, Sched { policy, priority }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn tuned(xml: &str) -> Vec<String> {
        let mut root = parse(xml).unwrap().root;
        normalise(&mut root);
        let tune = root.child("cputune").unwrap();
        tune.elements()
            .map(|e| {
                let attrs: Vec<String> = e
                    .attrs()
                    .iter()
                    .map(|a| format!("{}={}", a.name(), a.value()))
                    .collect();
                format!("{} {}", e.name(), attrs.join(" "))
            })
            .collect()
    }

    #[test]
    fn vcpusched_with_equal_settings_merge_and_sort_by_policy() {
        let got = tuned(
            "<domain><vcpu>4</vcpu><cputune>\
             <vcpusched vcpus='2-3' scheduler='fifo' priority='1'/>\
             <vcpusched vcpus='0' scheduler='fifo' priority='1'/>\
             <vcpusched vcpus='1' scheduler='batch'/>\
             </cputune></domain>",
        );
        assert_eq!(
            got,
            [
                "vcpusched vcpus=1 scheduler=batch",
                "vcpusched vcpus=0,2-3 scheduler=fifo priority=1"
            ]
        );
    }

    #[test]
    fn vcpupins_are_sorted_by_vcpu() {
        let got = tuned(
            "<domain><vcpu>2</vcpu><cputune><vcpupin vcpu='1' cpuset='1,2,3'/><vcpupin vcpu='0' cpuset='0'/></cputune></domain>",
        );
        assert_eq!(
            got,
            ["vcpupin vcpu=0 cpuset=0", "vcpupin vcpu=1 cpuset=1-3"]
        );
    }
}
