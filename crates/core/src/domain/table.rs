//! The domain table of a stateful driver (QEMU, LXC): one [`DomainObj`]
//! per domain, indexed by UUID in a [`DomainTable`], with libvirt's list
//! filter ([`matches_list_flags`]), lookups, definition clashes and their
//! messages; and the [`InstanceLock`] that keeps two processes from driving
//! the same driver directories.
//!
//! Locking: the table is held only for lookups. Each domain has a job lock
//! (a tokio mutex, taken with a deadline by [`DomainObj::job`]) that
//! serialises changes, and a small state mutex ([`DomainObj::lock`]) that is
//! never held across an await, so queries never wait for a job.
//!
//! What differs between drivers stays with them: what a running domain is
//! (`L`, a [`LiveDomain`]: a QEMU process and its monitor, a container's
//! supervisor and cgroups) and any state of their own per domain (`X`, e.g.
//! what the driver expects the guest to report next).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

use crate::domain::{DomainDef, DomainProfile, FormatOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::event::detail;
use crate::ids::Uuid;
use crate::types::{DomainRef, DomainState, ListFlags, XmlFlags, shutoff_reason};

/// How long a job waits for another job on the same domain.
pub const JOB_DEADLINE: Duration = Duration::from_secs(30);

/// How long opening a driver instance waits for another process to release
/// its directories.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What a driver keeps for a running domain.
pub trait LiveDomain {
    /// The domain's id while it runs.
    fn id(&self) -> u32;
    /// The definition it runs with (the live definition).
    fn def(&self) -> &DomainDef;
}

/// What libvirt's list filter (`virConnectListAllDomains` flags) looks at
/// in one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFacts {
    /// Running or paused (has an id).
    pub active: bool,
    /// Has a persistent definition.
    pub persistent: bool,
    /// Marked for autostart.
    pub autostart: bool,
    /// Its state.
    pub state: DomainState,
    /// Whether it has a managed-save image; `None` for a driver without
    /// managed save, where [`ListFlags::MANAGEDSAVE`] matches no domain
    /// and [`ListFlags::NO_MANAGEDSAVE`] is ignored.
    pub managed_save: Option<bool>,
}

/// Whether a domain passes libvirt's list filter: in each group of flags
/// (active/inactive, persistent/transient, autostart/no-autostart,
/// managed save), no flag or a flag that holds; with any of the state
/// flags, the flag of its state. Nothing has snapshots, so
/// [`ListFlags::HAS_SNAPSHOT`] matches no domain.
pub fn matches_list_flags(d: &ListFacts, flags: ListFlags) -> bool {
    let f = |b| flags.contains(b);
    let pair = |a: ListFlags, b: ListFlags, is_a: bool| {
        !(f(a) || f(b)) || (is_a && f(a)) || (!is_a && f(b))
    };
    if !pair(ListFlags::ACTIVE, ListFlags::INACTIVE, d.active)
        || !pair(ListFlags::PERSISTENT, ListFlags::TRANSIENT, d.persistent)
        || !pair(ListFlags::AUTOSTART, ListFlags::NO_AUTOSTART, d.autostart)
    {
        return false;
    }
    let states = ListFlags::RUNNING | ListFlags::PAUSED | ListFlags::SHUTOFF | ListFlags::OTHER;
    if flags.intersects(states) {
        let ok = match d.state {
            DomainState::Running => f(ListFlags::RUNNING),
            DomainState::Paused => f(ListFlags::PAUSED),
            DomainState::Shutoff => f(ListFlags::SHUTOFF),
            _ => f(ListFlags::OTHER),
        };
        if !ok {
            return false;
        }
    }
    let managed_save = match d.managed_save {
        Some(m) => pair(ListFlags::MANAGEDSAVE, ListFlags::NO_MANAGEDSAVE, m),
        None => !f(ListFlags::MANAGEDSAVE),
    };
    managed_save && !f(ListFlags::HAS_SNAPSHOT)
}

// ---- libvirt's messages ----

/// The domain a handle names is gone.
pub fn no_domain(d: &DomainRef) -> Error {
    Error::no_domain(format!(
        "no domain with matching uuid '{}' ({})",
        d.uuid, d.name
    ))
}

