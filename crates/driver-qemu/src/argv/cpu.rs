//! `-cpu` (model, features, paravirtual and Hyper-V enlightenments) and
//! `-smp` (vCPU count and topology).

use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::{Accel, Gen, Props, attr, comma, invalid, switch, unsupported};

/// libvirt's CPU feature names that QEMU spells differently.
const FEATURE_NAMES: &[(&str, &str)] = &[
    ("cmp_legacy", "cmp-legacy"),
    ("ds_cpl", "ds-cpl"),
    ("fxsr_opt", "fxsr-opt"),
    ("kvm_pv_eoi", "kvm-pv-eoi"),
    ("kvm_pv_unhalt", "kvm-pv-unhalt"),
    ("lahf_lm", "lahf-lm"),
    ("nodeid_msr", "nodeid-msr"),
    ("pclmuldq", "pclmulqdq"),
    ("perfctr_core", "perfctr-core"),
    ("perfctr_nb", "perfctr-nb"),
    ("tsc_adjust", "tsc-adjust"),
];

/// Hyper-V enlightenments that are plain on/off switches, in the order
/// libvirt writes them.
const HYPERV_SWITCHES: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
];

fn qemu_feature(name: &str) -> String {
    FEATURE_NAMES
        .iter()
        .find(|(l, _)| *l == name)
        .map_or_else(|| name.to_string(), |(_, q)| q.to_string())
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

/// The Hyper-V part of `-cpu`.
fn hyperv(hv: &Element, p: &XPath) -> Result<String> {
    let mut s = String::new();
    if switch(attr(hv, "state")) == Some(false) {
        return Ok(s);
    }
    if attr(hv, "mode").as_deref() == Some("passthrough") {
        return Ok(",hv-passthrough=on".into());
    }
    for el in hv.elements() {
        if !HYPERV_SWITCHES.contains(&el.name()) {
            return Err(unsupported(
                p.named(el.name()),
                format!("Hyper-V enlightenment <{}>", el.name()),
            ));
        }
    }
    for name in HYPERV_SWITCHES {
        let Some(el) = hv.child(name) else { continue };
        let on = switch(attr(el, "state")).unwrap_or(false);
        let qname = format!("hv-{}", name.replace('_', "-"));
        match *name {
            "spinlocks" if on => {
                let retries: u32 = attr(el, "retries")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                s.push_str(&format!(",{qname}=0x{retries:x}"));
            }
            "vendor_id" if on => {
                s.push_str(&format!(
                    ",{qname}={}",
                    comma(&attr(el, "value").unwrap_or_default())
                ));
            }
            "stimer" if on => {
                s.push_str(&format!(",{qname}=on"));
                if el
                    .child("direct")
                    .is_some_and(|d| switch(attr(d, "state")) == Some(true))
                {
                    s.push_str(",hv-stimer-direct=on");
                }
            }
            _ if on => s.push_str(&format!(",{qname}=on")),
            _ => {}
        }
    }
    Ok(s)
}

pub(crate) fn emit_cpu(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let domain = g.domain;
    let cpu = domain.child("cpu");
    let cp = p.named("cpu");
    let mode = cpu
        .and_then(|c| attr(c, "mode"))
        .unwrap_or_else(|| "custom".into());
    let mut spec = match mode.as_str() {
        "host-passthrough" => {
            if g.ctx.accel != Accel::Kvm {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    "CPU mode 'host-passthrough' needs KVM (<domain type='kvm'>); use a named model with TCG",
                ));
            }
            let mut s = "host".to_string();
            if g.has("cpu.migratable")
                && let Some(m) = cpu.and_then(|c| switch(attr(c, "migratable")))
            {
                s.push_str(&format!(",migratable={}", on_off(m)));
            }
            s
        }
        "maximum" => "max".to_string(),
        // libvirt expands host-model into the closest named model plus
        // features from its own CPU map; virtkit lets QEMU do it: the host
        // CPU limited to the features that can migrate.
        "host-model" => {
            if g.ctx.accel != Accel::Kvm {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "CPU mode 'host-model' ({}) needs KVM (<domain type='kvm'>); \
                         use a named model with TCG",
                        cp.attr("mode")
                    ),
                ));
            }
            if g.has("cpu.migratable") {
                "host,migratable=on".to_string()
            } else {
                "host".to_string()
            }
        }
        _ => {
            let model = cpu
                .and_then(|c| c.child("model"))
                .map(|m| m.text().trim().to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "qemu64".to_string());
            let known = g.ctx.caps.cpu_models.iter().any(|c| c.name == model);
            if !g.ctx.caps.cpu_models.is_empty() && !known {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!(
                        "CPU model '{model}' is not known to {}",
                        g.ctx.caps.binary.display()
                    ),
                ));
            }
            comma(&model)
        }
    };
    if let Some(c) = cpu {
        for el in c.elements() {
            if !matches!(
                el.name(),
                "model" | "feature" | "topology" | "vendor" | "numa"
            ) {
                return Err(unsupported(
                    cp.named(el.name()),
                    format!("CPU setting <{}>", el.name()),
                ));
            }
        }
        if c.child("vendor").is_some() {
            return Err(unsupported(cp.named("vendor"), "CPU vendor"));
        }
        for f in c.children_named("feature") {
            let name = attr(f, "name")
                .ok_or_else(|| invalid(cp.named("feature"), "a CPU feature needs a name"))?;
            let on = !matches!(
                attr(f, "policy").as_deref(),
                Some("disable") | Some("forbid")
            );
            spec.push_str(&format!(",{}={}", comma(&qemu_feature(&name)), on_off(on)));
        }
    }
    let features = domain.child("features");
    if let Some(eoi) = features
        .and_then(|f| f.child("apic"))
        .and_then(|a| switch(attr(a, "eoi")))
    {
        spec.push_str(&format!(",kvm-pv-eoi={}", on_off(eoi)));
    }
    if let Some(pv) = features.and_then(|f| f.child("pvspinlock")) {
        let on = switch(attr(pv, "state")).unwrap_or(true);
        spec.push_str(&format!(",kvm-pv-unhalt={}", on_off(on)));
    }
    if let Some(hv) = features.and_then(|f| f.child("hyperv")) {
        spec.push_str(&hyperv(hv, &p.named("features").named("hyperv"))?);
    }
    let hv_panic = g
        .devices
        .children_named("panic")
        .any(|pd| attr(pd, "model").as_deref() == Some("hyperv"));
    if hv_panic {
        spec.push_str(",hv-crash");
    }
    g.a.opt("-cpu", spec);
    Ok(())
}

