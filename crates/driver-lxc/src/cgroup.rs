//! Container cgroups on cgroup v1 and v2 hierarchies, chosen per
//! controller at run time.
//!
//! [`Host::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup`.
//! Each controller a container needs comes from a v1 hierarchy when one is
//! mounted with it, else from the v2 hierarchy when that offers it (hybrid
//! hosts such as the project's machines mount every controller on v1 and
//! leave v2 almost empty; pure v2 hosts have everything on v2). A container
//! gets one directory per hierarchy used, `<own cgroup>/<partition>/<scope>`:
//! on v1 below the cgroup of the calling process, on v2 next to it (v2 does
//! not allow a cgroup with processes to delegate controllers to children).
//!
//! Every path is taken relative to a root (`/` on a real host), so the unit
//! tests run the same code against a fake cgroupfs tree.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A controller the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctl {
    /// Memory limits and usage.
    Memory,
    /// CPU shares and bandwidth.
    Cpu,
    /// CPU time used.
    CpuAcct,
    /// CPU and memory node placement.
    Cpuset,
    /// Suspend and resume.
    Freezer,
    /// Device access policy (v1 only).
    Devices,
    /// Block I/O weight and throttles.
    Blkio,
    /// Number of processes.
    Pids,
}

impl Ctl {
    fn v1_name(self) -> &'static str {
        match self {
            Ctl::Memory => "memory",
            Ctl::Cpu => "cpu",
            Ctl::CpuAcct => "cpuacct",
            Ctl::Cpuset => "cpuset",
            Ctl::Freezer => "freezer",
            Ctl::Devices => "devices",
            Ctl::Blkio => "blkio",
            Ctl::Pids => "pids",
        }
    }

    /// The v2 controller to enable; `Some("")` for what every v2 cgroup has
    /// built in (freezing, CPU time); `None` where v2 has no equivalent.
    fn v2_name(self) -> Option<&'static str> {
        match self {
            Ctl::Memory => Some("memory"),
            Ctl::Cpu => Some("cpu"),
            Ctl::CpuAcct | Ctl::Freezer => Some(""),
            Ctl::Cpuset => Some("cpuset"),
            Ctl::Blkio => Some("io"),
            Ctl::Pids => Some("pids"),
            Ctl::Devices => None,
        }
    }
}

#[derive(Debug, Clone)]
struct V1Mount {
    mount: PathBuf,
    controllers: Vec<String>,
    own: PathBuf,
}

#[derive(Debug, Clone)]
struct V2Mount {
    mount: PathBuf,
    available: Vec<String>,
    own: PathBuf,
}

/// The cgroup hierarchies of this host as the calling process sees them.
#[derive(Debug, Clone)]
pub struct Host {
    v1: Vec<V1Mount>,
    v2: Option<V2Mount>,
}

/// Which cgroup version a directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// A v1 hierarchy (one or more co-mounted controllers).
    V1,
    /// The unified hierarchy.
    V2,
}

/// One cgroup directory of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dir {
    /// The directory.
    pub path: PathBuf,
    /// Its hierarchy's version.
    pub version: Version,
    /// The v1 controllers of its hierarchy, or the v2 controllers enabled for it.
    pub controllers: Vec<String>,
}

/// The cgroups of one container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cgroup {
    /// One directory per hierarchy used.
    pub dirs: Vec<Dir>,
}

/// One `<blkiotune><device>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlkioDevice {
    /// `major:minor` of the block device.
    pub dev: String,
    /// The device path as written (for messages).
    pub path: String,
    /// Relative weight.
    pub weight: Option<u32>,
    /// Bytes read per second.
    pub read_bps: Option<u64>,
    /// Bytes written per second.
    pub write_bps: Option<u64>,
    /// Reads per second.
    pub read_iops: Option<u64>,
    /// Writes per second.
    pub write_iops: Option<u64>,
}

/// What a container's cgroups enforce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Hard memory limit in KiB.
    pub memory_kib: Option<u64>,
    /// Soft memory limit in KiB.
    pub memory_soft_kib: Option<u64>,
    /// Memory plus swap limit in KiB (libvirt's `swap_hard_limit`).
    pub swap_hard_kib: Option<u64>,
    /// Relative CPU weight as v1 shares (libvirt's `<cputune><shares>`).
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds (negative: unlimited).
    pub cpu_quota: Option<i64>,
    /// Allowed CPUs (`0-3,8`).
    pub cpuset_cpus: Option<String>,
    /// Allowed memory nodes.
    pub cpuset_mems: Option<String>,
    /// Block I/O weight.
    pub blkio_weight: Option<u32>,
    /// Per-device block I/O settings.
    pub blkio_devices: Vec<BlkioDevice>,
    /// Most processes at once.
    pub pids_max: Option<u64>,
    /// Restrict device access to the container's basic devices (v1).
    pub device_policy: bool,
}

