//! virtkit's QEMU/KVM driver: `qemu:///system`, `qemu:///session` and
//! `qemu:///embed?root=DIR` (everything under DIR, no daemon: what tests
//! and embedding programs use).
//!
//! - [`caps`]: probing QEMU binaries once over QMP, cached on disk;
//!   `capabilities` and `domcapabilities` documents.
//! - [`argv`]: domain XML to QEMU's command line, in libvirt's form.
//! - [`qmp`]: a tolerant QMP client (unknown events never end the stream).
//! - [`process`]: QEMU processes watched through pidfds, also after a
//!   restart of the process that started them.
//! - `state`: definitions, job locks, lifecycle, supervision, re-attach.
//!
//! One process drives one instance at a time (a lock file under the run
//! directory); a later process opening the same URI finds the running
//! guests again, and guests that died meanwhile are shut off (crashed) with
//! an event.

mod agent;
pub mod argv;
pub mod caps;
pub mod firmware;
pub mod iotune;
mod monitor;
mod net;
pub mod paths;
pub mod process;
pub mod profile;
pub mod qmp;
mod state;
mod status;

use std::sync::{Arc, Mutex, Weak};

use virtkit_core::domain::DomainDef;
use virtkit_core::{
    BlockStats, Connection, CreateFlags, DefineFlags, DestroyFlags, DomainInfo, DomainOps,
    DomainRef, DomainState, Driver, Error, EventFilter, EventOps, EventStream, InterfaceStats,
    ListFlags, NodeInfo, OpenFlags, RebootFlags, Result, SecurityLabel, SecurityModel,
    ShutdownFlags, StatsGroups, TypedParams, UndefineFlags, Uri, Uuid, XmlFlags, async_trait,
};

use crate::paths::Layout;
use crate::state::QemuState;

/// The QEMU driver, registered at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct QemuDriver;

virtkit_core::register_driver!(QemuDriver);

/// Open instances of this process, one per layout, shared by connections.
static INSTANCES: Mutex<Vec<(Layout, Weak<QemuState>)>> = Mutex::new(Vec::new());

/// Held while an instance is looked up or created, so that two
/// connections opened at once share one instance instead of racing for its
/// lock file.
static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn instance(layout: Layout) -> Result<Arc<QemuState>> {
    let _opening = OPENING.lock().await;
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
    let s = QemuState::open(layout.clone()).await?;
    let mut list = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|(_, w)| w.strong_count() > 0);
    list.push((layout, Arc::downgrade(&s)));
    Ok(s)
}

#[async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["qemu"]
    }

    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        let layout = Layout::for_uri(uri)?;
        if layout.privileged {
            // SAFETY: geteuid has no preconditions.
            let euid = unsafe { libc::geteuid() };
            if euid != 0 {
                return Err(Error::denied(
                    "qemu:///system needs root; use qemu:///session or connect to virtkitd",
                ));
            }
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
        Ok(Arc::new(QemuConnection {
            state,
            networks,
            read_only,
        }))
    }
}

/// A connection to a QEMU driver instance.
#[derive(Debug)]
pub struct QemuConnection {
    state: Arc<QemuState>,
    /// The networks guests of this instance plug into.
    networks: Option<virtkit_network::NetworkConnection>,
    read_only: bool,
}

impl QemuConnection {
    fn writable(&self, api: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::denied(format!("read only access prevents {api}")));
        }
        Ok(())
    }

    /// The capabilities of the default emulator for `arch`.
    pub async fn emulator_caps(&self, arch: &str) -> Result<Arc<caps::QemuCaps>> {
        let bin = caps::default_emulator(arch)?;
        self.state.caps.get(&bin).await
    }
}