pub(crate) fn emit_smp(g: &mut Gen<'_>, p: &XPath) -> Result<()> {
    let domain = g.domain;
    let vcpu = domain.child("vcpu");
    let max: u32 = vcpu.and_then(|v| v.text().trim().parse().ok()).unwrap_or(1);
    let current: u32 = vcpu
        .and_then(|v| attr(v, "current"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(max);
    let machine = super::machine::machine_name(g)?;
    if let Some(m) = g.ctx.caps.machine(g.ctx.accel.name(), &machine)
        && max > m.max_cpus
    {
        return Err(Error::new(
            ErrorKind::ConfigUnsupported,
            format!(
                "Maximum CPUs greater than specified machine type limit {}",
                m.max_cpus
            ),
        ));
    }
    if domain.child("vcpus").is_some() {
        return Err(unsupported(p.named("vcpus"), "per-vCPU settings (<vcpus>)"));
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
                t("dies").unwrap_or(1),
                t("cores").unwrap_or(1),
                t("threads").unwrap_or(1),
            );
            if s * d * c * th != max {
                return Err(invalid(
                    p.named("cpu").named("topology"),
                    format!(
                        "CPU topology doesn't match maximum vcpu count: {s} sockets x {d} dies x {c} cores x {th} threads != {max} vCPUs"
                    ),
                ));
            }
            smp.push_str(&format!(",sockets={s}"));
            if g.has("smp-dies") {
                smp.push_str(&format!(",dies={d}"));
            }
            smp.push_str(&format!(",cores={c},threads={th}"));
        }
        None => smp.push_str(&format!(",sockets={max},cores=1,threads=1")),
    }
    g.a.opt("-smp", smp);
    Ok(())
}

/// I/O threads (`-object iothread`, after `-smp`): the ids listed in
/// `<iothreadids>`, else 1 to `<iothreads>`; and the pool of QEMU's main
/// loop (`<defaultiothread>`).
pub(crate) fn emit_iothreads(g: &mut Gen<'_>) -> Result<()> {
    let domain = g.domain;
    let count: u32 = domain
        .child("iothreads")
        .and_then(|t| t.text().trim().parse().ok())
        .unwrap_or(0);
    let listed: Vec<&Element> = domain
        .child("iothreadids")
        .map(|ids| ids.children_named("iothread").collect())
        .unwrap_or_default();
    let pool = |e: &Element, p: Props| {
        p.opt(
            "thread-pool-min",
            attr(e, "thread_pool_min").and_then(|v| v.parse::<u64>().ok()),
        )
        .opt(
            "thread-pool-max",
            attr(e, "thread_pool_max").and_then(|v| v.parse::<u64>().ok()),
        )
    };
    if listed.is_empty() {
        for id in 1..=count {
            g.object(
                &Props::new()
                    .set("qom-type", "iothread")
                    .set("id", format!("iothread{id}")),
            );
        }
    } else {
        for t in listed {
            let id = attr(t, "id").unwrap_or_default();
            let o = Props::new()
                .set("qom-type", "iothread")
                .set("id", format!("iothread{id}"));
            g.object(&pool(t, o));
        }
    }
    if let Some(d) = domain.child("defaultiothread") {
        let o = Props::new()
            .set("qom-type", "main-loop")
            .set("id", "main-loop");
        g.object(&pool(d, o));
    }
    Ok(())
}
