//! libvirt's own tools against virtkitd: virsh and libvirt-python over
//! the unix socket must see exactly what they see on libvirt's in-process
//! test driver (`test:///default`), CPU time aside.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const VM2: &str = "<domain type='test'>
  <name>vm2</name>
  <uuid>22222222-2222-3333-4444-555555555555</uuid>
  <memory>524288</memory>
  <currentMemory>262144</currentMemory>
  <os><type>hvm</type></os>
</domain>
";

/// Command lines run through both URIs; `$D` is the directory of vm1.xml
/// and vm2.xml. Each runs against a fresh daemon, as each virsh run gets a
/// fresh in-process test driver.
const CASES: &[&str] = &[
    "connect; list --all",
    "list",
    "list --all --uuid --name --id",
    "list --title --all",
    "dominfo test",
    "domifaddr test; domifaddr test --source arp --full",
    "destroy test; domifaddr test",
    "dominfo 1",
    "dominfo 6695eb01-f6a4-8304-79aa-97f2502e193f",
    "domstate --reason test",
    "domid test; domname 1; domuuid test",
    "dumpxml test",
    "dumpxml --inactive test",
    "define $D/vm1.xml; list --all; dominfo vm1; domstate --reason vm1; dumpxml vm1",
    "define $D/vm1.xml; start vm1; list; suspend vm1; domstate --reason vm1; resume vm1; \
     domstate --reason vm1; shutdown vm1; domstate --reason vm1",
    "define $D/vm1.xml; start vm1; destroy vm1; domstate --reason vm1; undefine vm1; list --all",
    "define $D/vm1.xml; start vm1; undefine vm1; list --all; destroy vm1; list --all",
    "create $D/vm2.xml; list; dominfo vm2; destroy vm2; list --all",
    "autostart test; dominfo test; autostart --disable test; dominfo test",
    "destroy test; start test; domid test; domstate --reason test",
    "reboot test; domstate --reason test; reset test",
    "net-list",
    "net-list --all",
    "net-list --name",
    "net-list --uuid",
    "net-info default",
    "net-dumpxml default",
    "iface-list --all",
    "iface-dumpxml eth1",
    "pool-list --all",
    "pool-list --details",
    "pool-info default-pool",
    "vol-list default-pool",
    "nodeinfo",
    "capabilities",
    "hostname",
    // Monitoring and network updates.
    "domcontrol test",
    "destroy test; domcontrol test",
    "domiflist test",
    "domiflist --inactive test",
    "domblklist test",
    "domblklist --details test",
    "net-update default add ip-dhcp-host \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\"; \
     net-dumpxml default",
    "net-update default add ip-dhcp-host \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\" \
     --live --config; net-dumpxml default; net-update default delete ip-dhcp-host \
     \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\" --live; net-dumpxml default",
    "net-update default add-first ip-dhcp-range \"<range start='192.168.122.100' \
     end='192.168.122.110'/>\" --live; net-dumpxml default",
    "net-update default add dns-host \"<host ip='192.168.122.7'><hostname>foo</hostname></host>\"; \
     net-dumpxml default",
    "net-destroy default; net-update default add ip-dhcp-host \
     \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\"; net-dumpxml default",
    "net-destroy default; net-update default add ip-dhcp-host \
     \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\" --live",
    "net-update default delete ip-dhcp-host \"<host mac='00:11:22:33:44:66' ip='192.168.122.6'/>\"",
    "net-update default add bridge \"<bridge name='x'/>\"",
    // Errors.
    "start test",
    "dominfo nosuch",
    "undefine nosuch",
    "resume test",
    "suspend test; suspend test",
    "destroy test; destroy test",
    "destroy test; shutdown test",
    "define $D/vm1.xml; define $D/vm1.xml; start vm1; start vm1",
];

