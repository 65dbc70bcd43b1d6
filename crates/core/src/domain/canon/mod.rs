//! libvirt's canonical form of domain XML.
//!
//! libvirt parses a definition into structures, fills in defaults and prints
//! the structures back in a fixed layout. virtkit keeps the user's tree and
//! computes the same printout from a copy of it: parse-time checks
//! ([`validate`]), default filling (generic, then the driver's
//! [`DomainProfile`]), ordering of children and attributes, and libvirt's
//! writer layout.

use crate::domain::DomainProfile;
use crate::domain::units;
use crate::error::Result;
use crate::xml::{CanonicalWriter, Document, Element, Node, XPath};

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

/// Parse-time checks libvirt makes on a definition beyond well-formedness.
pub fn validate(doc: &Document) -> Result<()> {
    let root = &doc.root;
    let p = XPath::root("domain");
    for name in ["memory", "currentMemory", "maxMemory"] {
        if let Some(m) = root.child(name) {
            units::element_kib(m).map_err(|msg| doc.error_at(m, &p.named(name), msg))?;
        }
    }
    Ok(())
}

/// Order of `<domain>`'s children in libvirt's formatter.
const DOMAIN_ORDER: &[&str] = &[
    "name",
    "uuid",
    "genid",
    "title",
    "description",
    "metadata",
    "maxMemory",
    "memory",
    "currentMemory",
    "blkiotune",
    "memtune",
    "memoryBacking",
    "vcpu",
    "vcpus",
    "iothreads",
    "iothreadids",
    "cputune",
    "numatune",
    "resource",
    "sysinfo",
    "bootloader",
    "bootloader_args",
    "os",
    "idmap",
    "features",
    "cpu",
    "clock",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "on_lockfailure",
    "pm",
    "perf",
    "devices",
    "seclabel",
    "keywrap",
    "launchSecurity",
];

/// Prints `doc` as libvirt would.
pub fn format(doc: &Document, profile: &dyn DomainProfile, opts: &FormatOptions) -> String {
    let mut root = doc.root.clone();
    apply_defaults(&mut root, profile);
    profile.post_parse(&mut root);

    root.retain_attrs(|a| a.name() != "id");
    if let Some(id) = opts.id.filter(|_| !opts.inactive) {
        root.set_attr("id", &id.to_string());
    }
    root.sort_attrs_by_key(|a| match a.name() {
        "type" => 0,
        "id" => 1,
        _ => 2,
    });
    sort_children(&mut root, DOMAIN_ORDER);

    let mut w = CanonicalWriter::new();
    write_domain(&mut w, &root);
    w.finish()
}

fn write_domain(w: &mut CanonicalWriter, root: &Element) {
    let mut head = root.clone();
    head.children.clear();
    // Metadata is printed verbatim (libvirt dumps the stored node).
    w.element_open(&head, 0);
    for child in root.elements() {
        if child.name() == "metadata" {
            w.libxml_dump(child, 1);
        } else {
            w.element(child, 1);
        }
    }
    w.element_close(&head, 0);
}

fn sort_children(el: &mut Element, order: &[&str]) {
    let rank = |n: &Node| match n {
        Node::Element(e) => order
            .iter()
            .position(|o| *o == e.name())
            .unwrap_or(order.len()),
        _ => order.len(),
    };
    el.children.retain(|n| matches!(n, Node::Element(_)));
    el.children.sort_by_key(rank);
}

fn set_child_text(parent: &mut Element, name: &str, text: &str) {
    parent.child_or_insert(name).set_text(text);
}

fn apply_defaults(root: &mut Element, profile: &dyn DomainProfile) {
    // Memory in KiB with an explicit unit; currentMemory defaults to memory.
    let mut max_kib = None;
    for name in ["maxMemory", "memory", "currentMemory"] {
        if let Some(m) = root.child_mut(name)
            && let Ok(kib) = units::element_kib(m)
        {
            m.set_text(&kib.to_string());
            m.set_attr("unit", "KiB");
            m.sort_attrs_by_key(|a| if a.name() == "unit" { 0 } else { 1 });
            if name == "memory" {
                max_kib = Some(kib);
            }
        }
    }
    if let Some(kib) = max_kib
        && root.child("currentMemory").is_none()
    {
        root.push(
            Element::new("currentMemory")
                .with_attr("unit", "KiB")
                .with_text(&kib.to_string()),
        );
    }

    // vcpu: placement static by default, one vCPU when missing.
    let vcpu = root.child_or_insert("vcpu");
    if vcpu.text().trim().is_empty() {
        vcpu.set_text("1");
    }
    if !vcpu.has_attr("placement") {
        let mut attrs: Vec<(String, String)> = vcpu
            .attrs()
            .iter()
            .map(|a| (a.name().to_string(), a.value().into_owned()))
            .collect();
        attrs.insert(0, ("placement".into(), "static".into()));
        let text = vcpu.text();
        let mut fresh = Element::new("vcpu");
        for (k, v) in &attrs {
            fresh.set_attr(k, v);
        }
        fresh.set_text(text.trim());
        *vcpu = fresh;
    }

    // os: arch from the driver, boot from disk unless something else boots.
    let os = root.child_or_insert("os");
    let os_type = os.child("type").map(|t| t.text().trim().to_string());
    if let Some(t) = os.child_mut("type")
        && !t.has_attr("arch")
    {
        let arch = profile
            .default_arch(os_type.as_deref().unwrap_or("hvm"))
            .to_string();
        let text = t.text();
        let mut fresh = Element::new("type").with_attr("arch", &arch);
        for a in t.attrs() {
            fresh.set_attr(a.name(), &a.value());
        }
        fresh.set_text(text.trim());
        *t = fresh;
    }
    let has_direct_boot = os.child("kernel").is_some() || os.child("loader").is_some();
    if os_type.as_deref() == Some("hvm") && os.child("boot").is_none() && !has_direct_boot {
        os.push(Element::new("boot").with_attr("dev", "hd"));
    }

    if root.child("clock").is_none() {
        root.push(Element::new("clock").with_attr("offset", "utc"));
    }
    for (ev, default) in [
        ("on_poweroff", "destroy"),
        ("on_reboot", "restart"),
        ("on_crash", "destroy"),
    ] {
        if root.child(ev).is_none() {
            set_child_text(root, ev, default);
        }
    }
}
