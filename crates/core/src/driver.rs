//! The driver traits every hypervisor backend implements.
//!
//! A [`Driver`] opens a [`Connection`] for a URI; a connection hands out
//! capability groups ([`DomainOps`], [`NetworkOps`], [`EventOps`]). Every
//! method has a default that answers the typed "unsupported" error naming the
//! driver and the operation, so a driver implements exactly what its
//! hypervisor can do and never panics or silently does nothing.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventFilter, EventStream};
use crate::ids::Uuid;
use crate::types::*;
use crate::uri::Uri;

/// A hypervisor backend, registered once per process.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Short name, e.g. `qemu`; also the cargo feature that compiles it in.
    fn name(&self) -> &'static str;

    /// URI schemes this driver serves, e.g. `["qemu"]`.
    fn schemes(&self) -> &'static [&'static str];

    /// Whether the driver itself handles URIs with a host or transport
    /// (client-side drivers such as ESX). Otherwise they go to the remote driver.
    fn handles_remote_uris(&self) -> bool {
        false
    }

    /// Opens a connection.
    async fn open(&self, uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>>;
}

/// An open connection to one driver.
#[async_trait]
pub trait Connection: Send + Sync + Debug {
    /// The driver's name, for error messages.
    fn driver(&self) -> &'static str;

    /// The connection's URI as libvirt reports it (`virConnectGetURI`).
    fn uri(&self) -> String;

    /// Whether this connection refuses mutating calls.
    fn is_read_only(&self) -> bool {
        false
    }

    /// Hypervisor type (`virConnectGetType`), e.g. `QEMU`, `TEST`.
    async fn hypervisor_type(&self) -> Result<String> {
        Err(Error::unsupported(self.driver(), "connect.type"))
    }

    /// Hypervisor version as major*1,000,000 + minor*1,000 + micro.
    async fn hypervisor_version(&self) -> Result<u64> {
        Err(Error::unsupported(self.driver(), "connect.version"))
    }

    /// Host name of the hypervisor host.
    async fn hostname(&self) -> Result<String> {
        Err(Error::unsupported(self.driver(), "connect.hostname"))
    }

    /// Host facts (`virNodeGetInfo`).
    async fn node_info(&self) -> Result<NodeInfo> {
        Err(Error::unsupported(self.driver(), "node.info"))
    }

    /// Host capabilities XML.
    async fn capabilities(&self) -> Result<String> {
        Err(Error::unsupported(self.driver(), "connect.capabilities"))
    }

    /// What a guest can have with one emulator, machine and virt type
    /// (`virConnectGetDomainCapabilities`); `None`s pick the defaults.
    async fn domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<String> {
        let _ = (emulator, arch, machine, virttype);
        Err(Error::unsupported(
            self.driver(),
            "connect.domain-capabilities",
        ))
    }

    /// Converts a hypervisor's native configuration to domain XML
    /// (`virConnectDomainXMLFromNative`), e.g. format `lxc-tools`.
    async fn domain_xml_from_native(&self, format: &str, config: &str) -> Result<String> {
        let _ = (format, config);
        Err(Error::unsupported(
            self.driver(),
            "connect.domain-xml-from-native",
        ))
    }