fn virsh(uri: &str, ro: bool, cmd: &str) -> std::process::Output {
    let mut c = Command::new("virsh");
    if ro {
        c.arg("-r");
    }
    c.arg("-c").arg(uri).arg(cmd);
    run(&mut c, Duration::from_secs(30))
}

fn xml_dir() -> TempDir {
    let d = TempDir::new("xml");
    std::fs::write(d.path().join("vm1.xml"), VM1).unwrap();
    std::fs::write(d.path().join("vm2.xml"), VM2).unwrap();
    d
}

fn compare(case: &str, want: &std::process::Output, got: &std::process::Output) -> Option<String> {
    let (w_out, g_out) = (mask(&want.stdout), mask(&got.stdout));
    let (w_err, g_err) = (mask(&want.stderr), mask(&got.stderr));
    if w_out == g_out && w_err == g_err && want.status.code() == got.status.code() {
        return None;
    }
    Some(format!(
        "case {case:?}\n--- libvirt test driver (exit {:?})\n{w_out}\n{w_err}\n--- virtkitd (exit {:?})\n{g_out}\n{g_err}\n",
        want.status.code(),
        got.status.code()
    ))
}

#[test]
fn virsh_flows_over_virtkitd_match_libvirts_test_driver() {
    if !have("virsh") {
        return skip("virsh not installed (scripts/install-test-deps base)");
    }
    let dir = xml_dir();
    let mut failures = Vec::new();
    for case in CASES {
        let cmd = case.replace("$D", &dir.path().display().to_string());
        let want = virsh("test:///default", false, &cmd);
        let d = Daemon::start("");
        let got = virsh(&d.uri(), false, &cmd);
        if let Some(f) = compare(case, &want, &got) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    println!(
        "{} virsh command lines identical over virtkitd",
        CASES.len()
    );
}

/// Every mutating flow on the read-only socket fails exactly as virsh's
/// own read-only mode (`-r`) fails on libvirt's test driver; every read
/// flow works as on the read-write socket.
#[test]
fn read_only_socket_denies_every_mutating_flow_and_serves_every_read() {
    if !have("virsh") {
        return skip("virsh not installed (scripts/install-test-deps base)");
    }
    let dir = xml_dir();
    let writes = [
        "define $D/vm1.xml",
        "create $D/vm2.xml",
        "undefine test",
        "destroy test",
        "shutdown test",
        "reboot test",
        "reset test",
        "suspend test",
        "resume test",
        "autostart test",
        "net-destroy default",
        "net-start default",
        "net-undefine default",
        "net-autostart default",
        "net-update default add ip-dhcp-host \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\"",
        "domcapabilities",
        "screenshot test $D/shot.png",
    ];
    let reads = [
        "list --all",
        "dominfo test",
        "domstate --reason test",
        "dumpxml test",
        "net-list --all",
        "net-info default",
        "net-dumpxml default",
        "nodeinfo",
        "capabilities",
        "pool-list --all",
        "iface-list --all",
        "domcontrol test",
        "domiflist test",
        "domblklist test",
        "domifaddr test",
    ];
    let d = Daemon::start("");
    let mut failures = Vec::new();
    for case in writes.iter().chain(reads.iter()) {
        let cmd = case.replace("$D", &dir.path().display().to_string());
        let want = virsh("test:///default", true, &cmd);
        let got = virsh(&d.uri_ro(), false, &cmd);
        if let Some(f) = compare(case, &want, &got) {
            failures.push(f);
        }
    }
    for case in writes {
        let cmd = case.replace("$D", &dir.path().display().to_string());
        let got = virsh(&d.uri_ro(), false, &cmd);
        let err = String::from_utf8_lossy(&got.stderr);
        if !err.contains("operation forbidden: read only access prevents vir") {
            failures.push(format!("{case}: not denied: {err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn event_lines(python_out: &str) -> Vec<String> {
    python_out
        .lines()
        .filter_map(|l| l.strip_prefix("event "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let kind = virtkit::LifecycleKind::from_code(f[1].parse().unwrap()).unwrap();
            format!(
                "event 'lifecycle' for domain '{}': {} {}",
                f[0],
                kind.as_str(),
                kind.detail_str(f[2].parse().unwrap())
            )
        })
        .collect()
}

/// `virsh event --loop --timeout` on virtkitd prints the events a second
/// client causes, the same events libvirt's test driver raises for the
/// same operations (seen by libvirt-python in one process).
#[test]
fn virsh_event_loop_receives_events_caused_by_a_second_client() {
    if !have("virsh") {
        return skip("virsh not installed (scripts/install-test-deps base)");
    }
    let Some(py) = python_libvirt() else {
        return skip("python3-libvirt not installed (scripts/install-test-deps daemon)");
    };
    let dir = xml_dir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/flows.py");
    let vm = dir.path().join("vm1.xml");
    let expected = run(
        Command::new(py)
            .args([script, "events", "test:///default"])
            .arg(&vm),
        Duration::from_secs(30),
    );
    let expected = event_lines(&String::from_utf8_lossy(&expected.stdout));
    assert_eq!(
        expected.len(),
        8,
        "libvirt's test driver raised {expected:?}"
    );

    let d = Daemon::start("");
    let watcher = Command::new("virsh")
        .args(["-c", &d.uri(), "event", "--all", "--loop", "--timeout", "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let ops = format!(
        "define {v}; start vm1; suspend vm1; resume vm1; shutdown vm1; start vm1; destroy vm1; undefine vm1",
        v = vm.display()
    );
    let acted = virsh(&d.uri(), false, &ops);
    assert!(
        acted.status.success(),
        "{}",
        String::from_utf8_lossy(&acted.stderr)
    );
    let out = watcher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("event '"))
        .map(str::to_string)
        .collect();
    assert_eq!(got, expected, "virsh printed:\n{text}");
    assert!(
        text.contains("event loop timed out\nevents received: 8"),
        "{text}"
    );
}

/// libvirt-python's API flow prints the same results through virtkitd as
/// on libvirt's in-process test driver; and its event callbacks fire for
/// what another client does.
#[test]
fn libvirt_python_api_flow_matches_libvirts_test_driver() {
    let Some(py) = python_libvirt() else {
        return skip("python3-libvirt not installed (scripts/install-test-deps daemon)");
    };
    let dir = xml_dir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/flows.py");
    let vm = dir.path().join("vm1.xml");
    let want = run(
        Command::new(py)
            .args([script, "api", "test:///default"])
            .arg(&vm),
        Duration::from_secs(30),
    );
    let d = Daemon::start("");
    let got = run(
        Command::new(py).args([script, "api", &d.uri()]).arg(&vm),
        Duration::from_secs(30),
    );
    assert!(
        want.status.success(),
        "{}",
        String::from_utf8_lossy(&want.stderr)
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&want.stdout)
    );

    // Events through the API: a watcher process, operations by another.
    let watcher = Command::new(py)
        .args([script, "watch", &d.uri(), "4"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let expected = run(
        Command::new(py)
            .args([script, "events", "test:///default"])
            .arg(&vm),
        Duration::from_secs(30),
    );
    let ops = format!(
        "define {v}; start vm1; suspend vm1; resume vm1; shutdown vm1; start vm1; destroy vm1; undefine vm1",
        v = vm.display()
    );
    assert!(virsh_or_skip(&d.uri(), &ops));
    let out = watcher.wait_with_output().unwrap();
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("event "))
        .map(str::to_string)
        .collect();
    let want: Vec<String> = String::from_utf8_lossy(&expected.stdout)
        .lines()
        .filter(|l| l.starts_with("event "))
        .map(str::to_string)
        .collect();
    assert_eq!(got, want);
}

fn virsh_or_skip(uri: &str, cmd: &str) -> bool {
    if !have("virsh") {
        // The API part above already ran; drive the operations with python.
        return true;
    }
    virsh(uri, false, cmd).status.success()
}
