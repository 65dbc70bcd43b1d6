//! The machine-wide part of the command line: machine type and its
//! options, accelerator, identity, monitor, clock and power management.

use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::{Accel, Gen, Opts, attr, comma, invalid, switch, unsupported};
use crate::profile::machine::Chipset;

/// The machine type for the command line: the binary's canonical name for
/// what the definition names (libvirt resolves aliases such as `pc` when it
/// parses), or the binary's default.
pub(crate) fn machine_name(g: &Gen<'_>) -> Result<String> {
    let ctx = g.ctx;
    let written = g
        .domain
        .child("os")
        .and_then(|o| o.child("type"))
        .and_then(|t| attr(t, "machine"));
    match written {
        Some(m) => {
            if ctx.caps.machines.is_empty() {
                return Ok(m);
            }
            match ctx.caps.machine(ctx.accel.name(), &m) {
                Some(found) => Ok(found.name.clone()),
                None => Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "machine type '{m}' is not supported by {} with {} (see 'virtkit domcapabilities')",
                        ctx.caps.binary.display(),
                        ctx.accel.name()
                    ),
                )),
            }
        }
        None if ctx.caps.machines.is_empty() => Ok("pc".into()),
        None => ctx
            .caps
            .default_machine(ctx.accel.name())
            .map(|m| m.name.clone())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "{} has no default machine type; give <type machine=..>",
                        ctx.caps.binary.display()
                    ),
                )
            }),
    }
}

/// `<features><NAME state=..>`: `Some(true)` when present and not off.
pub(crate) fn feature(domain: &Element, name: &str) -> Option<bool> {
    let f = domain.child("features")?.child(name)?;
    Some(switch(attr(f, "state")).unwrap_or(true))
}

/// Whether the guest uses NUMA cells (memory then comes per node).
pub(crate) fn has_numa(domain: &Element) -> bool {
    domain
        .child("cpu")
        .and_then(|c| c.child("numa"))
        .is_some_and(|n| n.child("cell").is_some())
}

/// `<timer name=..>` of `<clock>`.
fn timer<'a>(domain: &'a Element, name: &str) -> Option<&'a Element> {
    domain
        .child("clock")?
        .children_named("timer")
        .find(|t| attr(t, "name").as_deref() == Some(name))
}

/// Features whose presence this builder cannot express yet.
/// Features this builder expresses (here, in `-cpu`, or needing nothing).
const FEATURES: &[&str] = &[
    "acpi",
    "apic",
    "pae",
    "smm",
    "vmport",
    "ioapic",
    "hyperv",
    "pvspinlock",
    "tcg",
];

/// Top-level elements of `<domain>` the builder reads (or that need no
/// option). Host-side tuning (`cputune`, `memtune`, `blkiotune`,
/// `resource`, `seclabel`, `perf`) is applied by the runtime, not on the
/// command line, and passes here.
const DOMAIN_CHILDREN: &[&str] = &[
    "name",
    "uuid",
    "genid",
    "title",
    "description",
    "metadata",
    "maxMemory",
    "memory",
    "currentMemory",
    "memoryBacking",
    "vcpu",
    "vcpus",
    "iothreads",
    "iothreadids",
    "defaultiothread",
    "numatune",
    "os",
    "features",
    "cpu",
    "clock",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "pm",
    "devices",
    "cputune",
    "memtune",
    "blkiotune",
    "resource",
    "seclabel",
    "perf",
    // Container id maps mean nothing to QEMU (libvirt ignores them too).
    "idmap",
];

/// Fails on a top-level element the command line would need but the
/// builder does not express (`<sysinfo>`, `<launchSecurity>`,
/// `<qemu:commandline>`...).
pub(crate) fn check_domain_children(g: &Gen<'_>, p: &XPath) -> Result<()> {
    if let Some(other) = g
        .domain
        .elements()
        .find(|e| !DOMAIN_CHILDREN.contains(&e.name()))
    {
        return Err(unsupported(
            p.named(other.name()),
            format!("<{}>", other.name()),
        ));
    }
    Ok(())
}

