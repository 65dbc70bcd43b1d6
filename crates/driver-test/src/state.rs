//! The in-memory host: domains and networks with libvirt's test-driver
//! state machine (ids, state reasons, events and error messages).
//!
//! All state sits behind one mutex that is never held across an await or a
//! blocking call, so queries and changes are each atomic and cheap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use virtkit_core::domain::table::{
    ListFacts, already_active, already_defined, already_exists, matches_list_flags, no_domain,
    no_domain_id, no_domain_name, no_domain_uuid,
};
use virtkit_core::domain::{DomainDef, FormatOptions};
use virtkit_core::event::detail;
use virtkit_core::network::update;
use virtkit_core::network::{FormatOptions as NetworkFormat, NetworkDef};
use virtkit_core::types::{paused_reason, running_reason, shutoff_reason};
use virtkit_core::xml::Document;
use virtkit_core::{
    CreateFlags, DomainInfo, DomainRef, DomainState, Error, ErrorKind, EventBus,
    InterfaceListFlags, InterfaceRef, LifecycleEvent, LifecycleKind, ListFlags, NetworkInfo,
    NetworkListFlags, NetworkRef, NetworkUpdateFlags, PoolListFlags, Result, StoragePoolInfo,
    StoragePoolRef, StorageVolRef, UndefineFlags, Uuid, XmlFlags,
};

use crate::host::{Iface, Pool, no_interface, no_pool};
use crate::node::Node;
use crate::profile::{TestProfile, assign_ifnames};

/// One domain.
#[derive(Debug, Clone)]
pub(crate) struct Dom {
    /// The definition in use (the live one while running).
    pub def: DomainDef,
    /// A persistent definition given while running, used from the next stop.
    pub next_def: Option<DomainDef>,
    pub state: DomainState,
    pub reason: i32,
    pub id: Option<u32>,
    pub persistent: bool,
    pub autostart: bool,
    pub managed_save: bool,
    name: String,
    uuid: Uuid,
}

impl Dom {
    pub fn new(mut def: DomainDef, persistent: bool) -> Dom {
        def.assign_generated(&TestProfile);
        assign_ifnames(&mut def);
        let name = def.name();
        let uuid = def.uuid().unwrap_or_else(Uuid::random);
        Dom {
            def,
            next_def: None,
            state: DomainState::Shutoff,
            reason: shutoff_reason::UNKNOWN,
            id: None,
            persistent,
            autostart: false,
            managed_save: false,
            name,
            uuid,
        }
    }

    pub fn handle(&self) -> DomainRef {
        DomainRef {
            name: self.name.clone(),
            uuid: self.uuid,
            id: self.id,
        }
    }

    fn is_active(&self) -> bool {
        self.state.is_active()
    }

    fn matches(&self, flags: ListFlags) -> bool {
        matches_list_flags(
            &ListFacts {
                active: self.is_active(),
                persistent: self.persistent,
                autostart: self.autostart,
                state: self.state,
                managed_save: Some(self.managed_save),
            },
            flags,
        )
    }
}

/// One virtual network: its definition (with libvirt's canonical output)
/// and the test driver's flags.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    /// The definition in effect (the running one while active).
    pub def: NetworkDef,
    /// A persistent definition changed while the network runs: it takes
    /// effect when the network stops.
    pub next_def: Option<NetworkDef>,
    pub name: String,
    pub uuid: Uuid,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
}

impl Net {
    /// A network from a parsed document (libvirt's test driver runs only
    /// the parser's checks, not a network driver's).
    pub fn from_doc(doc: Document) -> Result<Net> {
        Net::from_def(NetworkDef::from_document(doc)?)
    }

    /// A network from a definition, with a UUID generated when missing.
    pub fn from_def(mut def: NetworkDef) -> Result<Net> {
        def.assign_uuid()?;
        Ok(Net {
            name: def.name().to_string(),
            uuid: def.uuid().unwrap_or_default(),
            def,
            next_def: None,
            active: false,
            persistent: true,
            autostart: false,
        })
    }

    pub fn handle(&self) -> NetworkRef {
        NetworkRef {
            name: self.name.clone(),
            uuid: self.uuid,
        }
    }

    pub fn bridge(&self) -> Option<String> {
        self.def.bridge().map(str::to_string)
    }

