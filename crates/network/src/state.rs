//! The networks of one driver instance and their files: persistent
//! definitions, autostart links and the live state of running networks,
//! all written atomically. A new process opening the same URI reads them
//! back and manages the running networks again.

use std::path::{Path, PathBuf};

use virtkit_core::files::{self, write_atomic};
use virtkit_core::network::{FormatOptions, NetworkDef};
use virtkit_core::{NetworkRef, Uuid};

use crate::error::{NetworkError, Result};
use crate::paths::Layout;

/// What a running network has on the host besides its definition.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    /// The running definition.
    pub def: NetworkDef,
    /// dnsmasq's PID, when one runs.
    pub dnsmasq: Option<u32>,
    /// Whether firewall rules were installed.
    pub firewall: bool,
}

/// One network: a persistent definition, a running instance, or both.
#[derive(Debug, Clone)]
pub(crate) struct NetObj {
    /// The persistent definition (`None`: transient).
    pub config: Option<NetworkDef>,
    /// The running instance.
    pub live: Option<Live>,
    /// Started with the driver.
    pub autostart: bool,
}

impl NetObj {
    /// The definition in effect: the running one, else the persistent one.
    pub fn current(&self) -> &NetworkDef {
        match (&self.live, &self.config) {
            (Some(l), _) => &l.def,
            (None, Some(c)) => c,
            // An object always has one of the two.
            (None, None) => unreachable!("network object without a definition"),
        }
    }

    pub fn name(&self) -> &str {
        self.current().name()
    }

    pub fn uuid(&self) -> Uuid {
        self.current().uuid().unwrap_or_default()
    }

    pub fn handle(&self) -> NetworkRef {
        NetworkRef {
            name: self.name().to_string(),
            uuid: self.uuid(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.live.is_some()
    }

    /// The bridge names this network claims (running and persistent).
    pub fn bridges(&self) -> Vec<String> {
        let mut v = Vec::new();
        for d in self.live.iter().map(|l| &l.def).chain(self.config.iter()) {
            if let Some(b) = d.bridge() {
                v.push(b.to_string());
            }
        }
        v
    }
}

/// The files of one network.
#[derive(Debug, Clone)]
pub(crate) struct NetFiles {
    pub config: PathBuf,
    pub autostart: PathBuf,
    pub live_xml: PathBuf,
    pub status: PathBuf,
    pub dnsmasq_conf: PathBuf,
    pub dnsmasq_pid: PathBuf,
    pub dnsmasq_log: PathBuf,
    pub hostsfile: PathBuf,
    pub addnhosts: PathBuf,
    pub leases: PathBuf,
}

impl NetFiles {
    pub fn new(layout: &Layout, name: &str) -> NetFiles {
        let (hosts, addn) =
            crate::dnsmasq::host_file_paths(&layout.dnsmasq_dir.display().to_string(), name);
        let d = |ext: &str| layout.dnsmasq_dir.join(format!("{name}.{ext}"));
        NetFiles {
            config: layout.config_dir.join(format!("{name}.xml")),
            autostart: layout.autostart_dir.join(format!("{name}.xml")),
            live_xml: layout.run_dir.join(format!("{name}.xml")),
            status: layout.run_dir.join(format!("{name}.status")),
            dnsmasq_conf: d("conf"),
            dnsmasq_pid: d("pid"),
            dnsmasq_log: d("log"),
            hostsfile: PathBuf::from(hosts),
            addnhosts: PathBuf::from(addn),
            leases: d("leases"),
        }
    }

    /// Every file that only exists while the network runs.
    pub fn runtime(&self) -> [&Path; 7] {
        [
            &self.live_xml,
            &self.status,
            &self.dnsmasq_conf,
            &self.dnsmasq_pid,
            &self.dnsmasq_log,
            &self.hostsfile,
            &self.addnhosts,
        ]
    }
}

pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| NetworkError::file("create directory", dir, e))
}

pub(crate) fn save(path: &Path, data: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        mkdir(d)?;
    }
    write_atomic(path, data.as_bytes()).map_err(|e| NetworkError::file("write", path, e))
}

pub(crate) fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Saves the persistent definition (as the user wrote it, with the values
/// virtkit generated: UUID, bridge name, MAC).
pub(crate) fn save_config(layout: &Layout, def: &NetworkDef) -> Result<()> {
    save(
        &NetFiles::new(layout, def.name()).config,
        &def.to_xml_as_defined(),
    )
}

/// Saves the live state of a running network.
pub(crate) fn save_live(layout: &Layout, live: &Live) -> Result<()> {
    let f = NetFiles::new(layout, live.def.name());
    save(&f.live_xml, &live.def.to_xml_as_defined())?;
    let mut status = String::new();
    if let Some(p) = live.dnsmasq {
        status.push_str(&format!("dnsmasq-pid={p}\n"));
    }
    status.push_str(&format!("firewall={}\n", live.firewall));
    save(&f.status, &status)
}

fn read_def(path: &Path) -> Result<NetworkDef> {
    let bytes = files::read_limited(path, files::MAX_XML_FILE)
        .map_err(|e| NetworkError::file("read", path, e))?;
    Ok(NetworkDef::parse_named(
        &bytes,
        &path.display().to_string(),
    )?)
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Reads every definition and live state of a layout. Unreadable files are
/// reported and skipped, so one bad file does not hide the other networks.
pub(crate) fn load(layout: &Layout) -> (Vec<NetObj>, Vec<String>) {
    let mut objs: Vec<NetObj> = Vec::new();
    let mut problems = Vec::new();
    for p in xml_files(&layout.config_dir) {
        match read_def(&p) {
            Ok(def) => {
                let autostart = NetFiles::new(layout, def.name()).autostart.exists();
                objs.push(NetObj {
                    config: Some(def),
                    live: None,
                    autostart,
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for p in xml_files(&layout.run_dir) {
        let def = match read_def(&p) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let f = NetFiles::new(layout, def.name());
        let status = std::fs::read_to_string(&f.status).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(str::to_string)
        };
        let live = Live {
            dnsmasq: field("dnsmasq-pid").and_then(|v| v.parse().ok()),
            firewall: field("firewall").as_deref() == Some("true"),
            def,
        };
        match objs.iter_mut().find(|o| o.name() == live.def.name()) {
            Some(o) => o.live = Some(live),
            None => objs.push(NetObj {
                config: None,
                live: Some(live),
                autostart: false,
            }),
        }
    }
    (objs, problems)
}

/// Sets or clears the autostart link of a network.
pub(crate) fn set_autostart(layout: &Layout, name: &str, on: bool) -> Result<()> {
    let f = NetFiles::new(layout, name);
    if on {
        mkdir(&layout.autostart_dir)?;
        if !f.autostart.exists() {
            std::os::unix::fs::symlink(&f.config, &f.autostart)
                .map_err(|e| NetworkError::file("create autostart link", &f.autostart, e))?;
        }
    } else {
        match std::fs::remove_file(&f.autostart) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetworkError::file("remove autostart link", &f.autostart, e)),
        }
    }
    Ok(())
}

/// The canonical XML of a definition.
pub(crate) fn canonical(def: &NetworkDef, inactive: bool) -> String {
    def.to_xml_canonical(&FormatOptions { inactive })
}
