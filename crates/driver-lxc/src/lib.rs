//! virtkit's LXC driver: system containers from domain XML
//! (`<domain type='lxc'>`, `<os><type>exe</type><init>...`), at
//! `lxc:///system` (also `lxc:///`) and `lxc:///embed?root=DIR` (everything
//! under DIR: what tests and embedding programs use).
//!
//! - [`def`]: the container subset of domain XML, checked ([`def::LxcDef`]);
//!   [`profile`]: libvirt's LXC defaults in canonical XML.
//! - [`supervisor`]: one supervisor process per container (virtkit's
//!   `libvirt_lxc`), started by executing the driver's own program again; it
//!   clones the container into new namespaces, relays the console and
//!   reaps init. `container` is what runs inside before init is exec'd.
//! - [`cgroup`]: limits, freezing, statistics and cleanup on cgroup v1 and
//!   v2, chosen per controller at run time.
//! - `net`: veth pairs on bridges or virtual networks (the network driver's
//!   ports), moved into the container.
//! - [`native`]: lxc-tools configuration to domain XML
//!   (`domxml-from-native lxc-tools`).
//! - `state`: definitions, job locks, lifecycle, supervision, re-attach.
//!
//! One process drives one instance at a time (a lock file under the run
//! directory); a later process opening the same URI finds the running
//! containers again, and those that stopped meanwhile are shut off with the
//! reason their supervisor recorded.
//!
//! # Behaviour worth knowing
//! - Lifecycle as libvirt's LXC driver: `shutdown` writes a runlevel
//!   request into sysvinit's initctl FIFO and/or sends SIGTERM to init
//!   (modes `initctl`, `signal`; none: initctl, else the signal); `reboot`
//!   the same with runlevel 6 / SIGHUP. A container whose init calls
//!   reboot(2) ends with SIGHUP and is started again (`on_reboot`
//!   restart) while a driver process watches it; power-off ends it with
//!   SIGINT (shut off, reason shutdown). init killed by another signal is
//!   shut off as crashed; a supervisor that died is shut off as failed.
//! - `destroy` kills every process of the container's cgroups (a frozen
//!   container is thawed so the kill lands); `suspend`/`resume` freeze the
//!   cgroups (v1 freezer or v2 `cgroup.freeze`).
//! - `domstats`: `cpu.*` and `balloon.current`/`balloon.maximum` come from
//!   the cgroups, `net.*` from the container's own network namespace. Two
//!   virtkit additions: `balloon.oom_kills` (processes the kernel killed
//!   for exceeding the memory limit) and `state.processes` (the pids
//!   controller's count).
//! - A process limit, which domain XML has no element for, is read from
//!   `<metadata><vk:limits xmlns:vk='urn:virtkit:lxc:1'><vk:pids max='N'/>`.
//! - cgroups go below the calling process's own cgroup on v1 (next to it on
//!   v2), in `<resource><partition>` (`/machine` by default), one scope per
//!   container (`NAME.virtkit-lxc`; embedded instances add a hash of their
//!   root). No systemd-machined registration.
//! - Not supported, refused when defined: `<hostdev>`, filesystems of type
//!   `file`, `block` or `volume`, interfaces other than `network`, `bridge`
//!   and `ethernet`, consoles other than `pty`. The v1 device policy
//!   (null, zero, full, random, urandom, tty, console, ptmx, ptys) has no v2
//!   equivalent here (v2 needs BPF programs).
//!
//! # Programs that use this driver
//! The supervisor is this crate's code in a fresh copy of the running
//! program (`/proc/self/exe`, recognised before `main` by a constructor).
//! A program that cannot be executed that way (an interpreter loading a
//! library) sets `VIRTKIT_LXC_SUPERVISOR` to any program linking this
//! crate, such as the `virtkit` CLI.

pub mod cgroup;
mod container;
pub mod def;
pub mod native;
mod net;
pub mod paths;
mod process;
pub mod profile;
mod state;
mod status;
pub mod supervisor;
mod sys;

use std::sync::{Arc, Mutex, Weak};

use virtkit_core::domain::DomainDef;
use virtkit_core::{
    Connection, ContainerEntry, CreateFlags, DefineFlags, DestroyFlags, DomainInfo, DomainOps,
    DomainRef, DomainState, Driver, Error, ErrorKind, EventFilter, EventOps, EventStream,
    InterfaceStats, ListFlags, NodeInfo, OpenFlags, RebootFlags, Result, SecurityLabel,
    SecurityModel, ShutdownFlags, StatsGroups, TypedParams, UndefineFlags, Uri, Uuid, XmlFlags,
    async_trait,
};

use crate::paths::Layout;
use crate::state::LxcState;

/// The LXC driver, registered at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct LxcDriver;

