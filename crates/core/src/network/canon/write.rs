//! Printing the normalised tree in libvirt's network layout.
//!
//! [`CanonicalWriter`] does the general layout; particular to networks:
//! `<metadata>` is dumped the way libxml2 stores it, and `<ip>` and
//! `<portgroup>` are always opened and closed on their own lines, even when
//! empty (libvirt 9.0 writes their start tag with `>` unconditionally).

use crate::xml::{CanonicalWriter, Element, Node};

/// Elements printed as `<x>` ... `</x>` even when empty.
const ALWAYS_OPEN: &[&str] = &["ip", "portgroup"];

/// Prints a `<network>` element and its subtree.
pub(super) fn network(root: &Element) -> String {
    let mut w = CanonicalWriter::new();
    let mut head = root.clone();
    head.children.clear();
    w.element_open(&head, 0);
    for child in root.elements() {
        if child.name() == "metadata" {
            w.libxml_dump(child, 1);
        } else {
            element(&mut w, child, 1);
        }
    }
    w.element_close(&head, 0);
    w.finish()
}

fn element(w: &mut CanonicalWriter, e: &Element, indent: usize) {
    let element_only = e.children.iter().all(|n| matches!(n, Node::Element(_)));
    let open = e.has_elements() || ALWAYS_OPEN.contains(&e.name());
    if !(open && element_only) {
        w.element(e, indent);
        return;
    }
    w.element_open(e, indent);
    for child in e.elements() {
        element(w, child, indent + 1);
    }
    w.element_close(e, indent);
}
