//! Small safe wrappers around the system calls containers need (namespaces,
//! mounts, ptys, pidfds, capabilities, identities). The crate's `unsafe`
//! blocks live here, each with the reason it is sound (besides the pidfd
//! registration and the pre-exec step in `process`, and the constructor
//! hook in `supervisor`); the rest of the crate calls these.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A path or string as a C string; NUL bytes are an `InvalidInput` error.
pub fn cstr(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "'{}' contains a NUL byte",
                s.as_ref().to_string_lossy().escape_debug()
            ),
        )
    })
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn check_long(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `mount(2)`.
pub fn mount(
    source: Option<&OsStr>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a NUL-terminated string that
    // outlives the call; mount(2) only reads them.
    check(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    })
    .map(drop)
}

/// The mount flags of the mount holding `path` that a remount must keep
/// (`nosuid`, `nodev`, `noexec`, the atime flags), as `MS_*` bits.
pub fn mount_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let p = cstr(path)?;
    // SAFETY: statvfs is a plain C struct; all-zero bytes are a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs to fill.
    check(unsafe { libc::statvfs(p.as_ptr(), &mut st) })?;
    let mut out = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            out |= ms;
        }
    }
    Ok(out)
}

/// `umount2(target, MNT_DETACH)`.
pub fn umount_detach(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: a valid C string; umount2 only reads it.
    check(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// `pivot_root(".", ".")`: the current directory becomes the root and the
/// old root is stacked on top of it, to be detached with
/// [`umount_detach`]`(".")`. Needs no directory inside the new root.
pub fn pivot_root_here() -> io::Result<()> {
    let dot = c".";
    // SAFETY: two valid C strings; the syscall only reads them.
    check_long(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) }).map(drop)
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; sethostname only reads them.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// `setns(2)`: moves the calling thread into the namespace `fd` refers to.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid fd borrowed for the call and a flag; no memory passed.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// `clone(2)` without a new stack: like `fork`, but the child starts in the
/// new namespaces `flags` asks for. Returns `None` in the child and the
/// child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded (the child gets a copy of only the
/// calling thread, and glibc's fork handlers do not run, so no lock may be
/// held by anyone else).
pub unsafe fn clone_process(flags: libc::c_ulong) -> io::Result<Option<i32>> {
    // SAFETY: with a null stack the kernel gives the child a copy-on-write
    // copy of the caller's stack, as fork does; the caller guarantees no
    // other thread exists whose state the child could inherit half-done.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match check_long(rc)? {
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// `clone3(2)` without a new stack, with `CLONE_INTO_CGROUP`: like
/// [`clone_process`], but the child starts in the cgroup v2 directory
/// `cgroup` (no migration afterwards, which would wait for an RCU grace
/// period). Returns `None` in the child.
///
/// # Safety
/// As for [`clone_process`]: the caller must be single-threaded.
pub unsafe fn clone_into_cgroup(
    flags: libc::c_ulong,
    cgroup: BorrowedFd<'_>,
) -> io::Result<Option<i32>> {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    // c_ulong is narrower than u64 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let args = CloneArgs {
        flags: u64::from(flags) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, alive for the
    // call; with no stack the child continues on a copy-on-write copy of
    // the caller's, and the caller guarantees it is single-threaded.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check_long(rc)? {
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// `pidfd_open(2)`: an fd that becomes readable when `pid` exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: takes a pid and flags, returns a new fd or -1; no memory passed.
    let fd = check_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the syscall returned a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`; a process that is already gone is not an error.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd borrowed for the call, a signal number and a
    // null siginfo; nothing else is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match check_long(rc) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

/// `kill(2)`; a process that is already gone is not an error.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers; no memory passed.
    match check(unsafe { libc::kill(pid, sig) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

/// Whether a pollable fd (a pidfd) is readable now.
pub fn poll_readable(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd and a zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// `poll(2)` on several fds; `timeout_ms` < 0 waits forever. EINTR counts
/// as "nothing ready".
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the pointer and length describe the caller's slice, which the
    // kernel writes `revents` into while the call lasts.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match check(rc) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

/// `waitpid(2)` for one child; `None` when it is still running (`nohang`).
pub fn waitpid(pid: i32, nohang: bool) -> io::Result<Option<Exit>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write to.
        let rc = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
        match check(rc) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(_) => break,
        }
    }
    Ok(Some(if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }))
}

/// Sets or clears O_NONBLOCK.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd with integer arguments.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) }).map(drop)
}

/// Clears FD_CLOEXEC so an exec'd program inherits the fd. Only
/// async-signal-safe calls: usable between fork and exec.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number with integer arguments; an invalid fd
    // is reported as EBADF.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) }).map(drop)
}

/// `dup2(2)`. Async-signal-safe.
pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes two fd numbers; the caller owns both slots.
    check(unsafe { libc::dup2(old, new) }).map(drop)
}

/// `setsid(2)`. Async-signal-safe.
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() }).map(drop)
}

/// Closes every fd from `first` up (`close_range(2)`): what the starting
/// program left open by mistake.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments only; the caller owns no fd in that range
    // that it still uses.
    check_long(unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) })
        .map(drop)
}

/// Marks every fd from `first` up as close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: integer arguments only.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// A pseudo-terminal pair from the host's devpts: the master, the slave
/// and the slave's path (`/dev/pts/N`).
pub fn openpty() -> io::Result<(OwnedFd, OwnedFd, PathBuf)> {
    // SAFETY: posix_openpt takes flags and returns a new fd or -1.
    let m = check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: a fresh fd nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt/unlockpt take the master fd; no memory passed.
    check(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let mut buf = [0u8; 128];
    // SAFETY: the pointer and length describe `buf`, which ptsname_r fills
    // with a NUL-terminated name.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let name = CStr::from_bytes_until_nul(&buf)
        .map_err(|_| io::Error::other("ptsname_r returned an unterminated name"))?;
    let path = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(&path)?;
    Ok((master, slave.into(), path))
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY)
    }
}

/// Puts a terminal into raw mode (no echo, no line editing, no signals).
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: termios is a plain C struct; all-zero bytes are a valid value.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a termios to fill.
    check(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    // SAFETY: `t` is a valid termios read above.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: a valid fd and termios.
    check(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) }).map(drop)
}

/// Makes `fd` (a terminal) the controlling terminal of the calling session.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory passed.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// `chown(2)` of a path.
pub fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: a valid C string and integer arguments.
    check(unsafe { libc::chown(p.as_ptr(), uid, gid) }).map(drop)
}

/// `fchown(2)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

/// Drops a capability from the bounding set (`PR_CAPBSET_DROP`).
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    match check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
        // A capability this kernel does not know is already absent.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r.map(drop),
    }
}

/// The highest capability number the kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Asks the kernel to send `sig` to the calling process when its parent
/// exits (`PR_SET_PDEATHSIG`).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Becomes `uid`/`gid` with exactly `groups` as supplementary groups.
pub fn set_identity(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `groups`, read by the kernel.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::setresuid(uid, uid, uid) }).map(drop)
}