/// No domain has this name.
pub fn no_domain_name(name: &str) -> Error {
    Error::no_domain(format!("no domain with matching name '{name}'"))
}

/// No domain has this UUID.
pub fn no_domain_uuid(uuid: &Uuid) -> Error {
    Error::no_domain(format!("no domain with matching uuid '{uuid}'"))
}

/// No running domain has this id.
pub fn no_domain_id(id: u32) -> Error {
    Error::no_domain(format!("no domain with matching id {id}"))
}

/// An operation that needs a running domain.
pub fn not_running(name: &str) -> Error {
    Error::operation_invalid(format!("domain '{name}' is not running"))
}

/// A definition's UUID belongs to a domain of another name.
pub fn already_defined(name: &str, uuid: &Uuid) -> Error {
    Error::new(
        ErrorKind::OperationFailed,
        format!("domain '{name}' is already defined with uuid {uuid}"),
    )
}

/// A definition's name belongs to a domain with another UUID, or a new
/// domain would replace a defined one.
pub fn already_exists(name: &str, uuid: &Uuid) -> Error {
    Error::new(
        ErrorKind::OperationFailed,
        format!("domain '{name}' already exists with uuid {uuid}"),
    )
}

/// A new domain would replace a running one.
pub fn already_active(name: &str) -> Error {
    Error::operation_invalid(format!("domain '{name}' is already active"))
}

// ---- one domain ----

/// The changing part of a domain, behind [`DomainObj::lock`].
#[derive(Debug)]
pub struct DomainInner<L, X = ()> {
    /// The persistent (or, for a transient domain, the only) definition.
    pub def: DomainDef,
    /// A definition given while the domain runs, used from the next stop.
    pub next_def: Option<DomainDef>,
    /// Whether the domain has a persistent definition.
    pub persistent: bool,
    /// Whether the domain starts with the driver.
    pub autostart: bool,
    /// The state.
    pub state: DomainState,
    /// The state's reason (libvirt's `*_reason` codes).
    pub reason: i32,
    /// What runs, while it runs.
    pub live: Option<Arc<L>>,
    /// The driver's own state of the domain.
    pub extra: X,
}

impl<L: LiveDomain, X> DomainInner<L, X> {
    /// libvirt's list filter for a driver without managed save.
    pub fn matches(&self, flags: ListFlags) -> bool {
        matches_list_flags(
            &ListFacts {
                active: self.live.is_some(),
                persistent: self.persistent,
                autostart: self.autostart,
                state: self.state,
                managed_save: None,
            },
            flags,
        )
    }

    /// The definition in use: the live one while the domain runs.
    pub fn current_def(&self) -> &DomainDef {
        self.live.as_ref().map_or(&self.def, |l| l.def())
    }

    /// The domain's XML as libvirt's formatter prints it: the live
    /// definition with its id while it runs, else (or with
    /// [`XmlFlags::INACTIVE`]) the persistent one, the next one first.
    pub fn xml(&self, profile: &dyn DomainProfile, flags: XmlFlags) -> String {
        let inactive = flags.contains(XmlFlags::INACTIVE);
        let (def, id) = match (&self.live, inactive) {
            (Some(l), false) => (l.def(), Some(l.id())),
            (_, true) => (self.next_def.as_ref().unwrap_or(&self.def), None),
            (None, false) => (&self.def, None),
        };
        def.to_xml_canonical(
            profile,
            &FormatOptions {
                id,
                inactive: id.is_none(),
                secure: flags.contains(XmlFlags::SECURE),
            },
        )
    }
}

impl<L, X: Default> DomainInner<L, X> {
    /// The domain stopped for `reason`: shut off, the driver's state
    /// reset, a definition given meanwhile in effect. Returns whether the
    /// domain is transient (and so leaves the table).
    pub fn set_shutoff(&mut self, reason: i32) -> bool {
        self.live = None;
        self.state = DomainState::Shutoff;
        self.reason = reason;
        self.extra = X::default();
        if let Some(next) = self.next_def.take() {
            self.def = next;
        }
        !self.persistent
    }
}

