//! Shared helpers for the LXC end-to-end tests: a private `embed` root, the
//! busybox root filesystem, a host directory shared with the container,
//! waits, and leak checks (processes, mounts, cgroups, veths).
//!
//! The tests need root (namespaces, mounts, cgroups). Without it, or
//! without busybox-static, each prints `SKIPPED: <reason>`; with
//! `VIRTKIT_LXC_REQUIRE=1` that is a failure instead.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virtkit_core::{Connect, Domain, DomainState};
use virtkit_driver_lxc as _;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn skip(test: &str, why: &str) {
    if std::env::var_os("VIRTKIT_LXC_REQUIRE").is_some_and(|v| v == "1") {
        panic!("{test}: cannot run: {why}");
    }
    eprintln!("SKIPPED: {test}: {why}");
}

/// The root filesystem, built once by scripts/build-test-rootfs.
pub fn rootfs() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("VIRTKIT_TEST_ROOTFS") {
        Some(d) => PathBuf::from(d),
        None => workspace().join("target/test-rootfs"),
    };
    let out = std::process::Command::new(workspace().join("scripts/build-test-rootfs"))
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run scripts/build-test-rootfs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/build-test-rootfs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    dir.join("rootfs")
        .canonicalize()
        .map_err(|e| format!("no root filesystem in {}: {e}", dir.display()))
}

/// A private driver root, the root filesystem and a shared directory.
pub struct Env {
    pub root: PathBuf,
    pub rootfs: PathBuf,
    pub shared: PathBuf,
    pub test: String,
}