virtkit_core::register_driver!(LxcDriver);

/// Open instances of this process, one per layout, shared by connections.
static INSTANCES: Mutex<Vec<(Layout, Weak<LxcState>)>> = Mutex::new(Vec::new());

async fn instance(layout: Layout) -> Result<Arc<LxcState>> {
    {
        let list = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = list
            .iter()
            .find(|(l, _)| *l == layout)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(s);
        }
    }
    let s = LxcState::open(layout.clone()).await?;
    let mut list = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|(_, w)| w.strong_count() > 0);
    list.push((layout, Arc::downgrade(&s)));
    Ok(s)
}

#[async_trait]
impl Driver for LxcDriver {
    fn name(&self) -> &'static str {
        "lxc"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["lxc"]
    }

    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        supervisor::ensure_linked();
        let layout = Layout::for_uri(uri)?;
        if layout.privileged && sys::geteuid() != 0 {
            return Err(Error::denied(
                "lxc:///system needs root; use lxc:///embed?root=DIR to define containers \
                 unprivileged, or connect to virtkitd",
            ));
        }
        let state = instance(layout).await?;
        let read_only = flags.contains(OpenFlags::READ_ONLY);
        let networks = match &state.networks {
            Some(_) => virtkit_network::NetworkConnection::open_layout(
                state.layout.network.clone(),
                read_only,
            )
            .await
            .ok(),
            None => None,
        };
        Ok(Arc::new(LxcConnection {
            state,
            networks,
            read_only,
        }))
    }
}

/// A connection to an LXC driver instance.
#[derive(Debug)]
pub struct LxcConnection {
    state: Arc<LxcState>,
    /// The networks containers of this instance plug into.
    networks: Option<virtkit_network::NetworkConnection>,
    read_only: bool,
}

impl LxcConnection {
    fn writable(&self, api: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::denied(format!("read only access prevents {api}")));
        }
        Ok(())
    }
}

/// The running kernel's version as major*1,000,000 + minor*1,000 + micro
/// (libvirt's LXC driver reports the kernel as its hypervisor version).
fn kernel_version() -> u64 {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut n = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().unwrap_or(0));
    let (a, b, c) = (
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
    );
    a * 1_000_000 + b * 1_000 + c
}

#[async_trait]
impl Connection for LxcConnection {
    fn driver(&self) -> &'static str {
        "lxc"
    }

    fn uri(&self) -> String {
        self.state.layout.uri.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn hypervisor_type(&self) -> Result<String> {
        Ok("LXC".into())
    }

    async fn hypervisor_version(&self) -> Result<u64> {
        Ok(kernel_version())
    }

    async fn hostname(&self) -> Result<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .map_err(|e| Error::system("cannot read the host name", &e))
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        virtkit_core::host::node_info()
    }

    async fn capabilities(&self) -> Result<String> {
        let arch = std::env::consts::ARCH;
        Ok(format!(
            "<capabilities>\n\n  <host>\n    <uuid>{}</uuid>\n    <cpu>\n      <arch>{arch}</arch>\n    </cpu>\n  </host>\n\n  <guest>\n    <os_type>exe</os_type>\n    <arch name='{arch}'>\n      <wordsize>64</wordsize>\n      <emulator>{}</emulator>\n      <domain type='lxc'/>\n    </arch>\n  </guest>\n\n</capabilities>\n",
            virtkit_core::host::host_uuid(),
            profile::LXC_EMULATOR
        ))
    }

    async fn security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel {
            model: "none".into(),
            doi: "0".into(),
        })
    }

    async fn domain_xml_from_native(&self, format: &str, config: &str) -> Result<String> {
        if format != native::FORMAT {
            return Err(Error::invalid_arg(format!(
                "unsupported config type {format} (the LXC driver converts '{}')",
                native::FORMAT
            )));
        }
        native::to_xml(config)
    }

    fn domains(&self) -> Result<&dyn DomainOps> {
        Ok(self)
    }

    fn networks(&self) -> Result<&dyn virtkit_core::NetworkOps> {
        match &self.networks {
            Some(n) => Ok(n),
            None => Err(Error::unsupported("lxc", "networks")),
        }
    }

    fn events(&self) -> Result<&dyn EventOps> {
        Ok(self)
    }
}