/// One domain: its name and UUID (fixed for its life), a job lock that
/// serialises changes, and its changing state.
#[derive(Debug)]
pub struct DomainObj<L, X = ()> {
    /// UUID.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    job: AsyncMutex<()>,
    /// The changing state; see [`DomainObj::lock`].
    pub inner: Mutex<DomainInner<L, X>>,
}

/// A held job lock (see [`DomainObj::job`]).
pub type JobGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

impl<L, X: Default> DomainObj<L, X> {
    /// A shut-off domain with definition `def`.
    pub fn new(def: DomainDef, persistent: bool) -> Arc<DomainObj<L, X>> {
        Arc::new(DomainObj {
            uuid: def.uuid().unwrap_or_default(),
            name: def.name(),
            job: AsyncMutex::new(()),
            inner: Mutex::new(DomainInner {
                def,
                next_def: None,
                persistent,
                autostart: false,
                state: DomainState::Shutoff,
                reason: shutoff_reason::UNKNOWN,
                live: None,
                extra: X::default(),
            }),
        })
    }
}

impl<L, X> DomainObj<L, X> {
    /// The domain's state. Never held across an await; a panic while it
    /// was held leaves nothing half-done that matters, so poisoning is
    /// ignored.
    pub fn lock(&self) -> MutexGuard<'_, DomainInner<L, X>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the job lock, waiting up to [`JOB_DEADLINE`] for another job.
    pub async fn job(&self) -> Result<JobGuard<'_>> {
        self.job_within(JOB_DEADLINE).await
    }

    /// Takes the job lock, waiting up to `deadline` for another job.
    pub async fn job_within(&self, deadline: Duration) -> Result<JobGuard<'_>> {
        tokio::time::timeout(deadline, self.job.lock())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::OperationTimeout,
                    format!(
                        "cannot acquire the state change lock of domain '{}' within {} s: another job on it is still running",
                        self.name,
                        deadline.as_secs()
                    ),
                )
            })
    }

    /// Whether `live` is still what runs.
    pub fn is_current(&self, live: &Arc<L>) -> bool {
        self.lock()
            .live
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l, live))
    }

    /// What runs, or libvirt's "not running" error.
    pub fn live(&self) -> Result<Arc<L>> {
        self.lock()
            .live
            .clone()
            .ok_or_else(|| not_running(&self.name))
    }
}

impl<L: LiveDomain, X> DomainObj<L, X> {
    /// The domain's handle, with its id while it runs.
    pub fn handle(&self) -> DomainRef {
        DomainRef {
            name: self.name.clone(),
            uuid: self.uuid,
            id: self.lock().live.as_ref().map(|l| l.id()),
        }
    }

    /// A persistent definition given anew: in effect at once while the
    /// domain is shut off, from its next stop while it runs.
    pub fn redefine(&self, def: DomainDef) -> DomainRef {
        let mut i = self.lock();
        if i.live.is_some() {
            i.next_def = Some(def);
        } else {
            i.def = def;
        }
        i.persistent = true;
        drop(i);
        self.handle()
    }
}

// ---- the table ----

/// The domains of one driver instance, by UUID. Held only for lookups.
#[derive(Debug)]
pub struct DomainTable<L, X = ()> {
    doms: Mutex<HashMap<Uuid, Arc<DomainObj<L, X>>>>,
}

impl<L, X> Default for DomainTable<L, X> {
    fn default() -> Self {
        DomainTable {
            doms: Mutex::new(HashMap::new()),
        }
    }
}