/// `-machine` (with `flash`, the options attaching flash firmware) and
/// `-accel`.
pub(crate) fn emit(g: &mut Gen<'_>, p: &XPath, flash: &str) -> Result<()> {
    let domain = g.domain;
    let machine = machine_name(g)?;
    let minfo = g.ctx.caps.machine(g.ctx.accel.name(), &machine);
    let x86_pc = g.chipset != Chipset::Other;

    if let Some(f) = domain.child("features") {
        for el in f.elements() {
            let name = el.name();
            if !FEATURES.contains(&name) {
                return Err(unsupported(
                    p.named("features").named(name),
                    format!("feature <{name}>"),
                ));
            }
        }
        if let Some(tcg) = f.child("tcg")
            && let Some(other) = tcg.elements().find(|e| e.name() != "tb-cache")
        {
            return Err(unsupported(
                p.named("features").named("tcg").named(other.name()),
                "TCG setting",
            ));
        }
    }

    let mut m = comma(&machine);
    m.push_str(",usb=off");
    if let Some(v) = feature(domain, "vmport") {
        m.push_str(if v { ",vmport=on" } else { ",vmport=off" });
    }
    // An explicit SMM TSEG size (in MiB once normalised) is the q35
    // chipset's `mch.extended-tseg-mbytes`, given after `-accel`.
    let mut tseg_mib = None;
    if x86_pc && let Some(v) = feature(domain, "smm") {
        if let Some(t) = domain
            .child("features")
            .and_then(|f| f.child("smm"))
            .and_then(|s| s.child("tseg"))
        {
            let tp = p.named("features").named("smm").named("tseg");
            if g.chipset != Chipset::Q35 {
                return Err(unsupported(&tp, "SMM TSEG size outside a q35 machine"));
            }
            let mib = virtkit_core::domain::units::parse_scaled(
                &t.text(),
                attr(t, "unit").as_deref(),
                1 << 20,
            )
            .map_err(|e| invalid(&tp, e))?
                >> 20;
            tseg_mib = Some(mib);
        }
        m.push_str(if v { ",smm=on" } else { ",smm=off" });
    }
    let ioapic_driver = domain
        .child("features")
        .and_then(|f| f.child("ioapic"))
        .and_then(|i| attr(i, "driver"));
    // Interrupt remapping by the IOMMU needs the split irqchip.
    if ioapic_driver.is_none() && super::iommu::remaps_interrupts(domain) {
        m.push_str(",kernel_irqchip=split");
    }
    if let Some(ioapic) = domain.child("features").and_then(|f| f.child("ioapic")) {
        match attr(ioapic, "driver").as_deref() {
            Some("qemu") => m.push_str(",kernel_irqchip=split"),
            Some("kvm") => m.push_str(",kernel_irqchip=on"),
            _ => {}
        }
    }
    let dump_core = domain
        .child("memory")
        .and_then(|mm| switch(attr(mm, "dumpCore")))
        .unwrap_or(false);
    m.push_str(if dump_core {
        ",dump-guest-core=on"
    } else {
        ",dump-guest-core=off"
    });
    if domain
        .child("memoryBacking")
        .is_some_and(|mb| mb.child("nosharepages").is_some())
    {
        m.push_str(",mem-merge=off");
    }
    if let Some(ram) = minfo.and_then(|mi| mi.default_ram_id.as_ref())
        && !has_numa(domain)
    {
        m.push_str(&format!(",memory-backend={}", comma(ram)));
    }
    if g.devices
        .children_named("memory")
        .any(|d| d.attr("model").as_deref() == Some("nvdimm"))
    {
        m.push_str(",nvdimm=on");
    }
    m.push_str(flash);
    let hpet_off = timer(domain, "hpet").is_some_and(|t| switch(attr(t, "present")) == Some(false));
    if hpet_off && g.has("machine-hpet") {
        m.push_str(",hpet=off");
    }
    let acpi = feature(domain, "acpi").unwrap_or(false);
    if x86_pc && !acpi && !g.has("no-acpi") {
        m.push_str(",acpi=off");
    }
    g.a.opt("-machine", m);

    let mut accel = Opts::new(g.ctx.accel.name());
    if g.ctx.accel == Accel::Tcg
        && let Some(tb) = domain
            .child("features")
            .and_then(|f| f.child("tcg"))
            .and_then(|t| t.child("tb-cache"))
    {
        let mib = virtkit_core::domain::units::element_kib(tb)
            .map_err(|e| invalid(p.named("features").named("tcg"), e))?
            / 1024;
        accel = accel.kv("tb-size", mib);
    }
    g.a.opt("-accel", accel.finish());
    if let Some(mib) = tseg_mib {
        g.a.opt("-global", format!("mch.extended-tseg-mbytes={mib}"));
    }
    Ok(())
}

