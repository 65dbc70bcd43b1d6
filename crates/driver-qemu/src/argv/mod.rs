//! From a domain definition to QEMU's command line.
//!
//! The builder reads the normalised `<domain>` tree (libvirt's defaults and
//! device addresses filled in by [`QemuProfile`](crate::profile::QemuProfile))
//! and emits arguments in the order and form libvirt uses: environment
//! first, then `-name`, `-S`, machine, accelerator, CPU, memory, topology,
//! monitor, clock, boot, devices as JSON `-device`/`-blockdev`/`-netdev`
//! objects, sandbox. Values going into QEMU's `key=value` options are
//! comma-escaped; JSON values are escaped by the JSON writer. Where
//! libvirt's output depends on what the binary can do, the choice follows
//! the capability flags of [`QemuCaps`]. An element virtkit cannot express
//! yet is an "unsupported configuration" error naming it, never dropped.

mod address;
mod audio;
mod boot;
mod chardev;
mod controller;
mod cpu;
mod disk;
mod escape;
mod firmware;
mod graphics;
mod hostdev;
mod input;
mod iommu;
mod machine;
mod membackend;
mod memory;
mod misc;
mod net;
mod numa;
mod props;
mod sound;
mod storage;
mod video;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

pub use escape::{Opts, comma, shell_quote};
pub use membackend::{Hugetlbfs, host_hugetlbfs, hugepage_dir};
pub use props::{Props, Value};

use crate::caps::QemuCaps;
use crate::profile::machine::Chipset;

/// The accelerator a domain runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (`<domain type='kvm'>`).
    Kvm,
    /// Emulation (`<domain type='qemu'>`).
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Host resources already opened for one `<interface>`.
#[derive(Debug, Clone, Default)]
pub struct NetFds {
    /// Tap fds, one per queue.
    pub tap: Vec<RawFd>,
    /// vhost-net fds, one per queue (empty without vhost).
    pub vhost: Vec<RawFd>,
}

/// What the command line depends on besides the definition: resources the
/// driver prepared for this start.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The binary's capabilities.
    pub caps: &'a QemuCaps,
    /// The accelerator.
    pub accel: Accel,
    /// The domain's private directory (QEMU's HOME; master key).
    pub domain_dir: PathBuf,
    /// The listening monitor socket QEMU inherits.
    pub monitor_fd: RawFd,
    /// Per `<interface>`, in document order.
    pub nets: Vec<NetFds>,
    /// User and group names for QEMU's environment.
    pub user: String,
    /// libvirt's short domain name (`ID-NAME`, the name cut to 20
    /// characters): the directory a domain's huge pages live in on each
    /// hugetlbfs mount.
    pub short_name: String,
    /// The directory of the domain's file-backed memory (one file per
    /// backend object), the driver's memory backing directory plus the
    /// short name.
    pub memory_dir: PathBuf,
}

/// How graphics servers without fixed ports get them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphicsPorts {
    /// The first ports from 5900 that are free on the listen address.
    FirstFree,
    /// Always these ports (libvirt's test harness hands out fixed ones).
    Fixed {
        /// A VNC server's port.
        vnc: u16,
        /// A SPICE server's plain port.
        spice: u16,
        /// A SPICE server's TLS port.
        spice_tls: u16,
    },
}

/// SPICE settings of the host (libvirt's `spice_*` in qemu.conf).
#[derive(Debug, Clone, Default)]
pub struct SpiceHost {
    /// The x509 certificate directory when SPICE TLS is enabled.
    pub tls_x509_dir: Option<String>,
    /// Whether a host-wide SPICE password is set (given to QEMU over QMP);
    /// without one, a server without `passwd` runs without tickets.
    pub password: bool,
}

