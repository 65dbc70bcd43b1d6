//! Guest memory: `-m` in whole MiB (libvirt rounds up), the RAM backend
//! object the machine's memory comes from (module `membackend`), and
//! memory locking.

use virtkit_core::domain::units;
use virtkit_core::xml::XPath;
use virtkit_core::{Error, ErrorKind, Result};

use super::machine::machine_name;
use super::membackend::{self, Backing};
use super::{Gen, unsupported};

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
    let backing = Backing::of(domain, p)?;
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
        membackend::emit(
            g,
            &backing,
            &membackend::Request {
                id: &ram,
                cell: None,
                size_bytes: mib * 1024 * 1024,
                mem_access: None,
                discard: None,
                binding: None,
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
