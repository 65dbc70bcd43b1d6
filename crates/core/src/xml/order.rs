//! libvirt prints child elements and attributes in fixed orders; these
//! helpers apply such an order, given as a generated table (the domain and
//! network tables under `domain/canon` and `network/canon`), to a tree.
//!
//! A context is `parent/element` (the root alone for the root); where that
//! is ambiguous a table also has `grandparent/parent/element`, and for
//! elements whose layout depends on their `type` a `parent/element@type`
//! row. The most specific row wins.
//!
//! A table is a partial order: only pairs libvirt prints in a fixed order
//! are constrained. Sorting moves as little as possible, so pairs without a
//! constraint keep the order they were written in, same-kind elements keep
//! document order, and a document libvirt printed is left as it is. Names
//! the table does not know travel with the known sibling written before
//! them, so nothing the user wrote moves far.

use super::{Element, Node};

/// A partial order over names: `before[i]` has bit `j` set when `names[j]`
/// must be printed before `names[i]`. Pairs without a bit keep the order
/// they were written in.
#[derive(Debug)]
pub struct Names {
    /// Names, in one order that satisfies every constraint.
    pub names: &'static [&'static str],
    /// Per name, the set of names that precede it (bit = index in `names`).
    pub before: &'static [u128],
}

/// One context's child and attribute order.
#[derive(Debug)]
pub struct OrderRow {
    /// `parent/element` or `grandparent/parent/element`; the root's name for
    /// the root; `parent/element@value` for a layout chosen by `type`.
    pub context: &'static str,
    /// Order of child element names.
    pub children: Names,
    /// Order of attribute names.
    pub attrs: Names,
}

fn row(table: &'static [OrderRow], context: &str) -> Option<&'static OrderRow> {
    table
        .binary_search_by(|r| r.context.cmp(context))
        .ok()
        .map(|i| &table[i])
}

/// The rows that apply to `el` at `path` (names from the root down to and
/// including `el`), most specific first.
fn rows_for(table: &'static [OrderRow], path: &[&str], el: &Element) -> Vec<&'static OrderRow> {
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
    keys.iter().filter_map(|k| row(table, k)).collect()
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
fn stable_partial_sort<T>(
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
/// descendants by `table`. `path` holds the names of `el`'s ancestors.
/// The children of a top-level `<metadata>` belong to other applications
/// and keep their order.
pub fn sort_tree(table: &'static [OrderRow], el: &mut Element, path: &mut Vec<String>) {
    path.push(el.name().to_string());
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let rows = rows_for(table, &names, el);

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
            sort_tree(table, child, path);
        }
    }
    path.pop();
}
