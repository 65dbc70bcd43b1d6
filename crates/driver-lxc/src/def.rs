//! [`LxcDef`]: the container subset of domain XML, read from the normalised
//! definition and checked. Errors name the element (XML path) and say what
//! to do; nothing is created before a definition passes.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use virtkit_core::domain::units;
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, MacAddr, Result};

use crate::cgroup::{BlkioDevice, Limits};

/// The XML namespace of virtkit's own LXC settings inside `<metadata>`
/// (`<vk:limits xmlns:vk='urn:virtkit:lxc:1'><vk:pids max='N'/></vk:limits>`).
pub const VIRTKIT_LXC_NS: &str = "urn:virtkit:lxc:1";
/// The XML namespace of libvirt's LXC extensions (`<lxc:namespace>`).
pub const LIBVIRT_LXC_NS: &str = "http://libvirt.org/schemas/domain/lxc/1.0";

/// A filesystem inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A host directory or file bound in (`type='mount'`/`'bind'`).
    Bind {
        /// The host path.
        source: PathBuf,
    },
    /// A tmpfs (`type='ram'`), size in KiB (0: the kernel's default).
    Tmpfs {
        /// Size limit.
        size_kib: u64,
    },
}

/// One `<filesystem>` other than the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// What to mount.
    pub kind: MountKind,
    /// Where, inside the container (absolute).
    pub target: PathBuf,
    /// Read-only.
    pub readonly: bool,
}

/// How a container gets one kind of namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsMode {
    /// A new one of its own.
    New,
    /// The host's (network only: a container without interfaces or `privnet`).
    Host,
    /// An existing one, by nsfs path (`/proc/PID/ns/net`, `/run/netns/NAME`).
    Join(PathBuf),
}

/// What the container side needs to build the container and exec init:
/// handed to the supervisor as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Domain name (also the host name).
    pub name: String,
    /// Domain UUID.
    pub uuid: String,
    /// The root filesystem (`None`: the host's, as libvirt does without one).
    pub root: Option<PathBuf>,
    /// Whether the root is read-only.
    pub root_readonly: bool,
    /// The other filesystems, in document order.
    pub mounts: Vec<Mount>,
    /// `<init>` and its `<initarg>`s.
    pub argv: Vec<String>,
    /// The environment of init.
    pub env: Vec<(String, String)>,
    /// `<initdir>`.
    pub workdir: Option<String>,
    /// `<inituser>` (name or number).
    pub user: Option<String>,
    /// `<initgroup>` (name or number).
    pub group: Option<String>,
    /// `<idmap>` uid ranges (start, target, count); empty: no user namespace.
    pub uid_map: IdRanges,
    /// `<idmap>` gid ranges.
    pub gid_map: IdRanges,
    /// The network namespace.
    pub net: NsMode,
    /// The IPC namespace.
    pub ipc: NsMode,
    /// The UTS namespace.
    pub uts: NsMode,
    /// Number of `<console>`s (ptys).
    pub consoles: usize,
    /// Capabilities to drop from the bounding set.
    pub caps_drop: Vec<u32>,
}

/// One `<ip>` of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddr {
    /// The address.
    pub address: String,
    /// Prefix length.
    pub prefix: Option<u32>,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// One `<route>` of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub address: String,
    /// Destination prefix length.
    pub prefix: Option<u32>,
    /// Gateway.
    pub gateway: String,
}

/// Where an interface's host end goes.
#[derive(Debug, Clone, PartialEq)]
pub enum IfaceKind {
    /// A virtual network's bridge, through a port of the network driver.
    Network {
        /// The `<interface>` element, for the port request.
        element: Element,
    },
    /// An existing bridge.
    Bridge(String),
    /// No bridge: the host end stays alone.
    Ethernet,
}

/// One `<interface>`: a veth pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Iface {
    /// Where the host end goes.
    pub kind: IfaceKind,
    /// The guest MAC (the container end's).
    pub mac: MacAddr,
    /// The host end's name (`<target dev>`) or `None` for `vnet%d`.
    pub host_name: Option<String>,
    /// The container end's name (`<guest dev>`, else `ethN`).
    pub guest_name: String,
    /// MTU (`<mtu size>`).
    pub mtu: Option<u32>,
    /// Bring the container end up (`<link state>`).
    pub up: bool,
    /// Addresses inside the container.
    pub ips: Vec<IpAddr>,
    /// Routes inside the container.
    pub routes: Vec<Route>,
    /// The XML path, for messages.
    pub path: String,
}