/// Conventions of the host the command runs on, beyond the per-start
/// resources of a [`Context`].
#[derive(Debug, Clone)]
pub struct Host {
    /// `PATH` given to QEMU (libvirt passes its own).
    pub path: String,
    /// A descriptor QEMU inherits for listening UNIX-socket character
    /// devices instead of binding their paths itself. libvirt pre-opens
    /// these sockets; virtkit's driver lets QEMU bind (`None`).
    pub chardev_listen_fd: Option<RawFd>,
    /// VNC and SPICE port allocation.
    pub graphics_ports: GraphicsPorts,
    /// SPICE configuration.
    pub spice: SpiceHost,
    /// The DRM render node headless GL displays use when the definition
    /// names none.
    pub render_node: Option<String>,
    /// The hugetlbfs mounts huge-page memory goes on.
    pub hugetlbfs: Vec<membackend::Hugetlbfs>,
    /// The base page size in KiB (a `<page>` of this size is no huge page).
    pub page_kib: u64,
}

impl Host {
    /// This process's conventions: its own `PATH`, QEMU binds sockets,
    /// VNC takes the first free port.
    pub fn current() -> Host {
        Host {
            path: std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            chardev_listen_fd: None,
            graphics_ports: GraphicsPorts::FirstFree,
            spice: SpiceHost::default(),
            render_node: first_render_node(),
            hugetlbfs: membackend::host_hugetlbfs(),
            page_kib: membackend::system_page_kib(),
        }
    }
}

/// The first DRM render node of the host (`/dev/dri/renderD128`).
fn first_render_node() -> Option<String> {
    let mut nodes: Vec<String> = std::fs::read_dir("/dev/dri")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("renderD"))
        .collect();
    nodes.sort();
    nodes.first().map(|n| format!("/dev/dri/{n}"))
}

/// A command ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// The emulator.
    pub binary: PathBuf,
    /// The arguments.
    pub args: Vec<String>,
    /// Directories that must exist before QEMU starts (huge-page and
    /// file-backed memory); the driver makes them and removes them when
    /// QEMU is gone.
    pub dirs: Vec<PathBuf>,
    /// Disk I/O limits to set over QMP before the guest runs: the QOM name
    /// of the device holding the disk's block backend, and the limits.
    pub iotune: Vec<(String, crate::iotune::IoTune)>,
}

impl Command {
    /// The command the way libvirt prints one (its golden `.args` files):
    /// environment assignments, the binary, then each option with its value
    /// on a line of its own, lines joined by ` \`.
    pub fn to_golden_text(&self) -> String {
        let mut lines: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect();
        lines.push(shell_quote(&self.binary.display().to_string()));
        let first_option = lines.len();
        for a in &self.args {
            let joins = !a.starts_with('-') && lines.len() > first_option;
            match lines.last_mut() {
                Some(last) if joins => {
                    last.push(' ');
                    last.push_str(&shell_quote(a));
                }
                _ => lines.push(shell_quote(a)),
            }
        }
        lines.join(" \\\n") + "\n"
    }
}

/// An "unsupported configuration" error for an element at `path`.
pub(crate) fn unsupported(path: impl std::fmt::Display, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConfigUnsupported,
        format!("{what} ({path}) is not supported by virtkit's QEMU driver yet"),
    )
}

/// An error in the definition itself.
pub(crate) fn invalid(path: impl std::fmt::Display, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::XmlError, format!("{what} ({path})"))
}

/// The argument list under construction.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub args: Vec<String>,
}

impl Args {
    pub fn flag(&mut self, f: &str) {
        self.args.push(f.to_string());
    }

    pub fn opt(&mut self, f: &str, v: impl Into<String>) {
        self.args.push(f.to_string());
        self.args.push(v.into());
    }

    pub fn json(&mut self, f: &str, v: &Props) {
        self.opt(f, v.to_json());
    }
}

/// Everything the section builders share.
pub(crate) struct Gen<'a> {
    pub domain: &'a Element,
    pub devices: &'a Element,
    pub ctx: &'a Context<'a>,
    pub host: &'a Host,
    pub chipset: Chipset,
    /// `/domain/devices`, for error paths.
    pub dp: XPath,
    pub a: Args,
    /// Directories the command needs ([`Command::dirs`]).
    pub dirs: Vec<PathBuf>,
    /// Disk limits to set once QEMU is up ([`Command::iotune`]).
    pub iotune: Vec<(String, crate::iotune::IoTune)>,
}

