//! Container commands: `lxc-enter-namespace` (a command run inside a
//! running container's namespaces and cgroups) and `domxml-from-native`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};

use super::spec::Call;
use super::{By, CmdResult, Ctx, Failure, read_xml_file};

/// `domxml-from-native FORMAT CONFIG`: a native configuration file as
/// domain XML (`lxc-tools` for the LXC driver).
pub async fn domxml_from_native(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let format = call.req("format").to_string();
    let config = read_xml_file(call.req("config"))?;
    let conn = ctx.conn().await?.clone();
    let xml = conn.domain_xml_from_native(&format, &config).await?;
    ctx.print(&xml);
    Ok(())
}

/// The CLONE_NEW* flag of a namespace kind.
fn ns_flag(kind: &str) -> libc::c_int {
    match kind {
        "user" => libc::CLONE_NEWUSER,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "net" => libc::CLONE_NEWNET,
        "pid" => libc::CLONE_NEWPID,
        "mnt" => libc::CLONE_NEWNS,
        "cgroup" => libc::CLONE_NEWCGROUP,
        _ => 0,
    }
}

/// Whether `fd` is the namespace this process is already in.
fn is_own(kind: &str, fd: &OwnedFd) -> bool {
    let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"));
    let Ok(dup) = fd.try_clone() else {
        return false;
    };
    let theirs = std::fs::File::from(dup).metadata();
    matches!((ours, theirs), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

/// Writes `n` in decimal to `fd` without allocating (between fork and exec).
fn write_pid(fd: RawFd, n: i32) -> bool {
    let mut buf = [0u8; 12];
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // SAFETY: the pointer and length describe the initialised tail of `buf`.
    let w = unsafe { libc::write(fd, buf[i..].as_ptr().cast(), buf.len() - i) };
    w > 0
}

/// Between fork and exec: joins the container's cgroups and namespaces,
/// then forks once more so the command runs inside the pid namespace too;
/// this process waits for it and exits with its status. Only
/// async-signal-safe calls.
fn enter(
    cgroups: &[RawFd],
    namespaces: &[(RawFd, libc::c_int)],
    user: bool,
) -> std::io::Result<()> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    for fd in cgroups {
        if !write_pid(*fd, me) {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (fd, flag) in namespaces {
        // SAFETY: setns takes an open nsfs fd and a flag; no memory passed.
        if unsafe { libc::setns(*fd, *flag) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if user {
        // The container's root, in its user namespace.
        // SAFETY: integer arguments only.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(0, 0, 0) == 0
                && libc::setresuid(0, 0, 0) == 0
        };
        if !ok {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: fork in a single-threaded child (this runs after fork).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        return Ok(());
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: _exit does not return.
            unsafe { libc::_exit(127) };
        }
    }
    let code = if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    };
    // SAFETY: _exit does not return; nothing of this forked copy needs running.
    unsafe { libc::_exit(code) }
}

/// `lxc-enter-namespace DOMAIN [--noseclabel] -- COMMAND [ARGS...]`.
pub async fn lxc_enter_namespace(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let argv = call.rest().to_vec();
    if argv.is_empty() {
        return Err(Failure::msg(
            "command 'lxc-enter-namespace' requires <cmd> option",
        ));
    }
    if let Some(bad) = argv.iter().find(|a| a.contains('\0')) {
        return Err(Failure::msg(format!(
            "argument '{}' contains a NUL byte",
            bad.escape_debug()
        )));
    }
    let d = ctx.domain(call.req("domain"), By::ALL).await?;
    let conn = ctx.conn().await?.clone();
    let entry = conn
        .domains()?
        .lxc_open_namespace(d.handle())
        .await
        .map_err(|e| Failure::with(format!("Failed to enter domain '{}'", d.name()), &e))?;
    let mut cgroups: Vec<OwnedFd> = Vec::new();
    for p in &entry.cgroup_procs {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(|e| Failure::msg(format!("cannot join cgroup {}: {e}", p.display())))?;
        cgroups.push(f.into());
    }
    let mut user = false;
    let mut namespaces: Vec<(RawFd, libc::c_int)> = Vec::new();
    for (kind, fd) in &entry.namespaces {
        if is_own(kind, fd) {
            continue;
        }
        if kind == "user" {
            user = true;
        }
        namespaces.push((fd.as_raw_fd(), ns_flag(kind)));
    }
    // The user namespace first: the others belong to it.
    namespaces.sort_by_key(|(_, f)| *f != libc::CLONE_NEWUSER);
    let cg_raw: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (write, setns, setgroups/setres[ug]id, fork,
    // waitpid, _exit) on fds opened before the fork.
    unsafe {
        cmd.pre_exec(move || enter(&cg_raw, &namespaces, user));
    }
    ctx.flush();
    let status = tokio::task::spawn_blocking(move || {
        let r = cmd.spawn().and_then(|mut c| c.wait());
        drop((cgroups, entry));
        r
    })
    .await
    .map_err(|e| Failure::msg(format!("internal error: {e}")))?
    .map_err(|e| Failure::msg(format!("cannot run '{}' in the container: {e}", argv[0])))?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(Failure::msg(format!(
            "Child process (in domain '{}') unexpected exit status {c}",
            d.name()
        ))),
        (None, Some(s)) => Err(Failure::msg(format!(
            "Child process (in domain '{}') unexpected fatal signal {s}",
            d.name()
        ))),
        _ => Err(Failure::msg("Child process ended abnormally")),
    }
}
