//! Network definitions: a typed, validating view over the lossless XML tree.
//!
//! [`NetworkDef`] owns the user's [`Document`] and the model read from it
//! ([`def::Network`], with libvirt's parse-time checks and positioned
//! errors). Two outputs: [`NetworkDef::to_xml_as_defined`] (the user's
//! bytes, plus what virtkit had to generate: UUID, bridge MAC and name) and
//! [`NetworkDef::to_xml_canonical`] (what libvirt's formatter prints).
//!
//! [`NetworkDef::prepare_for_host`] adds the checks and defaults of a
//! network driver that runs networks on the host (libvirt's
//! `networkValidate`): a `virbrN` bridge name, a generated bridge MAC kept in
//! the persistent definition, and what each forward mode allows.

pub mod addr;
pub mod canon;
pub mod def;
mod hosted;
pub mod update;

use crate::error::Result;
use crate::ids::{MAC_PREFIX_QEMU, MacAddr, Uuid};
use crate::xml::{self, Document, Element, ParseOptions};

pub use canon::FormatOptions;
pub use def::{ForwardMode, Network};
pub use hosted::MAX_BRIDGE_ID;

/// The label libvirt uses for network XML given as a string.
pub const NETWORK_SOURCE_LABEL: &str = "(network_definition)";

/// A network definition.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkDef {
    doc: Document,
    model: Network,
}

impl NetworkDef {
    /// Parses and checks network XML given as a string.
    pub fn parse(xml: &str) -> Result<NetworkDef> {
        let doc = xml::parse_str(
            xml,
            &ParseOptions {
                source: Some(NETWORK_SOURCE_LABEL.to_string()),
                ..ParseOptions::default()
            },
        )?;
        NetworkDef::from_document(doc)
    }

    /// Parses and checks network XML read from `source` (a file name, used
    /// in error messages).
    pub fn parse_named(xml: &[u8], source: &str) -> Result<NetworkDef> {
        let doc = xml::parse_with(
            xml,
            &ParseOptions {
                source: Some(source.to_string()),
                ..ParseOptions::default()
            },
        )?;
        NetworkDef::from_document(doc)
    }

    /// Checks a parsed document as a network definition.
    pub fn from_document(doc: Document) -> Result<NetworkDef> {
        let model = def::parse(&doc)?;
        Ok(NetworkDef { doc, model })
    }

    /// The document.
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// The model.
    pub fn model(&self) -> &Network {
        &self.model
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// UUID, if the definition has one.
    pub fn uuid(&self) -> Option<Uuid> {
        self.model.uuid
    }

    /// The bridge device name, if set.
    pub fn bridge(&self) -> Option<&str> {
        self.model.bridge.as_deref()
    }

    /// The bridge MAC, if set.
    pub fn mac(&self) -> Option<MacAddr> {
        self.model.mac
    }

    /// Edits the tree with `f`, then reads the model again (an edit that
    /// makes the definition invalid is undone and its error returned).
    pub fn edit(&mut self, f: impl FnOnce(&mut Element)) -> Result<()> {
        let mut doc = self.doc.clone();
        f(&mut doc.root);
        let model = def::parse(&doc)?;
        self.doc = doc;
        self.model = model;
        Ok(())
    }

    /// Sets the UUID (inserted after `<name>` when missing).
    pub fn set_uuid(&mut self, uuid: Uuid) -> Result<()> {
        let text = uuid.to_string();
        self.edit(|root| match root.child_mut("uuid") {
            Some(u) => u.set_text(&text),
            None => {
                crate::domain::insert_after(root, "name", Element::new("uuid").with_text(&text))
            }
        })
    }

    /// Sets the bridge device name (adding `<bridge>` when missing).
    pub fn set_bridge(&mut self, name: &str) -> Result<()> {
        self.edit(|root| {
            if root.child("bridge").is_none() {
                let after = if root.child("forward").is_some() {
                    "forward"
                } else {
                    "uuid"
                };
                crate::domain::insert_after(root, after, Element::new("bridge"));
            }
            if let Some(b) = root.child_mut("bridge") {
                b.set_attr("name", name);
            }
        })
    }

    /// Sets the bridge MAC (adding `<mac>` after `<bridge>` when missing).
    pub fn set_mac(&mut self, mac: MacAddr) -> Result<()> {
        let text = mac.to_string();
        self.edit(|root| match root.child_mut("mac") {
            Some(m) => m.set_attr("address", &text),
            None => {
                let after = if root.child("bridge").is_some() {
                    "bridge"
                } else {
                    "uuid"
                };
                crate::domain::insert_after(
                    root,
                    after,
                    Element::new("mac").with_attr("address", &text),
                );
            }
        })
    }

    /// Fills in what is generated once and kept: a UUID when missing.
    pub fn assign_uuid(&mut self) -> Result<()> {
        if self.model.uuid.is_none() {
            self.set_uuid(Uuid::random())?;
        }
        Ok(())
    }

    /// The network driver's checks and defaults (libvirt's
    /// `networkValidate`): a bridge name from `virbr%d` (or the name's own
    /// `%d` template) that no other network uses (`taken`) and no host
    /// device has (`on_host`), a `52:54:00` bridge MAC when missing, and
    /// what each forward mode allows. A bridge name given explicitly is only
    /// refused when another network uses it.
    pub fn prepare_for_host(
        &mut self,
        taken: &dyn Fn(&str) -> bool,
        on_host: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        hosted::prepare(self, taken, on_host)
    }

    /// Generates a bridge MAC if none is set (modes with a virtkit bridge).
    fn ensure_mac(&mut self) -> Result<()> {
        if self.model.mac.is_none() {
            self.set_mac(MacAddr::random(MAC_PREFIX_QEMU))?;
        }
        Ok(())
    }

    /// The definition as written by the user (plus generated values).
    pub fn to_xml_as_defined(&self) -> String {
        self.doc.to_string_as_defined()
    }

    /// The definition as libvirt's formatter prints it.
    pub fn to_xml_canonical(&self, opts: &FormatOptions) -> String {
        canon::format(&self.doc, &self.model, opts)
    }
}

#[cfg(test)]
mod tests;