impl<'a> Gen<'a> {
    /// Whether the binary has capability `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.ctx.caps.has(flag)
    }

    /// Fails with `what` when the binary lacks capability `flag`. A binary
    /// whose capabilities are unknown (no flags at all, as when a
    /// definition is checked before any binary was probed) passes.
    pub fn require(&self, flag: &str, what: impl std::fmt::Display) -> Result<()> {
        if self.ctx.caps.flags.is_empty() || self.has(flag) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::ConfigUnsupported, what.to_string()))
        }
    }

    /// `-device`, as JSON where the binary takes it, else `key=value`.
    pub fn device(&mut self, p: &Props) {
        let v = if self.has("device.json+hotplug") {
            p.to_json()
        } else {
            p.to_keyval("driver")
        };
        self.a.opt("-device", v);
    }

    /// Records a directory the command needs ([`Command::dirs`]).
    pub fn need_dir(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// `-object`, as JSON where the binary takes it, else `key=value`.
    pub fn object(&mut self, p: &Props) {
        let v = if self.has("object.qapified") {
            p.to_json()
        } else {
            p.to_keyval("qom-type")
        };
        self.a.opt("-object", v);
    }

    /// `-netdev`, as JSON where the binary takes it, else `key=value`.
    pub fn netdev(&mut self, p: &Props) {
        let v = if self.has("netdev.json") {
            p.to_json()
        } else {
            p.to_keyval("type")
        };
        self.a.opt("-netdev", v);
    }

    /// The XPath of device `dev`.
    pub fn path(&self, dev: &Element) -> XPath {
        self.dp.child(self.devices, dev)
    }
}

/// Attribute `n` of `e`, owned.
pub(crate) fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// Attribute `n` of child `child` of `e`.
pub(crate) fn child_attr(e: &Element, child: &str, n: &str) -> Option<String> {
    e.child(child).and_then(|c| attr(c, n))
}

/// `on`/`yes` → true, `off`/`no` → false.
pub(crate) fn switch(v: Option<String>) -> Option<bool> {
    match v.as_deref() {
        Some("on") | Some("yes") => Some(true),
        Some("off") | Some("no") => Some(false),
        _ => None,
    }
}

/// The device alias the user gave (`<alias name='ua-...'/>`), else `default`.
pub(crate) fn alias(dev: &Element, default: impl Into<String>) -> String {
    dev.child("alias")
        .and_then(|a| attr(a, "name"))
        .filter(|n| n.starts_with("ua-"))
        .unwrap_or_else(|| default.into())
}

/// Builds the command for `domain` (the normalised `<domain>` element)
/// with this host's conventions.
pub fn build(domain: &Element, ctx: &Context<'_>) -> Result<Command> {
    build_with(domain, ctx, &Host::current())
}

