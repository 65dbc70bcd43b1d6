//! Helpers for virtkitd's end-to-end tests: temporary roots, a daemon
//! process per test (stopped by PID), a private libvirtd, tool checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("vkd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a program is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints the skip line the test runner greps for.
pub fn skip(reason: &str) {
    println!("SKIPPED: {reason}");
}

/// Waits until `path` exists.
pub fn wait_for(path: &Path, what: &str) {
    let t0 = Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what} did not appear at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a unix socket accepts connections (a socket file appears
/// at bind(2), a moment before listen(2)).
pub fn wait_listening(path: &Path, what: &str) {
    wait_for(path, what);
    let t0 = Instant::now();
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what} at {} does not accept connections",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running virtkitd with `--root`.
pub struct Daemon {
    pub child: Child,
    pub root: TempDir,
}

impl Daemon {
    pub fn start(conf: &str) -> Daemon {
        Daemon::start_with(conf, &[])
    }

    pub fn start_with(conf: &str, env: &[(&str, &str)]) -> Daemon {
        let root = TempDir::new("root");
        std::fs::write(root.path().join("virtkitd.conf"), conf).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_virtkitd"))
            .arg("--root")
            .arg(root.path())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.path().join("virtkitd.log")).unwrap())
            .spawn()
            .expect("virtkitd starts");
        let d = Daemon { child, root };
        wait_for(
            &d.root.path().join("virtkit-sock-ro"),
            "the read-only socket",
        );
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sock(&self) -> PathBuf {
        self.root.path().join("virtkit-sock")
    }

    pub fn sock_ro(&self) -> PathBuf {
        self.root.path().join("virtkit-sock-ro")
    }

    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock().display())
    }

    pub fn uri_ro(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock_ro().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("virtkitd.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        // SAFETY: kill(2) on the PID of our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private libvirtd (Debian's) on sockets under a temporary directory,
/// loading no hypervisor modules: it serves the test driver built into
/// libvirt.so.
pub struct Libvirtd {
    pub child: Child,
    pub dir: TempDir,
}

impl Libvirtd {
    pub fn start() -> Option<Libvirtd> {
        if !Path::new("/usr/sbin/libvirtd").exists() {
            return None;
        }
        let dir = TempDir::new("libvirtd");
        let d = dir.path();
        std::fs::create_dir_all(d.join("drivers")).unwrap();
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::write(
            d.join("libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{}\"\nunix_sock_rw_perms = \"0700\"\nauth_unix_rw = \"none\"\n\
                 auth_unix_ro = \"none\"\nlog_outputs = \"3:file:{}\"\n",
                d.join("run").display(),
                d.join("libvirtd.log").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/libvirtd")
            .arg("-f")
            .arg(d.join("libvirtd.conf"))
            .arg("-p")
            .arg(d.join("libvirtd.pid"))
            .env("LIBVIRT_DRIVER_DIR", d.join("drivers"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let l = Libvirtd { child, dir };
        wait_listening(&l.sock(), "libvirtd's socket");
        Some(l)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("run/libvirt-sock")
    }

    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock().display())
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command with a time limit (killed after it).
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let t0 = Instant::now();
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Output with per-run values (the test driver's CPU time) masked.
pub fn mask(s: &[u8]) -> String {
    String::from_utf8_lossy(s)
        .lines()
        .map(|l| {
            if l.starts_with("CPU time:") {
                "CPU time:       (masked)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Resident set size (KiB) of a process.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The `virtkit` CLI of this workspace, built (or confirmed up to date)
/// with its default drivers, next to this test's target directory.
pub fn virtkit_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "virtkit-cli"])
            .status()
            .expect("cargo runs");
        assert!(st.success(), "building virtkit-cli failed");
    });
    dir.join("virtkit")
}

/// Debian's python with libvirt bindings, if installed.
pub fn python_libvirt() -> Option<&'static str> {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libvirt"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some("/usr/bin/python3")
}

/// The test-driver domain both virsh comparisons define (`tests/data`).
pub const VM1: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/vm1.xml"
));

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn virsh(uri: &str, args: &[&str]) -> (bool, String, String) {
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

pub fn virsh_ok(uri: &str, args: &[&str]) -> String {
    let (ok, out, err) = virsh(uri, args);
    assert!(ok, "virsh {args:?} failed: {err}");
    out
}

/// virsh without `-q` (which hides its confirmations); must succeed.
pub fn virsh_loud(uri: &str, args: &[&str]) -> String {
    let out = run(
        Command::new("virsh").arg("-c").arg(uri).args(args),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "virsh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A named network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Option<Netns> {
        let name = format!("vkd-{tag}-{}", std::process::id());
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

/// virtkitd with its own `--root`, in `ns`, with `env`.
pub fn start_daemon(ns: &Netns, env: &[(String, String)]) -> Daemon {
    start_daemon_with_system(ns, env, None)
}

/// [`start_daemon`] whose system instances (`DIR/system`) live in `system`
/// (a link to it), so that a later daemon finds the same containers.
pub fn start_daemon_with_system(
    ns: &Netns,
    env: &[(String, String)],
    system: Option<&Path>,
) -> Daemon {
    let root = TempDir::new("root");
    if let Some(dir) = system {
        std::os::unix::fs::symlink(dir, root.path().join("system")).unwrap();
    }
    // nsenter joins the network namespace only (and execs the daemon, so
    // the child's PID is the daemon's); `ip netns exec` would also mount a
    // new /sys, hiding the cgroup file systems the LXC driver needs.
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", ns.0))
        .arg(env!("CARGO_BIN_EXE_virtkitd"))
        .arg("--root")
        .arg(root.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.path().join("virtkitd.log")).unwrap())
        .spawn()
        .expect("virtkitd starts");
    let d = Daemon { child, root };
    wait_listening(&d.sock(), "virtkitd's socket");
    d
}

pub fn pids_of_under(prog: &str, root: &Path) -> Vec<u32> {
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

/// On drop (also when an assertion failed), ends the processes of the
/// programs named (QEMU, dnsmasq, ...) that this test's daemons started
/// under the root directory, by PID.
pub struct KillUnder(pub PathBuf, pub &'static [&'static str]);

impl Drop for KillUnder {
    fn drop(&mut self) {
        for prog in self.1 {
            for pid in pids_of_under(prog, &self.0) {
                // SAFETY: kill(2) on a PID whose command line names this
                // test's private root: a process this test caused to start.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// Runs `cmd` on a terminal (`script` gives it one, as a person's shell
/// would): once `ready` is in its output, types Enter and `input`; once
/// `until` is in the output, types Ctrl-] (the console escape). Returns
/// the output, whatever happened, after at most `limit`.
pub fn on_terminal(cmd: &str, ready: &str, input: &str, until: &str, limit: Duration) -> String {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut child = Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts");
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let t0 = Instant::now();
    let wait_for = |what: &str| {
        while !text().contains(what) && t0.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    wait_for(ready);
    // Give the attach a moment, then wake the guest's shell and type.
    std::thread::sleep(Duration::from_millis(500));
    let _ = stdin.write_all(b"\r");
    std::thread::sleep(Duration::from_millis(300));
    let _ = stdin.write_all(input.as_bytes());
    let _ = stdin.flush();
    wait_for(until);
    let _ = stdin.write_all(&[0x1d]);
    let _ = stdin.flush();
    while t0.elapsed() < limit + Duration::from_secs(10) {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ends our own child (and with it the console client) if it hangs.
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    let _ = reader.join();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    format!("{}{err}", text())
}
