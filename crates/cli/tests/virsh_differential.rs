//! Differential test: the same command lines through `virtkit` and through
//! Debian's real `virsh` (libvirt-clients 9.0), both on `test:///default`,
//! must give the same stdout, stderr and exit code.
//!
//! Values that change per run (CPU time of the test driver, which is wall
//! time) are masked. Deliberate differences are listed in `DIFFERENT` with
//! their reason; for those only the exit code and the first error line are
//! compared.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test-driver domain (shared with the daemon's virsh tests).
const VM1: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/vm1.xml"
));

const VM2: &str = "<domain type='test'>
  <name>vm2</name>
  <uuid>22222222-2222-3333-4444-555555555555</uuid>
  <memory>524288</memory>
  <currentMemory>262144</currentMemory>
  <os><type>hvm</type></os>
</domain>
";

const NET1: &str = "<network>
  <name>n1</name>
  <uuid>11111111-2222-3333-4444-000000000001</uuid>
  <forward dev='eth1' mode='nat'/>
  <bridge name='vbr9'/>
  <mac address='52:54:00:AA:BB:CC'/>
  <domain name='n1.test' localOnly='yes'/>
  <ip address='10.5.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.5.0.10' end='10.5.0.20'>
        <lease expiry='2' unit='hours'/>
      </range>
      <host mac='52:54:00:00:00:07' name='g7' ip='10.5.0.7'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:5::1' prefix='64'/>
</network>
";
const NET_BAD_RANGE: &str = "<network><name>nb</name><ip address='10.6.0.1' prefix='24'><dhcp><range start='10.6.0.9' end='10.7.0.9'/></dhcp></ip></network>";
const NET_BAD_MODE: &str = "<network><name>nm</name><forward mode='tunnel'/></network>";

/// Interfaces on a network, on a bridge with its own device name, and
/// user-mode (for `domifaddr` and the generated `testnetN` names).
const IFACES: &str = "<domain type='test'><name>ifa</name><memory>65536</memory><os><type>hvm</type></os><devices>\
<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>\
<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/><target dev='tap7'/></interface>\
<interface type='user'><mac address='52:54:00:00:00:03'/></interface></devices></domain>";
const NO_TYPE: &str = "<domain><name>x</name></domain>";
const NO_OS: &str = "<domain type='test'><name>z</name></domain>";
const SLASH: &str =
    "<domain type='test'><name>a/b</name><memory>1024</memory><os><type>hvm</type></os></domain>";
const TITLE_NL: &str = "<domain type='test'><name>t</name><title>a\nb</title><memory>1024</memory><os><type>hvm</type></os></domain>";
const NO_MEMORY: &str = "<domain type='test'><name>m</name><os><type>hvm</type></os></domain>";
const BAD_XML: &str = "<domain type='test'><name>y</name>\n";
const DUP_NAME: &str = "<domain type='test'><name>test</name><uuid>33333333-2222-3333-4444-555555555555</uuid><memory>1024</memory><os><type>hvm</type></os></domain>";

