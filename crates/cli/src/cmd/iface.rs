//! Host interface commands: iface-list, iface-dumpxml.

use virtkit::{InterfaceListFlags, InterfaceRef, XmlFlags};

use super::spec::Call;
use super::{CmdResult, Ctx, Failure};
use crate::table::Table;

/// Looks an interface up by name, then by MAC address, with virsh's message.
async fn lookup(ctx: &mut Ctx, key: &str) -> Result<InterfaceRef, Failure> {
    let conn = ctx.conn().await?.clone();
    let ops = conn.interfaces()?;
    match ops.lookup_by_name(key).await {
        Ok(i) => Ok(i),
        Err(e) => match ops.lookup_by_mac(key).await {
            Ok(i) => Ok(i),
            Err(_) => Err(Failure::with(
                format!("failed to get interface '{key}'"),
                &e,
            )),
        },
    }
}

pub async fn list(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let flags = if call.flag("all") {
        InterfaceListFlags::ACTIVE | InterfaceListFlags::INACTIVE
    } else if call.flag("inactive") {
        InterfaceListFlags::INACTIVE
    } else {
        InterfaceListFlags::ACTIVE
    };
    let conn = ctx.conn().await?.clone();
    let ops = conn.interfaces()?;
    let mut ifaces = ops
        .list_all(flags)
        .await
        .map_err(|e| Failure::with("Failed to list interfaces", &e))?;
    ifaces.sort_by_key(|i| i.name.to_ascii_lowercase());
    let mut rows = Vec::with_capacity(ifaces.len());
    for i in ifaces {
        let active = ops.is_active(&i).await?;
        rows.push((i, active));
    }
    if call.flag("json") {
        #[derive(serde::Serialize)]
        struct J<'a> {
            name: &'a str,
            mac: &'a str,
            active: bool,
        }
        let j: Vec<J<'_>> = rows
            .iter()
            .map(|(i, a)| J {
                name: &i.name,
                mac: &i.mac,
                active: *a,
            })
            .collect();
        return ctx.json(&j);
    }
    let mut t = Table::new(&["Name", "State", "MAC Address"]);
    for (i, active) in rows {
        t.row(vec![
            i.name,
            if active { "active" } else { "inactive" }.to_string(),
            i.mac,
        ]);
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

pub async fn dumpxml(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let i = lookup(ctx, call.req("interface")).await?;
    let flags = if call.flag("inactive") {
        XmlFlags::INACTIVE
    } else {
        XmlFlags::empty()
    };
    let conn = ctx.conn().await?.clone();
    let xml = conn.interfaces()?.xml_desc(&i, flags).await?;
    ctx.print(&xml);
    Ok(())
}
