//! The driver's state for one URI: definitions on disk, running domains
//! with their QEMU processes, one job lock per domain, lifecycle events.
//!
//! Locking: the domain table ([`virtkit_core::domain::table`]) is held only
//! for lookups. Each domain has a job lock (a tokio mutex, taken with a
//! deadline) that serialises changes, and a small state mutex that is never
//! held across an await, so queries never wait for a job.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use virtkit_core::domain::table::{self, DomainTable, InstanceLock, LOCK_WAIT, LiveDomain};
use virtkit_core::domain::{DomainDef, FormatOptions};
use virtkit_core::event::detail;
use virtkit_core::types::{paused_reason, running_reason, shutoff_reason};
use virtkit_core::{
    CreateFlags, DomainInfo, DomainRef, DomainState, Error, ErrorKind, EventBus, LifecycleEvent,
    LifecycleKind, Result, StatsGroups, TypedParams, TypedValue, UndefineFlags, XmlFlags, files,
};

use crate::argv::{self, Accel};
use crate::caps::cache::CapsCache;
use crate::caps::{self, QemuCaps};
use crate::iotune::IoTune;
use crate::paths::Layout;
use crate::process::{Launch, QemuProcess};
use crate::profile::QemuProfile;
use crate::qmp::{Qmp, QmpEvent};
use crate::status::Status;

/// How long QEMU gets to bring its monitor up.
const MONITOR_DEADLINE: Duration = Duration::from_secs(30);
/// Deadline for ordinary monitor commands.
const QMP_DEADLINE: Duration = Duration::from_secs(30);
/// SIGTERM grace before SIGKILL on destroy.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// What the driver is doing to a domain, so that the events QEMU sends in
/// answer are not taken for something the guest did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Expect {
    stop: bool,
    resume: bool,
    destroy: bool,
    reboot: bool,
}

/// A running guest.
#[derive(Debug)]
pub(crate) struct Live {
    pub id: u32,
    pub process: QemuProcess,
    pub qmp: Arc<Qmp>,
    pub run_dir: PathBuf,
    pub live_def: DomainDef,
    pub taps: Vec<String>,
    /// Ports on virtual networks, given back when the guest stops.
    pub ports: Vec<virtkit_network::NetworkPort>,
}

impl LiveDomain for Live {
    fn id(&self) -> u32 {
        self.id
    }

    fn def(&self) -> &DomainDef {
        &self.live_def
    }
}

/// One domain.
pub(crate) type DomainObj = table::DomainObj<Live, Expect>;

/// The state of one driver instance (one URI's directories).
#[derive(Debug)]
pub(crate) struct QemuState {
    pub layout: Layout,
    pub caps: CapsCache,
    pub events: EventBus,
    /// The domains.
    pub doms: DomainTable<Live, Expect>,
    next_id: Mutex<u32>,
    /// The network driver instance guests plug into (`None` when it could
    /// not be opened; `type='network'` interfaces then fail clearly).
    pub networks: Option<Arc<virtkit_network::Service>>,
    /// The host network handle, opened when a guest first needs a tap.
    netdev: tokio::sync::OnceCell<virtkit_netdev::Netdev>,
    /// Set when the instance goes away: supervisors end.
    closing: tokio::sync::watch::Sender<bool>,
    _lock: File,
}

impl Drop for QemuState {
    fn drop(&mut self) {
        let _ = self.closing.send(true);
    }
}

fn qmp_err(e: crate::qmp::QmpError) -> Error {
    Error::new(ErrorKind::OperationFailed, e.to_string())
}

