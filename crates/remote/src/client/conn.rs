//! A remote connection: virtkit's driver traits as RPC calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use virtkit_core::network::update::{Command, Section};
use virtkit_core::{
    BlockStats, Connection, CreateFlags, DefineFlags, DestroyFlags, DomainInfo, DomainInterface,
    DomainOps, DomainRef, DomainState, Error, ErrorKind, EventFilter, EventOps, EventStream,
    InterfaceAddressSource, InterfaceListFlags, InterfaceOps, InterfaceRef, InterfaceStats,
    ListFlags, NetworkDhcpLease, NetworkEventStream, NetworkInfo, NetworkListFlags, NetworkOps,
    NetworkRef, NetworkUpdateFlags, NodeInfo, OpenFlags, PoolListFlags, PoolState, RebootFlags,
    Result, SecurityLabel, SecurityModel, ShutdownFlags, StatsGroups, StorageOps, StoragePoolInfo,
    StoragePoolRef, StorageVolRef, TypedParams, UndefineFlags, Uri, Uuid, XmlFlags, async_trait,
};

use super::rpc::{CallbackKind, EventSink, RpcClient};
use super::transport::Stream;
use crate::protocol::convert::*;
use crate::protocol::feature;
use crate::protocol::procs::*;
use crate::protocol::remote::*;
use crate::xdr::Void;

/// An open connection to a remote daemon.
#[derive(Debug)]
pub struct RemoteConnection {
    rpc: Arc<RpcClient>,
    uri: String,
    read_only: bool,
    event_callbacks: bool,
    closed: AtomicBool,
}

impl RemoteConnection {
    /// Runs libvirt's open sequence over a connected stream.
    pub async fn handshake(
        uri: &Uri,
        flags: OpenFlags,
        stream: Box<dyn Stream>,
        timeout: Duration,
    ) -> Result<RemoteConnection> {
        let rpc = RpcClient::start(stream, timeout);
        match rpc.call::<_, AuthListRet>(AUTH_LIST, &Void).await {
            Ok(list) => {
                let types: Vec<i32> = list.types.0;
                if types.contains(&(AuthType::Polkit as i32)) {
                    rpc.call::<_, IntRet>(AUTH_POLKIT, &Void).await?;
                } else if !types.is_empty() && !types.contains(&(AuthType::None as i32)) {
                    return Err(Error::new(
                        ErrorKind::AuthFailed,
                        "the server requires SASL authentication, which virtkit does not support",
                    ));
                }
            }
            // A server without the procedure needs no authentication.
            Err(e) if matches!(e.kind(), ErrorKind::Rpc | ErrorKind::NoSupport) => {}
            Err(e) => return Err(e),
        }
        let keepalive = supports(&rpc, feature::PROGRAM_KEEPALIVE).await?;
        let name = uri.server_name();
        let name = if uri.driver() == "remote" && uri.path().trim_matches('/').is_empty() {
            // remote://host/ lets the server pick its default driver.
            None
        } else {
            Some(name)
        };
        rpc.call::<_, Void>(
            CONNECT_OPEN,
            &ConnectOpenArgs {
                name,
                flags: flags.bits() & OpenFlags::READ_ONLY.bits(),
            },
        )
        .await?;
        let event_callbacks = supports(&rpc, feature::REMOTE_EVENT_CALLBACK).await?;
        if keepalive {
            rpc.start_keepalive(Duration::from_secs(5), 6);
        }
        Ok(RemoteConnection {
            rpc,
            uri: uri.to_string(),
            read_only: flags.contains(OpenFlags::READ_ONLY),
            event_callbacks,
            closed: AtomicBool::new(false),
        })
    }

