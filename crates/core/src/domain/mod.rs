//! Domain definitions: a typed, validating view over the lossless XML tree.
//!
//! [`DomainDef`] owns the user's [`Document`]; accessors read it, setters
//! edit it in place, and nothing virtkit does not understand is dropped.
//! Two outputs: [`DomainDef::to_xml_as_defined`] (the user's bytes, plus the
//! values virtkit had to generate: UUID, MAC addresses) and
//! [`DomainDef::to_xml_canonical`] (what libvirt's formatter prints for the
//! same definition, with a driver's defaults from a [`DomainProfile`]).
//!
//! [`table`] holds what stateful drivers keep of their domains: the domain
//! objects with their job locks, the table with libvirt's lookups, list
//! filter and definition clashes, and the lock on a driver instance's
//! directories.

pub mod canon;
pub mod table;
pub mod units;

use crate::connect::check_object_name;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{MAC_PREFIX_QEMU, MacAddr, Uuid};
use crate::xml::{self, Document, Element, ParseOptions, XPath};

pub use canon::FormatOptions;

/// What a driver adds to definitions: the defaults libvirt's post-parse
/// callbacks fill in for that hypervisor.
pub trait DomainProfile: Send + Sync {
    /// Driver name (for messages).
    fn name(&self) -> &str;
    /// Guest architecture used when `<os><type arch=..>` is missing.
    fn default_arch(&self, os_type: &str) -> &str {
        let _ = os_type;
        "x86_64"
    }
    /// Vendor prefix for generated guest MAC addresses.
    fn mac_prefix(&self) -> [u8; 3] {
        MAC_PREFIX_QEMU
    }
    /// Video model added when a domain has graphics but no `<video>`.
    fn default_video_model(&self) -> Option<&str> {
        None
    }
    /// Devices the driver adds to every domain (default controllers, ...),
    /// applied to the canonical copy of `<domain>` before the generic device
    /// passes, as libvirt's driver callbacks run before its generic ones: the
    /// controllers the generic passes add implicitly come after these.
    fn add_default_devices(&self, domain: &mut Element) {
        let _ = domain;
    }
    /// Driver-specific defaults applied to the canonical copy of `<domain>`
    /// after the generic ones.
    fn post_parse(&self, domain: &mut Element) {
        let _ = domain;
    }
}

/// The profile of libvirt's driver-independent parser (genericxml2xml):
/// x86_64 guests and no driver-specific devices.
#[derive(Debug, Default, Clone, Copy)]
pub struct GenericProfile;

impl DomainProfile for GenericProfile {
    fn name(&self) -> &str {
        "generic"
    }
}

/// A domain definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainDef {
    doc: Document,
}

/// The label libvirt uses for XML given as a string.
pub const DOMAIN_SOURCE_LABEL: &str = "(domain_definition)";

impl DomainDef {
    /// Parses and validates domain XML given as a string.
    pub fn parse(xml: &str) -> Result<DomainDef> {
        let doc = xml::parse_str(
            xml,
            &ParseOptions {
                source: Some(DOMAIN_SOURCE_LABEL.to_string()),
                ..ParseOptions::default()
            },
        )?;
        DomainDef::from_document(doc)
    }

    /// Parses and validates domain XML read from `source` (a file name, used
    /// in error messages).
    pub fn parse_named(xml: &[u8], source: &str) -> Result<DomainDef> {
        let doc = xml::parse_with(
            xml,
            &ParseOptions {
                source: Some(source.to_string()),
                ..ParseOptions::default()
            },
        )?;
        DomainDef::from_document(doc)
    }

    /// Validates a parsed document as a domain definition.
    pub fn from_document(doc: Document) -> Result<DomainDef> {
        let def = DomainDef { doc };
        def.validate()?;
        Ok(def)
    }

    /// The document.
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// The `<domain>` element.
    pub fn root(&self) -> &Element {
        &self.doc.root
    }

    /// The `<domain>` element, for edits.
    pub fn root_mut(&mut self) -> &mut Element {
        &mut self.doc.root
    }

    fn path(&self) -> XPath {
        XPath::root("domain")
    }

    fn err_el(&self, path: &XPath, el: &Element, msg: impl Into<String>) -> Error {
        self.doc.error_at(el, path, msg)
    }