/// `-uuid`, `-display none` for a guest without graphics, and the flags
/// that keep QEMU from adding devices of its own.
pub(crate) fn emit_identity(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    if let Some(u) = g.domain.child("uuid") {
        g.a.opt("-uuid", u.text().trim().to_string());
    }
    if let Some(genid) = g.domain.child("genid") {
        let guid = genid.text().trim().to_string();
        if guid.is_empty() {
            return Err(unsupported(
                p.named("genid"),
                "a generated VM generation ID",
            ));
        }
        g.require(
            "vmgenid",
            "this QEMU does not support the 'genid' capability",
        )?;
        g.device(
            &super::Props::new()
                .set("driver", "vmgenid")
                .set("guid", guid)
                .set("id", "vmgenid0"),
        );
    }
    if g.devices.child("graphics").is_none() {
        g.a.opt("-display", "none");
    }
    g.a.flag("-no-user-config");
    g.a.flag("-nodefaults");
    Ok(())
}

/// Unix time as libvirt formats `-rtc base=`: `YYYY-MM-DDTHH:MM:SS` (UTC).
fn rtc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// PM option names per chipset: (ACPI device, S3 property, S4 property).
fn pm_device(chipset: Chipset) -> Option<&'static str> {
    match chipset {
        Chipset::I440fx => Some("PIIX4_PM"),
        Chipset::Q35 => Some("ICH9-LPC"),
        Chipset::Other => None,
    }
}

