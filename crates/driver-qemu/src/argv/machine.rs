//! The machine-wide part of the command line: machine type, accelerator,
//! CPU, memory, vCPU topology, identity, monitor, clock, boot.

use serde_json::json;
use virtkit_core::domain::units;
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::{Accel, Args, Context, comma, unsupported};

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// The machine type as written, or the binary's default.
pub(crate) fn machine_name(domain: &Element, ctx: &Context<'_>) -> Result<String> {
    let written = domain
        .child("os")
        .and_then(|o| o.child("type"))
        .and_then(|t| attr(t, "machine"));
    match written {
        Some(m) => {
            if ctx.caps.machine(ctx.accel.name(), &m).is_none() && !ctx.caps.machines.is_empty() {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "machine type '{m}' is not supported by {} with {} (see 'virtkit domcapabilities')",
                        ctx.caps.binary.display(),
                        ctx.accel.name()
                    ),
                ));
            }
            Ok(m)
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

fn has_feature(domain: &Element, name: &str) -> bool {
    domain.child("features").is_some_and(|f| {
        f.child(name)
            .is_some_and(|e| attr(e, "state").as_deref() != Some("off"))
    })
}

pub(crate) fn emit(a: &mut Args, domain: &Element, ctx: &Context<'_>, p: &XPath) -> Result<()> {
    let machine = machine_name(domain, ctx)?;
    let minfo = ctx.caps.machine(ctx.accel.name(), &machine);
    let ram_id = minfo
        .and_then(|m| m.default_ram_id.clone())
        .unwrap_or_else(|| "pc.ram".into());
    let is_x86_pc = machine.starts_with("pc") || machine == "q35";

    // Machine options.
    let mut mopts = comma(&machine);
    mopts.push_str(",usb=off");
    if is_x86_pc && has_feature(domain, "smm") {
        mopts.push_str(",smm=on");
    }
    mopts.push_str(",dump-guest-core=off");
    mopts.push_str(&format!(",memory-backend={}", comma(&ram_id)));
    if is_x86_pc && !has_feature(domain, "acpi") {
        mopts.push_str(",acpi=off");
    }
    a.opt("-machine", mopts);
    a.opt("-accel", ctx.accel.name());

    emit_cpu(a, domain, ctx, p)?;

    // Memory: whole MiB, backed by the machine's RAM object.
    let kib = domain
        .child("memory")
        .and_then(|m| units::element_kib(m).ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::XmlError,
                "Memory size must be specified via <memory> or in the <numa> configuration",
            )
        })?;
    let mib = kib.div_ceil(1024);
    a.opt("-m", mib.to_string());
    a.json(
        "-object",
        json!({"qom-type": "memory-backend-ram", "id": ram_id, "size": mib * 1024 * 1024}),
    );
    a.opt("-overcommit", "mem-lock=off");

    // vCPUs and topology.
    let vcpu = domain.child("vcpu");
    let max: u32 = vcpu.and_then(|v| v.text().trim().parse().ok()).unwrap_or(1);
    let current: u32 = vcpu
        .and_then(|v| attr(v, "current"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(max);
    if let Some(m) = minfo
        && max > m.max_cpus
    {
        return Err(Error::new(
            ErrorKind::ConfigUnsupported,
            format!(
                "{max} vCPUs requested, but machine '{machine}' supports at most {}",
                m.max_cpus
            ),
        ));
    }
    let topo = domain.child("cpu").and_then(|c| c.child("topology"));
    let t = |n: &str| {
        topo.and_then(|t| attr(t, n))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let mut smp = current.to_string();
    if current != max {
        smp.push_str(&format!(",maxcpus={max}"));
    }
    match topo {
        Some(_) => {
            let (s, d, c, th) = (
                t("sockets").unwrap_or(1),
                t("dies"),
                t("cores").unwrap_or(1),
                t("threads").unwrap_or(1),
            );
            if s * d.unwrap_or(1) * c * th != max {
                return Err(Error::new(
                    ErrorKind::XmlError,
                    format!(
                        "CPU topology doesn't match maximum vcpu count: {s} sockets x {} dies x {c} cores x {th} threads != {max} vCPUs",
                        d.unwrap_or(1)
                    ),
                ));
            }
            smp.push_str(&format!(",sockets={s}"));
            if let Some(d) = d {
                smp.push_str(&format!(",dies={d}"));
            }
            smp.push_str(&format!(",cores={c},threads={th}"));
        }
        None => smp.push_str(&format!(",sockets={max},cores=1,threads=1")),
    }
    a.opt("-smp", smp);

    if let Some(u) = domain.child("uuid") {
        a.opt("-uuid", u.text().trim().to_string());
    }
    let has_graphics = domain
        .child("devices")
        .is_some_and(|d| d.child("graphics").is_some());
    if !has_graphics {
        a.opt("-display", "none");
    }
    a.flag("-no-user-config");
    a.flag("-nodefaults");
    a.opt(
        "-chardev",
        format!(
            "socket,id=charmonitor,fd={},server=on,wait=off",
            ctx.monitor_fd
        ),
    );
    a.opt("-mon", "chardev=charmonitor,id=monitor,mode=control");

    // Clock.
    let clock = domain.child("clock");
    let offset = clock
        .and_then(|c| attr(c, "offset"))
        .unwrap_or_else(|| "utc".into());
    let base = match offset.as_str() {
        "utc" => "utc".to_string(),
        "localtime" => "localtime".to_string(),
        other => {
            return Err(unsupported(
                p.named("clock").attr("offset"),
                format!("clock offset '{other}'"),
            ));
        }
    };
    a.opt("-rtc", format!("base={base}"));
    a.flag("-no-shutdown");

    emit_boot(a, domain, p)?;
    Ok(())
}

fn emit_cpu(a: &mut Args, domain: &Element, ctx: &Context<'_>, p: &XPath) -> Result<()> {
    let arch = domain
        .child("os")
        .and_then(|o| o.child("type"))
        .and_then(|t| attr(t, "arch"))
        .unwrap_or_else(|| "x86_64".into());
    let default_model = if arch == "i686" { "qemu32" } else { "qemu64" };
    let cpu = domain.child("cpu");
    let mode = cpu
        .and_then(|c| attr(c, "mode"))
        .unwrap_or_else(|| "custom".into());
    let mut spec = match mode.as_str() {
        "host-passthrough" => {
            if ctx.accel != Accel::Kvm {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    "CPU mode 'host-passthrough' needs KVM (<domain type='kvm'>); use a named model with TCG",
                ));
            }
            "host".to_string()
        }
        "maximum" => "max".to_string(),
        "host-model" => {
            return Err(unsupported(
                p.named("cpu").attr("mode"),
                "CPU mode 'host-model'",
            ));
        }
        _ => {
            let model = cpu
                .and_then(|c| c.child("model"))
                .map(|m| m.text().trim().to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| default_model.to_string());
            if !ctx.caps.cpu_models.is_empty()
                && !ctx.caps.cpu_models.iter().any(|c| c.name == model)
                && model != default_model
            {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "CPU model '{model}' is not known to {}",
                        ctx.caps.binary.display()
                    ),
                ));
            }
            comma(&model)
        }
    };
    if let Some(c) = cpu {
        for f in c.children_named("feature") {
            let name = attr(f, "name").unwrap_or_default();
            let sign = match attr(f, "policy").as_deref() {
                Some("disable") | Some("forbid") => "-",
                _ => "+",
            };
            spec.push_str(&format!(",{sign}{}", comma(&name)));
        }
    }
    a.opt("-cpu", spec);
    Ok(())
}

fn emit_boot(a: &mut Args, domain: &Element, p: &XPath) -> Result<()> {
    let os = domain.child("os");
    let mut boot = String::new();
    // Boot order itself is expressed with bootindex on the devices.
    if let Some(menu) = os.and_then(|o| o.child("bootmenu"))
        && attr(menu, "enable").as_deref() == Some("yes")
    {
        boot.push_str("menu=on,");
    }
    boot.push_str("strict=on");
    a.opt("-boot", boot);
    for (el, flag) in [
        ("kernel", "-kernel"),
        ("initrd", "-initrd"),
        ("cmdline", "-append"),
    ] {
        if let Some(v) = os.and_then(|o| o.child(el)) {
            let text = v.text();
            if el != "cmdline" && text.trim().is_empty() {
                return Err(Error::new(
                    ErrorKind::XmlError,
                    format!("<{el}> is empty ({})", p.named("os").named(el)),
                ));
            }
            a.opt(flag, text.trim().to_string());
        }
    }
    Ok(())
}