    fn call<A: crate::xdr::XdrEncode, R: for<'a> crate::xdr::XdrDecode<'a>>(
        &self,
        proc_: i32,
        args: &A,
    ) -> impl std::future::Future<Output = Result<R>> + Send + '_ {
        self.rpc.call(proc_, args)
    }

    fn flag(
        &self,
        proc_: i32,
        args: &impl crate::xdr::XdrEncode,
    ) -> impl std::future::Future<Output = Result<bool>> + Send + '_ {
        let f = self.call::<_, IntRet>(proc_, args);
        async move { Ok(f.await?.value != 0) }
    }

    fn string(
        &self,
        proc_: i32,
        args: &impl crate::xdr::XdrEncode,
    ) -> impl std::future::Future<Output = Result<String>> + Send + '_ {
        let f = self.call::<_, StringRet>(proc_, args);
        async move { Ok(f.await?.value) }
    }

    fn dom(d: &DomainRef) -> DomainArg {
        DomainArg { dom: wire_dom(d) }
    }

    fn dom_flags(d: &DomainRef, flags: u32) -> DomainFlagsArgs {
        DomainFlagsArgs {
            dom: wire_dom(d),
            flags,
        }
    }
}

async fn supports(rpc: &RpcClient, feature: i32) -> Result<bool> {
    match rpc
        .call::<_, IntRet>(CONNECT_SUPPORTS_FEATURE, &SupportsFeatureArgs { feature })
        .await
    {
        Ok(r) => Ok(r.value != 0),
        Err(e) if e.kind() == ErrorKind::InvalidConn => Err(e),
        Err(_) => Ok(false),
    }
}

#[async_trait]
impl Connection for RemoteConnection {
    fn driver(&self) -> &'static str {
        "remote"
    }

    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn hypervisor_type(&self) -> Result<String> {
        self.string(CONNECT_GET_TYPE, &Void).await
    }

    async fn hypervisor_version(&self) -> Result<u64> {
        Ok(self
            .call::<_, HyperRet>(CONNECT_GET_VERSION, &Void)
            .await?
            .value)
    }

    async fn hostname(&self) -> Result<String> {
        self.string(CONNECT_GET_HOSTNAME, &Void).await
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        let r: NodeGetInfoRet = self.call(NODE_GET_INFO, &Void).await?;
        Ok(NodeInfo {
            model: r.model.0,
            memory_kib: r.memory,
            cpus: r.cpus.max(0) as u32,
            mhz: r.mhz.max(0) as u32,
            nodes: r.nodes.max(0) as u32,
            sockets: r.sockets.max(0) as u32,
            cores: r.cores.max(0) as u32,
            threads: r.threads.max(0) as u32,
        })
    }

    async fn capabilities(&self) -> Result<String> {
        self.string(CONNECT_GET_CAPABILITIES, &Void).await
    }

    async fn domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<String> {
        let own = |s: Option<&str>| s.map(str::to_string);
        self.string(
            CONNECT_GET_DOMAIN_CAPABILITIES,
            &ConnectGetDomainCapabilitiesArgs {
                emulatorbin: own(emulator),
                arch: own(arch),
                machine: own(machine),
                virttype: own(virttype),
                flags: 0,
            },
        )
        .await
    }

    async fn security_model(&self) -> Result<SecurityModel> {
        let r: NodeGetSecurityModelRet = self.call(NODE_GET_SECURITY_MODEL, &Void).await?;
        Ok(SecurityModel {
            model: r.model.0,
            doi: r.doi.0,
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

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let r = self.call::<_, Void>(CONNECT_CLOSE, &Void).await;
        self.rpc.shutdown();
        r.map(|_| ())
    }
}

impl Drop for RemoteConnection {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst) {
            self.rpc.shutdown();
        }
    }
}

