//! The supervised dnsmasq of a running network.
//!
//! dnsmasq runs in the foreground as virtkit's child (so it is reaped at
//! once when it exits: PID 1 of a container need not reap), writes its PID
//! file after it has bound its sockets (the readiness signal), and is
//! stopped by PID after checking that the PID still belongs to this
//! network's dnsmasq. A network started by an earlier virtkit process is
//! managed again from its PID file. These functions block: the driver calls
//! them on its namespace worker thread.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{NetworkError, Result};

/// How long dnsmasq may take to bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGTERM may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(2);

/// The files of one network's dnsmasq.
#[derive(Debug, Clone)]
pub struct DnsmasqFiles {
    /// `--conf-file`.
    pub conf: PathBuf,
    /// PID file (written by dnsmasq).
    pub pid: PathBuf,
    /// Standard error of dnsmasq (start-up errors).
    pub log: PathBuf,
}

/// Finds the dnsmasq binary: `$VIRTKIT_DNSMASQ`, else on `PATH`, else the
/// Debian location.
pub fn binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VIRTKIT_DNSMASQ") {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("dnsmasq"))
        .find(|f| f.is_file())
        .ok_or_else(|| NetworkError::Helper {
            program: "dnsmasq".into(),
            detail: "not found on PATH or in /usr/sbin; install Debian's dnsmasq-base (scripts/install-test-deps net)".into(),
        })
}

/// Starts dnsmasq and waits until it is ready; returns its PID.
pub fn start(bin: &Path, files: &DnsmasqFiles) -> Result<u32> {
    let _ = std::fs::remove_file(&files.pid);
    let log = std::fs::File::create(&files.log)
        .map_err(|e| NetworkError::file("create", &files.log, e))?;
    let mut child = Command::new(bin)
        .arg(format!("--conf-file={}", files.conf.display()))
        .arg("--keep-in-foreground")
        .arg(format!("--pid-file={}", files.pid.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| NetworkError::Helper {
            program: bin.display().to_string(),
            detail: format!("cannot start: {e}"),
        })?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            let msg = std::fs::read_to_string(&files.log).unwrap_or_default();
            return Err(NetworkError::Helper {
                program: bin.display().to_string(),
                detail: format!(
                    "exited during start-up ({status}): {}",
                    msg.trim().lines().last().unwrap_or("no message")
                ),
            });
        }
        if read_pid(&files.pid) == Some(pid) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NetworkError::Helper {
                program: bin.display().to_string(),
                detail: format!("not ready after {START_TIMEOUT:?} (no PID file)"),
            });
        }
        std::thread::sleep(POLL);
    }
    // Reap it whenever it exits, whoever stops it.
    let _ = std::thread::Builder::new()
        .name(format!("virtkit-dnsmasq-{pid}"))
        .spawn(move || {
            let _ = child.wait();
        });
    Ok(pid)
}

/// The PID in a PID file.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live (not zombie) dnsmasq using `conf`.
pub fn is_ours(pid: u32, conf: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let want = format!("--conf-file={}", conf.display());
    cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes())
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) only sends a signal; the PID was just checked to be
    // this network's dnsmasq.
    unsafe {
        libc::kill(p, sig);
    }
}

/// Stops the network's dnsmasq: SIGTERM, then SIGKILL if it lingers.
/// A PID that no longer belongs to it is left alone.
///
/// Returns once the process has let go of its sockets: an exiting process
/// loses its command line (which [`is_ours`] reads) before it closes its
/// files, so the wait follows the process itself (its start time), and a
/// dnsmasq started right after binds the same addresses without
/// "Address already in use".
pub fn stop(pid: u32, conf: &Path) {
    if !is_ours(pid, conf) {
        return;
    }
    let Some(started) = start_time(pid) else {
        return;
    };
    let running = || start_time(pid) == Some(started);
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while running() {
        if Instant::now() > deadline {
            signal(pid, libc::SIGKILL);
            break;
        }
        std::thread::sleep(POLL);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while running() && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
}

/// The start time (field 22 of `/proc/PID/stat`) of a process that has not
/// yet exited; `None` once it is gone or a zombie (whose files are closed).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X") | None) {
        return None;
    }
    // After the state (field 3) comes field 4; the start time is field 22.
    fields.nth(18)?.parse().ok()
}

/// Asks dnsmasq to re-read its hosts files.
pub fn reload(pid: u32, conf: &Path) {
    if is_ours(pid, conf) {
        signal(pid, libc::SIGHUP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_follows_a_process_until_it_exits() {
        let me = std::process::id();
        let t = start_time(me).expect("this process runs");
        assert_eq!(start_time(me), Some(t), "stable for one process");
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not yet reaped: a zombie, whose files are closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while start_time(pid).is_some() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert_eq!(start_time(pid), None);
        child.wait().unwrap();
        assert_eq!(start_time(pid), None);
    }
}