#[async_trait]
impl DomainOps for LxcConnection {
    fn driver(&self) -> &'static str {
        "lxc"
    }

    async fn list_all(&self, flags: ListFlags) -> Result<Vec<DomainRef>> {
        Ok(self.state.doms.list(flags))
    }

    async fn lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        self.state.doms.lookup_name(name)
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        self.state.doms.lookup_uuid(uuid)
    }

    async fn lookup_by_id(&self, id: u32) -> Result<DomainRef> {
        self.state.doms.lookup_id(id)
    }

    async fn define_xml(&self, xml: &str, _flags: DefineFlags) -> Result<DomainRef> {
        self.writable("virDomainDefineXML")?;
        self.state.define(DomainDef::parse(xml)?)
    }

    async fn create_xml(&self, xml: &str, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreateXML")?;
        check_create_flags(flags)?;
        self.state
            .create_transient(DomainDef::parse(xml)?, flags)
            .await
    }

    async fn undefine(&self, dom: &DomainRef, _flags: UndefineFlags) -> Result<()> {
        self.writable("virDomainUndefine")?;
        self.state.undefine(dom).await
    }

    async fn create(&self, dom: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreate")?;
        check_create_flags(flags)?;
        self.state.start(dom, flags).await
    }

    async fn shutdown(&self, dom: &DomainRef, flags: ShutdownFlags) -> Result<()> {
        self.writable("virDomainShutdown")?;
        if flags.intersects(
            ShutdownFlags::ACPI_POWER_BTN | ShutdownFlags::GUEST_AGENT | ShutdownFlags::PARAVIRT,
        ) {
            return Err(Error::new(
                ErrorKind::ArgumentUnsupported,
                "containers shut down through their init: use mode 'initctl' or 'signal'",
            ));
        }
        self.state.shutdown(dom, flags).await
    }

    async fn reboot(&self, dom: &DomainRef, flags: RebootFlags) -> Result<()> {
        self.writable("virDomainReboot")?;
        if flags.intersects(
            RebootFlags::ACPI_POWER_BTN | RebootFlags::GUEST_AGENT | RebootFlags::PARAVIRT,
        ) {
            return Err(Error::new(
                ErrorKind::ArgumentUnsupported,
                "containers reboot through their init: use mode 'initctl' or 'signal'",
            ));
        }
        self.state.reboot(dom, flags).await
    }

    async fn destroy(&self, dom: &DomainRef, flags: DestroyFlags) -> Result<()> {
        self.writable("virDomainDestroy")?;
        self.state
            .destroy(dom, flags.contains(DestroyFlags::GRACEFUL))
            .await
    }

    async fn suspend(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainSuspend")?;
        self.state.suspend(dom).await
    }

    async fn resume(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainResume")?;
        self.state.resume(dom).await
    }

    async fn state(&self, dom: &DomainRef) -> Result<(DomainState, i32)> {
        self.state.doms.state(dom)
    }

    async fn info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        self.state.info(dom)
    }

    async fn xml_desc(&self, dom: &DomainRef, flags: XmlFlags) -> Result<String> {
        if flags.contains(XmlFlags::SECURE) && self.read_only {
            return Err(Error::denied("virDomainGetXMLDesc with secure flag"));
        }
        self.state.xml(dom, flags)
    }

    async fn autostart(&self, dom: &DomainRef) -> Result<bool> {
        Ok(self.state.doms.get(dom)?.lock().autostart)
    }

    async fn set_autostart(&self, dom: &DomainRef, on: bool) -> Result<()> {
        self.writable("virDomainSetAutostart")?;
        self.state.set_autostart(dom, on)
    }

    async fn is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        Ok(self.state.doms.get(dom)?.lock().persistent)
    }

    async fn os_type(&self, dom: &DomainRef) -> Result<String> {
        Ok(self.state.doms.get(dom)?.lock().def.os_type())
    }

    async fn security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        self.state.doms.get(dom)?;
        Ok(SecurityLabel::default())
    }

    async fn stats(&self, dom: &DomainRef, groups: StatsGroups) -> Result<TypedParams> {
        self.state.stats(dom, groups)
    }

    async fn interface_stats(&self, dom: &DomainRef, iface: &str) -> Result<InterfaceStats> {
        self.state.interface_stats(dom, iface)
    }

    async fn console_path(&self, dom: &DomainRef, dev: Option<&str>) -> Result<std::path::PathBuf> {
        self.writable("virDomainOpenConsole")?;
        self.state.console_path(dom, dev)
    }

    async fn lxc_open_namespace(&self, dom: &DomainRef) -> Result<ContainerEntry> {
        self.writable("virDomainLxcOpenNamespace")?;
        self.state.entry(dom)
    }
}

fn check_create_flags(flags: CreateFlags) -> Result<()> {
    let unsupported = flags.bits() & !(CreateFlags::PAUSED.bits() | CreateFlags::FORCE_BOOT.bits());
    if unsupported != 0 {
        return Err(Error::invalid_arg(format!(
            "unsupported flags (0x{unsupported:x}) for starting a container (supported: paused)"
        )));
    }
    Ok(())
}

impl EventOps for LxcConnection {
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        Ok(self.state.events.subscribe(filter))
    }
}