/// `<lxc:namespace>` sharing by another container's name, resolved by the
/// driver at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Share {
    /// `type='name'`: another container's namespace.
    Domain(String),
    /// Any other type, already a path.
    Path(PathBuf),
}

/// A checked container definition.
#[derive(Debug, Clone)]
pub struct LxcDef {
    /// What the container side gets.
    pub spec: Spec,
    /// Network interfaces.
    pub ifaces: Vec<Iface>,
    /// cgroup limits.
    pub limits: Limits,
    /// `<resource><partition>`.
    pub partition: String,
    /// Namespaces shared with containers named in `<lxc:namespace>`
    /// (kind: `net`, `ipc`, `uts`).
    pub shares: Vec<(&'static str, Share)>,
    /// `<on_reboot>`.
    pub on_reboot: String,
}

fn unsupported(path: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::ConfigUnsupported, format!("{what} ({path})"))
}

fn xml_err(path: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::XmlError, format!("{what} ({path})"))
}

fn attr(e: &Element, child: &str, name: &str) -> Option<String> {
    e.child(child)
        .and_then(|c| c.attr(name))
        .map(|v| v.into_owned())
}

fn text(e: &Element, child: &str) -> Option<String> {
    e.child(child)
        .map(|c| c.text().trim().to_string())
        .filter(|s| !s.is_empty())
}

fn num<T: std::str::FromStr>(s: &str, path: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| xml_err(path, format!("'{s}' is not a valid number")))
}

