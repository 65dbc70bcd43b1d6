//! LXC (lxc-tools) container configuration to domain XML, as libvirt's
//! `virsh domxml-from-native lxc-tools` converts it: both the LXC 3.0 keys
//! (`lxc.net.0.type`, `lxc.rootfs.path`, `lxc.uts.name`...) and the legacy
//! ones (`lxc.network.type`, `lxc.rootfs`, `lxc.utsname`...).

use virtkit_core::domain::{DomainDef, DomainProfile, FormatOptions};
use virtkit_core::xml::{CanonicalWriter, Element};
use virtkit_core::{Error, ErrorKind, MacAddr, Result, Uuid};

use crate::def::CAPS;
use crate::profile::LxcProfile;

/// The `format` name of this conversion (`virConnectDomainXMLFromNative`).
pub const FORMAT: &str = "lxc-tools";

/// One `key = value` line, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    value: String,
    line: usize,
}

fn conf_err(line: usize, msg: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConfSyntax,
        format!("line {line} of the LXC configuration: {msg}"),
    )
}

/// Splits the configuration into entries; `#` comments and blank lines go.
fn parse_entries(config: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, raw) in config.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| conf_err(i + 1, format!("expected 'key = value', got '{line}'")))?;
        let key = k.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(conf_err(i + 1, format!("invalid key '{key}'")));
        }
        out.push(Entry {
            key: key.to_string(),
            value: v.trim().to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

struct Conf(Vec<Entry>);

impl Conf {
    /// The first value of the first key present (new name, then legacy).
    fn get(&self, keys: &[&str]) -> Option<&Entry> {
        keys.iter()
            .find_map(|k| self.0.iter().find(|e| e.key == *k))
    }

    fn value(&self, keys: &[&str]) -> Option<&str> {
        self.get(keys).map(|e| e.value.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.0.iter().filter(move |e| e.key == key)
    }
}

/// An LXC size (`8m`, `1G`, `512k`, bytes) in bytes.
fn size_bytes(s: &str, line: usize) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    if unit == "%" {
        return Err(conf_err(
            line,
            format!("cannot convert the relative size '{s}'"),
        ));
    }
    let n: u64 = n
        .parse()
        .map_err(|_| conf_err(line, format!("invalid size '{s}'")))?;
    let scale = if unit.is_empty() {
        1
    } else {
        virtkit_core::domain::units::unit_scale(unit)
            .ok_or_else(|| conf_err(line, format!("invalid size unit in '{s}'")))?
    };
    n.checked_mul(scale)
        .ok_or_else(|| conf_err(line, format!("size '{s}' is too large")))
}

fn num<T: std::str::FromStr>(e: &Entry) -> Result<T> {
    e.value.trim().parse().map_err(|_| {
        conf_err(
            e.line,
            format!("'{}' of {} is not a number", e.value, e.key),
        )
    })
}

/// Mount points the container always gets, which lxc.mount.entry lines for
/// them must not duplicate.
const BASIC_MOUNTS: &[&str] = &[
    "/proc",
    "/proc/sys",
    "/proc/sys/net/ipv4",
    "/proc/sys/net/ipv6",
    "/sys",
    "/sys/kernel/security",
];

fn fs_el(ty: &str, src: Element, target: &str, readonly: bool) -> Element {
    let mut fs = Element::new("filesystem")
        .with_attr("type", ty)
        .with_attr("accessmode", "passthrough")
        .with_child(src)
        .with_child(Element::new("target").with_attr("dir", target));
    if readonly {
        fs.push(Element::new("readonly"));
    }
    fs
}

/// One `lxc.mount.entry` line as a `<filesystem>` (`None` for a basic mount).
fn mount_entry(e: &Entry) -> Result<Option<Element>> {
    let parts: Vec<&str> = e
        .value
        .split([' ', '\t'])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 4 {
        return Err(conf_err(
            e.line,
            format!(
                "lxc.mount.entry needs 'source target type options': '{}'",
                e.value
            ),
        ));
    }
    let (src, dst, ty, opts) = (parts[0], parts[1], parts[2], parts[3]);
    let dst = if dst.starts_with('/') {
        dst.to_string()
    } else {
        format!("/{dst}")
    };
    if BASIC_MOUNTS.contains(&dst.as_str()) {
        return Ok(None);
    }
    let options: Vec<&str> = opts.split(',').collect();
    let readonly = options.contains(&"ro");
    let block = src.starts_with("/dev/");
    if ty == "tmpfs" && !block {
        let size = options
            .iter()
            .find_map(|o| o.strip_prefix("size="))
            .ok_or_else(|| conf_err(e.line, "missing tmpfs size, set the size option"))?;
        let bytes = size_bytes(size, e.line)?;
        let source = Element::new("source")
            .with_attr("usage", &(bytes / 1024).to_string())
            .with_attr("units", "KiB");
        return Ok(Some(fs_el("ram", source, &dst, readonly)));
    }
    let (ty, source) = if block {
        ("block", Element::new("source").with_attr("dev", src))
    } else {
        ("mount", Element::new("source").with_attr("dir", src))
    };
    Ok(Some(fs_el(ty, source, &dst, readonly)))
}

#[derive(Default)]
struct Net {
    index: u64,
    ty: Option<String>,
    link: Option<String>,
    hwaddr: Option<String>,
    flags: Option<String>,
    macvlan_mode: Option<String>,
    vlan_id: Option<String>,
    name: Option<String>,
    ips: Vec<Element>,
    gw4: Option<String>,
    gw6: Option<String>,
}

fn ip_el(e: &Entry, v6: bool) -> Result<Element> {
    let bad = || conf_err(e.line, format!("invalid CIDR address '{}'", e.value));
    let (addr, prefix) = e.value.split_once('/').ok_or_else(bad)?;
    let ok = if v6 {
        addr.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        addr.parse::<std::net::Ipv4Addr>().is_ok()
    };
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    if !ok {
        return Err(bad());
    }
    Ok(Element::new("ip")
        .with_attr("address", addr)
        .with_attr("family", if v6 { "ipv6" } else { "ipv4" })
        .with_attr("prefix", &prefix.to_string()))
}

impl Net {
    fn set(&mut self, suffix: &str, e: &Entry) -> Result<()> {
        let v = Some(e.value.clone());
        match suffix {
            "type" => self.ty = v,
            "link" => self.link = v,
            "hwaddr" => self.hwaddr = v,
            "flags" => self.flags = v,
            "macvlan.mode" => self.macvlan_mode = v,
            "vlan.id" => self.vlan_id = v,
            "name" => self.name = v,
            "ipv4" | "ipv4.address" => self.ips.push(ip_el(e, false)?),
            "ipv6" | "ipv6.address" => self.ips.push(ip_el(e, true)?),
            "ipv4.gateway" => self.gw4 = v,
            "ipv6.gateway" => self.gw6 = v,
            // Other settings (veth.pair, mtu, script.up...) have no domain
            // XML equivalent in libvirt's conversion either.
            _ => {}
        }
        Ok(())
    }

    fn routes(&self) -> Vec<Element> {
        let mut out = Vec::new();
        for (gw, fam, zero) in [(&self.gw4, "ipv4", "0.0.0.0"), (&self.gw6, "ipv6", "::")] {
            if let Some(g) = gw {
                out.push(
                    Element::new("route")
                        .with_attr("family", fam)
                        .with_attr("address", zero)
                        .with_attr("gateway", g),
                );
            }
        }
        out
    }

    /// The device: (`interface`, `hostdev`), or nothing for type none/empty.
    fn device(&self, line: usize) -> Result<Option<(bool, Element)>> {
        let ty = self.ty.as_deref().unwrap_or("");
        if matches!(ty, "" | "empty" | "none") {
            return Ok(None);
        }
        if matches!(ty, "phys" | "vlan") {
            let link = self.link.as_deref().ok_or_else(|| {
                Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!("Missing 'link' attribute for NIC (line {line})"),
                )
            })?;
            let ifname = match (&self.vlan_id, ty) {
                (Some(id), "vlan") => format!("{link}.{id}"),
                _ => link.to_string(),
            };
            let mut h = Element::new("hostdev")
                .with_attr("mode", "capabilities")
                .with_attr("type", "net")
                .with_child(
                    Element::new("source").with_child(Element::new("interface").with_text(&ifname)),
                );
            for ip in &self.ips {
                h.push(ip.clone());
            }
            for r in self.routes() {
                h.push(r);
            }
            return Ok(Some((false, h)));
        }
        let mut n = Element::new("interface");
        if let Some(mac) = self
            .hwaddr
            .as_deref()
            .and_then(|m| m.parse::<MacAddr>().ok())
        {
            n.push(Element::new("mac").with_attr("address", &mac.to_string()));
        }
        match ty {
            "veth" => match &self.link {
                Some(l) => {
                    n.set_attr("type", "bridge");
                    n.push(Element::new("source").with_attr("bridge", l));
                }
                None => n.set_attr("type", "ethernet"),
            },
            "macvlan" => {
                let link = self.link.as_deref().ok_or_else(|| {
                    Error::new(
                        ErrorKind::ConfigUnsupported,
                        format!("a macvlan NIC needs lxc.net.N.link (line {line})"),
                    )
                })?;
                let mode = match self.macvlan_mode.as_deref() {
                    None | Some("private") => "private",
                    Some("vepa") => "vepa",
                    Some("bridge") => "bridge",
                    Some(other) => {
                        tracing::warn!(mode = other, "unknown macvlan mode; using private");
                        "private"
                    }
                };
                n.set_attr("type", "direct");
                n.push(
                    Element::new("source")
                        .with_attr("dev", link)
                        .with_attr("mode", mode),
                );
            }
            other => {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!("network type '{other}' has no domain XML equivalent (line {line})"),
                ));
            }
        }
        for ip in &self.ips {
            n.push(ip.clone());
        }
        for r in self.routes() {
            n.push(r);
        }
        if let Some(name) = &self.name {
            n.push(Element::new("guest").with_attr("dev", name));
        }
        let state = if self.flags.as_deref() == Some("up") {
            "up"
        } else {
            "down"
        };
        n.push(Element::new("link").with_attr("state", state));
        Ok(Some((true, n)))
    }
}