/// Builds the command for `domain` with the given host conventions.
pub fn build_with(domain: &Element, ctx: &Context<'_>, host: &Host) -> Result<Command> {
    // USB ports are handed out at start, not persisted with the definition.
    let mut domain = domain.clone();
    if let Some(devices) = domain.child_mut("devices") {
        crate::profile::usb::assign(devices);
    }
    let domain = &domain;
    let p = XPath::root("domain");
    let empty = Element::new("devices");
    let devices = domain.child("devices").unwrap_or(&empty);
    let name = domain.child("name").map(Element::text).unwrap_or_default();
    let binary = devices
        .child("emulator")
        .map(|e| PathBuf::from(e.text().trim()))
        .unwrap_or_else(|| ctx.caps.binary.clone());
    let dir = ctx.domain_dir.display().to_string();
    let env = vec![
        ("LC_ALL".into(), "C".into()),
        ("PATH".into(), host.path.clone()),
        ("HOME".into(), dir.clone()),
        ("USER".into(), ctx.user.clone()),
        ("LOGNAME".into(), ctx.user.clone()),
        ("XDG_DATA_HOME".into(), format!("{dir}/.local/share")),
        ("XDG_CACHE_HOME".into(), format!("{dir}/.cache")),
        ("XDG_CONFIG_HOME".into(), format!("{dir}/.config")),
    ];
    let mut env = env;
    env.extend(audio::environment(devices));
    let mut g = Gen {
        domain,
        devices,
        ctx,
        host,
        chipset: Chipset::of_domain(domain),
        dp: p.named("devices"),
        a: Args::default(),
        dirs: Vec::new(),
        iotune: Vec::new(),
    };

    g.a.opt("-name", format!("guest={},debug-threads=on", comma(&name)));
    g.a.flag("-S");
    g.object(
        &Props::new()
            .set("qom-type", "secret")
            .set("id", "masterKey0")
            .set("format", "raw")
            .set("file", master_key_path(&ctx.domain_dir)),
    );
    machine::check_domain_children(&g, &p)?;
    let flash = firmware::emit_flash(&mut g, &p)?;
    machine::emit(&mut g, &p, &flash)?;
    cpu::emit_cpu(&mut g, &p)?;
    firmware::emit_rom(&mut g);
    memory::emit(&mut g, &p)?;
    cpu::emit_smp(&mut g, &p)?;
    cpu::emit_iothreads(&mut g)?;
    numa::emit(&mut g, &p)?;
    machine::emit_identity(&mut g, &p)?;
    machine::emit_monitor_clock_pm(&mut g, &p)?;
    boot::emit(&mut g, &p)?;
    iommu::emit(&mut g)?;
    machine::emit_global_controller_settings(&mut g)?;
    controller::emit_all(&mut g)?;
    memory::emit_devices(&mut g)?;
    disk::emit_all(&mut g)?;
    misc::emit_filesystems(&mut g)?;
    net::emit_all(&mut g)?;
    chardev::emit_serials(&mut g)?;
    chardev::emit_parallels(&mut g)?;
    chardev::emit_channels(&mut g)?;
    chardev::emit_consoles(&mut g)?;
    input::emit_all(&mut g)?;
    audio::emit_all(&mut g)?;
    graphics::emit_all(&mut g)?;
    video::emit_all(&mut g)?;
    sound::emit_all(&mut g)?;
    misc::emit_watchdogs(&mut g)?;
    misc::emit_redirdevs(&mut g)?;
    hostdev::emit_all(&mut g)?;
    misc::emit_memballoon(&mut g)?;
    misc::emit_rngs(&mut g)?;
    if g.has("seccomp-sandbox") {
        g.a.opt(
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        );
    }
    misc::emit_panics(&mut g)?;
    misc::check_handled(&g)?;
    g.a.opt("-msg", "timestamp=on");
    Ok(Command {
        env,
        binary,
        args: g.a.args,
        dirs: g.dirs,
        iotune: g.iotune,
    })
}

/// Each disk of `domain` (by target, `vda`) with the QOM name of the
/// device holding its block backend (what `block_set_io_throttle` takes).
pub fn disk_ids(domain: &Element, ctx: &Context<'_>) -> Vec<(String, String)> {
    let empty = Element::new("devices");
    let devices = domain.child("devices").unwrap_or(&empty);
    let host = Host::current();
    let g = Gen {
        domain,
        devices,
        ctx,
        host: &host,
        chipset: Chipset::of_domain(domain),
        dp: XPath::root("domain").named("devices"),
        a: Args::default(),
        dirs: Vec::new(),
        iotune: Vec::new(),
    };
    disk::ids(&g)
}

/// libvirt's short name of a running domain: its id, a dash and the first
/// 20 characters of its name.
pub fn short_name(id: i64, name: &str) -> String {
    format!("{id}-{}", name.chars().take(20).collect::<String>())
}

/// Where the domain's master key (for QEMU secrets) lives.
pub fn master_key_path(domain_dir: &Path) -> String {
    domain_dir.join("master-key.aes").display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_text_breaks_before_options() {
        let c = Command {
            env: vec![("LC_ALL".into(), "C".into())],
            binary: "/usr/bin/qemu-system-x86_64".into(),
            dirs: Vec::new(),
            iotune: Vec::new(),
            args: vec![
                "-name".into(),
                "guest=a,debug-threads=on".into(),
                "-S".into(),
                "-device".into(),
                r#"{"driver":"x"}"#.into(),
            ],
        };
        assert_eq!(
            c.to_golden_text(),
            "LC_ALL=C \\\n/usr/bin/qemu-system-x86_64 \\\n-name guest=a,debug-threads=on \\\n-S \\\n-device '{\"driver\":\"x\"}'\n"
        );
    }
}