    /// Host security model.
    async fn security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel::default())
    }

    /// Domain operations.
    fn domains(&self) -> Result<&dyn DomainOps> {
        Err(Error::unsupported(self.driver(), "domains"))
    }

    /// Virtual network operations.
    fn networks(&self) -> Result<&dyn NetworkOps> {
        Err(Error::unsupported(self.driver(), "networks"))
    }

    /// The addresses of a guest's interfaces (`virDomainInterfaceAddresses`):
    /// the domain driver's own answer or, when it has none, for
    /// [`InterfaceAddressSource::Lease`] the DHCP leases of the virtual
    /// networks its interfaces are on and for [`InterfaceAddressSource::Arp`]
    /// the host's ARP table, matched by MAC (an interface without an
    /// address is left out), as libvirt answers.
    async fn interface_addresses(
        &self,
        dom: &DomainRef,
        source: InterfaceAddressSource,
    ) -> Result<Vec<DomainInterface>> {
        let ops = self.domains()?;
        match ops.interface_addresses(dom, source).await {
            Err(e)
                if source != InterfaceAddressSource::Agent && e.kind() == ErrorKind::NoSupport => {}
            answer => return answer,
        }
        let (state, _) = ops.state(dom).await?;
        if !state.is_active() {
            return Err(Error::operation_invalid("domain is not running"));
        }
        let doc = crate::xml::parse(&ops.xml_desc(dom, XmlFlags::empty()).await?)?;
        // ARP: the host's neighbour table (this process's network
        // namespace) as (address, MAC) of complete entries; ARP knows no
        // prefix length.
        let arp: Vec<(String, String)> = match source {
            InterfaceAddressSource::Arp => std::fs::read_to_string("/proc/net/arp")
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(|l| {
                    // IP, HW type, flags (0x0: incomplete), HW address.
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 4 && f[2] != "0x0").then(|| (f[0].to_string(), f[3].to_string()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let nets = match source {
            InterfaceAddressSource::Arp => None,
            _ => Some(self.networks()?),
        };
        let mut out = Vec::new();
        let devices = doc.root.child("devices");
        for iface in devices.iter().flat_map(|d| d.children_named("interface")) {
            let get = |child: &str, a: &str| {
                iface
                    .child(child)
                    .and_then(|c| c.attr(a).map(|v| v.into_owned()))
            };
            let Some(mac) = get("mac", "address") else {
                continue;
            };
            let addrs: Vec<IpAddress> = if let Some(nets) = nets {
                let network = get("source", "network")
                    .filter(|_| iface.attr("type").as_deref() == Some("network"));
                let Some(network) = network else { continue };
                let Ok(net) = nets.lookup_by_name(&network).await else {
                    continue;
                };
                nets.dhcp_leases(&net, Some(&mac))
                    .await?
                    .into_iter()
                    .map(|l| IpAddress {
                        family: l.family,
                        addr: l.ipaddr,
                        prefix: l.prefix,
                    })
                    .collect()
            } else {
                arp.iter()
                    .filter(|(_, hw)| hw.eq_ignore_ascii_case(&mac))
                    .map(|(ip, _)| IpAddress {
                        family: "ipv4".into(),
                        addr: ip.clone(),
                        prefix: 0,
                    })
                    .collect()
            };
            if !addrs.is_empty() {
                out.push(DomainInterface {
                    name: get("target", "dev").unwrap_or_default(),
                    hwaddr: Some(mac),
                    addrs,
                });
            }
        }
        Ok(out)
    }

    /// Host interface operations.
    fn interfaces(&self) -> Result<&dyn InterfaceOps> {
        Err(Error::unsupported(self.driver(), "interfaces"))
    }

    /// Storage pool and volume operations.
    fn storage(&self) -> Result<&dyn StorageOps> {
        Err(Error::unsupported(self.driver(), "storage"))
    }

    /// Lifecycle events.
    fn events(&self) -> Result<&dyn EventOps> {
        Err(Error::unsupported(self.driver(), "events"))
    }

    /// Closes the connection; handles fail afterwards.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

macro_rules! unsupported_default {
    ($self:ident, $op:literal) => {
        Err(Error::unsupported($self.driver(), $op))
    };
}

/// Domain operations of a connection (libvirt's `virDomain*` calls).
#[async_trait]
pub trait DomainOps: Send + Sync {
    /// The driver's name, for error messages.
    fn driver(&self) -> &'static str;

    /// Domains matching `flags` (`virConnectListAllDomains`); no flags = all.
    async fn list_all(&self, flags: ListFlags) -> Result<Vec<DomainRef>> {
        let _ = flags;
        unsupported_default!(self, "domain.list")
    }
    /// Finds a domain by name.
    async fn lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        let _ = name;
        unsupported_default!(self, "domain.lookup-by-name")
    }
    /// Finds a domain by UUID.
    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        let _ = uuid;
        unsupported_default!(self, "domain.lookup-by-uuid")
    }
    /// Finds a running domain by id.
    async fn lookup_by_id(&self, id: u32) -> Result<DomainRef> {
        let _ = id;
        unsupported_default!(self, "domain.lookup-by-id")
    }
    /// Defines (or updates) a persistent domain.
    async fn define_xml(&self, xml: &str, flags: DefineFlags) -> Result<DomainRef> {
        let _ = (xml, flags);
        unsupported_default!(self, "domain.define")
    }
    /// Creates and starts a transient domain.
    async fn create_xml(&self, xml: &str, flags: CreateFlags) -> Result<DomainRef> {
        let _ = (xml, flags);
        unsupported_default!(self, "domain.create-xml")
    }
    /// Removes a persistent definition (a running domain becomes transient).
    async fn undefine(&self, dom: &DomainRef, flags: UndefineFlags) -> Result<()> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.undefine")
    }
    /// Starts a defined domain; returns the handle with its new id.
    async fn create(&self, dom: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.start")
    }
    /// Asks the guest to shut down.
    async fn shutdown(&self, dom: &DomainRef, flags: ShutdownFlags) -> Result<()> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.shutdown")
    }
    /// Asks the guest to reboot.
    async fn reboot(&self, dom: &DomainRef, flags: RebootFlags) -> Result<()> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.reboot")
    }
    /// Resets the virtual hardware at once.
    async fn reset(&self, dom: &DomainRef) -> Result<()> {
        let _ = dom;
        unsupported_default!(self, "domain.reset")
    }
    /// Stops the domain at once.
    async fn destroy(&self, dom: &DomainRef, flags: DestroyFlags) -> Result<()> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.destroy")
    }
    /// Pauses the virtual CPUs.
    async fn suspend(&self, dom: &DomainRef) -> Result<()> {
        let _ = dom;
        unsupported_default!(self, "domain.suspend")
    }
    /// Resumes paused virtual CPUs.
    async fn resume(&self, dom: &DomainRef) -> Result<()> {
        let _ = dom;
        unsupported_default!(self, "domain.resume")
    }
    /// State and reason (`virDomainGetState`).
    async fn state(&self, dom: &DomainRef) -> Result<(DomainState, i32)> {
        let _ = dom;
        unsupported_default!(self, "domain.state")
    }
    /// `virDomainGetInfo`.
    async fn info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        let _ = dom;
        unsupported_default!(self, "domain.info")
    }
    /// The domain's XML.
    async fn xml_desc(&self, dom: &DomainRef, flags: XmlFlags) -> Result<String> {
        let _ = (dom, flags);
        unsupported_default!(self, "domain.dumpxml")
    }
    /// Whether the domain starts with the host.
    async fn autostart(&self, dom: &DomainRef) -> Result<bool> {
        let _ = dom;
        unsupported_default!(self, "domain.autostart")
    }
    /// Sets autostart.
    async fn set_autostart(&self, dom: &DomainRef, on: bool) -> Result<()> {
        let _ = (dom, on);
        unsupported_default!(self, "domain.set-autostart")
    }
    /// Whether the domain has a persistent definition.
    async fn is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        let _ = dom;
        unsupported_default!(self, "domain.is-persistent")
    }
    /// Whether the domain is running or paused.
    async fn is_active(&self, dom: &DomainRef) -> Result<bool> {
        Ok(self.state(dom).await?.0.is_active())
    }
    /// Guest OS type as libvirt reports it (`linux` for Xen PV, `hvm`...).
    async fn os_type(&self, dom: &DomainRef) -> Result<String> {
        let _ = dom;
        unsupported_default!(self, "domain.os-type")
    }
    /// Whether a managed-save image exists.
    async fn has_managed_save(&self, dom: &DomainRef) -> Result<bool> {
        let _ = dom;
        Ok(false)
    }
    /// The domain's security label.
    async fn security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        let _ = dom;
        unsupported_default!(self, "domain.security-label")
    }
    /// Statistics of the requested groups (`virConnectGetAllDomainStats`
    /// for one domain): `state.state`, `cpu.time`, `block.0.rd.bytes`...
    async fn stats(&self, dom: &DomainRef, groups: StatsGroups) -> Result<TypedParams> {
        let _ = (dom, groups);
        unsupported_default!(self, "domain.stats")
    }
    /// I/O statistics of one disk, named by target (`vda`) or source path.
    async fn block_stats(&self, dom: &DomainRef, disk: &str) -> Result<BlockStats> {
        let _ = (dom, disk);
        unsupported_default!(self, "domain.block-stats")
    }
    /// A disk's I/O limits (`virDomainGetBlockIoTune`), named by target
    /// (`vda`) or source path: libvirt's typed parameters
    /// (`total_bytes_sec`, ..., `group_name`, ..., 0 for no limit).
    async fn block_iotune(&self, dom: &DomainRef, disk: &str) -> Result<TypedParams> {
        let _ = (dom, disk);
        unsupported_default!(self, "domain.block-iotune")
    }
    /// Changes the given I/O limits of a running domain's disk
    /// (`virDomainSetBlockIoTune` on the live domain); the others stay.
    async fn set_block_iotune(
        &self,
        dom: &DomainRef,
        disk: &str,
        params: &TypedParams,
    ) -> Result<()> {
        let _ = (dom, disk, params);
        unsupported_default!(self, "domain.set-block-iotune")
    }
    /// Traffic of one interface, named by host device (`vnet0`) or MAC.
    async fn interface_stats(&self, dom: &DomainRef, iface: &str) -> Result<InterfaceStats> {
        let _ = (dom, iface);
        unsupported_default!(self, "domain.interface-stats")
    }
    /// The addresses of the guest's interfaces, from `source`. A driver
    /// without its own answer for [`InterfaceAddressSource::Lease`] gets the
    /// generic one ([`Connection::interface_addresses`]: the leases of the
    /// virtual networks its interfaces are on).
    async fn interface_addresses(
        &self,
        dom: &DomainRef,
        source: InterfaceAddressSource,
    ) -> Result<Vec<DomainInterface>> {
        let _ = (dom, source);
        unsupported_default!(self, "domain.interface-addresses")
    }
    /// The guest's console: the host device or socket to talk to it
    /// (`dev`: a `<serial>`/`<console>` alias such as `serial0`; `None`:
    /// the first console).
    async fn console_path(&self, dom: &DomainRef, dev: Option<&str>) -> Result<std::path::PathBuf> {
        let _ = (dom, dev);
        unsupported_default!(self, "domain.console")
    }
    /// The namespaces and cgroups of a running container, to run a command
    /// inside it (`virsh lxc-enter-namespace`).
    async fn lxc_open_namespace(&self, dom: &DomainRef) -> Result<ContainerEntry> {
        let _ = dom;
        unsupported_default!(self, "domain.lxc-open-namespace")
    }
    /// A screenshot of display `screen`: the image bytes and their MIME type.
    async fn screenshot(&self, dom: &DomainRef, screen: u32) -> Result<(Vec<u8>, String)> {
        let _ = (dom, screen);
        unsupported_default!(self, "domain.screenshot")
    }
}

