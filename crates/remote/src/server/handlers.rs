//! The implementation of each procedure over virtkit's driver traits, and
//! the number -> handler table.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use futures::future::BoxFuture;
use virtkit_core::network::update::{Command, Section};
use virtkit_core::{
    Connection, CreateFlags, DefineFlags, DestroyFlags, Error, ErrorDomain, ErrorKind, EventFilter,
    InterfaceAddressSource, InterfaceListFlags, ListFlags, NetworkEventStream, NetworkListFlags,
    NetworkUpdateFlags, OpenFlags, PoolListFlags, RebootFlags, ShutdownFlags, StatsGroups,
    UndefineFlags, Uri, Uuid, XmlFlags,
};

use super::dispatch::{Handler, Served};
use super::session::{CallbackKind, Session};
use crate::protocol::convert::*;
use crate::protocol::error::bad_args;
use crate::protocol::header::{Header, MessageType, Status};
use crate::protocol::remote::*;
use crate::protocol::{REMOTE_PROGRAM, feature, procs};
use crate::xdr::{CharArray, CharVec, Void, XdrDecode, from_bytes, to_bytes};

pub(super) fn decode<'a, T: XdrDecode<'a>>(proc_: i32, body: &'a [u8]) -> Result<T, Error> {
    from_bytes(body).map_err(|e| {
        let name = procs::lookup(proc_).map_or("?", |p| p.name);
        bad_args(name, &e)
    })
}

/// Declares handlers: `PROC => name(session, args: Type) { body -> Result<Ret> }`.
macro_rules! handlers {
    ($( $proc:ident => $name:ident($s:ident, $a:tt : $aty:ty) $body:block )*) => {
        $(
            fn $name<'a>($s: &'a Arc<Session>, body: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
                Box::pin(async move {
                    let $a: $aty = decode(procs::$proc, body)?;
                    let ret = $body;
                    Ok(to_bytes(&ret))
                })
            }
        )*

        const HANDLERS: &[(i32, Handler)] = &[ $( (procs::$proc, $name), )* ];
    };
}

/// How a procedure is served, if it is.
pub(crate) fn find(number: i32) -> Option<Served> {
    HANDLERS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, h)| Served::Call(*h))
        .or_else(|| super::streams::find(number).map(Served::Stream))
}

fn flag(b: bool) -> IntRet {
    IntRet {
        value: i32::from(b),
    }
}

fn too_many(what: &str, n: usize, max: u32) -> Error {
    Error::new(
        ErrorKind::Rpc,
        format!("too many {what} to send ({n}, the protocol maximum is {max})"),
    )
    .in_domain(ErrorDomain::Rpc)
}

/// Highest `virDomainEventID` + 1 of libvirt 9.0 (`VIR_DOMAIN_EVENT_ID_LAST`).
const DOMAIN_EVENT_ID_LAST: i32 = 27;
/// Highest `virNetworkEventID` + 1 of libvirt 9.0 (`VIR_NETWORK_EVENT_ID_LAST`:
/// lifecycle only; metadata-change came with 9.8).
const NETWORK_EVENT_ID_LAST: i32 = 1;
/// Event callbacks one client may hold.
const MAX_CALLBACKS: usize = 1024;

/// `VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS`: unknown groups are an
/// error instead of being skipped.
const STATS_ENFORCE: u32 = 1 << 31;
/// The domain-filter bits of `virConnectGetAllDomainStats` flags (active,
/// inactive, persistent, transient, running, paused, shutoff, other): the
/// same bits as `virConnectListAllDomains`.
const STATS_LIST_FILTER: u32 = 0xff;

fn event_header(proc_: i32) -> Header {
    Header {
        prog: REMOTE_PROGRAM,
        vers: crate::protocol::PROTOCOL_VERSION,
        proc_,
        kind: MessageType::Message,
        serial: 0,
        status: Status::Ok,
    }
}

fn check_callbacks(s: &Session) -> Result<(), Error> {
    if s.callback_count() >= MAX_CALLBACKS {
        return Err(Error::new(
            ErrorKind::OperationFailed,
            format!("too many event callbacks on this connection (limit {MAX_CALLBACKS})"),
        ));
    }
    Ok(())
}

/// Network lifecycle events of a connection. A hypervisor driver whose
/// networks are those of the network driver (QEMU, LXC: their `networks()`
/// is the network driver's instance of the same kind) has them from that
/// driver, as libvirtd takes network events from its network driver
/// whatever hypervisor a client opened; the returned connection must live
/// as long as the stream.
async fn network_events(
    s: &Session,
    conn: &Arc<dyn Connection>,
    net: Option<Uuid>,
) -> Result<(NetworkEventStream, Option<Arc<dyn Connection>>), Error> {
    let err = match conn.events().and_then(|e| e.subscribe_networks(net)) {
        Ok(stream) => return Ok((stream, None)),
        Err(e) => e,
    };
    let hosted = err.kind() == ErrorKind::NoSupport
        && conn.driver() != "network"
        && conn.networks().is_ok_and(|n| n.driver() == "network");
    let uri = conn.uri();
    let Some(rest) = uri.split_once("://").map(|(_, r)| r).filter(|_| hosted) else {
        return Err(err);
    };
    let net_uri = Uri::parse(&format!("network://{rest}"))?;
    let mut flags = OpenFlags::empty();
    if conn.is_read_only() {
        flags |= OpenFlags::READ_ONLY;
    }
    let nc = s
        .server
        .open(&net_uri, flags)
        .await
        .map_err(|_| err.clone())?;
    let stream = nc.events()?.subscribe_networks(net)?;
    Ok((stream, Some(nc)))
}

