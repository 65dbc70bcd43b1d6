//! A real QEMU guest on a virtkit NAT network, managed by virsh through
//! virtkitd: network and guest defined and started, the guest's DHCP lease
//! and ping, ACPI shutdown, restart; the daemon is stopped with SIGTERM and
//! later killed with SIGKILL, and each new daemon finds the running guest and
//! the active network again; destroy leaves no QEMU or dnsmasq behind.
//!
//! The daemons run in a network namespace this test creates (named
//! `vkd-qemu-PID`), so the bridge, taps, nftables table and dnsmasq exist only
//! there; virsh reaches the daemon through its unix socket.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, TempDir, have, run, skip};
use std::process::Stdio;

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

/// A named network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Option<Netns> {
        let name = format!("vkd-qemu-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        let ns = Netns(name);
        ok.then(|| {
            let _ = Command::new("ip")
                .args(["-n", &ns.0, "link", "set", "lo", "up"])
                .status();
            ns
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// virtkitd with its own `--root`, in `ns`, with `env`. `ip netns exec`
/// execs the daemon, so the child's PID is the daemon's.
fn start_daemon(ns: &Netns, env: &[(String, String)]) -> Daemon {
    let root = TempDir::new("root");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_virtkitd"),
            "--root",
        ])
        .arg(root.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.path().join("virtkitd.log")).unwrap())
        .spawn()
        .expect("virtkitd starts");
    let d = Daemon { child, root };
    common::wait_listening(&d.sock(), "virtkitd's socket");
    d
}

fn pids_of_under(prog: &str, root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.split('\0').next().is_some_and(|a| a.ends_with(prog)) && c.contains(&root)
            })
        })
        .collect()
}

/// On drop (also when an assertion failed), ends the QEMU and dnsmasq
/// processes that this test's daemons started under `root`, by PID.
struct KillUnder(PathBuf);

impl Drop for KillUnder {
    fn drop(&mut self) {
        for prog in ["qemu-system-x86_64", "dnsmasq"] {
            for pid in pids_of_under(prog, &self.0) {
                // SAFETY: kill(2) on a PID whose command line names this
                // test's private root: a process this test caused to start.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

const NETWORK: &str = "<network><name>nat1</name><forward mode='nat'/>\
    <ip address='10.97.0.1' netmask='255.255.255.0'>\
    <dhcp><range start='10.97.0.10' end='10.97.0.50'/></dhcp></ip></network>";

#[test]
fn virsh_runs_a_networked_qemu_guest_through_virtkitd_across_daemon_restarts() {
    for tool in ["virsh", "qemu-system-x86_64", "dnsmasq", "nft", "ip"] {
        if !have(tool) {
            return skip(&format!(
                "{tool} is missing (scripts/install-test-deps base qemu net)"
            ));
        }
    }
    let Some(guest) = test_guest() else {
        return skip("cannot build the test guest (scripts/build-test-guest)");
    };
    let Some(ns) = Netns::new() else {
        return skip("cannot create a network namespace (needs CAP_SYS_ADMIN)");
    };
    let root = TempDir::new("qemu");
    let _reaper = KillUnder(root.path().to_path_buf());
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
    <interface type='network'><mac address='52:54:00:cd:00:01'/><source network='nat1'/><model type='virtio'/></interface>
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
    let net_file = root.path().join("nat1.xml");
    std::fs::write(&net_file, NETWORK).unwrap();
    let markers = |m: &str| {
        std::fs::read_to_string(&serial)
            .unwrap_or_default()
            .matches(m)
            .count()
    };
    // libvirt's client refuses `embed` URIs over a transport, so the daemon
    // serves qemu:///session, whose directories come from its XDG variables:
    // all under this test's root.
    let xdg: Vec<(String, String)> = [
        "CONFIG_HOME",
        "DATA_HOME",
        "CACHE_HOME",
        "STATE_HOME",
        "RUNTIME_DIR",
    ]
    .iter()
    .map(|v| {
        let d = root.path().join(v.to_lowercase());
        std::fs::create_dir_all(&d).unwrap();
        (format!("XDG_{v}"), d.to_string_lossy().into_owned())
    })
    .collect();
    let uri_for = |d: &Daemon| format!("qemu+unix:///session?socket={}", d.sock().display());

    let mut daemon = start_daemon(&ns, &xdg);
    let uri = uri_for(&daemon);
    virsh_ok(&uri, &["net-define", net_file.to_str().unwrap()]);
    virsh_ok(&uri, &["net-start", "nat1"]);
    virsh_ok(&uri, &["define", xml_file.to_str().unwrap()]);
    virsh_ok(&uri, &["start", "vm1"]);
    assert_eq!(virsh_ok(&uri, &["domstate", "vm1"]), "running");
    wait_until("the guest's DHCP lease", Duration::from_secs(120), || {
        markers("VIRTKIT-DHCP-OK 10.97.0.") >= 1
    });
    wait_until("the guest's ping", Duration::from_secs(60), || {
        markers("VIRTKIT-PING-OK") >= 1
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
    assert!(
        pids_of_under("qemu-system-x86_64", root.path()).is_empty(),
        "QEMU has exited"
    );

    // Start again; stopping the daemon leaves guest and network running.
    virsh_ok(&uri, &["start", "vm1"]);
    wait_until("the second READY marker", Duration::from_secs(120), || {
        markers("READY") >= 2
    });
    let qemu = pids_of_under("qemu-system-x86_64", root.path());
    let dnsmasq = pids_of_under("dnsmasq", root.path());
    assert_eq!((qemu.len(), dnsmasq.len()), (1, 1), "one QEMU, one dnsmasq");
    assert!(daemon.terminate(), "virtkitd exits cleanly on SIGTERM");

    // A new daemon (new sockets) finds both; then it is killed outright.
    let mut daemon2 = start_daemon(&ns, &xdg);
    let uri2 = uri_for(&daemon2);
    assert_eq!(virsh_ok(&uri2, &["domstate", "vm1"]), "running");
    assert!(
        virsh_ok(&uri2, &["net-list"]).contains("nat1"),
        "the network is active"
    );
    let _ = daemon2.child.kill(); // SIGKILL
    let _ = daemon2.child.wait();
    assert_eq!(pids_of_under("qemu-system-x86_64", root.path()), qemu);
    assert_eq!(pids_of_under("dnsmasq", root.path()), dnsmasq);

    // After SIGKILL, a third daemon still finds them, and can stop them.
    let mut daemon3 = start_daemon(&ns, &xdg);
    let uri3 = uri_for(&daemon3);
    let list = virsh_ok(&uri3, &["list"]);
    assert!(list.contains("vm1") && list.contains("running"), "{list}");
    let nets = virsh_ok(&uri3, &["net-list"]);
    assert!(nets.contains("nat1") && nets.contains("active"), "{nets}");
    virsh_ok(&uri3, &["destroy", "vm1"]);
    assert_eq!(virsh_ok(&uri3, &["domstate", "vm1"]), "shut off");
    virsh_ok(&uri3, &["net-destroy", "nat1"]);
    assert!(
        pids_of_under("qemu-system-x86_64", root.path()).is_empty(),
        "no QEMU left"
    );
    assert!(
        pids_of_under("dnsmasq", root.path()).is_empty(),
        "no dnsmasq left"
    );
    virsh_ok(&uri3, &["undefine", "vm1"]);
    virsh_ok(&uri3, &["net-undefine", "nat1"]);
    let (ok, _, err) = virsh(&uri3, &["domstate", "vm1"]);
    assert!(!ok && err.contains("vm1"), "{err}");
    assert!(daemon3.terminate());
}
