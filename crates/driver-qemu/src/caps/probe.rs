//! Probing a QEMU binary: start it with no machine, ask over QMP, quit.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use virtkit_core::{Error, ErrorKind, Result};

use super::{CpuModel, Machine, QemuCaps, kvm_usable};
use crate::process::{Launch, QemuProcess};
use crate::qmp::{Qmp, QmpError};

const DEADLINE: Duration = Duration::from_secs(30);

/// libvirt-named capability flags the command-line builder consults, with
/// the QEMU version that brought each (major*1,000,000 + minor*1,000 +
/// micro). They are properties or option syntaxes that QMP does not list
/// cheaply, and every QEMU of at least that version has them.
const VERSION_FLAGS: &[(&str, u64)] = &[
    // -object, -device and -netdev take JSON.
    ("object.qapified", 6_000_000),
    ("device.json+hotplug", 7_000_000),
    ("netdev.json", 7_100_000),
    // Machine and device properties.
    ("machine-hpet", 7_000_000),
    ("smp-dies", 4_100_000),
    ("piix4.acpi-root-pci-hotplug", 5_200_000),
    ("virtio-balloon.free-page-reporting", 5_100_000),
    ("virtio-blk-pci.scsi.default.disabled", 5_000_000),
    ("cpu.migratable", 2_120_000),
    ("disable-s3", 1_500_000),
    ("disable-s4", 1_500_000),
    ("ich9-disable-s3", 1_500_000),
    ("ich9-disable-s4", 1_500_000),
];

/// Flags for options a QEMU had until the version given; `-no-acpi` went
/// away in 9.0 (ACPI is then switched off with the machine's `acpi=off`).
const REMOVED_FLAGS: &[(&str, u64)] = &[("no-acpi", 9_000_000)];

fn qmp_err(binary: &Path, e: QmpError) -> Error {
    Error::new(
        ErrorKind::OperationFailed,
        format!("probing {} failed: {e}", binary.display()),
    )
}

/// Probes `binary`, using `scratch` (a private directory) for its socket.
pub async fn probe(binary: &Path, scratch: &Path) -> Result<QemuCaps> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| Error::system(format_args!("cannot create {}", scratch.display()), &e))?;
    let sock = scratch.join(format!("probe-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock)
        .map_err(|e| Error::system(format_args!("cannot bind {}", sock.display()), &e))?;
    let fd = listener.as_raw_fd();
    let args: Vec<String> = [
        "-S",
        "-no-user-config",
        "-nodefaults",
        "-nographic",
        "-machine",
        "none",
        "-chardev",
        &format!("socket,id=mon,fd={fd},server=on,wait=off"),
        "-mon",
        "chardev=mon,id=monitor,mode=control",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = scratch.join("probe.log");
    let env = vec![("LC_ALL".to_string(), "C".to_string())];
    let proc = QemuProcess::spawn(&Launch {
        binary,
        args: &args,
        env: &env,
        log: &log,
        keep_fds: &[fd],
    })?;
    let result = ask(binary, &sock).await;
    // Whatever happened, the probe process goes.
    let _ = proc.terminate(Duration::from_secs(2), true).await;
    drop(listener);
    let _ = std::fs::remove_file(&sock);
    if result.is_err() {
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        if !out.trim().is_empty() {
            return result.map_err(|e| e.context(format!("QEMU said: {}", out.trim())));
        }
    }
    let _ = std::fs::remove_file(&log);
    result
}

async fn ask(binary: &Path, sock: &Path) -> Result<QemuCaps> {
    let (qmp, greeting) = Qmp::connect(sock, DEADLINE)
        .await
        .map_err(|e| qmp_err(binary, e))?;
    let q = |cmd: &'static str, args: Option<Value>| {
        let qmp = qmp.clone();
        async move {
            qmp.execute_raw(cmd, args, DEADLINE)
                .await
                .map_err(|e| qmp_err(binary, e))
        }
    };
    let target = q("query-target", None).await?;
    let machines = q("query-machines", None).await?;
    let types = q("qom-list-types", Some(json!({"abstract": false}))).await?;
    let cpus = q("query-cpu-definitions", None)
        .await
        .unwrap_or(Value::Null);
    let commands = q("query-commands", None).await?;
    // `-sandbox` exists only in builds with seccomp.
    let sandbox = q(
        "query-command-line-options",
        Some(json!({"option": "sandbox"})),
    )
    .await
    .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));

    let mut caps = QemuCaps {
        binary: binary.to_path_buf(),
        version: greeting.version,
        package: greeting.package,
        arch: target
            .get("arch")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        flags: Default::default(),
        machines: Vec::new(),
        cpu_models: Vec::new(),
        kvm: kvm_usable(),
    };
    for t in types.as_array().into_iter().flatten() {
        if let Some(n) = t.get("name").and_then(Value::as_str) {
            caps.flags.insert(n.to_string());
        }
    }
    for c in commands.as_array().into_iter().flatten() {
        if let Some(n) = c.get("name").and_then(Value::as_str) {
            caps.flags.insert(format!("qmp:{n}"));
        }
    }
    // Features every QEMU virtkit supports has; named as libvirt names them.
    for f in ["blockdev", "kvm", "tcg"] {
        caps.flags.insert(f.to_string());
    }
    for (flag, since) in VERSION_FLAGS {
        if caps.version >= *since {
            caps.flags.insert(flag.to_string());
        }
    }
    for (flag, until) in REMOVED_FLAGS {
        if caps.version < *until {
            caps.flags.insert(flag.to_string());
        }
    }
    if sandbox {
        caps.flags.insert("seccomp-sandbox".to_string());
    }
    let accels: &[&str] = if caps.kvm { &["kvm", "tcg"] } else { &["tcg"] };
    for m in machines.as_array().into_iter().flatten() {
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let b = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        for accel in accels {
            caps.machines.push(Machine {
                accel: accel.to_string(),
                name: s("name").unwrap_or_default(),
                alias: s("alias"),
                default: b("is-default"),
                max_cpus: m.get("cpu-max").and_then(Value::as_u64).unwrap_or(1) as u32,
                default_cpu: s("default-cpu-type"),
                default_ram_id: s("default-ram-id"),
                deprecated: b("deprecated"),
            });
        }
    }
    for c in cpus.as_array().into_iter().flatten() {
        let Some(name) = c.get("name").and_then(Value::as_str) else {
            continue;
        };
        let usable = c
            .get("unavailable-features")
            .and_then(Value::as_array)
            .is_none_or(|u| u.is_empty());
        for accel in accels {
            caps.cpu_models.push(CpuModel {
                accel: accel.to_string(),
                name: name.to_string(),
                usable,
            });
        }
    }
    let _ = qmp.execute_raw("quit", None, Duration::from_secs(2)).await;
    Ok(caps)
}