    /// Checks what virtkit understands; errors point at the element or
    /// attribute (line, column, XML path).
    pub fn validate(&self) -> Result<()> {
        let root = &self.doc.root;
        let p = self.path();
        if root.name() != "domain" {
            return Err(self.doc.error_at(
                root,
                &XPath::root(root.name()),
                format!(
                    "unexpected root element <{}>, expecting <domain>",
                    root.name()
                ),
            ));
        }
        if root.attr("type").is_none_or(|t| t.is_empty()) {
            return Err(Error::internal("missing domain type attribute"));
        }
        let name_el = root
            .child("name")
            .ok_or_else(|| Error::new(ErrorKind::NoName, "domain"))?;
        let name = name_el.text();
        let name_path = p.named("name");
        if name.is_empty() {
            return Err(Error::new(ErrorKind::NoName, "domain"));
        }
        check_object_name("domain", &name)
            .map_err(|e| self.err_el(&name_path, name_el, e.message().to_string()))?;
        if let Some(t) = root.child("title")
            && t.text().contains('\n')
        {
            return Err(self.err_el(&p.named("title"), t, "Domain title can't contain newlines"));
        }
        match root.child("os") {
            Some(os)
                if os
                    .child("type")
                    .is_some_and(|t| !t.text().trim().is_empty()) =>
            {
                if os.child("type").is_some_and(|t| t.text().trim() == "exe")
                    && os.child("init").is_none()
                {
                    return Err(self.err_el(&p.named("os"), os, "init binary must be specified"));
                }
            }
            Some(os) => {
                return Err(self.err_el(&p.named("os"), os, "an os <type> must be specified"));
            }
            None => return Err(self.err_el(&p, root, "an os <type> must be specified")),
        }
        let numa_memory = root
            .child("cpu")
            .and_then(|c| c.child("numa"))
            .is_some_and(|n| n.children_named("cell").any(|c| c.has_attr("memory")));
        if root.child("memory").is_none() && !numa_memory {
            return Err(self.err_el(
                &p,
                root,
                "Memory size must be specified via <memory> or in the <numa> configuration",
            ));
        }
        if let Some(u) = root.child("uuid") {
            u.text()
                .parse::<Uuid>()
                .map_err(|e| self.err_el(&p.named("uuid"), u, e.message().to_string()))?;
        }
        canon::validate(&self.doc)
    }

    /// Name.
    pub fn name(&self) -> String {
        self.root()
            .child("name")
            .map(Element::text)
            .unwrap_or_default()
    }

    /// UUID, if the definition has one.
    pub fn uuid(&self) -> Option<Uuid> {
        self.root()
            .child("uuid")
            .and_then(|u| u.text().parse().ok())
    }

    /// Sets the UUID (inserted right after `<name>` when missing).
    pub fn set_uuid(&mut self, uuid: Uuid) {
        let text = uuid.to_string();
        let root = self.root_mut();
        if let Some(u) = root.child_mut("uuid") {
            u.set_text(&text);
            return;
        }
        insert_after(root, "name", Element::new("uuid").with_text(&text));
    }

    /// The hypervisor type (`<domain type=..>`).
    pub fn domain_type(&self) -> String {
        self.root()
            .attr("type")
            .map(|s| s.into_owned())
            .unwrap_or_default()
    }

    /// Maximum memory in KiB (`<memory>`), 0 when absent.
    pub fn memory_kib(&self) -> u64 {
        self.root()
            .child("memory")
            .and_then(|m| units::element_kib(m).ok())
            .unwrap_or(0)
    }

    /// Current memory in KiB (`<currentMemory>`, else `<memory>`).
    pub fn current_memory_kib(&self) -> u64 {
        self.root()
            .child("currentMemory")
            .and_then(|m| units::element_kib(m).ok())
            .unwrap_or_else(|| self.memory_kib())
    }

    /// Number of virtual CPUs at start (`<vcpu current=..>` or `<vcpu>`).
    pub fn vcpus(&self) -> u32 {
        let Some(v) = self.root().child("vcpu") else {
            return 1;
        };
        v.attr("current")
            .and_then(|c| c.trim().parse().ok())
            .or_else(|| v.text().trim().parse().ok())
            .unwrap_or(1)
    }

    /// `<os><type>`, e.g. `hvm`, `exe`, `xen`.
    pub fn os_type(&self) -> String {
        self.root()
            .child("os")
            .and_then(|o| o.child("type"))
            .map(|t| t.text().trim().to_string())
            .unwrap_or_default()
    }

    /// `<on_poweroff>`, `<on_reboot>`, `<on_crash>` with libvirt's defaults.
    pub fn lifecycle_action(&self, event: &str) -> String {
        let default = if event == "on_reboot" {
            "restart"
        } else {
            "destroy"
        };
        self.root()
            .child(event)
            .map(|e| e.text().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default.to_string())
    }

