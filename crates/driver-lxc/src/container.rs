//! Inside the container, before init runs: the process the supervisor
//! cloned into the new namespaces builds the root filesystem (bind mounts,
//! tmpfs, read-only remounts, /proc, /sys, a /dev with a devpts of its own,
//! the console), sets the host name, pivots into the new root, drops
//! capabilities, takes init's identity and execs `<init>`.
//!
//! Any failure is written, with what was being done, to the error pipe the
//! supervisor reads, and the process exits; a successful exec closes the
//! pipe (it is close-on-exec), which is how the supervisor learns init runs.

use std::ffi::{CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::def::{MountKind, NsMode, Spec};
use crate::sys;

/// What the container process inherits from the supervisor.
pub(crate) struct Child<'a> {
    pub spec: &'a Spec,
    /// Read end of the "go" pipe: the driver has finished the host side.
    pub go: OwnedFd,
    /// Write end of the error pipe.
    pub err: OwnedFd,
    /// The container ends of the console ptys, and their host paths.
    pub consoles: Vec<(OwnedFd, PathBuf)>,
    /// Namespaces to join: (fd, CLONE_NEW* flag).
    pub joins: Vec<(OwnedFd, libc::c_int)>,
    /// The container's cgroups, which the process joins by itself.
    pub cgroup: &'a crate::cgroup::Cgroup,
    /// Whether it was cloned into the v2 cgroup already.
    pub in_v2: bool,
}

type Step<T> = std::result::Result<T, String>;

fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Step<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Runs in the cloned child; never returns.
pub(crate) fn run(child: Child<'_>) -> ! {
    let mut err = std::fs::File::from(child.err.try_clone().unwrap_or_else(|_| sys::exit_now(126)));
    let msg = match setup_and_exec(&child) {
        Ok(never) => match never {},
        Err(m) => m,
    };
    let _ = err.write_all(msg.as_bytes());
    sys::exit_now(127)
}

enum Never {}

fn setup_and_exec(c: &Child<'_>) -> Step<Never> {
    ctx(sys::set_parent_death_signal(libc::SIGKILL), || {
        "cannot tie the container to its supervisor".into()
    })?;
    // Had the supervisor died before the prctl, the go pipe reads EOF below.
    let mut go = std::fs::File::from(ctx(c.go.try_clone(), || "cannot read the go pipe".into())?);
    // 'm': the id maps are written (and the supervisor lives); the root
    // filesystem is built now. 'g' (below): the host side is done.
    let mut wait_for = |want: u8| -> Step<()> {
        let mut b = [0u8; 1];
        match go.read(&mut b) {
            Ok(1) if b[0] == want => Ok(()),
            _ => Err("start was cancelled".into()),
        }
    };
    wait_for(b'm')?;
    let spec = c.spec;
    if !spec.uid_map.is_empty() {
        // Root of the new user namespace (the maps are written by now).
        ctx(sys::set_identity(0, 0, &[]), || {
            "cannot become root in the container's user namespace".into()
        })?;
    }
    // Into the container's cgroups before anything else runs here, and
    // while the host's cgroup file systems are still visible.
    c.cgroup
        .join_self(!c.in_v2)
        .map_err(|e| format!("cannot join the container's cgroups: {e}"))?;
    for (fd, flag) in &c.joins {
        ctx(sys::setns(fd.as_fd(), *flag), || {
            format!("cannot join the shared namespace (setns {flag:#x})")
        })?;
    }
    ctx(
        sys::mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_SLAVE,
            None,
        ),
        || "cannot make the mounts private (MS_SLAVE on /)".into(),
    )?;
    let root = spec.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    bind(&root, &root, true)?;
    let real_root = ctx(root.canonicalize(), || {
        format!("cannot resolve {}", root.display())
    })?;
    for m in &spec.mounts {
        let target = inside(&real_root, &m.target)?;
        match &m.kind {
            MountKind::Bind { source } => {
                let is_dir = ctx(std::fs::metadata(source), || {
                    format!("cannot use filesystem source {}", source.display())
                })?
                .is_dir();
                make_target(&target, is_dir)?;
                bind(source, &target, true)?;
            }
            MountKind::Tmpfs { size_kib } => {
                make_target(&target, true)?;
                let data = if *size_kib > 0 {
                    format!("size={size_kib}k,mode=755")
                } else {
                    "mode=755".into()
                };
                ctx(
                    sys::mount(
                        Some(OsStr::new("tmpfs")),
                        &target,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some(&data),
                    ),
                    || format!("cannot mount a tmpfs on {}", m.target.display()),
                )?;
            }
        }
        if m.readonly {
            remount_ro(&target, &m.target)?;
        }
    }
    basic_mounts(&real_root, spec)?;
    dev(&real_root, c)?;
    if spec.uts == NsMode::New {
        ctx(sys::sethostname(&spec.name), || {
            format!("cannot set the host name to '{}'", spec.name)
        })?;
    }
    ctx(std::env::set_current_dir(&real_root), || {
        format!("cannot enter {}", real_root.display())
    })?;
    ctx(sys::pivot_root_here(), || {
        format!("cannot make {} the root (pivot_root)", real_root.display())
    })?;
    ctx(sys::umount_detach(Path::new(".")), || {
        "cannot detach the host's root".into()
    })?;
    ctx(std::env::set_current_dir("/"), || "cannot enter /".into())?;
    if spec.root_readonly {
        remount_ro(Path::new("/"), Path::new("/"))?;
    }
    stdio(c)?;
    for cap in &spec.caps_drop {
        if *cap <= sys::last_cap() {
            ctx(sys::capbset_drop(*cap), || {
                format!("cannot drop capability {cap}")
            })?;
        }
    }
    if spec.user.is_some() || spec.group.is_some() {
        let (uid, gid) = identity(spec.user.as_deref(), spec.group.as_deref())?;
        ctx(sys::set_identity(uid, gid, &[gid]), || {
            format!("cannot become uid {uid} gid {gid}")
        })?;
    }
    if let Some(d) = &spec.workdir {
        ctx(std::env::set_current_dir(d), || {
            format!("cannot enter initdir {d}")
        })?;
    }
    let cs = |s: &str| {
        CString::new(s).map_err(|_| format!("'{}' contains a NUL byte", s.escape_debug()))
    };
    let argv: Vec<CString> = spec.argv.iter().map(|a| cs(a)).collect::<Step<_>>()?;
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| cs(&format!("{k}={v}")))
        .collect::<Step<_>>()?;
    // In its cgroups, with its network: init may run.
    wait_for(b'g')?;
    ctx(sys::cloexec_from(3), || {
        "cannot close inherited descriptors".into()
    })?;
    sys::reset_signals();
    let e = sys::execve(&argv[0], &argv, &env);
    Err(format!("cannot run init '{}': {e}", spec.argv[0]))
}

