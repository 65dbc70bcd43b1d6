//! What a QEMU binary can do: version, machine types per accelerator, CPU
//! models, device types and libvirt-style capability flags.
//!
//! Capabilities come from probing the binary once over QMP ([`probe`]) and
//! are cached on disk, keyed by the binary's path, size and modification
//! time ([`cache`]). For golden tests they can also be read from libvirt's
//! recorded capability files ([`QemuCaps::from_libvirt_xml`]).

pub mod cache;
pub mod probe;
pub mod xml;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use virtkit_core::xml::{self as vxml, XPath};
use virtkit_core::{Error, Result};

/// A machine type for one accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Full name, e.g. `pc-i440fx-8.0`.
    pub name: String,
    /// Short alias, e.g. `pc`, `q35`.
    pub alias: Option<String>,
    /// The binary's default machine.
    pub default: bool,
    /// Most vCPUs it supports.
    pub max_cpus: u32,
    /// QOM type of its default CPU (`qemu64-x86_64-cpu`).
    pub default_cpu: Option<String>,
    /// Id of the default RAM backend (`pc.ram`).
    pub default_ram_id: Option<String>,
    /// Deprecated by QEMU.
    pub deprecated: bool,
}

/// A CPU model for one accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuModel {
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Model name, e.g. `Skylake-Client`.
    pub name: String,
    /// Whether it can run on this host with this accelerator.
    pub usable: bool,
}

/// Capabilities of one QEMU binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuCaps {
    /// The binary.
    pub binary: PathBuf,
    /// Version as major*1,000,000 + minor*1,000 + micro.
    pub version: u64,
    /// Distribution package string.
    pub package: String,
    /// Guest architecture of the binary (`x86_64`).
    pub arch: String,
    /// libvirt-style capability flags plus the QOM device types the binary has.
    pub flags: BTreeSet<String>,
    /// Machine types, per accelerator.
    pub machines: Vec<Machine>,
    /// CPU models, per accelerator.
    pub cpu_models: Vec<CpuModel>,
    /// Whether KVM was usable when probed.
    pub kvm: bool,
}

impl QemuCaps {
    /// Whether a flag (or device type) is present.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }

    /// The machine a name or alias stands for, for `accel`.
    pub fn machine(&self, accel: &str, name: &str) -> Option<&Machine> {
        self.machines
            .iter()
            .find(|m| m.accel == accel && (m.name == name || m.alias.as_deref() == Some(name)))
    }

    /// The binary's default machine for `accel`.
    pub fn default_machine(&self, accel: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.accel == accel && m.default)
    }

    /// Version as `major.minor.micro`.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            self.version / 1_000_000,
            (self.version / 1000) % 1000,
            self.version % 1000
        )
    }

    /// Reads one of libvirt's recorded capability files
    /// (`qemucapabilitiesdata/caps_*.xml`), as the golden tests do.
    pub fn from_libvirt_xml(text: &str, source: &str) -> Result<QemuCaps> {
        let doc = vxml::parse_with(
            text.as_bytes(),
            &vxml::ParseOptions {
                source: Some(source.to_string()),
                ..Default::default()
            },
        )?;
        let root = &doc.root;
        let p = XPath::root("qemuCaps");
        if root.name() != "qemuCaps" {
            return Err(doc.error_at(root, &p, "expected a <qemuCaps> document"));
        }
        let text_of = |n: &str| root.child(n).map(|e| e.text().trim().to_string());
        let version = text_of("version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| doc.error_at(root, &p, "missing or bad <version>"))?;
        let mut caps = QemuCaps {
            binary: text_of("emulator").unwrap_or_default().into(),
            version,
            package: text_of("package").unwrap_or_default(),
            arch: text_of("arch").unwrap_or_default(),
            flags: BTreeSet::new(),
            machines: Vec::new(),
            cpu_models: Vec::new(),
            kvm: true,
        };
        for el in root.elements() {
            let a = |n: &str| el.attr(n).map(|v| v.into_owned());
            match el.name() {
                "flag" => {
                    if let Some(n) = a("name") {
                        caps.flags.insert(n);
                    }
                }
                "machine" => caps.machines.push(Machine {
                    accel: a("type").unwrap_or_default(),
                    name: a("name").unwrap_or_default(),
                    alias: a("alias"),
                    default: a("default").as_deref() == Some("yes"),
                    max_cpus: a("maxCpus").and_then(|v| v.parse().ok()).unwrap_or(1),
                    default_cpu: a("defaultCPU"),
                    default_ram_id: a("defaultRAMid"),
                    deprecated: a("deprecated").as_deref() == Some("yes"),
                }),
                "cpu" => caps.cpu_models.push(CpuModel {
                    accel: a("type").unwrap_or_default(),
                    name: a("name").unwrap_or_default(),
                    usable: a("usable").as_deref() == Some("yes"),
                }),
                _ => {}
            }
        }
        Ok(caps)
    }
}

/// Whether `/dev/kvm` can be opened for reading and writing.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The emulator used when a definition names none: the first of the usual
/// binaries for `arch` found on `PATH` or in `/usr/bin`.
pub fn default_emulator(arch: &str) -> Result<PathBuf> {
    let name = format!("qemu-system-{arch}");
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/bin".into());
    dirs.iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(
                virtkit_core::ErrorKind::OperationFailed,
                format!(
                    "no {name} found on PATH or in /usr/bin; install QEMU \
                     (scripts/install-test-deps qemu) or give <emulator>"
                ),
            )
        })
}
