//! A busybox container on a virtkit NAT network, managed by virsh through
//! virtkitd at `lxc:///system` (which a `--root` daemon serves from its own
//! directory): network and container defined and started, the container's
//! DHCP lease and ping, `dominfo`, `domstats`, the console, suspend and
//! resume; the daemon is killed with SIGKILL and a new one finds the running
//! container; shutdown, destroy and undefine leave no supervisor, veth or
//! dnsmasq behind.
//!
//! The daemons run in a network namespace this test creates (`vkd-lxc-PID`),
//! so bridges, veths, nftables tables and dnsmasq exist only there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// The busybox root filesystem, built by the project's script.
fn test_rootfs() -> Option<PathBuf> {
    let out = Command::new(workspace().join("scripts/build-test-rootfs"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(PathBuf::from(dir).join("rootfs"))
}

/// The first argument of an LXC supervisor (`virtkit_driver_lxc::supervisor::MAGIC`).
const SUPERVISOR: &str = "--virtkit-lxc-supervisor-v1";

/// The supervisor PID recorded for `name` under the system directory
/// `system`, if that process is still a supervisor.
fn supervisor(system: &Path, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(system.join("run/lxc").join(name).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline
        .split(|b| *b == 0)
        .any(|a| a == SUPERVISOR.as_bytes())
        .then_some(pid)
}

/// On drop (also after a failed assertion), kills the supervisors of this
/// test's containers (their containers die with them), by PID.
struct KillSupervisors(PathBuf, &'static [&'static str]);

impl Drop for KillSupervisors {
    fn drop(&mut self) {
        for name in self.1 {
            if let Some(pid) = supervisor(&self.0, name) {
                // SAFETY: kill(2) on a PID whose command line is an LXC
                // supervisor and that this test's run directory records.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

const NETWORK: &str = "<network><name>lxcnet</name><forward mode='nat'/><bridge stp='off'/>\
    <ip address='10.98.0.1' netmask='255.255.255.0'>\
    <dhcp><range start='10.98.0.10' end='10.98.0.50'/></dhcp></ip></network>";

fn container_xml(rootfs: &Path, shared: &Path) -> String {
    let script = "udhcpc -i eth0 -n -q -t 20 -T 1 >/dev/null 2>&1; \
         cp /run/udhcpc.lease /shared/lease; \
         gw=$(cut -d' ' -f2 /run/udhcpc.lease); \
         if ping -c 1 -W 5 $gw >/dev/null 2>&1; then echo ok; else echo fail; fi > /shared/ping; \
         while :; do sh </dev/console >/dev/console 2>&1; done & \
         exec /sbin/init"
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;");
    format!(
        "<domain type='lxc'>
  <name>ct1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type>exe</type>
    <init>/bin/sh</init>
    <initarg>-c</initarg>
    <initarg>{script}</initarg>
  </os>
  <devices>
    <filesystem type='mount'><source dir='{}'/><target dir='/'/><readonly/></filesystem>
    <filesystem type='mount'><source dir='{}'/><target dir='/shared'/></filesystem>
    <filesystem type='ram'><source usage='8' units='MiB'/><target dir='/run'/></filesystem>
    <filesystem type='ram'><source usage='8' units='MiB'/><target dir='/tmp'/></filesystem>
    <interface type='network'><mac address='52:54:00:ce:00:01'/><source network='lxcnet'/></interface>
    <console type='pty'/>
  </devices>
</domain>
",
        rootfs.display(),
        shared.display()
    )
}

/// The links of the test's namespace, by name.
fn links(ns: &Netns) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", &ns.0, "-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn virsh_runs_a_networked_container_through_virtkitd_across_daemon_restarts() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip("containers need root");
    }
    for tool in ["virsh", "dnsmasq", "nft", "ip", "script"] {
        if !have(tool) {
            return skip(&format!(
                "{tool} is missing (scripts/install-test-deps base net lxc)"
            ));
        }
    }
    let Some(rootfs) = test_rootfs() else {
        return skip("cannot build the busybox root filesystem (scripts/build-test-rootfs)");
    };
    let Some(ns) = Netns::new("lxc") else {
        return skip("cannot create a network namespace (needs CAP_SYS_ADMIN)");
    };
    let state = TempDir::new("lxcstate");
    let system = state.path().join("system");
    let shared = state.path().join("shared");
    std::fs::create_dir_all(&system).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    let _reaper = KillUnder(system.clone(), &["dnsmasq"]);
    let _supervisors = KillSupervisors(system.clone(), &["ct1"]);
    let net_file = state.path().join("lxcnet.xml");
    std::fs::write(&net_file, NETWORK).unwrap();
    let xml_file = state.path().join("ct1.xml");
    std::fs::write(&xml_file, container_xml(&rootfs, &shared)).unwrap();
    let uri_for = |d: &Daemon| format!("lxc+unix:///system?socket={}", d.sock().display());

    let daemon = start_daemon_with_system(&ns, &[], Some(&system));
    let uri = uri_for(&daemon);
    virsh_ok(&uri, &["net-define", net_file.to_str().unwrap()]);
    virsh_ok(&uri, &["net-start", "lxcnet"]);
    virsh_ok(&uri, &["define", xml_file.to_str().unwrap()]);
    assert!(
        system.join("etc/lxc/ct1.xml").is_file() && system.join("etc/network/lxcnet.xml").is_file(),
        "a --root daemon keeps lxc:///system and its networks in its own directory"
    );
    virsh_ok(&uri, &["start", "ct1"]);
    assert_eq!(virsh_ok(&uri, &["domstate", "ct1"]), "running");
    let sup = supervisor(&system, "ct1").expect("a supervisor runs");

    wait_until("the container's ping", Duration::from_secs(60), || {
        std::fs::read_to_string(shared.join("ping")).is_ok_and(|s| !s.trim().is_empty())
    });
    let lease = std::fs::read_to_string(shared.join("lease")).unwrap_or_default();
    assert!(lease.starts_with("10.98.0."), "DHCP lease: {lease:?}");
    assert_eq!(
        std::fs::read_to_string(shared.join("ping")).unwrap().trim(),
        "ok",
        "the container pings its gateway"
    );
    let leases = virsh_ok(&uri, &["net-dhcp-leases", "lxcnet"]);
    assert!(leases.contains("52:54:00:ce:00:01"), "{leases}");
    let ip = lease.split_whitespace().next().unwrap_or_default();
    let ifaddr = virsh_ok(&uri, &["domifaddr", "ct1"]);
    assert!(
        ifaddr.contains("52:54:00:ce:00:01") && ifaddr.contains(&format!("{ip}/24")),
        "virsh domifaddr finds the container's lease: {ifaddr}"
    );
    // The container pinged the gateway, so the host knows it by ARP too.
    let arp = virsh_ok(&uri, &["domifaddr", "ct1", "--source", "arp"]);
    assert!(
        arp.contains("52:54:00:ce:00:01") && arp.contains(&format!("{ip}/0")),
        "virsh domifaddr --source arp: {arp}"
    );

    let info = virsh_ok(&uri, &["dominfo", "ct1"]);
    assert!(info.contains("OS Type:        exe"), "{info}");
    assert!(info.contains("State:          running"), "{info}");
    assert!(info.contains("Max memory:     65536 KiB"), "{info}");
    let stats = virsh_ok(&uri, &["domstats", "ct1"]);
    assert!(
        stats.contains("state.state=1") && stats.contains("balloon.maximum=65536"),
        "{stats}"
    );

    // The console, through the daemon's stream, on a terminal.
    let out = on_terminal(
        &format!("virsh -c '{uri}' console ct1"),
        "Escape character",
        "echo VK-$((6*7)) $(hostname)\r",
        "VK-42 ct1",
        Duration::from_secs(30),
    );
    assert!(out.contains("VK-42 ct1"), "console output: {out}");

    virsh_ok(&uri, &["suspend", "ct1"]);
    assert_eq!(
        virsh_ok(&uri, &["domstate", "--reason", "ct1"]),
        "paused (user)"
    );
    virsh_ok(&uri, &["resume", "ct1"]);
    assert_eq!(virsh_ok(&uri, &["domstate", "ct1"]), "running");

    // A daemon killed outright leaves the container running; the next one
    // finds it (and its network) again and can stop it.
    let mut daemon = daemon;
    let _ = daemon.child.kill(); // SIGKILL
    let _ = daemon.child.wait();
    assert_eq!(
        supervisor(&system, "ct1"),
        Some(sup),
        "the container outlives the daemon"
    );
    let daemon2 = start_daemon_with_system(&ns, &[], Some(&system));
    let uri2 = uri_for(&daemon2);
    let list = virsh_ok(&uri2, &["list"]);
    assert!(list.contains("ct1") && list.contains("running"), "{list}");
    assert!(virsh_ok(&uri2, &["net-list"]).contains("lxcnet"));

    // Shutdown (a signal to init: busybox has no initctl), with its reason.
    virsh_ok(&uri2, &["shutdown", "ct1"]);
    wait_until("shut off", Duration::from_secs(30), || {
        virsh(&uri2, &["domstate", "ct1"]).1 == "shut off"
    });
    assert_eq!(
        virsh_ok(&uri2, &["domstate", "--reason", "ct1"]),
        "shut off (shutdown)"
    );
    assert_eq!(supervisor(&system, "ct1"), None, "the supervisor is gone");

    // Start and destroy: nothing of the container stays.
    virsh_ok(&uri2, &["start", "ct1"]);
    let veths = links(&ns);
    assert!(
        veths.iter().any(|l| l.starts_with("vnet")),
        "a host-side veth: {veths:?}"
    );
    let out = virsh_loud(&uri2, &["destroy", "ct1"]);
    assert!(out.contains("Domain 'ct1' destroyed"), "{out}");
    assert_eq!(virsh_ok(&uri2, &["domstate", "ct1"]), "shut off");
    assert_eq!(supervisor(&system, "ct1"), None, "no supervisor left");
    let left = links(&ns);
    assert!(
        !left.iter().any(|l| l.starts_with("vnet")),
        "veth left behind: {left:?}"
    );
    virsh_ok(&uri2, &["net-destroy", "lxcnet"]);
    assert!(
        pids_of_under("dnsmasq", &system).is_empty(),
        "no dnsmasq left"
    );
    virsh_ok(&uri2, &["undefine", "ct1"]);
    virsh_ok(&uri2, &["net-undefine", "lxcnet"]);
    let (ok, _, err) = virsh(&uri2, &["domstate", "ct1"]);
    assert!(!ok && err.contains("ct1"), "{err}");
    let mut daemon2 = daemon2;
    assert!(daemon2.terminate(), "virtkitd exits cleanly on SIGTERM");
}
