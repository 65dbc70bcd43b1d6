//! [`Connect`] and [`Domain`]: the typed, async entry points for Rust users.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::driver::{Connection, DomainOps};
use crate::error::{Error, Result};
use crate::event::{EventFilter, EventStream};
use crate::ids::Uuid;
use crate::registry;
use crate::types::*;
use crate::uri::Uri;

/// An open connection to a hypervisor, by URI.
///
/// `Connect` derefs to the driver's [`Connection`], so every capability
/// group (`domains()`, `networks()`, `events()`) is at hand; the methods here
/// add the conveniences virsh users expect.
#[derive(Clone)]
pub struct Connect {
    conn: Arc<dyn Connection>,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connect({})", self.conn.uri())
    }
}

impl Deref for Connect {
    type Target = dyn Connection;
    fn deref(&self) -> &Self::Target {
        &*self.conn
    }
}

impl Connect {
    /// Opens a read-write connection (`virConnectOpen`).
    pub async fn open(uri: &str) -> Result<Connect> {
        Connect::open_with(&Uri::parse(uri)?, OpenFlags::empty()).await
    }

    /// Opens a read-only connection: every mutating call is denied.
    pub async fn open_read_only(uri: &str) -> Result<Connect> {
        Connect::open_with(&Uri::parse(uri)?, OpenFlags::READ_ONLY).await
    }

    /// Opens a connection with flags.
    pub async fn open_with(uri: &Uri, flags: OpenFlags) -> Result<Connect> {
        Ok(Connect {
            conn: registry::open(uri, flags).await?,
        })
    }

    /// Wraps a connection a driver opened.
    pub fn from_connection(conn: Arc<dyn Connection>) -> Connect {
        Connect { conn }
    }

    /// The driver's connection.
    pub fn connection(&self) -> &Arc<dyn Connection> {
        &self.conn
    }

    /// A [`Domain`] for a handle a driver returned.
    pub fn wrap_domain(&self, handle: DomainRef) -> Domain {
        Domain {
            conn: self.conn.clone(),
            handle,
        }
    }

    /// Looks a domain up the way virsh does: an all-digit string is an id,
    /// a 36-character UUID string a UUID, anything else (or a miss) a name.
    pub async fn lookup_domain(&self, key: &str) -> Result<Domain> {
        let ops = self.conn.domains()?;
        if let Ok(id) = key.parse::<u32>()
            && let Ok(d) = ops.lookup_by_id(id).await
        {
            return Ok(self.wrap_domain(d));
        }
        if key.len() == 36
            && let Ok(uuid) = key.parse::<Uuid>()
            && let Ok(d) = ops.lookup_by_uuid(&uuid).await
        {
            return Ok(self.wrap_domain(d));
        }
        Ok(self.wrap_domain(ops.lookup_by_name(key).await?))
    }

    /// Domains matching `flags` (no flags: all).
    pub async fn list_domains(&self, flags: ListFlags) -> Result<Vec<Domain>> {
        let refs = self.conn.domains()?.list_all(flags).await?;
        Ok(refs.into_iter().map(|r| self.wrap_domain(r)).collect())
    }

    /// Defines a persistent domain from XML.
    pub async fn define_domain(&self, xml: &str) -> Result<Domain> {
        let r = self
            .conn
            .domains()?
            .define_xml(xml, DefineFlags::empty())
            .await?;
        Ok(self.wrap_domain(r))
    }

    /// Creates and starts a transient domain from XML.
    pub async fn create_domain(&self, xml: &str, flags: CreateFlags) -> Result<Domain> {
        let r = self.conn.domains()?.create_xml(xml, flags).await?;
        Ok(self.wrap_domain(r))
    }

    /// Lifecycle events passing `filter`.
    pub fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        self.conn.events()?.subscribe(filter)
    }
}

/// How [`Domain::shutdown_within`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// The guest shut itself down in time.
    ShutDown,
    /// It did not; it was destroyed.
    Destroyed,
}

/// A domain of an open connection.
#[derive(Clone)]
pub struct Domain {
    conn: Arc<dyn Connection>,
    handle: DomainRef,
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.handle.name)
    }
}

impl Domain {
    fn ops(&self) -> Result<&dyn DomainOps> {
        self.conn.domains()
    }