/// Groups the network entries per interface: `lxc.net.N.*` by N, legacy
/// `lxc.network.*` by each `type` line starting a new one.
fn networks(conf: &Conf) -> Result<Vec<(Net, usize)>> {
    let mut nets: Vec<(Net, usize)> = Vec::new();
    for e in &conf.0 {
        if let Some(suffix) = e.key.strip_prefix("lxc.network.") {
            if suffix == "type" {
                let index = nets.len() as u64;
                nets.push((
                    Net {
                        index,
                        ..Net::default()
                    },
                    e.line,
                ));
            }
            let Some((n, _)) = nets.last_mut() else {
                return Err(conf_err(
                    e.line,
                    format!("{} comes before any lxc.network.type", e.key),
                ));
            };
            n.set(suffix, e)?;
        } else if let Some(rest) = e.key.strip_prefix("lxc.net.") {
            let (idx, suffix) = rest
                .split_once('.')
                .ok_or_else(|| conf_err(e.line, format!("invalid key '{}'", e.key)))?;
            let index: u64 = idx
                .parse()
                .map_err(|_| conf_err(e.line, format!("invalid interface index in '{}'", e.key)))?;
            let pos = match nets.iter().position(|(n, _)| n.index == index) {
                Some(p) => p,
                None => {
                    nets.push((
                        Net {
                            index,
                            ..Net::default()
                        },
                        e.line,
                    ));
                    nets.len() - 1
                }
            };
            nets[pos].0.set(suffix, e)?;
        }
    }
    Ok(nets)
}

