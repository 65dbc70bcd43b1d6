//! Host interfaces and storage pools of the fake host (read-only views).

use virtkit_core::xml::{self, CanonicalWriter, Document, XPath};
use virtkit_core::{
    Error, ErrorDomain, ErrorKind, InterfaceListFlags, InterfaceRef, PoolListFlags, PoolState,
    Result, StoragePoolInfo, StoragePoolRef, StorageVolRef, Uuid,
};

/// A host interface.
#[derive(Debug, Clone)]
pub(crate) struct Iface {
    pub name: String,
    pub mac: String,
    pub active: bool,
    xml: String,
}

impl Iface {
    /// An interface from its XML (kept as given when it is the built-in one).
    pub fn from_doc(doc: &Document, verbatim: Option<&str>) -> Result<Iface> {
        let root = &doc.root;
        let name = root.attr("name").map(|n| n.into_owned()).ok_or_else(|| {
            doc.error_at(
                root,
                &XPath::root("interface"),
                "interface has no name attribute",
            )
        })?;
        let mac = root
            .child("mac")
            .and_then(|m| m.attr("address"))
            .map(|m| m.into_owned())
            .unwrap_or_default();
        let xml = verbatim.map(str::to_string).unwrap_or_else(|| {
            let mut w = CanonicalWriter::new();
            w.element(root, 0);
            w.finish()
        });
        Ok(Iface {
            name,
            mac,
            active: true,
            xml,
        })
    }

    pub fn handle(&self) -> InterfaceRef {
        InterfaceRef {
            name: self.name.clone(),
            mac: self.mac.clone(),
        }
    }

    pub fn xml(&self) -> &str {
        &self.xml
    }

    pub fn matches(&self, f: InterfaceListFlags) -> bool {
        let any = f.intersects(InterfaceListFlags::ACTIVE | InterfaceListFlags::INACTIVE);
        !any || (self.active && f.contains(InterfaceListFlags::ACTIVE))
            || (!self.active && f.contains(InterfaceListFlags::INACTIVE))
    }
}

/// A storage pool with its volumes.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub info: StoragePoolInfo,
    pub vols: Vec<StorageVolRef>,
    xml: String,
}

fn bytes_of(doc: &Document, name: &str) -> Result<u64> {
    match doc.root.child(name) {
        None => Ok(0),
        Some(el) => {
            let unit = el.attr("unit");
            virtkit_core::domain::units::parse_scaled(&el.text(), unit.as_deref(), 1)
                .map_err(|msg| doc.error_at(el, &XPath::root("pool").named(name), msg))
        }
    }
}

impl Pool {
    pub fn from_doc(doc: &Document, verbatim: Option<&str>) -> Result<Pool> {
        let root = &doc.root;
        let p = XPath::root("pool");
        let name = root
            .child("name")
            .map(|n| n.text().trim().to_string())
            .ok_or_else(|| doc.error_at(root, &p, "pool has no <name>"))?;
        let uuid = match root.child("uuid") {
            Some(u) => u
                .text()
                .parse()
                .map_err(|e: Error| doc.error_at(u, &p.named("uuid"), e.message().to_string()))?,
            None => Uuid::random(),
        };
        let xml = verbatim.map(str::to_string).unwrap_or_else(|| {
            let mut w = CanonicalWriter::new();
            w.element(root, 0);
            w.finish()
        });
        Ok(Pool {
            info: StoragePoolInfo {
                pool: StoragePoolRef { name, uuid },
                state: PoolState::Running,
                capacity: bytes_of(doc, "capacity")?,
                allocation: bytes_of(doc, "allocation")?,
                available: bytes_of(doc, "available")?,
                persistent: true,
                autostart: false,
            },
            vols: Vec::new(),
            xml,
        })
    }

    /// Adds a `<volume>` (name and target path).
    pub fn add_volume(&mut self, doc: &Document) {
        let root = &doc.root;
        let name = root.child("name").map(|n| n.text().trim().to_string());
        if let Some(name) = name {
            let path = root
                .child("target")
                .and_then(|t| t.child("path"))
                .map(|p| p.text().trim().to_string())
                .unwrap_or_default();
            self.vols.push(StorageVolRef { name, path });
        }
    }

    pub fn xml(&self) -> &str {
        &self.xml
    }

    pub fn matches(&self, f: PoolListFlags) -> bool {
        let i = &self.info;
        let active = i.state != PoolState::Inactive;
        let pair = |a: PoolListFlags, b: PoolListFlags, is_a: bool| {
            !(f.contains(a) || f.contains(b)) || (is_a && f.contains(a)) || (!is_a && f.contains(b))
        };
        pair(PoolListFlags::ACTIVE, PoolListFlags::INACTIVE, active)
            && pair(
                PoolListFlags::PERSISTENT,
                PoolListFlags::TRANSIENT,
                i.persistent,
            )
            && pair(
                PoolListFlags::AUTOSTART,
                PoolListFlags::NO_AUTOSTART,
                i.autostart,
            )
    }
}

/// The built-in interface and pool of `test:///default`.
pub(crate) fn builtin() -> Result<(Vec<Iface>, Vec<Pool>)> {
    let iface = Iface::from_doc(
        &xml::parse(crate::builtin::INTERFACE_ETH1)?,
        Some(crate::builtin::INTERFACE_ETH1),
    )?;
    let pool = Pool::from_doc(
        &xml::parse(crate::builtin::POOL_DEFAULT)?,
        Some(crate::builtin::POOL_DEFAULT),
    )?;
    Ok((vec![iface], vec![pool]))
}

pub(crate) fn no_interface(what: &str) -> Error {
    Error::new(ErrorKind::NoInterface, what.to_string()).in_domain(ErrorDomain::None)
}

pub(crate) fn no_pool(what: &str) -> Error {
    Error::new(ErrorKind::NoStoragePool, what.to_string())
}
