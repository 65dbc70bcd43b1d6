//! The driver's state for one URI: definitions on disk, running containers
//! with their supervisors, one job lock per domain, lifecycle events.
//!
//! Locking: the domain table ([`virtkit_core::domain::table`]) is held
//! only for lookups. Each domain has a job lock (a tokio mutex, taken with
//! a deadline) that serialises changes, and a small state mutex never held
//! across an await, so queries never wait for a job.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use virtkit_core::domain::table::{
    self, DomainTable, InstanceLock, LOCK_WAIT, LiveDomain, not_running,
};
use virtkit_core::domain::{DomainDef, FormatOptions};
use virtkit_core::event::detail;
use virtkit_core::types::{paused_reason, running_reason, shutoff_reason};
use virtkit_core::xml::Element;
use virtkit_core::{
    CreateFlags, DomainInfo, DomainRef, DomainState, Error, ErrorKind, EventBus, InterfaceStats,
    LifecycleEvent, LifecycleKind, Result, StatsGroups, TypedParams, TypedValue, XmlFlags, files,
};

use crate::cgroup::{self, Cgroup};
use crate::def::{LxcDef, NsMode, Share};
use crate::paths::Layout;
use crate::process::Watched;
use crate::profile::LxcProfile;
use crate::status::Status;
use crate::supervisor::{self, Config};
use crate::sys::{self, Exit};

/// How long a container may take from supervisor start to init running.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the supervisor gets to clean up after init is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// SIGTERM grace for a graceful destroy.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long freezing or thawing may take.
const FREEZE_DEADLINE: Duration = Duration::from_secs(5);

/// What the driver is doing to a container, so that its exit is not taken
/// for something the container did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Expect {
    destroy: bool,
    shutdown: bool,
}

/// A running container.
#[derive(Debug)]
pub(crate) struct Live {
    pub id: u32,
    pub supervisor: Watched,
    pub init_pid: i32,
    pub init_start: u64,
    /// A pidfd of init, for signals that cannot hit a reused pid.
    pub init_fd: Option<OwnedFd>,
    pub run_dir: PathBuf,
    pub live_def: DomainDef,
    /// The user side of each console.
    pub consoles: Vec<PathBuf>,
    /// Host ends of the veths.
    pub veths: Vec<String>,
    /// Ports on virtual networks, given back when the container stops.
    pub ports: Vec<virtkit_network::NetworkPort>,
    pub cgroup: Cgroup,
}

impl Live {
    fn signal_init(&self, sig: i32) -> std::io::Result<()> {
        match &self.init_fd {
            Some(fd) => sys::pidfd_signal(fd.as_fd(), sig),
            None => sys::kill(self.init_pid, sig),
        }
    }
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
pub(crate) struct LxcState {
    pub layout: Layout,
    pub events: EventBus,
    /// The domains.
    pub doms: DomainTable<Live, Expect>,
    /// The network driver instance containers plug into.
    pub networks: Option<Arc<virtkit_network::Service>>,
    /// The host network handle, opened when a container first needs one.
    netdev: tokio::sync::OnceCell<virtkit_netdev::Netdev>,
    /// The program run as supervisor.
    supervisor_exe: PathBuf,
    /// Set when the instance goes away: supervision tasks end.
    closing: tokio::sync::watch::Sender<bool>,
    _lock: File,
}

impl Drop for LxcState {
    fn drop(&mut self) {
        let _ = self.closing.send(true);
    }
}

fn failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::OperationFailed, msg)
}

fn cg_err(e: cgroup::CgroupError) -> Error {
    failed(e.to_string())
}

/// How a container's exit reads in states and events.
fn exit_meaning(exit: Option<Exit>, expect: Expect) -> (i32, i32, bool) {
    match exit {
        // init called reboot(2): the kernel ended it with SIGHUP.
        Some(Exit::Signal(s)) if s == libc::SIGHUP && !expect.shutdown => {
            (shutoff_reason::SHUTDOWN, detail::STOPPED_SHUTDOWN, true)
        }
        Some(Exit::Code(_)) => (shutoff_reason::SHUTDOWN, detail::STOPPED_SHUTDOWN, false),
        // Power-off or halt through reboot(2) ends init with SIGINT.
        Some(Exit::Signal(s)) if s == libc::SIGINT || (expect.shutdown && s == libc::SIGTERM) => {
            (shutoff_reason::SHUTDOWN, detail::STOPPED_SHUTDOWN, false)
        }
        Some(Exit::Signal(_)) => (shutoff_reason::CRASHED, detail::STOPPED_CRASHED, false),
        // The supervisor died without recording anything.
        None => (shutoff_reason::FAILED, detail::STOPPED_FAILED, false),
    }
}

