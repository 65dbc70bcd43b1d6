//! virtkit's `test` driver: an in-memory hypervisor with libvirt's test-driver
//! semantics, for trying virtkit and for testing tools against it.
//!
//! - `test:///default` starts with libvirt's built-in host: domain `test`
//!   running as id 1, network `default`, the node figures of libvirt's test
//!   driver. All connections to it in one process share one state, which
//!   lives as long as one of them is open (as in libvirt).
//! - `test:///ABSOLUTE/PATH.xml` loads a `<node>` document (see `load`);
//!   each connection gets its own copy.
//!
//! Lifecycle follows libvirt's test driver: increasing ids, state reasons,
//! lifecycle events, and the same errors for invalid transitions.
//! Differences: `start --paused` works (libvirt's test driver refuses the
//! flag); host interfaces and storage pools are read-only, and node devices
//! are not modelled yet.

mod builtin;
mod host;
mod load;
mod node;
mod profile;
mod state;

use std::sync::{Arc, Mutex, Weak};

use virtkit_core::domain::DomainDef;
use virtkit_core::network::NetworkDef;
use virtkit_core::xml;
use virtkit_core::{
    Connection, CreateFlags, DefineFlags, DestroyFlags, DomainInfo, DomainInterface, DomainOps,
    DomainRef, DomainState, Driver, Error, EventFilter, EventOps, EventStream,
    InterfaceAddressSource, InterfaceListFlags, InterfaceOps, InterfaceRef, IpAddress, ListFlags,
    NetworkInfo, NetworkListFlags, NetworkOps, NetworkRef, NodeInfo, OpenFlags, PoolListFlags,
    RebootFlags, Result, SecurityLabel, SecurityModel, ShutdownFlags, StorageOps, StoragePoolInfo,
    StoragePoolRef, StorageVolRef, UndefineFlags, Uri, Uuid, XmlFlags, async_trait,
};

use crate::node::Node;
use crate::state::{Dom, Net, TestState};

/// The test driver. Registered at link time; also usable with
/// `virtkit_core::registry::register(&TestDriver)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestDriver;

virtkit_core::register_driver!(TestDriver);

/// The one shared `test:///default` host of this process, while any
/// connection to it is open.
static DEFAULT: Mutex<Weak<TestState>> = Mutex::new(Weak::new());

fn default_state() -> Result<Arc<TestState>> {
    let mut slot = DEFAULT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = slot.upgrade() {
        return Ok(s);
    }
    let def = DomainDef::parse(builtin::DOMAIN_TEST)?;
    let mut dom = Dom::new(def, true);
    dom.id = Some(1);
    dom.state = DomainState::Running;
    let mut net = Net::from_doc(xml::parse(builtin::NETWORK_DEFAULT)?)?;
    net.active = true;
    let s = Arc::new(TestState::new(
        Node::builtin(),
        vec![dom],
        vec![net],
        host::builtin()?,
        2,
    ));
    *slot = Arc::downgrade(&s);
    Ok(s)
}

#[async_trait]
impl Driver for TestDriver {
    fn name(&self) -> &'static str {
        "test"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["test"]
    }

    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        let path = uri.path();
        let state = if path == "/default" || (uri.is_opaque() && path == "default") {
            default_state()?
        } else if path.len() > 1 && path.starts_with('/') {
            Arc::new(load::load(path)?)
        } else {
            return Err(Error::invalid_arg(
                "testOpen: supply a path or use test:///default",
            ));
        };
        Ok(Arc::new(TestConnection {
            state,
            uri: uri.to_string(),
            read_only: flags.contains(OpenFlags::READ_ONLY),
        }))
    }
}

/// A connection to a test host.
#[derive(Debug)]
pub struct TestConnection {
    state: Arc<TestState>,
    uri: String,
    read_only: bool,
}

impl TestConnection {
    fn writable(&self, api: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::denied(format!("read only access prevents {api}")));
        }
        Ok(())
    }
}

fn parse_domain(xml: &str) -> Result<DomainDef> {
    DomainDef::parse(xml)
}

