//! Network commands: net-list, net-info, net-dumpxml.

use serde::Serialize;
use virtkit::{NetworkListFlags, NetworkRef, Uuid, XmlFlags};

use super::spec::Call;
use super::{CmdResult, Ctx, Failure};
use crate::table::Table;

/// Looks a network up by UUID, then by name, with virsh's message.
async fn lookup(ctx: &mut Ctx, key: &str) -> Result<NetworkRef, Failure> {
    let conn = ctx.conn().await?.clone();
    let ops = conn.networks()?;
    if key.len() >= 32
        && let Ok(u) = key.parse::<Uuid>()
        && let Ok(n) = ops.lookup_by_uuid(&u).await
    {
        return Ok(n);
    }
    ops.lookup_by_name(key)
        .await
        .map_err(|e| Failure::with(format!("failed to get network '{key}'"), &e))
}

pub async fn list(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let modes = ["table", "name", "uuid"]
        .iter()
        .filter(|m| call.flag(m))
        .count();
    if modes > 1 {
        return Err(Failure::msg(
            "Only one argument from --table, --name and --uuid may be specified.",
        ));
    }
    let mut flags = if call.flag("all") {
        NetworkListFlags::ACTIVE | NetworkListFlags::INACTIVE
    } else if call.flag("inactive") {
        NetworkListFlags::INACTIVE
    } else {
        NetworkListFlags::ACTIVE
    };
    for (opt, bit) in [
        ("persistent", NetworkListFlags::PERSISTENT),
        ("transient", NetworkListFlags::TRANSIENT),
        ("autostart", NetworkListFlags::AUTOSTART),
        ("no-autostart", NetworkListFlags::NO_AUTOSTART),
    ] {
        if call.flag(opt) {
            flags |= bit;
        }
    }
    let conn = ctx.conn().await?.clone();
    let ops = conn.networks()?;
    let mut nets = ops
        .list_all(flags)
        .await
        .map_err(|e| Failure::with("Failed to list networks", &e))?;
    nets.sort_by_key(|n| n.name.to_ascii_lowercase());
    let mut infos = Vec::with_capacity(nets.len());
    for n in &nets {
        infos.push(ops.info(n).await?);
    }
    if call.flag("json") {
        return ctx.json(&infos);
    }
    if call.flag("name") || call.flag("uuid") {
        for i in &infos {
            let s = if call.flag("name") {
                i.net.name.clone()
            } else {
                i.net.uuid.to_string()
            };
            ctx.println(&s);
        }
        return Ok(());
    }
    let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut t = Table::new(&["Name", "State", "Autostart", "Persistent"]);
    for i in infos {
        t.row(vec![
            i.net.name,
            if i.active { "active" } else { "inactive" }.to_string(),
            yn(i.autostart),
            yn(i.persistent),
        ]);
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

pub async fn info(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let conn = ctx.conn().await?.clone();
    let i = conn.networks()?.info(&n).await?;
    if call.flag("json") {
        #[derive(Serialize)]
        struct J<'a> {
            #[serde(flatten)]
            info: &'a virtkit::NetworkInfo,
        }
        return ctx.json(&J { info: &i });
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = String::new();
    let mut line = |k: &str, v: &str| s.push_str(&format!("{k:<15} {v}\n"));
    line("Name:", &i.net.name);
    line("UUID:", &i.net.uuid.to_string());
    line("Active:", yn(i.active));
    line("Persistent:", yn(i.persistent));
    line("Autostart:", yn(i.autostart));
    if let Some(b) = &i.bridge {
        line("Bridge:", b);
    }
    ctx.print(&s);
    Ok(())
}

pub async fn dumpxml(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let flags = if call.flag("inactive") {
        XmlFlags::INACTIVE
    } else {
        XmlFlags::empty()
    };
    let conn = ctx.conn().await?.clone();
    let xml = conn.networks()?.xml_desc(&n, flags).await?;
    ctx.print(&xml);
    Ok(())
}