/// Each entry is one process: the arguments after `-c test:///default`.
/// `$D` is replaced by the directory holding the XML files above.
const CASES: &[&[&str]] = &[
    &["list"],
    &["list --all"],
    &["list --inactive"],
    &["list --name"],
    &["list --uuid"],
    &["list --all --uuid --name --id"],
    &["list --id"],
    &["list --title"],
    &["-q", "list --all"],
    &["list", "--all"],
    &["dominfo test"],
    &[
        "domifaddr test",
        "domifaddr test testnet0 --full --source agent",
    ],
    &[
        "define $D/ifa.xml; start ifa; domifaddr ifa; domifaddr ifa --interface vnet1; domifaddr ifa tap7; domiflist ifa",
    ],
    &["destroy test; domifaddr test"],
    &["domifaddr test --source bogus"],
    &["domifaddr nosuch"],
    &["domifaddr"],
    &["dominfo 1"],
    &["dominfo 6695eb01-f6a4-8304-79aa-97f2502e193f"],
    &["domstate test"],
    &["domstate --reason test"],
    &["domid test; domname 1; domuuid test"],
    &["dumpxml test"],
    &["dumpxml --inactive test"],
    &["define $D/vm1.xml; list --all; dominfo vm1; domstate --reason vm1; dumpxml vm1"],
    &[
        "define $D/vm1.xml; start vm1; list; suspend vm1; domstate --reason vm1; resume vm1; domstate --reason vm1; shutdown vm1; domstate --reason vm1",
    ],
    &["define $D/vm1.xml; start vm1; destroy vm1; domstate --reason vm1; undefine vm1; list --all"],
    &["define $D/vm1.xml; list --all --title; list --all --name; domid vm1"],
    &["create $D/vm2.xml; list; dominfo vm2; destroy vm2; list --all"],
    &["define $D/vm1.xml; start vm1; undefine vm1; list --all; destroy vm1; list --all"],
    &["autostart test; dominfo test; autostart --disable test; dominfo test"],
    &["destroy test; start test; domid test; domstate --reason test"],
    &["reboot test; domstate --reason test; reset test"],
    &["net-list"],
    &["net-list --all"],
    &["net-list --name"],
    &["net-list --uuid"],
    &["net-info default"],
    &["net-dumpxml default"],
    &[
        "net-define $D/net1.xml; net-list --all; net-info n1; net-dumpxml n1; net-update n1 add ip-dhcp-host \"<host mac='52:54:00:00:00:09' ip='10.5.0.9'/>\"; net-dumpxml n1",
    ],
    &[
        "net-define $D/net1.xml; net-autostart n1; net-list --all --autostart; net-autostart --disable n1; net-info n1",
    ],
    &[
        "net-define $D/net1.xml; net-start n1; net-list; net-uuid n1; net-name 11111111-2222-3333-4444-000000000001; net-destroy n1; net-undefine n1; net-list --all",
    ],
    &["net-create $D/net1.xml; net-list --all --transient; net-destroy n1; net-list --all"],
    &[
        "net-update default add ip-dhcp-host \"<host mac='52:54:00:00:00:09' name='g9' ip='192.168.122.9'/>\" --live; net-dumpxml default",
    ],
    &[
        "net-update default add-first ip-dhcp-host \"<host mac='52:54:00:00:00:09' ip='192.168.122.9'/>\"; net-update default delete ip-dhcp-host \"<host mac='52:54:00:00:00:09'/>\"; net-dumpxml default",
    ],
    &[
        "net-update default add dns-txt \"<txt name='t1' value='v1'/>\"; net-update default add-first dns-txt \"<txt name='t0' value='v0'/>\"; net-update default add dns-txt \"<txt name='t1' value='v2'/>\"; net-update default delete dns-txt \"<txt name='t0'/>\"; net-update default modify dns-txt \"<txt name='t1' value='v3'/>\"; net-dumpxml default",
    ],
    &[
        "net-update default add dns-srv \"<srv service='ldap' protocol='tcp' target='h.test' port='389'/>\"; net-update default add dns-srv \"<srv service='ldap' protocol='udp'/>\"; net-update default delete dns-srv \"<srv service='ldap'/>\"; net-update default delete dns-srv \"<srv service='ldap' protocol='udp'/>\"; net-dumpxml default",
    ],
    &[
        "net-update default add portgroup \"<portgroup name='p1' default='yes'/>\"; net-update default add portgroup \"<portgroup name='p2' default='yes'/>\"; net-update default modify portgroup \"<portgroup name='p1'><vlan><tag id='7'/></vlan></portgroup>\"; net-update default delete portgroup \"<portgroup name='nope'/>\"; net-dumpxml default",
    ],
    &[
        "net-update default add bridge \"<bridge name='x'/>\"; net-update default add forward-interface \"<interface dev='eth9'/>\"",
    ],
    &[
        "net-update default add ip-dhcp-host \"<host mac='52:54:00:00:00:0a' ip='192.168.122.10'/>\" --config; net-dumpxml default; net-dumpxml default --inactive; net-destroy default; net-dumpxml default",
    ],
    &[
        "net-define $D/net1.xml; net-start n1; net-update n1 add dns-txt \"<txt name='a' value='b'/>\" --config; net-update n1 add dns-txt \"<txt name='c' value='d'/>\" --live; net-dumpxml n1; net-dumpxml n1 --inactive; net-destroy n1; net-dumpxml n1; net-update n1 add dns-txt \"<txt name='e' value='f'/>\" --live",
    ],
    &["net-start default"],
    &["net-destroy default; net-destroy default"],
    &["net-undefine nosuch"],
    &["net-uuid nosuch"],
    &["net-define $D/net1.xml; net-define $D/net1.xml; net-start n1; net-start n1"],
    &["iface-list --all; iface-list --inactive; iface-dumpxml eth1"],
    &["iface-dumpxml aa:bb:cc:dd:ee:ff"],
    &["pool-list --all; pool-list --details; pool-list --name; pool-list --uuid"],
    &["pool-info default-pool; pool-dumpxml default-pool; vol-list default-pool"],
    &["pool-info dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566"],
    &["nodeinfo"],
    &["uri"],
    &["capabilities"],
    &["hostname"],
    // Errors.
    &["start test"],
    &["dominfo nosuch"],
    &["undefine nosuch"],
    &["suspend nosuch"],
    &["resume test"],
    &["suspend test; suspend test"],
    &["destroy test; destroy test"],
    &["destroy test; shutdown test"],
    &["destroy test; reboot test"],
    &["destroy test; suspend test"],
    &["bogus"],
    &["domstate test; bogus; domid test"],
    &["domstate nosuch; domid test"],
    &["domid test; domstate nosuch"],
    &["list --foo"],
    &["dominfo"],
    &["dominfo test extra"],
    &["dominfo --domain"],
    &["domstate --reason=yes test"],
    &["domstate", "test", ";", "domid", "test"],
    &["list --table --name"],
    &["net-list --name --uuid"],
    &["net-info nosuch"],
    &["iface-dumpxml nosuch"],
    &["pool-info nosuch"],
    &["pool-list --name --details"],
    &["define /nonexistent/vm.xml"],
    &["define $D/notype.xml"],
    &["define $D/noos.xml"],
    &["define $D/dupname.xml"],
    &["define $D/title.xml"],
    &["define $D/nomem.xml"],
    &["define $D/slash.xml"],
    &["-r", "destroy test"],
    &["-r", "list --all"],
    &["event"],
    &["event --all --timeout 1"],
    &["event --event lifecycle --domain test --timeout 1"],
    &["event --event bogus"],
    &["domname test"],
    &["domid 1"],
    &["autostart nosuch"],
    &["define $D/vm2.xml; undefine vm2; undefine vm2"],
];