impl LxcState {
    /// Opens the instance: definitions are loaded, running containers
    /// found again, autostart domains started.
    pub async fn open(layout: Layout) -> Result<Arc<LxcState>> {
        layout.create()?;
        // The directories belong to one process at a time, so that two
        // processes never drive the same containers. Another short virtkit
        // command (or this process's previous instance, still going away on
        // another thread) lets go soon: wait for it, up to LOCK_WAIT. A
        // daemon keeps them: say so at once.
        let lock = InstanceLock {
            uri: &layout.uri,
            path: &layout.lock_file(),
            remote: "lxc+unix://",
            show_os_error: true,
        }
        .take(LOCK_WAIT)
        .await?;
        let networks = match virtkit_network::Service::open(layout.network.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "the network driver is not available to this LXC instance");
                None
            }
        };
        let supervisor_exe = std::env::var_os("VIRTKIT_LXC_SUPERVISOR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let state = Arc::new(LxcState {
            networks,
            layout,
            events: EventBus::default(),
            doms: DomainTable::new(),
            netdev: tokio::sync::OnceCell::new(),
            supervisor_exe,
            closing: tokio::sync::watch::channel(false).0,
            _lock: lock,
        });
        state.load_definitions();
        state.reattach_all().await;
        state.autostart_all().await;
        Ok(state)
    }

    fn load_definitions(&self) {
        let Ok(rd) = std::fs::read_dir(&self.layout.config) else {
            return;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let parsed = files::read_limited(&path, files::MAX_XML_FILE)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    DomainDef::parse_named(&b, &path.display().to_string())
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(def) => {
                    let dom = DomainObj::new(def, true);
                    dom.lock().autostart = self.layout.autostart_dir().join(&dom.name).exists();
                    self.doms.insert(dom);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an invalid definition")
                }
            }
        }
    }

    /// Finds containers that were running when the previous process exited.
    async fn reattach_all(self: &Arc<Self>) {
        let Ok(rd) = std::fs::read_dir(&self.layout.run) else {
            return;
        };
        for entry in rd.flatten() {
            let run_dir = entry.path();
            let status_path = run_dir.join("status.xml");
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
            let ports = self.reclaim_ports(&live_def).await;
            let watched = match Watched::attach(status.supervisor.0, status.supervisor.1) {
                // Exited but not reaped yet: as good as gone.
                Some(w) if w.has_exited() => {
                    w.wait().await;
                    None
                }
                other => other,
            };
            match watched {
                Some(supervisor) => {
                    let init_fd = sys::pidfd_open(status.init.0)
                        .ok()
                        .filter(|_| sys::process_start_time(status.init.0) == Some(status.init.1));
                    let live = Arc::new(Live {
                        id: status.id,
                        supervisor,
                        init_pid: status.init.0,
                        init_start: status.init.1,
                        init_fd,
                        run_dir,
                        live_def,
                        consoles: status.consoles.clone(),
                        veths: status.veths.clone(),
                        ports,
                        cgroup: status.cgroup.clone(),
                    });
                    {
                        let mut i = dom.lock();
                        i.live = Some(live.clone());
                        // Suspended or resumed while nobody watched?
                        let frozen = live.cgroup.is_frozen();
                        match (status.state, frozen) {
                            (DomainState::Paused, false) => {
                                i.state = DomainState::Running;
                                i.reason = running_reason::UNPAUSED;
                            }
                            (DomainState::Running, true) => {
                                i.state = DomainState::Paused;
                                i.reason = paused_reason::UNKNOWN;
                            }
                            (s, _) => {
                                i.state = s;
                                i.reason = status.reason;
                            }
                        }
                    }
                    self.supervise(dom.clone(), live);
                }
                None => {
                    // It stopped while no virtkit process watched it.
                    let (reason, _, _) =
                        exit_meaning(supervisor::read_exit(&run_dir), Expect::default());
                    self.cleanup_parts(&ports, &status.veths, &status.cgroup, &run_dir)
                        .await;
                    let transient = {
                        let mut i = dom.lock();
                        i.state = DomainState::Shutoff;
                        i.reason = reason;
                        !i.persistent
                    };
                    if transient {
                        self.doms.remove(&dom.uuid);
                    }
                }
            }
        }
    }

    /// The network ports of a container that was running before this
    /// process started, registered again so that they are released when it
    /// stops and a duplicate MAC is still refused.
    async fn reclaim_ports(&self, def: &DomainDef) -> Vec<virtkit_network::NetworkPort> {
        let mut out = Vec::new();
        let Some(svc) = &self.networks else {
            return out;
        };
        let Some(devices) = def.root().child("devices") else {
            return out;
        };
        for iface in devices
            .children_named("interface")
            .filter(|i| i.attr("type").as_deref() == Some("network"))
        {
            if let Ok(req) = virtkit_network::PortRequest::from_interface(iface)
                && let Ok(p) = svc.allocate_port(&req).await
            {
                out.push(p);
            }
        }
        out
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

    pub fn info(&self, d: &DomainRef) -> Result<DomainInfo> {
        let dom = self.doms.get(d)?;
        let (state, def_max, vcpus, live) = {
            let i = dom.lock();
            let def = i.current_def();
            (i.state, def.memory_kib(), def.vcpus(), i.live.clone())
        };
        let (max, mem, cpu) = match &live {
            Some(l) => (
                l.cgroup.memory_limit_kib().unwrap_or(def_max),
                l.cgroup.memory_usage_kib().unwrap_or(0),
                l.cgroup.cpu_times_ns().map_or(0, |(t, _, _)| t),
            ),
            None => (def_max, 0, 0),
        };
        Ok(DomainInfo {
            state,
            max_mem_kib: max,
            memory_kib: if live.is_some() { mem } else { def_max },
            nr_virt_cpu: vcpus,
            cpu_time_ns: cpu,
        })
    }

    pub fn xml(&self, d: &DomainRef, flags: XmlFlags) -> Result<String> {
        Ok(self.doms.get(d)?.lock().xml(&LxcProfile, flags))
    }

    // ---- definitions ----

    /// Checks what the driver can run, before anything is stored.
    fn check_def(def: &DomainDef) -> Result<()> {
        LxcDef::from_domain(&def.normalised(&LxcProfile)).map(drop)
    }

    fn save_def(&self, def: &DomainDef) -> Result<()> {
        let path = self.layout.definition(&def.name());
        files::write_atomic(&path, def.to_xml_as_defined().as_bytes())
            .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))
    }

    pub fn define(&self, mut def: DomainDef) -> Result<DomainRef> {
        def.assign_generated(&LxcProfile);
        Self::check_def(&def)?;
        let (h, event) = self.doms.define(def, |def| self.save_def(def))?;
        self.emit(h.clone(), LifecycleKind::Defined, event);
        Ok(h)
    }

    pub async fn undefine(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let (persistent, running) = {
            let i = dom.lock();
            (i.persistent, i.live.is_some())
        };
        if !persistent {
            return Err(Error::operation_invalid("cannot undefine transient domain"));
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
        def.assign_generated(&LxcProfile);
        Self::check_def(&def)?;
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

    /// Starts a defined container.
    pub async fn start(self: &Arc<Self>, d: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        if dom.lock().live.is_some() {
            return Err(Error::operation_invalid("domain is already running"));
        }
        let def = dom.lock().def.clone();
        let live = self.launch(&dom, &def).await?;
        let paused = flags.contains(CreateFlags::PAUSED);
        if paused {
            let cg = live.cgroup.clone();
            let frozen = tokio::task::spawn_blocking(move || cg.set_frozen(true, FREEZE_DEADLINE))
                .await
                .map_err(|e| Error::internal(e.to_string()))?;
            if let Err(e) = frozen {
                self.kill_and_wait(&live).await;
                self.cleanup(&live).await;
                return Err(cg_err(e).context("cannot start the container paused"));
            }
        }
        {
            let mut i = dom.lock();
            i.live = Some(live.clone());
            i.extra = Expect::default();
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

    /// The namespace another container shares (`<lxc:namespace>` by name).
    fn shared_ns_path(&self, name: &str, kind: &str) -> Result<PathBuf> {
        let dom = self.doms.find_name(name).ok_or_else(|| {
            Error::no_domain(format!(
                "no container named '{name}' to share its {kind} namespace"
            ))
        })?;
        let live = dom.live().map_err(|_| {
            Error::operation_invalid(format!(
                "container '{name}' must run to share its {kind} namespace"
            ))
        })?;
        Ok(PathBuf::from(format!("/proc/{}/ns/{kind}", live.init_pid)))
    }

    async fn netdev(&self) -> Result<&virtkit_netdev::Netdev> {
        self.netdev
            .get_or_try_init(|| async { virtkit_netdev::Netdev::new() })
            .await
            .map_err(Error::from)
    }

    /// Builds and starts the container: the supervisor is started first
    /// (it loads while the host side is prepared), then cgroups and veths,
    /// then the handshake. On error nothing is left behind.
    /// The domain id is the supervisor's pid, as libvirt's LXC driver uses
    /// the pid of its controller.
    async fn launch(self: &Arc<Self>, dom: &Arc<DomainObj>, def: &DomainDef) -> Result<Arc<Live>> {
        let mut lxc = LxcDef::from_domain(&def.normalised(&LxcProfile))?;
        if sys::geteuid() != 0 {
            return Err(Error::denied(
                "starting a container needs root (namespaces, mounts, cgroups)",
            ));
        }
        for (kind, share) in &lxc.shares {
            if let Share::Domain(name) = share {
                let p = self.shared_ns_path(name, kind)?;
                let mode = NsMode::Join(p);
                match *kind {
                    "net" => lxc.spec.net = mode,
                    "ipc" => lxc.spec.ipc = mode,
                    _ => lxc.spec.uts = mode,
                }
            }
        }
        let run_dir = self.layout.domain_run_dir(&dom.name);
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| Error::system(format_args!("cannot create {}", run_dir.display()), &e))?;
        let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(Error::system(
                    "cannot create the supervisor's control socket",
                    &e,
                ));
            }
        };
        let mut supervisor = match Watched::spawn_supervisor(
            &self.supervisor_exe,
            &dom.name,
            &self.layout.domain_log(&dom.name),
            theirs.into(),
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(e);
            }
        };
        let scope = self.layout.scope(&dom.name);
        let limits = lxc.limits.clone();
        let partition = lxc.partition.clone();
        let cg_task = tokio::task::spawn_blocking(move || {
            let host = cgroup::Host::detect()?;
            host.create(&partition, &scope, &limits)
        });
        let nd = if lxc.ifaces.is_empty() {
            None
        } else {
            Some(self.netdev().await)
        };
        let nic_task = async {
            match &nd {
                None => Ok(Vec::new()),
                Some(Ok(nd)) => {
                    crate::net::prepare(nd, self.networks.as_deref(), &lxc.ifaces).await
                }
                Some(Err(e)) => Err(e.clone()),
            }
        };
        let (cg_res, nic_res) = tokio::join!(cg_task, nic_task);
        let cg_res = cg_res
            .map_err(|e| Error::internal(e.to_string()))
            .and_then(|r| {
                r.map_err(|e| {
                    cg_err(e).context(format!("cannot set up the cgroups of '{}'", dom.name))
                })
            });
        let mut nics = Vec::new();
        let mut cg = None;
        let res = match (cg_res, nic_res) {
            (Ok(c), Ok(n)) => {
                cg = Some(c);
                nics = n;
                self.handshake(
                    dom,
                    def,
                    &lxc,
                    cg.as_ref().expect("set above"),
                    &nics,
                    &run_dir,
                    &mut supervisor,
                    ours,
                )
                .await
            }
            (Ok(c), Err(e)) => {
                cg = Some(c);
                Err(e)
            }
            (Err(e), Ok(n)) => {
                nics = n;
                Err(e)
            }
            (Err(e), Err(_)) => Err(e),
        };
        match res {
            Ok(live) => Ok(live),
            Err(e) => {
                if let Some(s) = supervisor {
                    let _ = s.signal(libc::SIGKILL);
                    s.wait().await;
                }
                if let Some(Ok(nd)) = nd {
                    crate::net::discard(nd, self.networks.as_deref(), &nics).await;
                }
                if let Some(cg) = cg {
                    let _ = tokio::task::spawn_blocking(move || {
                        cg.kill_all();
                        cg.remove(STOP_DEADLINE)
                    })
                    .await;
                }
                let _ = std::fs::remove_dir_all(&run_dir);
                Err(e)
            }
        }
    }

    /// The conversation with a started supervisor (see [`supervisor`]):
    /// configuration, `ready`, the host side of the new process (cgroups and
    /// network, while it builds its root filesystem), `go`, `started`.
    /// Takes the supervisor on success.
    #[allow(clippy::too_many_arguments)]
    async fn handshake(
        self: &Arc<Self>,
        dom: &Arc<DomainObj>,
        def: &DomainDef,
        lxc: &LxcDef,
        cg: &Cgroup,
        nics: &[crate::net::PreparedNic],
        run_dir: &Path,
        supervisor: &mut Option<Watched>,
        ctl: std::os::unix::net::UnixStream,
    ) -> Result<Arc<Live>> {
        let id = supervisor
            .as_ref()
            .map(|s| s.pid() as u32)
            .ok_or_else(|| Error::internal("the supervisor went missing"))?;
        let cfg = Config {
            spec: lxc.spec.clone(),
            run_dir: run_dir.to_path_buf(),
            cgroup: cg.clone(),
            console_owner: lxc
                .spec
                .uid_map
                .iter()
                .find(|(s, _, _)| *s == 0)
                .map(|(_, t, _)| *t)
                .zip(
                    lxc.spec
                        .gid_map
                        .iter()
                        .find(|(s, _, _)| *s == 0)
                        .map(|(_, t, _)| *t),
                ),
        };
        let line = serde_json::to_string(&cfg).map_err(|e| {
            Error::internal(format!("cannot encode the container's configuration: {e}"))
        })?;
        ctl.set_nonblocking(true)
            .map_err(|e| Error::system("cannot set up the control socket", &e))?;
        let ctl = tokio::net::UnixStream::from_std(ctl)
            .map_err(|e| Error::system("cannot set up the control socket", &e))?;
        let (rd, mut wr) = ctl.into_split();
        let mut rd = BufReader::new(rd);
        let name = dom.name.clone();
        let log = self.layout.domain_log(&dom.name);
        let fail = |msg: String| {
            failed(format!(
                "cannot start container '{name}': {msg} (supervisor log: {})",
                log.display()
            ))
        };
        let mut read_line = async |what: &str| -> Result<String> {
            let mut l = String::new();
            match tokio::time::timeout(START_DEADLINE, rd.read_line(&mut l)).await {
                Err(_) => Err(fail(format!(
                    "no answer from the supervisor within {} s while {what}",
                    START_DEADLINE.as_secs()
                ))),
                Ok(Err(e)) => Err(fail(format!(
                    "the supervisor's control socket failed while {what}: {e}"
                ))),
                Ok(Ok(0)) => Err(fail(format!("the supervisor exited while {what}"))),
                Ok(Ok(_)) => {
                    let l = l.trim_end().to_string();
                    match l.strip_prefix("error ") {
                        Some(m) => Err(fail(m.to_string())),
                        None => Ok(l),
                    }
                }
            }
        };
        wr.write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| fail(format!("cannot send the configuration: {e}")))?;
        let ready = read_line("creating the namespaces").await?;
        let mut parts = ready.split_whitespace();
        let (Some("ready"), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(fail(format!("unexpected answer '{ready}'")));
        };
        let (Ok(init_pid), Ok(init_start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
            return Err(fail(format!("unexpected answer '{ready}'")));
        };
        let consoles: Vec<PathBuf> = parts.map(PathBuf::from).collect();
        let init_fd = sys::pidfd_open(init_pid).ok();
        // The network, while the container builds its root filesystem (it
        // has joined its cgroups by itself).
        if !nics.is_empty() {
            let plugged = async {
                let nd = self.netdev().await?;
                crate::net::plug(nd, nics, &lxc.ifaces, init_pid).await
            }
            .await;
            if let Err(e) = plugged {
                let _ = wr.write_all(b"abort\n").await;
                return Err(e.context(format!("cannot start container '{}'", dom.name)));
            }
        }
        wr.write_all(b"go\n")
            .await
            .map_err(|e| fail(format!("cannot tell the supervisor to go on: {e}")))?;
        match read_line("building the container").await? {
            l if l == "started" => {}
            l => return Err(fail(format!("unexpected answer '{l}'"))),
        }
        let mut live_def = DomainDef::parse(&def.to_xml_canonical(
            &LxcProfile,
            &FormatOptions {
                id: Some(id),
                inactive: false,
                secure: true,
            },
        ))?;
        let veths: Vec<String> = nics.iter().map(|n| n.veth.host.clone()).collect();
        record_live(live_def.root_mut(), &veths, &consoles);
        let supervisor = supervisor
            .take()
            .ok_or_else(|| Error::internal("the supervisor went missing"))?;
        let _ = std::fs::write(run_dir.join("pid"), supervisor.pid().to_string());
        Ok(Arc::new(Live {
            id,
            supervisor,
            init_pid,
            init_start,
            init_fd,
            run_dir: run_dir.to_path_buf(),
            live_def,
            consoles,
            veths,
            ports: nics.iter().filter_map(|n| n.port.clone()).collect(),
            cgroup: cg.clone(),
        }))
    }

    fn save_status(&self, dom: &DomainObj) {
        let i = dom.lock();
        let Some(l) = &i.live else { return };
        let status = Status {
            id: l.id,
            supervisor: (l.supervisor.pid(), l.supervisor.start_time()),
            init: (l.init_pid, l.init_start),
            state: i.state,
            reason: i.reason,
            consoles: l.consoles.clone(),
            veths: l.veths.clone(),
            cgroup: l.cgroup.clone(),
            live_xml: l.live_def.to_xml_as_defined(),
        };
        if let Err(e) = status.save(&l.run_dir.join("status.xml")) {
            tracing::warn!(domain = %dom.name, error = %e, "cannot save status");
        }
    }

    /// Watches a running container: when its supervisor exits, the
    /// container is over. Ends early when this instance closes.
    fn supervise(self: &Arc<Self>, dom: Arc<DomainObj>, live: Arc<Live>) {
        let state = Arc::downgrade(self);
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = closing.changed() => {}
                _ = live.supervisor.wait() => {
                    if let Some(st) = state.upgrade() {
                        st.on_exit(&dom, &live).await;
                    }
                }
            }
        });
    }

    /// The supervisor exited: the container ended by itself (shutdown,
    /// reboot, crash) unless a job of ours is stopping it.
    async fn on_exit(self: &Arc<Self>, dom: &Arc<DomainObj>, live: &Arc<Live>) {
        let expect = {
            let i = dom.lock();
            if !i.live.as_ref().is_some_and(|l| Arc::ptr_eq(l, live)) {
                return;
            }
            i.extra
        };
        if expect.destroy {
            // The job that stops it finishes the bookkeeping.
            return;
        }
        let exit = supervisor::read_exit(&live.run_dir);
        let (reason, event, reboot) = exit_meaning(exit, expect);
        let restart = reboot && dom.lock().def.lifecycle_action("on_reboot") == "restart";
        if restart {
            let _job = match dom.job().await {
                Ok(j) => j,
                Err(_) => return,
            };
            self.cleanup(live).await;
            let def = {
                let mut i = dom.lock();
                i.live = None;
                if let Some(next) = i.next_def.take() {
                    i.def = next;
                }
                i.def.clone()
            };
            match self.launch(dom, &def).await {
                Ok(new) => {
                    {
                        let mut i = dom.lock();
                        i.live = Some(new.clone());
                        i.state = DomainState::Running;
                        i.reason = running_reason::BOOTED;
                        i.extra = Expect::default();
                    }
                    self.save_status(dom);
                    self.supervise(dom.clone(), new);
                }
                Err(e) => {
                    tracing::warn!(domain = %dom.name, error = %e, "restart after reboot failed");
                    self.set_stopped(dom, shutoff_reason::FAILED, detail::STOPPED_FAILED);
                }
            }
            return;
        }
        self.finish_live(dom, live, reason, event).await;
    }

    /// Undoes what a running container holds on the host: ports, veths,
    /// cgroups, the run directory.
    async fn cleanup(&self, live: &Live) {
        self.cleanup_parts(&live.ports, &live.veths, &live.cgroup, &live.run_dir)
            .await;
    }

    async fn cleanup_parts(
        &self,
        ports: &[virtkit_network::NetworkPort],
        veths: &[String],
        cgroup: &Cgroup,
        run_dir: &Path,
    ) {
        if let Some(svc) = &self.networks {
            for p in ports {
                svc.release_port(p);
            }
        }
        if !veths.is_empty()
            && let Ok(nd) = self.netdev().await
        {
            crate::net::unplug(nd, veths).await;
        }
        let cg = cgroup.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if cg.exists() {
                cg.kill_all();
                if let Err(e) = cg.remove(STOP_DEADLINE) {
                    tracing::warn!(error = %e, "cannot remove a container's cgroups");
                }
            }
        })
        .await;
        let _ = std::fs::remove_dir_all(run_dir);
    }

    /// Bookkeeping once the container is gone.
    async fn finish_live(
        &self,
        dom: &Arc<DomainObj>,
        live: &Arc<Live>,
        reason: i32,
        event_detail: i32,
    ) {
        if !dom.is_current(live) {
            return; // already finished
        }
        self.cleanup(live).await;
        self.set_stopped(dom, reason, event_detail);
    }

    fn set_stopped(&self, dom: &Arc<DomainObj>, reason: i32, event_detail: i32) {
        let handle_before = self.doms.set_stopped(dom, reason);
        self.emit(handle_before, LifecycleKind::Stopped, event_detail);
    }

    /// Kills every process of the container and waits for the supervisor.
    async fn kill_and_wait(&self, live: &Live) {
        let _ = live.signal_init(libc::SIGKILL);
        let cg = live.cgroup.clone();
        let _ = tokio::task::spawn_blocking(move || cg.kill_all()).await;
        if tokio::time::timeout(STOP_DEADLINE, live.supervisor.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pid = live.supervisor.pid(),
                "the supervisor did not exit; killing it"
            );
            let _ = live.supervisor.signal(libc::SIGKILL);
            live.supervisor.wait().await;
        }
    }

    pub async fn destroy(&self, d: &DomainRef, graceful: bool) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        dom.lock().extra.destroy = true;
        if graceful {
            let _ = live.signal_init(libc::SIGTERM);
            if tokio::time::timeout(TERM_GRACE, live.supervisor.wait())
                .await
                .is_err()
            {
                dom.lock().extra.destroy = false;
                return Err(Error::new(
                    ErrorKind::OperationTimeout,
                    format!(
                        "container '{}' did not stop within {} s of SIGTERM to its init; destroy without --graceful to kill it",
                        dom.name,
                        TERM_GRACE.as_secs()
                    ),
                ));
            }
        } else {
            self.kill_and_wait(&live).await;
        }
        self.finish_live(
            &dom,
            &live,
            shutoff_reason::DESTROYED,
            detail::STOPPED_DESTROYED,
        )
        .await;
        Ok(())
    }

    /// Writes a sysvinit runlevel request into the container's initctl
    /// FIFO. `Ok(false)`: the container has none.
    fn initctl(live: &Live, runlevel: u8) -> Result<bool> {
        for p in ["run/initctl", "dev/initctl"] {
            let path = format!("/proc/{}/root/{p}", live.init_pid);
            match sys::initctl_request(Path::new(&path), runlevel) {
                Ok(true) => return Ok(true),
                Ok(false) => continue,
                Err(e) => {
                    return Err(Error::system(
                        format_args!("cannot write to the container's /{p}"),
                        &e,
                    ));
                }
            }
        }
        Ok(false)
    }

    /// Asks the container to shut down: through sysvinit's initctl FIFO
    /// and/or SIGTERM to init, as `flags` say (none: initctl, falling back
    /// to the signal).
    pub async fn shutdown(&self, d: &DomainRef, flags: virtkit_core::ShutdownFlags) -> Result<()> {
        use virtkit_core::ShutdownFlags as F;
        self.stop_request(
            d,
            flags.contains(F::INITCTL),
            flags.contains(F::SIGNAL),
            b'0',
            libc::SIGTERM,
            "shutdown",
        )
        .await
    }

    /// Asks the container to reboot: initctl runlevel 6 and/or SIGHUP.
    pub async fn reboot(&self, d: &DomainRef, flags: virtkit_core::RebootFlags) -> Result<()> {
        use virtkit_core::RebootFlags as F;
        self.stop_request(
            d,
            flags.contains(F::INITCTL),
            flags.contains(F::SIGNAL),
            b'6',
            libc::SIGHUP,
            "reboot",
        )
        .await
    }

    async fn stop_request(
        &self,
        d: &DomainRef,
        initctl: bool,
        signal: bool,
        runlevel: u8,
        sig: i32,
        what: &str,
    ) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        let any = !initctl && !signal;
        if sig == libc::SIGTERM {
            dom.lock().extra.shutdown = true;
        }
        if initctl || any {
            if Self::initctl(&live, runlevel)? {
                return Ok(());
            }
            if !signal && !any {
                return Err(Error::new(
                    ErrorKind::OperationUnsupported,
                    format!(
                        "container '{}' does not provide an initctl pipe for {what}",
                        dom.name
                    ),
                ));
            }
        }
        live.signal_init(sig).map_err(|e| {
            Error::system(
                format_args!("cannot signal init (pid {})", live.init_pid),
                &e,
            )
        })
    }

    pub async fn suspend(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        if dom.lock().state == DomainState::Paused {
            return Ok(());
        }
        let cg = live.cgroup.clone();
        tokio::task::spawn_blocking(move || cg.set_frozen(true, FREEZE_DEADLINE))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(cg_err)?;
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

    pub async fn resume(&self, d: &DomainRef) -> Result<()> {
        let dom = self.doms.get(d)?;
        let _job = dom.job().await?;
        let live = dom.live()?;
        if dom.lock().state != DomainState::Paused {
            return Err(Error::operation_invalid("domain is not paused"));
        }
        let cg = live.cgroup.clone();
        tokio::task::spawn_blocking(move || cg.set_frozen(false, FREEZE_DEADLINE))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(cg_err)?;
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

    /// `domstats` for one container: state always, the other groups from
    /// its cgroups and network namespace while it runs.
    pub fn stats(&self, d: &DomainRef, groups: StatsGroups) -> Result<TypedParams> {
        let dom = self.doms.get(d)?;
        let (state, reason, live) = {
            let i = dom.lock();
            (i.state, i.reason, i.live.clone())
        };
        let all = groups.bits() == 0;
        let want = |g: StatsGroups| all || groups.contains(g);
        let mut out = TypedParams::new();
        if want(StatsGroups::STATE) {
            out.push(("state.state".into(), TypedValue::Int(state.code())));
            out.push(("state.reason".into(), TypedValue::Int(reason)));
        }
        let Some(live) = live else {
            return Ok(out);
        };
        if want(StatsGroups::STATE)
            && let Some(n) = live.cgroup.pids_current()
        {
            // virtkit's own: how many processes the container has.
            out.push(("state.processes".into(), TypedValue::ULLong(n)));
        }
        if want(StatsGroups::CPU_TOTAL)
            && let Some((t, u, s)) = live.cgroup.cpu_times_ns()
        {
            out.push(("cpu.time".into(), TypedValue::ULLong(t)));
            out.push(("cpu.user".into(), TypedValue::ULLong(u)));
            out.push(("cpu.system".into(), TypedValue::ULLong(s)));
        }
        if want(StatsGroups::BALLOON) {
            let max = live
                .cgroup
                .memory_limit_kib()
                .unwrap_or_else(|| live.live_def.memory_kib());
            out.push((
                "balloon.current".into(),
                TypedValue::ULLong(live.cgroup.memory_usage_kib().unwrap_or(0)),
            ));
            out.push(("balloon.maximum".into(), TypedValue::ULLong(max)));
            // virtkit's own: processes the kernel killed for exceeding the limit.
            if let Some(n) = live.cgroup.oom_kills() {
                out.push(("balloon.oom_kills".into(), TypedValue::ULLong(n)));
            }
        }
        if want(StatsGroups::VCPU) {
            let n = live.live_def.vcpus();
            out.push(("vcpu.current".into(), TypedValue::UInt(n)));
            out.push(("vcpu.maximum".into(), TypedValue::UInt(n)));
        }
        if want(StatsGroups::INTERFACE) {
            let ifaces = interfaces(live.live_def.root());
            out.push(("net.count".into(), TypedValue::UInt(ifaces.len() as u32)));
            for (i, (host, _, guest)) in ifaces.iter().enumerate() {
                out.push((format!("net.{i}.name"), TypedValue::String(host.clone())));
                if let Some(st) = crate::net::guest_stats(live.init_pid, guest) {
                    out.extend(st.domstats(i));
                }
            }
        }
        Ok(out)
    }

    /// Traffic of one interface, named by host veth, guest name or MAC.
    pub fn interface_stats(&self, d: &DomainRef, iface: &str) -> Result<InterfaceStats> {
        let live = self.doms.running(d)?;
        let (_, _, guest) = interfaces(live.live_def.root())
            .into_iter()
            .find(|(h, m, g)| h == iface || g == iface || m.eq_ignore_ascii_case(iface))
            .ok_or_else(|| {
                Error::invalid_arg(format!("invalid path, '{iface}' is not a known interface"))
            })?;
        crate::net::guest_stats(live.init_pid, &guest).ok_or_else(|| {
            failed(format!(
                "no statistics for interface '{iface}' in the container"
            ))
        })
    }

    /// The user side of a console: `None` or `console0` for the first.
    pub fn console_path(&self, d: &DomainRef, dev: Option<&str>) -> Result<PathBuf> {
        let live = self.doms.running(d)?;
        let idx = match dev {
            None => 0,
            Some(a) => a
                .strip_prefix("console")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid_arg(format!(
                        "cannot find console device '{a}' (containers have console0, console1...)"
                    ))
                })?,
        };
        live.consoles.get(idx).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::OperationFailed,
                format!("container '{}' has no console {idx}", d.name),
            )
        })
    }

    /// What a process needs to join a running container.
    pub fn entry(&self, d: &DomainRef) -> Result<virtkit_core::ContainerEntry> {
        let live = self.doms.running(d)?;
        if sys::process_start_time(live.init_pid) != Some(live.init_start) {
            return Err(not_running(&d.name));
        }
        let mut namespaces = Vec::new();
        for kind in ["user", "ipc", "uts", "net", "pid", "mnt"] {
            let path = format!("/proc/{}/ns/{kind}", live.init_pid);
            let f = File::open(&path)
                .map_err(|e| Error::system(format_args!("cannot open {path}"), &e))?;
            namespaces.push((kind.to_string(), OwnedFd::from(f)));
        }
        Ok(virtkit_core::ContainerEntry {
            namespaces,
            cgroup_procs: live.cgroup.procs_files(),
        })
    }
}