/// Checks a path inside the container or on the host: absolute, no `..`,
/// no NUL. Returns it with `.` components and repeated slashes removed.
pub fn clean_abs_path(p: &str, path: &str, what: &str) -> Result<PathBuf> {
    if p.contains('\0') {
        return Err(xml_err(
            path,
            format!("{what} '{}' contains a NUL byte", p.escape_debug()),
        ));
    }
    let pb = Path::new(p);
    if !pb.is_absolute() {
        return Err(xml_err(
            path,
            format!("{what} '{p}' must be an absolute path"),
        ));
    }
    let mut out = PathBuf::from("/");
    for c in pb.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(xml_err(path, format!("{what} '{p}' must not contain '..'")));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// libvirt's capability feature names with their numbers.
pub const CAPS: &[(&str, u32)] = &[
    ("audit_control", 30),
    ("audit_write", 29),
    ("block_suspend", 36),
    ("chown", 0),
    ("dac_override", 1),
    ("dac_read_search", 2),
    ("fowner", 3),
    ("fsetid", 4),
    ("ipc_lock", 14),
    ("ipc_owner", 15),
    ("kill", 5),
    ("lease", 28),
    ("linux_immutable", 9),
    ("mac_admin", 33),
    ("mac_override", 32),
    ("mknod", 27),
    ("net_admin", 12),
    ("net_bind_service", 10),
    ("net_broadcast", 11),
    ("net_raw", 13),
    ("setgid", 6),
    ("setfcap", 31),
    ("setpcap", 8),
    ("setuid", 7),
    ("sys_admin", 21),
    ("sys_boot", 22),
    ("sys_chroot", 18),
    ("sys_module", 16),
    ("sys_nice", 23),
    ("sys_pacct", 20),
    ("sys_ptrace", 19),
    ("sys_rawio", 17),
    ("sys_resource", 24),
    ("sys_time", 25),
    ("sys_tty_config", 26),
    ("syslog", 34),
    ("wake_alarm", 35),
];

/// Dropped unless the definition keeps them (libvirt's default policy):
/// loading modules, setting the clock, auditing and MAC policy act on the
/// whole host.
const DEFAULT_DROP: &[&str] = &["sys_module", "sys_time", "audit_control", "mac_admin"];

fn caps_drop(root: &Element) -> Result<Vec<u32>> {
    let p = "/domain/features/capabilities";
    let el = root.child("features").and_then(|f| f.child("capabilities"));
    let policy = el
        .and_then(|c| c.attr("policy"))
        .map(|s| s.into_owned())
        .unwrap_or_else(|| "default".into());
    let mut state = std::collections::HashMap::new();
    if let Some(el) = el {
        for c in el.elements() {
            let Some((_, n)) = CAPS.iter().find(|(name, _)| *name == c.name()) else {
                return Err(xml_err(p, format!("unknown capability '{}'", c.name())));
            };
            let on = match c.attr("state").as_deref() {
                Some("on") | None => true,
                Some("off") => false,
                Some(o) => return Err(xml_err(p, format!("invalid capability state '{o}'"))),
            };
            state.insert(*n, on);
        }
    }
    let mut drop = Vec::new();
    for (name, n) in CAPS {
        let explicit = state.get(n).copied();
        let dropped = match policy.as_str() {
            "default" => explicit.map_or(DEFAULT_DROP.contains(name), |on| !on),
            "allow" => explicit == Some(false),
            "deny" => explicit != Some(true),
            other => {
                return Err(xml_err(
                    p,
                    format!("invalid capabilities policy '{other}' (default, allow or deny)"),
                ));
            }
        };
        if dropped {
            drop.push(*n);
        }
    }
    Ok(drop)
}

/// Id ranges of `<idmap>`: (start inside, target on the host, count).
type IdRanges = Vec<(u32, u32, u32)>;

fn idmap(root: &Element) -> Result<(IdRanges, IdRanges)> {
    let Some(m) = root.child("idmap") else {
        return Ok((Vec::new(), Vec::new()));
    };
    let p = "/domain/idmap";
    let read = |kind: &str| -> Result<IdRanges> {
        m.children_named(kind)
            .map(|e| {
                let get = |a: &str| {
                    e.attr(a)
                        .ok_or_else(|| xml_err(p, format!("<{kind}> needs a '{a}' attribute")))
                        .and_then(|v| num::<u32>(&v, p))
                };
                let (s, t, c) = (get("start")?, get("target")?, get("count")?);
                if c == 0 {
                    return Err(xml_err(p, format!("<{kind}> count must be above 0")));
                }
                Ok((s, t, c))
            })
            .collect()
    };
    let (u, g) = (read("uid")?, read("gid")?);
    if u.is_empty() != g.is_empty() {
        return Err(unsupported(
            p,
            "a user namespace needs both <uid> and <gid> maps",
        ));
    }
    if !u.is_empty() && (!u.iter().any(|(s, _, _)| *s == 0) || !g.iter().any(|(s, _, _)| *s == 0)) {
        return Err(unsupported(
            p,
            "the idmap must map the container's root user and group (start='0')",
        ));
    }
    Ok((u, g))
}

/// The `<lxc:namespace>` settings: (kind, type, value).
fn namespace_shares(root: &Element) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for ns in root.elements().filter(|e| e.local_name() == "namespace") {
        let libvirt_lxc = ns
            .prefix()
            .is_some_and(|p| root.attr(&format!("xmlns:{p}")).as_deref() == Some(LIBVIRT_LXC_NS));
        if !libvirt_lxc {
            continue;
        }
        for s in ns.elements() {
            let kind = s.local_name().trim_start_matches("share").to_string();
            out.push((
                kind,
                s.attr("type").map(|v| v.into_owned()).unwrap_or_default(),
                s.attr("value").map(|v| v.into_owned()).unwrap_or_default(),
            ));
        }
    }
    out
}

fn pids_max(root: &Element) -> Result<Option<u64>> {
    let Some(md) = root.child("metadata") else {
        return Ok(None);
    };
    for el in md.elements() {
        let ours = el
            .attrs()
            .iter()
            .any(|a| a.name().starts_with("xmlns") && a.value() == VIRTKIT_LXC_NS);
        if !ours {
            continue;
        }
        if let Some(p) = el.elements().find(|e| e.local_name() == "pids")
            && let Some(m) = p.attr("max")
        {
            return num(&m, "/domain/metadata/pids/@max").map(Some);
        }
    }
    Ok(None)
}