/// Deliberate differences: (case, reason). Only the exit code and the first
/// line of stderr are compared for these.
const DIFFERENT: &[(&str, &str)] = &[
    (
        "domcapabilities",
        "an unsupported operation names virtkit's operation and the driver, not libvirt's API function",
    ),
    (
        "define $D/bad.xml",
        "XML syntax errors are virtkit's own positioned messages, not libxml2's",
    ),
    (
        "net-define $D/netmode.xml",
        "the unsupported-configuration message adds the position and the valid forward modes",
    ),
    (
        "net-define $D/netrange.xml",
        "the message adds the position; libvirt reports this check as an internal error",
    ),
];

fn binary(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

struct Out {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn run(bin: &Path, dir: &Path, args: &[&str]) -> Out {
    let d = dir.display().to_string();
    let args: Vec<String> = args.iter().map(|a| a.replace("$D", &d)).collect();
    let out = Command::new(bin)
        .arg("-c")
        .arg("test:///default")
        .args(&args)
        .env_remove("VIRTKIT_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .output()
        .expect("run binary");
    Out {
        stdout: mask(&String::from_utf8_lossy(&out.stdout)),
        stderr: strip_xml_location(&String::from_utf8_lossy(&out.stderr)),
        code: out.status.code(),
    }
}

/// Removes the location virtkit adds to XML errors
/// (`XML error: FILE:LINE:COL (PATH): message` becomes `XML error: message`),
/// so that the message itself is still compared with libvirt's.
fn strip_xml_location(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = line.to_string();
        if let Some(i) = l.find("XML error: ") {
            let rest = &line[i + "XML error: ".len()..];
            let digits =
                |t: &str| t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            // Find ":LINE:COL" and cut through the following ": " or " (PATH): ".
            let mut cut = None;
            for (j, _) in rest.match_indices(':') {
                let after = &rest[j + 1..];
                let n1 = digits(after);
                if n1 == 0 || !after[n1..].starts_with(':') {
                    continue;
                }
                let after2 = &after[n1 + 1..];
                let n2 = digits(after2);
                if n2 == 0 {
                    continue;
                }
                let tail = &after2[n2..];
                let skip = if let Some(t) = tail.strip_prefix(" (") {
                    t.find("): ").map(|k| 2 + k + 3)
                } else {
                    tail.starts_with(": ").then_some(2)
                };
                if let Some(skip) = skip {
                    cut = Some(j + 1 + n1 + 1 + n2 + skip);
                    break;
                }
            }
            if let Some(c) = cut {
                l = format!("{}{}", &line[..i + "XML error: ".len()], &rest[c..]);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Masks the test driver's CPU time, which is wall-clock time.
fn mask(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("CPU time:") {
                "CPU time:       (masked)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if s.ends_with('\n') { "\n" } else { "" }
}

#[test]
fn virtkit_answers_like_virsh() {
    let Some(virsh) = binary("virsh") else {
        eprintln!(
            "SKIPPED virtkit_answers_like_virsh: no `virsh` on PATH \
             (scripts/install-test-deps installs libvirt-clients)"
        );
        return;
    };
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_virtkit"));
    let dir = std::env::temp_dir().join(format!("virtkit-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("vm1.xml", VM1),
        ("vm2.xml", VM2),
        ("ifa.xml", IFACES),
        ("notype.xml", NO_TYPE),
        ("noos.xml", NO_OS),
        ("slash.xml", SLASH),
        ("bad.xml", BAD_XML),
        ("dupname.xml", DUP_NAME),
        ("title.xml", TITLE_NL),
        ("nomem.xml", NO_MEMORY),
        ("net1.xml", NET1),
        ("netrange.xml", NET_BAD_RANGE),
        ("netmode.xml", NET_BAD_MODE),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }

    let mut commands = 0;
    let mut failures = Vec::new();
    for case in CASES {
        commands += case
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(|a| a.split(';').count())
            .sum::<usize>();
        let a = run(&ours, &dir, case);
        let b = run(&virsh, &dir, case);
        if a.stdout != b.stdout || a.stderr != b.stderr || a.code != b.code {
            failures.push(format!(
                "case {case:?}\n--- virtkit (exit {:?})\n{}{}--- virsh (exit {:?})\n{}{}",
                a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr
            ));
        }
    }
    for (case, reason) in DIFFERENT {
        commands += 1;
        let a = run(&ours, &dir, &[case]);
        let b = run(&virsh, &dir, &[case]);
        let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
        println!(
            "deliberate difference in {case:?}: {reason}\n  virtkit: {}\n  virsh:   {}",
            a.stderr.lines().nth(1).unwrap_or_default(),
            b.stderr.lines().nth(1).unwrap_or_default()
        );
        if a.code != b.code || first(&a.stderr) != first(&b.stderr) || a.stdout != b.stdout {
            failures.push(format!(
                "deliberate-difference case {case:?} differs beyond its reason\n--- virtkit (exit {:?})\n{}{}--- virsh (exit {:?})\n{}{}",
                a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr
            ));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "{} processes, {commands} commands compared with virsh; {} mismatches",
        CASES.len() + DIFFERENT.len(),
        failures.len()
    );
    assert!(commands >= 30);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
