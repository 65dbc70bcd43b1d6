//! Child-element and attribute order of libvirt's network formatter,
//! applied to a whole tree from the generated table in `order_table.rs`.
//!
//! A context is `parent/element` (the root is `network`), refined to
//! `grandparent/parent/element` where the two-name context is ambiguous
//! (a `<host>` of `<dhcp>` is not a `<host>` of `<dns>`). The table is a
//! partial order: only pairs libvirt prints in a fixed order are
//! constrained; everything else keeps the order it was written in, and names
//! the table does not know travel with the known sibling before them.

use super::order_table::{Names, ORDER, OrderRow};
use crate::xml::{Element, Node};

fn row(context: &str) -> Option<&'static OrderRow> {
    ORDER
        .binary_search_by(|r| r.context.cmp(context))
        .ok()
        .map(|i| &ORDER[i])
}

/// The rows for an element at `path`, most specific first.
fn rows_for(path: &[&str]) -> Vec<&'static OrderRow> {
    let n = path.len();
    let two = if n >= 2 {
        format!("{}/{}", path[n - 2], path[n - 1])
    } else {
        path.join("/")
    };
    let mut keys = Vec::with_capacity(2);
    if n >= 3 {
        keys.push(format!("{}/{two}", path[n - 3]));
    }
    keys.push(two);
    keys.iter().filter_map(|k| row(k)).collect()
}

fn pick(
    rows: &[&'static OrderRow],
    which: fn(&'static OrderRow) -> &'static Names,
) -> Option<&'static Names> {
    rows.iter().map(|r| which(r)).find(|n| !n.names.is_empty())
}

/// Reorders `items` so every constraint of `order` holds while moving as
/// little as possible: repeatedly take the first remaining item none of
/// whose required predecessors remain.
fn stable_partial_sort<T>(
    items: Vec<T>,
    name_of: impl Fn(&T) -> Option<&str>,
    order: &Names,
) -> Vec<T> {
    let mut groups: Vec<(Option<usize>, Vec<T>)> = Vec::new();
    for item in items {
        let idx = name_of(&item).and_then(|n| order.names.iter().position(|k| *k == n));
        match (idx, groups.last_mut()) {
            (None, Some(last)) => last.1.push(item),
            _ => groups.push((idx, vec![item])),
        }
    }
    let mut remaining = vec![0usize; order.names.len()];
    for (i, _) in &groups {
        if let Some(i) = i {
            remaining[*i] += 1;
        }
    }
    let present = |remaining: &[usize]| -> u64 {
        remaining
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .fold(0u64, |m, (i, _)| m | (1u64 << i))
    };
    let mut live = present(&remaining);
    let mut slots: Vec<Option<(Option<usize>, Vec<T>)>> = groups.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for _ in 0..slots.len() {
        let ready = slots.iter().position(|g| match g {
            Some((Some(i), _)) => order.before.get(*i).is_none_or(|b| b & live == 0),
            Some((None, _)) => true,
            None => false,
        });
        let pos = ready.or_else(|| slots.iter().position(Option::is_some));
        let Some((idx, members)) = pos.and_then(|p| slots[p].take()) else {
            break;
        };
        if let Some(i) = idx {
            remaining[i] -= 1;
            if remaining[i] == 0 {
                live = present(&remaining);
            }
        }
        out.extend(members);
    }
    out
}

/// Orders the attributes and children of `el` and its descendants; `path`
/// holds the names of `el`'s ancestors.
pub(super) fn sort_tree(el: &mut Element, path: &mut Vec<String>) {
    path.push(el.name().to_string());
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let rows = rows_for(&names);
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
    if !(path.len() == 2 && el.name() == "metadata") {
        for child in el.elements_mut() {
            sort_tree(child, path);
        }
    }
    path.pop();
}
