//! Guest memory: `-m` in whole MiB (libvirt rounds up; with `<maxMemory>`
//! the initial size, the hotplug slots and the maximum), the RAM backend
//! object the machine's memory comes from (module `membackend`), memory
//! locking, and memory devices (`<memory model='dimm|nvdimm|virtio-mem'>`,
//! each a backend object and a device).

use virtkit_core::domain::units;
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::machine::machine_name;
use super::membackend::{self, Backing};
use super::{Gen, Props, attr, invalid, unsupported};
use crate::profile::address::parse_num;

pub(crate) fn emit(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let domain = g.domain;
    let kib = domain
        .child("memory")
        .and_then(|m| units::element_kib(m).ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::XmlError,
                "Memory size must be specified via <memory> or in the <numa> configuration",
            )
        })?;
    // With NUMA cells the memory is theirs, each rounded up to whole MiB.
    let cells = super::numa::cells(domain, p)?;
    let backing = Backing::of(domain, p)?;
    let mib = if cells.is_empty() {
        kib.div_ceil(1024)
    } else {
        cells.iter().map(|c| c.mib).sum()
    };
    let devices = g.devices.children_named("memory").count();
    match domain.child("maxMemory") {
        Some(max) => {
            let mp = p.named("maxMemory");
            let max_kib = units::element_kib(max).map_err(|e| invalid(&mp, e))?;
            let slots = attr(max, "slots").unwrap_or_else(|| "0".into());
            let slots: u32 = slots
                .parse()
                .map_err(|_| invalid(mp.attr("slots"), format!("bad slot count '{slots}'")))?;
            if cells.is_empty() {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "At least one numa node has to be configured when enabling memory \
                         hotplug ({mp}): add <cpu><numa><cell .../></numa></cpu>"
                    ),
                ));
            }
            g.a.opt(
                "-m",
                format!("size={}k,slots={slots},maxmem={max_kib}k", mib * 1024),
            );
        }
        None if devices > 0 => {
            return Err(Error::new(
                ErrorKind::ConfigUnsupported,
                format!(
                    "cannot use a memory device when the domain has no <maxMemory> ({}): \
                     add <maxMemory slots='N'> with the largest size the guest may reach",
                    p.named("maxMemory")
                ),
            ));
        }
        None => g.a.opt("-m", mib.to_string()),
    }
    let machine = machine_name(g)?;
    if cells.is_empty()
        && let Some(ram) = g
            .ctx
            .caps
            .machine(g.ctx.accel.name(), &machine)
            .and_then(|m| m.default_ram_id.clone())
    {
        membackend::emit(
            g,
            &backing,
            &membackend::Request {
                id: &ram,
                file_name: &ram,
                system: true,
                size_bytes: mib * 1024 * 1024,
                ..Default::default()
            },
            p,
        )?;
    }
    g.a.opt(
        "-overcommit",
        if backing.locked {
            "mem-lock=on"
        } else {
            "mem-lock=off"
        },
    );
    Ok(())
}

/// Memory device models this builder expresses, with their alias prefix
/// and QEMU device.
const MODELS: &[(&str, &str, &str)] = &[
    ("dimm", "dimm", "pc-dimm"),
    ("nvdimm", "nvdimm", "nvdimm"),
    ("virtio-mem", "virtiomem", "virtio-mem-pci"),
];

/// A `<size>`-like child of `e` in KiB.
fn kib_of(e: &Element, child: &str, p: &XPath) -> Result<Option<u64>> {
    e.child(child)
        .map(|c| units::element_kib(c).map_err(|m| invalid(p.named(child), m)))
        .transpose()
}

