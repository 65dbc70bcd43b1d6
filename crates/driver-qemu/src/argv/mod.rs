//! From a domain definition to QEMU's command line.
//!
//! The builder reads the normalised `<domain>` tree (libvirt's defaults
//! filled in by [`QemuProfile`](crate::profile::QemuProfile)) and emits
//! arguments in the order and form libvirt uses: environment first, then
//! `-name`, `-S`, machine, accelerator, CPU, memory, topology, monitor,
//! clock, boot, devices as JSON `-device`/`-blockdev`/`-netdev` objects,
//! sandbox. Values going into QEMU's `key=value` options are comma-escaped;
//! JSON values are encoded by serde_json. An element virtkit cannot express
//! yet is an "unsupported configuration" error naming it, never dropped.

mod devices;
mod escape;
mod machine;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

pub use escape::{Opts, comma};

use crate::caps::QemuCaps;

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

/// What the command line depends on besides the definition.
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
}

impl Command {
    /// One argument per line, the way libvirt's golden files show it.
    pub fn to_golden_text(&self) -> String {
        let mut lines: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(self.binary.display().to_string());
        let mut i = 0;
        while i < self.args.len() {
            let a = &self.args[i];
            let quote = |v: &str| {
                if v.contains(['{', '\'', ' ', '"']) {
                    format!("'{}'", v.replace('\'', "'\\''"))
                } else {
                    v.to_string()
                }
            };
            if a.starts_with('-') && i + 1 < self.args.len() && !self.args[i + 1].starts_with('-') {
                lines.push(format!("{a} {}", quote(&self.args[i + 1])));
                i += 2;
            } else {
                lines.push(quote(a));
                i += 1;
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

    pub fn json(&mut self, f: &str, v: serde_json::Value) {
        self.opt(f, v.to_string());
    }
}

/// Builds the command for `domain` (the normalised `<domain>` element).
pub fn build(domain: &Element, ctx: &Context<'_>) -> Result<Command> {
    let p = XPath::root("domain");
    let name = domain.child("name").map(Element::text).unwrap_or_default();
    let binary = domain
        .child("devices")
        .and_then(|d| d.child("emulator"))
        .map(|e| PathBuf::from(e.text().trim()))
        .unwrap_or_else(|| ctx.caps.binary.clone());
    let dir = ctx.domain_dir.display().to_string();
    let env = vec![
        ("LC_ALL".into(), "C".into()),
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), dir.clone()),
        ("USER".into(), ctx.user.clone()),
        ("LOGNAME".into(), ctx.user.clone()),
        ("XDG_DATA_HOME".into(), format!("{dir}/.local/share")),
        ("XDG_CACHE_HOME".into(), format!("{dir}/.cache")),
        ("XDG_CONFIG_HOME".into(), format!("{dir}/.config")),
    ];

    let mut a = Args::default();
    a.opt("-name", format!("guest={},debug-threads=on", comma(&name)));
    a.flag("-S");
    a.json(
        "-object",
        serde_json::json!({
            "qom-type": "secret",
            "id": "masterKey0",
            "format": "raw",
            "file": master_key_path(&ctx.domain_dir),
        }),
    );
    machine::emit(&mut a, domain, ctx, &p)?;
    devices::emit(&mut a, domain, ctx, &p)?;
    a.opt(
        "-sandbox",
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    );
    a.opt("-msg", "timestamp=on");
    Ok(Command {
        env,
        binary,
        args: a.args,
    })
}

/// Where the domain's master key (for QEMU secrets) lives.
pub fn master_key_path(domain_dir: &Path) -> String {
    domain_dir.join("master-key.aes").display().to_string()
}
