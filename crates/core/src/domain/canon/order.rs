//! Child-element and attribute order of libvirt's formatter, applied to a
//! whole tree from the generated table in `order_table.rs`.
//!
//! A context is `parent/element` (the root is `domain`); where that is
//! ambiguous the table also has `grandparent/parent/element`, and for a few
//! elements whose layout depends on their `type` a `parent/element@type`
//! row. The most specific row wins.
//!
//! The table is a partial order: only pairs libvirt was seen (or is known)
//! to print in a fixed order are constrained. Sorting moves as little as
//! possible, so pairs without a constraint keep the order they were written
//! in, same-kind devices keep document order, and a document libvirt
//! printed is left as it is. Names the table does not know travel with the
//! known sibling written before them, so nothing the user wrote moves far.

use super::order_table::{Names, ORDER, OrderRow};
use crate::xml::{Element, Node};

fn row(context: &str) -> Option<&'static OrderRow> {
    ORDER
        .binary_search_by(|r| r.context.cmp(context))
        .ok()
        .map(|i| &ORDER[i])
}

/// The rows that apply to `el` at `path` (names from the root down to and
/// including `el`), most specific first.
fn rows_for(path: &[&str], el: &Element) -> Vec<&'static OrderRow> {
    let n = path.len();
    let two = if n >= 2 {
        format!("{}/{}", path[n - 2], path[n - 1])
    } else {
        path.join("/")
    };
    let mut keys = Vec::with_capacity(3);
    if let Some(t) = el.attr("type") {
        keys.push(format!("{two}@{t}"));
    }
    if n >= 3 {
        keys.push(format!("{}/{two}", path[n - 3]));
    }
    keys.push(two);
    keys.iter().filter_map(|k| row(k)).collect()
}

/// The most specific non-empty order among `rows`.
fn pick(
    rows: &[&'static OrderRow],
    which: fn(&'static OrderRow) -> &'static Names,
) -> Option<&'static Names> {
    rows.iter().map(|r| which(r)).find(|n| !n.names.is_empty())
}

/// Reorders `items` so that every constraint of `order` holds while
/// changing the written order as little as possible: repeatedly take the
/// first remaining item whose name has no remaining predecessor. Items with
/// an unknown name (`None`) travel with the item before them.
pub(super) fn stable_partial_sort<T>(
    items: Vec<T>,
    name_of: impl Fn(&T) -> Option<&str>,
    order: &Names,
) -> Vec<T> {
    // Groups: a known item followed by the unknown items after it.
    let mut groups: Vec<(Option<usize>, Vec<T>)> = Vec::new();
    for item in items {
        let idx = name_of(&item).and_then(|n| order.names.iter().position(|k| *k == n));
        match (idx, groups.last_mut()) {
            (None, Some(last)) => last.1.push(item),
            _ => groups.push((idx, vec![item])),
        }
    }
    let mut remaining = vec![0usize; order.names.len()];
    for (idx, _) in &groups {
        if let Some(i) = idx {
            remaining[*i] += 1;
        }
    }
    let mask = |remaining: &[usize]| -> u128 {
        remaining
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .fold(0u128, |m, (i, _)| m | (1u128 << i))
    };
    let mut present = mask(&remaining);
    let mut slots: Vec<Option<(Option<usize>, Vec<T>)>> = groups.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for _ in 0..slots.len() {
        let ready = slots.iter().position(|g| match g {
            Some((Some(i), _)) => order.before.get(*i).is_none_or(|b| b & present == 0),
            Some((None, _)) => true,
            None => false,
        });
        // A cycle cannot happen with a generated table; take the first left.
        let pos = ready.or_else(|| slots.iter().position(Option::is_some));
        let Some((idx, members)) = pos.and_then(|p| slots[p].take()) else {
            break;
        };
        if let Some(i) = idx {
            remaining[i] -= 1;
            if remaining[i] == 0 {
                present = mask(&remaining);
            }
        }
        out.extend(members);
    }
    out
}

/// Orders the attributes and children of `el` and, recursively, of its
/// descendants. `path` holds the names of `el`'s ancestors.
pub(super) fn sort_tree(el: &mut Element, path: &mut Vec<String>) {
    path.push(el.name().to_string());
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let rows = rows_for(&names, el);

    if let Some(order) = pick(&rows, |r| &r.attrs) {
        let attr_names: Vec<String> = el.attrs().iter().map(|a| a.name().to_string()).collect();
        let sorted = stable_partial_sort(attr_names, |n| Some(n.as_str()), order);
        el.sort_attrs_by_key(|a| sorted.iter().position(|n| n == a.name()));
    }
    if let Some(order) = pick(&rows, |r| &r.children) {
        let children = std::mem::take(&mut el.children);
        el.children = stable_partial_sort(
            children,
            |n| match n {
                Node::Element(e) => Some(e.name()),
                _ => None,
            },
            order,
        );
    }

    // Foreign content under <metadata> is printed as stored.
    let foreign = path.len() == 2 && el.name() == "metadata";
    if !foreign {
        for child in el.elements_mut() {
            sort_tree(child, path);
        }
    }
    path.pop();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn sorted(xml: &str) -> String {
        let mut doc = parse(xml).unwrap();
        sort_tree(&mut doc.root, &mut Vec::new());
        let mut w = crate::xml::CanonicalWriter::new();
        w.element(&doc.root, 0);
        w.finish()
    }

    #[test]
    fn domain_children_follow_libvirt_order() {
        let out =
            sorted("<domain type='kvm'><devices/><os/><name>a</name><memory>1</memory></domain>");
        assert_eq!(
            out,
            "<domain type='kvm'>\n  <name>a</name>\n  <memory>1</memory>\n  <os/>\n  <devices/>\n</domain>\n"
        );
    }

    #[test]
    fn unknown_children_stay_after_their_known_predecessor() {
        let out = sorted("<domain type='kvm'><os/><x-extra/><name>a</name></domain>");
        assert_eq!(
            out,
            "<domain type='kvm'>\n  <name>a</name>\n  <os/>\n  <x-extra/>\n</domain>\n"
        );
    }

    #[test]
    fn attributes_follow_libvirt_order() {
        let out = sorted(
            "<domain type='kvm'><devices><disk device='disk' type='file'/></devices></domain>",
        );
        assert!(out.contains("<disk type='file' device='disk'/>"), "{out}");
    }

    #[test]
    fn same_named_devices_keep_document_order() {
        let out = sorted(
            "<domain type='kvm'><devices><disk type='a'/><emulator>e</emulator><disk type='b'/></devices></domain>",
        );
        let a = out.find("type='a'").unwrap();
        let b = out.find("type='b'").unwrap();
        assert!(out.find("<emulator>").unwrap() < a && a < b, "{out}");
    }
}