fn block_dev(path: &str, xp: &str) -> Result<String> {
    if let Some(rest) = path.strip_prefix("/dev/block/")
        && let Some((a, b)) = rest.split_once(':')
        && a.parse::<u32>().is_ok()
        && b.parse::<u32>().is_ok()
    {
        return Ok(rest.to_string());
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path)
        .map_err(|e| unsupported(xp, format!("cannot find block device '{path}': {e}")))?;
    if !md.file_type().is_block_device() {
        return Err(unsupported(xp, format!("'{path}' is not a block device")));
    }
    let rdev = md.rdev();
    Ok(format!("{}:{}", libc::major(rdev), libc::minor(rdev)))
}

fn limits(root: &Element) -> Result<Limits> {
    let mut l = Limits {
        device_policy: true,
        ..Limits::default()
    };
    let kib = |e: &Element, path: &str| units::element_kib(e).map_err(|m| xml_err(path, m));
    if let Some(m) = root.child("memory") {
        l.memory_kib = Some(kib(m, "/domain/memory")?);
    }
    if let Some(mt) = root.child("memtune") {
        if let Some(h) = mt.child("hard_limit") {
            l.memory_kib = Some(kib(h, "/domain/memtune/hard_limit")?);
        }
        if let Some(s) = mt.child("soft_limit") {
            l.memory_soft_kib = Some(kib(s, "/domain/memtune/soft_limit")?);
        }
        if let Some(s) = mt.child("swap_hard_limit") {
            l.swap_hard_kib = Some(kib(s, "/domain/memtune/swap_hard_limit")?);
        }
    }
    if let Some(ct) = root.child("cputune") {
        let p = "/domain/cputune";
        l.cpu_shares = text(ct, "shares").map(|s| num(&s, p)).transpose()?;
        l.cpu_period = text(ct, "period").map(|s| num(&s, p)).transpose()?;
        l.cpu_quota = text(ct, "quota").map(|s| num(&s, p)).transpose()?;
    }
    if let Some(v) = root.child("vcpu").and_then(|v| v.attr("cpuset")) {
        l.cpuset_cpus = Some(v.into_owned());
    }
    if let Some(n) = root
        .child("numatune")
        .and_then(|n| n.child("memory"))
        .and_then(|m| m.attr("nodeset"))
    {
        l.cpuset_mems = Some(n.into_owned());
    }
    if let Some(b) = root.child("blkiotune") {
        let p = "/domain/blkiotune";
        l.blkio_weight = text(b, "weight").map(|s| num(&s, p)).transpose()?;
        for d in b.children_named("device") {
            let path = text(d, "path").ok_or_else(|| xml_err(p, "<device> needs a <path>"))?;
            let n = |name: &str| text(d, name).map(|s| num::<u64>(&s, p)).transpose();
            l.blkio_devices.push(BlkioDevice {
                dev: block_dev(&path, p)?,
                path,
                weight: text(d, "weight").map(|s| num(&s, p)).transpose()?,
                read_bps: n("read_bytes_sec")?,
                write_bps: n("write_bytes_sec")?,
                read_iops: n("read_iops_sec")?,
                write_iops: n("write_iops_sec")?,
            });
        }
    }
    l.pids_max = pids_max(root)?;
    Ok(l)
}

fn ip_list(e: &Element, path: &str) -> Result<(Vec<IpAddr>, Vec<Route>)> {
    let mut ips = Vec::new();
    for ip in e.children_named("ip") {
        let address = ip
            .attr("address")
            .ok_or_else(|| xml_err(path, "<ip> needs an address"))?
            .into_owned();
        let family = ip
            .attr("family")
            .map(|f| f.into_owned())
            .unwrap_or_else(|| {
                if address.contains(':') {
                    "ipv6"
                } else {
                    "ipv4"
                }
                .to_string()
            });
        let valid = if family == "ipv6" {
            address.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            address.parse::<std::net::Ipv4Addr>().is_ok()
        };
        if !valid {
            return Err(xml_err(
                path,
                format!("invalid {family} address '{address}'"),
            ));
        }
        ips.push(IpAddr {
            prefix: ip.attr("prefix").map(|p| num(&p, path)).transpose()?,
            address,
            family,
        });
    }
    let mut routes = Vec::new();
    for r in e.children_named("route") {
        let get = |a: &str| r.attr(a).map(|v| v.into_owned());
        let gateway = get("gateway").ok_or_else(|| xml_err(path, "<route> needs a gateway"))?;
        let address = get("address").ok_or_else(|| xml_err(path, "<route> needs an address"))?;
        for (what, v) in [("gateway", &gateway), ("address", &address)] {
            if v.parse::<std::net::IpAddr>().is_err() {
                return Err(xml_err(path, format!("invalid route {what} '{v}'")));
            }
        }
        routes.push(Route {
            prefix: get("prefix").map(|p| num(&p, path)).transpose()?,
            address,
            gateway,
        });
    }
    Ok((ips, routes))
}