/// Virtual network operations of a connection.
#[async_trait]
pub trait NetworkOps: Send + Sync {
    /// The driver's name, for error messages.
    fn driver(&self) -> &'static str;

    /// Networks matching `flags`; no flags = all.
    async fn list_all(&self, flags: NetworkListFlags) -> Result<Vec<NetworkRef>> {
        let _ = flags;
        unsupported_default!(self, "network.list")
    }
    /// Finds a network by name.
    async fn lookup_by_name(&self, name: &str) -> Result<NetworkRef> {
        let _ = name;
        unsupported_default!(self, "network.lookup-by-name")
    }
    /// Finds a network by UUID.
    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        let _ = uuid;
        unsupported_default!(self, "network.lookup-by-uuid")
    }
    /// State and settings shown by `net-info`.
    async fn info(&self, net: &NetworkRef) -> Result<NetworkInfo> {
        let _ = net;
        unsupported_default!(self, "network.info")
    }
    /// The network's XML.
    async fn xml_desc(&self, net: &NetworkRef, flags: XmlFlags) -> Result<String> {
        let _ = (net, flags);
        unsupported_default!(self, "network.dumpxml")
    }
    /// Defines a persistent network.
    async fn define_xml(&self, xml: &str) -> Result<NetworkRef> {
        let _ = xml;
        unsupported_default!(self, "network.define")
    }
    /// Creates and starts a transient network.
    async fn create_xml(&self, xml: &str) -> Result<NetworkRef> {
        let _ = xml;
        unsupported_default!(self, "network.create")
    }
    /// Removes a persistent definition.
    async fn undefine(&self, net: &NetworkRef) -> Result<()> {
        let _ = net;
        unsupported_default!(self, "network.undefine")
    }
    /// Starts a defined network.
    async fn start(&self, net: &NetworkRef) -> Result<()> {
        let _ = net;
        unsupported_default!(self, "network.start")
    }
    /// Stops a network.
    async fn destroy(&self, net: &NetworkRef) -> Result<()> {
        let _ = net;
        unsupported_default!(self, "network.destroy")
    }
    /// Sets autostart.
    async fn set_autostart(&self, net: &NetworkRef, on: bool) -> Result<()> {
        let _ = (net, on);
        unsupported_default!(self, "network.set-autostart")
    }
    /// Adds, deletes or modifies one entry of a section of the definition
    /// (`virNetworkUpdate`), in the running network and/or the persistent
    /// definition as `flags` say.
    async fn update(
        &self,
        net: &NetworkRef,
        command: crate::network::update::Command,
        section: crate::network::update::Section,
        parent_index: i32,
        xml: &str,
        flags: NetworkUpdateFlags,
    ) -> Result<()> {
        let _ = (net, command, section, parent_index, xml, flags);
        unsupported_default!(self, "network.update")
    }
    /// The DHCP leases handed out on the network, optionally only those of
    /// one MAC address (`virNetworkGetDHCPLeases`).
    async fn dhcp_leases(
        &self,
        net: &NetworkRef,
        mac: Option<&str>,
    ) -> Result<Vec<NetworkDhcpLease>> {
        let _ = (net, mac);
        unsupported_default!(self, "network.dhcp-leases")
    }
}