impl Limits {
    /// The controllers these limits need, beyond the always-used ones.
    fn needs(&self) -> Vec<Ctl> {
        let mut v = vec![Ctl::Memory, Ctl::Cpu, Ctl::CpuAcct, Ctl::Freezer, Ctl::Pids];
        if self.cpuset_cpus.is_some() || self.cpuset_mems.is_some() {
            v.push(Ctl::Cpuset);
        }
        if self.blkio_weight.is_some() || !self.blkio_devices.is_empty() {
            v.push(Ctl::Blkio);
        }
        if self.device_policy {
            v.push(Ctl::Devices);
        }
        v
    }
}

/// A cgroup error: what was being done to which file.
#[derive(Debug)]
pub struct CgroupError(pub String);

impl std::fmt::Display for CgroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CgroupError {}

type Result<T> = std::result::Result<T, CgroupError>;

fn io_err(what: impl std::fmt::Display, path: &Path, e: io::Error) -> CgroupError {
    CgroupError(format!("cannot {what} {}: {e}", path.display()))
}

/// Joins a cgroup path (absolute, as in /proc/self/cgroup) below a mount.
fn below(mount: &Path, rel: &Path) -> PathBuf {
    let mut p = mount.to_path_buf();
    for c in rel.components() {
        if let Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}

/// The v1 controllers a mount's super options name (`rw,cpu,cpuacct`).
fn v1_controllers(superopts: &str) -> Vec<String> {
    const KNOWN: &[&str] = &[
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "net_cls",
        "net_prio",
        "perf_event",
        "hugetlb",
        "rdma",
        "misc",
    ];
    superopts
        .split(',')
        .filter(|o| KNOWN.contains(o))
        .map(str::to_string)
        .collect()
}

/// Undoes the octal escapes of mountinfo fields (`\040` for a space).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = b
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where one of a container's directories goes, before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The directory the partition starts from.
    pub base: PathBuf,
    /// `base/partition.../scope`.
    pub dir: Dir,
}

