//! Statistics and consoles of running guests: CPU times from `/proc`,
//! balloon, vCPU threads and block I/O from QMP, interface traffic from the
//! host side of each tap (swapped to the guest's point of view, as libvirt
//! reports it), console ptys and screenshots.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use virtkit_core::xml::Element;
use virtkit_core::{
    BlockStats, Error, ErrorKind, InterfaceStats, Result, StatsGroups, TypedParams, TypedValue,
};

use crate::state::Live;

const DEADLINE: Duration = Duration::from_secs(10);

fn qmp_err(e: crate::qmp::QmpError) -> Error {
    Error::new(ErrorKind::OperationFailed, e.to_string())
}

/// User and system CPU time of a task, in nanoseconds, from its `stat` file.
pub fn task_cpu_ns(stat_path: &str) -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return (0, 0);
    };
    let Some(close) = stat.rfind(')') else {
        return (0, 0);
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // utime and stime are stat fields 14 and 15 (11 and 12 after the name).
    (
        ticks(11) * 1_000_000_000 / hz,
        ticks(12) * 1_000_000_000 / hz,
    )
}

fn attr(e: &Element, child: &str, name: &str) -> Option<String> {
    e.child(child)
        .and_then(|c| c.attr(name))
        .map(|v| v.into_owned())
}