/// Host interface operations of a connection (libvirt's `virInterface*`).
#[async_trait]
pub trait InterfaceOps: Send + Sync {
    /// The driver's name, for error messages.
    fn driver(&self) -> &'static str;

    /// Interfaces matching `flags`; no flags = all.
    async fn list_all(&self, flags: InterfaceListFlags) -> Result<Vec<InterfaceRef>> {
        let _ = flags;
        unsupported_default!(self, "interface.list")
    }
    /// Finds an interface by name.
    async fn lookup_by_name(&self, name: &str) -> Result<InterfaceRef> {
        let _ = name;
        unsupported_default!(self, "interface.lookup-by-name")
    }
    /// Finds an interface by MAC address.
    async fn lookup_by_mac(&self, mac: &str) -> Result<InterfaceRef> {
        let _ = mac;
        unsupported_default!(self, "interface.lookup-by-mac")
    }
    /// Whether the interface is up.
    async fn is_active(&self, iface: &InterfaceRef) -> Result<bool> {
        let _ = iface;
        unsupported_default!(self, "interface.is-active")
    }
    /// The interface's XML.
    async fn xml_desc(&self, iface: &InterfaceRef, flags: XmlFlags) -> Result<String> {
        let _ = (iface, flags);
        unsupported_default!(self, "interface.dumpxml")
    }
}