/// Each interface of a live definition: (host veth, MAC, guest name).
fn interfaces(domain: &Element) -> Vec<(String, String, String)> {
    let attr = |e: &Element, c: &str, a: &str| {
        e.child(c)
            .and_then(|x| x.attr(a))
            .map(|v| v.into_owned())
            .unwrap_or_default()
    };
    domain
        .child("devices")
        .map(|d| {
            d.children_named("interface")
                .enumerate()
                .map(|(i, n)| {
                    let guest = Some(attr(n, "guest", "dev"))
                        .filter(|g| !g.is_empty())
                        .unwrap_or_else(|| format!("eth{i}"));
                    (attr(n, "target", "dev"), attr(n, "mac", "address"), guest)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Names the host devices and console ptys in the live definition, as
/// libvirt shows them while the container runs.
fn record_live(domain: &mut Element, veths: &[String], consoles: &[PathBuf]) {
    let Some(devices) = domain.child_mut("devices") else {
        return;
    };
    let mut n = 0;
    let mut c = 0;
    for dev in devices.elements_mut() {
        match dev.name() {
            "interface" => {
                if let Some(v) = veths.get(n) {
                    match dev.child_mut("target") {
                        Some(t) => t.set_attr("dev", v),
                        None => dev.push(Element::new("target").with_attr("dev", v)),
                    }
                }
                if dev.child("alias").is_none() {
                    dev.push(Element::new("alias").with_attr("name", &format!("net{n}")));
                }
                n += 1;
            }
            "console" => {
                if let Some(p) = consoles.get(c) {
                    let p = p.to_string_lossy();
                    match dev.child_mut("source") {
                        Some(s) => s.set_attr("path", &p),
                        None => dev.insert_element(0, Element::new("source").with_attr("path", &p)),
                    }
                }
                if dev.child("alias").is_none() {
                    dev.push(Element::new("alias").with_attr("name", &format!("console{c}")));
                }
                c += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_map_to_reasons() {
        let e = Expect::default();
        assert_eq!(
            exit_meaning(Some(Exit::Code(0)), e).0,
            shutoff_reason::SHUTDOWN
        );
        assert!(
            exit_meaning(Some(Exit::Signal(libc::SIGHUP)), e).2,
            "reboot"
        );
        assert_eq!(
            exit_meaning(Some(Exit::Signal(libc::SIGINT)), e).1,
            detail::STOPPED_SHUTDOWN
        );
        assert_eq!(
            exit_meaning(Some(Exit::Signal(libc::SIGKILL)), e),
            (shutoff_reason::CRASHED, detail::STOPPED_CRASHED, false)
        );
        assert_eq!(exit_meaning(None, e).0, shutoff_reason::FAILED);
    }
}
