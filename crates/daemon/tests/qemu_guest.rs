//! A real QEMU guest managed by virsh through virtkitd: define, start, the
//! guest's marker on its serial port, ACPI shutdown, restart, then the daemon
//! is stopped (the guest keeps running), a second daemon re-attaches to it,
//! and destroy leaves no QEMU behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, TempDir, have, run, skip};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox test guest (kernel + initramfs), built by the project's script.
fn test_guest() -> Option<PathBuf> {
    let dir = std::env::var_os("VIRTKIT_TEST_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-guest"));
    let ok = Command::new(workspace().join("scripts/build-test-guest"))
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(dir)
}

fn virsh(uri: &str, args: &[&str]) -> (bool, String, String) {
    let out = run(
        Command::new("virsh")
            .arg("-q")
            .arg("-c")
            .arg(uri)
            .args(args),
        Duration::from_secs(60),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn virsh_ok(uri: &str, args: &[&str]) -> String {
    let (ok, out, err) = virsh(uri, args);
    assert!(ok, "virsh {args:?} failed: {err}");
    out
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn qemu_pids_under(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.starts_with("/usr/bin/qemu-system") && c.contains(&root)
            })
        })
        .collect()
}

#[test]
fn virsh_runs_a_qemu_guest_through_virtkitd_and_a_new_daemon_reattaches() {
    if !have("virsh") {
        return skip("virsh is missing (scripts/install-test-deps base)");
    }
    if !have("qemu-system-x86_64") {
        return skip("qemu-system-x86_64 is missing (scripts/install-test-deps qemu)");
    }
    let Some(guest) = test_guest() else {
        return skip("cannot build the test guest (scripts/build-test-guest)");
    };
    let root = TempDir::new("qemu");
    let serial = root.path().join("vm1.serial");
    let xml = format!(
        "<domain type='qemu'>
  <name>vm1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='{}' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
        guest.join("vmlinuz").display(),
        guest.join("initrd.gz").display(),
        serial.display()
    );
    let xml_file = root.path().join("vm1.xml");
    std::fs::write(&xml_file, xml).unwrap();
    let markers = |m: &str| {
        std::fs::read_to_string(&serial)
            .unwrap_or_default()
            .matches(m)
            .count()
    };
    // libvirt's client refuses `embed` URIs over a transport, so the daemon
    // serves qemu:///session, whose directories come from its XDG variables:
    // all under this test's root.
    let xdg: Vec<(String, String)> = ["CONFIG_HOME", "DATA_HOME", "CACHE_HOME", "RUNTIME_DIR"]
        .iter()
        .map(|v| {
            let d = root.path().join(v.to_lowercase());
            std::fs::create_dir_all(&d).unwrap();
            (format!("XDG_{v}"), d.to_string_lossy().into_owned())
        })
        .collect();
    let start_daemon = || {
        let env: Vec<(&str, &str)> = xdg.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Daemon::start_with("", &env)
    };
    let uri_for = |d: &Daemon| format!("qemu+unix:///session?socket={}", d.sock().display());

    let mut daemon = start_daemon();
    let uri = uri_for(&daemon);
    assert_eq!(virsh_ok(&uri, &["uri"]), uri);
    virsh_ok(&uri, &["define", xml_file.to_str().unwrap()]);
    virsh_ok(&uri, &["start", "vm1"]);
    assert_eq!(virsh_ok(&uri, &["domstate", "vm1"]), "running");
    wait_until("the guest's READY marker", Duration::from_secs(120), || {
        markers("READY") >= 1
    });

    // ACPI shutdown through the daemon ends in shut off, with its reason.
    virsh_ok(&uri, &["shutdown", "vm1"]);
    wait_until("shut off", Duration::from_secs(60), || {
        virsh(&uri, &["domstate", "vm1"]).1 == "shut off"
    });
    assert_eq!(
        virsh_ok(&uri, &["domstate", "--reason", "vm1"]),
        "shut off (shutdown)"
    );
    assert!(qemu_pids_under(root.path()).is_empty(), "QEMU has exited");

    // Start again; stopping the daemon leaves the guest running.
    virsh_ok(&uri, &["start", "vm1"]);
    wait_until("the second READY marker", Duration::from_secs(120), || {
        markers("READY") >= 2
    });
    let pids = qemu_pids_under(root.path());
    assert_eq!(pids.len(), 1, "one QEMU for vm1");
    assert!(daemon.terminate(), "virtkitd exits cleanly on SIGTERM");
    assert_eq!(
        qemu_pids_under(root.path()),
        pids,
        "the guest outlives the daemon"
    );

    // A new daemon (new sockets) re-attaches and can control the guest.
    let mut daemon2 = start_daemon();
    let uri2 = uri_for(&daemon2);
    assert_eq!(virsh_ok(&uri2, &["domstate", "vm1"]), "running");
    let list = virsh_ok(&uri2, &["list"]);
    assert!(list.contains("vm1") && list.contains("running"), "{list}");
    virsh_ok(&uri2, &["destroy", "vm1"]);
    assert_eq!(virsh_ok(&uri2, &["domstate", "vm1"]), "shut off");
    assert!(qemu_pids_under(root.path()).is_empty(), "no QEMU left");
    virsh_ok(&uri2, &["undefine", "vm1"]);
    let (ok, _, err) = virsh(&uri2, &["domstate", "vm1"]);
    assert!(!ok && err.contains("vm1"), "{err}");
    assert!(daemon2.terminate());
}