fn parse_network(xml_text: &str) -> Result<Net> {
    Net::from_def(NetworkDef::parse(xml_text)?)
}

#[async_trait]
impl Connection for TestConnection {
    fn driver(&self) -> &'static str {
        "test"
    }

    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn hypervisor_type(&self) -> Result<String> {
        Ok("TEST".into())
    }

    async fn hypervisor_version(&self) -> Result<u64> {
        Ok(2)
    }

    async fn hostname(&self) -> Result<String> {
        hostname()
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        Ok(self.state.node.info.clone())
    }

    async fn capabilities(&self) -> Result<String> {
        Ok(self.state.node.capabilities_xml())
    }

    async fn security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel {
            model: "testSecurity".into(),
            doi: String::new(),
        })
    }

    fn domains(&self) -> Result<&dyn DomainOps> {
        Ok(self)
    }

    fn networks(&self) -> Result<&dyn NetworkOps> {
        Ok(self)
    }

    fn interfaces(&self) -> Result<&dyn InterfaceOps> {
        Ok(self)
    }

    fn storage(&self) -> Result<&dyn StorageOps> {
        Ok(self)
    }

    fn events(&self) -> Result<&dyn EventOps> {
        Ok(self)
    }
}

/// The host name, as `gethostname(2)` reports it.
fn hostname() -> Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which gethostname fills
    // with at most `buf.len()` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(Error::system(
            "cannot get the host name",
            &std::io::Error::last_os_error(),
        ));
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The start of the first IPv4 DHCP range of a network's XML, with the
/// prefix length of its `<ip>`.
fn dhcp_start(net_xml: &str) -> Option<(std::net::Ipv4Addr, u32)> {
    let doc = xml::parse(net_xml).ok()?;
    doc.root.children_named("ip").find_map(|ip| {
        let start: std::net::Ipv4Addr = ip
            .child("dhcp")?
            .child("range")?
            .attr("start")?
            .parse()
            .ok()?;
        let prefix = match (ip.attr("prefix"), ip.attr("netmask")) {
            (Some(p), _) => p.parse().ok()?,
            (None, Some(m)) => u32::from(m.parse::<std::net::Ipv4Addr>().ok()?).count_ones(),
            (None, None) => 24,
        };
        Some((start, prefix))
    })
}