fn arch(value: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "i686",
        "x86_64",
        "aarch64",
        "armv6l",
        "armv7l",
        "ppc64",
        "ppc64le",
        "s390x",
        "riscv64",
        "mips64",
        "loongarch64",
    ];
    match value {
        "x86" | "i386" | "i486" | "i586" => Some("i686"),
        "amd64" => Some("x86_64"),
        "arm64" => Some("aarch64"),
        v => KNOWN.iter().copied().find(|k| *k == v),
    }
}

/// Converts an LXC configuration to a domain definition (with a new random
/// UUID, as libvirt generates one).
pub fn to_domain(config: &str) -> Result<DomainDef> {
    let conf = Conf(parse_entries(config)?);
    let name = conf
        .value(&["lxc.uts.name", "lxc.utsname"])
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::ConfigUnsupported,
                "the LXC configuration has no lxc.uts.name (or lxc.utsname): the container needs a name",
            )
        })?;
    virtkit_core::check_object_name("domain", name)?;
    let rootfs = conf
        .value(&["lxc.rootfs.path", "lxc.rootfs"])
        .ok_or_else(|| {
            Error::new(
                ErrorKind::ConfigUnsupported,
                "Missing lxc.rootfs.path (or lxc.rootfs) configuration",
            )
        })?;
    // LXC allows a storage-type prefix (dir:/path); libvirt takes the value as is.
    if conf.get(&["lxc.mount.fstab", "lxc.mount"]).is_some() {
        return Err(Error::new(
            ErrorKind::ArgumentUnsupported,
            "lxc.mount.fstab or lxc.mount found, use lxc.mount.entry lines instead",
        ));
    }

    let mut dom = Element::new("domain").with_attr("type", "lxc");
    dom.push(Element::new("name").with_text(name));
    dom.push(Element::new("uuid").with_text(&Uuid::random().to_string()));

    // Memory: 64 MiB unless the memory cgroup limit says otherwise.
    let mut memory_kib = 64 * 1024;
    let mut memtune = Element::new("memtune");
    if let Some(e) = conf.get(&["lxc.cgroup.memory.limit_in_bytes"]) {
        memory_kib = size_bytes(&e.value, e.line)? / 1024;
        memtune.push(
            Element::new("hard_limit")
                .with_attr("unit", "KiB")
                .with_text(&memory_kib.to_string()),
        );
    }
    for (key, el) in [
        ("lxc.cgroup.memory.soft_limit_in_bytes", "soft_limit"),
        ("lxc.cgroup.memory.memsw.limit_in_bytes", "swap_hard_limit"),
    ] {
        if let Some(e) = conf.get(&[key]) {
            let kib = size_bytes(&e.value, e.line)? / 1024;
            memtune.push(
                Element::new(el)
                    .with_attr("unit", "KiB")
                    .with_text(&kib.to_string()),
            );
        }
    }
    dom.push(
        Element::new("memory")
            .with_attr("unit", "KiB")
            .with_text(&memory_kib.to_string()),
    );
    if memtune.has_elements() {
        dom.push(memtune);
    }

    // Block I/O.
    let mut blkio = Element::new("blkiotune");
    if let Some(e) = conf.get(&["lxc.cgroup.blkio.weight"]) {
        blkio.push(Element::new("weight").with_text(&num::<u32>(e)?.to_string()));
    }
    let mut devices: Vec<(String, Vec<(&str, u64)>)> = Vec::new();
    for e in conf
        .0
        .iter()
        .filter(|e| e.key.starts_with("lxc.cgroup.blkio.") && e.key != "lxc.cgroup.blkio.weight")
    {
        let parts: Vec<&str> = e
            .value
            .split([' ', '\t'])
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() < 2 {
            return Err(conf_err(
                e.line,
                format!("invalid {} value '{}'", e.key, e.value),
            ));
        }
        let field = match e.key.as_str() {
            "lxc.cgroup.blkio.device_weight" => "weight",
            "lxc.cgroup.blkio.throttle.read_bps_device" => "read_bytes_sec",
            "lxc.cgroup.blkio.throttle.write_bps_device" => "write_bytes_sec",
            "lxc.cgroup.blkio.throttle.read_iops_device" => "read_iops_sec",
            "lxc.cgroup.blkio.throttle.write_iops_device" => "write_iops_sec",
            other => {
                tracing::warn!(key = other, "unhandled blkio setting");
                continue;
            }
        };
        let value: u64 = parts[1]
            .parse()
            .map_err(|_| conf_err(e.line, format!("failed to parse {field}: '{}'", parts[1])))?;
        let path = format!("/dev/block/{}", parts[0]);
        match devices.iter_mut().find(|(p, _)| *p == path) {
            Some((_, fields)) => fields.push((field, value)),
            None => devices.push((path, vec![(field, value)])),
        }
    }
    for (path, fields) in devices {
        let mut d = Element::new("device").with_child(Element::new("path").with_text(&path));
        // libvirt's order of the per-device settings.
        for f in [
            "weight",
            "read_iops_sec",
            "write_iops_sec",
            "read_bytes_sec",
            "write_bytes_sec",
        ] {
            if let Some((_, v)) = fields.iter().rev().find(|(n, _)| *n == f) {
                d.push(Element::new(f).with_text(&v.to_string()));
            }
        }
        blkio.push(d);
    }
    if blkio.has_elements() {
        dom.push(blkio);
    }

    // CPUs: one, optionally pinned; numa node placement.
    let mut vcpu = Element::new("vcpu")
        .with_attr("placement", "static")
        .with_text("1");
    if let Some(e) = conf.get(&["lxc.cgroup.cpuset.cpus"]) {
        check_bitmap(e)?;
        vcpu.set_attr("cpuset", &e.value);
    }
    dom.push(vcpu);
    let mut cputune = Element::new("cputune");
    for (key, el) in [
        ("lxc.cgroup.cpu.shares", "shares"),
        ("lxc.cgroup.cpu.cfs_period_us", "period"),
        ("lxc.cgroup.cpu.cfs_quota_us", "quota"),
    ] {
        if let Some(e) = conf.get(&[key]) {
            let v: i64 = num(e)?;
            cputune.push(Element::new(el).with_text(&v.to_string()));
        }
    }
    if cputune.has_elements() {
        dom.push(cputune);
    }
    if let Some(e) = conf.get(&["lxc.cgroup.cpuset.mems"]) {
        check_bitmap(e)?;
        dom.push(
            Element::new("numatune").with_child(
                Element::new("memory")
                    .with_attr("mode", "strict")
                    .with_attr("nodeset", &e.value),
            ),
        );
    }

    let mut ty = Element::new("type").with_text("exe");
    if let Some(a) = conf.value(&["lxc.arch"]).and_then(arch) {
        ty.set_attr("arch", a);
    }
    dom.push(
        Element::new("os")
            .with_child(ty)
            .with_child(Element::new("init").with_text("/sbin/init")),
    );

    // ID maps: "u|g <host id> <container id> <count>".
    let mut idmap = Element::new("idmap");
    let (mut uids, mut gids) = (Vec::new(), Vec::new());
    for e in conf
        .0
        .iter()
        .filter(|e| e.key == "lxc.idmap" || e.key == "lxc.id_map")
    {
        let f: Vec<&str> = e.value.split_whitespace().collect();
        let bad = || conf_err(e.line, format!("invalid {}: '{}'", e.key, e.value));
        if f.len() != 4 {
            return Err(bad());
        }
        let n = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let (target, start, count) = (n(f[1])?, n(f[2])?, n(f[3])?);
        let el = |kind| {
            Element::new(kind)
                .with_attr("start", &start.to_string())
                .with_attr("target", &target.to_string())
                .with_attr("count", &count.to_string())
        };
        match f[0] {
            "u" => uids.push(el("uid")),
            "g" => gids.push(el("gid")),
            _ => return Err(bad()),
        }
    }
    for e in uids.into_iter().chain(gids) {
        idmap.push(e);
    }
    if idmap.has_elements() {
        dom.push(idmap);
    }

    // Networks: with no NIC at all LXC gives the container a loopback only.
    let nets = networks(&conf)?;
    let mut features = Element::new("features");
    let privnet_off = nets.iter().any(|(n, _)| n.ty.as_deref() == Some("none"));
    if nets.is_empty() && !privnet_off {
        features.push(Element::new("privnet"));
    }
    let mut caps = Element::new("capabilities").with_attr("policy", "allow");
    let dropped: Vec<&str> = conf
        .value(&["lxc.cap.drop"])
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    for (cap, _) in CAPS {
        if dropped.contains(cap) {
            caps.push(Element::new(*cap).with_attr("state", "off"));
        }
    }
    features.push(caps);
    dom.push(features);

    let mut devs = Element::new("devices");
    let root_ty = if rootfs.starts_with("/dev/") {
        ("block", Element::new("source").with_attr("dev", rootfs))
    } else {
        ("mount", Element::new("source").with_attr("dir", rootfs))
    };
    devs.push(fs_el(root_ty.0, root_ty.1, "/", false));
    for e in conf.all("lxc.mount.entry") {
        if let Some(fs) = mount_entry(e)? {
            devs.push(fs);
        }
    }
    let mut hostdevs = Vec::new();
    for (n, line) in &nets {
        match n.device(*line)? {
            Some((true, el)) => devs.push(el),
            Some((false, el)) => hostdevs.push(el),
            None => {}
        }
    }
    for h in hostdevs {
        devs.push(h);
    }
    if let Some(e) = conf.get(&["lxc.tty.max", "lxc.tty"]) {
        let n: u32 = num(e)?;
        for i in 0..n {
            devs.push(
                Element::new("console").with_attr("type", "pty").with_child(
                    Element::new("target")
                        .with_attr("type", "lxc")
                        .with_attr("port", &i.to_string()),
                ),
            );
        }
    }
    dom.push(devs);

    let mut w = CanonicalWriter::new();
    w.element(&dom, 0);
    let mut def = DomainDef::parse_named(w.finish().as_bytes(), "(LXC configuration)")?;
    def.assign_generated(&LxcProfile);
    Ok(def)
}