#[async_trait]
impl DomainOps for RemoteConnection {
    fn driver(&self) -> &'static str {
        "remote"
    }

    async fn list_all(&self, flags: ListFlags) -> Result<Vec<DomainRef>> {
        let r: ListAllDomainsRet = self
            .call(
                CONNECT_LIST_ALL_DOMAINS,
                &ListAllArgs {
                    need_results: 1,
                    flags: flags.bits(),
                },
            )
            .await?;
        Ok(r.domains.iter().map(dom_ref).collect())
    }

    async fn lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        let r: DomainArg = self
            .call(DOMAIN_LOOKUP_BY_NAME, &StrArg { value: name })
            .await?;
        Ok(dom_ref(&r.dom))
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        let r: DomainArg = self
            .call(DOMAIN_LOOKUP_BY_UUID, &LookupByUuidArgs { uuid: uuid.0 })
            .await?;
        Ok(dom_ref(&r.dom))
    }

    async fn lookup_by_id(&self, id: u32) -> Result<DomainRef> {
        let id = i32::try_from(id)
            .map_err(|_| Error::no_domain(format!("no domain with matching id {id}")))?;
        let r: DomainArg = self
            .call(DOMAIN_LOOKUP_BY_ID, &LookupByIdArgs { id })
            .await?;
        Ok(dom_ref(&r.dom))
    }

    async fn define_xml(&self, xml: &str, flags: DefineFlags) -> Result<DomainRef> {
        let r: DomainArg = if flags.bits() == 0 {
            self.call(DOMAIN_DEFINE_XML, &StrArg { value: xml }).await?
        } else {
            self.call(
                DOMAIN_DEFINE_XML_FLAGS,
                &XmlFlagsArgs {
                    xml,
                    flags: flags.bits(),
                },
            )
            .await?
        };
        Ok(dom_ref(&r.dom))
    }

    async fn create_xml(&self, xml: &str, flags: CreateFlags) -> Result<DomainRef> {
        let r: DomainArg = self
            .call(
                DOMAIN_CREATE_XML,
                &XmlFlagsArgs {
                    xml,
                    flags: flags.bits(),
                },
            )
            .await?;
        Ok(dom_ref(&r.dom))
    }

    async fn undefine(&self, dom: &DomainRef, flags: UndefineFlags) -> Result<()> {
        if flags.bits() == 0 {
            self.call::<_, Void>(DOMAIN_UNDEFINE, &Self::dom(dom))
                .await?;
        } else {
            self.call::<_, Void>(DOMAIN_UNDEFINE_FLAGS, &Self::dom_flags(dom, flags.bits()))
                .await?;
        }
        Ok(())
    }

    async fn create(&self, dom: &DomainRef, flags: CreateFlags) -> Result<DomainRef> {
        if flags.bits() == 0 {
            // As libvirt's client: start, then look the domain up for its id.
            self.call::<_, Void>(DOMAIN_CREATE, &Self::dom(dom)).await?;
            DomainOps::lookup_by_uuid(self, &dom.uuid).await
        } else {
            let r: DomainArg = self
                .call(
                    DOMAIN_CREATE_WITH_FLAGS,
                    &Self::dom_flags(dom, flags.bits()),
                )
                .await?;
            Ok(dom_ref(&r.dom))
        }
    }

    async fn shutdown(&self, dom: &DomainRef, flags: ShutdownFlags) -> Result<()> {
        if flags.bits() == 0 {
            self.call::<_, Void>(DOMAIN_SHUTDOWN, &Self::dom(dom))
                .await?;
        } else {
            self.call::<_, Void>(DOMAIN_SHUTDOWN_FLAGS, &Self::dom_flags(dom, flags.bits()))
                .await?;
        }
        Ok(())
    }

    async fn reboot(&self, dom: &DomainRef, flags: RebootFlags) -> Result<()> {
        self.call::<_, Void>(DOMAIN_REBOOT, &Self::dom_flags(dom, flags.bits()))
            .await?;
        Ok(())
    }

    async fn reset(&self, dom: &DomainRef) -> Result<()> {
        self.call::<_, Void>(DOMAIN_RESET, &Self::dom_flags(dom, 0))
            .await?;
        Ok(())
    }

    async fn destroy(&self, dom: &DomainRef, flags: DestroyFlags) -> Result<()> {
        if flags.bits() == 0 {
            self.call::<_, Void>(DOMAIN_DESTROY, &Self::dom(dom))
                .await?;
        } else {
            self.call::<_, Void>(DOMAIN_DESTROY_FLAGS, &Self::dom_flags(dom, flags.bits()))
                .await?;
        }
        Ok(())
    }

    async fn suspend(&self, dom: &DomainRef) -> Result<()> {
        self.call::<_, Void>(DOMAIN_SUSPEND, &Self::dom(dom))
            .await?;
        Ok(())
    }

    async fn resume(&self, dom: &DomainRef) -> Result<()> {
        self.call::<_, Void>(DOMAIN_RESUME, &Self::dom(dom)).await?;
        Ok(())
    }

    async fn state(&self, dom: &DomainRef) -> Result<(DomainState, i32)> {
        let r: DomainGetStateRet = self
            .call(DOMAIN_GET_STATE, &Self::dom_flags(dom, 0))
            .await?;
        Ok((DomainState::from_code(r.state), r.reason))
    }

    async fn info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        let r: DomainGetInfoRet = self.call(DOMAIN_GET_INFO, &Self::dom(dom)).await?;
        Ok(DomainInfo {
            state: DomainState::from_code(r.state as i32),
            max_mem_kib: r.max_mem,
            memory_kib: r.memory,
            nr_virt_cpu: r.nr_virt_cpu,
            cpu_time_ns: r.cpu_time,
        })
    }

    async fn xml_desc(&self, dom: &DomainRef, flags: XmlFlags) -> Result<String> {
        self.string(DOMAIN_GET_XML_DESC, &Self::dom_flags(dom, flags.bits()))
            .await
    }

    async fn autostart(&self, dom: &DomainRef) -> Result<bool> {
        self.flag(DOMAIN_GET_AUTOSTART, &Self::dom(dom)).await
    }

    async fn set_autostart(&self, dom: &DomainRef, on: bool) -> Result<()> {
        self.call::<_, Void>(
            DOMAIN_SET_AUTOSTART,
            &DomainSetAutostartArgs {
                dom: wire_dom(dom),
                autostart: i32::from(on),
            },
        )
        .await?;
        Ok(())
    }

    async fn is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        self.flag(DOMAIN_IS_PERSISTENT, &Self::dom(dom)).await
    }

    async fn is_active(&self, dom: &DomainRef) -> Result<bool> {
        self.flag(DOMAIN_IS_ACTIVE, &Self::dom(dom)).await
    }

    async fn os_type(&self, dom: &DomainRef) -> Result<String> {
        self.string(DOMAIN_GET_OS_TYPE, &Self::dom(dom)).await
    }

    async fn has_managed_save(&self, dom: &DomainRef) -> Result<bool> {
        self.flag(DOMAIN_HAS_MANAGED_SAVE_IMAGE, &Self::dom_flags(dom, 0))
            .await
    }

    async fn security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        let r: DomainGetSecurityLabelRet = self
            .call(DOMAIN_GET_SECURITY_LABEL, &Self::dom(dom))
            .await?;
        Ok(SecurityLabel {
            label: r.label.0,
            enforcing: r.enforcing != 0,
        })
    }

    async fn stats(&self, dom: &DomainRef, groups: StatsGroups) -> Result<TypedParams> {
        let r: ConnectGetAllDomainStatsRet = self
            .call(
                CONNECT_GET_ALL_DOMAIN_STATS,
                &ConnectGetAllDomainStatsArgs {
                    doms: vec![wire_dom(dom)].into(),
                    stats: groups.bits(),
                    flags: 0,
                },
            )
            .await?;
        let rec = r
            .ret_stats
            .0
            .into_iter()
            .find(|rec| rec.dom.uuid == dom.uuid.0)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Rpc,
                    format!("the server sent no statistics for domain '{}'", dom.name),
                )
            })?;
        Ok(typed_params(&rec.params))
    }

    async fn block_stats(&self, dom: &DomainRef, disk: &str) -> Result<BlockStats> {
        let r: DomainBlockStatsRet = self
            .call(
                DOMAIN_BLOCK_STATS,
                &DomainPathArgs {
                    dom: wire_dom(dom),
                    path: disk.to_string(),
                },
            )
            .await?;
        Ok(BlockStats {
            rd_req: r.rd_req,
            rd_bytes: r.rd_bytes,
            wr_req: r.wr_req,
            wr_bytes: r.wr_bytes,
            errs: r.errs,
        })
    }

    async fn interface_stats(&self, dom: &DomainRef, iface: &str) -> Result<InterfaceStats> {
        let r: DomainInterfaceStatsRet = self
            .call(
                DOMAIN_INTERFACE_STATS,
                &DomainPathArgs {
                    dom: wire_dom(dom),
                    path: iface.to_string(),
                },
            )
            .await?;
        Ok(InterfaceStats {
            rx_bytes: r.rx_bytes,
            rx_packets: r.rx_packets,
            rx_errs: r.rx_errs,
            rx_drop: r.rx_drop,
            tx_bytes: r.tx_bytes,
            tx_packets: r.tx_packets,
            tx_errs: r.tx_errs,
            tx_drop: r.tx_drop,
        })
    }

    async fn block_iotune(&self, dom: &DomainRef, disk: &str) -> Result<TypedParams> {
        let args = |nparams| DomainGetBlockIoTuneArgs {
            dom: wire_dom(dom),
            disk: Some(disk.to_string()),
            nparams,
            flags: 4,
        };
        let n: DomainGetBlockIoTuneRet = self.call(DOMAIN_GET_BLOCK_IO_TUNE, &args(0)).await?;
        let r: DomainGetBlockIoTuneRet = self
            .call(DOMAIN_GET_BLOCK_IO_TUNE, &args(n.nparams))
            .await?;
        Ok(typed_params(&r.params))
    }

    async fn set_block_iotune(
        &self,
        dom: &DomainRef,
        disk: &str,
        params: &TypedParams,
    ) -> Result<()> {
        let _: Void = self
            .call(
                DOMAIN_SET_BLOCK_IO_TUNE,
                &DomainSetBlockIoTuneArgs {
                    dom: wire_dom(dom),
                    disk: disk.to_string(),
                    params: wire_typed_params(params).into(),
                    flags: 1,
                },
            )
            .await?;
        Ok(())
    }

    async fn interface_addresses(
        &self,
        dom: &DomainRef,
        source: InterfaceAddressSource,
    ) -> Result<Vec<DomainInterface>> {
        let r: DomainInterfaceAddressesRet = self
            .call(
                DOMAIN_INTERFACE_ADDRESSES,
                &DomainInterfaceAddressesArgs {
                    dom: wire_dom(dom),
                    source: source as u32,
                    flags: 0,
                },
            )
            .await?;
        Ok(r.ifaces.iter().map(interface).collect())
    }

    /// A local terminal bridged to the remote console stream (see
    /// `super::console`).
    async fn console_path(&self, dom: &DomainRef, dev: Option<&str>) -> Result<std::path::PathBuf> {
        let (Void, stream) = self
            .rpc
            .call_stream(
                DOMAIN_OPEN_CONSOLE,
                &DomainOpenConsoleArgs {
                    dom: wire_dom(dom),
                    dev_name: dev.map(str::to_string),
                    flags: 0,
                },
            )
            .await?;
        super::console::bridge(stream)
    }

    async fn screenshot(&self, dom: &DomainRef, screen: u32) -> Result<(Vec<u8>, String)> {
        let (ret, mut stream): (DomainScreenshotRet, _) = self
            .rpc
            .call_stream(
                DOMAIN_SCREENSHOT,
                &DomainScreenshotArgs {
                    dom: wire_dom(dom),
                    screen,
                    flags: 0,
                },
            )
            .await?;
        let mut data = Vec::new();
        while let Some(chunk) = stream.recv().await? {
            if data.len() + chunk.len() > SCREENSHOT_MAX {
                let _ = stream.abort().await;
                return Err(Error::new(
                    ErrorKind::Rpc,
                    format!("the screenshot exceeds {SCREENSHOT_MAX} bytes"),
                ));
            }
            data.extend_from_slice(&chunk);
        }
        stream.finish().await?;
        Ok((data, ret.mime.unwrap_or_default()))
    }
}

