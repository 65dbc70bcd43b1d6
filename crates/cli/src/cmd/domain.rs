//! Domain commands: list, dominfo, domstate, lifecycle, define/undefine,
//! dumpxml, autostart.

use serde::Serialize;
use virtkit::{
    CreateFlags, DefineFlags, DestroyFlags, Domain, DomainState, ListFlags, RebootFlags,
    ShutdownFlags, UndefineFlags, XmlFlags,
};

use super::spec::Call;
use super::{By, CmdResult, Ctx, Failure, read_xml_file};
use crate::table::Table;

/// One row of `list`, also its JSON form.
#[derive(Serialize)]
struct ListItem {
    id: Option<u32>,
    name: String,
    uuid: String,
    state: &'static str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
}

fn list_flags(call: &Call) -> ListFlags {
    let mut f = if call.flag("all") {
        ListFlags::ACTIVE | ListFlags::INACTIVE
    } else if call.flag("inactive") {
        ListFlags::INACTIVE
    } else {
        ListFlags::ACTIVE
    };
    for (opt, bit) in [
        ("persistent", ListFlags::PERSISTENT),
        ("transient", ListFlags::TRANSIENT),
        ("state-running", ListFlags::RUNNING),
        ("state-paused", ListFlags::PAUSED),
        ("state-shutoff", ListFlags::SHUTOFF),
        ("state-other", ListFlags::OTHER),
        ("autostart", ListFlags::AUTOSTART),
        ("no-autostart", ListFlags::NO_AUTOSTART),
        ("with-managed-save", ListFlags::MANAGEDSAVE),
        ("without-managed-save", ListFlags::NO_MANAGEDSAVE),
        ("with-snapshot", ListFlags::HAS_SNAPSHOT),
        ("without-snapshot", ListFlags::NO_SNAPSHOT),
    ] {
        if call.flag(opt) {
            f |= bit;
        }
    }
    f
}

/// virsh's order: running domains by id, then the others by name
/// (case-insensitive).
fn sort_domains(doms: &mut [Domain]) {
    doms.sort_by(|a, b| match (a.id(), b.id()) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a
            .name()
            .to_ascii_lowercase()
            .cmp(&b.name().to_ascii_lowercase()),
    });
}

fn exclusive(call: &Call, a: &str, b: &str) -> CmdResult {
    if call.flag(a) && call.flag(b) {
        return Err(Failure::msg(format!(
            "Options --{a} and --{b} are mutually exclusive"
        )));
    }
    Ok(())
}