fn check_ifname(name: &str, path: &str, what: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(['/', ':', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        return Err(xml_err(
            path,
            format!(
                "{what} '{name}' is not a valid network device name (1-15 characters, no '/', ':' or spaces)"
            ),
        ));
    }
    Ok(())
}

fn interfaces(devices: Option<&Element>) -> Result<Vec<Iface>> {
    let Some(devices) = devices else {
        return Ok(Vec::new());
    };
    let dp = XPath::root("domain").named("devices");
    let mut out = Vec::new();
    for (i, iface) in devices.children_named("interface").enumerate() {
        let p = dp.child(devices, iface).to_string();
        let ty = iface
            .attr("type")
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let kind = match ty.as_str() {
            "network" => IfaceKind::Network {
                element: iface.clone(),
            },
            "bridge" => IfaceKind::Bridge(attr(iface, "source", "bridge").ok_or_else(|| {
                xml_err(
                    &p,
                    "<interface type='bridge'> needs <source bridge='NAME'/>",
                )
            })?),
            "ethernet" => IfaceKind::Ethernet,
            other => {
                return Err(unsupported(
                    &p,
                    format!(
                        "interface type '{other}' is not supported by virtkit's LXC driver \
                         (use type='network', 'bridge' or 'ethernet')"
                    ),
                ));
            }
        };
        if let IfaceKind::Bridge(b) = &kind {
            check_ifname(b, &p, "bridge")?;
        }
        let mac: MacAddr = attr(iface, "mac", "address")
            .ok_or_else(|| Error::internal(format!("interface without a MAC address ({p})")))?
            .parse()?;
        let host_name = attr(iface, "target", "dev")
            .filter(|d| !d.starts_with("vnet") && !d.starts_with("veth") && !d.contains('%'));
        if let Some(h) = &host_name {
            check_ifname(h, &p, "target dev")?;
        }
        let guest_name = attr(iface, "guest", "dev").unwrap_or_else(|| format!("eth{i}"));
        check_ifname(&guest_name, &p, "guest dev")?;
        let (ips, routes) = ip_list(iface, &p)?;
        out.push(Iface {
            kind,
            mac,
            host_name,
            guest_name,
            mtu: attr(iface, "mtu", "size")
                .map(|m| num(&m, &p))
                .transpose()?,
            up: attr(iface, "link", "state").as_deref() != Some("down"),
            ips,
            routes,
            path: p,
        });
    }
    let mut names: Vec<&str> = out.iter().map(|i| i.guest_name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(xml_err(
            "/domain/devices/interface",
            format!("two interfaces are named '{}' inside the container", w[0]),
        ));
    }
    Ok(out)
}

impl LxcDef {
    /// Reads and checks the container settings of a normalised `<domain>`.
    pub fn from_domain(root: &Element) -> Result<LxcDef> {
        let name = text(root, "name").unwrap_or_default();
        let ty = root.attr("type").unwrap_or_default();
        if ty != "lxc" {
            return Err(Error::new(
                ErrorKind::ConfigUnsupported,
                format!(
                    "domain type '{ty}' is not handled by the LXC driver (use <domain type='lxc'>)"
                ),
            ));
        }
        let os = root.child("os");
        let os_type = os.and_then(|o| text(o, "type")).unwrap_or_default();
        if os_type != "exe" {
            return Err(Error::new(
                ErrorKind::OsType,
                format!("containers run an executable: use <os><type>exe</type> (not '{os_type}')"),
            ));
        }
        let os = os.expect("checked above");
        let init = text(os, "init")
            .ok_or_else(|| xml_err("/domain/os/init", "an <init> program must be specified"))?;
        let init = clean_abs_path(&init, "/domain/os/init", "init")?;
        let mut argv = vec![init.to_string_lossy().into_owned()];
        argv.extend(os.children_named("initarg").map(|a| a.text()));
        let mut env = Vec::new();
        for e in os.children_named("initenv") {
            let n = e.attr("name").map(|v| v.into_owned()).unwrap_or_default();
            if n.is_empty() || n.contains(['=', '\0']) {
                return Err(xml_err(
                    "/domain/os/initenv",
                    format!("invalid environment variable name '{n}'"),
                ));
            }
            env.push((n, e.text()));
        }
        let workdir = text(os, "initdir")
            .map(|d| clean_abs_path(&d, "/domain/os/initdir", "initdir"))
            .transpose()?
            .map(|p| p.to_string_lossy().into_owned());

        let devices = root.child("devices");
        let dp = XPath::root("domain").named("devices");
        let mut root_fs = None;
        let mut root_ro = false;
        let mut mounts: Vec<Mount> = Vec::new();
        for fs in devices
            .into_iter()
            .flat_map(|d| d.children_named("filesystem"))
        {
            let p = dp
                .child(devices.expect("iterating its children"), fs)
                .to_string();
            let target = attr(fs, "target", "dir")
                .ok_or_else(|| xml_err(&p, "<filesystem> needs <target dir='...'/>"))?;
            let target = clean_abs_path(&target, &p, "filesystem target")?;
            let readonly = fs.child("readonly").is_some();
            let ty = fs.attr("type").map(|t| t.into_owned()).unwrap_or_default();
            let kind = match ty.as_str() {
                "mount" | "bind" => {
                    let src = attr(fs, "source", "dir")
                        .ok_or_else(|| xml_err(&p, "<filesystem> needs <source dir='...'/>"))?;
                    MountKind::Bind {
                        source: clean_abs_path(&src, &p, "filesystem source")?,
                    }
                }
                "ram" => {
                    let usage = attr(fs, "source", "usage").unwrap_or_else(|| "0".into());
                    let unit = attr(fs, "source", "units");
                    let size_kib = units::parse_scaled(&usage, unit.as_deref(), 1024)
                        .map_err(|m| xml_err(&p, m))?
                        / 1024;
                    MountKind::Tmpfs { size_kib }
                }
                other => {
                    return Err(unsupported(
                        &p,
                        format!(
                            "filesystem type '{other}' needs loop, nbd or volume devices, which \
                             virtkit's LXC driver does not set up; use type='mount', 'bind' or 'ram'"
                        ),
                    ));
                }
            };
            if target == Path::new("/") {
                if root_fs.is_some() {
                    return Err(xml_err(&p, "only one filesystem can have target '/'"));
                }
                match kind {
                    MountKind::Bind { source } => root_fs = Some(source),
                    MountKind::Tmpfs { .. } => {
                        return Err(unsupported(
                            &p,
                            "the root filesystem must be a directory (type='mount')",
                        ));
                    }
                }
                root_ro = readonly;
                continue;
            }
            if mounts.iter().any(|m| m.target == target) {
                return Err(xml_err(
                    &p,
                    format!("two filesystems are mounted at '{}'", target.display()),
                ));
            }
            mounts.push(Mount {
                kind,
                target,
                readonly,
            });
        }
        for (i, c) in devices
            .into_iter()
            .flat_map(|d| d.children_named("console"))
            .enumerate()
        {
            let t = c.attr("type").unwrap_or_default();
            if t != "pty" {
                return Err(unsupported(
                    &format!("/domain/devices/console[{}]", i + 1),
                    format!("console type '{t}': containers only have pty consoles"),
                ));
            }
        }
        let consoles = devices.map_or(0, |d| d.children_named("console").count());
        let ifaces = interfaces(devices)?;
        if let Some(h) = devices.and_then(|d| d.child("hostdev")) {
            let p = dp.child(devices.expect("has a child"), h).to_string();
            return Err(unsupported(
                &p,
                "host devices are not supported by virtkit's LXC driver",
            ));
        }
        let (uid_map, gid_map) = idmap(root)?;
        let privnet = root
            .child("features")
            .is_some_and(|f| f.child("privnet").is_some());
        let mut shares = Vec::new();
        let mut net = if !ifaces.is_empty() || privnet {
            NsMode::New
        } else {
            NsMode::Host
        };
        let mut ipc = NsMode::New;
        let mut uts = NsMode::New;
        for (kind, ty, value) in namespace_shares(root) {
            let p = format!("/domain/namespace/share{kind}");
            let kind: &'static str = match kind.as_str() {
                "net" => "net",
                "ipc" => "ipc",
                "uts" => "uts",
                other => return Err(xml_err(&p, format!("unknown namespace kind '{other}'"))),
            };
            let share = match ty.as_str() {
                "name" => {
                    virtkit_core::check_object_name("domain", &value)?;
                    Share::Domain(value)
                }
                "pid" => Share::Path(PathBuf::from(format!(
                    "/proc/{}/ns/{kind}",
                    num::<u32>(&value, &p)?
                ))),
                "netns" if kind == "net" => {
                    virtkit_core::check_object_name("network namespace", &value)?;
                    Share::Path(PathBuf::from(format!("/run/netns/{value}")))
                }
                other => {
                    return Err(xml_err(
                        &p,
                        format!("namespace source type '{other}' (use name, pid or netns)"),
                    ));
                }
            };
            if kind == "net" && !ifaces.is_empty() {
                return Err(unsupported(
                    &p,
                    "a container that shares another network namespace cannot have interfaces",
                ));
            }
            let mode = match &share {
                Share::Path(p) => NsMode::Join(p.clone()),
                // Resolved at start.
                Share::Domain(_) => NsMode::Join(PathBuf::new()),
            };
            match kind {
                "net" => net = mode,
                "ipc" => ipc = mode,
                _ => uts = mode,
            }
            shares.push((kind, share));
        }
        let mut env_full = vec![
            (
                "PATH".to_string(),
                "/bin:/usr/bin:/sbin:/usr/sbin".to_string(),
            ),
            ("container".to_string(), "lxc-libvirt".to_string()),
            ("TERM".to_string(), "linux".to_string()),
            ("HOME".to_string(), "/".to_string()),
            ("LIBVIRT_LXC_NAME".to_string(), name.clone()),
        ];
        if let Some(u) = text(root, "uuid") {
            env_full.push(("LIBVIRT_LXC_UUID".to_string(), u.clone()));
            env_full.push(("container_uuid".to_string(), u));
        }
        for (k, v) in env {
            env_full.retain(|(e, _)| *e != k);
            env_full.push((k, v));
        }
        let partition = root
            .child("resource")
            .and_then(|r| text(r, "partition"))
            .unwrap_or_else(|| "/machine".into());
        crate::cgroup::partition_parts(&partition)
            .map_err(|e| xml_err("/domain/resource/partition", e))?;
        Ok(LxcDef {
            spec: Spec {
                uuid: text(root, "uuid").unwrap_or_default(),
                name: name.clone(),
                root: root_fs,
                root_readonly: root_ro,
                mounts,
                argv,
                env: env_full,
                workdir,
                user: text(os, "inituser"),
                group: text(os, "initgroup"),
                uid_map,
                gid_map,
                net,
                ipc,
                uts,
                consoles,
                caps_drop: caps_drop(root)?,
            },
            ifaces,
            limits: limits(root)?,
            partition,
            shares,
            on_reboot: text(root, "on_reboot").unwrap_or_else(|| "restart".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtkit_core::domain::DomainDef;

    fn def(xml: &str) -> Result<LxcDef> {
        let d = DomainDef::parse(xml)?;
        LxcDef::from_domain(&d.normalised(&crate::profile::LxcProfile))
    }

    fn dom(extra: &str) -> String {
        format!(
            "<domain type='lxc'><name>c1</name><memory unit='MiB'>64</memory>\
             <os><type>exe</type><init>/sbin/init</init><initarg>-x</initarg>\
             <initenv name='FOO'>bar</initenv></os>{extra}</domain>"
        )
    }

    #[test]
    fn reads_the_container_subset() {
        let d = def(&dom(
            "<features><privnet/></features><devices>\
             <filesystem type='mount'><source dir='/srv/root'/><target dir='/'/></filesystem>\
             <filesystem type='ram'><source usage='8' units='MiB'/><target dir='/run'/></filesystem>\
             <filesystem type='mount'><source dir='/etc/resolv.conf'/><target dir='/etc/resolv.conf'/><readonly/></filesystem>\
             <console type='pty'/></devices>",
        ))
        .unwrap();
        assert_eq!(d.spec.root.as_deref(), Some(Path::new("/srv/root")));
        assert_eq!(d.spec.argv, ["/sbin/init", "-x"]);
        assert!(d.spec.env.contains(&("FOO".into(), "bar".into())));
        assert_eq!(d.spec.mounts.len(), 2);
        assert_eq!(d.spec.mounts[0].kind, MountKind::Tmpfs { size_kib: 8192 });
        assert!(d.spec.mounts[1].readonly);
        assert_eq!(d.spec.net, NsMode::New, "privnet gives a network namespace");
        assert_eq!(d.spec.consoles, 1);
        assert_eq!(d.limits.memory_kib, Some(65536));
        assert!(
            d.spec.caps_drop.contains(&16),
            "sys_module dropped by default"
        );
        assert!(
            !d.spec.caps_drop.contains(&22),
            "sys_boot kept (reboot in a pid namespace)"
        );
    }

    #[test]
    fn bad_paths_and_unsupported_devices_are_refused_with_their_place() {
        let e = def(&dom(
            "<devices><filesystem type='mount'><source dir='/a'/><target dir='/x/../etc'/></filesystem></devices>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("must not contain '..'"), "{e}");
        assert!(e.to_string().contains("/domain/devices/filesystem"), "{e}");
        let e = def(&dom(
            "<devices><filesystem type='mount'><source dir='rel'/><target dir='/x'/></filesystem></devices>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = def(&dom(
            "<devices><filesystem type='file'><source file='/a.img'/><target dir='/'/></filesystem></devices>",
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigUnsupported);
        let e = def(&dom(
            "<devices><interface type='direct'><mac address='52:54:00:00:00:01'/><source dev='eth0'/></interface></devices>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("interface type 'direct'"), "{e}");
        let e = def(&dom(
            "<devices><interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br/0'/></interface></devices>",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("not a valid network device name"),
            "{e}"
        );
        let e = def(&dom(
            "<idmap><uid start='0' target='1000' count='10'/></idmap>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
        let e = def(
            "<domain type='kvm'><name>c</name><memory>1</memory><os><type>hvm</type></os></domain>",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigUnsupported);
    }

    #[test]
    fn capability_policies() {
        let d = def(&dom(
            "<features><capabilities policy='deny'><net_admin state='on'/></capabilities></features>",
        ))
        .unwrap();
        assert_eq!(d.spec.caps_drop.len(), CAPS.len() - 1);
        assert!(!d.spec.caps_drop.contains(&12));
        let d = def(&dom(
            "<features><capabilities policy='allow'><mknod state='off'/></capabilities></features>",
        ))
        .unwrap();
        assert_eq!(d.spec.caps_drop, [27]);
    }

    #[test]
    fn interfaces_and_namespaces() {
        let d = def(&dom(
            "<devices><interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>\
             <ip address='10.0.0.2' prefix='24'/><route address='0.0.0.0' gateway='10.0.0.1'/>\
             <guest dev='net0'/><link state='down'/></interface></devices>",
        ))
        .unwrap();
        assert_eq!(d.ifaces.len(), 1);
        assert_eq!(d.ifaces[0].guest_name, "net0");
        assert!(!d.ifaces[0].up);
        assert_eq!(d.ifaces[0].ips[0].family, "ipv4");
        let d = def(
            "<domain type='lxc' xmlns:lxc='http://libvirt.org/schemas/domain/lxc/1.0'><name>c</name>\
             <memory>1024</memory><os><type>exe</type><init>/bin/sh</init></os>\
             <lxc:namespace><lxc:sharenet type='netns' value='red'/><lxc:shareuts type='name' value='other'/></lxc:namespace></domain>",
        )
        .unwrap();
        assert_eq!(d.spec.net, NsMode::Join("/run/netns/red".into()));
        assert_eq!(d.shares[1], ("uts", Share::Domain("other".into())));
    }

    #[test]
    fn pids_limit_from_metadata() {
        let d = def(&dom(
            "<metadata><vk:limits xmlns:vk='urn:virtkit:lxc:1'><vk:pids max='32'/></vk:limits></metadata>",
        ))
        .unwrap();
        assert_eq!(d.limits.pids_max, Some(32));
    }
}