#[async_trait]
impl NetworkOps for RemoteConnection {
    fn driver(&self) -> &'static str {
        "remote"
    }

    async fn list_all(&self, flags: NetworkListFlags) -> Result<Vec<NetworkRef>> {
        let r: ListAllNetworksRet = self
            .call(
                CONNECT_LIST_ALL_NETWORKS,
                &ListAllArgs {
                    need_results: 1,
                    flags: flags.bits(),
                },
            )
            .await?;
        Ok(r.nets.iter().map(net_ref).collect())
    }

    async fn lookup_by_name(&self, name: &str) -> Result<NetworkRef> {
        let r: NetworkArg = self
            .call(NETWORK_LOOKUP_BY_NAME, &StrArg { value: name })
            .await?;
        Ok(net_ref(&r.net))
    }

    async fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetworkRef> {
        let r: NetworkArg = self
            .call(NETWORK_LOOKUP_BY_UUID, &LookupByUuidArgs { uuid: uuid.0 })
            .await?;
        Ok(net_ref(&r.net))
    }

    async fn info(&self, net: &NetworkRef) -> Result<NetworkInfo> {
        let a = NetworkArg { net: wire_net(net) };
        let active = self.flag(NETWORK_IS_ACTIVE, &a).await?;
        let persistent = self.flag(NETWORK_IS_PERSISTENT, &a).await?;
        let autostart = self.flag(NETWORK_GET_AUTOSTART, &a).await?;
        // A network without a bridge (e.g. macvtap) answers an error here.
        let bridge = self.string(NETWORK_GET_BRIDGE_NAME, &a).await.ok();
        Ok(NetworkInfo {
            net: net.clone(),
            active,
            persistent,
            autostart,
            bridge,
        })
    }

    async fn xml_desc(&self, net: &NetworkRef, flags: XmlFlags) -> Result<String> {
        self.string(
            NETWORK_GET_XML_DESC,
            &NetworkFlagsArgs {
                net: wire_net(net),
                flags: wire_object_xml_flags(flags),
            },
        )
        .await
    }

    async fn define_xml(&self, xml: &str) -> Result<NetworkRef> {
        let r: NetworkArg = self
            .call(NETWORK_DEFINE_XML, &StrArg { value: xml })
            .await?;
        Ok(net_ref(&r.net))
    }

    async fn create_xml(&self, xml: &str) -> Result<NetworkRef> {
        let r: NetworkArg = self
            .call(NETWORK_CREATE_XML, &StrArg { value: xml })
            .await?;
        Ok(net_ref(&r.net))
    }

    async fn undefine(&self, net: &NetworkRef) -> Result<()> {
        self.call::<_, Void>(NETWORK_UNDEFINE, &NetworkArg { net: wire_net(net) })
            .await?;
        Ok(())
    }

    async fn start(&self, net: &NetworkRef) -> Result<()> {
        self.call::<_, Void>(NETWORK_CREATE, &NetworkArg { net: wire_net(net) })
            .await?;
        Ok(())
    }

    async fn destroy(&self, net: &NetworkRef) -> Result<()> {
        self.call::<_, Void>(NETWORK_DESTROY, &NetworkArg { net: wire_net(net) })
            .await?;
        Ok(())
    }

    async fn set_autostart(&self, net: &NetworkRef, on: bool) -> Result<()> {
        self.call::<_, Void>(
            NETWORK_SET_AUTOSTART,
            &NetworkSetAutostartArgs {
                net: wire_net(net),
                autostart: i32::from(on),
            },
        )
        .await?;
        Ok(())
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
        // libvirt before 1.2.6 took section and command swapped; a server
        // that does not say it has the documented order gets them so.
        let (mut command, mut section) = (command as u32, section as u32);
        if !supports(&self.rpc, feature::NETWORK_UPDATE_HAS_CORRECT_ORDER).await? {
            std::mem::swap(&mut command, &mut section);
        }
        self.call::<_, Void>(
            NETWORK_UPDATE,
            &NetworkUpdateArgs {
                net: wire_net(net),
                command,
                section,
                parent_index,
                xml: xml.to_string(),
                flags: flags.bits(),
            },
        )
        .await?;
        Ok(())
    }

    async fn dhcp_leases(
        &self,
        net: &NetworkRef,
        mac: Option<&str>,
    ) -> Result<Vec<NetworkDhcpLease>> {
        let r: NetworkGetDhcpLeasesRet = self
            .call(
                NETWORK_GET_DHCP_LEASES,
                &NetworkGetDhcpLeasesArgs {
                    net: wire_net(net),
                    mac: mac.map(str::to_string),
                    need_results: 1,
                    flags: 0,
                },
            )
            .await?;
        Ok(r.leases.iter().map(lease).collect())
    }
}

