//! `test:///ABSOLUTE/PATH.xml`: a whole fake host described by a `<node>`
//! document (libvirt's testnode format).
//!
//! Understood: `<domain>` and `<network>` (inline or `file='...'` relative to
//! the node file), a domain's `<test:runstate>` (libvirt's state number),
//! `<test:transient/>` and `<test:hasmanagedsave/>`, and the host's `<cpu>`
//! (`mhz`, `model`, `active`, `nodes`, `sockets`, `cores`, `threads`) and
//! `<memory>`, host `<interface>`s and storage `<pool>`s with their
//! `<volume>`s (read-only). Node devices are not modelled yet and are skipped.

use std::path::{Path, PathBuf};

use virtkit_core::domain::DomainDef;
use virtkit_core::files;
use virtkit_core::types::{paused_reason, running_reason, shutoff_reason};
use virtkit_core::xml::{self, Document, Element, ParseOptions, XPath};
use virtkit_core::{DomainState, Error, ErrorKind, Result};

use crate::host::{Iface, Pool};
use crate::node::Node;
use crate::state::{Dom, Net, TestState};

fn read(path: &Path) -> Result<Document> {
    let buf = files::read_limited(path, files::MAX_XML_FILE)
        .map_err(|e| Error::new(ErrorKind::ReadFailed, format!("{}: {e}", path.display())))?;
    xml::parse_with(
        &buf,
        &ParseOptions {
            source: Some(path.display().to_string()),
            ..ParseOptions::default()
        },
    )
}

/// The document an object element stands for: the referenced file, or the
/// element itself.
fn object_doc(el: &Element, base: &Path, source: &Option<String>) -> Result<Document> {
    match el.attr("file") {
        Some(f) => {
            let p = PathBuf::from(f.as_ref());
            read(&if p.is_absolute() { p } else { base.join(p) })
        }
        None => Ok(Document {
            prolog: Vec::new(),
            root: el.clone(),
            epilog: Vec::new(),
            source: source.clone(),
        }),
    }
}

fn test_ns_child<'a>(el: &'a Element, local: &str) -> Option<&'a Element> {
    el.elements()
        .find(|c| c.prefix().is_some() && c.local_name() == local)
}

/// Loads a node file into a fresh host.
pub(crate) fn load(path: &str) -> Result<TestState> {
    let path = Path::new(path);
    let doc = read(path)?;
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let root = &doc.root;
    if root.name() != "node" {
        return Err(doc.error_at(
            root,
            &XPath::root(root.name()),
            format!(
                "unexpected root element <{}>, expecting <node>",
                root.name()
            ),
        ));
    }
    let mut node = Node::builtin();
    let p = XPath::root("node");
    let mut doms = Vec::new();
    let mut nets = Vec::new();
    let mut ifaces = Vec::new();
    let mut pools = Vec::new();
    let mut next_id = 1;
    for el in root.elements() {
        match el.name() {
            "domain" => {
                let d = object_doc(el, &base, &doc.source)?;
                let runstate = test_ns_child(&d.root, "runstate")
                    .map(|r| {
                        r.text().trim().parse::<i32>().map_err(|_| {
                            d.error_at(
                                r,
                                &XPath::root("domain").named(r.name()),
                                "runstate must be a number (libvirt's domain state, e.g. 5 for shut off)",
                            )
                        })
                    })
                    .transpose()?
                    .map(DomainState::from_code)
                    .unwrap_or(DomainState::Running);
                let transient = test_ns_child(&d.root, "transient").is_some();
                let managed_save = test_ns_child(&d.root, "hasmanagedsave").is_some();
                let def = DomainDef::from_document(d)?;
                let mut dom = Dom::new(def, !transient);
                dom.managed_save = managed_save;
                dom.state = runstate;
                dom.reason = match runstate {
                    DomainState::Running => running_reason::UNKNOWN,
                    DomainState::Paused => paused_reason::UNKNOWN,
                    _ => shutoff_reason::UNKNOWN,
                };
                if runstate.is_active() {
                    dom.id = Some(next_id);
                    next_id += 1;
                }
                doms.push(dom);
            }
            "network" => {
                let mut net = Net::from_doc(object_doc(el, &base, &doc.source)?)?;
                net.active = true;
                nets.push(net);
            }
            "interface" => {
                ifaces.push(Iface::from_doc(&object_doc(el, &base, &doc.source)?, None)?);
            }
            "pool" => {
                let pdoc = object_doc(el, &base, &doc.source)?;
                let mut pool = Pool::from_doc(&pdoc, None)?;
                for v in el
                    .children_named("volume")
                    .chain(pdoc.root.children_named("volume"))
                {
                    pool.add_volume(&object_doc(v, &base, &doc.source)?);
                }
                pools.push(pool);
            }
            "cpu" => {
                let num = |name: &str| -> Result<Option<u32>> {
                    el.child(name)
                        .map(|c| {
                            c.text().trim().parse::<u32>().map_err(|_| {
                                doc.error_at(
                                    c,
                                    &p.named("cpu").named(name),
                                    format!("<{name}> must be a non-negative integer"),
                                )
                            })
                        })
                        .transpose()
                };
                let info = &mut node.info;
                if let Some(v) = num("mhz")? {
                    info.mhz = v;
                }
                if let Some(v) = num("active")? {
                    info.cpus = v;
                }
                if let Some(v) = num("nodes")? {
                    info.nodes = v;
                }
                if let Some(v) = num("sockets")? {
                    info.sockets = v;
                }
                if let Some(v) = num("cores")? {
                    info.cores = v;
                }
                if let Some(v) = num("threads")? {
                    info.threads = v;
                }
                if let Some(m) = el.child("model") {
                    info.model = m.text().trim().to_string();
                }
            }
            "memory" => {
                node.info.memory_kib = el.text().trim().parse().map_err(|_| {
                    doc.error_at(el, &p.named("memory"), "<memory> must be a number of KiB")
                })?;
            }
            _ => {}
        }
    }
    Ok(TestState::new(node, doms, nets, (ifaces, pools), next_id))
}
