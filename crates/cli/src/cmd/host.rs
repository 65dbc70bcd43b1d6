//! Host and connection commands: nodeinfo, capabilities, uri, hostname, version.

use serde::Serialize;

use super::spec::Call;
use super::{CmdResult, Ctx, Failure};

pub async fn nodeinfo(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let info = ctx.conn().await?.node_info().await?;
    if call.flag("json") {
        return ctx.json(&info);
    }
    let rows = [
        ("CPU model:", info.model.clone()),
        ("CPU(s):", info.cpus.to_string()),
        ("CPU frequency:", format!("{} MHz", info.mhz)),
        ("CPU socket(s):", info.sockets.to_string()),
        ("Core(s) per socket:", info.cores.to_string()),
        ("Thread(s) per core:", info.threads.to_string()),
        ("NUMA cell(s):", info.nodes.to_string()),
        ("Memory size:", format!("{} KiB", info.memory_kib)),
    ];
    for (k, v) in rows {
        ctx.println(&format!("{k:<20} {v}"));
    }
    Ok(())
}

pub async fn capabilities(ctx: &mut Ctx) -> CmdResult {
    let caps = ctx.conn().await?.capabilities().await?;
    // virsh adds a line break after the document's own.
    ctx.println(&caps);
    Ok(())
}

pub async fn domcapabilities(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let caps = ctx
        .conn()
        .await?
        .domain_capabilities(
            call.value("emulatorbin"),
            call.value("arch"),
            call.value("machine"),
            call.value("virttype"),
        )
        .await
        .map_err(|e| Failure::with("failed to get emulator capabilities", &e))?;
    ctx.print(&caps);
    Ok(())
}

pub async fn uri(ctx: &mut Ctx) -> CmdResult {
    let uri = ctx.conn().await?.uri();
    ctx.println(&uri);
    Ok(())
}

pub async fn hostname(ctx: &mut Ctx) -> CmdResult {
    let h = ctx.conn().await?.hostname().await?;
    ctx.println(&h);
    Ok(())
}

fn dotted(v: u64) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

pub async fn version(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let conn = ctx.conn().await?.clone();
    let hv_type = conn.hypervisor_type().await?;
    let hv_version = conn.hypervisor_version().await?;
    let ours = env!("CARGO_PKG_VERSION");
    if call.flag("json") {
        #[derive(Serialize)]
        struct V<'a> {
            virtkit: &'a str,
            hypervisor_type: String,
            hypervisor_version: String,
        }
        return ctx.json(&V {
            virtkit: ours,
            hypervisor_type: hv_type,
            hypervisor_version: dotted(hv_version),
        });
    }
    ctx.println(&format!("Compiled against library: virtkit {ours}"));
    ctx.println(&format!("Using library: virtkit {ours}"));
    ctx.println(&format!("Using API: {hv_type} {ours}"));
    ctx.println(&format!(
        "Running hypervisor: {hv_type} {}",
        dotted(hv_version)
    ));
    Ok(())
}