#[async_trait]
impl InterfaceOps for RemoteConnection {
    fn driver(&self) -> &'static str {
        "remote"
    }

    async fn list_all(&self, flags: InterfaceListFlags) -> Result<Vec<InterfaceRef>> {
        let r: ListAllInterfacesRet = self
            .call(
                CONNECT_LIST_ALL_INTERFACES,
                &ListAllArgs {
                    need_results: 1,
                    flags: flags.bits(),
                },
            )
            .await?;
        Ok(r.ifaces.iter().map(iface_ref).collect())
    }

    async fn lookup_by_name(&self, name: &str) -> Result<InterfaceRef> {
        let r: InterfaceArg = self
            .call(INTERFACE_LOOKUP_BY_NAME, &StrArg { value: name })
            .await?;
        Ok(iface_ref(&r.iface))
    }

    async fn lookup_by_mac(&self, mac: &str) -> Result<InterfaceRef> {
        let r: InterfaceArg = self
            .call(INTERFACE_LOOKUP_BY_MAC_STRING, &StrArg { value: mac })
            .await?;
        Ok(iface_ref(&r.iface))
    }

    async fn is_active(&self, iface: &InterfaceRef) -> Result<bool> {
        self.flag(
            INTERFACE_IS_ACTIVE,
            &InterfaceArg {
                iface: wire_iface(iface),
            },
        )
        .await
    }

    async fn xml_desc(&self, iface: &InterfaceRef, flags: XmlFlags) -> Result<String> {
        self.string(
            INTERFACE_GET_XML_DESC,
            &InterfaceFlagsArgs {
                iface: wire_iface(iface),
                flags: wire_object_xml_flags(flags),
            },
        )
        .await
    }
}

