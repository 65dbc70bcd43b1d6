//! Network commands with virsh's names, arguments, output and errors:
//! net-list, net-info, net-dumpxml, net-define, net-undefine, net-create,
//! net-start, net-destroy, net-autostart, net-uuid, net-name,
//! net-dhcp-leases, net-update; and virtkit's own net-dnsmasq-conf.

use serde::Serialize;
use virtkit::network::update::{COMMANDS, SECTIONS};
use virtkit::{NetworkListFlags, NetworkRef, NetworkUpdateFlags, Uuid, XmlFlags};

use super::spec::Call;
use super::{CmdResult, Ctx, Failure, read_xml_file};
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

pub async fn define(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let file = call.req("file");
    let xml = read_xml_file(file)?;
    let conn = ctx.conn().await?.clone();
    let n = conn
        .networks()?
        .define_xml(&xml)
        .await
        .map_err(|e| Failure::with(format!("Failed to define network from {file}"), &e))?;
    ctx.println(&format!("Network {} defined from {file}", n.name));
    Ok(())
}

pub async fn create(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let file = call.req("file");
    let xml = read_xml_file(file)?;
    let conn = ctx.conn().await?.clone();
    let n = conn
        .networks()?
        .create_xml(&xml)
        .await
        .map_err(|e| Failure::with(format!("Failed to create network from {file}"), &e))?;
    ctx.println(&format!("Network {} created from {file}", n.name));
    Ok(())
}

/// net-start, net-destroy, net-undefine: one call on a network, virsh's
/// words on success and failure.
pub async fn lifecycle(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let conn = ctx.conn().await?.clone();
    let ops = conn.networks()?;
    let (res, done, failed) = match call.cmd.name {
        "net-start" => (ops.start(&n).await, "started", "Failed to start network"),
        "net-destroy" => (
            ops.destroy(&n).await,
            "destroyed",
            "Failed to destroy network",
        ),
        _ => (
            ops.undefine(&n).await,
            "has been undefined",
            "Failed to undefine network",
        ),
    };
    res.map_err(|e| Failure::with(format!("{failed} {}", n.name), &e))?;
    ctx.println(&format!("Network {} {done}", n.name));
    Ok(())
}

pub async fn autostart(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let on = !call.flag("disable");
    let conn = ctx.conn().await?.clone();
    conn.networks()?.set_autostart(&n, on).await.map_err(|e| {
        let verb = if on { "mark" } else { "unmark" };
        Failure::with(
            format!("failed to {verb} network {} as autostarted", n.name),
            &e,
        )
    })?;
    let verb = if on { "marked" } else { "unmarked" };
    ctx.println(&format!("Network {} {verb} as autostarted", n.name));
    Ok(())
}

pub async fn uuid(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    ctx.println(&n.uuid.to_string());
    Ok(())
}

pub async fn name(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let key = call.req("network");
    let conn = ctx.conn().await?.clone();
    let n = match key.parse::<Uuid>() {
        Ok(u) => conn.networks()?.lookup_by_uuid(&u).await.ok(),
        Err(_) => None,
    }
    .ok_or_else(|| Failure::msg(format!("failed to get network '{key}'")))?;
    ctx.println(&n.name);
    Ok(())
}