    /// The network's XML as libvirt's formatter prints it.
    pub fn xml(&self, inactive: bool) -> String {
        let def = match (&self.next_def, inactive) {
            (Some(next), true) => next,
            _ => &self.def,
        };
        def.to_xml_canonical(&NetworkFormat { inactive })
    }
}

/// Domains indexed by UUID and by name.
#[derive(Debug, Default)]
pub(crate) struct DomTable {
    by_uuid: HashMap<Uuid, Dom>,
    by_name: HashMap<String, Uuid>,
}

impl DomTable {
    pub fn get(&self, uuid: &Uuid) -> Option<&Dom> {
        self.by_uuid.get(uuid)
    }

    pub fn get_mut(&mut self, uuid: &Uuid) -> Option<&mut Dom> {
        self.by_uuid.get_mut(uuid)
    }

    pub fn by_name(&self, name: &str) -> Option<&Dom> {
        self.by_name.get(name).and_then(|u| self.by_uuid.get(u))
    }

    pub fn insert(&mut self, dom: Dom) {
        self.by_name.insert(dom.name.clone(), dom.uuid);
        self.by_uuid.insert(dom.uuid, dom);
    }

    pub fn remove(&mut self, uuid: &Uuid) -> Option<Dom> {
        let dom = self.by_uuid.remove(uuid)?;
        self.by_name.remove(&dom.name);
        Some(dom)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dom> {
        self.by_uuid.values()
    }
}

impl FromIterator<Dom> for DomTable {
    fn from_iter<I: IntoIterator<Item = Dom>>(iter: I) -> Self {
        let mut t = DomTable::default();
        for d in iter {
            t.insert(d);
        }
        t
    }
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub doms: DomTable,
    pub nets: Vec<Net>,
    pub ifaces: Vec<Iface>,
    pub pools: Vec<Pool>,
    pub next_id: u32,
}

/// A whole fake host, shared by the connections that opened it.
#[derive(Debug)]
pub(crate) struct TestState {
    inner: Mutex<Inner>,
    pub events: EventBus,
    pub node: Node,
}

fn not_running() -> Error {
    Error::operation_invalid("domain is not running")
}

fn cpu_time_now() -> u64 {
    // The test driver reports wall-clock time as CPU time, like libvirt's.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl TestState {
    pub fn new(
        node: Node,
        doms: Vec<Dom>,
        nets: Vec<Net>,
        (ifaces, pools): (Vec<Iface>, Vec<Pool>),
        next_id: u32,
    ) -> TestState {
        TestState {
            inner: Mutex::new(Inner {
                doms: doms.into_iter().collect(),
                nets,
                ifaces,
                pools,
                next_id,
            }),
            events: EventBus::default(),
            node,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave half-done state
        // (every change is a single assignment), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, dom: DomainRef, kind: LifecycleKind, detail: i32) {
        self.events.emit(LifecycleEvent::new(dom, kind, detail));
    }

    /// Runs `f` on the domain `d` names.
    fn with_dom<T>(&self, d: &DomainRef, f: impl FnOnce(&mut Dom) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let dom = inner.doms.get_mut(&d.uuid).ok_or_else(|| no_domain(d))?;
        f(dom)
    }

    // ---- queries ----

    pub fn list(&self, flags: ListFlags) -> Vec<DomainRef> {
        self.lock()
            .doms
            .iter()
            .filter(|d| d.matches(flags))
            .map(Dom::handle)
            .collect()
    }

    pub fn lookup_name(&self, name: &str) -> Result<DomainRef> {
        self.lock()
            .doms
            .by_name(name)
            .map(Dom::handle)
            .ok_or_else(|| no_domain_name(name))
    }

    pub fn lookup_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        self.lock()
            .doms
            .get(uuid)
            .map(Dom::handle)
            .ok_or_else(|| no_domain_uuid(uuid))
    }

    pub fn lookup_id(&self, id: u32) -> Result<DomainRef> {
        self.lock()
            .doms
            .iter()
            .find(|d| d.id == Some(id))
            .map(Dom::handle)
            .ok_or_else(|| no_domain_id(id))
    }

    pub fn state(&self, d: &DomainRef) -> Result<(DomainState, i32)> {
        self.with_dom(d, |dom| Ok((dom.state, dom.reason)))
    }

    pub fn info(&self, d: &DomainRef) -> Result<DomainInfo> {
        self.with_dom(d, |dom| {
            Ok(DomainInfo {
                state: dom.state,
                max_mem_kib: dom.def.memory_kib(),
                memory_kib: dom.def.current_memory_kib(),
                nr_virt_cpu: dom.def.vcpus(),
                cpu_time_ns: cpu_time_now(),
            })
        })
    }

    pub fn xml(&self, d: &DomainRef, flags: XmlFlags) -> Result<String> {
        self.with_dom(d, |dom| {
            let inactive = flags.contains(XmlFlags::INACTIVE);
            let def = match (&dom.next_def, inactive) {
                (Some(next), true) => next,
                _ => &dom.def,
            };
            Ok(def.to_xml_canonical(
                &TestProfile,
                &FormatOptions {
                    id: dom.id,
                    inactive: inactive || !dom.is_active(),
                    secure: flags.contains(XmlFlags::SECURE),
                },
            ))
        })
    }

    pub fn autostart(&self, d: &DomainRef) -> Result<bool> {
        self.with_dom(d, |dom| Ok(dom.autostart))
    }

    pub fn persistent(&self, d: &DomainRef) -> Result<bool> {
        self.with_dom(d, |dom| Ok(dom.persistent))
    }

    pub fn managed_save(&self, d: &DomainRef) -> Result<bool> {
        self.with_dom(d, |dom| Ok(dom.managed_save))
    }

    pub fn is_active(&self, d: &DomainRef) -> Result<bool> {
        self.with_dom(d, |dom| Ok(dom.is_active()))
    }

    // ---- definitions ----

    /// Finds where a new definition goes: `Ok(Some(uuid))` to update that
    /// domain, `Ok(None)` for a new one, or libvirt's conflict errors.
    fn place(inner: &Inner, name: &str, uuid: Option<Uuid>) -> Result<Option<Uuid>> {
        if let Some(d) = uuid.and_then(|u| inner.doms.get(&u)) {
            if d.name != name {
                return Err(already_defined(&d.name, &d.uuid));
            }
            return Ok(Some(d.uuid));
        }
        if let Some(d) = inner.doms.by_name(name) {
            return Err(already_exists(&d.name, &d.uuid));
        }
        Ok(None)
    }

    pub fn define(&self, def: DomainDef) -> Result<DomainRef> {
        let mut inner = self.lock();
        let (name, uuid) = (def.name(), def.uuid());
        match Self::place(&inner, &name, uuid)? {
            Some(u) => {
                let fresh = Dom::new(def, true);
                let dom = inner
                    .doms
                    .get_mut(&u)
                    .expect("place() found it under the same lock");
                if dom.is_active() {
                    dom.next_def = Some(fresh.def);
                } else {
                    dom.def = fresh.def;
                }
                dom.persistent = true;
                let h = dom.handle();
                drop(inner);
                self.emit(h.clone(), LifecycleKind::Defined, detail::DEFINED_UPDATED);
                Ok(h)
            }
            None => {
                let dom = Dom::new(def, true);
                let h = dom.handle();
                inner.doms.insert(dom);
                drop(inner);
                self.emit(h.clone(), LifecycleKind::Defined, detail::DEFINED_ADDED);
                Ok(h)
            }
        }
    }

    pub fn create_transient(&self, def: DomainDef, flags: CreateFlags) -> Result<DomainRef> {
        check_create_flags(flags)?;
        let mut inner = self.lock();
        let (name, uuid) = (def.name(), def.uuid());
        if let Some(d) = Self::place(&inner, &name, uuid)?.and_then(|u| inner.doms.get(&u)) {
            if d.is_active() {
                return Err(already_active(&d.name));
            }
            return Err(already_exists(&d.name, &d.uuid));
        }
        let mut dom = Dom::new(def, false);
        let id = inner.next_id;
        inner.next_id += 1;
        start(&mut dom, id, flags);
        let h = dom.handle();
        inner.doms.insert(dom);
        drop(inner);
        self.emit_start(&h, flags);
        Ok(h)
    }

    fn emit_start(&self, h: &DomainRef, flags: CreateFlags) {
        self.emit(h.clone(), LifecycleKind::Started, detail::STARTED_BOOTED);
        if flags.contains(CreateFlags::PAUSED) {
            self.emit(
                h.clone(),
                LifecycleKind::Suspended,
                detail::SUSPENDED_PAUSED,
            );
        }
    }

    pub fn undefine(&self, d: &DomainRef, flags: UndefineFlags) -> Result<()> {
        let mut inner = self.lock();
        let dom = inner.doms.get_mut(&d.uuid).ok_or_else(|| no_domain(d))?;
        // Undefining a transient domain is accepted (and changes nothing),
        // as libvirt's test driver does.
        if dom.managed_save && !flags.contains(UndefineFlags::MANAGED_SAVE) {
            return Err(Error::operation_invalid(
                "Refusing to undefine while domain managed save image exists",
            ));
        }
        let h = dom.handle();
        if dom.is_active() {
            dom.persistent = false;
            dom.autostart = false;
            dom.next_def = None;
        } else {
            inner.doms.remove(&d.uuid);
        }
        drop(inner);
        self.emit(h, LifecycleKind::Undefined, detail::UNDEFINED_REMOVED);
        Ok(())
    }

    // ---- lifecycle ----

    pub fn start(&self, d: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        check_create_flags(flags)?;
        let mut inner = self.lock();
        let id = inner.next_id;
        let dom = inner.doms.get_mut(&d.uuid).ok_or_else(|| no_domain(d))?;
        if dom.is_active() {
            return Err(Error::operation_invalid(format!(
                "Domain '{}' is already running",
                dom.name
            )));
        }
        start(dom, id, flags);
        let h = dom.handle();
        inner.next_id += 1;
        drop(inner);
        self.emit_start(&h, flags);
        Ok(h)
    }

    /// Moves a running domain to shut off; removes it when transient.
    fn stop(inner: &mut Inner, uuid: &Uuid, reason: i32) -> DomainRef {
        let dom = inner
            .doms
            .get_mut(uuid)
            .expect("caller found the domain under the same lock");
        let h = dom.handle();
        dom.state = DomainState::Shutoff;
        dom.reason = reason;
        dom.id = None;
        if let Some(next) = dom.next_def.take() {
            dom.def = next;
        }
        if !dom.persistent {
            inner.doms.remove(uuid);
        }
        h
    }

    pub fn destroy(&self, d: &DomainRef) -> Result<()> {
        let mut inner = self.lock();
        let dom = inner.doms.get(&d.uuid).ok_or_else(|| no_domain(d))?;
        if !dom.is_active() {
            return Err(not_running());
        }
        let h = Self::stop(&mut inner, &d.uuid, shutoff_reason::DESTROYED);
        drop(inner);
        self.emit(h, LifecycleKind::Stopped, detail::STOPPED_DESTROYED);
        Ok(())
    }

    pub fn shutdown(&self, d: &DomainRef) -> Result<()> {
        let mut inner = self.lock();
        let dom = inner.doms.get(&d.uuid).ok_or_else(|| no_domain(d))?;
        if dom.state != DomainState::Running {
            return Err(Error::internal(format!(
                "domain '{}' not running",
                dom.name
            )));
        }
        let h = Self::stop(&mut inner, &d.uuid, shutoff_reason::SHUTDOWN);
        drop(inner);
        self.emit(h, LifecycleKind::Stopped, detail::STOPPED_SHUTDOWN);
        Ok(())
    }

    pub fn reboot(&self, d: &DomainRef) -> Result<()> {
        let mut inner = self.lock();
        let dom = inner.doms.get_mut(&d.uuid).ok_or_else(|| no_domain(d))?;
        if !dom.is_active() {
            return Err(not_running());
        }
        // The guest goes down and the on_reboot action decides what follows.
        match dom.def.lifecycle_action("on_reboot").as_str() {
            "destroy" => {
                let h = Self::stop(&mut inner, &d.uuid, shutoff_reason::SHUTDOWN);
                drop(inner);
                self.emit(h, LifecycleKind::Stopped, detail::STOPPED_SHUTDOWN);
            }
            _ => {
                dom.state = DomainState::Running;
                dom.reason = running_reason::BOOTED;
            }
        }
        Ok(())
    }

    pub fn reset(&self, d: &DomainRef) -> Result<()> {
        self.with_dom(d, |dom| {
            if !dom.is_active() {
                return Err(not_running());
            }
            Ok(())
        })
    }

    pub fn suspend(&self, d: &DomainRef) -> Result<()> {
        let h = self.with_dom(d, |dom| {
            if dom.state != DomainState::Running {
                return Err(Error::internal(format!(
                    "domain '{}' not running",
                    dom.name
                )));
            }
            dom.state = DomainState::Paused;
            dom.reason = paused_reason::USER;
            Ok(dom.handle())
        })?;
        self.emit(h, LifecycleKind::Suspended, detail::SUSPENDED_PAUSED);
        Ok(())
    }

    pub fn resume(&self, d: &DomainRef) -> Result<()> {
        let h = self.with_dom(d, |dom| {
            if dom.state != DomainState::Paused {
                return Err(Error::internal(format!("domain '{}' not paused", dom.name)));
            }
            dom.state = DomainState::Running;
            dom.reason = running_reason::UNPAUSED;
            Ok(dom.handle())
        })?;
        self.emit(h, LifecycleKind::Resumed, detail::RESUMED_UNPAUSED);
        Ok(())
    }

    pub fn set_autostart(&self, d: &DomainRef, on: bool) -> Result<()> {
        // libvirt's test driver accepts autostart on transient domains too.
        self.with_dom(d, |dom| {
            dom.autostart = on;
            Ok(())
        })
    }

    // ---- networks ----

    fn with_net<T>(&self, n: &NetworkRef, f: impl FnOnce(&mut Net) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let net = inner
            .nets
            .iter_mut()
            .find(|x| x.uuid == n.uuid)
            .ok_or_else(|| {
                Error::no_network(format!(
                    "no network with matching uuid '{}' ({})",
                    n.uuid, n.name
                ))
            })?;
        f(net)
    }

    pub fn net_list(&self, flags: NetworkListFlags) -> Vec<NetworkRef> {
        let f = |b| flags.contains(b);
        self.lock()
            .nets
            .iter()
            .filter(|n| {
                let act = f(NetworkListFlags::ACTIVE) || f(NetworkListFlags::INACTIVE);
                let per = f(NetworkListFlags::PERSISTENT) || f(NetworkListFlags::TRANSIENT);
                let aut = f(NetworkListFlags::AUTOSTART) || f(NetworkListFlags::NO_AUTOSTART);
                (!act
                    || (n.active && f(NetworkListFlags::ACTIVE))
                    || (!n.active && f(NetworkListFlags::INACTIVE)))
                    && (!per
                        || (n.persistent && f(NetworkListFlags::PERSISTENT))
                        || (!n.persistent && f(NetworkListFlags::TRANSIENT)))
                    && (!aut
                        || (n.autostart && f(NetworkListFlags::AUTOSTART))
                        || (!n.autostart && f(NetworkListFlags::NO_AUTOSTART)))
            })
            .map(Net::handle)
            .collect()
    }

    pub fn net_lookup_name(&self, name: &str) -> Result<NetworkRef> {
        self.lock()
            .nets
            .iter()
            .find(|n| n.name == name)
            .map(Net::handle)
            .ok_or_else(|| Error::no_network(format!("no network with matching name '{name}'")))
    }

    pub fn net_lookup_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        self.lock()
            .nets
            .iter()
            .find(|n| n.uuid == *uuid)
            .map(Net::handle)
            .ok_or_else(|| Error::no_network(format!("no network with matching uuid '{uuid}'")))
    }