#[async_trait]
impl StorageOps for RemoteConnection {
    fn driver(&self) -> &'static str {
        "remote"
    }

    async fn list_pools(&self, flags: PoolListFlags) -> Result<Vec<StoragePoolRef>> {
        let r: ListAllStoragePoolsRet = self
            .call(
                CONNECT_LIST_ALL_STORAGE_POOLS,
                &ListAllArgs {
                    need_results: 1,
                    flags: flags.bits(),
                },
            )
            .await?;
        Ok(r.pools.iter().map(pool_ref).collect())
    }

    async fn lookup_pool_by_name(&self, name: &str) -> Result<StoragePoolRef> {
        let r: PoolArg = self
            .call(STORAGE_POOL_LOOKUP_BY_NAME, &StrArg { value: name })
            .await?;
        Ok(pool_ref(&r.pool))
    }

    async fn lookup_pool_by_uuid(&self, uuid: &Uuid) -> Result<StoragePoolRef> {
        let r: PoolArg = self
            .call(
                STORAGE_POOL_LOOKUP_BY_UUID,
                &LookupByUuidArgs { uuid: uuid.0 },
            )
            .await?;
        Ok(pool_ref(&r.pool))
    }

    async fn pool_info(&self, pool: &StoragePoolRef) -> Result<StoragePoolInfo> {
        let a = PoolArg {
            pool: wire_pool(pool),
        };
        let i: PoolGetInfoRet = self.call(STORAGE_POOL_GET_INFO, &a).await?;
        let persistent = self.flag(STORAGE_POOL_IS_PERSISTENT, &a).await?;
        let autostart = self.flag(STORAGE_POOL_GET_AUTOSTART, &a).await?;
        let state = match i.state {
            1 => PoolState::Building,
            2 => PoolState::Running,
            3 => PoolState::Degraded,
            4 => PoolState::Inaccessible,
            _ => PoolState::Inactive,
        };
        Ok(StoragePoolInfo {
            pool: pool.clone(),
            state,
            capacity: i.capacity,
            allocation: i.allocation,
            available: i.available,
            persistent,
            autostart,
        })
    }

    async fn pool_xml_desc(&self, pool: &StoragePoolRef, flags: XmlFlags) -> Result<String> {
        self.string(
            STORAGE_POOL_GET_XML_DESC,
            &PoolFlagsArgs {
                pool: wire_pool(pool),
                flags: wire_object_xml_flags(flags),
            },
        )
        .await
    }

    async fn list_volumes(&self, pool: &StoragePoolRef) -> Result<Vec<StorageVolRef>> {
        let r: PoolListAllVolumesRet = self
            .call(
                STORAGE_POOL_LIST_ALL_VOLUMES,
                &PoolListAllVolumesArgs {
                    pool: wire_pool(pool),
                    need_results: 1,
                    flags: 0,
                },
            )
            .await?;
        let mut out = Vec::with_capacity(r.vols.len());
        for v in r.vols.iter() {
            let path = self
                .string(STORAGE_VOL_GET_PATH, &VolArg { vol: v.clone() })
                .await?;
            out.push(StorageVolRef {
                name: v.name.clone(),
                path,
            });
        }
        Ok(out)
    }
}

