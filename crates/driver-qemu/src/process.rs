//! Starting QEMU and watching it: pidfds for exit notification (also for a
//! QEMU started by an earlier process), signals sent through the pidfd so a
//! reused pid can never be hit, and reaping of our own children.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use virtkit_core::{Error, Result};

/// A running QEMU process.
#[derive(Debug)]
pub struct QemuProcess {
    pid: i32,
    /// The kernel's start time of the process (clock ticks since boot), to
    /// recognise the same process after a restart.
    start_time: u64,
    pidfd: AsyncFd<OwnedFd>,
    /// Whether we spawned it (and so must reap it).
    child: bool,
}

/// Registers a pidfd with the runtime, readable when the process exits.
fn watch(pidfd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd is moved into the AsyncFd and stays open, the same
    // file description, for the AsyncFd's whole lifetime.
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into())
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The start time of `pid` from `/proc/PID/stat` (field 22).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The emulator binary.
    pub binary: &'a Path,
    /// Arguments after the binary.
    pub args: &'a [String],
    /// The whole environment of the process.
    pub env: &'a [(String, String)],
    /// Where QEMU's stdout and stderr go (appended).
    pub log: &'a Path,
    /// File descriptors QEMU inherits at the same numbers (monitor socket, taps).
    pub keep_fds: &'a [RawFd],
}

impl QemuProcess {
    /// Starts QEMU in its own session (so a terminal's Ctrl-C does not reach
    /// it and it outlives the process that started it).
    pub fn spawn(l: &Launch<'_>) -> Result<QemuProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(l.log)
            .map_err(|e| Error::system(format_args!("cannot open {}", l.log.display()), &e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::system("cannot duplicate the log file", &e))?;
        let mut cmd = Command::new(l.binary);
        cmd.args(l.args)
            .env_clear()
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let keep: Vec<RawFd> = l.keep_fds.to_vec();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (setsid, fcntl) on fds it owns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for &fd in &keep {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::system(format_args!("cannot start {}", l.binary.display()), &e))?;
        let pid = child.id() as i32;
        // The std handle is dropped without waiting: exits are watched through
        // the pidfd and reaped with waitpid.
        drop(child);
        let pidfd = pidfd_open(pid)
            .map_err(|e| Error::system(format_args!("cannot watch QEMU (pid {pid})"), &e))?;
        Ok(QemuProcess {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            pidfd: watch(pidfd).map_err(|e| Error::system("cannot register the pidfd", &e))?,
            child: true,
        })
    }

    /// Watches a QEMU started earlier (by this or another process), if
    /// `pid` is still that process.
    pub fn attach(pid: i32, start_time: u64) -> Option<QemuProcess> {
        let pidfd = pidfd_open(pid).ok()?;
        if start_time != 0 && process_start_time(pid) != Some(start_time) {
            return None;
        }
        Some(QemuProcess {
            pid,
            start_time,
            pidfd: watch(pidfd).ok()?,
            child: false,
        })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The kernel's start time of the process.
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// Sends a signal through the pidfd.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: the pidfd is valid while `self` lives; the syscall takes
        // no pointers besides the null siginfo.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            // Already gone is success for our purposes.
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    /// Whether it has exited.
    pub fn has_exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd and a zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0
    }

    /// Waits until it exits, then reaps it if it is our child.
    pub async fn wait(&self) {
        while let Ok(mut guard) = self.pidfd.readable().await {
            if self.has_exited() {
                break;
            }
            guard.clear_ready();
        }
        self.reap();
    }

    fn reap(&self) {
        if self.child {
            let mut status = 0;
            // SAFETY: waitpid on our own child pid with WNOHANG.
            unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`
    /// (libvirt's destroy). Returns once the process is gone.
    pub async fn terminate(&self, grace: Duration, force: bool) -> Result<()> {
        let _ = self.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.wait()).await.is_ok() {
            return Ok(());
        }
        if !force {
            return Err(Error::new(
                virtkit_core::ErrorKind::OperationTimeout,
                format!(
                    "QEMU (pid {}) did not exit within {:.0} s of SIGTERM; destroy without --graceful to force it",
                    self.pid,
                    grace.as_secs_f64()
                ),
            ));
        }
        let _ = self.signal(libc::SIGKILL);
        self.wait().await;
        Ok(())
    }
}

/// Opens (creating) a file to pass to QEMU as an fd.
pub fn open_rw(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::system(format_args!("cannot open {}", path.display()), &e))
}