/// The memory devices (`-object` backend then `-device`), after the
/// controllers.
pub(crate) fn emit_devices(g: &mut Gen<'_>) -> Result<()> {
    let domain = g.domain;
    let root = XPath::root("domain");
    let backing = Backing::of(domain, &root)?;
    let cells = super::numa::cells(domain, &root)?;
    let mut counts: Vec<(&str, u32)> = Vec::new();
    for dev in g.devices.children_named("memory") {
        let p = g.path(dev);
        let model = attr(dev, "model").unwrap_or_default();
        let Some(&(_, prefix, driver)) = MODELS.iter().find(|(m, _, _)| *m == model) else {
            return Err(unsupported(
                p.attr("model"),
                format!("memory device model '{model}'"),
            ));
        };
        let tp = p.named("target");
        let target = dev
            .child("target")
            .ok_or_else(|| invalid(&tp, "a memory device needs a <target> with its <size>"))?;
        if let Some(other) = target.elements().find(|e| {
            ![
                "size",
                "node",
                "label",
                "readonly",
                "block",
                "requested",
                "current",
            ]
            .contains(&e.name())
        }) {
            return Err(unsupported(
                tp.named(other.name()),
                format!("memory device target <{}>", other.name()),
            ));
        }
        let size = kib_of(target, "size", &tp)?
            .ok_or_else(|| invalid(tp.named("size"), "a memory device needs a size"))?;
        let node = match target.child("node") {
            Some(n) => Some(parse_num(&n.text()).ok_or_else(|| {
                invalid(tp.named("node"), format!("bad NUMA node '{}'", n.text()))
            })?),
            None => None,
        };
        let sp = p.named("source");
        let source = dev.child("source");
        if let Some(other) = source.and_then(|s| {
            s.elements()
                .find(|e| !["nodemask", "pagesize", "path"].contains(&e.name()))
        }) {
            return Err(unsupported(
                sp.named(other.name()),
                format!("memory device source <{}>", other.name()),
            ));
        }
        let path = source
            .and_then(|s| s.child("path"))
            .map(|e| e.text().trim().to_string());
        if model == "nvdimm" && path.is_none() {
            return Err(invalid(
                sp.named("path"),
                "an NVDIMM needs a <source><path>",
            ));
        }
        let page_kib = match source {
            Some(s) => kib_of(s, "pagesize", &sp)?,
            None => None,
        };
        let binding = match source.and_then(|s| s.child("nodemask")) {
            Some(m) => Some((
                super::numa::parse_bitmap(&m.text()).ok_or_else(|| {
                    invalid(sp.named("nodemask"), format!("bad node set '{}'", m.text()))
                })?,
                "bind",
            )),
            None => match node {
                Some(n) => super::numa::binding(domain, n, &root)?,
                None => None,
            },
        };
        let slot = dev
            .child("address")
            .filter(|a| attr(a, "type").as_deref() == Some("dimm"))
            .and_then(|a| attr(a, "slot"))
            .and_then(|s| parse_num(&s));
        let n = match counts.iter_mut().find(|(pf, _)| *pf == prefix) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                counts.push((prefix, 1));
                0
            }
        };
        let alias = format!(
            "{prefix}{}",
            slot.filter(|_| model != "virtio-mem").unwrap_or(n)
        );
        let mem_id = format!("mem{alias}");
        // The device's own settings, else those of its guest node's cell.
        let (_, discard) = super::membackend::cell_settings(dev, &p)?;
        let cell = cells.iter().find(|c| Some(c.id) == node);
        let discard = discard.or(cell.and_then(|c| c.discard));
        let mem_access = membackend::access_mode(attr(dev, "access"), &p.attr("access"))?
            .or(cell.and_then(|c| c.mem_access));
        // QEMU maps memory devices in 2 MiB steps on x86.
        let aligned = match model.as_str() {
            "virtio-mem" => size,
            _ => size.div_ceil(2048) * 2048,
        };
        let prealloc = membackend::emit(
            g,
            &backing,
            &membackend::Request {
                id: &mem_id,
                file_name: &alias,
                cell: node,
                size_bytes: aligned * 1024,
                mem_access,
                discard,
                binding,
                page_kib,
                path,
                device_prealloc: model == "virtio-mem",
                ..Default::default()
            },
            &p,
        )?;
        let mut d = Props::new().set("driver", driver).opt("node", node);
        match model.as_str() {
            "nvdimm" => {
                if let Some(label) = target.child("label") {
                    let lp = tp.named("label");
                    if let Some(kib) = kib_of(label, "size", &lp)? {
                        d.put("label-size", kib * 1024);
                    }
                }
                if target.child("readonly").is_some() {
                    d.put("unarmed", true);
                }
            }
            "virtio-mem" => {
                if let Some(b) = kib_of(target, "block", &tp)? {
                    d.put("block-size", b * 1024);
                }
                if let Some(r) = kib_of(target, "requested", &tp)? {
                    d.put("requested-size", r * 1024);
                }
            }
            _ => {}
        }
        d.put("memdev", mem_id.clone());
        if model == "virtio-mem" && prealloc {
            d.put("prealloc", true);
        }
        d.put("id", alias.clone());
        let d = match slot {
            Some(s) if model != "virtio-mem" => {
                // A fixed guest physical address (`base`), in bytes.
                let base = dev
                    .child("address")
                    .and_then(|a| attr(a, "base"))
                    .map(|b| {
                        let hex = b.strip_prefix("0x").or_else(|| b.strip_prefix("0X"));
                        match hex {
                            Some(h) => u64::from_str_radix(h, 16),
                            None => b.parse(),
                        }
                        .map_err(|_| {
                            invalid(
                                p.named("address").attr("base"),
                                format!("bad address '{b}'"),
                            )
                        })
                    })
                    .transpose()?;
                d.set("slot", s).opt("addr", base)
            }
            _ => super::address::pci(g, dev, d),
        };
        g.device(&d);
    }
    Ok(())
}