/// Storage operations of a connection (libvirt's `virStoragePool*`/`virStorageVol*`).
#[async_trait]
pub trait StorageOps: Send + Sync {
    /// The driver's name, for error messages.
    fn driver(&self) -> &'static str;

    /// Pools matching `flags`; no flags = all.
    async fn list_pools(&self, flags: PoolListFlags) -> Result<Vec<StoragePoolRef>> {
        let _ = flags;
        unsupported_default!(self, "storage.pool-list")
    }
    /// Finds a pool by name.
    async fn lookup_pool_by_name(&self, name: &str) -> Result<StoragePoolRef> {
        let _ = name;
        unsupported_default!(self, "storage.pool-lookup-by-name")
    }
    /// Finds a pool by UUID.
    async fn lookup_pool_by_uuid(&self, uuid: &Uuid) -> Result<StoragePoolRef> {
        let _ = uuid;
        unsupported_default!(self, "storage.pool-lookup-by-uuid")
    }
    /// State, sizes, persistence and autostart of a pool.
    async fn pool_info(&self, pool: &StoragePoolRef) -> Result<StoragePoolInfo> {
        let _ = pool;
        unsupported_default!(self, "storage.pool-info")
    }
    /// The pool's XML.
    async fn pool_xml_desc(&self, pool: &StoragePoolRef, flags: XmlFlags) -> Result<String> {
        let _ = (pool, flags);
        unsupported_default!(self, "storage.pool-dumpxml")
    }
    /// Volumes of a pool.
    async fn list_volumes(&self, pool: &StoragePoolRef) -> Result<Vec<StorageVolRef>> {
        let _ = pool;
        unsupported_default!(self, "storage.vol-list")
    }
}

/// Event subscription of a connection.
pub trait EventOps: Send + Sync {
    /// A stream of lifecycle events passing `filter`, from now until the
    /// connection closes.
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream>;

    /// A stream of network lifecycle events (defined, undefined, started,
    /// stopped), optionally of one network only.
    fn subscribe_networks(
        &self,
        network: Option<Uuid>,
    ) -> Result<crate::event::NetworkEventStream> {
        let _ = network;
        Err(Error::unsupported("events", "network-events"))
    }
}
