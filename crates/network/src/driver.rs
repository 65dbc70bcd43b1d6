//! The `network` driver: URIs `network:///system`, `network:///session` and
//! `network:///embed?root=DIR`, its connections, and the core traits
//! ([`NetworkOps`], [`EventOps`]) as thin calls into the [`Service`].
//!
//! Hypervisor drivers expose the same networks through their own
//! `networks()` group: they open a [`NetworkConnection`] for the matching
//! layout ([`NetworkConnection::open_layout`]) and return it.

use std::sync::Arc;

use virtkit_core::network::update::{Command, Section};
use virtkit_core::{
    Connection, Driver, Error, EventFilter, EventOps, EventStream, NetworkDhcpLease,
    NetworkEventStream, NetworkInfo, NetworkListFlags, NetworkOps, NetworkRef, NetworkUpdateFlags,
    OpenFlags, Result, Uri, Uuid, XmlFlags, async_trait,
};

use crate::paths::Layout;
use crate::service::Service;

/// The network driver. Registered at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetworkDriver;

virtkit_core::register_driver!(NetworkDriver);

#[async_trait]
impl Driver for NetworkDriver {
    fn name(&self) -> &'static str {
        "network"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["network"]
    }

    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        let layout = Layout::for_uri(uri)?;
        let conn =
            NetworkConnection::open_layout(layout, flags.contains(OpenFlags::READ_ONLY)).await?;
        Ok(Arc::new(NetworkConnection {
            uri: uri.as_str().to_string(),
            ..conn
        }))
    }
}

/// A connection to a network driver instance.
#[derive(Debug, Clone)]
pub struct NetworkConnection {
    svc: Arc<Service>,
    uri: String,
    read_only: bool,
}

impl NetworkConnection {
    /// Opens the instance for `layout` (shared with every other connection
    /// to it in this process).
    pub async fn open_layout(layout: Layout, read_only: bool) -> Result<NetworkConnection> {
        let svc = Service::open(layout).await?;
        Ok(NetworkConnection {
            svc,
            uri: String::new(),
            read_only,
        })
    }

    /// The driver instance (ports for guests, files).
    pub fn service(&self) -> &Arc<Service> {
        &self.svc
    }

    fn writable(&self, api: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::denied(format!("read only access prevents {api}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Connection for NetworkConnection {
    fn driver(&self) -> &'static str {
        "network"
    }

    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn hypervisor_type(&self) -> Result<String> {
        Ok("network".into())
    }

    fn networks(&self) -> Result<&dyn NetworkOps> {
        Ok(self)
    }

    fn events(&self) -> Result<&dyn EventOps> {
        Ok(self)
    }
}

#[async_trait]
impl NetworkOps for NetworkConnection {
    fn driver(&self) -> &'static str {
        "network"
    }

    async fn list_all(&self, flags: NetworkListFlags) -> Result<Vec<NetworkRef>> {
        Ok(self.svc.list_all(flags).await)
    }

    async fn lookup_by_name(&self, name: &str) -> Result<NetworkRef> {
        Ok(self.svc.lookup_by_name(name).await?)
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        Ok(self.svc.lookup_by_uuid(uuid).await?)
    }

    async fn info(&self, net: &NetworkRef) -> Result<NetworkInfo> {
        Ok(self.svc.info(net).await?)
    }

    async fn xml_desc(&self, net: &NetworkRef, flags: XmlFlags) -> Result<String> {
        Ok(self.svc.xml_desc(net, flags).await?)
    }

    async fn define_xml(&self, xml: &str) -> Result<NetworkRef> {
        self.writable("virNetworkDefineXML")?;
        Ok(self.svc.define_xml(xml).await?)
    }

    async fn create_xml(&self, xml: &str) -> Result<NetworkRef> {
        self.writable("virNetworkCreateXML")?;
        Ok(self.svc.create_xml(xml).await?)
    }

    async fn undefine(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkUndefine")?;
        Ok(self.svc.undefine(net).await?)
    }

    async fn start(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkCreate")?;
        Ok(self.svc.start(net).await?)
    }

    async fn destroy(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkDestroy")?;
        Ok(self.svc.destroy(net).await?)
    }

    async fn set_autostart(&self, net: &NetworkRef, on: bool) -> Result<()> {
        self.writable("virNetworkSetAutostart")?;
        Ok(self.svc.set_autostart(net, on).await?)
    }

    async fn update(
        &self,
        net: &NetworkRef,
        command: Command,
        section: Section,
        parent_index: i32,
        xml: &str,
        flags: NetworkUpdateFlags,
    ) -> Result<()> {
        self.writable("virNetworkUpdate")?;
        Ok(self
            .svc
            .update(net, command, section, parent_index, xml, flags)
            .await?)
    }

    async fn dhcp_leases(
        &self,
        net: &NetworkRef,
        mac: Option<&str>,
    ) -> Result<Vec<NetworkDhcpLease>> {
        Ok(self.svc.dhcp_leases(net, mac).await?)
    }
}

impl EventOps for NetworkConnection {
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        let _ = filter;
        Err(Error::unsupported("network", "domain-events"))
    }

    fn subscribe_networks(&self, network: Option<Uuid>) -> Result<NetworkEventStream> {
        Ok(self.svc.events.subscribe(network))
    }
}