/// `target` inside `root`, with every existing component resolved and
/// checked to stay inside it (a symbolic link in the container's files
/// must not lead a mount onto the host).
fn inside(root: &Path, target: &Path) -> Step<PathBuf> {
    let mut cur = root.to_path_buf();
    for comp in target.components() {
        let Component::Normal(n) = comp else { continue };
        cur.push(n);
        if let Ok(real) = cur.canonicalize() {
            if !real.starts_with(root) {
                return Err(format!(
                    "{} leads outside the container's root ({} -> {})",
                    target.display(),
                    cur.display(),
                    real.display()
                ));
            }
            cur = real;
        }
    }
    Ok(cur)
}

fn make_target(p: &Path, dir: bool) -> Step<()> {
    if p.exists() {
        return Ok(());
    }
    if dir {
        ctx(std::fs::create_dir_all(p), || {
            format!("cannot create {}", p.display())
        })
    } else {
        if let Some(parent) = p.parent() {
            ctx(std::fs::create_dir_all(parent), || {
                format!("cannot create {}", parent.display())
            })?;
        }
        ctx(
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(p)
                .map(drop),
            || format!("cannot create {}", p.display()),
        )
    }
}

fn bind(source: &Path, target: &Path, recursive: bool) -> Step<()> {
    let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
    ctx(
        sys::mount(Some(source.as_os_str()), target, None, flags, None),
        || format!("cannot bind {} to {}", source.display(), target.display()),
    )
}

/// Remounts a bind mount read-only, keeping the flags the kernel locks in
/// a user namespace.
fn remount_ro(target: &Path, shown: &Path) -> Step<()> {
    let keep = sys::mount_flags(target).unwrap_or(0);
    ctx(
        sys::mount(
            None,
            target,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
            None,
        ),
        || format!("cannot make {} read-only", shown.display()),
    )
}