    /// Fills in what must be generated once and kept: a UUID when missing,
    /// and a MAC address for every `<interface>` without one.
    pub fn assign_generated(&mut self, profile: &dyn DomainProfile) {
        if self.uuid().is_none() {
            self.set_uuid(Uuid::random());
        }
        let prefix = profile.mac_prefix();
        if let Some(devices) = self.root_mut().child_mut("devices") {
            for iface in devices.elements_mut().filter(|e| e.name() == "interface") {
                if iface.child("mac").is_none() {
                    let mac = MacAddr::random(prefix).to_string();
                    iface.insert_element(0, Element::new("mac").with_attr("address", &mac));
                }
            }
        }
    }

    /// The definition as written by the user (plus generated values).
    pub fn to_xml_as_defined(&self) -> String {
        self.doc.to_string_as_defined()
    }

    /// The definition as libvirt's formatter prints it.
    pub fn to_xml_canonical(&self, profile: &dyn DomainProfile, opts: &FormatOptions) -> String {
        canon::format(&self.doc, profile, opts)
    }

    /// The `<domain>` element with the driver's defaults filled in and
    /// values normalised, as drivers read it to build native configuration.
    pub fn normalised(&self, profile: &dyn DomainProfile) -> Element {
        canon::normalised(&self.doc, profile, &FormatOptions::default())
    }
}

/// The index a disk target name stands for, as libvirt computes it:
/// `sda` 0, `hdc` 2, `vdaa` 26; `None` for a name that is not a disk name.
pub fn disk_name_index(name: &str) -> Option<u32> {
    canon::disk_name_index(name)
}

/// Inserts `new` right after the first child element named `after` (or
/// first, when there is none), keeping the indentation of the siblings.
pub(crate) fn insert_after(parent: &mut Element, after: &str, new: Element) {
    let idx = parent
        .children
        .iter()
        .position(|n| matches!(n, xml::Node::Element(e) if e.name() == after));
    match idx {
        Some(i) => {
            // Copy the whitespace that precedes `after` so the new line lines up.
            let ws = i.checked_sub(1).and_then(|j| match &parent.children[j] {
                xml::Node::Text(t) if t.is_blank() => Some(t.clone()),
                _ => None,
            });
            parent.insert(i + 1, new);
            if let Some(ws) = ws {
                parent.children.insert(i + 1, xml::Node::Text(ws));
            }
        }
        None => parent.insert(0, new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "<domain type='test'>\n  <name>vm1</name>\n  <memory>1048576</memory>\n  <os><type>hvm</type></os>\n</domain>\n";

    #[test]
    fn generated_uuid_is_inserted_after_name() {
        let mut d = DomainDef::parse(MIN).unwrap();
        assert!(d.uuid().is_none());
        d.assign_generated(&GenericProfile);
        let u = d.uuid().unwrap();
        let out = d.to_xml_as_defined();
        assert!(
            out.starts_with(&format!(
                "<domain type='test'>\n  <name>vm1</name>\n  <uuid>{u}</uuid>\n  <memory>"
            )),
            "{out}"
        );
    }

    #[test]
    fn validation_errors() {
        let e = DomainDef::parse("<domain><name>x</name></domain>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: missing domain type attribute"
        );
        let e = DomainDef::parse("<domain type='kvm'>\n<name>foo/bar</name></domain>").unwrap_err();
        let loc = e.xml_location().unwrap();
        assert_eq!((loc.line, loc.path.as_str()), (2, "/domain/name"));
        assert!(e.to_string().contains("cannot contain '/'"), "{e}");
        let e = DomainDef::parse("<network/>").unwrap_err();
        assert!(e.to_string().contains("expecting <domain>"), "{e}");
    }

    #[test]
    fn accessors() {
        let d = DomainDef::parse(
            "<domain type='kvm'><name>a</name><memory unit='GiB'>2</memory>\
             <currentMemory unit='MiB'>512</currentMemory><vcpu current='2'>4</vcpu>\
             <os><type>hvm</type></os></domain>",
        )
        .unwrap();
        assert_eq!(d.memory_kib(), 2 * 1024 * 1024);
        assert_eq!(d.current_memory_kib(), 512 * 1024);
        assert_eq!(d.vcpus(), 2);
        assert_eq!(d.lifecycle_action("on_reboot"), "restart");
    }
}