impl EventOps for RemoteConnection {
    fn subscribe(&self, filter: EventFilter) -> Result<EventStream> {
        if !self.event_callbacks {
            return Err(Error::new(
                ErrorKind::NoSupport,
                "the server does not support event callbacks (libvirt older than 1.2.1)",
            ));
        }
        // Registration is a call, but subscribing is synchronous: the stream
        // registers when first polled and deregisters when dropped.
        let (tx, rx) = mpsc::channel(1024);
        let args = DomainEventCallbackRegisterAnyArgs {
            event_id: 0,
            dom: filter.domain.map(|u| NonnullDomain {
                name: String::new(),
                uuid: u.0,
                id: -1,
            }),
        };
        let kinds = filter.kinds.clone();
        let registered = subscription(
            self.rpc.clone(),
            CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            args,
            CallbackKind::Domain,
            EventSink::Domain(tx),
            rx,
        );
        Ok(Box::pin(registered.filter(move |ev| {
            futures::future::ready(kinds.is_empty() || kinds.contains(&ev.kind))
        })))
    }

    fn subscribe_networks(&self, network: Option<Uuid>) -> Result<NetworkEventStream> {
        if !self.event_callbacks {
            return Err(Error::new(
                ErrorKind::NoSupport,
                "the server does not support event callbacks (libvirt older than 1.2.1)",
            ));
        }
        let (tx, rx) = mpsc::channel(1024);
        let args = NetworkEventRegisterAnyArgs {
            event_id: 0,
            net: network.map(|u| NonnullNetwork {
                name: String::new(),
                uuid: u.0,
            }),
        };
        Ok(Box::pin(subscription(
            self.rpc.clone(),
            CONNECT_NETWORK_EVENT_REGISTER_ANY,
            args,
            CallbackKind::Network,
            EventSink::Network(tx),
            rx,
        )))
    }
}