    pub fn net_info(&self, n: &NetworkRef) -> Result<NetworkInfo> {
        self.with_net(n, |net| {
            Ok(NetworkInfo {
                net: net.handle(),
                active: net.active,
                persistent: net.persistent,
                autostart: net.autostart,
                bridge: net.bridge(),
            })
        })
    }

    pub fn net_xml(&self, n: &NetworkRef, inactive: bool) -> Result<String> {
        self.with_net(n, |net| Ok(net.xml(inactive)))
    }

    /// `virNetworkUpdate`: the running definition (`--live`), the
    /// persistent one (`--config`), or the one in effect.
    pub fn net_update(
        &self,
        n: &NetworkRef,
        command: update::Command,
        section: update::Section,
        parent_index: i32,
        xml: &str,
        flags: NetworkUpdateFlags,
    ) -> Result<()> {
        self.with_net(n, |net| {
            let mut live = flags.contains(NetworkUpdateFlags::LIVE);
            let mut config = flags.contains(NetworkUpdateFlags::CONFIG);
            if !live && !config {
                // "current": the running definition if it runs.
                live = net.active;
                config = !net.active;
            }
            if live && !net.active {
                return Err(Error::operation_invalid("network is not running"));
            }
            if config && !net.persistent {
                return Err(Error::operation_invalid(
                    "cannot change persistent config of a transient network",
                ));
            }
            // Both copies are changed, or neither.
            let new_live = if live {
                let mut d = net.def.clone();
                update::apply(&mut d, command, section, parent_index, xml)?;
                Some(d)
            } else {
                None
            };
            let new_config = if config && net.active {
                let mut d = net.next_def.clone().unwrap_or_else(|| net.def.clone());
                update::apply(&mut d, command, section, parent_index, xml)?;
                Some(d)
            } else {
                None
            };
            if config && !net.active {
                update::apply(&mut net.def, command, section, parent_index, xml)?;
            }
            if let Some(d) = new_live {
                net.def = d;
            }
            if let Some(d) = new_config {
                net.next_def = Some(d);
            }
            Ok(())
        })
    }