impl Env {
    /// A fresh environment, or `None` (with the reason printed) when the
    /// machine cannot run containers.
    pub fn new(test: &str) -> Option<Env> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip(test, "containers need root (namespaces, mounts, cgroups)");
            return None;
        }
        let rootfs = match rootfs() {
            Ok(r) => r,
            Err(e) => {
                skip(test, &e);
                return None;
            }
        };
        let root = std::env::temp_dir().join(format!("vk-lxc-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let shared = root.join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        Some(Env {
            root,
            rootfs,
            shared,
            test: test.to_string(),
        })
    }

    pub fn uri(&self) -> String {
        format!("lxc:///embed?root={}", self.root.display())
    }

    pub async fn connect(&self) -> Connect {
        Connect::open(&self.uri()).await.unwrap()
    }

    /// A container running `script` as init (`/bin/sh -c`), with the
    /// rootfs read-only, the shared directory at /shared, tmpfs on /run and
    /// /tmp, a console and a network namespace of its own.
    pub fn xml(&self, name: &str, script: &str, extra_devices: &str, extra: &str) -> String {
        format!(
            "<domain type='lxc'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type>exe</type>
    <init>/bin/sh</init>
    <initarg>-c</initarg>
    <initarg>{script}</initarg>
  </os>
  <features><privnet/></features>
  {extra}
  <devices>
    <filesystem type='mount'>
      <source dir='{rootfs}'/>
      <target dir='/'/>
      <readonly/>
    </filesystem>
    <filesystem type='mount'>
      <source dir='{shared}'/>
      <target dir='/shared'/>
    </filesystem>
    <filesystem type='ram'>
      <source usage='8' units='MiB'/>
      <target dir='/run'/>
    </filesystem>
    <filesystem type='ram'>
      <source usage='8' units='MiB'/>
      <target dir='/tmp'/>
    </filesystem>
    <console type='pty'/>
    {extra_devices}
  </devices>
</domain>
",
            script = xml_escape(script),
            rootfs = self.rootfs.display(),
            shared = self.shared.display(),
        )
    }

    /// Waits until the shared file `rel` exists with content accepted by `ok`.
    pub async fn wait_file(&self, rel: &str, ok: impl Fn(&str) -> bool) -> String {
        let p = self.shared.join(rel);
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&p)
                && ok(&s)
            {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{}: {rel} did not appear as expected (now: {:?})",
                self.test,
                std::fs::read_to_string(&p).ok()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The (supervisor, init) pids of a running container, from its status file.
    pub fn pids(&self, name: &str) -> (i32, i32) {
        let s = std::fs::read_to_string(self.root.join("run/lxc").join(name).join("status.xml"))
            .unwrap();
        let num = |tag: &str| -> i32 {
            let t = s.split(&format!("<{tag} pid='")).nth(1).unwrap();
            t.split('\'').next().unwrap().parse().unwrap()
        };
        (num("supervisor"), num("init"))
    }

    /// The (supervisor, init) pids once the status file names a run other
    /// than `old` (a restarted container).
    pub async fn wait_new_pids(&self, name: &str, old: (i32, i32)) -> (i32, i32) {
        let start = Instant::now();
        let status = self.root.join("run/lxc").join(name).join("status.xml");
        loop {
            if status.exists() {
                let now = self.pids(name);
                if now != old {
                    return now;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: no new run recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The cgroup directories a process is in, per v1 controller name or
    /// `""` for v2, as absolute paths.
    pub fn cgroup_dirs(pid: i32) -> Vec<(String, PathBuf)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut out = Vec::new();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let mount = mounts.lines().find_map(|m| {
                let (l, r) = m.split_once(" - ")?;
                let l: Vec<&str> = l.split(' ').collect();
                let r: Vec<&str> = r.split(' ').collect();
                let ok = if ctls.is_empty() {
                    r[0] == "cgroup2"
                } else {
                    r[0] == "cgroup" && ctls.split(',').all(|c| r[2].split(',').any(|o| o == c))
                };
                ok.then(|| PathBuf::from(l[4]))
            });
            if let Some(m) = mount {
                out.push((ctls.to_string(), m.join(path.trim_start_matches('/'))));
            }
        }
        out
    }

    /// Nothing of container `name` is left: run directory, supervisor and
    /// init processes, cgroups, mounts of its root filesystem.
    pub fn assert_clean(&self, name: &str, pids: (i32, i32), cgroups: &[(String, PathBuf)]) {
        let run = self.root.join("run/lxc").join(name);
        assert!(!run.exists(), "run directory {} left behind", run.display());
        for pid in [pids.0, pids.1] {
            assert!(!alive(pid), "process {pid} of '{name}' is still running");
        }
        for (c, dir) in cgroups {
            if dir.to_string_lossy().contains(".virtkit-lxc") {
                assert!(!dir.exists(), "cgroup {c} {} left behind", dir.display());
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&self.shared.display().to_string()),
            "a mount of the container is visible on the host"
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Kill what a failed test left running (only this test's processes,
        // by the pids its status files name), then remove its cgroups and
        // files.
        let mut cgroups = Vec::new();
        let mut pids = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.root.join("run/lxc")) {
            for e in rd.flatten() {
                if let Ok(s) = std::fs::read_to_string(e.path().join("status.xml")) {
                    for tag in ["init", "supervisor"] {
                        if let Some(pid) = s
                            .split(&format!("<{tag} pid='"))
                            .nth(1)
                            .and_then(|t| t.split('\'').next())
                            .and_then(|p| p.parse::<i32>().ok())
                        {
                            kill(pid, libc::SIGKILL);
                            pids.push(pid);
                        }
                    }
                    for part in s.split("<cgroup path='").skip(1) {
                        if let Some(p) = part.split('\'').next() {
                            cgroups.push(PathBuf::from(p));
                        }
                    }
                }
            }
        }
        let start = Instant::now();
        while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for c in cgroups {
            for _ in 0..100 {
                if std::fs::remove_dir(&c).is_ok() || !c.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
        remove_empty_partitions();
    }
}

/// Removes the `machine` partition directories the driver made next to
/// this process's cgroups, when no container uses them any more (another
/// test's containers keep them busy; the driver makes them again).
pub fn remove_empty_partitions() {
    for (_, dir) in Env::cgroup_dirs(std::process::id() as i32) {
        let _ = std::fs::remove_dir(dir.join("machine"));
    }
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a pid this test started.
    unsafe { libc::kill(pid, sig) };
}

pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s.get(i + 2..i + 3))
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

pub async fn wait_gone(pid: i32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pid {pid} did not exit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn wait_state(dom: &Domain, want: DomainState) -> i32 {
    let start = Instant::now();
    loop {
        match dom.state().await {
            Ok((s, r)) if s == want => return r,
            Ok((s, _)) => assert!(
                start.elapsed() < Duration::from_secs(30),
                "domain {} stayed {} instead of {}",
                dom.name(),
                s.as_str(),
                want.as_str()
            ),
            Err(e) if want == DomainState::Shutoff => {
                // A transient domain disappears when it stops.
                assert_eq!(e.kind(), virtkit_core::ErrorKind::NoDomain, "{e}");
                return -1;
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `body` on a dedicated thread inside a fresh network namespace (the
/// kernel removes it, with every device in it, when the thread ends), with
/// a current-thread runtime.
pub fn in_netns<F, Fut>(test: &str, body: F)
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
        Ok(Ok(())) => {}
        Ok(Err(reason)) => skip(test, &reason),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A current-thread runtime for a test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
