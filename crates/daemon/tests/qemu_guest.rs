//! A real QEMU guest on a virtkit NAT network, managed by virsh through
//! virtkitd: network and guest defined and started, the guest's DHCP lease
//! and ping, ACPI shutdown, restart; the daemon is stopped with SIGTERM and
//! later killed with SIGKILL, and each new daemon finds the running guest and
//! the active network again; destroy leaves no QEMU or dnsmasq behind.
//!
//! A second test drives the monitoring, network and stream procedures
//! through the daemon, with virsh and with virtkit's own remote driver:
//! DHCP leases, domain, disk and interface statistics, `net-update`,
//! network and domain events, domain capabilities, a screenshot and the
//! serial console.
//!
//! The daemons run in network namespaces these tests create (named
//! `vkd-TAG-PID`), so the bridges, taps, nftables tables and dnsmasq exist
//! only there; virsh reaches the daemon through its unix socket.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use std::process::Stdio;

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

/// The TCG test guest `vm1` (the test kernel, 256 MiB, ACPI) with
/// the given `devices` and no memory balloon.
fn guest_xml(guest: &Path, devices: &str) -> String {
    format!(
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
    {devices}
    <memballoon model='none'/>
  </devices>
</domain>
",
        guest.join("vmlinuz").display(),
        guest.join("initrd.gz").display(),
    )
}

/// How often `marker` appears in the file at `path` (a serial log).
fn count_in(path: &Path, marker: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(marker)
        .count()
}