#[async_trait]
impl DomainOps for TestConnection {
    fn driver(&self) -> &'static str {
        "test"
    }

    async fn list_all(&self, flags: ListFlags) -> Result<Vec<DomainRef>> {
        Ok(self.state.list(flags))
    }

    async fn lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        self.state.lookup_name(name)
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        self.state.lookup_uuid(uuid)
    }

    async fn lookup_by_id(&self, id: u32) -> Result<DomainRef> {
        self.state.lookup_id(id)
    }

    async fn define_xml(&self, xml: &str, _flags: DefineFlags) -> Result<DomainRef> {
        self.writable("virDomainDefineXML")?;
        self.state.define(parse_domain(xml)?)
    }

    async fn create_xml(&self, xml: &str, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreateXML")?;
        self.state.create_transient(parse_domain(xml)?, flags)
    }

    async fn undefine(&self, dom: &DomainRef, flags: UndefineFlags) -> Result<()> {
        self.writable("virDomainUndefine")?;
        self.state.undefine(dom, flags)
    }

    async fn create(&self, dom: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        self.writable("virDomainCreate")?;
        self.state.start(dom, flags)
    }

    async fn shutdown(&self, dom: &DomainRef, _flags: ShutdownFlags) -> Result<()> {
        self.writable("virDomainShutdown")?;
        self.state.shutdown(dom)
    }

    async fn reboot(&self, dom: &DomainRef, _flags: RebootFlags) -> Result<()> {
        self.writable("virDomainReboot")?;
        self.state.reboot(dom)
    }

    async fn reset(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainReset")?;
        self.state.reset(dom)
    }

    async fn destroy(&self, dom: &DomainRef, _flags: DestroyFlags) -> Result<()> {
        self.writable("virDomainDestroy")?;
        self.state.destroy(dom)
    }

    async fn suspend(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainSuspend")?;
        self.state.suspend(dom)
    }

    async fn resume(&self, dom: &DomainRef) -> Result<()> {
        self.writable("virDomainResume")?;
        self.state.resume(dom)
    }

    async fn state(&self, dom: &DomainRef) -> Result<(DomainState, i32)> {
        self.state.state(dom)
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
        self.state.autostart(dom)
    }

    async fn set_autostart(&self, dom: &DomainRef, on: bool) -> Result<()> {
        self.writable("virDomainSetAutostart")?;
        self.state.set_autostart(dom, on)
    }

    async fn is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        self.state.persistent(dom)
    }

    async fn is_active(&self, dom: &DomainRef) -> Result<bool> {
        self.state.is_active(dom)
    }

    async fn os_type(&self, dom: &DomainRef) -> Result<String> {
        // libvirt reports "linux" for every domain of the test driver.
        self.state.state(dom).map(|_| "linux".to_string())
    }

    async fn has_managed_save(&self, dom: &DomainRef) -> Result<bool> {
        self.state.managed_save(dom)
    }

    async fn interface_addresses(
        &self,
        dom: &DomainRef,
        _source: InterfaceAddressSource,
    ) -> Result<Vec<DomainInterface>> {
        // Made up, as libvirt's test driver does (whatever the source): an
        // interface on a virtual network gets the start of the network's
        // first DHCP range plus 20 per domain id plus its index plus one,
        // any other one 192.168.0.(index+1)/24.
        let (state, _) = self.state.state(dom)?;
        if !state.is_active() {
            return Err(Error::operation_invalid("domain is not running"));
        }
        let doc = xml::parse(&self.state.xml(dom, XmlFlags::empty())?)?;
        let id: u32 = doc
            .root
            .attr("id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut out = Vec::new();
        let devices = doc.root.child("devices");
        for (i, iface) in devices
            .iter()
            .flat_map(|d| d.children_named("interface"))
            .enumerate()
        {
            let get = |child: &str, a: &str| {
                iface
                    .child(child)
                    .and_then(|c| c.attr(a).map(|v| v.into_owned()))
            };
            let i = i as u32;
            let mut addr = (std::net::Ipv4Addr::new(192, 168, 0, 0), 24, i + 1);
            if iface.attr("type").as_deref() == Some("network")
                && let Some(name) = get("source", "network")
                && let Ok(net) = NetworkOps::lookup_by_name(self, &name).await
                && let Some((start, prefix)) =
                    dhcp_start(&NetworkOps::xml_desc(self, &net, XmlFlags::empty()).await?)
            {
                addr = (start, prefix, (id.saturating_sub(1)) * 20 + i + 1);
            }
            let (base, prefix, offset) = addr;
            out.push(DomainInterface {
                name: get("target", "dev").unwrap_or_default(),
                hwaddr: get("mac", "address"),
                addrs: vec![IpAddress {
                    family: "ipv4".into(),
                    addr: std::net::Ipv4Addr::from(u32::from(base).wrapping_add(offset))
                        .to_string(),
                    prefix,
                }],
            });
        }
        Ok(out)
    }

    async fn security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        let active = self.state.is_active(dom)?;
        Ok(if active {
            SecurityLabel {
                label: "libvirt-test".into(),
                enforcing: true,
            }
        } else {
            SecurityLabel::default()
        })
    }
}

