//! Guest memory: `-m` in whole MiB (libvirt rounds up), the RAM backend
//! object the machine's memory comes from, and memory locking.

use virtkit_core::domain::units;
use virtkit_core::xml::XPath;
use virtkit_core::{Error, ErrorKind, Result};

use super::machine::machine_name;
use super::{Gen, Props, unsupported};

/// `<memoryBacking>` children this builder can express.
const BACKING_SUPPORTED: &[&str] = &["nosharepages", "locked"];

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
    if domain.child("maxMemory").is_some() {
        return Err(unsupported(
            p.named("maxMemory"),
            "memory hotplug (<maxMemory>)",
        ));
    }
    let locked = match domain.child("memoryBacking") {
        Some(mb) => {
            if let Some(other) = mb
                .elements()
                .find(|e| !BACKING_SUPPORTED.contains(&e.name()))
            {
                return Err(unsupported(
                    p.named("memoryBacking").named(other.name()),
                    format!("memory backing <{}>", other.name()),
                ));
            }
            mb.child("locked").is_some()
        }
        None => false,
    };
    let mib = if cells.is_empty() {
        kib.div_ceil(1024)
    } else {
        cells.iter().map(|c| c.mib).sum()
    };
    g.a.opt("-m", mib.to_string());
    let machine = machine_name(g)?;
    if cells.is_empty()
        && let Some(ram) = g
            .ctx
            .caps
            .machine(g.ctx.accel.name(), &machine)
            .and_then(|m| m.default_ram_id.clone())
    {
        g.object(
            &Props::new()
                .set("qom-type", "memory-backend-ram")
                .set("id", ram)
                .set("size", mib * 1024 * 1024),
        );
    }
    g.a.opt(
        "-overcommit",
        if locked {
            "mem-lock=on"
        } else {
            "mem-lock=off"
        },
    );
    Ok(())
}