impl Host {
    /// The hierarchies of this host, from `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`.
    pub fn detect() -> Result<Host> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| io_err("read", Path::new("/proc/self/mountinfo"), e))?;
        let cg = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| io_err("read", Path::new("/proc/self/cgroup"), e))?;
        Ok(Host::from_tables(&mi, &cg, Path::new("/")))
    }

    /// Builds the view from the two tables, with every mount point taken
    /// relative to `root` (`/` on a real host, a temporary tree in tests).
    pub fn from_tables(mountinfo: &str, self_cgroup: &str, root: &Path) -> Host {
        let mut own_v1: Vec<(Vec<String>, PathBuf)> = Vec::new();
        let mut own_v2 = PathBuf::from("/");
        for line in self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctls.is_empty() {
                own_v2 = PathBuf::from(path);
            } else {
                own_v1.push((
                    ctls.split(',').map(str::to_string).collect(),
                    PathBuf::from(path),
                ));
            }
        }
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut v2 = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let mount_root = PathBuf::from(unescape_mountinfo(l[3]));
            let mount_point = below(root, Path::new(&unescape_mountinfo(l[4])));
            // Paths in /proc/self/cgroup are relative to the hierarchy's root;
            // a mount of a sub-tree shows them below its own root.
            let rel = |own: &Path| -> PathBuf {
                own.strip_prefix(&mount_root)
                    .map(|p| Path::new("/").join(p))
                    .unwrap_or_else(|_| own.to_path_buf())
            };
            match r[0] {
                "cgroup" => {
                    let controllers = v1_controllers(r[2]);
                    if controllers.is_empty() || v1.iter().any(|m| m.controllers == controllers) {
                        continue;
                    }
                    let own = own_v1
                        .iter()
                        .find(|(c, _)| controllers.iter().all(|x| c.contains(x)))
                        .map(|(_, p)| rel(p))
                        .unwrap_or_else(|| PathBuf::from("/"));
                    v1.push(V1Mount {
                        mount: mount_point,
                        controllers,
                        own,
                    });
                }
                "cgroup2" if v2.is_none() => {
                    let available = std::fs::read_to_string(mount_point.join("cgroup.controllers"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    v2 = Some(V2Mount {
                        mount: mount_point,
                        available,
                        own: rel(&own_v2),
                    });
                }
                _ => {}
            }
        }
        Host { v1, v2 }
    }

    /// Whether the unified hierarchy offers controllers (a pure v2 host or a
    /// hybrid one that delegates some to v2).
    pub fn v2_has_controllers(&self) -> bool {
        self.v2.as_ref().is_some_and(|v| {
            ["memory", "cpu", "pids"]
                .iter()
                .all(|c| v.available.iter().any(|a| a == c))
        })
    }

    /// A one-line description for messages and logs.
    pub fn describe(&self) -> String {
        if self.v1.is_empty() && self.v2.is_none() {
            return "no cgroup file system is mounted in this mount namespace; \
                    mount one at /sys/fs/cgroup (note: `ip netns exec` mounts a new \
                    /sys without it; `nsenter --net` keeps it)"
                .into();
        }
        let v1: Vec<String> = self.v1.iter().map(|m| m.controllers.join(",")).collect();
        let v2 = self
            .v2
            .as_ref()
            .map(|v| format!("v2 [{}]", v.available.join(" ")))
            .unwrap_or_else(|| "no v2".into());
        format!("v1 [{}], {v2}", v1.join(" "))
    }

    /// Where the container's directories go: one per hierarchy that
    /// provides a controller `limits` needs. Touches no file.
    pub fn plan(&self, partition: &str, scope: &str, limits: &Limits) -> Result<Vec<Planned>> {
        check_component(scope)?;
        let parts = partition_parts(partition)?;
        let rel: PathBuf = parts.iter().chain([&scope.to_string()]).collect();
        let mut out: Vec<Planned> = Vec::new();
        let mut v2_ctls: Vec<String> = Vec::new();
        let mut want_v2 = false;
        for ctl in limits.needs() {
            if let Some(m) = self
                .v1
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == ctl.v1_name()))
            {
                if !out.iter().any(|p| p.dir.controllers == m.controllers) {
                    let base = below(&m.mount, &m.own);
                    out.push(Planned {
                        dir: Dir {
                            path: base.join(&rel),
                            version: Version::V1,
                            controllers: m.controllers.clone(),
                        },
                        base,
                    });
                }
                continue;
            }
            match (&self.v2, ctl.v2_name()) {
                (Some(v2), Some(name))
                    if name.is_empty() || v2.available.iter().any(|a| a == name) =>
                {
                    want_v2 = true;
                    if !name.is_empty() && !v2_ctls.iter().any(|c| c == name) {
                        v2_ctls.push(name.to_string());
                    }
                }
                // v2 has no device cgroup (it uses BPF programs): skipped.
                _ if ctl == Ctl::Devices => {}
                _ => {
                    return Err(CgroupError(format!(
                        "the cgroup controller '{}' is not available on this host ({})",
                        ctl.v1_name(),
                        self.describe()
                    )));
                }
            }
        }
        if want_v2 && let Some(v2) = &self.v2 {
            // A v2 cgroup with processes cannot pass controllers down, so the
            // container's cgroup goes next to ours, not below it.
            let base_rel = if v2.own == Path::new("/") {
                v2.own.clone()
            } else {
                v2.own.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let base = below(&v2.mount, &base_rel);
            out.push(Planned {
                dir: Dir {
                    path: base.join(&rel),
                    version: Version::V2,
                    controllers: v2_ctls,
                },
                base,
            });
        }
        Ok(out)
    }

    /// Creates the container's cgroups `partition/scope` and applies
    /// `limits`. On error nothing is left behind.
    pub fn create(&self, partition: &str, scope: &str, limits: &Limits) -> Result<Cgroup> {
        let plan = self.plan(partition, scope, limits)?;
        let mut cg = Cgroup::default();
        let res = materialise(&plan, &mut cg).and_then(|()| cg.apply(limits));
        match res {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove(Duration::from_millis(500));
                Err(e)
            }
        }
    }
}