    fn net_add(&self, mut net: Net, active: bool) -> Result<NetworkRef> {
        let mut inner = self.lock();
        if let Some(i) = inner.nets.iter().position(|x| x.uuid == net.uuid) {
            let old = &inner.nets[i];
            if old.name != net.name {
                return Err(Error::new(
                    ErrorKind::OperationFailed,
                    format!(
                        "network '{}' is already defined with uuid {}",
                        old.name, old.uuid
                    ),
                ));
            }
            if active && old.active {
                return Err(Error::operation_invalid(format!(
                    "network is already active as '{}'",
                    old.name
                )));
            }
            let h = net.handle();
            let old = &mut inner.nets[i];
            if old.active && !active {
                // Defining a running network: the new definition waits
                // for the network to stop.
                old.next_def = Some(net.def);
                old.persistent = true;
            } else {
                old.persistent = old.persistent || !active;
                old.active = old.active || active;
                old.def = net.def;
                old.next_def = None;
            }
            return Ok(h);
        }
        if let Some(old) = inner.nets.iter().find(|x| x.name == net.name) {
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!(
                    "network '{}' already exists with uuid {}",
                    old.name, old.uuid
                ),
            ));
        }
        net.active = active;
        net.persistent = !active;
        let h = net.handle();
        inner.nets.push(net);
        Ok(h)
    }

    pub fn net_define(&self, net: Net) -> Result<NetworkRef> {
        self.net_add(net, false)
    }

    pub fn net_create(&self, net: Net) -> Result<NetworkRef> {
        self.net_add(net, true)
    }

    pub fn net_undefine(&self, n: &NetworkRef) -> Result<()> {
        let mut inner = self.lock();
        let i = inner
            .nets
            .iter()
            .position(|x| x.uuid == n.uuid)
            .ok_or_else(|| {
                Error::no_network(format!("no network with matching uuid '{}'", n.uuid))
            })?;
        if !inner.nets[i].persistent {
            return Err(Error::operation_invalid(
                "cannot undefine transient network",
            ));
        }
        if inner.nets[i].active {
            inner.nets[i].persistent = false;
            inner.nets[i].autostart = false;
            inner.nets[i].next_def = None;
        } else {
            inner.nets.remove(i);
        }
        Ok(())
    }

    pub fn net_start(&self, n: &NetworkRef) -> Result<()> {
        self.with_net(n, |net| {
            if net.active {
                return Err(Error::operation_invalid(format!(
                    "Network '{}' is already running",
                    net.name
                )));
            }
            net.active = true;
            Ok(())
        })
    }

    pub fn net_destroy(&self, n: &NetworkRef) -> Result<()> {
        let mut inner = self.lock();
        let i = inner
            .nets
            .iter()
            .position(|x| x.uuid == n.uuid)
            .ok_or_else(|| {
                Error::no_network(format!("no network with matching uuid '{}'", n.uuid))
            })?;
        // libvirt's test driver destroys an inactive network again
        // without complaint.
        if inner.nets[i].persistent {
            let net = &mut inner.nets[i];
            net.active = false;
            // libvirt's test driver keeps the running definition when a
            // network stops; changes made to the persistent one meanwhile
            // are dropped (its real network driver applies them).
            net.next_def = None;
        } else {
            inner.nets.remove(i);
        }
        Ok(())
    }

    pub fn net_set_autostart(&self, n: &NetworkRef, on: bool) -> Result<()> {
        self.with_net(n, |net| {
            if !net.persistent {
                return Err(Error::operation_invalid(
                    "cannot set autostart for transient network",
                ));
            }
            net.autostart = on;
            Ok(())
        })
    }
}

