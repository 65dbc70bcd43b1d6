//! The supervisor of one container (virtkit's `libvirt_lxc`).
//!
//! The driver starts it by executing its own program again
//! (`/proc/self/exe`, or `$VIRTKIT_LXC_SUPERVISOR`) with [`MAGIC`] as the
//! first argument. A constructor in `.init_array` recognises that argument
//! before `main` runs and turns the process into the supervisor, so every
//! program that links this crate (the `virtkit` CLI, `virtkitd`, a test
//! binary, an embedding application) can supervise containers without a
//! separate binary, and the supervisor starts small and single-threaded.
//!
//! The supervisor outlives the process that started it. It:
//! 1. reads the container's [`Config`] (one JSON line on fd 3);
//! 2. makes the console ptys: one pair whose slave is the container's
//!    console, one whose slave the user opens (`virsh console`); it relays
//!    between the two masters for as long as the container runs;
//! 3. clones the container's first process into new namespaces (pid,
//!    mount, uts, ipc, net, user with `<idmap>`; on cgroup v2 straight into
//!    the container's cgroup), writes the id maps and answers
//!    `ready PID STARTTIME TTY...`. The process joins its v1 cgroups by
//!    itself (a move by pid would wait for an RCU grace period) and builds
//!    the root filesystem (module `container`) meanwhile;
//! 4. waits for `go` (the driver has moved the container's network
//!    interfaces in), lets the process exec init and answers `started` or
//!    `error MESSAGE`;
//! 5. reaps init when it exits, records how (`exit` file in the run
//!    directory: `exit CODE` or `signal NUMBER`), removes the cgroups and
//!    exits.
//!
//! The container is tied to its supervisor (parent-death signal): if the
//! supervisor dies, so does the container.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroup::Cgroup;
use crate::def::{NsMode, Spec};
use crate::sys::{self, Exit};

/// The first argument that makes a program the supervisor.
pub const MAGIC: &str = "--virtkit-lxc-supervisor-v1";
/// The fd the supervisor reads its configuration from and answers on.
pub const CTL_FD: i32 = 3;

/// What the supervisor gets from the driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The container.
    pub spec: Spec,
    /// The run directory (the `exit` file goes there).
    pub run_dir: PathBuf,
    /// The cgroups to remove when the container is gone.
    pub cgroup: Cgroup,
    /// Host uid and gid of the container's root (user namespace), who must
    /// own the console.
    pub console_owner: Option<(u32, u32)>,
}

/// Reads how init ended, as the supervisor recorded it.
pub fn read_exit(run_dir: &Path) -> Option<Exit> {
    let s = std::fs::read_to_string(run_dir.join("exit")).ok()?;
    let (kind, n) = s.trim().split_once(' ')?;
    let n: i32 = n.parse().ok()?;
    match kind {
        "exit" => Some(Exit::Code(n)),
        "signal" => Some(Exit::Signal(n)),
        _ => None,
    }
}

fn write_exit(run_dir: &Path, e: Exit) {
    let text = match e {
        Exit::Code(c) => format!("exit {c}\n"),
        Exit::Signal(s) => format!("signal {s}\n"),
    };
    let _ = sys::replace_file(&run_dir.join("exit"), text.as_bytes());
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("virtkit-lxc-supervisor[{}]: {msg}", std::process::id());
}

/// Runs `f` as the supervisor when this process was started as one, and
/// never returns then. Called by the `.init_array` hook with the
/// process's arguments.
fn maybe_supervise(arg1: Option<&[u8]>) {
    if arg1 != Some(MAGIC.as_bytes()) {
        return;
    }
    let code = std::panic::catch_unwind(main).unwrap_or_else(|_| {
        log("internal error (panic)");
        101
    });
    sys::exit_now(code);
}

extern "C" fn init_hook(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    // SAFETY: the C runtime calls this constructor with the process's own
    // argc and argv.
    maybe_supervise(unsafe { sys::init_arg(argc, argv, 1) });
}

/// The constructor that makes this program a supervisor when asked to be
/// one. glibc passes (argc, argv, envp) to `.init_array` functions.
#[used]
// SAFETY: the section holds function pointers the C runtime calls once,
// before main, with glibc's (argc, argv, envp) arguments; `init_hook` has
// exactly that signature and only inspects its arguments unless this
// process was started as a supervisor.
#[unsafe(link_section = ".init_array")]
static INIT_HOOK: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = init_hook;

/// Makes sure the hook is linked into every program that uses the driver
/// (a linker keeps only the parts of a library something refers to).
pub fn ensure_linked() {
    std::hint::black_box(&INIT_HOOK);
}