/// Makes the planned directories (adding each to `cg` as it is made).
fn materialise(plan: &[Planned], cg: &mut Cgroup) -> Result<()> {
    for p in plan {
        let rel = p.dir.path.strip_prefix(&p.base).unwrap_or(&p.dir.path);
        let levels: Vec<&std::ffi::OsStr> = rel.iter().collect();
        let cpuset = p.dir.controllers.iter().any(|c| c == "cpuset");
        let v2_ctls: Vec<&str> = p.dir.controllers.iter().map(String::as_str).collect();
        let v2 = p.dir.version == Version::V2;
        let mut dir = p.base.clone();
        if v2 {
            enable_v2(&dir, &v2_ctls);
        }
        for (i, level) in levels.iter().enumerate() {
            let parent = dir.clone();
            dir.push(level);
            if i + 1 == levels.len() {
                mkdir_scope(&dir)?;
                cg.dirs.push(p.dir.clone());
            } else {
                mkdir(&dir)?;
                if v2 {
                    enable_v2(&dir, &v2_ctls);
                }
            }
            if cpuset && p.dir.version == Version::V1 {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let mine = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                    if mine.trim().is_empty() {
                        let theirs = std::fs::read_to_string(parent.join(f))
                            .map_err(|e| io_err("read", &parent.join(f), e))?;
                        // The file exists on a real cgroupfs; creating it
                        // keeps the code usable on a fake tree.
                        std::fs::write(dir.join(f), theirs.trim())
                            .map_err(|e| io_err("write", &dir.join(f), e))?;
                    }
                }
            }
        }
        if v2 {
            let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            for c in &v2_ctls {
                if !have.split_whitespace().any(|h| h == *c) {
                    return Err(CgroupError(format!(
                        "cannot enable the v2 controller '{c}' for {} (not delegated to {})",
                        dir.display(),
                        p.base.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_component(s: &str) -> Result<()> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(CgroupError(format!(
            "'{}' is not a valid cgroup name (empty, '.', '..', '/' or NUL)",
            s.escape_debug()
        )));
    }
    Ok(())
}

/// The components of a `<resource><partition>` path (`/machine`).
pub fn partition_parts(partition: &str) -> Result<Vec<String>> {
    if !partition.starts_with('/') {
        return Err(CgroupError(format!(
            "resource partition '{partition}' must be an absolute path such as /machine"
        )));
    }
    partition
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| check_component(c).map(|()| c.to_string()))
        .collect()
}

fn mkdir(p: &Path) -> Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create", p, e)),
    }
}

/// Creates the scope directory; a leftover one from a container that is
/// gone is removed first, and a partition that went away meanwhile (an
/// administrator or test removing it when empty) is made again.
fn mkdir_scope(p: &Path) -> Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
            }
            std::fs::create_dir(p).map_err(|e| io_err("create", p, e))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::remove_dir(p).is_err() {
                return Err(CgroupError(format!(
                    "cgroup {} already exists and is in use: is another container of that name running?",
                    p.display()
                )));
            }
            std::fs::create_dir(p).map_err(|e| io_err("create", p, e))
        }
        Err(e) => Err(io_err("create", p, e)),
    }
}

fn enable_v2(dir: &Path, ctls: &[&str]) {
    let have = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    for c in ctls {
        if !have.split_whitespace().any(|h| h == *c) {
            // Failures show later, when the scope lacks the controller.
            let _ = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        }
    }
}

/// Writes a control file, which must exist (a missing file means the
/// kernel does not offer that setting).
fn write_file(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| CgroupError(format!("cannot write '{value}' to {}: {e}", path.display())))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line of a flat-keyed cgroup file (`memory.events`).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// libvirt's mapping of v1 CPU shares to a v2 weight.
fn shares_to_weight(shares: u64) -> u64 {
    (1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142).clamp(1, 10_000)
}

/// Devices every container may use (v1 device policy): null, zero, full,
/// random, urandom, tty, console, ptmx and the pty slaves.
const ALLOWED_DEVICES: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

