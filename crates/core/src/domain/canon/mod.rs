//! libvirt's canonical form of domain XML.
//!
//! libvirt parses a definition into structures, fills in defaults and prints
//! the structures back in a fixed layout. virtkit keeps the user's tree and
//! computes the same printout from a copy of it, in passes:
//!
//! 1. [`validate`]: the parse-time checks libvirt makes, with errors that
//!    point at the element or attribute (line, column, XPath);
//! 2. value normalisation (units to KiB, bitmaps, numbers as libvirt prints
//!    them) and libvirt's driver-independent post-parse defaults, one module
//!    per element family;
//! 3. the driver's own defaults: [`DomainProfile::add_default_devices`]
//!    before the generic device passes, [`DomainProfile::post_parse`] after;
//! 4. ordering of children and attributes (`order`, from a table learned
//!    from libvirt's output);
//! 5. writing in libvirt's layout ([`crate::xml::libvirt_layout`]).
//!
//! Anything virtkit does not know is kept, next to the known sibling it
//! followed; only what libvirt itself drops (comments, blank text) goes.

mod cpu;
mod cputune;
mod devices;

pub(crate) use devices::disk_name_index;
mod domain;
mod features;
mod memory;
mod order;
mod order_table;
mod os;
mod resctrl;
mod values;

use crate::domain::DomainProfile;
use crate::error::Result;
use crate::xml::{Document, Element, Node, XPath};

/// How to print a definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOptions {
    /// The running domain's id (printed as `id='N'` on `<domain>`); `None`
    /// for an inactive definition.
    pub id: Option<u32>,
    /// Print the persistent (inactive) form: no live-only details.
    pub inactive: bool,
    /// Include security-sensitive values (passwords).
    pub secure: bool,
}

/// What the passes share: the driver profile and the print options.
pub(crate) struct Ctx<'a> {
    pub profile: &'a dyn DomainProfile,
    pub opts: &'a FormatOptions,
}

/// Parse-time checks libvirt makes on a definition beyond well-formedness.
pub fn validate(doc: &Document) -> Result<()> {
    let p = XPath::root("domain");
    memory::validate(doc, &p)?;
    resctrl::validate(doc, &p)?;
    devices::validate(doc, &p)?;
    Ok(())
}

/// Prints `doc` as libvirt would.
pub fn format(doc: &Document, profile: &dyn DomainProfile, opts: &FormatOptions) -> String {
    crate::xml::libvirt_layout(&normalised(doc, profile, opts), &["devices", "hyperv"])
}

/// The `<domain>` element as libvirt would hold it after parsing: defaults
/// filled, values normalised, children and attributes in libvirt's order.
/// Drivers build their native configuration (QEMU arguments...) from this.
pub fn normalised(doc: &Document, profile: &dyn DomainProfile, opts: &FormatOptions) -> Element {
    let mut root = doc.root.clone();
    tidy(&mut root, true);
    let ctx = Ctx { profile, opts };

    domain::normalise(&mut root, &ctx);
    memory::normalise(&mut root);
    memory::normalise_other_sizes(&mut root);
    cpu::normalise(&mut root);
    features::normalise(&mut root);
    cputune::normalise(&mut root);
    resctrl::normalise(&mut root);
    os::normalise(&mut root, &ctx);
    profile.add_default_devices(&mut root);
    devices::normalise(&mut root, &ctx);
    domain::apply_defaults(&mut root);
    profile.post_parse(&mut root);

    root.retain_attrs(|a| a.name() != "id");
    if let Some(id) = opts.id.filter(|_| !opts.inactive) {
        root.set_attr("id", &id.to_string());
    }
    order::sort_tree(&mut root, &mut Vec::new());
    root
}

/// Drops what libvirt's parser does not keep: comments, processing
/// instructions and whitespace between elements. `<metadata>` content is
/// stored verbatim by libvirt, so it is left alone.
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

#[cfg(test)]
mod tests;