    /// The handle (name, UUID, id).
    pub fn handle(&self) -> &DomainRef {
        &self.handle
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// UUID.
    pub fn uuid(&self) -> Uuid {
        self.handle.uuid
    }

    /// Id while running, as of the last call that returned it.
    pub fn id(&self) -> Option<u32> {
        self.handle.id
    }

    /// Starts the domain; updates the id.
    pub async fn start(&mut self, flags: CreateFlags) -> Result<()> {
        self.handle = self.ops()?.create(&self.handle, flags).await?;
        Ok(())
    }

    /// Asks the guest to shut down.
    pub async fn shutdown(&self) -> Result<()> {
        self.ops()?
            .shutdown(&self.handle, ShutdownFlags::empty())
            .await
    }

    /// Asks the guest to shut down and waits until it is shut off, at most
    /// `deadline`. When the guest does not comply in time: with `force` it
    /// is destroyed (the result says so), without it a timeout error.
    pub async fn shutdown_within(
        &self,
        flags: ShutdownFlags,
        deadline: std::time::Duration,
        force: bool,
    ) -> Result<ShutdownOutcome> {
        let ops = self.ops()?;
        ops.shutdown(&self.handle, flags).await?;
        let end = tokio::time::Instant::now() + deadline;
        loop {
            match ops.state(&self.handle).await {
                Ok((DomainState::Shutoff, _)) => return Ok(ShutdownOutcome::ShutDown),
                // A transient domain is gone once it stops.
                Err(e) if e.kind() == crate::ErrorKind::NoDomain => {
                    return Ok(ShutdownOutcome::ShutDown);
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if tokio::time::Instant::now() >= end {
                if force {
                    self.destroy().await?;
                    return Ok(ShutdownOutcome::Destroyed);
                }
                return Err(Error::new(
                    crate::ErrorKind::OperationTimeout,
                    format!(
                        "domain '{}' did not shut down within {:.0} s; try again with force to destroy it",
                        self.handle.name,
                        deadline.as_secs_f64()
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The addresses of the guest's interfaces (`virsh domifaddr`).
    pub async fn interface_addresses(
        &self,
        source: InterfaceAddressSource,
    ) -> Result<Vec<DomainInterface>> {
        self.conn.interface_addresses(&self.handle, source).await
    }

    /// Asks the guest to reboot.
    pub async fn reboot(&self) -> Result<()> {
        self.ops()?.reboot(&self.handle, RebootFlags::empty()).await
    }

    /// Stops the domain at once.
    pub async fn destroy(&self) -> Result<()> {
        self.ops()?
            .destroy(&self.handle, DestroyFlags::empty())
            .await
    }

    /// Pauses it.
    pub async fn suspend(&self) -> Result<()> {
        self.ops()?.suspend(&self.handle).await
    }

    /// Resumes it.
    pub async fn resume(&self) -> Result<()> {
        self.ops()?.resume(&self.handle).await
    }

    /// Removes its persistent definition.
    pub async fn undefine(&self) -> Result<()> {
        self.ops()?
            .undefine(&self.handle, UndefineFlags::empty())
            .await
    }

    /// State and reason.
    pub async fn state(&self) -> Result<(DomainState, i32)> {
        self.ops()?.state(&self.handle).await
    }

    /// `virDomainGetInfo`.
    pub async fn info(&self) -> Result<DomainInfo> {
        self.ops()?.info(&self.handle).await
    }

    /// XML description.
    pub async fn xml(&self, flags: XmlFlags) -> Result<String> {
        self.ops()?.xml_desc(&self.handle, flags).await
    }

    /// Sets autostart.
    pub async fn set_autostart(&self, on: bool) -> Result<()> {
        self.ops()?.set_autostart(&self.handle, on).await
    }

    /// Lifecycle events of this domain only.
    pub fn events(&self) -> Result<EventStream> {
        self.conn.events()?.subscribe(EventFilter {
            domain: Some(self.handle.uuid),
            kinds: Vec::new(),
        })
    }
}

impl From<Domain> for DomainRef {
    fn from(d: Domain) -> DomainRef {
        d.handle
    }
}

/// Checks a user-given object name: not empty, no `/`, no NUL, not `.` or `..`.
pub fn check_object_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_arg(format!("{kind} name must not be empty")));
    }
    if name.contains('/') {
        return Err(Error::new(
            crate::error::ErrorKind::XmlError,
            format!("name {name} cannot contain '/'"),
        ));
    }
    if name.contains('\0') || name == "." || name == ".." {
        return Err(Error::invalid_arg(format!(
            "{kind} name '{}' is not allowed (no NUL, '.' or '..')",
            name.escape_debug()
        )));
    }
    Ok(())
}