/// The events of a callback registered with `register` when the stream is
/// first polled; deregistered when it is dropped.
fn subscription<A, T>(
    rpc: Arc<RpcClient>,
    register: i32,
    args: A,
    kind: CallbackKind,
    sink: EventSink,
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static
where
    A: crate::xdr::XdrEncode + Send + Sync + 'static,
    T: Send + 'static,
{
    let registered = futures::stream::once(async move {
        match rpc.call_register(register, &args, sink).await {
            Ok(id) => Some(Subscription { rpc, id, kind, rx }),
            Err(e) => {
                tracing::warn!("cannot register for events: {e}");
                None
            }
        }
    });
    registered
        .filter_map(futures::future::ready)
        .flat_map(|sub| {
            futures::stream::unfold(sub, |mut sub| async move {
                sub.rx.recv().await.map(|ev| (ev, sub))
            })
        })
}

/// A registered event callback; deregistered when dropped.
struct Subscription<T> {
    rpc: Arc<RpcClient>,
    id: i32,
    kind: CallbackKind,
    rx: mpsc::Receiver<T>,
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.rpc.drop_callback(self.kind, self.id);
        if self.rpc.is_closed() {
            return;
        }
        let deregister = match self.kind {
            CallbackKind::Domain => CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            CallbackKind::Network => CONNECT_NETWORK_EVENT_DEREGISTER_ANY,
        };
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let rpc = self.rpc.clone();
            let id = self.id;
            h.spawn(async move {
                let _ = rpc.call::<_, Void>(deregister, &IntRet { value: id }).await;
            });
        }
    }
}

/// The largest screenshot accepted from a server.
const SCREENSHOT_MAX: usize = 256 * 1024 * 1024;
