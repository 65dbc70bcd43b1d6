//! libvirt's canonical form of network XML (`virNetworkDefFormat`).
//!
//! As for domains, the user's tree is kept and the printout is computed
//! from a copy of it, in passes:
//!
//! 1. drop what libvirt's parser never keeps (comments, blank text, second
//!    copies of single elements);
//! 2. `normalise`: values as libvirt prints them (addresses, MACs,
//!    numbers, yes/no), defaults it fills in (forward mode, STP, the forward
//!    device as an `<interface>`), and elements it does not print in a
//!    given mode;
//! 3. ordering of children and attributes (`order`, from a table learned
//!    from libvirt's output by `scripts/gen-network-order`);
//! 4. writing in libvirt's layout ([`crate::xml::libvirt_layout`]).
//!
//! Elements virtkit does not know are kept next to the sibling they
//! followed, as for domains.

mod normalise;
mod order;
mod order_table;

use super::def::Network;
use crate::xml::{Document, Element, Node};

/// How to print a network definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOptions {
    /// The persistent form (`VIR_NETWORK_XML_INACTIVE`): no live-only
    /// details (a PF's generated interface pool is not printed).
    pub inactive: bool,
}

/// Prints `doc` (whose model is `model`) as libvirt would.
pub fn format(doc: &Document, model: &Network, opts: &FormatOptions) -> String {
    let mut root = doc.root.clone();
    tidy(&mut root, true);
    normalise::network(&mut root, model, opts);
    order::sort_tree(&mut root, &mut Vec::new());
    crate::xml::libvirt_layout(&root, &["ip", "portgroup"])
}

/// Drops comments, processing instructions and whitespace between
/// elements; `<metadata>` content is stored verbatim by libvirt.
fn tidy(el: &mut Element, top: bool) {
    let element_only = el.has_elements();
    el.children.retain(|n| match n {
        Node::Comment(_) | Node::Pi(_) | Node::Decl(_) | Node::DocType(_) => false,
        Node::Text(t) => !(element_only && t.is_blank()),
        _ => true,
    });
    for child in el.elements_mut() {
        if !(top && child.name() == "metadata") {
            tidy(child, false);
        }
    }
}