/// /proc (with /proc/sys read-only, except the network sysctls of a
/// container with its own network namespace) and a read-only /sys.
fn basic_mounts(root: &Path, spec: &Spec) -> Step<()> {
    let proc_ = root.join("proc");
    make_target(&proc_, true)?;
    ctx(
        sys::mount(
            Some(OsStr::new("proc")),
            &proc_,
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV,
            None,
        ),
        || "cannot mount /proc".into(),
    )?;
    let sys_ = proc_.join("sys");
    bind(&sys_, &sys_, false)?;
    remount_ro(&sys_, Path::new("/proc/sys"))?;
    if spec.net == NsMode::New {
        // The container's own network sysctls stay writable: a bind of
        // each over itself, made writable again.
        for sub in ["net/ipv4", "net/ipv6"] {
            let p = sys_.join(sub);
            if !p.exists() {
                continue;
            }
            bind(&p, &p, false)?;
            ctx(
                sys::mount(
                    None,
                    &p,
                    None,
                    libc::MS_REMOUNT
                        | libc::MS_BIND
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC,
                    None,
                ),
                || format!("cannot make /proc/sys/{sub} writable"),
            )?;
        }
    }
    let sysfs = root.join("sys");
    make_target(&sysfs, true)?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV | libc::MS_RDONLY;
    if sys::mount(
        Some(OsStr::new("sysfs")),
        &sysfs,
        Some("sysfs"),
        flags,
        None,
    )
    .is_err()
    {
        // A user namespace sharing the host's network cannot mount sysfs:
        // show the host's, read-only.
        bind(Path::new("/sys"), &sysfs, true)?;
        remount_ro(&sysfs, Path::new("/sys"))?;
    }
    Ok(())
}

/// Device nodes every container gets, bound from the host's /dev.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// A fresh /dev: a small tmpfs with the basic devices, a devpts instance
/// of its own, /dev/ptmx, the consoles, /dev/shm and the fd links.
fn dev(root: &Path, c: &Child<'_>) -> Step<()> {
    let dev = root.join("dev");
    make_target(&dev, true)?;
    ctx(
        sys::mount(
            Some(OsStr::new("devfs")),
            &dev,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        || "cannot mount a tmpfs on /dev".into(),
    )?;
    for d in DEVICES {
        let t = dev.join(d);
        make_target(&t, false)?;
        bind(&Path::new("/dev").join(d), &t, false)?;
    }
    let pts = dev.join("pts");
    make_target(&pts, true)?;
    ctx(
        sys::mount(
            Some(OsStr::new("devpts")),
            &pts,
            Some("devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        || "cannot mount a devpts on /dev/pts".into(),
    )?;
    ctx(
        std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")),
        || "cannot create /dev/ptmx".into(),
    )?;
    for (i, (_, host_path)) in c.consoles.iter().enumerate() {
        let name = if i == 0 {
            "console".to_string()
        } else {
            format!("tty{i}")
        };
        let t = dev.join(&name);
        make_target(&t, false)?;
        bind(host_path, &t, false)?;
    }
    let shm = dev.join("shm");
    make_target(&shm, true)?;
    ctx(
        sys::mount(
            Some(OsStr::new("shm")),
            &shm,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=1777,size=65536k"),
        ),
        || "cannot mount /dev/shm".into(),
    )?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(std::os::unix::fs::symlink(to, dev.join(link)), || {
            format!("cannot create /dev/{link}")
        })?;
    }
    Ok(())
}

/// The first console becomes init's controlling terminal and standard
/// streams; without one, they are /dev/null.
fn stdio(c: &Child<'_>) -> Step<()> {
    ctx(sys::setsid(), || "cannot start a session".into())?;
    let fd = match c.consoles.first() {
        Some((f, _)) => {
            ctx(sys::set_controlling_tty(f.as_fd()), || {
                "cannot make the console the controlling terminal".into()
            })?;
            f.as_raw_fd()
        }
        None => {
            let null = ctx(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null"),
                || "cannot open /dev/null".into(),
            )?;
            // Open until exec (which closes it); dup2 below copies it.
            std::os::fd::IntoRawFd::into_raw_fd(null)
        }
    };
    for n in 0..3 {
        ctx(sys::dup2(fd, n), || {
            format!("cannot set up standard stream {n}")
        })?;
    }
    Ok(())
}

/// A user and group by name (from the container's /etc/passwd and
/// /etc/group) or number.
fn identity(user: Option<&str>, group: Option<&str>) -> Step<(u32, u32)> {
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    let (uid, mut gid) = match user {
        None => (0, 0),
        Some(u) => match u.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => lookup("/etc/passwd", u)
                .ok_or_else(|| format!("user '{u}' is not in the container's /etc/passwd"))?,
        },
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)
                .map(|(gid, _)| gid)
                .ok_or_else(|| format!("group '{g}' is not in the container's /etc/group"))?,
        };
    }
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_cannot_escape_the_root_through_links() {
        let root = std::env::temp_dir().join(format!("vk-lxc-inside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("evil")).unwrap();
        let root = root.canonicalize().unwrap();
        assert_eq!(
            inside(&root, Path::new("/etc/x")).unwrap(),
            root.join("etc/x")
        );
        let e = inside(&root, Path::new("/evil/x")).unwrap_err();
        assert!(e.contains("outside the container's root"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
