//! The supervisor processes as the driver sees them: started with the
//! control socket on fd 3, watched through pidfds (also after a restart of
//! the process that started them), signalled through the pidfd so a reused
//! pid is never hit, and reaped when they are our children.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use tokio::io::unix::AsyncFd;
use virtkit_core::{Error, Result};

use crate::sys;

/// A watched process.
#[derive(Debug)]
pub(crate) struct Watched {
    pid: i32,
    start_time: u64,
    pidfd: AsyncFd<OwnedFd>,
    /// Whether we spawned it (and so must reap it).
    child: bool,
}

/// Registers a pidfd with the runtime, readable when the process exits.
fn watch(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd is moved into the AsyncFd and stays open, the same
    // file description, for the AsyncFd's whole lifetime.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into())
}

impl Watched {
    /// Starts the supervisor of container `name`: `exe` run again with the
    /// supervisor argument, `ctl` as its fd 3, output appended to `log`, in
    /// a session of its own (it outlives the caller).
    pub fn spawn_supervisor(exe: &Path, name: &str, log: &Path, ctl: OwnedFd) -> Result<Watched> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::system(format_args!("cannot open {}", log.display()), &e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::system("cannot duplicate the log file", &e))?;
        let ctl_raw = ctl.as_raw_fd();
        let mut cmd = Command::new(exe);
        cmd.arg0(format!("virtkit-lxc-supervisor: {name}"))
            .arg(crate::supervisor::MAGIC)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (setsid, dup2, fcntl) on fds the
        // child owns.
        unsafe {
            cmd.pre_exec(move || {
                sys::setsid()?;
                if ctl_raw == crate::supervisor::CTL_FD {
                    sys::clear_cloexec(ctl_raw)
                } else {
                    // dup2 leaves the new fd without FD_CLOEXEC.
                    sys::dup2(ctl_raw, crate::supervisor::CTL_FD)
                }
            });
        }
        let child = cmd.spawn().map_err(|e| {
            Error::system(
                format_args!("cannot start the container supervisor ({})", exe.display()),
                &e,
            )
        })?;
        drop(ctl);
        let pid = child.id() as i32;
        // The std handle is dropped without waiting: the exit is watched
        // through the pidfd and reaped with waitpid.
        drop(child);
        let pidfd = sys::pidfd_open(pid).and_then(watch).map_err(|e| {
            Error::system(format_args!("cannot watch the supervisor (pid {pid})"), &e)
        })?;
        Ok(Watched {
            pid,
            start_time: sys::process_start_time(pid).unwrap_or(0),
            pidfd,
            child: true,
        })
    }

    /// Watches a process started earlier (by this or another process), if
    /// `pid` is still that process.
    pub fn attach(pid: i32, start_time: u64) -> Option<Watched> {
        let fd = sys::pidfd_open(pid).ok()?;
        if start_time != 0 && sys::process_start_time(pid) != Some(start_time) {
            return None;
        }
        Some(Watched {
            pid,
            start_time,
            pidfd: watch(fd).ok()?,
            // Started by this process before (an earlier instance of the
            // driver): still ours to reap.
            child: sys::parent_pid(pid) == Some(std::process::id() as i32),
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

    /// Sends a signal through the pidfd (a process already gone is fine).
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        sys::pidfd_signal(self.pidfd.get_ref().as_fd(), sig)
    }

    /// Whether it has exited.
    pub fn has_exited(&self) -> bool {
        sys::poll_readable(self.pidfd.get_ref().as_fd())
    }

    /// Waits until it exits, then reaps it if it is our child.
    pub async fn wait(&self) {
        while let Ok(mut guard) = self.pidfd.readable().await {
            if self.has_exited() {
                break;
            }
            guard.clear_ready();
        }
        if self.child {
            let _ = sys::waitpid(self.pid, true);
        }
    }
}