fn main() -> i32 {
    sys::ignore_sigpipe();
    // Nothing but stdio and the control socket is ours: descriptors the
    // starting program leaked (opened without close-on-exec) go.
    let _ = sys::close_from(CTL_FD as u32 + 1);
    let ctl = match sys::inherited_fd(CTL_FD) {
        Ok(f) => UnixStream::from(f),
        Err(e) => {
            log(format_args!("no control socket on fd {CTL_FD}: {e}"));
            return 2;
        }
    };
    let mut reader = match ctl.try_clone() {
        Ok(c) => BufReader::new(c),
        Err(e) => {
            log(format_args!("cannot use the control socket: {e}"));
            return 2;
        }
    };
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        log("the driver went away before sending the configuration");
        return 2;
    }
    let cfg: Config = match serde_json::from_str(&line) {
        Ok(c) => c,
        Err(e) => {
            log(format_args!("bad configuration: {e}"));
            let _ = (&ctl).write_all(format!("error bad configuration: {e}\n").as_bytes());
            return 2;
        }
    };
    supervise(&cfg, reader, ctl)
}

/// One console: the container's pty pair and the user's.
struct Console {
    container_master: OwnedFd,
    /// Kept open so the container master never reports a hang-up.
    container_slave: OwnedFd,
    container_path: PathBuf,
    user_master: OwnedFd,
    /// Kept open so the user master never reports a hang-up while nobody
    /// is attached; output then waits in its buffer or is dropped.
    _user_slave: OwnedFd,
    user_path: PathBuf,
}

fn console() -> std::io::Result<Console> {
    let (cm, cs, cp) = sys::openpty()?;
    let (um, us, up) = sys::openpty()?;
    sys::make_raw(us.as_fd())?;
    sys::set_nonblocking(cm.as_fd(), true)?;
    sys::set_nonblocking(um.as_fd(), true)?;
    Ok(Console {
        container_master: cm,
        container_slave: cs,
        container_path: cp,
        user_master: um,
        _user_slave: us,
        user_path: up,
    })
}

fn send(ctl: &UnixStream, msg: &str) {
    let line = format!("{}\n", msg.replace('\n', " "));
    let _ = (&*ctl).write_all(line.as_bytes());
}

fn open_joins(spec: &Spec) -> std::io::Result<Vec<(OwnedFd, libc::c_int)>> {
    let mut out = Vec::new();
    for (mode, flag) in [
        (&spec.net, libc::CLONE_NEWNET),
        (&spec.ipc, libc::CLONE_NEWIPC),
        (&spec.uts, libc::CLONE_NEWUTS),
    ] {
        if let NsMode::Join(p) = mode {
            let f = std::fs::File::open(p).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot open namespace {}: {e}", p.display()),
                )
            })?;
            out.push((OwnedFd::from(f), flag));
        }
    }
    Ok(out)
}

fn write_map(pid: i32, file: &str, map: &[(u32, u32, u32)]) -> std::io::Result<()> {
    let text: String = map
        .iter()
        .map(|(s, t, c)| format!("{s} {t} {c}\n"))
        .collect();
    std::fs::write(format!("/proc/{pid}/{file}"), text)
}