impl QemuState {
    /// Opens the instance: definitions are loaded, running guests found
    /// again, autostart domains started.
    pub async fn open(layout: Layout) -> Result<Arc<QemuState>> {
        layout.create()?;
        // The directories belong to one process at a time, so that two
        // processes never drive the same guests. Another short virtkit
        // command (or this process's previous instance, still tearing down)
        // lets go soon: wait for it, up to LOCK_WAIT. A daemon keeps them:
        // say so at once.
        let lock = InstanceLock {
            uri: &layout.uri,
            path: &layout.lock_file(),
            remote: "qemu+unix://",
            show_os_error: false,
        }
        .take(LOCK_WAIT)
        .await?;
        let networks = match virtkit_network::Service::open(layout.network.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "the network driver is not available to this QEMU instance");
                None
            }
        };
        let state = Arc::new(QemuState {
            networks,
            caps: CapsCache::new(layout.state.join("caps")),
            layout,
            events: EventBus::default(),
            doms: DomainTable::new(),
            next_id: Mutex::new(1),
            netdev: tokio::sync::OnceCell::new(),
            closing: tokio::sync::watch::channel(false).0,
            _lock: lock,
        });
        state.load_definitions()?;
        state.reattach_all().await;
        state.autostart_all().await;
        Ok(state)
    }

    fn load_definitions(&self) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(&self.layout.config) else {
            return Ok(());
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let bytes = match files::read_limited(&path, files::MAX_XML_FILE) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable definition");
                    continue;
                }
            };
            match DomainDef::parse_named(&bytes, &path.display().to_string()) {
                Ok(def) => {
                    let dom = DomainObj::new(def, true);
                    dom.lock().autostart = self.layout.autostart_dir().join(&dom.name).exists();
                    self.doms.insert(dom);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping invalid definition")
                }
            }
        }
        Ok(())
    }

    /// Finds guests that were running when the previous process exited.
    async fn reattach_all(self: &Arc<Self>) {
        let Ok(rd) = std::fs::read_dir(&self.layout.run) else {
            return;
        };
        for entry in rd.flatten() {
            let status_path = entry.path().join("status.xml");
            let Ok(text) = std::fs::read_to_string(&status_path) else {
                continue;
            };
            let status = match Status::parse(&text, &status_path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a damaged status file");
                    continue;
                }
            };
            let Ok(live_def) = status.live_def() else {
                continue;
            };
            let uuid = live_def.uuid().unwrap_or_default();
            let dom = self
                .doms
                .get_or_insert_with(uuid, || DomainObj::new(live_def.clone(), false));
            {
                let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
                *n = (*n).max(status.id + 1);
            }
            let run_dir = entry.path();
            match QemuProcess::attach(status.pid, status.start_time) {
                Some(process) => match Qmp::connect(&status.monitor, MONITOR_DEADLINE).await {
                    Ok((qmp, _)) => {
                        let ports = match &self.networks {
                            Some(svc) => {
                                crate::net::reclaim_ports(svc, live_def.root(), &dom.name).await
                            }
                            None => Vec::new(),
                        };
                        let live = Arc::new(Live {
                            id: status.id,
                            process,
                            qmp: qmp.clone(),
                            run_dir,
                            live_def,
                            taps: status.taps.clone(),
                            ports,
                        });
                        {
                            let mut i = dom.lock();
                            i.state = status.state;
                            i.reason = status.reason;
                            i.live = Some(live.clone());
                        }
                        self.sync_run_state(&dom, &live).await;
                        self.supervise(dom.clone(), live);
                    }
                    Err(e) => {
                        tracing::warn!(domain = %dom.name, error = %e, "cannot reach the monitor of a running guest; stopping it");
                        let _ = process.terminate(TERM_GRACE, true).await;
                        self.finish_stop(
                            &dom,
                            &run_dir,
                            &status.taps,
                            shutoff_reason::CRASHED,
                            detail::STOPPED_FAILED,
                        );
                    }
                },
                None => {
                    // It died while no virtkit process watched it.
                    {
                        let mut i = dom.lock();
                        i.state = status.state;
                    }
                    self.finish_stop(
                        &dom,
                        &run_dir,
                        &status.taps,
                        shutoff_reason::CRASHED,
                        detail::STOPPED_FAILED,
                    );
                }
            }
        }
    }

    /// After re-attaching: a guest that shut down while nobody watched is
    /// finished now; a paused or running one keeps its state.
    async fn sync_run_state(self: &Arc<Self>, dom: &Arc<DomainObj>, live: &Arc<Live>) {
        let status = live
            .qmp
            .execute(&qapi::qmp::query_status {}, QMP_DEADLINE)
            .await;
        if let Ok(s) = status {
            match s.status {
                qapi::qmp::RunState::shutdown | qapi::qmp::RunState::guest_panicked => {
                    let _ = live.process.terminate(TERM_GRACE, true).await;
                }
                qapi::qmp::RunState::paused if dom.lock().state == DomainState::Running => {
                    let mut i = dom.lock();
                    i.state = DomainState::Paused;
                    i.reason = paused_reason::UNKNOWN;
                }
                qapi::qmp::RunState::running if dom.lock().state == DomainState::Paused => {
                    let mut i = dom.lock();
                    i.state = DomainState::Running;
                    i.reason = running_reason::UNPAUSED;
                }
                _ => {}
            }
        }
    }

    async fn autostart_all(self: &Arc<Self>) {
        for d in self.doms.to_autostart() {
            if let Err(e) = self.start(&d.handle(), CreateFlags::empty()).await {
                tracing::warn!(domain = %d.name, error = %e, "autostart failed");
            }
        }
    }

    pub fn emit(&self, dom: DomainRef, kind: LifecycleKind, detail: i32) {
        self.events.emit(LifecycleEvent::new(dom, kind, detail));
    }

    // ---- queries ----

    pub async fn info(&self, d: &DomainRef) -> Result<DomainInfo> {
        let dom = self.doms.get(d)?;
        let (state, max, cur, vcpus, live) = {
            let i = dom.lock();
            let def = i.current_def();
            (
                i.state,
                def.memory_kib(),
                def.current_memory_kib(),
                def.vcpus(),
                i.live.clone(),
            )
        };
        let cpu_time_ns = live.map_or(0, |l| {
            let (u, s) = crate::monitor::task_cpu_ns(&format!("/proc/{}/stat", l.process.pid()));
            u + s
        });
        Ok(DomainInfo {
            state,
            max_mem_kib: max,
            memory_kib: cur,
            nr_virt_cpu: vcpus,
            cpu_time_ns,
        })
    }

    pub fn xml(&self, d: &DomainRef, flags: XmlFlags) -> Result<String> {
        Ok(self.doms.get(d)?.lock().xml(&QemuProfile, flags))
    }

    // ---- definitions ----

    async fn check_def(&self, def: &DomainDef) -> Result<()> {
        let ty = def.domain_type();
        if ty != "qemu" && ty != "kvm" {
            return Err(Error::new(
                ErrorKind::ConfigUnsupported,
                format!(
                    "unsupported configuration: domain type '{ty}' is not handled by the QEMU driver (use 'kvm' or 'qemu')"
                ),
            ));
        }
        if def.os_type() != "hvm" {
            return Err(Error::new(
                ErrorKind::ConfigUnsupported,
                format!(
                    "OS type '{}' is not supported by the QEMU driver (use hvm)",
                    def.os_type()
                ),
            ));
        }
        // Anything argv cannot express, or the emulator lacks, is reported
        // now, not at start: with the emulator's capabilities (probed once,
        // then cached), as libvirt checks definitions against its
        // capabilities.
        let mut domain = def.normalised(&QemuProfile);
        let binary = emulator_of(&domain)?;
        let caps = self.caps.get(&binary).await.map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "cannot use emulator '{}' (/domain/devices/emulator): {e}",
                    binary.display()
                ),
            )
        })?;
        let accel = if def.domain_type() == "kvm" {
            Accel::Kvm
        } else {
            Accel::Tcg
        };
        // Firmware is chosen at start (descriptors may be installed later);
        // here it is chosen if it can be, to check the rest of the line.
        if self.fill_firmware(&mut domain, &caps, accel).is_err()
            && let Some(os) = domain.child_mut("os")
        {
            os.remove_attr("firmware");
        }
        let ctx = argv_context(&caps, accel, Path::new("/nonexistent"), &domain);
        argv::build(&domain, &ctx).map(|_| ())
    }

    /// The UEFI variable store of a definition: its `<nvram>`, or the one
    /// firmware auto-selection gives it.
    fn nvram_of(&self, def: &DomainDef) -> Option<PathBuf> {
        let os = def.root().child("os")?;
        if let Some(n) = os.child("nvram") {
            let t = n.text();
            let t = t.trim();
            return (!t.is_empty()).then(|| PathBuf::from(t));
        }
        (os.attr("firmware").as_deref() == Some("efi")).then(|| {
            self.layout
                .state
                .join("nvram")
                .join(format!("{}_VARS.fd", def.name()))
        })
    }

    /// Resolves `<os firmware='efi'|'bios'>` to images from the host's
    /// firmware descriptors (the session driver also reads the user's),
    /// with variable stores under the driver's state directory.
    fn fill_firmware(
        &self,
        domain: &mut virtkit_core::xml::Element,
        caps: &QemuCaps,
        accel: Accel,
    ) -> Result<()> {
        if domain
            .child("os")
            .is_none_or(|o| o.attr("firmware").is_none())
        {
            return Ok(());
        }
        let user = (self.layout.uri == "qemu:///session")
            .then(|| std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from))
            .flatten()
            .or_else(|| {
                (self.layout.uri == "qemu:///session")
                    .then(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .flatten()
            });
        let dirs = crate::firmware::FirmwareDirs::host(user.as_deref());
        let asked = domain
            .child("os")
            .and_then(|o| o.child("type"))
            .and_then(|t| t.attr("machine"))
            .map(|m| m.into_owned());
        let machine = match &asked {
            Some(m) => caps.machine(accel.name(), m).map(|m| m.name.clone()),
            None => caps.default_machine(accel.name()).map(|m| m.name.clone()),
        }
        .or(asked)
        .unwrap_or_default();
        crate::firmware::fill(
            domain,
            &crate::firmware::load(&dirs),
            &machine,
            &self.layout.state.join("nvram"),
        )
    }

    fn save_def(&self, def: &DomainDef) -> Result<()> {
        let path = self.layout.definition(&def.name());
        files::write_atomic(&path, def.to_xml_as_defined().as_bytes())
            .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))
    }

    pub async fn define(&self, mut def: DomainDef) -> Result<DomainRef> {
        def.assign_generated(&QemuProfile);
        self.check_def(&def).await?;
        let (h, event) = self.doms.define(def, |def| self.save_def(def))?;
        self.emit(h.clone(), LifecycleKind::Defined, event);
        Ok(h)
    }

    pub async fn undefine(&self, d: &DomainRef, flags: UndefineFlags) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let (persistent, running, nvram) = {
            let i = dom.lock();
            (i.persistent, i.live.is_some(), self.nvram_of(&i.def))
        };
        if !persistent {
            return Err(Error::operation_invalid("cannot undefine transient domain"));
        }
        // A UEFI variable store is the guest's data: removed or kept only
        // when asked, as libvirt does.
        let nvram = nvram.filter(|p| p.exists());
        if nvram.is_some() && !flags.intersects(UndefineFlags::NVRAM | UndefineFlags::KEEP_NVRAM) {
            return Err(Error::operation_invalid(
                "cannot undefine domain with nvram: use --nvram to remove it or --keep-nvram to keep it",
            ));
        }
        if let Some(p) = &nvram
            && flags.contains(UndefineFlags::NVRAM)
            && !running
        {
            std::fs::remove_file(p)
                .map_err(|e| Error::system(format_args!("cannot remove {}", p.display()), &e))?;
        }
        self.doms.undefine(
            &dom,
            &self.layout.definition(&dom.name),
            &self.layout.autostart_dir(),
            running,
        )?;
        self.emit(
            dom.handle(),
            LifecycleKind::Undefined,
            detail::UNDEFINED_REMOVED,
        );
        Ok(())
    }

    pub fn set_autostart(&self, d: &DomainRef, on: bool) -> Result<()> {
        self.doms.set_autostart(d, &self.layout.autostart_dir(), on)
    }

    pub async fn create_transient(
        self: &Arc<Self>,
        mut def: DomainDef,
        flags: CreateFlags,
    ) -> Result<DomainRef> {
        def.assign_generated(&QemuProfile);
        self.check_def(&def).await?;
        self.doms.place_new(&def)?;
        let dom = DomainObj::new(def, false);
        self.doms.insert(dom.clone());
        match self.start(&dom.handle(), flags).await {
            Ok(h) => Ok(h),
            Err(e) => {
                self.doms.remove(&dom.uuid);
                Err(e)
            }
        }
    }

    // ---- lifecycle ----

    /// Starts a defined domain.
    pub async fn start(self: &Arc<Self>, d: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        if dom.lock().live.is_some() {
            return Err(Error::operation_invalid("domain is already running"));
        }
        let def = dom.lock().def.clone();
        let live = self.launch(&dom, def, flags).await?;
        let paused = flags.contains(CreateFlags::PAUSED);
        {
            let mut i = dom.lock();
            i.live = Some(live.clone());
            if paused {
                i.state = DomainState::Paused;
                i.reason = paused_reason::USER;
            } else {
                i.state = DomainState::Running;
                i.reason = running_reason::BOOTED;
            }
        }
        self.save_status(&dom);
        let h = dom.handle();
        self.emit(h.clone(), LifecycleKind::Started, detail::STARTED_BOOTED);
        if paused {
            self.emit(
                h.clone(),
                LifecycleKind::Suspended,
                detail::SUSPENDED_PAUSED,
            );
        }
        self.supervise(dom.clone(), live);
        Ok(h)
    }

    async fn launch(
        self: &Arc<Self>,
        dom: &Arc<DomainObj>,
        def: DomainDef,
        flags: CreateFlags,
    ) -> Result<Arc<Live>> {
        let accel = match def.domain_type().as_str() {
            "kvm" => {
                if !caps::kvm_usable() {
                    return Err(Error::new(
                        ErrorKind::ConfigUnsupported,
                        "domain type 'kvm' needs a usable /dev/kvm, which this host lacks; \
                         use <domain type='qemu'> for emulation",
                    ));
                }
                Accel::Kvm
            }
            _ => Accel::Tcg,
        };
        let mut domain = def.normalised(&QemuProfile);
        let binary = emulator_of(&domain)?;
        let caps = self.caps.get(&binary).await?;
        self.fill_firmware(&mut domain, &caps, accel)?;
        crate::firmware::prepare_nvram(&domain)?;
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            let id = *n;
            *n += 1;
            id
        };
        let run_dir = self.layout.domain_run_dir(&dom.name);
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| Error::system(format_args!("cannot create {}", run_dir.display()), &e))?;
        let cleanup = |e: Error| {
            let _ = std::fs::remove_dir_all(&run_dir);
            e
        };
        let monitor = run_dir.join("monitor.sock");
        let listener = std::os::unix::net::UnixListener::bind(&monitor).map_err(|e| {
            cleanup(Error::system(
                format_args!("cannot bind {}", monitor.display()),
                &e,
            ))
        })?;
        let mut key = [0u8; 32];
        virtkit_core::ids::random_bytes(&mut key);
        write_private(&run_dir.join("master-key.aes"), &key).map_err(cleanup)?;

        let nics = if domain
            .child("devices")
            .is_some_and(|d| d.child("interface").is_some())
        {
            let nd = self
                .netdev
                .get_or_try_init(|| async { virtkit_netdev::Netdev::new() })
                .await
                .map_err(|e| cleanup(Error::from(e)))?;
            crate::net::prepare(nd, self.networks.as_deref(), &domain, accel == Accel::Kvm)
                .await
                .map_err(cleanup)?
        } else {
            Vec::new()
        };
        let release = |e: Error| {
            if let Some(svc) = &self.networks {
                crate::net::release_ports(svc, &nics);
            }
            cleanup(e)
        };
        let mut ctx = argv_context(&caps, accel, &run_dir, &domain);
        ctx.monitor_fd = listener.as_raw_fd();
        ctx.nets = nics.iter().map(crate::net::PreparedNic::fds).collect();
        ctx.short_name = argv::short_name(i64::from(id), &dom.name);
        let cmd = argv::build(&domain, &ctx).map_err(release)?;
        for d in &cmd.dirs {
            if let Err(e) = std::fs::create_dir_all(d) {
                return Err(release(Error::system(
                    format_args!("cannot create memory directory {}", d.display()),
                    &e,
                )));
            }
        }
        let log = self.layout.domain_log(&dom.name);
        let mut keep = vec![listener.as_raw_fd()];
        keep.extend(nics.iter().flat_map(crate::net::PreparedNic::keep_fds));
        let process = QemuProcess::spawn(&Launch {
            binary: &cmd.binary,
            args: &cmd.args,
            env: &cmd.env,
            log: &log,
            keep_fds: &keep,
        })
        .map_err(release)?;
        drop(listener);
        let taps: Vec<String> = nics
            .iter()
            .filter_map(|n| n.tap.as_ref().map(|t| t.name().to_string()))
            .collect();
        let _ = std::fs::write(run_dir.join("pid"), process.pid().to_string());

        let fail = |process: &QemuProcess, what: String| {
            let tail = log_tail(&log);
            let msg = if tail.is_empty() {
                what
            } else {
                format!("{what}; QEMU said: {tail}")
            };
            let _ = process.signal(libc::SIGKILL);
            Error::new(
                ErrorKind::OperationFailed,
                format!("cannot start domain '{}': {msg}", dom.name),
            )
        };
        let qmp = match Qmp::connect(&monitor, MONITOR_DEADLINE).await {
            Ok((q, _)) => q,
            Err(e) => {
                let err = fail(&process, e.to_string());
                process.wait().await;
                return Err(release(err));
            }
        };
        // Disk I/O limits, before the guest runs a single instruction.
        for (id, t) in &cmd.iotune {
            if let Err(e) = qmp
                .execute_raw("block_set_io_throttle", Some(t.qmp_args(id)), QMP_DEADLINE)
                .await
            {
                let err = fail(
                    &process,
                    format!("cannot set the I/O limits of '{id}': {e}"),
                );
                process.wait().await;
                return Err(release(err));
            }
        }
        if !flags.contains(CreateFlags::PAUSED)
            && let Err(e) = qmp.execute(&qapi::qmp::cont {}, QMP_DEADLINE).await
        {
            let err = fail(&process, e.to_string());
            process.wait().await;
            return Err(release(err));
        }
        let mut live_def = DomainDef::parse(&def.to_xml_canonical(
            &QemuProfile,
            &FormatOptions {
                id: Some(id),
                inactive: false,
                secure: true,
            },
        ))?;
        crate::net::record_targets(live_def.root_mut(), &nics);
        // The running definition shows the firmware that was chosen, and
        // the machine type an alias (`pc`, `q35`) stood for, as libvirt's.
        self.fill_firmware(live_def.root_mut(), &caps, accel)?;
        if let Some(t) = live_def
            .root_mut()
            .child_mut("os")
            .and_then(|o| o.child_mut("type"))
            && let Some(alias) = t.attr("machine").map(|v| v.into_owned())
            && let Some(m) = caps.machine(accel.name(), &alias)
            && m.name != alias
        {
            t.set_attr("machine", &m.name);
        }
        // QEMU holds the taps now; virtkit's copies of the fds can go.
        let ports = nics.iter().filter_map(|n| n.port.clone()).collect();
        drop(nics);
        Ok(Arc::new(Live {
            id,
            process,
            qmp,
            run_dir,
            live_def,
            taps,
            ports,
        }))
    }

    fn save_status(&self, dom: &DomainObj) {
        let i = dom.lock();
        let Some(l) = &i.live else { return };
        let status = Status {
            id: l.id,
            pid: l.process.pid(),
            start_time: l.process.start_time(),
            state: i.state,
            reason: i.reason,
            monitor: l.run_dir.join("monitor.sock"),
            taps: l.taps.clone(),
            live_xml: l.live_def.to_xml_as_defined(),
        };
        if let Err(e) = status.save(&l.run_dir.join("status.xml")) {
            tracing::warn!(domain = %dom.name, error = %e, "cannot save status");
        }
    }

    /// Watches a running guest: monitor events and process exit. Ends when
    /// the guest stops or this driver instance closes (dropping its monitor
    /// connection, so that the next instance can connect).
    fn supervise(self: &Arc<Self>, dom: Arc<DomainObj>, live: Arc<Live>) {
        let state = Arc::downgrade(self);
        let mut events = live.qmp.events();
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = closing.changed() => return,
                    ev = events.recv() => {
                        let Some(st) = state.upgrade() else { return };
                        match ev {
                            Ok(ev) => {
                                st.on_event(&dom, &live, ev).await;
                                if !dom.is_current(&live) {
                                    return;
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => {
                                // The monitor closed: QEMU is exiting.
                                live.process.wait().await;
                                st.on_exit(&dom, &live);
                                return;
                            }
                        }
                    }
                    _ = live.process.wait() => {
                        if let Some(st) = state.upgrade() {
                            st.on_exit(&dom, &live);
                        }
                        return;
                    }
                }
            }
        });
    }

    async fn on_event(self: &Arc<Self>, dom: &Arc<DomainObj>, live: &Arc<Live>, ev: QmpEvent) {
        // Events still queued from a QEMU that is already finished with
        // (e.g. the SHUTDOWN that our own SIGTERM caused) mean nothing.
        if !dom.is_current(live) {
            return;
        }
        match ev.name.as_str() {
            "STOP" => {
                let mut i = dom.lock();
                if std::mem::take(&mut i.extra.stop) || i.state == DomainState::Paused {
                    return;
                }
                i.state = DomainState::Paused;
                i.reason = paused_reason::UNKNOWN;
                drop(i);
                self.save_status(dom);
                self.emit(
                    dom.handle(),
                    LifecycleKind::Suspended,
                    detail::SUSPENDED_PAUSED,
                );
            }
            "RESUME" => {
                let mut i = dom.lock();
                if std::mem::take(&mut i.extra.resume) || i.state == DomainState::Running {
                    return;
                }
                i.state = DomainState::Running;
                i.reason = running_reason::UNPAUSED;
                drop(i);
                self.save_status(dom);
                self.emit(
                    dom.handle(),
                    LifecycleKind::Resumed,
                    detail::RESUMED_UNPAUSED,
                );
            }
            "SHUTDOWN" => {
                let (destroying, reboot) = {
                    let mut i = dom.lock();
                    (i.extra.destroy, std::mem::take(&mut i.extra.reboot))
                };
                if destroying {
                    return;
                }
                let guest = ev.guest_initiated();
                let d = if guest {
                    detail::SHUTDOWN_GUEST
                } else {
                    detail::SHUTDOWN_HOST
                };
                self.emit(dom.handle(), LifecycleKind::Shutdown, d);
                if reboot {
                    // A reboot asked of the host: the guest powered off, so
                    // reset the machine and let it run again.
                    let _ = live
                        .qmp
                        .execute(&qapi::qmp::system_reset {}, QMP_DEADLINE)
                        .await;
                    let _ = live.qmp.execute(&qapi::qmp::cont {}, QMP_DEADLINE).await;
                    return;
                }
                let action = dom.lock().def.lifecycle_action("on_poweroff");
                if action == "restart" {
                    let _ = live
                        .qmp
                        .execute(&qapi::qmp::system_reset {}, QMP_DEADLINE)
                        .await;
                    let _ = live.qmp.execute(&qapi::qmp::cont {}, QMP_DEADLINE).await;
                    return;
                }
                {
                    let mut i = dom.lock();
                    i.state = DomainState::Shutdown;
                    i.reason = 1;
                    i.extra.destroy = true;
                }
                let _ = live.process.terminate(TERM_GRACE, true).await;
                self.finish_live(
                    dom,
                    live,
                    shutoff_reason::SHUTDOWN,
                    detail::STOPPED_SHUTDOWN,
                );
            }
            "GUEST_PANICKED" => {
                {
                    let mut i = dom.lock();
                    i.state = DomainState::Crashed;
                    i.reason = 1;
                }
                self.emit(
                    dom.handle(),
                    LifecycleKind::Crashed,
                    detail::CRASHED_PANICKED,
                );
                let action = dom.lock().def.lifecycle_action("on_crash");
                if action == "destroy" {
                    dom.lock().extra.destroy = true;
                    let _ = live.process.terminate(TERM_GRACE, true).await;
                    self.finish_live(dom, live, shutoff_reason::CRASHED, detail::STOPPED_CRASHED);
                } else if action == "restart" {
                    let _ = live
                        .qmp
                        .execute(&qapi::qmp::system_reset {}, QMP_DEADLINE)
                        .await;
                    let _ = live.qmp.execute(&qapi::qmp::cont {}, QMP_DEADLINE).await;
                }
            }
            _ => {}
        }
    }

    /// QEMU exited: expected (destroy, shutdown) or not (crash, SIGKILL).
    fn on_exit(&self, dom: &Arc<DomainObj>, live: &Arc<Live>) {
        let expected = dom.lock().extra.destroy;
        if expected {
            // The job that stopped it finishes the bookkeeping.
            return;
        }
        self.finish_live(dom, live, shutoff_reason::CRASHED, detail::STOPPED_FAILED);
    }

    /// Bookkeeping once QEMU is gone: files, taps, state, event.
    fn finish_live(&self, dom: &Arc<DomainObj>, live: &Arc<Live>, reason: i32, event_detail: i32) {
        if !dom.is_current(live) {
            return; // already finished
        }
        if let Some(svc) = &self.networks {
            for p in &live.ports {
                svc.release_port(p);
            }
        }
        self.finish_stop(dom, &live.run_dir, &live.taps, reason, event_detail);
    }

    fn finish_stop(
        &self,
        dom: &Arc<DomainObj>,
        run_dir: &Path,
        taps: &[String],
        reason: i32,
        event_detail: i32,
    ) {
        // The guest's taps were held by QEMU's fds and went with it.
        let _ = (std::fs::remove_dir_all(run_dir), taps);
        // Huge-page memory directories (file-backed memory was in run_dir).
        if let Some(id) = dom.handle().id {
            let short = argv::short_name(i64::from(id), &dom.name);
            for m in argv::host_hugetlbfs() {
                let _ = std::fs::remove_dir(argv::hugepage_dir(&m.path, &short));
            }
        }
        let handle_before = self.doms.set_stopped(dom, reason);
        self.emit(handle_before, LifecycleKind::Stopped, event_detail);
    }

    pub async fn destroy(&self, d: &DomainRef, graceful: bool) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        dom.lock().extra.destroy = true;
        if let Err(e) = live.process.terminate(TERM_GRACE, !graceful).await {
            dom.lock().extra.destroy = false;
            return Err(e);
        }
        self.finish_live(
            &dom,
            &live,
            shutoff_reason::DESTROYED,
            detail::STOPPED_DESTROYED,
        );
        Ok(())
    }

    /// Asks the guest to power off: through the guest agent when asked
    /// (falling back to ACPI when both are asked), else the ACPI button.
    pub async fn shutdown(&self, d: &DomainRef, flags: virtkit_core::ShutdownFlags) -> Result<()> {
        use virtkit_core::ShutdownFlags as F;
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        if flags.contains(F::GUEST_AGENT) {
            let agent = crate::agent::socket_path(live.live_def.root(), &live.run_dir)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::ArgumentUnsupported,
                        "the domain has no guest agent channel \
                         (<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>)",
                    )
                });
            let res = match agent {
                Ok(path) => crate::agent::shutdown(&path, false).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return Ok(()),
                Err(e) if !flags.contains(F::ACPI_POWER_BTN) => return Err(e),
                Err(_) => {}
            }
        }
        live.qmp
            .execute(&qapi::qmp::system_powerdown {}, QMP_DEADLINE)
            .await
            .map_err(qmp_err)?;
        Ok(())
    }

    pub async fn reboot(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        dom.lock().extra.reboot = true;
        if let Err(e) = live
            .qmp
            .execute(&qapi::qmp::system_powerdown {}, QMP_DEADLINE)
            .await
        {
            dom.lock().extra.reboot = false;
            return Err(qmp_err(e));
        }
        Ok(())
    }

    pub async fn reset(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        live.qmp
            .execute(&qapi::qmp::system_reset {}, QMP_DEADLINE)
            .await
            .map_err(qmp_err)?;
        Ok(())
    }

    pub async fn suspend(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        if dom.lock().state == DomainState::Paused {
            return Ok(());
        }
        dom.lock().extra.stop = true;
        if let Err(e) = live.qmp.execute(&qapi::qmp::stop {}, QMP_DEADLINE).await {
            dom.lock().extra.stop = false;
            return Err(qmp_err(e));
        }
        {
            let mut i = dom.lock();
            i.state = DomainState::Paused;
            i.reason = paused_reason::USER;
        }
        self.save_status(&dom);
        self.emit(
            dom.handle(),
            LifecycleKind::Suspended,
            detail::SUSPENDED_PAUSED,
        );
        Ok(())
    }

    /// The `<disk>` named by target (`vda`) or source path, and its target.
    fn disk_of<'a>(
        def: &'a virtkit_core::xml::Element,
        disk: &str,
    ) -> Result<(&'a virtkit_core::xml::Element, String)> {
        def.child("devices")
            .into_iter()
            .flat_map(|d| d.children_named("disk"))
            .find_map(|d| {
                let get =
                    |c: &str, a: &str| d.child(c).and_then(|e| e.attr(a).map(|v| v.into_owned()));
                let target = get("target", "dev")?;
                let matches = target == disk
                    || get("source", "file").as_deref() == Some(disk)
                    || get("source", "dev").as_deref() == Some(disk);
                matches.then_some((d, target))
            })
            .ok_or_else(|| {
                Error::invalid_arg(format!("disk '{disk}' was not found in the domain config"))
            })
    }

    /// The current limits of a running disk (from `query-block`) and its
    /// QOM device id.
    async fn live_iotune(&self, live: &Live, disk: &str) -> Result<(String, IoTune)> {
        let root = live.live_def.root();
        let (_, target) = Self::disk_of(root, disk)?;
        let caps = self.caps.get(&emulator_of(root)?).await?;
        let ctx = argv_context(&caps, Accel::Tcg, &live.run_dir, root);
        let id = argv::disk_ids(root, &ctx)
            .into_iter()
            .find(|(t, _)| *t == target)
            .map(|(_, id)| id)
            .ok_or_else(|| {
                Error::invalid_arg(format!("disk '{disk}' has no device in the guest"))
            })?;
        let blocks = live
            .qmp
            .execute_raw("query-block", None, QMP_DEADLINE)
            .await
            .map_err(qmp_err)?;
        let peripheral = format!("/machine/peripheral/{id}");
        let inserted = blocks
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| {
                b.get("qdev")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|q| q == id || q == peripheral)
            })
            .and_then(|b| b.get("inserted"))
            .ok_or_else(|| {
                Error::operation_invalid(format!("disk '{disk}' has no medium, so no I/O limits"))
            })?;
        Ok((id, IoTune::from_query(inserted)))
    }

    /// `blkdeviotune DOMAIN DISK`: of the running guest, else as defined.
    pub async fn block_iotune(&self, d: &DomainRef, disk: &str) -> Result<TypedParams> {
        let dom = self.doms.get(d)?;
        match dom.live() {
            Ok(live) => Ok(self.live_iotune(&live, disk).await?.1.to_params()),
            Err(_) => {
                let def = dom.lock().def.clone();
                let (el, _) = Self::disk_of(def.root(), disk)?;
                let t = match el.child("iotune") {
                    Some(e) => IoTune::from_element(e, &virtkit_core::xml::XPath::root("iotune"))?,
                    None => IoTune::none(),
                };
                Ok(t.to_params())
            }
        }
    }

    /// `blkdeviotune DOMAIN DISK --... N`: changes the running guest's
    /// limits (the ones given; the others stay).
    pub async fn set_block_iotune(
        &self,
        d: &DomainRef,
        disk: &str,
        params: &TypedParams,
    ) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live().map_err(|_| {
            Error::operation_invalid(
                "domain is not running: change the <iotune> of the disk in its definition instead",
            )
        })?;
        let (id, mut t) = self.live_iotune(&live, disk).await?;
        t.update(params)?;
        live.qmp
            .execute_raw("block_set_io_throttle", Some(t.qmp_args(&id)), QMP_DEADLINE)
            .await
            .map_err(qmp_err)?;
        Ok(())
    }

    /// `domstats` for one domain: state always, the other groups while it runs.
    pub async fn stats(&self, d: &DomainRef, groups: StatsGroups) -> Result<TypedParams> {
        let dom = self.doms.get(d)?;
        let (state, reason, live) = {
            let i = dom.lock();
            (i.state, i.reason, i.live.clone())
        };
        let mut out = TypedParams::new();
        if groups.contains(StatsGroups::STATE) || groups.bits() == 0 {
            out.push(("state.state".into(), TypedValue::Int(state.code())));
            out.push(("state.reason".into(), TypedValue::Int(reason)));
        }
        if let Some(live) = live {
            let groups = if groups.bits() == 0 {
                StatsGroups(u32::MAX)
            } else {
                groups
            };
            crate::monitor::stats(&live, groups, &mut out).await?;
        }
        Ok(out)
    }

    pub async fn resume(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        if dom.lock().state != DomainState::Paused {
            return Err(Error::operation_invalid("domain is not paused"));
        }
        dom.lock().extra.resume = true;
        if let Err(e) = live.qmp.execute(&qapi::qmp::cont {}, QMP_DEADLINE).await {
            dom.lock().extra.resume = false;
            return Err(qmp_err(e));
        }
        {
            let mut i = dom.lock();
            i.state = DomainState::Running;
            i.reason = running_reason::UNPAUSED;
        }
        self.save_status(&dom);
        self.emit(
            dom.handle(),
            LifecycleKind::Resumed,
            detail::RESUMED_UNPAUSED,
        );
        Ok(())
    }
}