impl TestState {
    // ---- host interfaces ----

    pub fn iface_list(&self, flags: InterfaceListFlags) -> Vec<InterfaceRef> {
        self.lock()
            .ifaces
            .iter()
            .filter(|i| i.matches(flags))
            .map(Iface::handle)
            .collect()
    }

    pub fn iface_lookup_name(&self, name: &str) -> Result<InterfaceRef> {
        self.lock()
            .ifaces
            .iter()
            .find(|i| i.name == name)
            .map(Iface::handle)
            .ok_or_else(|| no_interface(&format!("no interface with matching name '{name}'")))
    }

    pub fn iface_lookup_mac(&self, mac: &str) -> Result<InterfaceRef> {
        self.lock()
            .ifaces
            .iter()
            .find(|i| i.mac.eq_ignore_ascii_case(mac))
            .map(Iface::handle)
            .ok_or_else(|| no_interface(&format!("no interface with matching mac '{mac}'")))
    }

    fn with_iface<T>(&self, r: &InterfaceRef, f: impl FnOnce(&Iface) -> T) -> Result<T> {
        let inner = self.lock();
        let i = inner
            .ifaces
            .iter()
            .find(|i| i.name == r.name)
            .ok_or_else(|| {
                no_interface(&format!("no interface with matching name '{}'", r.name))
            })?;
        Ok(f(i))
    }