/// The XDG variables for a daemon whose `qemu:///session` lives under
/// `root` (the directories are made). libvirt's client refuses `embed`
/// URIs over a transport, so the tests use the session instance, whose
/// directories come from these variables.
fn session_env(root: &Path) -> Vec<(String, String)> {
    [
        "CONFIG_HOME",
        "DATA_HOME",
        "CACHE_HOME",
        "STATE_HOME",
        "RUNTIME_DIR",
    ]
    .iter()
    .map(|v| {
        let d = root.join(v.to_lowercase());
        std::fs::create_dir_all(&d).unwrap();
        (format!("XDG_{v}"), d.to_string_lossy().into_owned())
    })
    .collect()
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
    let Some(ns) = Netns::new("qemu") else {
        return skip("cannot create a network namespace (needs CAP_SYS_ADMIN)");
    };
    let root = TempDir::new("qemu");
    let _reaper = KillUnder(
        root.path().to_path_buf(),
        &["qemu-system-x86_64", "dnsmasq"],
    );
    let serial = root.path().join("vm1.serial");
    let xml = guest_xml(
        &guest,
        &format!(
            "<interface type='network'><mac address='52:54:00:cd:00:01'/><source network='nat1'/><model type='virtio'/></interface>
    <serial type='file'><source path='{}' append='on'/><target port='0'/></serial>",
            serial.display()
        ),
    );
    let xml_file = root.path().join("vm1.xml");
    std::fs::write(&xml_file, xml).unwrap();
    let net_file = root.path().join("nat1.xml");
    std::fs::write(&net_file, NETWORK).unwrap();
    let markers = |m: &str| count_in(&serial, m);
    let xdg = session_env(root.path());
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

/// An event watcher (`virsh event`/`net-event --loop`) stopped with SIGINT,
/// which makes virsh print what it got and exit.
struct Watcher(Option<std::process::Child>);

impl Watcher {
    fn start(uri: &str, args: &[&str]) -> Watcher {
        let child = Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("virsh starts");
        Watcher(Some(child))
    }

    fn stop(mut self) -> String {
        let child = self.0.take().unwrap();
        // SAFETY: kill(2) on the PID of our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of `key=` in `domstats` output.
fn stat(out: &str, key: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .next()
}

#[test]
fn monitoring_network_update_events_and_console_through_virtkitd() {
    for tool in [
        "virsh",
        "qemu-system-x86_64",
        "dnsmasq",
        "nft",
        "ip",
        "script",
    ] {
        if !have(tool) {
            return skip(&format!(
                "{tool} is missing (scripts/install-test-deps base qemu net)"
            ));
        }
    }
    let Some(guest) = test_guest() else {
        return skip("cannot build the test guest (scripts/build-test-guest)");
    };
    let Some(ns) = Netns::new("mon") else {
        return skip("cannot create a network namespace (needs CAP_SYS_ADMIN)");
    };
    let root = TempDir::new("qmon");
    let _reaper = KillUnder(
        root.path().to_path_buf(),
        &["qemu-system-x86_64", "dnsmasq"],
    );
    let serial = root.path().join("vm1.serial");
    let disk = root.path().join("vm1-disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    // serial0 is a pty (the console) that also logs to a file (the markers).
    let xml = guest_xml(
        &guest,
        &format!(
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:cd:00:01'/><source network='nat1'/><model type='virtio'/></interface>
    <serial type='pty'><log file='{}' append='on'/><target port='0'/></serial>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>",
            disk.display(),
            serial.display()
        ),
    );
    let xml_file = root.path().join("vm1.xml");
    std::fs::write(&xml_file, xml).unwrap();
    let net_file = root.path().join("nat1.xml");
    std::fs::write(&net_file, NETWORK).unwrap();
    let markers = |m: &str| count_in(&serial, m);
    let xdg = session_env(root.path());
    let mut daemon = start_daemon(&ns, &xdg);
    let uri = format!("qemu+unix:///session?socket={}", daemon.sock().display());
    let uri_ro = format!("qemu+unix:///session?socket={}", daemon.sock_ro().display());
    let log = || daemon.log();

    // Network events come from the network driver behind qemu:///session.
    let net_events = Watcher::start(&uri, &["net-event", "--event", "lifecycle", "--loop"]);
    let dom_events = Watcher::start(&uri, &["event", "--all", "--loop"]);
    std::thread::sleep(Duration::from_millis(800));
    virsh_ok(&uri, &["net-define", net_file.to_str().unwrap()]);
    virsh_ok(&uri, &["net-start", "nat1"]);
    virsh_ok(&uri, &["define", xml_file.to_str().unwrap()]);
    virsh_ok(&uri, &["start", "vm1"]);
    wait_until("the guest's DHCP lease", Duration::from_secs(120), || {
        markers("VIRTKIT-DHCP-OK 10.97.0.") >= 1
    });
    wait_until("the guest's ping", Duration::from_secs(60), || {
        markers("VIRTKIT-PING-OK") >= 1
    });
    let text = std::fs::read_to_string(&serial).unwrap();
    let addr = text
        .split("VIRTKIT-DHCP-OK ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();

    // DHCP leases: the guest's MAC and the address it reported.
    let leases = virsh_ok(&uri, &["net-dhcp-leases", "nat1"]);
    assert!(
        leases.contains("52:54:00:cd:00:01") && leases.contains(&format!("{addr}/24")),
        "{leases}"
    );
    assert!(leases.contains("ipv4"), "{leases}");
    let one = virsh_ok(
        &uri,
        &["net-dhcp-leases", "nat1", "--mac", "52:54:00:cd:00:01"],
    );
    assert!(one.contains(&addr), "{one}");
    let none = virsh_ok(
        &uri,
        &["net-dhcp-leases", "nat1", "--mac", "52:54:00:cd:00:99"],
    );
    assert!(!none.contains("52:54"), "{none}");
    // The guest's address as virsh finds it (from the network's leases).
    let ifaddr = virsh_ok(&uri, &["domifaddr", "vm1"]);
    assert!(
        ifaddr.contains("52:54:00:cd:00:01") && ifaddr.contains(&format!("ipv4         {addr}/24")),
        "{ifaddr}"
    );

    // Domain statistics, all groups, one group, all domains.
    let stats = virsh_ok(&uri, &["domstats", "vm1"]);
    assert_eq!(stat(&stats, "state.state").as_deref(), Some("1"), "{stats}");
    assert!(
        stat(&stats, "cpu.time").is_some_and(|t| t.parse::<u64>().unwrap() > 0),
        "{stats}"
    );
    assert_eq!(stat(&stats, "block.0.name").as_deref(), Some("vda"));
    let tap = stat(&stats, "net.0.name").expect("an interface");
    assert!(tap.starts_with("vnet") || tap.starts_with("vk"), "{stats}");
    let blk = virsh_ok(&uri, &["domstats", "--block", "vm1"]);
    assert!(
        stat(&blk, "block.0.rd.reqs").is_some() && stat(&blk, "cpu.time").is_none(),
        "{blk}"
    );
    let all = virsh_ok(&uri, &["domstats"]);
    assert!(all.contains("Domain: 'vm1'"), "{all}");

    // Disk and interface statistics, monitoring by XML, control.
    let bs = virsh_ok(&uri, &["domblkstat", "vm1", "vda"]);
    let rd_req: u64 = bs
        .lines()
        .find_map(|l| l.strip_prefix("vda rd_req "))
        .unwrap_or_else(|| panic!("{bs}"))
        .parse()
        .unwrap();
    assert!(rd_req > 0, "the guest kernel read its disk: {bs}");
    let human = virsh_ok(&uri, &["domblkstat", "vm1", "vda", "--human"]);
    assert!(human.contains("number of read operations:"), "{human}");
    // Disk I/O limits through the daemon: virsh sets and reads them back
    // from QEMU; virtkit's remote driver reads the same.
    virsh_ok(
        &uri,
        &[
            "blkdeviotune",
            "vm1",
            "vda",
            "--total-bytes-sec",
            "20971520",
            "--live",
        ],
    );
    let tune = virsh_ok(&uri, &["blkdeviotune", "vm1", "vda"]);
    assert!(tune.contains("total_bytes_sec: 20971520"), "{tune}");
    assert!(tune.contains("read_iops_sec  : 0"), "{tune}");
    let (ok, _, err) = virsh(
        &uri,
        &["blkdeviotune", "vm1", "vda", "--read-bytes-sec", "5"],
    );
    assert!(
        !ok && err.contains("cannot be set at the same time"),
        "{err}"
    );
    let ifl = virsh_ok(&uri, &["domiflist", "vm1"]);
    assert!(
        ifl.contains(&tap) && ifl.contains("52:54:00:cd:00:01"),
        "{ifl}"
    );
    let is = virsh_ok(&uri, &["domifstat", "vm1", &tap]);
    let tx: u64 = is
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{tap} tx_packets ")))
        .unwrap_or_else(|| panic!("{is}"))
        .parse()
        .unwrap();
    assert!(tx > 0, "the guest sent DHCP and ping: {is}");
    let by_mac = virsh_ok(&uri, &["domifstat", "vm1", "52:54:00:cd:00:01"]);
    assert!(by_mac.contains("rx_bytes"), "{by_mac}");
    assert!(virsh_ok(&uri, &["domblklist", "vm1"]).contains("vda"));
    assert_eq!(virsh_ok(&uri, &["domcontrol", "vm1"]), "ok");
    let caps = virsh_ok(&uri, &["domcapabilities"]);
    assert!(caps.contains("<domainCapabilities>"), "{caps}");

    // libvirt-python's calls for the same procedures.
    if let Some(py) = common::python_libvirt() {
        let script = r#"
import sys, libvirt
c = libvirt.open(sys.argv[1])
for dom, st in c.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_INTERFACE):
    print("stats", dom.name(), st["state.state"], st["net.count"], st["net.0.name"])
d = c.lookupByName("vm1")
print("blk", d.blockStats("vda")[0] > 0)
print("blkflags", sorted(d.blockStatsFlags("vda").keys()))
print("if", d.interfaceStats("52:54:00:cd:00:01")[5] > 0)
print("ctl", d.controlInfo())
for l in c.networkLookupByName("nat1").DHCPLeases():
    print("lease", l["mac"], l["ipaddr"], l["prefix"], l["type"])
"#;
        let out = run(
            Command::new(py).args(["-c", script, &uri]),
            Duration::from_secs(60),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = format!(
            "stats vm1 1 1 {tap}\nblk True\n\
             blkflags ['rd_bytes', 'rd_operations', 'wr_bytes', 'wr_operations']\n\
             if True\nctl [0, 0, 0]\nlease 52:54:00:cd:00:01 {addr} 24 0\n"
        );
        assert_eq!(text, want);
    }

    // A live DHCP host: in the running network only, not its definition
    // (net-dumpxml --inactive sends VIR_NETWORK_XML_INACTIVE, 1 on the wire).
    let host = "<host mac='52:54:00:cd:00:02' name='other' ip='10.97.0.77'/>";
    assert_eq!(
        virsh_loud(
            &uri,
            &["net-update", "nat1", "add", "ip-dhcp-host", host, "--live"]
        ),
        "Updated network nat1 live state"
    );
    assert!(virsh_ok(&uri, &["net-dumpxml", "nat1"]).contains("52:54:00:cd:00:02"));
    assert!(!virsh_ok(&uri, &["net-dumpxml", "--inactive", "nat1"]).contains("52:54:00:cd:00:02"));
    let (ok, _, err) = virsh(
        &uri,
        &["net-update", "nat1", "add", "ip-dhcp-host", host, "--live"],
    );
    assert!(!ok && err.contains("52:54:00:cd:00:02"), "{err}");

    // A screenshot of the VNC display, streamed.
    let shot = root.path().join("shot.ppm");
    let said = virsh_loud(&uri, &["screenshot", "vm1", shot.to_str().unwrap()]);
    assert!(said.contains("image/x-portable-pixmap"), "{said}");
    let img = std::fs::read(&shot).unwrap();
    assert!(img.starts_with(b"P6") && img.len() > 1000, "{}", img.len());

    // The serial console: the guest's shell answers through the stream.
    let out = on_terminal(
        &format!("virsh -c '{uri}' console vm1"),
        "Escape character is",
        "echo VIRTKIT-CONSOLE-$((6*7))\r",
        "VIRTKIT-CONSOLE-42",
        Duration::from_secs(30),
    );
    assert!(
        out.contains("VIRTKIT-CONSOLE-42"),
        "virsh console:\n{out}\n{}",
        log()
    );
    // Twice: the first session ended cleanly.
    let out = on_terminal(
        &format!("virsh -c '{uri}' console vm1"),
        "Escape character is",
        "echo VIRTKIT-AGAIN-$((6*8))\r",
        "VIRTKIT-AGAIN-48",
        Duration::from_secs(30),
    );
    assert!(out.contains("VIRTKIT-AGAIN-48"), "virsh console:\n{out}");

    // The read-only socket reads statistics and leases, denies the rest.
    assert!(virsh_ok(&uri_ro, &["domstats", "vm1"]).contains("state.state=1"));
    assert!(virsh_ok(&uri_ro, &["net-dhcp-leases", "nat1"]).contains("52:54:00:cd:00:01"));
    for (args, api) in [
        (
            vec!["net-update", "nat1", "delete", "ip-dhcp-host", host],
            "virNetworkUpdate",
        ),
        (
            vec!["screenshot", "vm1", shot.to_str().unwrap()],
            "virDomainScreenshot",
        ),
        (vec!["domcapabilities"], "virConnectGetDomainCapabilities"),
    ] {
        let (ok, _, err) = virsh(&uri_ro, &args);
        assert!(
            !ok && err.contains(&format!("read only access prevents {api}")),
            "{args:?}: {err}"
        );
    }
    let out = on_terminal(
        &format!("virsh -c '{uri_ro}' console vm1"),
        "read only",
        "",
        "read only",
        Duration::from_secs(10),
    );
    assert!(
        out.contains("read only access prevents virDomainOpenConsole"),
        "{out}"
    );

    // virtkit's own remote driver, for the same flows.
    let vk = common::virtkit_bin();
    let virtkit = |args: &[&str]| {
        let out = run(
            Command::new(&vk).arg("-c").arg(&uri).args(args),
            Duration::from_secs(60),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "virtkit {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let leases = virtkit(&["net-dhcp-leases", "nat1"]);
    assert!(
        leases.contains("52:54:00:cd:00:01") && leases.contains(&format!("{addr}/24")),
        "{leases}"
    );
    let vstats = virtkit(&["domstats", "vm1"]);
    assert_eq!(
        stat(&vstats, "state.state").as_deref(),
        Some("1"),
        "{vstats}"
    );
    assert_eq!(stat(&vstats, "net.0.name").as_deref(), Some(tap.as_str()));
    let vbs = virtkit(&["domblkstat", "vm1", "vda"]);
    assert!(vbs.contains("vda rd_req "), "{vbs}");
    let vtune = virtkit(&["blkdeviotune", "vm1", "vda"]);
    assert!(vtune.contains("total_bytes_sec: 20971520"), "{vtune}");
    let vis = virtkit(&["domifstat", "vm1", &tap]);
    assert!(vis.contains(&format!("{tap} tx_packets ")), "{vis}");
    assert!(virtkit(&["domcapabilities"]).contains("<domainCapabilities>"));
    assert_eq!(
        virtkit(&[
            "net-update",
            "nat1",
            "delete",
            "ip-dhcp-host",
            host,
            "--live"
        ])
        .trim(),
        "Updated network nat1 live state"
    );
    assert!(!virtkit(&["net-dumpxml", "nat1"]).contains("52:54:00:cd:00:02"));
    let vshot = root.path().join("vshot.ppm");
    let said = virtkit(&["screenshot", "vm1", vshot.to_str().unwrap()]);
    assert!(said.contains("image/x-portable-pixmap"), "{said}");
    assert!(std::fs::read(&vshot).unwrap().starts_with(b"P6"));
    let out = on_terminal(
        &format!("{} -c '{uri}' console vm1", vk.display()),
        "Escape character is",
        "echo VIRTKIT-REMOTE-$((6*9))\r",
        "VIRTKIT-REMOTE-54",
        Duration::from_secs(30),
    );
    assert!(
        out.contains("VIRTKIT-REMOTE-54"),
        "virtkit console:\n{out}\n{}",
        log()
    );

    // A console open while the guest is destroyed ends by itself: the
    // daemon sends the end of the stream, virsh finishes it and exits.
    let mut attached = Command::new("script")
        .args([
            "-qfec",
            &format!("virsh -c '{uri}' console vm1"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let console_stdin = attached.stdin.take();
    let mut console_out = attached.stdout.take().unwrap();
    let seen = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut console_out, &mut s);
        s
    });
    std::thread::sleep(Duration::from_secs(2));
    virsh_ok(&uri, &["destroy", "vm1"]);
    let t0 = Instant::now();
    let ended = loop {
        if let Ok(Some(st)) = attached.try_wait() {
            break Some(st);
        }
        if t0.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = attached.kill();
    let _ = attached.wait();
    drop(console_stdin);
    let text = seen.join().unwrap();
    assert!(
        ended.is_some(),
        "virsh console still attached after destroy:\n{text}"
    );
    assert!(text.contains("Connected to domain"), "{text}");

    // Stop everything; the watchers saw the lifecycle of both.
    virsh_ok(&uri, &["undefine", "vm1"]);
    virsh_ok(&uri, &["net-destroy", "nat1"]);
    virsh_ok(&uri, &["net-undefine", "nat1"]);
    std::thread::sleep(Duration::from_millis(500));
    let nets = net_events.stop();
    let want: Vec<String> = ["Defined", "Started", "Stopped", "Undefined"]
        .iter()
        .map(|e| format!("event 'lifecycle' for network nat1: {e}"))
        .collect();
    let got: Vec<&str> = nets.lines().filter(|l| l.starts_with("event '")).collect();
    assert_eq!(got, want, "{nets}");
    let doms = dom_events.stop();
    let got: Vec<&str> = doms
        .lines()
        .filter(|l| l.starts_with("event 'lifecycle'"))
        .collect();
    assert_eq!(
        got,
        [
            "event 'lifecycle' for domain 'vm1': Defined Added",
            "event 'lifecycle' for domain 'vm1': Started Booted",
            "event 'lifecycle' for domain 'vm1': Stopped Destroyed",
            "event 'lifecycle' for domain 'vm1': Undefined Removed",
        ],
        "{doms}"
    );
    assert!(
        pids_of_under("qemu-system-x86_64", root.path()).is_empty(),
        "no QEMU left"
    );
    assert!(
        pids_of_under("dnsmasq", root.path()).is_empty(),
        "no dnsmasq left"
    );
    assert!(daemon.terminate());
}