handlers! {
    CONNECT_OPEN => connect_open(s, a: ConnectOpenArgs) {
        if !s.authenticated.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::AuthFailed, "authentication required"));
        }
        if s.has_conn() {
            return Err(Error::new(ErrorKind::Internal, "connection already open"));
        }
        let name = match a.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => s.server.config().default_uri.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::NoConnect,
                    "no connection URI given and the daemon has no default_uri configured",
                )
            })?,
        };
        let uri = Uri::parse(&name)?;
        if uri.is_remote() {
            return Err(Error::new(
                ErrorKind::NoConnect,
                format!("'{name}' names a remote host or transport; the daemon opens local URIs only"),
            )
            .in_domain(ErrorDomain::Remote));
        }
        let uri = s.server.serving_uri(uri)?;
        let mut flags = OpenFlags(a.flags & OpenFlags::READ_ONLY.bits());
        if s.peer.read_only {
            flags |= OpenFlags::READ_ONLY;
        }
        let conn = s.server.open(&uri, flags).await?;
        s.server.retain(&uri.to_string(), &conn);
        s.set_conn(Some(conn));
        Void
    }
    CONNECT_CLOSE => connect_close(s, _a: Void) {
        if let Some(c) = s.set_conn(None) {
            c.close().await?;
        }
        Void
    }
    CONNECT_GET_TYPE => connect_get_type(s, _a: Void) {
        StringRet { value: s.conn()?.hypervisor_type().await? }
    }
    CONNECT_GET_VERSION => connect_get_version(s, _a: Void) {
        HyperRet { value: s.conn()?.hypervisor_version().await? }
    }
    NODE_GET_INFO => node_get_info(s, _a: Void) {
        let i = s.conn()?.node_info().await?;
        NodeGetInfoRet {
            model: CharArray(i.model),
            memory: i.memory_kib,
            cpus: i.cpus as i32,
            mhz: i.mhz as i32,
            nodes: i.nodes as i32,
            sockets: i.sockets as i32,
            cores: i.cores as i32,
            threads: i.threads as i32,
        }
    }
    CONNECT_GET_CAPABILITIES => connect_get_capabilities(s, _a: Void) {
        StringRet { value: s.conn()?.capabilities().await? }
    }
    DOMAIN_CREATE => domain_create(s, a: DomainArg) {
        s.conn()?.domains()?.create(&dom_ref(&a.dom), CreateFlags::empty()).await?;
        Void
    }
    DOMAIN_CREATE_XML => domain_create_xml(s, a: XmlFlagsArgs<'a>) {
        let d = s.conn()?.domains()?.create_xml(a.xml, CreateFlags(a.flags)).await?;
        DomainArg { dom: wire_dom(&d) }
    }
    DOMAIN_DEFINE_XML => domain_define_xml(s, a: StrArg<'a>) {
        let d = s.conn()?.domains()?.define_xml(a.value, DefineFlags::empty()).await?;
        DomainArg { dom: wire_dom(&d) }
    }
    DOMAIN_DESTROY => domain_destroy(s, a: DomainArg) {
        s.conn()?.domains()?.destroy(&dom_ref(&a.dom), DestroyFlags::empty()).await?;
        Void
    }
    DOMAIN_GET_XML_DESC => domain_get_xml_desc(s, a: DomainFlagsArgs) {
        StringRet { value: s.conn()?.domains()?.xml_desc(&dom_ref(&a.dom), XmlFlags(a.flags)).await? }
    }
    DOMAIN_GET_AUTOSTART => domain_get_autostart(s, a: DomainArg) {
        flag(s.conn()?.domains()?.autostart(&dom_ref(&a.dom)).await?)
    }
    DOMAIN_GET_INFO => domain_get_info(s, a: DomainArg) {
        let i = s.conn()?.domains()?.info(&dom_ref(&a.dom)).await?;
        DomainGetInfoRet {
            state: i.state.code() as u32,
            max_mem: i.max_mem_kib,
            memory: i.memory_kib,
            nr_virt_cpu: i.nr_virt_cpu,
            cpu_time: i.cpu_time_ns,
        }
    }
    DOMAIN_GET_OS_TYPE => domain_get_os_type(s, a: DomainArg) {
        StringRet { value: s.conn()?.domains()?.os_type(&dom_ref(&a.dom)).await? }
    }
    DOMAIN_LOOKUP_BY_ID => domain_lookup_by_id(s, a: LookupByIdArgs) {
        let id = u32::try_from(a.id)
            .map_err(|_| Error::no_domain(format!("no domain with matching id {}", a.id)))?;
        DomainArg { dom: wire_dom(&s.conn()?.domains()?.lookup_by_id(id).await?) }
    }
    DOMAIN_LOOKUP_BY_NAME => domain_lookup_by_name(s, a: StrArg<'a>) {
        DomainArg { dom: wire_dom(&s.conn()?.domains()?.lookup_by_name(a.value).await?) }
    }
    DOMAIN_LOOKUP_BY_UUID => domain_lookup_by_uuid(s, a: LookupByUuidArgs) {
        DomainArg { dom: wire_dom(&s.conn()?.domains()?.lookup_by_uuid(&Uuid(a.uuid)).await?) }
    }
    DOMAIN_REBOOT => domain_reboot(s, a: DomainFlagsArgs) {
        s.conn()?.domains()?.reboot(&dom_ref(&a.dom), RebootFlags(a.flags)).await?;
        Void
    }
    DOMAIN_RESUME => domain_resume(s, a: DomainArg) {
        s.conn()?.domains()?.resume(&dom_ref(&a.dom)).await?;
        Void
    }
    DOMAIN_SET_AUTOSTART => domain_set_autostart(s, a: DomainSetAutostartArgs) {
        s.conn()?.domains()?.set_autostart(&dom_ref(&a.dom), a.autostart != 0).await?;
        Void
    }
    DOMAIN_SHUTDOWN => domain_shutdown(s, a: DomainArg) {
        s.conn()?.domains()?.shutdown(&dom_ref(&a.dom), ShutdownFlags::empty()).await?;
        Void
    }
    DOMAIN_SUSPEND => domain_suspend(s, a: DomainArg) {
        s.conn()?.domains()?.suspend(&dom_ref(&a.dom)).await?;
        Void
    }
    DOMAIN_UNDEFINE => domain_undefine(s, a: DomainArg) {
        s.conn()?.domains()?.undefine(&dom_ref(&a.dom), UndefineFlags::empty()).await?;
        Void
    }
    NETWORK_CREATE => network_create(s, a: NetworkArg) {
        s.conn()?.networks()?.start(&net_ref(&a.net)).await?;
        Void
    }
    NETWORK_CREATE_XML => network_create_xml(s, a: StrArg<'a>) {
        NetworkArg { net: wire_net(&s.conn()?.networks()?.create_xml(a.value).await?) }
    }
    NETWORK_DEFINE_XML => network_define_xml(s, a: StrArg<'a>) {
        NetworkArg { net: wire_net(&s.conn()?.networks()?.define_xml(a.value).await?) }
    }
    NETWORK_DESTROY => network_destroy(s, a: NetworkArg) {
        s.conn()?.networks()?.destroy(&net_ref(&a.net)).await?;
        Void
    }
    NETWORK_GET_XML_DESC => network_get_xml_desc(s, a: NetworkFlagsArgs) {
        let flags = object_xml_flags(a.flags, "virNetworkGetXMLDesc")?;
        StringRet { value: s.conn()?.networks()?.xml_desc(&net_ref(&a.net), flags).await? }
    }
    NETWORK_GET_AUTOSTART => network_get_autostart(s, a: NetworkArg) {
        flag(s.conn()?.networks()?.info(&net_ref(&a.net)).await?.autostart)
    }
    NETWORK_GET_BRIDGE_NAME => network_get_bridge_name(s, a: NetworkArg) {
        let info = s.conn()?.networks()?.info(&net_ref(&a.net)).await?;
        let bridge = info.bridge.ok_or_else(|| {
            Error::internal(format!("network '{}' does not have a bridge name.", a.net.name))
                .in_domain(ErrorDomain::Network)
        })?;
        StringRet { value: bridge }
    }
    NETWORK_LOOKUP_BY_NAME => network_lookup_by_name(s, a: StrArg<'a>) {
        NetworkArg { net: wire_net(&s.conn()?.networks()?.lookup_by_name(a.value).await?) }
    }
    NETWORK_LOOKUP_BY_UUID => network_lookup_by_uuid(s, a: LookupByUuidArgs) {
        NetworkArg { net: wire_net(&s.conn()?.networks()?.lookup_by_uuid(&Uuid(a.uuid)).await?) }
    }
    NETWORK_SET_AUTOSTART => network_set_autostart(s, a: NetworkSetAutostartArgs) {
        s.conn()?.networks()?.set_autostart(&net_ref(&a.net), a.autostart != 0).await?;
        Void
    }
    NETWORK_UNDEFINE => network_undefine(s, a: NetworkArg) {
        s.conn()?.networks()?.undefine(&net_ref(&a.net)).await?;
        Void
    }
    CONNECT_GET_HOSTNAME => connect_get_hostname(s, _a: Void) {
        StringRet { value: s.conn()?.hostname().await? }
    }
    CONNECT_SUPPORTS_FEATURE => connect_supports_feature(s, a: SupportsFeatureArgs) {
        let supported = match a.feature {
            feature::PROGRAM_KEEPALIVE => {
                // Asking is how a libvirt client says it answers PINGs.
                s.keepalive_wanted.store(true, Ordering::Relaxed);
                true
            }
            feature::REMOTE_EVENT_CALLBACK
            | feature::REMOTE_CLOSE_CALLBACK
            | feature::NETWORK_UPDATE_HAS_CORRECT_ORDER => true,
            _ => false,
        };
        flag(supported)
    }
    AUTH_LIST => auth_list(s, _a: Void) {
        let types = match s.peer.auth {
            super::AuthScheme::Polkit if !s.authenticated.load(Ordering::SeqCst) => {
                vec![AuthType::Polkit as i32]
            }
            _ => vec![AuthType::None as i32],
        };
        AuthListRet { types: types.into() }
    }
    AUTH_POLKIT => auth_polkit(s, _a: Void) {
        if !s.authenticated.load(Ordering::SeqCst) {
            let allowed = match &s.server.authorizer {
                Some(a) => a.authorize(&s.peer).await?,
                None => false,
            };
            if !allowed {
                return Err(Error::new(ErrorKind::AuthFailed, "access denied by policy")
                    .in_domain(ErrorDomain::Rpc));
            }
            s.authenticated.store(true, Ordering::SeqCst);
        }
        IntRet { value: 1 }
    }
    STORAGE_POOL_LOOKUP_BY_NAME => pool_lookup_by_name(s, a: StrArg<'a>) {
        PoolArg { pool: wire_pool(&s.conn()?.storage()?.lookup_pool_by_name(a.value).await?) }
    }
    STORAGE_POOL_LOOKUP_BY_UUID => pool_lookup_by_uuid(s, a: LookupByUuidArgs) {
        PoolArg { pool: wire_pool(&s.conn()?.storage()?.lookup_pool_by_uuid(&Uuid(a.uuid)).await?) }
    }
    STORAGE_POOL_GET_INFO => pool_get_info(s, a: PoolArg) {
        let i = s.conn()?.storage()?.pool_info(&pool_ref(&a.pool)).await?;
        PoolGetInfoRet {
            state: i.state as u32,
            capacity: i.capacity,
            allocation: i.allocation,
            available: i.available,
        }
    }
    STORAGE_POOL_GET_XML_DESC => pool_get_xml_desc(s, a: PoolFlagsArgs) {
        let flags = object_xml_flags(a.flags, "virStoragePoolGetXMLDesc")?;
        StringRet { value: s.conn()?.storage()?.pool_xml_desc(&pool_ref(&a.pool), flags).await? }
    }
    STORAGE_POOL_GET_AUTOSTART => pool_get_autostart(s, a: PoolArg) {
        flag(s.conn()?.storage()?.pool_info(&pool_ref(&a.pool)).await?.autostart)
    }
    STORAGE_VOL_GET_PATH => vol_get_path(s, a: VolArg) {
        let conn = s.conn()?;
        let st = conn.storage()?;
        let pool = st.lookup_pool_by_name(&a.vol.pool).await?;
        let vol = st
            .list_volumes(&pool)
            .await?
            .into_iter()
            .find(|v| v.name == a.vol.name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NoStorageVol,
                    format!("no storage vol with matching name '{}'", a.vol.name),
                )
            })?;
        StringRet { value: vol.path }
    }
    CONNECT_GET_URI => connect_get_uri(s, _a: Void) {
        StringRet { value: s.conn()?.uri() }
    }
    DOMAIN_GET_SECURITY_LABEL => domain_get_security_label(s, a: DomainArg) {
        let l = s.conn()?.domains()?.security_label(&dom_ref(&a.dom)).await?;
        DomainGetSecurityLabelRet { label: CharVec(l.label), enforcing: i32::from(l.enforcing) }
    }
    NODE_GET_SECURITY_MODEL => node_get_security_model(s, _a: Void) {
        let m = s.conn()?.security_model().await?;
        NodeGetSecurityModelRet { model: CharVec(m.model), doi: CharVec(m.doi) }
    }
    INTERFACE_LOOKUP_BY_NAME => iface_lookup_by_name(s, a: StrArg<'a>) {
        InterfaceArg { iface: wire_iface(&s.conn()?.interfaces()?.lookup_by_name(a.value).await?) }
    }
    INTERFACE_LOOKUP_BY_MAC_STRING => iface_lookup_by_mac(s, a: StrArg<'a>) {
        InterfaceArg { iface: wire_iface(&s.conn()?.interfaces()?.lookup_by_mac(a.value).await?) }
    }
    INTERFACE_GET_XML_DESC => iface_get_xml_desc(s, a: InterfaceFlagsArgs) {
        let flags = object_xml_flags(a.flags, "virInterfaceGetXMLDesc")?;
        StringRet { value: s.conn()?.interfaces()?.xml_desc(&iface_ref(&a.iface), flags).await? }
    }
    CONNECT_IS_SECURE => connect_is_secure(s, _a: Void) {
        flag(s.peer.secure)
    }
    DOMAIN_IS_ACTIVE => domain_is_active(s, a: DomainArg) {
        flag(s.conn()?.domains()?.is_active(&dom_ref(&a.dom)).await?)
    }
    DOMAIN_IS_PERSISTENT => domain_is_persistent(s, a: DomainArg) {
        flag(s.conn()?.domains()?.is_persistent(&dom_ref(&a.dom)).await?)
    }
    NETWORK_IS_ACTIVE => network_is_active(s, a: NetworkArg) {
        flag(s.conn()?.networks()?.info(&net_ref(&a.net)).await?.active)
    }
    NETWORK_IS_PERSISTENT => network_is_persistent(s, a: NetworkArg) {
        flag(s.conn()?.networks()?.info(&net_ref(&a.net)).await?.persistent)
    }
    STORAGE_POOL_IS_ACTIVE => pool_is_active(s, a: PoolArg) {
        let i = s.conn()?.storage()?.pool_info(&pool_ref(&a.pool)).await?;
        flag(i.state != virtkit_core::PoolState::Inactive)
    }
    STORAGE_POOL_IS_PERSISTENT => pool_is_persistent(s, a: PoolArg) {
        flag(s.conn()?.storage()?.pool_info(&pool_ref(&a.pool)).await?.persistent)
    }
    INTERFACE_IS_ACTIVE => iface_is_active(s, a: InterfaceArg) {
        flag(s.conn()?.interfaces()?.is_active(&iface_ref(&a.iface)).await?)
    }
    CONNECT_GET_LIB_VERSION => connect_get_lib_version(_s, _a: Void) {
        HyperRet { value: crate::LIB_VERSION }
    }
    DOMAIN_HAS_MANAGED_SAVE_IMAGE => domain_has_managed_save(s, a: DomainFlagsArgs) {
        flag(s.conn()?.domains()?.has_managed_save(&dom_ref(&a.dom)).await?)
    }
    DOMAIN_CREATE_WITH_FLAGS => domain_create_with_flags(s, a: DomainFlagsArgs) {
        let d = s.conn()?.domains()?.create(&dom_ref(&a.dom), CreateFlags(a.flags)).await?;
        DomainArg { dom: wire_dom(&d) }
    }
    DOMAIN_GET_STATE => domain_get_state(s, a: DomainFlagsArgs) {
        let (state, reason) = s.conn()?.domains()?.state(&dom_ref(&a.dom)).await?;
        DomainGetStateRet { state: state.code(), reason }
    }
    DOMAIN_UNDEFINE_FLAGS => domain_undefine_flags(s, a: DomainFlagsArgs) {
        s.conn()?.domains()?.undefine(&dom_ref(&a.dom), UndefineFlags(a.flags)).await?;
        Void
    }
    DOMAIN_DESTROY_FLAGS => domain_destroy_flags(s, a: DomainFlagsArgs) {
        s.conn()?.domains()?.destroy(&dom_ref(&a.dom), DestroyFlags(a.flags)).await?;
        Void
    }
    DOMAIN_RESET => domain_reset(s, a: DomainFlagsArgs) {
        s.conn()?.domains()?.reset(&dom_ref(&a.dom)).await?;
        Void
    }
    DOMAIN_SHUTDOWN_FLAGS => domain_shutdown_flags(s, a: DomainFlagsArgs) {
        s.conn()?.domains()?.shutdown(&dom_ref(&a.dom), ShutdownFlags(a.flags)).await?;
        Void
    }
    CONNECT_LIST_ALL_DOMAINS => connect_list_all_domains(s, a: ListAllArgs) {
        let list = s.conn()?.domains()?.list_all(ListFlags(a.flags)).await?;
        if list.len() > crate::protocol::DOMAIN_LIST_MAX as usize {
            return Err(too_many("domains", list.len(), crate::protocol::DOMAIN_LIST_MAX));
        }
        let ret = list.len() as u32;
        let domains = if a.need_results != 0 { list.iter().map(wire_dom).collect() } else { Vec::new() };
        ListAllDomainsRet { domains: domains.into(), ret }
    }
    CONNECT_LIST_ALL_STORAGE_POOLS => connect_list_all_pools(s, a: ListAllArgs) {
        let list = s.conn()?.storage()?.list_pools(PoolListFlags(a.flags)).await?;
        if list.len() > crate::protocol::STORAGE_POOL_LIST_MAX as usize {
            return Err(too_many("storage pools", list.len(), crate::protocol::STORAGE_POOL_LIST_MAX));
        }
        let ret = list.len() as u32;
        let pools = if a.need_results != 0 { list.iter().map(wire_pool).collect() } else { Vec::new() };
        ListAllStoragePoolsRet { pools: pools.into(), ret }
    }
    STORAGE_POOL_LIST_ALL_VOLUMES => pool_list_all_volumes(s, a: PoolListAllVolumesArgs) {
        let list = s.conn()?.storage()?.list_volumes(&pool_ref(&a.pool)).await?;
        if list.len() > crate::protocol::STORAGE_VOL_LIST_MAX as usize {
            return Err(too_many("volumes", list.len(), crate::protocol::STORAGE_VOL_LIST_MAX));
        }
        let ret = list.len() as u32;
        let vols = if a.need_results != 0 {
            list.iter().map(|v| wire_vol(&a.pool.name, v)).collect()
        } else {
            Vec::new()
        };
        PoolListAllVolumesRet { vols: vols.into(), ret }
    }
    CONNECT_LIST_ALL_NETWORKS => connect_list_all_networks(s, a: ListAllArgs) {
        let list = s.conn()?.networks()?.list_all(NetworkListFlags(a.flags)).await?;
        if list.len() > crate::protocol::NETWORK_LIST_MAX as usize {
            return Err(too_many("networks", list.len(), crate::protocol::NETWORK_LIST_MAX));
        }
        let ret = list.len() as u32;
        let nets = if a.need_results != 0 { list.iter().map(wire_net).collect() } else { Vec::new() };
        ListAllNetworksRet { nets: nets.into(), ret }
    }
    CONNECT_LIST_ALL_INTERFACES => connect_list_all_interfaces(s, a: ListAllArgs) {
        let list = s.conn()?.interfaces()?.list_all(InterfaceListFlags(a.flags)).await?;
        if list.len() > crate::protocol::INTERFACE_LIST_MAX as usize {
            return Err(too_many("interfaces", list.len(), crate::protocol::INTERFACE_LIST_MAX));
        }
        let ret = list.len() as u32;
        let ifaces = if a.need_results != 0 { list.iter().map(wire_iface).collect() } else { Vec::new() };
        ListAllInterfacesRet { ifaces: ifaces.into(), ret }
    }
    CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => domain_event_register(s, a: DomainEventCallbackRegisterAnyArgs) {
        if !(0..DOMAIN_EVENT_ID_LAST).contains(&a.event_id) {
            return Err(Error::invalid_arg(format!("unsupported event ID {}", a.event_id)));
        }
        check_callbacks(s)?;
        // Only lifecycle events exist in virtkit's drivers so far; other
        // IDs register (as libvirt allows) and simply never fire.
        let callback_id = if a.event_id == 0 {
            let filter = EventFilter { domain: a.dom.as_ref().map(|d| Uuid(d.uuid)), kinds: Vec::new() };
            let mut stream = s.conn()?.events()?.subscribe(filter)?;
            let (id_tx, id_rx) = tokio::sync::oneshot::channel::<i32>();
            let sess = s.clone();
            let handle = tokio::spawn(async move {
                let Ok(callback_id) = id_rx.await else { return };
                while let Some(ev) = stream.next().await {
                    let header = event_header(procs::DOMAIN_EVENT_CALLBACK_LIFECYCLE);
                    let msg = DomainEventCallbackLifecycleMsg {
                        callback_id,
                        dom: wire_dom(&ev.domain),
                        event: ev.kind.code(),
                        detail: ev.detail,
                    };
                    if !sess.send_message(&header, &msg) {
                        break;
                    }
                }
            });
            let id = s.add_callback(CallbackKind::Domain, Some(handle.abort_handle()));
            let _ = id_tx.send(id);
            id
        } else {
            s.add_callback(CallbackKind::Domain, None)
        };
        IntRet { value: callback_id }
    }
    CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => domain_event_deregister(s, a: IntRet) {
        if !s.remove_callback(CallbackKind::Domain, a.value) {
            return Err(Error::invalid_arg(format!("callback {} not registered", a.value)));
        }
        Void
    }
    DOMAIN_DEFINE_XML_FLAGS => domain_define_xml_flags(s, a: XmlFlagsArgs<'a>) {
        let d = s.conn()?.domains()?.define_xml(a.xml, DefineFlags(a.flags)).await?;
        DomainArg { dom: wire_dom(&d) }
    }
    CONNECT_REGISTER_CLOSE_CALLBACK => connect_register_close_callback(s, _a: Void) {
        s.close_callback.store(true, Ordering::Relaxed);
        Void
    }
    CONNECT_UNREGISTER_CLOSE_CALLBACK => connect_unregister_close_callback(s, _a: Void) {
        s.close_callback.store(false, Ordering::Relaxed);
        Void
    }
    DOMAIN_BLOCK_STATS => domain_block_stats(s, a: DomainPathArgs) {
        let st = s.conn()?.domains()?.block_stats(&dom_ref(&a.dom), &a.path).await?;
        DomainBlockStatsRet {
            rd_req: st.rd_req,
            rd_bytes: st.rd_bytes,
            wr_req: st.wr_req,
            wr_bytes: st.wr_bytes,
            errs: st.errs,
        }
    }
    DOMAIN_INTERFACE_STATS => domain_interface_stats(s, a: DomainPathArgs) {
        let st = s.conn()?.domains()?.interface_stats(&dom_ref(&a.dom), &a.path).await?;
        DomainInterfaceStatsRet {
            rx_bytes: st.rx_bytes,
            rx_packets: st.rx_packets,
            rx_errs: st.rx_errs,
            rx_drop: st.rx_drop,
            tx_bytes: st.tx_bytes,
            tx_packets: st.tx_packets,
            tx_errs: st.tx_errs,
            tx_drop: st.tx_drop,
        }
    }
    DOMAIN_INTERFACE_ADDRESSES => domain_interface_addresses(s, a: DomainInterfaceAddressesArgs) {
        no_flags(a.flags, "virDomainInterfaceAddresses")?;
        let source = InterfaceAddressSource::from_u32(a.source).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArg,
                format!("Unknown IP address data source {}", a.source),
            )
        })?;
        let ifaces = s.conn()?.interface_addresses(&dom_ref(&a.dom), source).await?;
        let max = crate::protocol::DOMAIN_INTERFACE_MAX;
        if ifaces.len() > max as usize {
            return Err(too_many("interfaces", ifaces.len(), max));
        }
        DomainInterfaceAddressesRet {
            ifaces: ifaces.iter().map(wire_interface).collect::<Vec<_>>().into(),
        }
    }
    DOMAIN_GET_CONTROL_INFO => domain_get_control_info(s, a: DomainFlagsArgs) {
        no_flags(a.flags, "virDomainGetControlInfo")?;
        // virtkit's drivers talk to their hypervisor per call, with no
        // control channel that could be busy between calls: a running
        // domain's control is always "ok" (VIR_DOMAIN_CONTROL_OK, no
        // details), as in libvirt's test driver.
        let (state, _) = s.conn()?.domains()?.state(&dom_ref(&a.dom)).await?;
        if !state.is_active() {
            return Err(Error::operation_invalid("domain is not running"));
        }
        DomainGetControlInfoRet::default()
    }
    DOMAIN_GET_BLOCK_IO_TUNE => domain_get_block_io_tune(s, a: DomainGetBlockIoTuneArgs) {
        if a.nparams < 0 || a.nparams as u32 > crate::protocol::DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX {
            return Err(Error::invalid_arg("nparams in virDomainGetBlockIoTune out of range"));
        }
        // AFFECT_LIVE (1), AFFECT_CONFIG (2), TYPED_PARAM_STRING_OKAY (4).
        no_flags(a.flags & !7, "virDomainGetBlockIoTune")?;
        let Some(disk) = a.disk else {
            if a.nparams != 0 {
                return Err(Error::invalid_arg("a disk must be named"));
            }
            // How many parameters there are (virsh asks before naming a
            // disk): libvirt's 20 limits, the group name being a string.
            let n = if a.flags & 4 == 0 { 19 } else { 20 };
            return Ok(to_bytes(&DomainGetBlockIoTuneRet { params: Vec::new().into(), nparams: n }));
        };
        let params = s.conn()?.domains()?.block_iotune(&dom_ref(&a.dom), &disk).await?;
        let params = if a.flags & 4 == 0 {
            // A caller that cannot take strings gets no group name.
            params.into_iter().filter(|(_, v)| !matches!(v, virtkit_core::TypedValue::String(_))).collect()
        } else {
            params
        };
        if a.nparams == 0 {
            DomainGetBlockIoTuneRet { params: Vec::new().into(), nparams: params.len() as i32 }
        } else {
            let mut wire = wire_typed_params(&params);
            wire.truncate(a.nparams as usize);
            DomainGetBlockIoTuneRet { nparams: wire.len() as i32, params: wire.into() }
        }
    }
    DOMAIN_SET_BLOCK_IO_TUNE => domain_set_block_io_tune(s, a: DomainSetBlockIoTuneArgs) {
        // AFFECT_LIVE (1) only: the persistent definition is changed by
        // defining it again.
        if a.flags & 2 != 0 {
            return Err(Error::new(
                ErrorKind::OperationUnsupported,
                "changing I/O limits of the persistent definition is not supported: edit the disk's <iotune> and define the domain again",
            ));
        }
        no_flags(a.flags & !1, "virDomainSetBlockIoTune")?;
        let params = typed_params(&a.params);
        s.conn()?.domains()?.set_block_iotune(&dom_ref(&a.dom), &a.disk, &params).await?;
        Void
    }
    DOMAIN_BLOCK_STATS_FLAGS => domain_block_stats_flags(s, a: DomainBlockStatsFlagsArgs) {
        let max = crate::protocol::DOMAIN_BLOCK_STATS_PARAMETERS_MAX;
        if a.nparams < 0 {
            return Err(Error::invalid_arg("nparams in virDomainBlockStatsFlags must be non-negative"));
        }
        if a.nparams as u32 > max {
            return Err(Error::internal("nparams too large"));
        }
        // Only VIR_TYPED_PARAM_STRING_OKAY (4) is meaningful here.
        no_flags(a.flags & !4, "virDomainBlockStatsFlags")?;
        let st = s.conn()?.domains()?.block_stats(&dom_ref(&a.dom), &a.path).await?;
        // libvirt's QEMU driver order; unknown (-1) values are left out.
        let params: Vec<TypedParam> = [
            ("wr_bytes", st.wr_bytes),
            ("wr_operations", st.wr_req),
            ("rd_bytes", st.rd_bytes),
            ("rd_operations", st.rd_req),
            ("errs", st.errs),
        ]
        .into_iter()
        .filter(|(_, v)| *v >= 0)
        .map(|(f, v)| TypedParam { field: f.to_string(), value: TypedParamValue::LLong(v) })
        .collect();
        if a.nparams == 0 {
            // The caller asks how many there are.
            DomainBlockStatsFlagsRet { params: Vec::new().into(), nparams: params.len() as i32 }
        } else {
            let mut params = params;
            params.truncate(a.nparams as usize);
            DomainBlockStatsFlagsRet { params: params.into(), nparams: 0 }
        }
    }
    NETWORK_UPDATE => network_update(s, a: NetworkUpdateArgs) {
        let section = Section::from_code(a.section).ok_or_else(|| {
            Error::new(ErrorKind::NoSupport, "can't update unrecognized section of network")
                .in_domain(ErrorDomain::Network)
        })?;
        let command = Command::from_code(a.command).ok_or_else(|| {
            Error::new(
                ErrorKind::NoSupport,
                format!("unrecognized network update command code {}", a.command),
            )
            .in_domain(ErrorDomain::Network)
        })?;
        s.conn()?
            .networks()?
            .update(&net_ref(&a.net), command, section, a.parent_index, &a.xml, NetworkUpdateFlags(a.flags))
            .await?;
        Void
    }
    CONNECT_NETWORK_EVENT_REGISTER_ANY => network_event_register(s, a: NetworkEventRegisterAnyArgs) {
        if !(0..NETWORK_EVENT_ID_LAST).contains(&a.event_id) {
            return Err(Error::invalid_arg(format!("unsupported event ID {}", a.event_id)));
        }
        check_callbacks(s)?;
        let conn = s.conn()?;
        let (mut stream, keep) = network_events(s, &conn, a.net.as_ref().map(|n| Uuid(n.uuid))).await?;
        let (id_tx, id_rx) = tokio::sync::oneshot::channel::<i32>();
        let sess = s.clone();
        let handle = tokio::spawn(async move {
            let _keep = keep;
            let Ok(callback_id) = id_rx.await else { return };
            while let Some(ev) = stream.next().await {
                let msg = NetworkEventLifecycleMsg {
                    callback_id,
                    net: wire_net(&ev.network),
                    event: ev.kind.code(),
                    // libvirt's network lifecycle events carry no detail.
                    detail: 0,
                };
                if !sess.send_message(&event_header(procs::NETWORK_EVENT_LIFECYCLE), &msg) {
                    break;
                }
            }
        });
        let id = s.add_callback(CallbackKind::Network, Some(handle.abort_handle()));
        let _ = id_tx.send(id);
        IntRet { value: id }
    }
    CONNECT_NETWORK_EVENT_DEREGISTER_ANY => network_event_deregister(s, a: IntRet) {
        if !s.remove_callback(CallbackKind::Network, a.value) {
            return Err(Error::invalid_arg(format!("callback {} not registered", a.value)));
        }
        Void
    }
    NETWORK_GET_DHCP_LEASES => network_get_dhcp_leases(s, a: NetworkGetDhcpLeasesArgs) {
        no_flags(a.flags, "virNetworkGetDHCPLeases")?;
        let leases = s.conn()?.networks()?.dhcp_leases(&net_ref(&a.net), a.mac.as_deref()).await?;
        let max = crate::protocol::NETWORK_DHCP_LEASES_MAX;
        if leases.len() > max as usize {
            return Err(too_many("leases", leases.len(), max));
        }
        let ret = leases.len() as u32;
        let leases = if a.need_results != 0 { leases.iter().map(wire_lease).collect() } else { Vec::new() };
        NetworkGetDhcpLeasesRet { leases: leases.into(), ret }
    }
    CONNECT_GET_DOMAIN_CAPABILITIES => connect_get_domain_capabilities(s, a: ConnectGetDomainCapabilitiesArgs) {
        no_flags(a.flags, "virConnectGetDomainCapabilities")?;
        let caps = s
            .conn()?
            .domain_capabilities(
                a.emulatorbin.as_deref(),
                a.arch.as_deref(),
                a.machine.as_deref(),
                a.virttype.as_deref(),
            )
            .await?;
        StringRet { value: caps }
    }
    CONNECT_GET_ALL_DOMAIN_STATS => connect_get_all_domain_stats(s, a: ConnectGetAllDomainStatsArgs) {
        let groups = StatsGroups(a.stats);
        if a.flags & STATS_ENFORCE != 0 && groups.unknown_bits() != 0 {
            return Err(Error::new(
                ErrorKind::ArgumentUnsupported,
                format!("Stats types bits 0x{:x} are not supported by this daemon", groups.unknown_bits()),
            ));
        }
        let conn = s.conn()?;
        let ops = conn.domains()?;
        let listed = a.doms.is_empty();
        let doms = if listed {
            ops.list_all(ListFlags(a.flags & STATS_LIST_FILTER)).await?
        } else {
            a.doms.iter().map(dom_ref).collect()
        };
        let max = crate::protocol::CONNECT_GET_ALL_DOMAIN_STATS_MAX;
        let mut records = Vec::with_capacity(doms.len());
        for d in doms {
            let params = match ops.stats(&d, groups).await {
                Ok(p) => p,
                // A listed domain that went away meanwhile is skipped.
                Err(e) if listed && e.kind() == ErrorKind::NoDomain => continue,
                Err(e) => return Err(e),
            };
            if params.len() > max as usize {
                return Err(too_many("statistics", params.len(), max));
            }
            records.push(DomainStatsRecord { dom: wire_dom(&d), params: wire_typed_params(&params).into() });
        }
        if records.len() > crate::protocol::DOMAIN_LIST_MAX as usize {
            return Err(too_many("domains", records.len(), crate::protocol::DOMAIN_LIST_MAX));
        }
        ConnectGetAllDomainStatsRet { ret_stats: records.into() }
    }
    DOMAIN_GET_MESSAGES => domain_get_messages(s, a: DomainFlagsArgs) {
        // No driver keeps taint or deprecation messages yet; confirm the
        // domain exists so a stale handle still fails.
        s.conn()?.domains()?.state(&dom_ref(&a.dom)).await?;
        DomainGetMessagesRet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_has_a_table_entry_and_back() {
        for (n, _) in HANDLERS {
            assert!(
                procs::lookup(*n).is_some(),
                "handler {n} has no table entry"
            );
        }
        for p in procs::TABLE {
            let is_message = p.api.starts_with('(');
            assert_eq!(find(p.number).is_some(), !is_message, "{}", p.name);
        }
        for (n, _) in super::super::streams::STREAM_HANDLERS {
            assert!(
                procs::lookup(*n).is_some(),
                "stream handler {n} has no table entry"
            );
            assert!(HANDLERS.iter().all(|(h, _)| h != n), "{n} is served twice");
        }
    }
}