/// The emulator a (normalised) domain runs: `<emulator>`, else the
/// default binary for its architecture.
fn emulator_of(domain: &virtkit_core::xml::Element) -> Result<PathBuf> {
    match domain
        .child("devices")
        .and_then(|d| d.child("emulator"))
        .map(|e| PathBuf::from(e.text().trim()))
    {
        Some(b) => Ok(b),
        None => caps::default_emulator(
            &domain
                .child("os")
                .and_then(|o| o.child("type"))
                .and_then(|t| t.attr("arch"))
                .map(|a| a.into_owned())
                .unwrap_or_else(|| "x86_64".into()),
        ),
    }
}

fn argv_context<'a>(
    caps: &'a QemuCaps,
    accel: Accel,
    dir: &Path,
    domain: &virtkit_core::xml::Element,
) -> argv::Context<'a> {
    let nics = domain
        .child("devices")
        .map_or(0, |d| d.children_named("interface").count());
    argv::Context {
        caps,
        accel,
        domain_dir: dir.to_path_buf(),
        monitor_fd: -1,
        nets: vec![
            argv::NetFds {
                tap: vec![-1],
                vhost: Vec::new(),
            };
            nics
        ],
        user: current_user(),
        short_name: argv::short_name(
            -1,
            &domain.child("name").map(|n| n.text()).unwrap_or_default(),
        ),
        memory_dir: dir.join("ram"),
    }
}

fn current_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            "root".into()
        } else {
            "nobody".into()
        }
    })
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::system(format_args!("cannot create {}", path.display()), &e))?;
    std::io::Write::write_all(&mut f, data)
        .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))
}

/// The last non-empty lines of QEMU's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join("; ")
}
