//! One network driver instance (one root of files), shared by every
//! connection to it in the process: the table of networks behind one async
//! lock, events, and the namespace worker. Its methods are libvirt's
//! network API with libvirt's semantics and messages.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Mutex as AsyncMutex;
use virtkit_core::network::update::{self, Command, Section};
use virtkit_core::network::{NetworkDef, addr};
use virtkit_core::{
    Error, ErrorKind, NetworkDhcpLease, NetworkEventBus, NetworkEventKind, NetworkInfo,
    NetworkListFlags, NetworkRef, NetworkUpdateFlags, Uuid, XmlFlags,
};
use virtkit_netdev::Netdev;

use crate::dnsmasq::{DnsmasqCaps, leases, process};
use crate::error::{NetworkError, Result};
use crate::lifecycle;
use crate::nsexec::{NsWorker, current_netns_inode};
use crate::paths::Layout;
use crate::state::{self, NetFiles, NetObj};

/// A running driver instance.
#[derive(Debug)]
pub struct Service {
    pub(crate) layout: Layout,
    pub(crate) worker: NsWorker,
    netns: Option<OwnedFd>,
    netns_ino: Option<u64>,
    /// The networks. Held only for short, I/O-free steps, so queries never
    /// wait behind a network being started or stopped.
    pub(crate) nets: AsyncMutex<Vec<NetObj>>,
    /// The modify job: changes of networks (define, start, destroy, update,
    /// ...) run one at a time, holding this across their slow work
    /// (bridges, nftables, dnsmasq) while `nets` is free for queries.
    job: AsyncMutex<()>,
    pub(crate) events: NetworkEventBus,
    caps: Mutex<Option<DnsmasqCaps>>,
    pub(crate) ports: Mutex<HashMap<Uuid, Vec<crate::port::NetworkPort>>>,
}

/// Instances of this process, by layout: connections to the same URI share one.
static SERVICES: Mutex<Vec<(Layout, Weak<Service>)>> = Mutex::new(Vec::new());

fn not_found_name(name: &str) -> Error {
    Error::no_network(format!("no network with matching name '{name}'"))
}

