//! Monitoring commands: domstats, domblkstat, domifstat, domiflist,
//! domblklist, console, screenshot.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;

use serde::Serialize;
use virtkit::xml::{self, Element};
use virtkit::{InterfaceAddressSource, StatsGroups, TypedValue, XmlFlags};

use super::spec::Call;
use super::{By, CmdResult, Ctx, Failure};
use crate::table::Table;

pub async fn domstats(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let mut groups = StatsGroups::empty();
    for (opt, bit) in [
        ("state", StatsGroups::STATE),
        ("cpu-total", StatsGroups::CPU_TOTAL),
        ("balloon", StatsGroups::BALLOON),
        ("vcpu", StatsGroups::VCPU),
        ("interface", StatsGroups::INTERFACE),
        ("block", StatsGroups::BLOCK),
    ] {
        if call.flag(opt) {
            groups |= bit;
        }
    }
    let conn = ctx.conn().await?.clone();
    let doms = if call.rest().is_empty() {
        conn.list_domains(virtkit::ListFlags::empty())
            .await
            .map_err(|e| Failure::with("Failed to list domains", &e))?
    } else {
        let mut v = Vec::new();
        for key in call.rest() {
            v.push(ctx.domain(key, By::ALL).await?);
        }
        v
    };
    #[derive(Serialize)]
    struct J {
        domain: String,
        stats: std::collections::BTreeMap<String, TypedValue>,
    }
    let mut all = Vec::new();
    for d in doms {
        let stats = conn
            .domains()?
            .stats(d.handle(), groups)
            .await
            .map_err(|e| {
                Failure::with(format!("failed to get stats of domain '{}'", d.name()), &e)
            })?;
        all.push((d.name().to_string(), stats));
    }
    if call.flag("json") {
        let j: Vec<J> = all
            .into_iter()
            .map(|(domain, stats)| J {
                domain,
                stats: stats.into_iter().collect(),
            })
            .collect();
        return ctx.json(&j);
    }
    let n = all.len();
    for (i, (name, stats)) in all.into_iter().enumerate() {
        ctx.println(&format!("Domain: '{name}'"));
        for (k, v) in stats {
            ctx.println(&format!("  {k}={v}"));
        }
        if i + 1 < n {
            ctx.println("");
        }
    }
    Ok(())
}

/// The domain's XML as a tree.
async fn domain_xml(ctx: &mut Ctx, key: &str, inactive: bool) -> Result<Element, Failure> {
    let d = ctx.domain(key, By::ALL).await?;
    let flags = if inactive {
        XmlFlags::INACTIVE
    } else {
        XmlFlags::empty()
    };
    let text = d.xml(flags).await?;
    Ok(xml::parse(&text)?.root)
}

fn attr(e: &Element, child: &str, name: &str) -> Option<String> {
    e.child(child)
        .and_then(|c| c.attr(name))
        .map(|v| v.into_owned())
}

/// `blkdeviotune`'s value options (libvirt's parameter names with dashes).
const IOTUNE_PARAMS: &[&str] = &[
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
    "total_bytes_sec_max",
    "read_bytes_sec_max",
    "write_bytes_sec_max",
    "total_iops_sec_max",
    "read_iops_sec_max",
    "write_iops_sec_max",
    "size_iops_sec",
    "group_name",
    "total_bytes_sec_max_length",
    "read_bytes_sec_max_length",
    "write_bytes_sec_max_length",
    "total_iops_sec_max_length",
    "read_iops_sec_max_length",
    "write_iops_sec_max_length",
];