/// `execve(2)`: only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `path` and every element are NUL-terminated strings, and both
    // arrays end with a null pointer; all of them outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends the calling process at once, without running destructors or
/// flushing std's buffers (for forked children and the supervisor).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Ignores SIGPIPE (writes to closed pipes then fail with EPIPE).
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN involves no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Restores the default dispositions and an empty signal mask, so a
/// program exec'd afterwards starts clean.
pub fn reset_signals() {
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: setting a disposition to SIG_DFL involves no handler code.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    // SAFETY: sigset_t is a plain C struct; sigemptyset initialises it and
    // sigprocmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `read(2)` on a borrowed fd.
pub fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which the kernel fills.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `write(2)` on a borrowed fd.
pub fn write_fd(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which the kernel reads.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Takes ownership of an fd this process inherited at a known number
/// (the supervisor's control socket). Only for fds the parent handed over
/// for that purpose, and only once.
pub fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD on a number only reads the fd table; EBADF if unused.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the fd is open (checked above) and, by this function's
    // contract, owned by nothing else in the process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Argument `i` of the process as the C runtime hands (argc, argv) to
/// `.init_array` functions.
///
/// # Safety
/// `argc` and `argv` must be the process's arguments as glibc passes them
/// to constructors (argv holds argc valid C strings).
pub unsafe fn init_arg<'a>(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    i: usize,
) -> Option<&'a [u8]> {
    if argv.is_null() || argc < 0 || i >= argc as usize {
        return None;
    }
    // SAFETY: i < argc, and argv holds argc pointers (caller's contract).
    let p = unsafe { *argv.add(i) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null argv entry is a NUL-terminated string that lives as
    // long as the process.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Replaces a file's content atomically (a temporary file renamed over
/// it), without forcing it to disk: for live state, which a host crash
/// makes meaningless anyway.
pub fn replace_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A pipe whose ends are close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is an array of two ints for the kernel to fill.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh fds nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes a sysvinit "change runlevel" request into an initctl FIFO.
/// `Ok(false)` when `path` is not a FIFO init listens on.
pub fn initctl_request(path: &Path, runlevel: u8) -> io::Result<bool> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        // No such file, or a FIFO nobody reads.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENXIO)) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if !f.metadata()?.file_type().is_fifo() {
        return Ok(false);
    }
    // struct init_request: magic, cmd (1: runlevel), runlevel, sleeptime,
    // then 368 bytes of union; 384 bytes in all.
    let mut req = [0u8; 384];
    req[0..4].copy_from_slice(&0x0309_1969i32.to_ne_bytes());
    req[4..8].copy_from_slice(&1i32.to_ne_bytes());
    req[8..12].copy_from_slice(&i32::from(runlevel).to_ne_bytes());
    io::Write::write_all(&mut &f, &req)?;
    Ok(true)
}

/// The kernel's start time of `pid` (clock ticks since boot, field 22 of
/// `/proc/PID/stat`), to recognise the same process later.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The parent of `pid` (field 4 of `/proc/PID/stat`).
pub fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_path_is_an_error() {
        let e = cstr("a\0b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn pty_pair_round_trips_bytes() {
        use std::io::{Read, Write};
        let (m, s, path) = openpty().unwrap();
        assert!(path.starts_with("/dev/pts"), "{}", path.display());
        make_raw(std::os::fd::AsFd::as_fd(&s)).unwrap();
        let mut mf = std::fs::File::from(m);
        let mut sf = std::fs::File::from(s);
        mf.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        sf.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn start_time_and_liveness_of_self() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
