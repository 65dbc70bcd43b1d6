//! `virtkit console` on a real QEMU guest's serial pty, under a terminal
//! (`script`): the guest's shell answers what is typed, and the console ends
//! by itself when the guest goes away (as virsh's does), restoring the
//! terminal.

#![cfg(feature = "qemu")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn virtkit(uri: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_virtkit"))
        .arg("-q")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .expect("run virtkit")
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn console_talks_to_the_guest_and_ends_when_the_guest_stops() {
    let have = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("qemu-system-x86_64") || !have("script") {
        println!("SKIPPED: qemu-system-x86_64 or script missing (scripts/install-test-deps qemu)");
        return;
    }
    let guest = std::env::var_os("VIRTKIT_TEST_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-guest"));
    let built = Command::new(workspace().join("scripts/build-test-guest"))
        .arg(&guest)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!("SKIPPED: cannot build the test guest (scripts/build-test-guest)");
        return;
    }
    let root = std::env::temp_dir().join(format!("vk-cli-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let uri = format!("qemu:///embed?root={}", root.display());
    let xml = root.join("c1.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>c1</name><memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel><initrd>{}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><log file='{}'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices></domain>",
            guest.join("vmlinuz").display(),
            guest.join("initrd.gz").display(),
            root.join("c1.log").display()
        ),
    )
    .unwrap();
    let o = virtkit(&uri, &["define", xml.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = virtkit(&uri, &["start", "c1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = root.join("c1.log");
    wait_for("the guest's READY marker", Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("VIRTKIT-GUEST-READY"))
    });

    // `script` gives the console a terminal; what it prints goes to a file.
    let transcript = root.join("transcript");
    let cmd = format!("{} -c '{}' console c1", env!("CARGO_BIN_EXE_virtkit"), uri);
    let mut console = Command::new("script")
        .args(["-qfec", &cmd])
        .arg(&transcript)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script runs");
    let mut stdin = console.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"\necho $((6*7))x\n").unwrap();
    stdin.flush().unwrap();
    wait_for(
        "the guest's answer on the console",
        Duration::from_secs(60),
        || std::fs::read_to_string(&transcript).is_ok_and(|t| t.contains("42x")),
    );

    // The guest goes away: the console ends on its own.
    let o = virtkit(&uri, &["destroy", "c1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = console.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.is_none() {
        let _ = console.kill();
        let _ = console.wait();
    }
    drop(stdin);
    let _ = virtkit(&uri, &["undefine", "c1"]);
    let _ = std::fs::remove_dir_all(&root);
    let status = status.expect("the console ended after the guest stopped");
    assert!(status.success(), "console exit status {status:?}");
}

#[test]
fn commands_run_at_once_on_one_uri_take_turns() {
    let root = std::env::temp_dir().join(format!("vk-cli-turns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let uri = format!("qemu:///embed?root={}", root.display());
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_virtkit"))
                .args(["-q", "-c", &uri, "list --all; uri"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run virtkit")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "a concurrent command failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