pub async fn blkdeviotune(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let device = call.req("device").to_string();
    let mut params = Vec::new();
    for name in IOTUNE_PARAMS {
        let opt = name.replace('_', "-");
        let Some(v) = call.value(&opt) else {
            continue;
        };
        let value =
            if *name == "group_name" {
                TypedValue::String(v.to_string())
            } else {
                TypedValue::ULLong(v.parse().map_err(|_| {
                    Failure::msg(format!("Unable to parse integer parameter '{opt}'"))
                })?)
            };
        params.push((name.to_string(), value));
    }
    if call.flag("config") {
        return Err(Failure::msg(
            "changing I/O limits of the persistent definition is not supported: \
             edit the disk's <iotune> and define the domain again",
        ));
    }
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let ops = conn.domains()?;
    if !params.is_empty() {
        ops.set_block_iotune(d.handle(), &device, &params)
            .await
            .map_err(|e| Failure::with("Unable to change block I/O throttle", &e))?;
        return Ok(());
    }
    let got = ops
        .block_iotune(d.handle(), &device)
        .await
        .map_err(|e| Failure::with("Unable to get block I/O throttle parameters", &e))?;
    for (k, v) in got {
        let v = match v {
            TypedValue::String(s) => s,
            TypedValue::ULLong(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        ctx.println(&format!("{k:<15}: {v}"));
    }
    ctx.println("");
    Ok(())
}

pub async fn domblkstat(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let key = call.req("domain").to_string();
    let device = match call.value("device") {
        Some(d) => d.to_string(),
        None => {
            let root = domain_xml(ctx, &key, false).await?;
            root.child("devices")
                .and_then(|d| d.child("disk"))
                .and_then(|d| attr(d, "target", "dev"))
                .ok_or_else(|| Failure::msg("the domain has no disk"))?
        }
    };
    let d = ctx.domain(&key, By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let st = conn
        .domains()?
        .block_stats(d.handle(), &device)
        .await
        .map_err(|e| Failure::with(format!("Failed to get block stats {device}"), &e))?;
    if call.flag("json") {
        return ctx.json(&st);
    }
    let rows = [
        ("rd_req", "number of read operations:", st.rd_req),
        ("rd_bytes", "number of bytes read:", st.rd_bytes),
        ("wr_req", "number of write operations:", st.wr_req),
        ("wr_bytes", "number of bytes written:", st.wr_bytes),
        ("errs", "error count:", st.errs),
    ];
    if call.flag("human") {
        ctx.println(&format!("Device: {device}"));
    }
    for (short, long, v) in rows {
        if v < 0 {
            continue;
        }
        if call.flag("human") {
            ctx.println(&format!(" {long:<32}{v}"));
        } else {
            ctx.println(&format!("{device} {short} {v}"));
        }
    }
    Ok(())
}

pub async fn domifstat(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let iface = call.req("interface").to_string();
    let conn = ctx.conn().await?.clone();
    let st = conn
        .domains()?
        .interface_stats(d.handle(), &iface)
        .await
        .map_err(|e| Failure::with(format!("Failed to get interface stats {iface}"), &e))?;
    if call.flag("json") {
        return ctx.json(&st);
    }
    for (k, v) in [
        ("rx_bytes", st.rx_bytes),
        ("rx_packets", st.rx_packets),
        ("rx_errs", st.rx_errs),
        ("rx_drop", st.rx_drop),
        ("tx_bytes", st.tx_bytes),
        ("tx_packets", st.tx_packets),
        ("tx_errs", st.tx_errs),
        ("tx_drop", st.tx_drop),
    ] {
        if v >= 0 {
            ctx.println(&format!("{iface} {k} {v}"));
        }
    }
    Ok(())
}

pub async fn domiflist(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let root = domain_xml(ctx, call.req("domain"), call.flag("inactive")).await?;
    let mut t = Table::new(&["Interface", "Type", "Source", "Model", "MAC"]);
    if let Some(devs) = root.child("devices") {
        for i in devs.children_named("interface") {
            let ty = i.attr("type").map(|v| v.into_owned()).unwrap_or_default();
            let source = ["network", "bridge", "dev", "name"]
                .iter()
                .find_map(|a| attr(i, "source", a))
                .unwrap_or_else(|| "-".into());
            t.row(vec![
                attr(i, "target", "dev").unwrap_or_else(|| "-".into()),
                ty,
                source,
                attr(i, "model", "type").unwrap_or_else(|| "-".into()),
                attr(i, "mac", "address").unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

pub async fn domifaddr(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let source = match call.value("source") {
        None | Some("lease") => InterfaceAddressSource::Lease,
        Some("agent") => InterfaceAddressSource::Agent,
        Some("arp") => InterfaceAddressSource::Arp,
        Some(other) => return Err(Failure::msg(format!("Unknown data source '{other}'"))),
    };
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let mut ifaces = d
        .interface_addresses(source)
        .await
        .map_err(|e| Failure::with("Failed to query for interfaces addresses", &e))?;
    if let Some(only) = call.value("interface") {
        ifaces.retain(|i| i.name == only);
    }
    if call.flag("json") {
        return ctx.json(&ifaces);
    }
    let full = call.flag("full");
    let mut out = format!(
        " {:<10} {:<17}    {:<12} {}\n{}\n",
        "Name",
        "MAC address",
        "Protocol",
        "Address",
        "-".repeat(79)
    );
    for i in &ifaces {
        let mac = i.hwaddr.clone().unwrap_or_else(|| "N/A".into());
        for (n, a) in i.addrs.iter().enumerate() {
            let (name, mac) = if n == 0 || full {
                (i.name.as_str(), mac.as_str())
            } else {
                ("-", "-")
            };
            out.push_str(&format!(
                " {name:<10} {mac:<17}    {:<12} {}/{}\n",
                a.family, a.addr, a.prefix
            ));
        }
    }
    ctx.print(&out);
    Ok(())
}

pub async fn domblklist(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let root = domain_xml(ctx, call.req("domain"), call.flag("inactive")).await?;
    let details = call.flag("details");
    let mut t = if details {
        Table::new(&["Type", "Device", "Target", "Source"])
    } else {
        Table::new(&["Target", "Source"])
    };
    if let Some(devs) = root.child("devices") {
        for d in devs.children_named("disk") {
            let source = ["file", "dev", "dir", "name", "volume"]
                .iter()
                .find_map(|a| attr(d, "source", a))
                .unwrap_or_else(|| "-".into());
            let target = attr(d, "target", "dev").unwrap_or_default();
            if details {
                t.row(vec![
                    d.attr("type").map(|v| v.into_owned()).unwrap_or_default(),
                    d.attr("device")
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|| "disk".into()),
                    target,
                    source,
                ]);
            } else {
                t.row(vec![target, source]);
            }
        }
    }
    let quiet = ctx.quiet;
    ctx.print(&t.render(!quiet));
    Ok(())
}

pub async fn screenshot(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let screen: u32 = match call.value("screen") {
        Some(s) => s
            .parse()
            .map_err(|_| Failure::msg(format!("invalid screen ID '{s}'")))?,
        None => 0,
    };
    let conn = ctx.conn().await?.clone();
    let (data, mime) = conn
        .domains()?
        .screenshot(d.handle(), screen)
        .await
        .map_err(|e| Failure::with(format!("could not take a screenshot of {}", d.name()), &e))?;
    let file = match call.value("file") {
        Some(f) => f.to_string(),
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|t| t.as_secs())
                .unwrap_or(0);
            format!("{}-{secs}.ppm", d.name())
        }
    };
    std::fs::write(&file, &data).map_err(|e| {
        Failure::msg(format!(
            "cannot write {file}: {}",
            super::virtkit_strerror(&e)
        ))
    })?;
    ctx.println(&format!("Screenshot saved to {file}, with type of {mime}"));
    Ok(())
}

/// Puts the terminal into raw mode and restores it when dropped.
struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    fn enter() -> std::io::Result<RawTerminal> {
        // SAFETY: termios is a plain C struct; all-zero bytes are valid.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is our stdin; `t` is a valid termios to fill.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = t;
        // SAFETY: `t` is a valid termios obtained above.
        unsafe { libc::cfmakeraw(&mut t) };
        // SAFETY: fd 0 and a valid termios.
        if unsafe { libc::tcsetattr(0, libc::TCSAFLUSH, &t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter` on fd 0.
        unsafe { libc::tcsetattr(0, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Which of `fds` are readable (or hung up), waiting until one is.
fn readable(fds: &[std::os::fd::RawFd]) -> std::io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `p` is a valid, exclusively borrowed array of `p.len()`
        // pollfd structures for the duration of the call.
        let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, -1) };
        if rc >= 0 {
            return Ok(p.iter().map(|x| x.revents != 0).collect());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Ctrl-], virsh's escape character.
const ESCAPE: u8 = 0x1d;

pub async fn console(ctx: &mut Ctx, call: &Call) -> CmdResult {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::msg(
            "Cannot run interactive console without a controlling TTY",
        ));
    }
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let path = conn
        .domains()?
        .console_path(d.handle(), call.value("devname"))
        .await?;
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::msg(format!("cannot open console {}: {e}", path.display())))?;
    // The pty needs no driver: let other virtkit processes use the URI
    // (to stop the guest, for one) while the console is open.
    let name = d.name().to_string();
    drop((d, conn));
    ctx.release_local_conn();
    ctx.println(&format!("Connected to domain '{name}'"));
    ctx.println("Escape character is ^] (Ctrl + ])");
    ctx.flush();
    let raw = RawTerminal::enter()
        .map_err(|e| Failure::msg(format!("cannot set the terminal to raw mode: {e}")))?;
    let mut from_dev = dev
        .try_clone()
        .map_err(|e| Failure::msg(format!("cannot duplicate the console fd: {e}")))?;
    // The guest's output, until the device closes (the guest stopped); its
    // end wakes the input side through `wake`.
    let (wake_rx, wake_tx) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Failure::msg(format!("cannot create a wake-up socket: {e}")))?;
    std::thread::spawn(move || {
        let _wake = wake_tx; // dropped when the output ends
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = from_dev.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    // The user's input, until Ctrl-] or the end of the guest's output.
    let mut to_dev = dev;
    let joined = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 256];
        let mut input = std::io::stdin();
        loop {
            match readable(&[0, wake_rx.as_raw_fd()]) {
                Ok(r) if r[1] => break,
                Ok(r) if r[0] => {}
                Ok(_) => continue,
                Err(_) => break,
            }
            let Ok(n) = input.read(&mut buf) else { break };
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if let Some(pos) = chunk.iter().position(|b| *b == ESCAPE) {
                let _ = to_dev.write_all(&chunk[..pos]);
                break;
            }
            if to_dev.write_all(chunk).is_err() {
                break;
            }
        }
    })
    .await;
    drop(raw);
    let _ = joined;
    ctx.println("");
    Ok(())
}