impl Service {
    /// The instance for `layout`, loading its files (and taking over the
    /// networks an earlier process left running) on first use. The instance
    /// acts in the network namespace of the thread that first opens it.
    pub async fn open(layout: Layout) -> Result<Arc<Service>> {
        if let Some(s) = SERVICES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(l, _)| *l == layout)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(s);
        }
        let svc = Arc::new(Service {
            worker: NsWorker::spawn()?,
            netns: virtkit_netdev::current_thread_netns().ok(),
            netns_ino: current_netns_inode(),
            nets: AsyncMutex::new(Vec::new()),
            job: AsyncMutex::new(()),
            events: NetworkEventBus::default(),
            caps: Mutex::new(None),
            ports: Mutex::new(HashMap::new()),
            layout: layout.clone(),
        });
        svc.load().await?;
        let mut list = SERVICES.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, w)| w.strong_count() > 0);
        if let Some(existing) = list
            .iter()
            .find(|(l, _)| *l == layout)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(existing);
        }
        list.push((layout, Arc::downgrade(&svc)));
        Ok(svc)
    }

    /// The directories of this instance.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A netdev handle in this instance's network namespace.
    pub(crate) async fn netdev(&self) -> Result<Netdev> {
        if current_netns_inode() == self.netns_ino || self.netns.is_none() {
            return Ok(Netdev::new()?);
        }
        match &self.netns {
            Some(fd) => Ok(Netdev::open_in_netns(fd.as_fd()).await?),
            None => Ok(Netdev::new()?),
        }
    }

    /// dnsmasq's version (probed once).
    pub(crate) async fn dnsmasq_caps(&self, bin: &std::path::Path) -> Result<DnsmasqCaps> {
        if let Some(c) = self.caps.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(c);
        }
        let b = bin.to_path_buf();
        let out = self
            .worker
            .run(move || std::process::Command::new(&b).arg("--version").output())
            .await?
            .map_err(|e| NetworkError::Helper {
                program: bin.display().to_string(),
                detail: format!("cannot run --version: {e}"),
            })?;
        let caps = DnsmasqCaps::from_version_output(
            &bin.display().to_string(),
            &String::from_utf8_lossy(&out.stdout),
        )?;
        *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = Some(caps.clone());
        Ok(caps)
    }

    /// Reads the files; checks that running networks still run (bridge,
    /// dnsmasq) and cleans up after those that do not; autostarts.
    async fn load(&self) -> Result<()> {
        let (mut objs, _problems) = state::load(&self.layout);
        let nd = self.netdev().await?;
        for o in objs.iter_mut() {
            let Some(live) = o.live.as_mut() else {
                continue;
            };
            let owns = live.def.model().forward.mode.owns_bridge();
            let bridge_ok = match live.def.bridge() {
                Some(b) if owns => nd.exists(b).await.unwrap_or(false),
                _ => true,
            };
            let f = NetFiles::new(&self.layout, live.def.name());
            if let Some(pid) = live.dnsmasq {
                let conf = f.dnsmasq_conf.clone();
                let alive = self
                    .worker
                    .run(move || process::is_ours(pid, &conf))
                    .await?;
                if !alive {
                    live.dnsmasq = None;
                }
            }
            if !bridge_ok {
                let stale = live.clone();
                let _ = lifecycle::stop(self, &stale).await;
                o.live = None;
            } else if live.dnsmasq.is_none() && live.def.model().needs_dnsmasq() && owns {
                // dnsmasq died while nobody watched: start it again.
                let mut l = live.clone();
                if lifecycle::restart_dnsmasq(self, &mut l).await.is_ok() {
                    let _ = state::save_live(&self.layout, &l);
                    *live = l;
                }
            }
        }
        objs.retain(|o| o.config.is_some() || o.live.is_some());
        *self.nets.lock().await = objs;
        // Autostart what is marked and not running.
        let names: Vec<String> = self
            .nets
            .lock()
            .await
            .iter()
            .filter(|o| o.autostart && !o.is_active())
            .map(|o| o.name().to_string())
            .collect();
        for n in names {
            if let Ok(h) = self.lookup_by_name(&n).await {
                let _ = self.start(&h).await;
            }
        }
        Ok(())
    }

    fn find<'a>(nets: &'a mut [NetObj], n: &NetworkRef) -> Result<&'a mut NetObj> {
        nets.iter_mut().find(|o| o.uuid() == n.uuid).ok_or_else(|| {
            NetworkError::Core(Error::no_network(format!(
                "no network with matching uuid '{}' ({})",
                n.uuid, n.name
            )))
        })
    }

    /// Networks matching `flags` (libvirt's filter groups).
    pub async fn list_all(&self, flags: NetworkListFlags) -> Vec<NetworkRef> {
        let f = |b| flags.contains(b);
        self.nets
            .lock()
            .await
            .iter()
            .filter(|o| {
                let pick = |a: NetworkListFlags, b: NetworkListFlags, v: bool| {
                    !(f(a) || f(b)) || (v && f(a)) || (!v && f(b))
                };
                pick(
                    NetworkListFlags::ACTIVE,
                    NetworkListFlags::INACTIVE,
                    o.is_active(),
                ) && pick(
                    NetworkListFlags::PERSISTENT,
                    NetworkListFlags::TRANSIENT,
                    o.config.is_some(),
                ) && pick(
                    NetworkListFlags::AUTOSTART,
                    NetworkListFlags::NO_AUTOSTART,
                    o.autostart,
                )
            })
            .map(NetObj::handle)
            .collect()
    }

    /// Finds a network by name.
    pub async fn lookup_by_name(&self, name: &str) -> Result<NetworkRef> {
        self.nets
            .lock()
            .await
            .iter()
            .find(|o| o.name() == name)
            .map(NetObj::handle)
            .ok_or_else(|| not_found_name(name).into())
    }

    /// Finds a network by UUID.
    pub async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        self.nets
            .lock()
            .await
            .iter()
            .find(|o| o.uuid() == *uuid)
            .map(NetObj::handle)
            .ok_or_else(|| {
                Error::no_network(format!("no network with matching uuid '{uuid}'")).into()
            })
    }

    /// `net-info`.
    pub async fn info(&self, n: &NetworkRef) -> Result<NetworkInfo> {
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        Ok(NetworkInfo {
            net: o.handle(),
            active: o.is_active(),
            persistent: o.config.is_some(),
            autostart: o.autostart,
            bridge: o.current().bridge().map(str::to_string),
        })
    }

    /// The network's XML in libvirt's canonical form.
    pub async fn xml_desc(&self, n: &NetworkRef, flags: XmlFlags) -> Result<String> {
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        let inactive = flags.contains(XmlFlags::INACTIVE);
        let def = match (&o.config, inactive) {
            (Some(c), true) => c,
            _ => o.current(),
        };
        Ok(state::canonical(def, inactive))
    }

    /// Parses, names and checks a new definition against the others.
    async fn prepare(&self, nets: &[NetObj], xml: &str) -> Result<NetworkDef> {
        let mut def = NetworkDef::parse(xml)?;
        def.assign_uuid()?;
        let name = def.name().to_string();
        let uuid = def.uuid().unwrap_or_default();
        // A network of the same name must have the same UUID and vice versa.
        for o in nets {
            if o.name() == name && o.uuid() != uuid {
                return Err(Error::new(
                    ErrorKind::OperationFailed,
                    format!("network '{name}' already exists with uuid {}", o.uuid()),
                )
                .into());
            }
            if o.uuid() == uuid && o.name() != name {
                return Err(Error::new(
                    ErrorKind::OperationFailed,
                    format!("network '{}' is already defined with uuid {uuid}", o.name()),
                )
                .into());
            }
        }
        let taken: Vec<String> = nets
            .iter()
            .filter(|o| o.name() != name)
            .flat_map(NetObj::bridges)
            .collect();
        let host_links: Vec<String> = match self.netdev().await {
            Ok(nd) => nd
                .links()
                .await
                .map(|v| v.into_iter().map(|l| l.name).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        // An existing definition keeps its bridge and MAC when redefined
        // without them.
        if let Some(old) = nets.iter().find(|o| o.name() == name) {
            let old = old.config.as_ref().unwrap_or_else(|| old.current());
            if def.bridge().is_none()
                && let Some(b) = old.bridge()
            {
                def.set_bridge(b)?;
            }
            if def.mac().is_none()
                && def.model().forward.mode.owns_bridge()
                && let Some(m) = old.mac()
            {
                def.set_mac(m)?;
            }
        }
        def.prepare_for_host(&|b| taken.iter().any(|t| t == b), &|b| {
            host_links.iter().any(|t| t == b)
        })?;
        Ok(def)
    }

    /// `virNetworkDefineXML`.
    pub async fn define_xml(&self, xml: &str) -> Result<NetworkRef> {
        let _job = self.job.lock().await;
        let mut nets = self.nets.lock().await;
        let def = self.prepare(&nets, xml).await?;
        state::save_config(&self.layout, &def)?;
        let handle = NetworkRef {
            name: def.name().to_string(),
            uuid: def.uuid().unwrap_or_default(),
        };
        match nets.iter_mut().find(|o| o.name() == def.name()) {
            Some(o) => o.config = Some(def),
            None => nets.push(NetObj {
                config: Some(def),
                live: None,
                autostart: false,
            }),
        }
        self.events.emit(handle.clone(), NetworkEventKind::Defined);
        Ok(handle)
    }

    /// `virNetworkCreateXML`: a transient network, started at once.
    pub async fn create_xml(&self, xml: &str) -> Result<NetworkRef> {
        let _job = self.job.lock().await;
        let (def, active) = {
            let nets = self.nets.lock().await;
            let def = self.prepare(&nets, xml).await?;
            if let Some(o) = nets.iter().find(|o| o.name() == def.name())
                && o.is_active()
            {
                return Err(Error::operation_invalid(format!(
                    "network is already active as '{}'",
                    o.name()
                ))
                .into());
            }
            (def, Service::active_defs(&nets, None))
        };
        let live = lifecycle::start(self, &def, &active.iter().collect::<Vec<_>>()).await?;
        let handle = NetworkRef {
            name: def.name().to_string(),
            uuid: def.uuid().unwrap_or_default(),
        };
        let mut nets = self.nets.lock().await;
        match nets.iter_mut().find(|o| o.name() == def.name()) {
            Some(o) => o.live = Some(live),
            None => nets.push(NetObj {
                config: None,
                live: Some(live),
                autostart: false,
            }),
        }
        self.events.emit(handle.clone(), NetworkEventKind::Started);
        Ok(handle)
    }

    /// The definitions of the running networks (but `except`), for the
    /// checks a start makes against them.
    fn active_defs(nets: &[NetObj], except: Option<Uuid>) -> Vec<NetworkDef> {
        nets.iter()
            .filter(|o| Some(o.uuid()) != except)
            .filter_map(|o| o.live.as_ref().map(|l| l.def.clone()))
            .collect()
    }

    /// `virNetworkCreate`: starts a defined network.
    pub async fn start(&self, n: &NetworkRef) -> Result<()> {
        let _job = self.job.lock().await;
        let (def, handle, active) = {
            let mut nets = self.nets.lock().await;
            let o = Service::find(&mut nets, n)?;
            if o.is_active() {
                return Err(Error::operation_invalid("network is already active").into());
            }
            let (def, handle) = (o.current().clone(), o.handle());
            (def, handle, Service::active_defs(&nets, Some(n.uuid)))
        };
        let live = lifecycle::start(self, &def, &active.iter().collect::<Vec<_>>()).await?;
        Service::find(&mut self.nets.lock().await, n)?.live = Some(live);
        self.events.emit(handle, NetworkEventKind::Started);
        Ok(())
    }

    /// `virNetworkDestroy`.
    pub async fn destroy(&self, n: &NetworkRef) -> Result<()> {
        let _job = self.job.lock().await;
        let (handle, live) = {
            let mut nets = self.nets.lock().await;
            let o = Service::find(&mut nets, n)?;
            if !o.is_active() {
                return Err(Error::operation_invalid("network is not active").into());
            }
            (o.handle(), o.live.clone())
        };
        let res = match &live {
            Some(live) => lifecycle::stop(self, live).await,
            None => Ok(()),
        };
        {
            let mut nets = self.nets.lock().await;
            if let Some(i) = nets.iter().position(|o| o.uuid() == n.uuid) {
                if nets[i].config.is_none() {
                    let f = NetFiles::new(&self.layout, &handle.name);
                    state::remove(&f.leases);
                    nets.remove(i);
                } else {
                    nets[i].live = None;
                }
            }
        }
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&n.uuid);
        self.events.emit(handle, NetworkEventKind::Stopped);
        res
    }

    /// `virNetworkUndefine`.
    pub async fn undefine(&self, n: &NetworkRef) -> Result<()> {
        let _job = self.job.lock().await;
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        let Some(cfg) = o.config.as_ref() else {
            return Err(Error::operation_invalid("can't undefine transient network").into());
        };
        let name = cfg.name().to_string();
        let handle = o.handle();
        let f = NetFiles::new(&self.layout, &name);
        state::set_autostart(&self.layout, &name, false)?;
        match std::fs::remove_file(&f.config) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetworkError::file("remove", &f.config, e)),
        }
        if o.is_active() {
            // A running network stays, now transient.
            o.config = None;
            o.autostart = false;
        } else {
            state::remove(&f.leases);
            nets.retain(|x| x.uuid() != n.uuid);
        }
        self.events.emit(handle, NetworkEventKind::Undefined);
        Ok(())
    }

    /// `virNetworkSetAutostart`.
    pub async fn set_autostart(&self, n: &NetworkRef, on: bool) -> Result<()> {
        let _job = self.job.lock().await;
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        if o.config.is_none() {
            return Err(
                Error::operation_invalid("cannot set autostart for transient network").into(),
            );
        }
        state::set_autostart(&self.layout, o.name(), on)?;
        o.autostart = on;
        Ok(())
    }

    /// `virNetworkUpdate`.
    pub async fn update(
        &self,
        n: &NetworkRef,
        command: Command,
        section: Section,
        parent_index: i32,
        xml: &str,
        flags: NetworkUpdateFlags,
    ) -> Result<()> {
        let _job = self.job.lock().await;
        let (mut new_live, new_config) = {
            let mut nets = self.nets.lock().await;
            let o = Service::find(&mut nets, n)?;
            let mut live_flag = flags.contains(NetworkUpdateFlags::LIVE);
            let mut config_flag = flags.contains(NetworkUpdateFlags::CONFIG);
            if !live_flag && !config_flag {
                // "current": the running network if it runs, else the definition.
                if o.is_active() {
                    live_flag = true;
                } else {
                    config_flag = true;
                }
            }
            if live_flag && !o.is_active() {
                return Err(Error::operation_invalid("network is not running").into());
            }
            if config_flag && o.config.is_none() {
                return Err(Error::operation_invalid(
                    "cannot change persistent config of a transient network",
                )
                .into());
            }
            let new_live = match (&o.live, live_flag) {
                (Some(l), true) => {
                    let mut l = l.clone();
                    update::apply(&mut l.def, command, section, parent_index, xml)?;
                    Some(l)
                }
                _ => None,
            };
            let new_config = match (&o.config, config_flag) {
                (Some(c), true) => {
                    let mut c = c.clone();
                    update::apply(&mut c, command, section, parent_index, xml)?;
                    Some(c)
                }
                _ => None,
            };
            (new_live, new_config)
        };
        if let Some(l) = new_live.as_mut() {
            match section {
                // In dnsmasq's configuration file: a restart reads it.
                Section::IpDhcpRange | Section::DnsTxt | Section::DnsSrv => {
                    lifecycle::restart_dnsmasq(self, l).await?
                }
                // In its host files: a SIGHUP rereads them.
                Section::IpDhcpHost | Section::DnsHost => lifecycle::refresh_hosts(self, l).await?,
                // Port groups and forward interfaces only concern new ports.
                _ => {}
            }
            state::save_live(&self.layout, l)?;
        }
        if let Some(c) = &new_config {
            state::save_config(&self.layout, c)?;
        }
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        if let Some(l) = new_live {
            o.live = Some(l);
        }
        if let Some(c) = new_config {
            o.config = Some(c);
        }
        Ok(())
    }

    /// `virNetworkGetDHCPLeases`, from dnsmasq's lease file.
    pub async fn dhcp_leases(
        &self,
        n: &NetworkRef,
        mac: Option<&str>,
    ) -> Result<Vec<NetworkDhcpLease>> {
        let mut nets = self.nets.lock().await;
        let o = Service::find(&mut nets, n)?;
        let def = o.current().clone();
        let bridge = def.bridge().unwrap_or_default().to_string();
        let f = NetFiles::new(&self.layout, def.name());
        let text = std::fs::read_to_string(&f.leases).unwrap_or_default();
        let prefix_of = |ip: &str| -> u32 {
            let Some(a) = addr::parse_ip(ip) else {
                return 0;
            };
            def.model()
                .ips
                .iter()
                .find(|i| {
                    i.prefix_len()
                        .is_some_and(|p| addr::in_subnet(a, i.address, p))
                })
                .and_then(|i| i.prefix_len())
                .map_or(0, u32::from)
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let want = mac.and_then(|m| m.parse::<virtkit_core::MacAddr>().ok());
        Ok(leases::parse(&text, &bridge, prefix_of)
            .into_iter()
            .filter(|l| l.expiry_time == 0 || l.expiry_time > now)
            .filter(|l| want.is_none_or(|w| l.mac.parse::<virtkit_core::MacAddr>().ok() == Some(w)))
            .collect())
    }
}