#[async_trait]
impl Connection for QemuConnection {
    fn driver(&self) -> &'static str {
        "qemu"
    }

    fn uri(&self) -> String {
        self.state.layout.uri.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn hypervisor_type(&self) -> Result<String> {
        Ok("QEMU".into())
    }

    async fn hypervisor_version(&self) -> Result<u64> {
        Ok(self.emulator_caps(std::env::consts::ARCH).await?.version)
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
        let c = self.emulator_caps(std::env::consts::ARCH).await?;
        Ok(caps::xml::capabilities(&[&c]))
    }

    async fn security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel {
            model: "none".into(),
            doi: "0".into(),
        })
    }

    /// The domain capabilities document (`virsh domcapabilities`).
    async fn domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<String> {
        let arch = arch.unwrap_or(std::env::consts::ARCH);
        let bin = match emulator {
            Some(e) => std::path::PathBuf::from(e),
            None => caps::default_emulator(arch)?,
        };
        let c = self.state.caps.get(&bin).await?;
        let virttype = virttype.unwrap_or(if c.kvm { "kvm" } else { "qemu" });
        let accel = if virttype == "kvm" { "kvm" } else { "tcg" };
        let machine = match machine {
            Some(m) => m.to_string(),
            None => c
                .default_machine(accel)
                .map(|m| m.name.clone())
                .unwrap_or_default(),
        };
        Ok(caps::xml::domain_capabilities(&c, virttype, &machine))
    }

    fn domains(&self) -> Result<&dyn DomainOps> {
        Ok(self)
    }

    fn networks(&self) -> Result<&dyn virtkit_core::NetworkOps> {
        match &self.networks {
            Some(n) => Ok(n),
            None => Err(Error::unsupported("qemu", "networks")),
        }
    }

    fn events(&self) -> Result<&dyn EventOps> {
        Ok(self)
    }
}

#[async_trait]
impl DomainOps for QemuConnection {
    fn driver(&self) -> &'static str {
        "qemu"
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
        self.state.define(DomainDef::parse(xml)?).await
    }

    async fn create_xml(&self, xml: &str, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreateXML")?;
        self.state
            .create_transient(DomainDef::parse(xml)?, flags)
            .await
    }

    async fn undefine(&self, dom: &DomainRef, flags: UndefineFlags) -> Result<()> {
        self.writable("virDomainUndefine")?;
        self.state.undefine(dom, flags).await
    }

    async fn create(&self, dom: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreate")?;
        let unsupported =
            flags.bits() & !(CreateFlags::PAUSED.bits() | CreateFlags::FORCE_BOOT.bits());
        if unsupported != 0 {
            return Err(Error::invalid_arg(format!(
                "unsupported flags (0x{unsupported:x}) for starting a QEMU domain"
            )));
        }
        self.state.start(dom, flags).await
    }

    async fn shutdown(&self, dom: &DomainRef, flags: ShutdownFlags) -> Result<()> {
        self.writable("virDomainShutdown")?;
        if flags
            .intersects(ShutdownFlags::INITCTL | ShutdownFlags::SIGNAL | ShutdownFlags::PARAVIRT)
        {
            return Err(Error::new(
                virtkit_core::ErrorKind::ArgumentUnsupported,
                "QEMU guests shut down through ACPI or the guest agent (modes acpi, agent)",
            ));
        }
        self.state.shutdown(dom, flags).await
    }

    async fn reboot(&self, dom: &DomainRef, _flags: RebootFlags) -> Result<()> {
        self.writable("virDomainReboot")?;
        self.state.reboot(dom).await
    }

    async fn reset(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainReset")?;
        self.state.reset(dom).await
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
        self.state.info(dom).await
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
        self.state.stats(dom, groups).await
    }

    async fn block_stats(&self, dom: &DomainRef, disk: &str) -> Result<BlockStats> {
        monitor::block_stats(&*self.state.doms.running(dom)?, disk).await
    }

    async fn interface_stats(&self, dom: &DomainRef, iface: &str) -> Result<InterfaceStats> {
        monitor::interface_stats(&*self.state.doms.running(dom)?, iface)
    }

    async fn block_iotune(&self, dom: &DomainRef, disk: &str) -> Result<TypedParams> {
        self.state.block_iotune(dom, disk).await
    }

    async fn set_block_iotune(
        &self,
        dom: &DomainRef,
        disk: &str,
        params: &TypedParams,
    ) -> Result<()> {
        self.writable("virDomainSetBlockIoTune")?;
        self.state.set_block_iotune(dom, disk, params).await
    }

    async fn console_path(&self, dom: &DomainRef, dev: Option<&str>) -> Result<std::path::PathBuf> {
        self.writable("virDomainOpenConsole")?;
        monitor::console_path(&*self.state.doms.running(dom)?, dev).await
    }

    async fn screenshot(&self, dom: &DomainRef, screen: u32) -> Result<(Vec<u8>, String)> {
        monitor::screenshot(&*self.state.doms.running(dom)?, screen).await
    }
}

impl EventOps for QemuConnection {
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        Ok(self.state.events.subscribe(filter))
    }
}
