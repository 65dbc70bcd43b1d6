//! Storage commands: pool-list, pool-info, pool-dumpxml, vol-list.

use virtkit::{PoolListFlags, PoolState, StoragePoolRef, Uuid, XmlFlags};

use super::spec::Call;
use super::{CmdResult, Ctx, Failure};
use crate::table::Table;

/// A size as virsh prints it: `100.00 GiB`, `0.00 B`.
pub fn pretty_capacity(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// Looks a pool up by UUID, then by name, with virsh's message.
async fn lookup(ctx: &mut Ctx, key: &str) -> Result<StoragePoolRef, Failure> {
    let conn = ctx.conn().await?.clone();
    let ops = conn.storage()?;
    if key.len() >= 32
        && let Ok(u) = key.parse::<Uuid>()
        && let Ok(p) = ops.lookup_pool_by_uuid(&u).await
    {
        return Ok(p);
    }
    ops.lookup_pool_by_name(key)
        .await
        .map_err(|e| Failure::with(format!("failed to get pool '{key}'"), &e))
}

pub async fn pool_list(ctx: &mut Ctx, call: &Call) -> CmdResult {
    for other in ["name", "uuid"] {
        if call.flag("details") && call.flag(other) {
            return Err(Failure::msg(format!(
                "Options --details and --{other} are mutually exclusive"
            )));
        }
    }
    let mut flags = if call.flag("all") {
        PoolListFlags::ACTIVE | PoolListFlags::INACTIVE
    } else if call.flag("inactive") {
        PoolListFlags::INACTIVE
    } else {
        PoolListFlags::ACTIVE
    };
    for (opt, bit) in [
        ("persistent", PoolListFlags::PERSISTENT),
        ("transient", PoolListFlags::TRANSIENT),
        ("autostart", PoolListFlags::AUTOSTART),
        ("no-autostart", PoolListFlags::NO_AUTOSTART),
    ] {
        if call.flag(opt) {
            flags |= bit;
        }
    }
    let conn = ctx.conn().await?.clone();
    let ops = conn.storage()?;
    let mut pools = ops
        .list_pools(flags)
        .await
        .map_err(|e| Failure::with("Failed to list pools", &e))?;
    pools.sort_by_key(|p| p.name.to_ascii_lowercase());
    let mut infos = Vec::with_capacity(pools.len());
    for p in &pools {
        infos.push(ops.pool_info(p).await?);
    }
    if call.flag("json") {
        return ctx.json(&infos);
    }
    if call.flag("name") || call.flag("uuid") {
        for i in &infos {
            let line = match (call.flag("uuid"), call.flag("name")) {
                (true, true) => format!("{} {}", i.pool.uuid, i.pool.name),
                (true, false) => format!("{:<36}", i.pool.uuid.to_string()),
                _ => format!("{:<20}", i.pool.name),
            };
            ctx.println(&line);
        }
        return Ok(());
    }
    let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
    let active = |s: PoolState| s != PoolState::Inactive;
    let table = if call.flag("details") {
        let mut t = Table::new(&[
            "Name",
            "State",
            "Autostart",
            "Persistent",
            "Capacity",
            "Allocation",
            "Available",
        ]);
        for i in infos {
            let sizes = |v: u64| {
                if active(i.state) {
                    pretty_capacity(v)
                } else {
                    "-".to_string()
                }
            };
            t.row(vec![
                i.pool.name.clone(),
                i.state.as_str().to_string(),
                yn(i.autostart),
                yn(i.persistent),
                sizes(i.capacity),
                sizes(i.allocation),
                sizes(i.available),
            ]);
        }
        t
    } else {
        let mut t = Table::new(&["Name", "State", "Autostart"]);
        for i in infos {
            t.row(vec![
                i.pool.name,
                if active(i.state) {
                    "active"
                } else {
                    "inactive"
                }
                .to_string(),
                yn(i.autostart),
            ]);
        }
        t
    };
    let quiet = ctx.quiet;
    ctx.print(&table.render(!quiet));
    Ok(())
}

pub async fn pool_info(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let p = lookup(ctx, call.req("pool")).await?;
    let conn = ctx.conn().await?.clone();
    let i = conn.storage()?.pool_info(&p).await?;
    if call.flag("json") {
        return ctx.json(&i);
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    let size = |v: u64| {
        if call.flag("bytes") {
            format!("{v}")
        } else {
            pretty_capacity(v)
        }
    };
    let mut s = String::new();
    let mut line = |k: &str, v: &str| s.push_str(&format!("{k:<15} {v}\n"));
    line("Name:", &i.pool.name);
    line("UUID:", &i.pool.uuid.to_string());
    line("State:", i.state.as_str());
    line("Persistent:", yn(i.persistent));
    line("Autostart:", yn(i.autostart));
    if i.state != PoolState::Inactive {
        line("Capacity:", &size(i.capacity));
        line("Allocation:", &size(i.allocation));
        line("Available:", &size(i.available));
    }
    ctx.print(&s);
    Ok(())
}

pub async fn pool_dumpxml(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let p = lookup(ctx, call.req("pool")).await?;
    let flags = if call.flag("inactive") {
        XmlFlags::INACTIVE
    } else {
        XmlFlags::empty()
    };
    let conn = ctx.conn().await?.clone();
    let xml = conn.storage()?.pool_xml_desc(&p, flags).await?;
    ctx.print(&xml);
    Ok(())
}

pub async fn vol_list(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let p = lookup(ctx, call.req("pool")).await?;
    let conn = ctx.conn().await?.clone();
    let mut vols = conn.storage()?.list_volumes(&p).await?;
    vols.sort_by(|a, b| a.name.cmp(&b.name));
    let mut t = if call.flag("details") {
        Table::new(&["Name", "Path", "Type", "Capacity", "Allocation"])
    } else {
        Table::new(&["Name", "Path"])
    };
    for v in vols {
        if call.flag("details") {
            t.row(vec![v.name, v.path, "file".into(), "-".into(), "-".into()]);
        } else {
            t.row(vec![v.name, v.path]);
        }
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pretty_capacity;

    #[test]
    fn capacities_print_like_virsh() {
        assert_eq!(pretty_capacity(0), "0.00 B");
        assert_eq!(pretty_capacity(107374182400), "100.00 GiB");
        assert_eq!(pretty_capacity(1536), "1.50 KiB");
    }
}