    pub fn iface_is_active(&self, r: &InterfaceRef) -> Result<bool> {
        self.with_iface(r, |i| i.active)
    }

    pub fn iface_xml(&self, r: &InterfaceRef) -> Result<String> {
        self.with_iface(r, |i| i.xml().to_string())
    }

    // ---- storage pools ----

    pub fn pool_list(&self, flags: PoolListFlags) -> Vec<StoragePoolRef> {
        self.lock()
            .pools
            .iter()
            .filter(|p| p.matches(flags))
            .map(|p| p.info.pool.clone())
            .collect()
    }

    pub fn pool_lookup_name(&self, name: &str) -> Result<StoragePoolRef> {
        self.lock()
            .pools
            .iter()
            .find(|p| p.info.pool.name == name)
            .map(|p| p.info.pool.clone())
            .ok_or_else(|| no_pool(&format!("no storage pool with matching name '{name}'")))
    }

    pub fn pool_lookup_uuid(&self, uuid: &Uuid) -> Result<StoragePoolRef> {
        self.lock()
            .pools
            .iter()
            .find(|p| p.info.pool.uuid == *uuid)
            .map(|p| p.info.pool.clone())
            .ok_or_else(|| no_pool(&format!("no storage pool with matching uuid '{uuid}'")))
    }