pub async fn list(ctx: &mut Ctx, call: &Call) -> CmdResult {
    for other in ["name", "uuid", "id"] {
        exclusive(call, "table", other)?;
    }
    exclusive(call, "with-checkpoint", "without-checkpoint")?;
    let conn = ctx.conn().await?.clone();
    let mut doms = conn
        .list_domains(list_flags(call))
        .await
        .map_err(|e| Failure::with("Failed to list domains", &e))?;
    if call.flag("with-checkpoint") {
        // No driver has checkpoints yet.
        doms.clear();
    }
    sort_domains(&mut doms);

    let mut items = Vec::with_capacity(doms.len());
    for d in &doms {
        let (state, reason) = d.state().await?;
        let saved = call.flag("managed-save")
            && state == DomainState::Shutoff
            && conn
                .domains()?
                .has_managed_save(d.handle())
                .await
                .unwrap_or(false);
        let title = if call.flag("title") {
            Some(domain_title(d).await?)
        } else {
            None
        };
        items.push(ListItem {
            id: d.id(),
            name: d.name().to_string(),
            uuid: d.uuid().to_string(),
            state: if saved { "saved" } else { state.as_str() },
            reason: state.reason_str(reason),
            title,
        });
    }

    if call.flag("json") {
        return ctx.json(&items);
    }
    let (by_uuid, by_name, by_id) = (call.flag("uuid"), call.flag("name"), call.flag("id"));
    if by_uuid || by_name || by_id {
        for it in &items {
            if by_id && !by_uuid && !by_name {
                if let Some(id) = it.id {
                    ctx.println(&id.to_string());
                }
                continue;
            }
            let mut parts = Vec::new();
            if by_uuid {
                parts.push(it.uuid.clone());
            }
            if by_id {
                parts.push(it.id.map_or("-".to_string(), |i| i.to_string()));
            }
            if by_name {
                parts.push(it.name.clone());
            }
            ctx.println(&parts.join(" "));
        }
        return Ok(());
    }
    let mut header = vec!["Id", "Name", "State"];
    if call.flag("title") {
        header.push("Title");
    }
    let mut t = Table::new(&header);
    for it in items {
        let mut row = vec![
            it.id.map_or("-".to_string(), |i| i.to_string()),
            it.name,
            it.state.to_string(),
        ];
        if let Some(title) = it.title {
            row.push(title);
        }
        t.row(row);
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

/// The first line of a domain's `<title>`.
async fn domain_title(d: &Domain) -> Result<String, Failure> {
    let xml = d.xml(XmlFlags::empty()).await?;
    let doc = virtkit::xml::parse(&xml)?;
    Ok(doc
        .root
        .child("title")
        .map(|t| t.text().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default())
}

#[derive(Serialize)]
struct DomInfo {
    id: Option<u32>,
    name: String,
    uuid: String,
    os_type: String,
    state: &'static str,
    cpus: u32,
    cpu_time_ns: u64,
    max_memory_kib: u64,
    used_memory_kib: u64,
    persistent: bool,
    autostart: bool,
    managed_save: bool,
    security_model: String,
    security_doi: String,
    security_label: Option<String>,
    security_enforcing: Option<bool>,
}

pub async fn dominfo(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let ops = conn.domains()?;
    let h = d.handle();
    let info = d.info().await?;
    let os_type = ops.os_type(h).await?;
    let persistent = ops.is_persistent(h).await?;
    let autostart = ops.autostart(h).await?;
    let managed_save = ops.has_managed_save(h).await?;
    let secmodel = conn.security_model().await?;
    let label = if secmodel.model.is_empty() {
        None
    } else {
        Some(ops.security_label(h).await?)
    };
    let out = DomInfo {
        id: d.id(),
        name: d.name().to_string(),
        uuid: d.uuid().to_string(),
        os_type,
        state: info.state.as_str(),
        cpus: info.nr_virt_cpu,
        cpu_time_ns: info.cpu_time_ns,
        max_memory_kib: info.max_mem_kib,
        used_memory_kib: info.memory_kib,
        persistent,
        autostart,
        managed_save,
        security_model: secmodel.model.clone(),
        security_doi: secmodel.doi.clone(),
        security_label: label
            .as_ref()
            .filter(|l| !l.label.is_empty())
            .map(|l| l.label.clone()),
        security_enforcing: label
            .as_ref()
            .filter(|l| !l.label.is_empty())
            .map(|l| l.enforcing),
    };
    if call.flag("json") {
        return ctx.json(&out);
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        s.push_str(&format!("{k:<15} {v}\n"));
    };
    line("Id:", &out.id.map_or("-".to_string(), |i| i.to_string()));
    line("Name:", &out.name);
    line("UUID:", &out.uuid);
    line("OS Type:", &out.os_type);
    line("State:", out.state);
    line("CPU(s):", &out.cpus.to_string());
    if out.cpu_time_ns != 0 {
        line(
            "CPU time:",
            &format!("{:.1}s", out.cpu_time_ns as f64 / 1_000_000_000.0),
        );
    }
    let max = if out.max_memory_kib == 0 {
        "no limit".to_string()
    } else {
        format!("{} KiB", out.max_memory_kib)
    };
    line("Max memory:", &max);
    line("Used memory:", &format!("{} KiB", out.used_memory_kib));
    line("Persistent:", yn(out.persistent));
    line(
        "Autostart:",
        if out.autostart { "enable" } else { "disable" },
    );
    line("Managed save:", yn(out.managed_save));
    if !out.security_model.is_empty() {
        line("Security model:", &out.security_model);
        line("Security DOI:", &out.security_doi);
        if let (Some(l), Some(enf)) = (&out.security_label, out.security_enforcing) {
            line(
                "Security label:",
                &format!("{l} ({})", if enf { "enforcing" } else { "permissive" }),
            );
        }
    }
    ctx.print(&s);
    Ok(())
}

pub async fn domstate(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let (state, reason) = d.state().await?;
    if call.flag("json") {
        #[derive(Serialize)]
        struct S {
            state: &'static str,
            reason: &'static str,
        }
        return ctx.json(&S {
            state: state.as_str(),
            reason: state.reason_str(reason),
        });
    }
    if call.flag("reason") {
        ctx.println(&format!(
            "{} ({})",
            state.as_str(),
            state.reason_str(reason)
        ));
    } else {
        ctx.println(state.as_str());
    }
    Ok(())
}

pub async fn ident(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let key = call.req("domain");
    let by = match call.cmd.name {
        "domid" => By {
            id: false,
            uuid: true,
            name: true,
        },
        "domname" => By {
            id: true,
            uuid: true,
            name: false,
        },
        _ => By {
            id: true,
            uuid: false,
            name: true,
        },
    };
    let d = ctx.domain(key, by).await?;
    let s = match call.cmd.name {
        "domid" => d.id().map_or("-".to_string(), |i| i.to_string()),
        "domname" => d.name().to_string(),
        _ => d.uuid().to_string(),
    };
    ctx.println(&s);
    Ok(())
}

pub async fn define(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let file = call.req("file");
    let xml = read_xml_file(file)?;
    let flags = if call.flag("validate") {
        DefineFlags::VALIDATE
    } else {
        DefineFlags::empty()
    };
    let conn = ctx.conn().await?.clone();
    let r = conn
        .domains()?
        .define_xml(&xml, flags)
        .await
        .map_err(|e| Failure::with(format!("Failed to define domain from {file}"), &e))?;
    ctx.println(&format!("Domain '{}' defined from {file}", r.name));
    Ok(())
}

pub async fn create(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let file = call.req("file");
    let xml = read_xml_file(file)?;
    let mut flags = CreateFlags::empty();
    for (opt, bit) in [
        ("paused", CreateFlags::PAUSED),
        ("autodestroy", CreateFlags::AUTODESTROY),
        ("validate", CreateFlags::VALIDATE),
    ] {
        if call.flag(opt) {
            flags |= bit;
        }
    }
    let conn = ctx.conn().await?.clone();
    let d = conn
        .create_domain(&xml, flags)
        .await
        .map_err(|e| Failure::with(format!("Failed to create domain from {file}"), &e))?;
    ctx.println(&format!("Domain '{}' created from {file}", d.name()));
    Ok(())
}

pub async fn undefine(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let mut flags = UndefineFlags::empty();
    if call.flag("managed-save") {
        flags |= UndefineFlags::MANAGED_SAVE;
    }
    if call.flag("nvram") {
        flags |= UndefineFlags::NVRAM;
    }
    if call.flag("keep-nvram") {
        flags |= UndefineFlags::KEEP_NVRAM;
    }
    let conn = ctx.conn().await?.clone();
    conn.domains()?
        .undefine(d.handle(), flags)
        .await
        .map_err(|e| Failure::with(format!("Failed to undefine domain '{}'", d.name()), &e))?;
    ctx.println(&format!("Domain '{}' has been undefined", d.name()));
    Ok(())
}

pub async fn start(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let mut d = ctx
        .domain(
            call.req("domain"),
            By {
                id: false,
                uuid: true,
                name: true,
            },
        )
        .await?;
    if d.id().is_some() {
        return Err(Failure::msg("Domain is already active"));
    }
    let mut flags = CreateFlags::empty();
    for (opt, bit) in [
        ("paused", CreateFlags::PAUSED),
        ("autodestroy", CreateFlags::AUTODESTROY),
        ("force-boot", CreateFlags::FORCE_BOOT),
    ] {
        if call.flag(opt) {
            flags |= bit;
        }
    }
    let name = d.name().to_string();
    d.start(flags)
        .await
        .map_err(|e| Failure::with(format!("Failed to start domain '{name}'"), &e))?;
    ctx.println(&format!("Domain '{name}' started"));
    Ok(())
}

fn mode_bits(call: &Call) -> Result<u32, Failure> {
    let mut bits = 0;
    if let Some(modes) = call.value("mode") {
        for m in modes.split(',') {
            bits |= match m {
                "acpi" => 1,
                "agent" => 2,
                "initctl" => 4,
                "signal" => 8,
                "paravirt" => 16,
                other => {
                    return Err(Failure::msg(format!(
                        "Unknown mode {other} value, expecting 'acpi', 'agent', 'initctl', 'signal' or 'paravirt'"
                    )));
                }
            };
        }
    }
    Ok(bits)
}

pub async fn lifecycle(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let ops = conn.domains()?;
    let h = d.handle();
    let name = d.name();
    if call.cmd.name == "shutdown"
        && let Some(t) = call.value("timeout")
    {
        let secs: f64 = t
            .parse()
            .ok()
            .filter(|s: &f64| *s > 0.0 && s.is_finite())
            .ok_or_else(|| Failure::msg(format!("invalid timeout '{t}' (seconds, above 0)")))?;
        let outcome = d
            .shutdown_within(
                ShutdownFlags(mode_bits(call)?),
                std::time::Duration::from_secs_f64(secs),
                call.flag("force"),
            )
            .await
            .map_err(|e| Failure::with(format!("Failed to shutdown domain '{name}'"), &e))?;
        ctx.println(&match outcome {
            virtkit::ShutdownOutcome::ShutDown => format!("Domain '{name}' is shut off"),
            virtkit::ShutdownOutcome::Destroyed => {
                format!("Domain '{name}' did not shut down in time and was destroyed")
            }
        });
        return Ok(());
    }
    if call.cmd.name == "shutdown" && call.flag("force") {
        return Err(Failure::msg("--force needs --timeout"));
    }
    let (result, ok_msg, verb) = match call.cmd.name {
        "shutdown" => (
            ops.shutdown(h, ShutdownFlags(mode_bits(call)?)).await,
            format!("Domain '{name}' is being shutdown"),
            "shutdown",
        ),
        "reboot" => (
            ops.reboot(h, RebootFlags(mode_bits(call)?)).await,
            format!("Domain '{name}' is being rebooted"),
            "reboot",
        ),
        "destroy" => {
            let mut f = DestroyFlags::empty();
            if call.flag("graceful") {
                f |= DestroyFlags::GRACEFUL;
            }
            if call.flag("remove-logs") {
                f |= DestroyFlags::REMOVE_LOGS;
            }
            (
                ops.destroy(h, f).await,
                format!("Domain '{name}' destroyed"),
                "destroy",
            )
        }
        "reset" => (
            ops.reset(h).await,
            format!("Domain '{name}' was reset"),
            "reset",
        ),
        "suspend" => (
            ops.suspend(h).await,
            format!("Domain '{name}' suspended"),
            "suspend",
        ),
        _ => (
            ops.resume(h).await,
            format!("Domain '{name}' resumed"),
            "resume",
        ),
    };
    result.map_err(|e| Failure::with(format!("Failed to {verb} domain '{name}'"), &e))?;
    ctx.println(&ok_msg);
    Ok(())
}

pub async fn autostart(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let on = !call.flag("disable");
    let name = d.name().to_string();
    d.set_autostart(on).await.map_err(|e| {
        if on {
            Failure::with(format!("Failed to mark domain '{name}' as autostarted"), &e)
        } else {
            Failure::with(
                format!("Failed to unmark domain '{name}' as autostarted"),
                &e,
            )
        }
    })?;
    ctx.println(&if on {
        format!("Domain '{name}' marked as autostarted")
    } else {
        format!("Domain '{name}' unmarked as autostarted")
    });
    Ok(())
}

pub async fn dumpxml(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let mut flags = XmlFlags::empty();
    for (opt, bit) in [
        ("inactive", XmlFlags::INACTIVE),
        ("security-info", XmlFlags::SECURE),
        ("update-cpu", XmlFlags::UPDATE_CPU),
        ("migratable", XmlFlags::MIGRATABLE),
    ] {
        if call.flag(opt) {
            flags |= bit;
        }
    }
    let xml = d.xml(flags).await?;
    ctx.print(&xml);
    Ok(())
}
