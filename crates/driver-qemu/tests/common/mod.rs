//! Shared helpers for the QEMU end-to-end tests: a private `embed` root,
//! the test guest, serial-log waits and leak checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virtkit_core::{Connect, Domain, DomainState};
use virtkit_driver_qemu as _;

/// A private driver root plus the test guest's files.
pub struct TestEnv {
    pub root: PathBuf,
    pub guest: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl TestEnv {
    /// A fresh root, or `None` (with the reason printed) when QEMU or the
    /// guest is missing.
    pub async fn new(name: &str) -> Option<TestEnv> {
        if virtkit_driver_qemu::caps::default_emulator("x86_64").is_err() {
            eprintln!("SKIPPED: no qemu-system-x86_64 (run scripts/install-test-deps qemu)");
            return None;
        }
        let guest = match std::env::var_os("VIRTKIT_TEST_GUEST_DIR") {
            Some(d) => PathBuf::from(d),
            None => workspace().join("target/test-guest"),
        };
        // Cheap when the guest is up to date (the script keeps a stamp).
        let st = std::process::Command::new(workspace().join("scripts/build-test-guest"))
            .arg(&guest)
            .stdout(std::process::Stdio::null())
            .status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: cannot build the test guest (scripts/build-test-guest)");
            return None;
        }
        let root = std::env::temp_dir().join(format!("vk-qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Some(TestEnv { root, guest })
    }

    pub fn uri(&self) -> String {
        format!("qemu:///embed?root={}", self.root.display())
    }

    pub async fn connect(&self) -> Connect {
        Connect::open(&self.uri()).await.unwrap()
    }

    pub fn serial_log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.serial"))
    }

    /// A TCG guest booting the test kernel, its serial port to a file.
    pub fn guest_xml(&self, name: &str, extra_devices: &[&str]) -> String {
        format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'>
      <source path='{serial}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
    {extra}
  </devices>
</domain>
",
            kernel = self.guest.join("vmlinuz").display(),
            initrd = self.guest.join("initrd.gz").display(),
            serial = self.serial_log(name).display(),
            extra = extra_devices.join("\n    "),
        )
    }

    /// Waits until `marker` has appeared `count` times in the serial log.
    pub async fn wait_serial(&self, name: &str, marker: &str, count: usize) {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(self.serial_log(name)).unwrap_or_default();
            if text.matches(marker).count() >= count {
                return;
            }
            if start.elapsed() > Duration::from_secs(120) {
                panic!("'{marker}' x{count} did not appear on {name}'s serial port; log:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The pid of a running domain's QEMU, from its run directory.
    pub fn qemu_pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.root.join("run/qemu").join(name).join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// No QEMU of this root is left, and no run directories.
    pub fn assert_clean(&self) {
        let run = self.root.join("run/qemu");
        let left: Vec<_> = std::fs::read_dir(&run)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "run directories left behind: {left:?}");
        let root = self.root.display().to_string();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("qemu-system") && cmd.contains(&root) {
                panic!(
                    "a QEMU of this test is still running: {}",
                    p.path().display()
                );
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Kill any QEMU this test left (only ours: its command line names our root).
        let root = self.root.display().to_string();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for p in rd.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
                    continue;
                };
                if String::from_utf8_lossy(&cmd).contains(&root) {
                    kill(pid, libc::SIGKILL);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a pid this test started.
    unsafe { libc::kill(pid, sig) };
}

pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

pub async fn wait_gone(pid: i32) {
    let start = Instant::now();
    while process_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_state(dom: &Domain, want: DomainState, within: Duration) {
    let start = Instant::now();
    loop {
        let (s, _) = dom.state().await.unwrap();
        if s == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "domain {} stayed {} instead of {}",
            dom.name(),
            s.as_str(),
            want.as_str()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `body` on a dedicated thread inside a fresh network namespace (the
/// kernel removes it, with every device in it, when the thread ends), with a
/// current-thread runtime. Returns false, with the reason printed, when the
/// namespace cannot be made.
pub fn in_netns<F, Fut>(test: &str, body: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let res = std::thread::spawn(move || -> Result<(), String> {
        // SAFETY: unshare(2) takes only flags; it moves this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot create a network namespace ({}); run as root",
                std::io::Error::last_os_error()
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(body());
        Ok(())
    })
    .join();
    match res {
        Ok(Ok(())) => true,
        Ok(Err(reason)) => {
            eprintln!("SKIPPED: {test}: {reason}");
            false
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs a command (inside the calling thread's namespaces), failing the test
/// on error.
pub fn sh(args: &[&str]) {
    let st = std::process::Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}