    fn with_pool<T>(&self, r: &StoragePoolRef, f: impl FnOnce(&Pool) -> T) -> Result<T> {
        let inner = self.lock();
        let p = inner
            .pools
            .iter()
            .find(|p| p.info.pool.uuid == r.uuid)
            .ok_or_else(|| no_pool(&format!("no storage pool with matching uuid '{}'", r.uuid)))?;
        Ok(f(p))
    }

    pub fn pool_info(&self, r: &StoragePoolRef) -> Result<StoragePoolInfo> {
        self.with_pool(r, |p| p.info.clone())
    }

    pub fn pool_xml(&self, r: &StoragePoolRef) -> Result<String> {
        self.with_pool(r, |p| p.xml().to_string())
    }

    pub fn pool_volumes(&self, r: &StoragePoolRef) -> Result<Vec<StorageVolRef>> {
        self.with_pool(r, |p| p.vols.clone())
    }
}

fn check_create_flags(flags: CreateFlags) -> Result<()> {
    let supported = CreateFlags::PAUSED.bits() | CreateFlags::VALIDATE.bits();
    let bad = flags.bits() & !supported;
    if bad != 0 {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!("unsupported flags (0x{bad:x}) for starting a domain on the test driver"),
        ));
    }
    Ok(())
}

/// Puts a shut-off domain into the running (or paused) state with `id`.
fn start(dom: &mut Dom, id: u32, flags: CreateFlags) {
    dom.id = Some(id);
    if flags.contains(CreateFlags::PAUSED) {
        dom.state = DomainState::Paused;
        dom.reason = paused_reason::USER;
    } else {
        dom.state = DomainState::Running;
        dom.reason = running_reason::BOOTED;
    }
}