impl<L, X> DomainTable<L, X> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table itself, for anything the methods do not cover.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<DomainObj<L, X>>>> {
        self.doms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) a domain.
    pub fn insert(&self, dom: Arc<DomainObj<L, X>>) {
        self.lock().insert(dom.uuid, dom);
    }

    /// Removes a domain.
    pub fn remove(&self, uuid: &Uuid) {
        self.lock().remove(uuid);
    }

    /// The domain with this UUID, added by `make` if there is none.
    pub fn get_or_insert_with(
        &self,
        uuid: Uuid,
        make: impl FnOnce() -> Arc<DomainObj<L, X>>,
    ) -> Arc<DomainObj<L, X>> {
        self.lock().entry(uuid).or_insert_with(make).clone()
    }

    /// Every domain, taken out of the table (which is then released).
    pub fn all(&self) -> Vec<Arc<DomainObj<L, X>>> {
        self.lock().values().cloned().collect()
    }

    /// The domain named `name`.
    pub fn find_name(&self, name: &str) -> Option<Arc<DomainObj<L, X>>> {
        self.lock().values().find(|d| d.name == name).cloned()
    }

    /// The domain a handle names, or libvirt's "no domain" error.
    pub fn get(&self, d: &DomainRef) -> Result<Arc<DomainObj<L, X>>> {
        self.lock()
            .get(&d.uuid)
            .cloned()
            .ok_or_else(|| no_domain(d))
    }

    /// What runs of the domain a handle names, or libvirt's errors.
    pub fn running(&self, d: &DomainRef) -> Result<Arc<L>> {
        self.get(d)?.live()
    }

    /// The state and its reason.
    pub fn state(&self, d: &DomainRef) -> Result<(DomainState, i32)> {
        let dom = self.get(d)?;
        let i = dom.lock();
        Ok((i.state, i.reason))
    }

    /// `set_autostart` for drivers that mark autostart with an empty file
    /// per domain in `marks`: only persistent domains.
    pub fn set_autostart(&self, d: &DomainRef, marks: &Path, on: bool) -> Result<()> {
        let dom = self.get(d)?;
        if !dom.lock().persistent {
            return Err(Error::operation_invalid(
                "cannot set autostart for transient domain",
            ));
        }
        let mark = marks.join(&dom.name);
        let r = if on {
            std::fs::write(&mark, b"")
        } else {
            std::fs::remove_file(&mark).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        };
        r.map_err(|e| Error::system(format_args!("cannot update {}", mark.display()), &e))?;
        dom.lock().autostart = on;
        Ok(())
    }
}

impl<L, X> DomainTable<L, X> {
    /// `undefine` for drivers that keep a definition file and an autostart
    /// mark (in `marks`) per domain: both files go (a definition file
    /// already gone is fine), the domain becomes transient, and leaves the
    /// table unless it is `running`.
    pub fn undefine(
        &self,
        dom: &DomainObj<L, X>,
        definition: &Path,
        marks: &Path,
        running: bool,
    ) -> Result<()> {
        match std::fs::remove_file(definition) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::system(
                    format_args!("cannot remove {}", definition.display()),
                    &e,
                ));
            }
        }
        let _ = std::fs::remove_file(marks.join(&dom.name));
        {
            let mut i = dom.lock();
            i.persistent = false;
            i.autostart = false;
            i.next_def = None;
        }
        if !running {
            self.remove(&dom.uuid);
        }
        Ok(())
    }
}

impl<L: LiveDomain, X> DomainTable<L, X> {
    /// The domains that pass libvirt's list filter.
    pub fn list(&self, flags: ListFlags) -> Vec<DomainRef> {
        self.all()
            .into_iter()
            .filter(|d| d.lock().matches(flags))
            .map(|d| d.handle())
            .collect()
    }

    /// The handle of the domain named `name`.
    pub fn lookup_name(&self, name: &str) -> Result<DomainRef> {
        self.lock()
            .values()
            .find(|d| d.name == name)
            .map(|d| d.handle())
            .ok_or_else(|| no_domain_name(name))
    }