fn check_bitmap(e: &Entry) -> Result<()> {
    let ok = !e.value.is_empty()
        && e.value.split(',').all(|part| {
            let mut r = part.splitn(2, '-');
            r.all(|n| n.trim().parse::<u32>().is_ok())
        });
    if ok {
        Ok(())
    } else {
        Err(conf_err(
            e.line,
            format!("invalid CPU or node list '{}' for {}", e.value, e.key),
        ))
    }
}

/// libvirt converts without consulting the host's capabilities, so a
/// configuration without `lxc.arch` gives a definition without an
/// architecture; the XML parser would fill in the host's.
struct NativeProfile;

impl DomainProfile for NativeProfile {
    fn name(&self) -> &str {
        "lxc"
    }

    fn default_arch(&self, _os_type: &str) -> &str {
        ""
    }

    fn post_parse(&self, domain: &mut Element) {
        if let Some(t) = domain.child_mut("os").and_then(|o| o.child_mut("type"))
            && t.attr("arch").is_some_and(|a| a.is_empty())
        {
            t.remove_attr("arch");
        }
        LxcProfile.post_parse(domain);
    }
}

/// `virsh domxml-from-native lxc-tools`: the domain XML of an LXC
/// configuration, as libvirt's formatter prints it.
pub fn to_xml(config: &str) -> Result<String> {
    let def = to_domain(config)?;
    Ok(def.to_xml_canonical(&NativeProfile, &FormatOptions::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_and_new_keys_give_the_same_domain() {
        let old = "lxc.utsname = c\nlxc.rootfs = /r\nlxc.network.type = veth\nlxc.network.link = br0\n\
                   lxc.network.hwaddr = 02:00:00:00:00:01\nlxc.network.flags = up\n";
        let new = "lxc.uts.name = c\nlxc.rootfs.path = /r\nlxc.net.0.type = veth\nlxc.net.0.link = br0\n\
                   lxc.net.0.hwaddr = 02:00:00:00:00:01\nlxc.net.0.flags = up\n";
        let strip = |s: String| {
            s.lines()
                .filter(|l| !l.contains("<uuid>"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let a = strip(to_xml(old).unwrap());
        assert_eq!(a, strip(to_xml(new).unwrap()));
        assert!(a.contains("<source bridge='br0'/>"), "{a}");
        assert!(a.contains("<link state='up'/>"), "{a}");
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let e = to_xml("lxc.uts.name = c\n").unwrap_err();
        assert!(e.to_string().contains("lxc.rootfs"), "{e}");
        let e = to_xml("lxc.uts.name = c\nlxc.rootfs = /r\nlxc.mount = /f\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentUnsupported);
        let e = to_xml("lxc.uts.name = c\nlxc.rootfs = /r\ngarbage\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = to_xml("lxc.uts.name = a/b\nlxc.rootfs = /r\n").unwrap_err();
        assert!(e.to_string().contains("cannot contain '/'"), "{e}");
        let e = to_xml(
            "lxc.uts.name = c\nlxc.rootfs = /r\nlxc.mount.entry = tmpfs run tmpfs size=5%,mode=0755 0 0\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("relative size"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("8m", 1).unwrap(), 8 << 20);
        assert_eq!(size_bytes("1024", 1).unwrap(), 1024);
        assert!(size_bytes("x", 1).is_err());
    }
}