#[async_trait]
impl NetworkOps for TestConnection {
    fn driver(&self) -> &'static str {
        "test"
    }

    async fn list_all(&self, flags: NetworkListFlags) -> Result<Vec<NetworkRef>> {
        Ok(self.state.net_list(flags))
    }

    async fn lookup_by_name(&self, name: &str) -> Result<NetworkRef> {
        self.state.net_lookup_name(name)
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        self.state.net_lookup_uuid(uuid)
    }

    async fn info(&self, net: &NetworkRef) -> Result<NetworkInfo> {
        self.state.net_info(net)
    }

    async fn xml_desc(&self, net: &NetworkRef, flags: XmlFlags) -> Result<String> {
        // libvirt's test driver takes no flags here (VIR_NETWORK_XML_INACTIVE
        // is 1 in libvirt's numbering).
        if flags.contains(XmlFlags::INACTIVE) {
            return Err(Error::unsupported_flags(1, "testNetworkGetXMLDesc"));
        }
        self.state.net_xml(net, false)
    }

    async fn update(
        &self,
        net: &NetworkRef,
        command: virtkit_core::network::update::Command,
        section: virtkit_core::network::update::Section,
        parent_index: i32,
        xml: &str,
        flags: virtkit_core::NetworkUpdateFlags,
    ) -> Result<()> {
        self.writable("virNetworkUpdate")?;
        self.state
            .net_update(net, command, section, parent_index, xml, flags)
    }

    async fn define_xml(&self, xml: &str) -> Result<NetworkRef> {
        self.writable("virNetworkDefineXML")?;
        self.state.net_define(parse_network(xml)?)
    }

    async fn create_xml(&self, xml: &str) -> Result<NetworkRef> {
        self.writable("virNetworkCreateXML")?;
        self.state.net_create(parse_network(xml)?)
    }

    async fn undefine(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkUndefine")?;
        self.state.net_undefine(net)
    }

    async fn start(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkCreate")?;
        self.state.net_start(net)
    }

    async fn destroy(&self, net: &NetworkRef) -> Result<()> {
        self.writable("virNetworkDestroy")?;
        self.state.net_destroy(net)
    }

    async fn set_autostart(&self, net: &NetworkRef, on: bool) -> Result<()> {
        self.writable("virNetworkSetAutostart")?;
        self.state.net_set_autostart(net, on)
    }
}

#[async_trait]
impl InterfaceOps for TestConnection {
    fn driver(&self) -> &'static str {
        "test"
    }

    async fn list_all(&self, flags: InterfaceListFlags) -> Result<Vec<InterfaceRef>> {
        Ok(self.state.iface_list(flags))
    }

    async fn lookup_by_name(&self, name: &str) -> Result<InterfaceRef> {
        self.state.iface_lookup_name(name)
    }

    async fn lookup_by_mac(&self, mac: &str) -> Result<InterfaceRef> {
        self.state.iface_lookup_mac(mac)
    }

    async fn is_active(&self, iface: &InterfaceRef) -> Result<bool> {
        self.state.iface_is_active(iface)
    }

    async fn xml_desc(&self, iface: &InterfaceRef, _flags: XmlFlags) -> Result<String> {
        self.state.iface_xml(iface)
    }
}

#[async_trait]
impl StorageOps for TestConnection {
    fn driver(&self) -> &'static str {
        "test"
    }

    async fn list_pools(&self, flags: PoolListFlags) -> Result<Vec<StoragePoolRef>> {
        Ok(self.state.pool_list(flags))
    }

    async fn lookup_pool_by_name(&self, name: &str) -> Result<StoragePoolRef> {
        self.state.pool_lookup_name(name)
    }

    async fn lookup_pool_by_uuid(&self, uuid: &Uuid) -> Result<StoragePoolRef> {
        self.state.pool_lookup_uuid(uuid)
    }

    async fn pool_info(&self, pool: &StoragePoolRef) -> Result<StoragePoolInfo> {
        self.state.pool_info(pool)
    }

    async fn pool_xml_desc(&self, pool: &StoragePoolRef, _flags: XmlFlags) -> Result<String> {
        self.state.pool_xml(pool)
    }

    async fn list_volumes(&self, pool: &StoragePoolRef) -> Result<Vec<StorageVolRef>> {
        self.state.pool_volumes(pool)
    }
}

impl EventOps for TestConnection {
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        Ok(self.state.events.subscribe(filter))
    }
}

#[cfg(test)]
mod tests;