    /// The handle of the domain with this UUID.
    pub fn lookup_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        self.lock()
            .get(uuid)
            .map(|d| d.handle())
            .ok_or_else(|| no_domain_uuid(uuid))
    }

    /// The handle of the running domain with this id.
    pub fn lookup_id(&self, id: u32) -> Result<DomainRef> {
        self.lock()
            .values()
            .find(|d| d.lock().live.as_ref().is_some_and(|l| l.id() == id))
            .map(|d| d.handle())
            .ok_or_else(|| no_domain_id(id))
    }

    /// Where a definition goes: `Ok(Some(dom))` to update the domain with
    /// its UUID and name, `Ok(None)` for a new domain, or libvirt's errors
    /// when its UUID belongs to a domain of another name or its name to a
    /// domain with another UUID.
    pub fn place(&self, def: &DomainDef) -> Result<Option<Arc<DomainObj<L, X>>>> {
        let t = self.lock();
        let name = def.name();
        if let Some(u) = def.uuid()
            && let Some(d) = t.get(&u)
        {
            if d.name != name {
                return Err(already_defined(&d.name, &d.uuid));
            }
            return Ok(Some(d.clone()));
        }
        if let Some(d) = t.values().find(|d| d.name == name) {
            return Err(already_exists(&d.name, &d.uuid));
        }
        Ok(None)
    }

    /// Defines a persistent domain (see [`DomainTable::place`]): `save`
    /// stores the definition first, then it updates its domain
    /// ([`DomainObj::redefine`]) or adds one. Returns the domain's handle
    /// and the detail of the `Defined` event ([`detail::DEFINED_UPDATED`]
    /// or [`detail::DEFINED_ADDED`]).
    pub fn define(
        &self,
        def: DomainDef,
        save: impl FnOnce(&DomainDef) -> Result<()>,
    ) -> Result<(DomainRef, i32)>
    where
        X: Default,
    {
        match self.place(&def)? {
            Some(dom) => {
                save(&def)?;
                Ok((dom.redefine(def), detail::DEFINED_UPDATED))
            }
            None => {
                save(&def)?;
                let dom = DomainObj::new(def, true);
                let h = dom.handle();
                self.insert(dom);
                Ok((h, detail::DEFINED_ADDED))
            }
        }
    }

    /// Checks that a definition for a new transient domain clashes with
    /// no domain (see [`DomainTable::place`]); a domain with its UUID and
    /// name is an error too: "already active" while it runs.
    pub fn place_new(&self, def: &DomainDef) -> Result<()> {
        match self.place(def)? {
            Some(d) if d.lock().live.is_some() => Err(already_active(&d.name)),
            Some(d) => Err(already_exists(&d.name, &d.uuid)),
            None => Ok(()),
        }
    }

    /// The shut-off domains marked for autostart.
    pub fn to_autostart(&self) -> Vec<Arc<DomainObj<L, X>>> {
        self.all()
            .into_iter()
            .filter(|d| {
                let i = d.lock();
                i.autostart && i.live.is_none()
            })
            .collect()
    }
}

impl<L: LiveDomain, X: Default> DomainTable<L, X> {
    /// Bookkeeping once a domain stopped (see [`DomainInner::set_shutoff`]);
    /// a transient one leaves the table. Returns the handle it had while
    /// running, for the event.
    pub fn set_stopped(&self, dom: &DomainObj<L, X>, reason: i32) -> DomainRef {
        let handle_before = dom.handle();
        if dom.lock().set_shutoff(reason) {
            self.remove(&dom.uuid);
        }
        handle_before
    }
}

// ---- the instance lock ----

/// The lock that keeps two processes from driving one driver instance's
/// directories: an exclusive `flock` on a file that holds the holder's pid.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLock<'a> {
    /// The URI the directories serve (for messages).
    pub uri: &'a str,
    /// The lock file.
    pub path: &'a Path,
    /// The remote URI to suggest when the directories are in use
    /// (`qemu+unix://`).
    pub remote: &'a str,
    /// Whether the "in use" message names the error `flock` returned.
    pub show_os_error: bool,
}