/// The disks of the live definition: (target, source path).
fn disks(def: &Element) -> Vec<(String, String)> {
    def.child("devices")
        .map(|d| {
            d.children_named("disk")
                .map(|disk| {
                    let target = attr(disk, "target", "dev").unwrap_or_default();
                    let src = attr(disk, "source", "file")
                        .or_else(|| attr(disk, "source", "dev"))
                        .unwrap_or_default();
                    (target, src)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The interfaces of the live definition: (host device, MAC).
fn interfaces(def: &Element) -> Vec<(String, String)> {
    def.child("devices")
        .map(|d| {
            d.children_named("interface")
                .map(|i| {
                    (
                        attr(i, "target", "dev").unwrap_or_default(),
                        attr(i, "mac", "address").unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Block statistics per source path, from QMP.
async fn blockstats_by_path(live: &Live) -> Result<Vec<(String, Value)>> {
    let block = live
        .qmp
        .execute_raw("query-block", None, DEADLINE)
        .await
        .map_err(qmp_err)?;
    let stats = live
        .qmp
        .execute_raw(
            "query-blockstats",
            Some(json!({"query-nodes": false})),
            DEADLINE,
        )
        .await
        .map_err(qmp_err)?;
    let mut out = Vec::new();
    for b in block.as_array().into_iter().flatten() {
        let Some(ins) = b.get("inserted") else {
            continue;
        };
        let file = ins.get("file").and_then(Value::as_str).unwrap_or_default();
        let qdev = b.get("qdev").and_then(Value::as_str).unwrap_or_default();
        let st = stats
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s.get("qdev").and_then(Value::as_str) == Some(qdev));
        if let Some(st) = st.and_then(|s| s.get("stats")) {
            // The file name of a format node is its protocol node's path;
            // json: pseudo-names carry it inside.
            out.push((file.to_string(), st.clone()));
        }
    }
    Ok(out)
}

fn num(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn find_stats<'a>(by_path: &'a [(String, Value)], source: &str) -> Option<&'a Value> {
    by_path
        .iter()
        .find(|(f, _)| f == source || f.contains(&format!("\"{source}\"")))
        .map(|(_, v)| v)
}

/// A tap's counters from the guest's side: what the tap sent, the guest
/// received.
fn tap_stats(dev: &str) -> Option<InterfaceStats> {
    let t = virtkit_netdev::counters::device_counters(None, dev)?;
    Some(InterfaceStats {
        rx_bytes: t.tx_bytes,
        rx_packets: t.tx_packets,
        rx_errs: t.tx_errs,
        rx_drop: t.tx_drop,
        tx_bytes: t.rx_bytes,
        tx_packets: t.rx_packets,
        tx_errs: t.rx_errs,
        tx_drop: t.rx_drop,
    })
}

/// `virDomainBlockStats` for a disk named by target or source.
pub async fn block_stats(live: &Live, disk: &str) -> Result<BlockStats> {
    let def = live.live_def.root();
    let (_, source) = disks(def)
        .into_iter()
        .find(|(t, s)| t == disk || s == disk)
        .ok_or_else(|| {
            Error::invalid_arg(format!("invalid path: {disk} (not a disk of this domain)"))
        })?;
    let by_path = blockstats_by_path(live).await?;
    let st = find_stats(&by_path, &source).ok_or_else(|| {
        Error::invalid_arg(format!(
            "no statistics for disk {disk} (is a medium inserted?)"
        ))
    })?;
    Ok(BlockStats {
        rd_req: num(st, "rd_operations"),
        rd_bytes: num(st, "rd_bytes"),
        wr_req: num(st, "wr_operations"),
        wr_bytes: num(st, "wr_bytes"),
        errs: -1,
    })
}

/// `virDomainInterfaceStats` for an interface named by device or MAC.
pub fn interface_stats(live: &Live, iface: &str) -> Result<InterfaceStats> {
    let (dev, _) = interfaces(live.live_def.root())
        .into_iter()
        .find(|(d, m)| d == iface || m.eq_ignore_ascii_case(iface))
        .ok_or_else(|| {
            Error::invalid_arg(format!("invalid path, '{iface}' is not a known interface"))
        })?;
    tap_stats(&dev).ok_or_else(|| {
        Error::new(
            ErrorKind::OperationFailed,
            format!("no statistics for interface '{iface}': it has no host device"),
        )
    })
}

/// The groups of `domstats` for a running guest (state is added by the caller).
pub async fn stats(live: &Live, groups: StatsGroups, out: &mut TypedParams) -> Result<()> {
    let def = live.live_def.root();
    let pid = live.process.pid();
    if groups.contains(StatsGroups::CPU_TOTAL) {
        let (user, system) = task_cpu_ns(&format!("/proc/{pid}/stat"));
        out.push(("cpu.time".into(), TypedValue::ULLong(user + system)));
        out.push(("cpu.user".into(), TypedValue::ULLong(user)));
        out.push(("cpu.system".into(), TypedValue::ULLong(system)));
    }
    if groups.contains(StatsGroups::BALLOON) {
        let max = live.live_def.memory_kib();
        let current = match live.qmp.execute_raw("query-balloon", None, DEADLINE).await {
            Ok(v) => v
                .get("actual")
                .and_then(Value::as_u64)
                .map_or(max, |b| b / 1024),
            Err(_) => live.live_def.current_memory_kib(),
        };
        out.push(("balloon.current".into(), TypedValue::ULLong(current)));
        out.push(("balloon.maximum".into(), TypedValue::ULLong(max)));
    }
    if groups.contains(StatsGroups::VCPU) {
        let cpus = live
            .qmp
            .execute_raw("query-cpus-fast", None, DEADLINE)
            .await
            .map_err(qmp_err)?;
        let list = cpus.as_array().cloned().unwrap_or_default();
        let max = live.live_def.vcpus().max(list.len() as u32);
        out.push(("vcpu.current".into(), TypedValue::UInt(list.len() as u32)));
        out.push(("vcpu.maximum".into(), TypedValue::UInt(max)));
        for c in &list {
            let idx = num(c, "cpu-index");
            let tid = num(c, "thread-id");
            let (u, s) = task_cpu_ns(&format!("/proc/{pid}/task/{tid}/stat"));
            out.push((format!("vcpu.{idx}.state"), TypedValue::Int(1)));
            out.push((format!("vcpu.{idx}.time"), TypedValue::ULLong(u + s)));
        }
    }
    if groups.contains(StatsGroups::INTERFACE) {
        let ifaces = interfaces(def);
        out.push(("net.count".into(), TypedValue::UInt(ifaces.len() as u32)));
        for (i, (dev, _)) in ifaces.iter().enumerate() {
            out.push((format!("net.{i}.name"), TypedValue::String(dev.clone())));
            if let Some(st) = tap_stats(dev) {
                out.extend(st.domstats(i));
            }
        }
    }
    if groups.contains(StatsGroups::BLOCK) {
        let ds = disks(def);
        let by_path = blockstats_by_path(live).await.unwrap_or_default();
        out.push(("block.count".into(), TypedValue::UInt(ds.len() as u32)));
        for (i, (target, src)) in ds.iter().enumerate() {
            out.push((
                format!("block.{i}.name"),
                TypedValue::String(target.clone()),
            ));
            if !src.is_empty() {
                out.push((format!("block.{i}.path"), TypedValue::String(src.clone())));
            }
            if let Some(st) = find_stats(&by_path, src) {
                for (k, q) in [
                    ("rd.reqs", "rd_operations"),
                    ("rd.bytes", "rd_bytes"),
                    ("rd.times", "rd_total_time_ns"),
                    ("wr.reqs", "wr_operations"),
                    ("wr.bytes", "wr_bytes"),
                    ("wr.times", "wr_total_time_ns"),
                    ("fl.reqs", "flush_operations"),
                    ("fl.times", "flush_total_time_ns"),
                ] {
                    out.push((
                        format!("block.{i}.{k}"),
                        TypedValue::ULLong(num(st, q).max(0) as u64),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The host end of a character device: the pty of a `pty` chardev, or the
/// socket path of a `unix` one. `dev` is an alias (`serial0`, `console0`);
/// `None` takes the first serial port.
pub async fn console_path(live: &Live, dev: Option<&str>) -> Result<PathBuf> {
    let label = match dev {
        None | Some("console0") | Some("serial0") => "charserial0".to_string(),
        Some(d) if d.starts_with("serial") => format!("char{d}"),
        Some(d) if d.starts_with("channel") => format!("char{d}"),
        Some(d) => {
            return Err(Error::invalid_arg(format!(
                "unknown character device '{d}' (use serial0, serial1, channel0...)"
            )));
        }
    };
    let list = live
        .qmp
        .execute_raw("query-chardev", None, DEADLINE)
        .await
        .map_err(qmp_err)?;
    let entry = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c.get("label").and_then(Value::as_str) == Some(label.as_str()))
        .ok_or_else(|| {
            Error::operation_invalid(format!(
                "the domain has no console device '{}'",
                dev.unwrap_or("serial0")
            ))
        })?;
    let filename = entry
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(p) = filename.strip_prefix("pty:") {
        return Ok(PathBuf::from(p));
    }
    if let Some(rest) = filename.strip_prefix("unix:") {
        return Ok(PathBuf::from(rest.split(',').next().unwrap_or(rest)));
    }
    Err(Error::operation_invalid(format!(
        "the console device is not interactive (it is '{filename}'); use <serial type='pty'> to attach"
    )))
}

/// A screenshot as PPM.
pub async fn screenshot(live: &Live, screen: u32) -> Result<(Vec<u8>, String)> {
    let file = live.run_dir.join(format!("screenshot-{screen}.ppm"));
    let _ = std::fs::remove_file(&file);
    let mut args = json!({"filename": file.display().to_string()});
    if screen != 0 {
        args["head"] = json!(screen);
    }
    live.qmp
        .execute_raw("screendump", Some(args), Duration::from_secs(30))
        .await
        .map_err(qmp_err)?;
    let data = std::fs::read(&file)
        .map_err(|e| Error::system(format_args!("cannot read {}", file.display()), &e))?;
    let _ = std::fs::remove_file(&file);
    Ok((data, "image/x-portable-pixmap".into()))
}