fn supervise(cfg: &Config, mut reader: BufReader<UnixStream>, ctl: UnixStream) -> i32 {
    let spec = &cfg.spec;
    let fail = |msg: String| {
        log(&msg);
        send(&ctl, &format!("error {msg}"));
        1
    };
    let mut consoles = Vec::new();
    for _ in 0..spec.consoles {
        match console() {
            Ok(c) => {
                if let Some((u, g)) = cfg.console_owner
                    && let Err(e) = sys::fchown(c.container_slave.as_fd(), u, g)
                {
                    return fail(format!(
                        "cannot give the console to the container's root: {e}"
                    ));
                }
                consoles.push(c);
            }
            Err(e) => return fail(format!("cannot create a console pty: {e}")),
        }
    }
    let joins = match open_joins(spec) {
        Ok(j) => j,
        Err(e) => return fail(e.to_string()),
    };
    let (go_r, go_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot create a pipe: {e}")),
    };
    let (err_r, err_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot create a pipe: {e}")),
    };
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
    for (mode, f) in [
        (&spec.net, libc::CLONE_NEWNET),
        (&spec.ipc, libc::CLONE_NEWIPC),
        (&spec.uts, libc::CLONE_NEWUTS),
    ] {
        if *mode == NsMode::New {
            flags |= f;
        }
    }
    if !spec.uid_map.is_empty() {
        flags |= libc::CLONE_NEWUSER;
    }
    let child_consoles: Vec<(OwnedFd, PathBuf)> = match consoles
        .iter()
        .map(|c| {
            c.container_slave
                .try_clone()
                .map(|f| (f, c.container_path.clone()))
        })
        .collect()
    {
        Ok(v) => v,
        Err(e) => return fail(format!("cannot duplicate a console fd: {e}")),
    };
    if let Some((u, g)) = cfg.console_owner {
        // In a user namespace the container's root joins its cgroups itself.
        for f in cfg.cgroup.join_files() {
            if let Err(e) = sys::chown(&f, u, g) {
                return fail(format!(
                    "cannot give {} to the container's root: {e}",
                    f.display()
                ));
            }
        }
    }
    // Straight into the v2 cgroup where there is one: moving a process in
    // afterwards would wait for an RCU grace period.
    let v2 = cfg
        .cgroup
        .v2_dir()
        .and_then(|d| std::fs::File::open(d).ok());
    let flags = flags as libc::c_ulong;
    let plain = || {
        // SAFETY: the supervisor is single-threaded: it was started by exec
        // and has spawned no thread.
        unsafe { sys::clone_process(flags) }.map(|r| (r, false))
    };
    let cloned = match &v2 {
        // SAFETY: as for `plain`: the supervisor is single-threaded.
        Some(dir) => match unsafe { sys::clone_into_cgroup(flags, dir.as_fd()) } {
            Ok(r) => Ok((r, true)),
            // An older kernel: clone, and the process moves itself.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::E2BIG)) => plain(),
            Err(e) => Err(e),
        },
        None => plain(),
    };
    let pid = match cloned {
        Ok((None, in_v2)) => {
            // The container's side keeps only what it needs.
            drop((go_w, err_r, reader, ctl, consoles));
            crate::container::run(crate::container::Child {
                spec,
                go: go_r,
                err: err_w,
                consoles: child_consoles,
                joins,
                cgroup: &cfg.cgroup,
                in_v2,
            })
        }
        Ok((Some(pid), _)) => pid,
        Err(e) => {
            return fail(format!(
                "cannot create the container's namespaces (clone flags {flags:#x}): {e}"
            ));
        }
    };
    drop((go_r, err_w, child_consoles, joins, v2));
    let kill_child = || {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::waitpid(pid, false);
    };
    if !spec.uid_map.is_empty() {
        let maps = write_map(pid, "uid_map", &spec.uid_map)
            .and_then(|()| write_map(pid, "gid_map", &spec.gid_map));
        if let Err(e) = maps {
            kill_child();
            return fail(format!("cannot write the container's id maps: {e}"));
        }
    }
    // The container process builds its root filesystem now, while the
    // driver does the host side; it waits again before exec.
    let mut go_w = std::fs::File::from(go_w);
    if let Err(e) = go_w.write_all(b"m") {
        kill_child();
        return fail(format!("cannot let the container process go on: {e}"));
    }
    let start_time = sys::process_start_time(pid).unwrap_or(0);
    let ttys: Vec<String> = consoles
        .iter()
        .map(|c| c.user_path.display().to_string())
        .collect();
    send(
        &ctl,
        &format!("ready {pid} {start_time} {}", ttys.join(" ")),
    );
    let mut line = String::new();
    let go = reader.read_line(&mut line).is_ok() && line.trim() == "go";
    if !go {
        log("start cancelled by the driver");
        kill_child();
        return 1;
    }
    // If the container process failed already, its message explains why
    // the pipe is broken.
    let go_err = go_w.write_all(b"g").err();
    drop(go_w);
    let mut msg = String::new();
    let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
    if msg.is_empty()
        && let Some(e) = go_err
    {
        msg = format!("the container process went away before it could go on: {e}");
    }
    if !msg.is_empty() {
        let _ = sys::waitpid(pid, false);
        return fail(msg);
    }
    log(format_args!(
        "container '{}' started, init pid {pid}",
        spec.name
    ));
    send(&ctl, "started");
    drop((reader, ctl));

    let exit = relay_until_exit(pid, &consoles);
    match exit {
        Exit::Code(c) => log(format_args!("init exited with code {c}")),
        Exit::Signal(s) => log(format_args!("init was killed by signal {s}")),
    }
    write_exit(&cfg.run_dir, exit);
    // The pid namespace is gone with init; processes that joined only the
    // cgroups are not.
    cfg.cgroup.kill_all();
    if let Err(e) = cfg.cgroup.remove(Duration::from_secs(5)) {
        log(format_args!("cannot remove the cgroups: {e}"));
    }
    0
}

/// Relays console traffic until init exits; returns how it ended.
fn relay_until_exit(pid: i32, consoles: &[Console]) -> Exit {
    let pidfd = sys::pidfd_open(pid).ok();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        }];
        for c in consoles {
            for fd in [&c.container_master, &c.user_master] {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // Without a pidfd (old kernel), poll with a timeout and check.
        let timeout = if pidfd.is_some() { -1 } else { 200 };
        if sys::poll(&mut fds, timeout).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if (fds[0].revents != 0 || pidfd.is_none())
            && let Ok(Some(e)) = sys::waitpid(pid, pidfd.is_none())
        {
            return e;
        }
        for (i, c) in consoles.iter().enumerate() {
            let (from_container, from_user) = (fds[1 + 2 * i].revents, fds[2 + 2 * i].revents);
            if from_container != 0 {
                pump(&c.container_master, &c.user_master, &mut buf);
            }
            if from_user != 0 {
                pump(&c.user_master, &c.container_master, &mut buf);
            }
        }
    }
}

/// Moves what is readable from one master to the other; what the other
/// side cannot take now is dropped, so a console nobody reads never
/// blocks the container.
fn pump(from: &OwnedFd, to: &OwnedFd, buf: &mut [u8]) {
    for _ in 0..16 {
        match sys::read_fd(from.as_fd(), buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let _ = sys::write_fd(to.as_fd(), &buf[..n]);
            }
        }
    }
}
