//! polkit authorisation of non-root clients on the read-write socket,
//! against a private dbus-daemon (system-bus configuration) with a fake
//! `org.freedesktop.PolicyKit1.Authority` served by this test.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use zbus::OwnedVariant;

struct FakeAuthority {
    allow: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.freedesktop.PolicyKit1.Authority")]
impl FakeAuthority {
    async fn check_authorization(
        &self,
        subject: (String, HashMap<String, OwnedVariant>),
        action_id: String,
        _details: HashMap<String, String>,
        _flags: u32,
        _cancellation_id: String,
    ) -> (bool, bool, HashMap<String, String>) {
        let mut keys: Vec<&String> = subject.1.keys().collect();
        keys.sort();
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {:?} {}", subject.0, keys, action_id));
        (self.allow.load(Ordering::SeqCst), false, HashMap::new())
    }
}

struct DbusDaemon {
    child: std::process::Child,
    address: String,
    _dir: TempDir,
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dbus_daemon() -> DbusDaemon {
    let dir = TempDir::new("dbus");
    let conf = dir.path().join("system.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    DbusDaemon {
        child,
        address: line.trim().to_string(),
        _dir: dir,
    }
}

fn virsh_as_nobody(uri: &str, cmd: &str, home: &std::path::Path) -> std::process::Output {
    run(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "virsh",
                "-c",
                uri,
                cmd,
            ])
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home)
            .env("XDG_CONFIG_HOME", home),
        Duration::from_secs(20),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_root_clients_of_the_rw_socket_ask_polkit() {
    for tool in ["dbus-daemon", "virsh", "setpriv"] {
        if !have(tool) {
            return skip(&format!(
                "{tool} not installed (scripts/install-test-deps daemon)"
            ));
        }
    }
    let bus = dbus_daemon();
    let allow = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _authority = zbus::conn::Builder::address(bus.address.as_str())
        .name("org.freedesktop.PolicyKit1")
        .serve_at(
            "/org/freedesktop/PolicyKit1/Authority",
            FakeAuthority {
                allow: allow.clone(),
                seen: seen.clone(),
            },
        )
        .build()
        .await
        .expect("fake polkit on the private bus");

    let d = Daemon::start_with(
        "auth_unix_rw = \"polkit\"\nunix_sock_rw_perms = \"0777\"\n",
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)],
    );
    std::fs::set_permissions(d.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = TempDir::new("home");
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();

    let uri = d.uri();
    let out = tokio::task::spawn_blocking({
        let (uri, home) = (uri.clone(), home.path().to_path_buf());
        move || virsh_as_nobody(&uri, "list --all", &home)
    })
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 1    test   running"),
        "allowed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["unix-process [\"pid\", \"start-time\"] org.libvirt.unix.manage"]
    );

    allow.store(false, Ordering::SeqCst);
    let out = tokio::task::spawn_blocking({
        let (uri, home) = (uri.clone(), home.path().to_path_buf());
        move || virsh_as_nobody(&uri, "list --all", &home)
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access denied by policy"), "{err}");

    // root is trusted by the socket and never asks; the read-only socket
    // needs no authorisation.
    let before = seen.lock().unwrap().len();
    let out = run(
        Command::new("virsh").args(["-c", &uri, "list", "--all"]),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    let out = tokio::task::spawn_blocking({
        let (uri, home) = (d.uri_ro(), home.path().to_path_buf());
        move || virsh_as_nobody(&uri, "list --all", &home)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(seen.lock().unwrap().len(), before);
}