impl Cgroup {
    fn dir(&self, version: Version, controller: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| d.version == version && d.controllers.iter().any(|c| c == controller))
    }

    fn v2(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.version == Version::V2)
    }

    /// The directory holding `ctl`'s files: v1 first, else v2.
    fn for_ctl(&self, ctl: Ctl) -> Option<(&Dir, Version)> {
        if let Some(d) = self.dir(Version::V1, ctl.v1_name()) {
            return Some((d, Version::V1));
        }
        let name = ctl.v2_name()?;
        let d = self.v2()?;
        (name.is_empty() || d.controllers.iter().any(|c| c == name)).then_some((d, Version::V2))
    }

    fn need(&self, ctl: Ctl, what: &str) -> Result<(&Dir, Version)> {
        self.for_ctl(ctl).ok_or_else(|| {
            CgroupError(format!(
                "{what} needs the cgroup controller '{}', which this host does not offer",
                ctl.v1_name()
            ))
        })
    }

    /// Writes the limits into the control files.
    pub fn apply(&self, l: &Limits) -> Result<()> {
        if let Some(kib) = l.memory_kib {
            let (d, v) = self.need(Ctl::Memory, "a memory limit")?;
            match v {
                Version::V1 => {
                    // memsw must stay >= the memory limit: raise it first
                    // when it is set too.
                    if let Some(sw) = l.swap_hard_kib {
                        let _ = write_file(
                            &d.path.join("memory.memsw.limit_in_bytes"),
                            &(sw.max(kib) * 1024).to_string(),
                        );
                    }
                    write_file(
                        &d.path.join("memory.limit_in_bytes"),
                        &(kib * 1024).to_string(),
                    )?;
                    if let Some(sw) = l.swap_hard_kib {
                        write_file(
                            &d.path.join("memory.memsw.limit_in_bytes"),
                            &(sw * 1024).to_string(),
                        )
                        .map_err(|e| {
                            CgroupError(format!(
                                "swap_hard_limit needs swap accounting (memory.memsw): {e}"
                            ))
                        })?;
                    }
                }
                Version::V2 => {
                    write_file(&d.path.join("memory.max"), &(kib * 1024).to_string())?;
                    if let Some(sw) = l.swap_hard_kib {
                        write_file(
                            &d.path.join("memory.swap.max"),
                            &(sw.saturating_sub(kib) * 1024).to_string(),
                        )?;
                    }
                }
            }
        }
        if let Some(kib) = l.memory_soft_kib {
            let (d, v) = self.need(Ctl::Memory, "a soft memory limit")?;
            let file = if v == Version::V1 {
                "memory.soft_limit_in_bytes"
            } else {
                "memory.high"
            };
            write_file(&d.path.join(file), &(kib * 1024).to_string())?;
        }
        if let Some(shares) = l.cpu_shares {
            let (d, v) = self.need(Ctl::Cpu, "<cputune><shares>")?;
            match v {
                Version::V1 => write_file(&d.path.join("cpu.shares"), &shares.to_string())?,
                Version::V2 => write_file(
                    &d.path.join("cpu.weight"),
                    &shares_to_weight(shares).to_string(),
                )?,
            }
        }
        if l.cpu_period.is_some() || l.cpu_quota.is_some() {
            let (d, v) = self.need(Ctl::Cpu, "<cputune><period>/<quota>")?;
            match v {
                Version::V1 => {
                    if let Some(p) = l.cpu_period {
                        write_file(&d.path.join("cpu.cfs_period_us"), &p.to_string())?;
                    }
                    if let Some(q) = l.cpu_quota {
                        write_file(&d.path.join("cpu.cfs_quota_us"), &q.to_string())?;
                    }
                }
                Version::V2 => {
                    let quota = match l.cpu_quota {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".into(),
                    };
                    let period = l.cpu_period.unwrap_or(100_000);
                    write_file(&d.path.join("cpu.max"), &format!("{quota} {period}"))?;
                }
            }
        }
        for (value, file, what) in [
            (&l.cpuset_cpus, "cpuset.cpus", "<vcpu cpuset>"),
            (&l.cpuset_mems, "cpuset.mems", "<numatune><memory nodeset>"),
        ] {
            if let Some(v) = value {
                let (d, _) = self.need(Ctl::Cpuset, what)?;
                write_file(&d.path.join(file), v)?;
            }
        }
        if let Some(w) = l.blkio_weight {
            let (d, v) = self.need(Ctl::Blkio, "<blkiotune><weight>")?;
            let candidates: &[(&str, String)] = match v {
                Version::V1 => &[
                    ("blkio.weight", w.to_string()),
                    ("blkio.bfq.weight", w.to_string()),
                ],
                Version::V2 => &[
                    ("io.weight", format!("default {w}")),
                    ("io.bfq.weight", format!("default {w}")),
                ],
            };
            let present = candidates.iter().find(|(f, _)| d.path.join(f).exists());
            match present {
                Some((f, val)) => write_file(&d.path.join(f), val)?,
                None => {
                    return Err(CgroupError(format!(
                        "<blkiotune><weight> is not available on this host: {} has no {} \
                         (the block I/O scheduler offers no weights)",
                        d.path.display(),
                        candidates
                            .iter()
                            .map(|(f, _)| *f)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )));
                }
            }
        }
        for dev in &l.blkio_devices {
            let (d, v) = self.need(Ctl::Blkio, "<blkiotune><device>")?;
            match v {
                Version::V1 => {
                    for (val, file) in [
                        (dev.weight.map(u64::from), "blkio.weight_device"),
                        (dev.read_bps, "blkio.throttle.read_bps_device"),
                        (dev.write_bps, "blkio.throttle.write_bps_device"),
                        (dev.read_iops, "blkio.throttle.read_iops_device"),
                        (dev.write_iops, "blkio.throttle.write_iops_device"),
                    ] {
                        if let Some(val) = val {
                            let f = if file == "blkio.weight_device" && !d.path.join(file).exists()
                            {
                                "blkio.bfq.weight_device"
                            } else {
                                file
                            };
                            write_file(&d.path.join(f), &format!("{} {val}", dev.dev))
                                .map_err(|e| CgroupError(format!("{e} (device {})", dev.path)))?;
                        }
                    }
                }
                Version::V2 => {
                    if let Some(w) = dev.weight {
                        write_file(&d.path.join("io.weight"), &format!("{} {w}", dev.dev))?;
                    }
                    let mut max = Vec::new();
                    for (val, key) in [
                        (dev.read_bps, "rbps"),
                        (dev.write_bps, "wbps"),
                        (dev.read_iops, "riops"),
                        (dev.write_iops, "wiops"),
                    ] {
                        if let Some(val) = val {
                            max.push(format!("{key}={val}"));
                        }
                    }
                    if !max.is_empty() {
                        write_file(
                            &d.path.join("io.max"),
                            &format!("{} {}", dev.dev, max.join(" ")),
                        )?;
                    }
                }
            }
        }
        if let Some(n) = l.pids_max {
            let (d, _) = self.need(Ctl::Pids, "a process limit")?;
            write_file(&d.path.join("pids.max"), &n.to_string())?;
        }
        if l.device_policy
            && let Some(d) = self.dir(Version::V1, "devices")
        {
            write_file(&d.path.join("devices.deny"), "a")?;
            for a in ALLOWED_DEVICES {
                write_file(&d.path.join("devices.allow"), a)?;
            }
        }
        Ok(())
    }

    /// Moves a process (and so its future children) into every directory.
    pub fn attach(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            write_file(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves the calling process into every v1 directory, through each
    /// `tasks` file with "0" (the caller itself). For a single-threaded
    /// caller that is the whole process, and unlike a move by pid it does
    /// not wait for an RCU grace period. v2 directories are skipped unless
    /// `v2` (a v2 move by `cgroup.procs` always waits).
    pub fn join_self(&self, v2: bool) -> Result<()> {
        for d in &self.dirs {
            match d.version {
                Version::V1 => write_file(&d.path.join("tasks"), "0")?,
                Version::V2 if v2 => write_file(&d.path.join("cgroup.procs"), "0")?,
                Version::V2 => {}
            }
        }
        Ok(())
    }

    /// The files a process writes to join the container's cgroups by
    /// itself ([`Cgroup::join_self`]): given to the container's root in a
    /// user namespace.
    pub fn join_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| {
                d.path.join(match d.version {
                    Version::V1 => "tasks",
                    Version::V2 => "cgroup.procs",
                })
            })
            .collect()
    }

    /// The v2 directory, if the container has one.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2().map(|d| d.path.as_path())
    }

    /// The `cgroup.procs` files, for processes that join the container.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.path.join("cgroup.procs"))
            .collect()
    }

    /// The processes in the container's cgroups.
    pub fn procs(&self) -> Vec<i32> {
        let mut out: Vec<i32> = Vec::new();
        for d in &self.dirs {
            if let Ok(s) = std::fs::read_to_string(d.path.join("cgroup.procs")) {
                for p in s.lines().filter_map(|l| l.trim().parse().ok()) {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// Freezes (`true`) or thaws every process, and waits until the kernel
    /// says it is done.
    pub fn set_frozen(&self, frozen: bool, deadline: Duration) -> Result<()> {
        let (d, v) = self.need(Ctl::Freezer, "suspend and resume")?;
        let start = Instant::now();
        match v {
            Version::V1 => {
                let f = d.path.join("freezer.state");
                let want = if frozen { "FROZEN" } else { "THAWED" };
                loop {
                    write_file(&f, want)?;
                    if std::fs::read_to_string(&f).unwrap_or_default().trim() == want {
                        return Ok(());
                    }
                    if start.elapsed() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Version::V2 => {
                write_file(
                    &d.path.join("cgroup.freeze"),
                    if frozen { "1" } else { "0" },
                )?;
                let want = u64::from(frozen);
                loop {
                    if keyed(&d.path.join("cgroup.events"), "frozen") == Some(want) {
                        return Ok(());
                    }
                    if start.elapsed() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        Err(CgroupError(format!(
            "the container's processes did not {} within {} ms ({})",
            if frozen { "freeze" } else { "thaw" },
            deadline.as_millis(),
            d.path.display()
        )))
    }

    /// Whether the processes are frozen.
    pub fn is_frozen(&self) -> bool {
        match self.for_ctl(Ctl::Freezer) {
            Some((d, Version::V1)) => std::fs::read_to_string(d.path.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN"),
            Some((d, Version::V2)) => keyed(&d.path.join("cgroup.events"), "frozen") == Some(1),
            None => false,
        }
    }

    /// Sends SIGKILL to every process of the container (`cgroup.kill` on
    /// v2) and thaws it, since a frozen v1 task only dies once thawed.
    pub fn kill_all(&self) {
        if let Some(d) = self.v2()
            && write_file(&d.path.join("cgroup.kill"), "1").is_ok()
        {
        } else {
            for pid in self.procs() {
                let _ = crate::sys::kill(pid, libc::SIGKILL);
            }
        }
        if self.is_frozen() {
            let _ = self.set_frozen(false, Duration::from_secs(1));
        }
    }

    /// Removes the directories, waiting up to `deadline` for exiting
    /// processes to leave them.
    pub fn remove(&self, deadline: Duration) -> Result<()> {
        let start = Instant::now();
        let mut last = None;
        for d in &self.dirs {
            loop {
                match std::fs::remove_dir(&d.path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => {
                        if start.elapsed() > deadline {
                            last = Some(io_err("remove", &d.path, e));
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        }
        last.map_or(Ok(()), Err)
    }

    /// Whether any directory still exists.
    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.path.exists())
    }

    /// Memory in use, KiB.
    pub fn memory_usage_kib(&self) -> Option<u64> {
        let (d, v) = self.for_ctl(Ctl::Memory)?;
        let f = if v == Version::V1 {
            "memory.usage_in_bytes"
        } else {
            "memory.current"
        };
        read_u64(&d.path.join(f)).map(|b| b / 1024)
    }

    /// The enforced memory limit, KiB (`None`: unlimited).
    pub fn memory_limit_kib(&self) -> Option<u64> {
        let (d, v) = self.for_ctl(Ctl::Memory)?;
        let f = if v == Version::V1 {
            "memory.limit_in_bytes"
        } else {
            "memory.max"
        };
        read_u64(&d.path.join(f))
            .map(|b| b / 1024)
            .filter(|k| *k < u64::MAX / 2048)
    }

    /// How many processes the kernel killed for exceeding the memory limit.
    pub fn oom_kills(&self) -> Option<u64> {
        let (d, v) = self.for_ctl(Ctl::Memory)?;
        match v {
            Version::V1 => keyed(&d.path.join("memory.oom_control"), "oom_kill"),
            Version::V2 => keyed(&d.path.join("memory.events"), "oom_kill"),
        }
    }

    /// CPU time used: (total, user, system) in nanoseconds.
    pub fn cpu_times_ns(&self) -> Option<(u64, u64, u64)> {
        let (d, v) = self.for_ctl(Ctl::CpuAcct)?;
        match v {
            Version::V1 => {
                let total = read_u64(&d.path.join("cpuacct.usage"))?;
                // cpuacct.stat counts USER_HZ (100 per second) ticks.
                let tick = 1_000_000_000 / 100;
                let user = keyed(&d.path.join("cpuacct.stat"), "user").unwrap_or(0) * tick;
                let system = keyed(&d.path.join("cpuacct.stat"), "system").unwrap_or(0) * tick;
                Some((total, user, system))
            }
            Version::V2 => {
                let f = d.path.join("cpu.stat");
                Some((
                    keyed(&f, "usage_usec")? * 1000,
                    keyed(&f, "user_usec").unwrap_or(0) * 1000,
                    keyed(&f, "system_usec").unwrap_or(0) * 1000,
                ))
            }
        }
    }

    /// Processes currently in the container (the pids controller's count).
    pub fn pids_current(&self) -> Option<u64> {
        let (d, _) = self.for_ctl(Ctl::Pids)?;
        read_u64(&d.path.join("pids.current"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vk-cgroup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path, content: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Control files the kernel would create in every new directory.
    fn fake_files(dir: &Path, files: &[&str]) {
        for f in files {
            touch(&dir.join(f), "");
        }
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/sandbox/abc
3:cpuset:/
2:cpu,cpuacct:/
0::/
";

    /// Makes the planned directories with the control files the kernel
    /// would put in them.
    fn fake_kernel(plan: &[Planned], files: &[&str]) -> Cgroup {
        for p in plan {
            std::fs::create_dir_all(&p.dir.path).unwrap();
            fake_files(&p.dir.path, files);
        }
        Cgroup {
            dirs: plan.iter().map(|p| p.dir.clone()).collect(),
        }
    }

    #[test]
    fn hybrid_host_uses_v1_below_own_cgroup() {
        let root = tmp("hybrid");
        touch(
            &root.join("sys/fs/cgroup/unified/cgroup.controllers"),
            "hugetlb\n",
        );
        let host = Host::from_tables(HYBRID_MOUNTINFO, HYBRID_SELF, &root);
        assert!(!host.v2_has_controllers(), "{}", host.describe());
        let limits = Limits {
            memory_kib: Some(65536),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            pids_max: Some(64),
            device_policy: true,
            ..Limits::default()
        };
        let plan = host.plan("/machine", "c1.virtkit-lxc", &limits).unwrap();
        let mem = root.join("sys/fs/cgroup/memory/sandbox/abc/machine/c1.virtkit-lxc");
        let cpu = root.join("sys/fs/cgroup/cpu,cpuacct/machine/c1.virtkit-lxc");
        let paths: Vec<&Path> = plan.iter().map(|p| p.dir.path.as_path()).collect();
        assert!(paths.contains(&mem.as_path()), "{paths:?}");
        assert!(paths.contains(&cpu.as_path()), "{paths:?}");
        assert_eq!(
            plan.len(),
            5,
            "memory, cpu+cpuacct, freezer, pids, devices: {paths:?}"
        );
        assert!(plan.iter().all(|p| p.dir.version == Version::V1));
        let cg = fake_kernel(
            &plan,
            &[
                "memory.limit_in_bytes",
                "cpu.shares",
                "cpu.cfs_quota_us",
                "cpu.cfs_period_us",
                "pids.max",
                "devices.deny",
                "devices.allow",
                "freezer.state",
                "cgroup.procs",
            ],
        );
        cg.apply(&limits).unwrap();
        let r = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(r(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(r(&cpu, "cpu.shares"), "512");
        assert_eq!(r(&cpu, "cpu.cfs_quota_us"), "50000");
        cg.attach(4242).unwrap();
        assert_eq!(r(&mem, "cgroup.procs"), "4242");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn real_directories_are_made_and_removed_on_a_fake_tree() {
        let root = tmp("materialise");
        let cpuset = root.join("cs");
        touch(&cpuset.join("cpuset.cpus"), "0-1\n");
        touch(&cpuset.join("cpuset.mems"), "0\n");
        let plan = vec![Planned {
            base: cpuset.clone(),
            dir: Dir {
                path: cpuset.join("machine/c3"),
                version: Version::V1,
                controllers: vec!["cpuset".into()],
            },
        }];
        let mut cg = Cgroup::default();
        materialise(&plan, &mut cg).unwrap();
        assert_eq!(
            std::fs::read_to_string(cpuset.join("machine/c3/cpuset.cpus")).unwrap(),
            "0-1",
            "a new cpuset level copies its parent's CPUs"
        );
        // A real cgroup directory disappears with rmdir even with its
        // control files; a fake one must be emptied first.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            std::fs::remove_file(cpuset.join("machine/c3").join(f)).unwrap();
        }
        cg.remove(Duration::from_millis(10)).unwrap();
        assert!(!cpuset.join("machine/c3").exists());
        assert!(cpuset.join("machine").exists(), "the partition stays");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pure_v2_host_goes_next_to_own_cgroup() {
        let root = tmp("v2");
        let mi = "41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
        let own = "0::/user.slice/session-1.scope\n";
        let cgroot = root.join("sys/fs/cgroup");
        touch(
            &cgroot.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        touch(
            &cgroot.join("user.slice/cgroup.subtree_control"),
            "cpu memory\n",
        );
        let host = Host::from_tables(mi, own, &root);
        assert!(host.v2_has_controllers());
        let limits = Limits {
            memory_kib: Some(1024),
            swap_hard_kib: Some(3072),
            cpu_shares: Some(1024),
            cpu_quota: Some(-1),
            device_policy: true,
            ..Limits::default()
        };
        let plan = host.plan("/machine", "c2.virtkit-lxc", &limits).unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        let scope = cgroot.join("user.slice/machine/c2.virtkit-lxc");
        assert_eq!(plan[0].dir.path, scope);
        assert_eq!(plan[0].base, cgroot.join("user.slice"));
        assert_eq!(plan[0].dir.controllers, ["memory", "cpu", "pids"]);
        // Without the kernel, the new directory lists no delegated
        // controllers: a clear error, and nothing is left behind.
        let err = host
            .create("/machine", "c2.virtkit-lxc", &limits)
            .unwrap_err();
        assert!(err.0.contains("not delegated"), "{err}");
        assert!(!scope.exists(), "nothing left behind");
        let cg = fake_kernel(
            &plan,
            &["memory.max", "memory.swap.max", "cpu.weight", "cpu.max"],
        );
        cg.apply(&limits).unwrap();
        let r = |f: &str| std::fs::read_to_string(scope.join(f)).unwrap();
        assert_eq!(r("memory.max"), "1048576");
        assert_eq!(r("memory.swap.max"), "2097152", "v2 swap excludes memory");
        assert_eq!(r("cpu.weight"), "39", "1024 shares as libvirt maps them");
        assert_eq!(r("cpu.max"), "max 100000");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_controller_for_a_requested_limit_is_a_clear_error() {
        let cg = Cgroup {
            dirs: vec![Dir {
                path: "/nonexistent".into(),
                version: Version::V1,
                controllers: vec!["memory".into()],
            }],
        };
        let e = cg
            .apply(&Limits {
                blkio_weight: Some(500),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(e.0.contains("'blkio'"), "{e}");
    }

    #[test]
    fn partition_paths_are_checked() {
        assert_eq!(partition_parts("/machine").unwrap(), ["machine"]);
        assert_eq!(partition_parts("/a/b/").unwrap(), ["a", "b"]);
        assert!(partition_parts("machine").is_err());
        assert!(partition_parts("/a/../b").is_err());
        assert!(check_component("x\0").is_err());
    }

    #[test]
    fn shares_map_to_weights_like_libvirt() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