/// Local time of a UNIX timestamp as virsh prints it (`%Y-%m-%d %H:%M:%S`).
fn local_time(t: i64) -> String {
    let mut tm: libc::tm = zeroed_tm();
    let tt: libc::time_t = t;
    // SAFETY: localtime_r reads `tt` and writes the struct `tm` we own.
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if !ok {
        return t.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn zeroed_tm() -> libc::tm {
    // SAFETY: libc::tm is a plain C struct of integers (and a pointer that
    // may be null); all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

pub async fn dhcp_leases(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let conn = ctx.conn().await?.clone();
    let mut leases = conn
        .networks()?
        .dhcp_leases(&n, call.value("mac"))
        .await
        .map_err(|e| Failure::with(format!("Failed to get leases info for {}", n.name), &e))?;
    leases.sort_by(|a, b| a.mac.cmp(&b.mac).then(a.ipaddr.cmp(&b.ipaddr)));
    if call.flag("json") {
        return ctx.json(&leases);
    }
    let mut t = Table::new(&[
        "Expiry Time",
        "MAC address",
        "Protocol",
        "IP address",
        "Hostname",
        "Client ID or DUID",
    ]);
    for l in leases {
        t.row(vec![
            local_time(l.expiry_time),
            l.mac,
            l.family,
            format!("{}/{}", l.ipaddr, l.prefix),
            l.hostname.unwrap_or_else(|| "-".into()),
            l.clientid.unwrap_or_else(|| "-".into()),
        ]);
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

pub async fn update(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let n = lookup(ctx, call.req("network")).await?;
    let cmd_word = call.req("command");
    let command = COMMANDS
        .iter()
        .find(|(w, _)| *w == cmd_word)
        .map(|(_, c)| *c)
        .ok_or_else(|| Failure::msg(format!("unrecognized command name '{cmd_word}'")))?;
    let sec_word = call.req("section");
    let section = SECTIONS
        .iter()
        .find(|(w, _)| *w == sec_word)
        .map(|(_, s)| *s)
        .ok_or_else(|| Failure::msg(format!("unrecognized section name '{sec_word}'")))?;
    // Like virsh: XML inline when it starts with '<', else a file name.
    let arg = call.req("xml");
    let xml = if arg.trim_start().starts_with('<') {
        arg.to_string()
    } else {
        read_xml_file(arg)?
    };
    let parent: i32 = match call.value("parent-index") {
        Some(v) => v.parse().map_err(|_| {
            Failure::msg(format!(
                "Numeric value '{v}' for <parent-index> option is malformed or out of range"
            ))
        })?,
        None => -1,
    };
    let mut flags = NetworkUpdateFlags::empty();
    if call.flag("config") {
        flags |= NetworkUpdateFlags::CONFIG;
    }
    if call.flag("live") {
        flags |= NetworkUpdateFlags::LIVE;
    }
    if call.flag("current") && flags.bits() != 0 {
        return Err(Failure::msg(
            "Options --current and --live/--config are mutually exclusive",
        ));
    }
    let conn = ctx.conn().await?.clone();
    let ops = conn.networks()?;
    ops.update(&n, command, section, parent, &xml, flags)
        .await
        .map_err(|e| Failure::with(format!("Failed to update network {}", n.name), &e))?;
    // virsh's words: with neither --live nor --config, the state that was
    // current ("live state" of a running network).
    let affected = match (
        flags.contains(NetworkUpdateFlags::CONFIG),
        flags.contains(NetworkUpdateFlags::LIVE),
    ) {
        (true, true) => "persistent config and live state",
        (true, false) => "persistent config",
        (false, true) => "live state",
        (false, false) => {
            if ops.info(&n).await.is_ok_and(|i| i.active) {
                "live state"
            } else {
                "persistent config"
            }
        }
    };
    // virsh ends this message without a newline of its own.
    ctx.print(&format!("Updated network {} {affected}", n.name));
    Ok(())
}

/// `net-dnsmasq-conf FILE`: the dnsmasq configuration virtkit's network
/// driver generates for a network XML file (libvirt's test layout: state
/// directory `/var/lib/libvirt/dnsmasq`), followed by the DHCP hosts file
/// when there is one.
#[cfg(feature = "network")]
pub fn dnsmasq_conf(ctx: &mut Ctx, call: &Call) -> CmdResult {
    use virtkit::network::NetworkDef;
    use virtkit::network_driver::dnsmasq::{self, ConfParams, DnsmasqCaps};
    let file = call.req("file");
    let bytes = super::read_file(file)?;
    let def = NetworkDef::parse_named(&bytes, file)?;
    let mut params = ConfParams::libvirt_test();
    if let Some(d) = call.value("state-dir") {
        params.state_dir = d.to_string();
    }
    let out = dnsmasq::generate(def.model(), &DnsmasqCaps::test_2_67(), &params)
        .map_err(|e| Failure::from(virtkit::Error::from(e)))?;
    ctx.print(&out.conf);
    if call.flag("hostsfile") {
        ctx.print(&out.hostsfile);
    }
    Ok(())
}

#[cfg(not(feature = "network"))]
pub fn dnsmasq_conf(_ctx: &mut Ctx, _call: &Call) -> CmdResult {
    Err(Failure::msg(
        "net-dnsmasq-conf needs the network driver (build with cargo feature `network`)",
    ))
}
