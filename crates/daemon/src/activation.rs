//! systemd socket activation: listening sockets passed as fds 3.. with
//! `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.

use std::os::fd::{FromRawFd, RawFd};

/// A socket handed over by systemd.
#[derive(Debug)]
pub enum Activated {
    /// A unix listener; `read_only` from its name (`...-ro...`).
    Unix {
        /// The listener.
        listener: std::os::unix::net::UnixListener,
        /// Whether clients on it are read-only.
        read_only: bool,
    },
    /// A TCP listener; `tls` from its name (`...tls...`).
    Tcp {
        /// The listener.
        listener: std::net::TcpListener,
        /// Whether clients speak TLS on it.
        tls: bool,
    },
}

const FIRST_FD: RawFd = 3;

fn family(fd: RawFd) -> Option<libc::sa_family_t> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are live locals sized for any socket address;
    // getsockname writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(ss.ss_family)
}

/// Takes the sockets systemd passed to this process, if any. The
/// environment variables are removed so children do not inherit them.
pub fn take() -> Vec<Activated> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    // SAFETY: called at start-up before any thread is spawned.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if !pid_ok || count <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..count.min(64) {
        let fd = FIRST_FD + i;
        let name = names.get(i as usize).map(String::as_str).unwrap_or("");
        match family(fd).map(i32::from) {
            Some(libc::AF_UNIX) => {
                // SAFETY: systemd passed us this listening socket and
                // nothing else in the process owns it.
                let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
                let read_only = name.contains("-ro") || (name.is_empty() && i == 1);
                out.push(Activated::Unix {
                    listener,
                    read_only,
                });
            }
            Some(libc::AF_INET) | Some(libc::AF_INET6) => {
                // SAFETY: as above, a listening TCP socket we now own.
                let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
                out.push(Activated::Tcp {
                    listener,
                    tls: name.contains("tls"),
                });
            }
            _ => tracing::warn!(fd, name, "ignoring an activated fd that is not a socket"),
        }
    }
    out
}