/// Monitor, real-time clock, reboot/shutdown behaviour, ACPI and the
/// suspend states.
pub(crate) fn emit_monitor_clock_pm(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let domain = g.domain;
    g.a.opt(
        "-chardev",
        format!(
            "socket,id=charmonitor,fd={},server=on,wait=off",
            g.ctx.monitor_fd
        ),
    );
    g.a.opt("-mon", "chardev=charmonitor,id=monitor,mode=control");

    let cp = p.named("clock");
    let clock = domain.child("clock");
    let offset = clock
        .and_then(|c| attr(c, "offset"))
        .unwrap_or_else(|| "utc".into());
    let mut rtc = match offset.as_str() {
        "utc" => "base=utc".to_string(),
        "localtime" => "base=localtime".to_string(),
        "absolute" => {
            let start: i64 = clock
                .and_then(|c| attr(c, "start"))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    invalid(cp.attr("start"), "an absolute clock needs start=SECONDS")
                })?;
            format!("base={}", rtc_date(start))
        }
        other => {
            return Err(unsupported(
                cp.attr("offset"),
                format!("clock offset '{other}'"),
            ));
        }
    };
    for t in clock.into_iter().flat_map(|c| c.children_named("timer")) {
        let name = attr(t, "name").unwrap_or_default();
        let tp = cp.named("timer");
        match name.as_str() {
            "rtc" => {
                if let Some(track) = attr(t, "track") {
                    let clock = match track.as_str() {
                        "guest" => "vm",
                        "wall" => "rt",
                        "host" => "host",
                        other => {
                            return Err(unsupported(
                                tp.attr("track"),
                                format!("RTC track '{other}'"),
                            ));
                        }
                    };
                    rtc.push_str(&format!(",clock={clock}"));
                }
                match attr(t, "tickpolicy").as_deref() {
                    None | Some("delay") => {}
                    Some("catchup") => rtc.push_str(",driftfix=slew"),
                    Some(other) => {
                        return Err(unsupported(
                            tp.attr("tickpolicy"),
                            format!("RTC tick policy '{other}'"),
                        ));
                    }
                }
            }
            "pit" | "hpet" => {}
            other => return Err(unsupported(tp.attr("name"), format!("timer '{other}'"))),
        }
    }
    g.a.opt("-rtc", rtc);
    if let Some(pit) = timer(domain, "pit") {
        match attr(pit, "tickpolicy").as_deref() {
            None => {}
            Some("delay") => g.a.opt("-global", "kvm-pit.lost_tick_policy=delay"),
            Some("discard") => g.a.opt("-global", "kvm-pit.lost_tick_policy=discard"),
            Some(other) => {
                return Err(unsupported(
                    cp.named("timer").attr("tickpolicy"),
                    format!("PIT tick policy '{other}'"),
                ));
            }
        }
    }
    let hpet_off = timer(domain, "hpet").is_some_and(|t| switch(attr(t, "present")) == Some(false));
    if hpet_off && !g.has("machine-hpet") {
        g.a.flag("-no-hpet");
    }

    let action = |name: &str, default: &str| {
        domain
            .child(name)
            .map(|e| e.text().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    // When every lifecycle event destroys the domain, QEMU may simply exit
    // on reboot, and nothing needs it kept alive after shutdown. Binaries
    // with QMP `set-action` get that at start instead (libvirt's choice),
    // so the flag is only for older ones.
    let crash = action("on_crash", "destroy");
    if !g.has("set-action")
        && action("on_reboot", "restart") == "destroy"
        && action("on_poweroff", "destroy") == "destroy"
        && (crash == "destroy" || crash == "coredump-destroy")
    {
        g.a.flag("-no-reboot");
    } else {
        g.a.flag("-no-shutdown");
    }
    let acpi = feature(domain, "acpi").unwrap_or(false);
    if g.chipset != Chipset::Other && !acpi && g.has("no-acpi") {
        g.a.flag("-no-acpi");
    }
    if let Some(pm) = domain.child("pm") {
        let dev = pm_device(g.chipset)
            .ok_or_else(|| unsupported(p.named("pm"), "suspend settings on this machine"))?;
        let prefix = if g.chipset == Chipset::Q35 {
            "ich9-"
        } else {
            ""
        };
        for (el, state, prop) in [
            ("suspend-to-mem", "S3", "disable_s3"),
            ("suspend-to-disk", "S4", "disable_s4"),
        ] {
            if let Some(v) = pm.child(el).and_then(|e| switch(attr(e, "enabled"))) {
                g.require(
                    &format!("{prefix}disable-{}", state.to_lowercase()),
                    format!("setting ACPI {state} not supported"),
                )?;
                g.a.opt("-global", format!("{dev}.{prop}={}", if v { 0 } else { 1 }));
            }
        }
    }
    Ok(())
}

/// Chipset-wide settings of PCI controllers (`-global`), after `-boot`.
pub(crate) fn emit_global_controller_settings(g: &mut Gen<'_>) -> Result<()> {
    let root = g.devices.children_named("controller").find(|c| {
        attr(c, "type").as_deref() == Some("pci") && attr(c, "model").as_deref() == Some("pci-root")
    });
    if let Some(hotplug) = root
        .and_then(|r| r.child("target"))
        .and_then(|t| switch(attr(t, "hotplug")))
    {
        if g.chipset != Chipset::I440fx {
            return Err(unsupported(
                g.dp.named("controller").named("target"),
                "hotplug settings of this PCI root",
            ));
        }
        g.require(
            "piix4.acpi-root-pci-hotplug",
            "setting the 'hotplug' property on a 'pci-root' device is not supported by this QEMU binary",
        )?;
        g.a.opt(
            "-global",
            format!(
                "PIIX4_PM.acpi-root-pci-hotplug={}",
                if hotplug { "on" } else { "off" }
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtc_dates_are_utc_civil_dates() {
        assert_eq!(rtc_date(1_234_567_890), "2009-02-13T23:31:30");
        assert_eq!(rtc_date(253_402_300_799), "9999-12-31T23:59:59");
        assert_eq!(rtc_date(0), "1970-01-01T00:00:00");
    }
}