/// `flock(LOCK_EX | LOCK_NB)`: an exclusive lock, without waiting.
fn flock_exclusive(f: &File) -> std::io::Result<()> {
    // SAFETY: flock on a valid fd that `f` owns, with integer flags; no
    // memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl InstanceLock<'_> {
    /// Takes the lock now, or says who holds it.
    pub fn try_take(&self) -> Result<File> {
        let path = self.path;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::system(format_args!("cannot open {}", path.display()), &e))?;
        if let Err(e) = flock_exclusive(&f) {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!(
                    "{} is in use by another virtkit process{} (lock {}{}); connect through that \
                     process (e.g. {} to virtkitd), or retry when it has finished",
                    self.uri,
                    if holder.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {})", holder.trim())
                    },
                    path.display(),
                    if self.show_os_error {
                        format!(": {e}")
                    } else {
                        String::new()
                    },
                    self.remote,
                ),
            ));
        }
        let _ = f.set_len(0);
        let _ = std::io::Write::write_all(&mut &f, std::process::id().to_string().as_bytes());
        Ok(f)
    }

    /// Takes the lock. Another short virtkit command (or this process's
    /// previous instance, still going away) lets go soon: wait for it, up
    /// to `wait`. A daemon (`virtkitd`) keeps it: fail at once.
    pub async fn take(&self, wait: Duration) -> Result<File> {
        let deadline = Instant::now() + wait;
        loop {
            match self.try_take() {
                Ok(l) => return Ok(l),
                Err(e) => {
                    let holder = std::fs::read_to_string(self.path).unwrap_or_default();
                    let daemon = std::fs::read_to_string(format!("/proc/{}/comm", holder.trim()))
                        .is_ok_and(|c| c.trim() == "virtkitd");
                    if daemon || Instant::now() > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Run {
        id: u32,
        def: DomainDef,
    }

    impl LiveDomain for Run {
        fn id(&self) -> u32 {
            self.id
        }
        fn def(&self) -> &DomainDef {
            &self.def
        }
    }

    type Obj = DomainObj<Run, u8>;

    fn def(name: &str, uuid: &str) -> DomainDef {
        DomainDef::parse(&format!(
            "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>\
             <memory>1024</memory><os><type>hvm</type></os></domain>"
        ))
        .unwrap()
    }

    const U1: &str = "11111111-2222-3333-4444-555555555555";
    const U2: &str = "11111111-2222-3333-4444-666666666666";
    const U3: &str = "11111111-2222-3333-4444-777777777777";
    const U4: &str = "11111111-2222-3333-4444-888888888888";

    fn run(dom: &Obj, id: u32, state: DomainState) {
        let mut i = dom.lock();
        i.live = Some(Arc::new(Run {
            id,
            def: i.def.clone(),
        }));
        i.state = state;
    }

    /// a: persistent, autostart, running (id 7); b: persistent, shut off;
    /// c: transient, paused (id 8).
    fn table() -> DomainTable<Run, u8> {
        let t = DomainTable::new();
        let a = Obj::new(def("a", U1), true);
        a.lock().autostart = true;
        run(&a, 7, DomainState::Running);
        let b = Obj::new(def("b", U2), true);
        let c = Obj::new(def("c", U3), false);
        run(&c, 8, DomainState::Paused);
        for d in [a, b, c] {
            t.insert(d);
        }
        t
    }

    fn names(t: &DomainTable<Run, u8>, flags: ListFlags) -> Vec<String> {
        let mut v: Vec<String> = t.list(flags).into_iter().map(|d| d.name).collect();
        v.sort();
        v
    }

    #[test]
    fn list_filters() {
        let t = table();
        assert_eq!(names(&t, ListFlags::empty()), ["a", "b", "c"]);
        assert_eq!(names(&t, ListFlags::ACTIVE), ["a", "c"]);
        assert_eq!(names(&t, ListFlags::INACTIVE), ["b"]);
        assert_eq!(
            names(&t, ListFlags::ACTIVE | ListFlags::INACTIVE),
            ["a", "b", "c"]
        );
        assert_eq!(names(&t, ListFlags::TRANSIENT), ["c"]);
        assert_eq!(names(&t, ListFlags::PERSISTENT), ["a", "b"]);
        assert_eq!(names(&t, ListFlags::AUTOSTART), ["a"]);
        assert_eq!(names(&t, ListFlags::NO_AUTOSTART), ["b", "c"]);
        assert_eq!(names(&t, ListFlags::PAUSED), ["c"]);
        assert_eq!(
            names(&t, ListFlags::RUNNING | ListFlags::SHUTOFF),
            ["a", "b"]
        );
        assert!(names(&t, ListFlags::OTHER).is_empty());
        assert_eq!(names(&t, ListFlags::PERSISTENT | ListFlags::ACTIVE), ["a"]);
        // No managed save, no snapshots.
        assert!(names(&t, ListFlags::MANAGEDSAVE).is_empty());
        assert_eq!(names(&t, ListFlags::NO_MANAGEDSAVE), ["a", "b", "c"]);
        assert!(names(&t, ListFlags::HAS_SNAPSHOT).is_empty());
        assert_eq!(names(&t, ListFlags::NO_SNAPSHOT), ["a", "b", "c"]);
    }

    #[test]
    fn list_filter_with_managed_save() {
        let facts = |m| ListFacts {
            active: false,
            persistent: true,
            autostart: false,
            state: DomainState::Crashed,
            managed_save: m,
        };
        let ms = ListFlags::MANAGEDSAVE;
        let no = ListFlags::NO_MANAGEDSAVE;
        assert!(matches_list_flags(&facts(Some(true)), ms));
        assert!(!matches_list_flags(&facts(Some(true)), no));
        assert!(matches_list_flags(&facts(Some(false)), no));
        assert!(matches_list_flags(&facts(Some(false)), ms | no));
        assert!(!matches_list_flags(&facts(None), ms | no));
        assert!(matches_list_flags(&facts(None), ListFlags::OTHER));
    }

    #[test]
    fn lookups() {
        let t = table();
        assert_eq!(t.lookup_id(8).unwrap().name, "c");
        assert_eq!(t.lookup_name("a").unwrap().id, Some(7));
        assert_eq!(t.lookup_uuid(&U2.parse().unwrap()).unwrap().id, None);
        let e = t.lookup_id(9).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::NoDomain, "no domain with matching id 9")
        );
        let e = t.lookup_name("z").unwrap_err();
        assert_eq!(e.message(), "no domain with matching name 'z'");
        let gone = DomainRef {
            name: "z".into(),
            uuid: U1.parse().unwrap(),
            id: None,
        };
        t.remove(&gone.uuid);
        assert_eq!(
            t.get(&gone).unwrap_err().message(),
            format!("no domain with matching uuid '{U1}' (z)")
        );
        let b = t.lookup_name("b").unwrap();
        let e = t.running(&b).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::OperationInvalid, "domain 'b' is not running")
        );
        assert_eq!(t.to_autostart().len(), 0);
    }

    #[test]
    fn clashing_definitions() {
        let t = table();
        // Same name and UUID: that domain.
        let same = t.place(&def("b", U2)).unwrap().unwrap();
        assert_eq!(same.name, "b");
        // A new name and UUID: a new domain.
        assert!(t.place(&def("d", U4)).unwrap().is_none());
        // Same UUID, another name.
        let e = t.place(&def("x", U2)).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::OperationFailed,
                format!("domain 'b' is already defined with uuid {U2}").as_str()
            )
        );
        // Same name, another UUID.
        let e = t.place(&def("b", U4)).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::OperationFailed,
                format!("domain 'b' already exists with uuid {U2}").as_str()
            )
        );
        // A new transient domain may not replace any.
        let e = t.place_new(&def("b", U2)).unwrap_err();
        assert_eq!(
            e.message(),
            format!("domain 'b' already exists with uuid {U2}")
        );
        let e = t.place_new(&def("a", U1)).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::OperationInvalid, "domain 'a' is already active")
        );
    }

    #[test]
    fn define_adds_or_updates() {
        let t = table();
        let mut saved = Vec::new();
        let (h, event) = t
            .define(def("d", U4), |d| {
                saved.push(d.name());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (h.name.as_str(), h.id, event),
            ("d", None, detail::DEFINED_ADDED)
        );
        let (h, event) = t
            .define(def("a", U1), |d| {
                saved.push(d.name());
                Ok(())
            })
            .unwrap();
        assert_eq!((h.id, event), (Some(7), detail::DEFINED_UPDATED));
        assert_eq!(saved, ["d", "a"]);
        // Nothing changes when saving fails, or the definition clashes.
        let e = t
            .define(def("e", "11111111-2222-3333-4444-999999999999"), |_| {
                Err(Error::internal("disk full"))
            })
            .unwrap_err();
        assert_eq!(e.message(), "disk full");
        assert!(t.lookup_name("e").is_err());
        assert!(t.define(def("x", U2), |_| panic!("not saved")).is_err());
        let c = t.get(&t.lookup_name("c").unwrap()).unwrap();
        t.define(def("c", U3), |_| Ok(())).unwrap();
        assert!(c.lock().persistent && c.lock().next_def.is_some());
    }

    #[test]
    fn redefine_and_stop() {
        let t = table();
        let a = t.get(&t.lookup_name("a").unwrap()).unwrap();
        a.lock().extra = 3;
        let mut next = def("a", U1);
        next.root_mut().set_attr("type", "kvm");
        assert_eq!(a.redefine(next).id, Some(7));
        assert!(a.lock().next_def.is_some());
        assert_eq!(a.lock().def.domain_type(), "qemu");
        let h = t.set_stopped(&a, shutoff_reason::DESTROYED);
        assert_eq!(h.id, Some(7));
        {
            let i = a.lock();
            assert_eq!((i.state, i.reason, i.extra), (DomainState::Shutoff, 2, 0));
            assert_eq!(i.def.domain_type(), "kvm");
            assert!(i.live.is_none() && i.next_def.is_none());
        }
        assert_eq!(t.to_autostart().len(), 1);
        // A transient domain leaves the table when it stops.
        let c = t.get(&t.lookup_name("c").unwrap()).unwrap();
        t.set_stopped(&c, shutoff_reason::SHUTDOWN);
        assert!(t.lookup_name("c").is_err());
        assert_eq!(names(&t, ListFlags::empty()), ["a", "b"]);
    }

    #[test]
    fn xml_shows_the_live_definition() {
        let t = table();
        let a = t.get(&t.lookup_name("a").unwrap()).unwrap();
        let i = a.lock();
        let live = i.xml(&crate::domain::GenericProfile, XmlFlags::empty());
        assert!(live.starts_with("<domain type='qemu' id='7'>"), "{live}");
        let inactive = i.xml(&crate::domain::GenericProfile, XmlFlags::INACTIVE);
        assert!(inactive.starts_with("<domain type='qemu'>"), "{inactive}");
    }

    #[tokio::test]
    async fn job_deadline() {
        let d = Obj::new(def("busy", U1), true);
        let held = d.job().await.unwrap();
        let e = d.job_within(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OperationTimeout);
        assert_eq!(
            e.message(),
            "cannot acquire the state change lock of domain 'busy' within 0 s: another job on it is still running"
        );
        drop(held);
        assert!(d.job_within(Duration::from_millis(20)).await.is_ok());
    }

    #[tokio::test]
    async fn instance_lock() {
        let dir = std::env::temp_dir().join(format!("virtkit-table-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("driver.lock");
        let mut lock = InstanceLock {
            uri: "qemu:///embed?root=/x",
            path: &path,
            remote: "qemu+unix://",
            show_os_error: false,
        };
        let held = lock.take(LOCK_WAIT).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        // flock is per open file: a second open conflicts, in this process too.
        let e = lock.take(Duration::from_millis(30)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OperationFailed);
        assert_eq!(
            e.message(),
            format!(
                "qemu:///embed?root=/x is in use by another virtkit process (pid {}) (lock {}); \
                 connect through that process (e.g. qemu+unix:// to virtkitd), or retry when it \
                 has finished",
                std::process::id(),
                path.display()
            )
        );
        lock.show_os_error = true;
        lock.remote = "lxc+unix://";
        let e = lock.try_take().unwrap_err();
        let os = std::io::Error::from_raw_os_error(libc::EWOULDBLOCK);
        assert!(
            e.message().contains(&format!(
                "(lock {}: {os}); connect through that process (e.g. lxc+unix:// to virtkitd)",
                path.display()
            )),
            "{}",
            e.message()
        );
        drop(held);
        assert!(lock.try_take().is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
