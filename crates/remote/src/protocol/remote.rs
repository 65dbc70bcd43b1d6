//! Argument, return and message structures of the REMOTE program that
//! virtkit speaks, with libvirt's field order and types. Written from the
//! protocol description; names follow libvirt's without the `remote_`
//! prefix. `unsigned char` and `unsigned short` travel as full words.

use crate::xdr::{CharArray, CharVec, XdrVec};

use super::*;

/// `remote_uuid`: 16 raw bytes.
pub type WireUuid = [u8; 16];

xdr_struct! {
    /// `remote_nonnull_domain`: name, UUID and id (-1 when inactive).
    pub struct NonnullDomain { pub name: String, pub uuid: WireUuid, pub id: i32 }
}
xdr_struct! {
    /// `remote_nonnull_network`.
    pub struct NonnullNetwork { pub name: String, pub uuid: WireUuid }
}
xdr_struct! {
    /// `remote_nonnull_interface`.
    pub struct NonnullInterface { pub name: String, pub mac: String }
}
xdr_struct! {
    /// `remote_nonnull_storage_pool`.
    pub struct NonnullStoragePool { pub name: String, pub uuid: WireUuid }
}
xdr_struct! {
    /// `remote_nonnull_storage_vol`.
    pub struct NonnullStorageVol { pub pool: String, pub name: String, pub key: String }
}

xdr_struct! {
    /// `remote_error`: what a failed call returns.
    pub struct RemoteError {
        pub code: i32,
        pub domain: i32,
        pub message: Option<String>,
        pub level: i32,
        pub dom: Option<NonnullDomain>,
        pub str1: Option<String>,
        pub str2: Option<String>,
        pub str3: Option<String>,
        pub int1: i32,
        pub int2: i32,
        pub net: Option<NonnullNetwork>,
    }
}

xdr_enum! {
    /// `remote_auth_type`.
    pub enum AuthType {
        /// No authentication.
        None = 0,
        /// SASL.
        Sasl = 1,
        /// polkit.
        Polkit = 2,
    }
}

xdr_union! {
    /// `remote_typed_param_value`, discriminated by `VIR_TYPED_PARAM_*`.
    pub enum TypedParamValue {
        /// `VIR_TYPED_PARAM_INT`.
        Int(i32) = 1,
        /// `VIR_TYPED_PARAM_UINT`.
        UInt(u32) = 2,
        /// `VIR_TYPED_PARAM_LLONG`.
        LLong(i64) = 3,
        /// `VIR_TYPED_PARAM_ULLONG`.
        ULLong(u64) = 4,
        /// `VIR_TYPED_PARAM_DOUBLE`.
        Double(f64) = 5,
        /// `VIR_TYPED_PARAM_BOOLEAN`.
        Boolean(i32) = 6,
        /// `VIR_TYPED_PARAM_STRING`.
        String(String) = 7,
    }
}

xdr_struct! {
    /// `remote_connect_open_args`.
    pub struct ConnectOpenArgs { pub name: Option<String>, pub flags: u32 }
}
xdr_struct! {
    /// `remote_connect_supports_feature_args`.
    pub struct SupportsFeatureArgs { pub feature: i32 }
}
xdr_struct! {
    /// Any return of one `int` (`supported`, `active`, `autostart`, ...).
    pub struct IntRet { pub value: i32 }
}
xdr_struct! {
    /// Any return of one `unsigned hyper` (versions).
    pub struct HyperRet { pub value: u64 }
}
xdr_struct! {
    /// Any argument or return of one string (type, hostname, URI, XML, name).
    pub struct StringRet { pub value: String }
}
xdr_struct! {
    /// A borrowed single-string argument (`xml`, `name`): decoded in place.
    pub struct StrArg<'a> { pub value: &'a str }
}
xdr_struct! {
    /// `remote_auth_list_ret`.
    pub struct AuthListRet { pub types: XdrVec<i32, AUTH_TYPE_LIST_MAX> }
}
xdr_struct! {
    /// `remote_node_get_info_ret`.
    pub struct NodeGetInfoRet {
        pub model: CharArray<32>,
        pub memory: u64,
        pub cpus: i32,
        pub mhz: i32,
        pub nodes: i32,
        pub sockets: i32,
        pub cores: i32,
        pub threads: i32,
    }
}
xdr_struct! {
    /// `remote_node_get_security_model_ret`.
    pub struct NodeGetSecurityModelRet {
        pub model: CharVec<SECURITY_MODEL_MAX>,
        pub doi: CharVec<SECURITY_DOI_MAX>,
    }
}

// Domains.
xdr_struct! {
    /// `{int need_results; unsigned int flags}` of every list-all call.
    pub struct ListAllArgs { pub need_results: i32, pub flags: u32 }
}
xdr_struct! {
    /// `remote_connect_list_all_domains_ret`.
    pub struct ListAllDomainsRet { pub domains: XdrVec<NonnullDomain, DOMAIN_LIST_MAX>, pub ret: u32 }
}
xdr_struct! {
    /// `remote_domain_lookup_by_id_args`.
    pub struct LookupByIdArgs { pub id: i32 }
}
xdr_struct! {
    /// Lookup by UUID (domains, networks, pools).
    pub struct LookupByUuidArgs { pub uuid: WireUuid }
}
xdr_struct! {
    /// A domain argument or return (`{dom}`).
    pub struct DomainArg { pub dom: NonnullDomain }
}
xdr_struct! {
    /// A domain plus flags (`{dom, flags}`).
    pub struct DomainFlagsArgs { pub dom: NonnullDomain, pub flags: u32 }
}
xdr_struct! {
    /// `remote_domain_set_autostart_args`.
    pub struct DomainSetAutostartArgs { pub dom: NonnullDomain, pub autostart: i32 }
}
xdr_struct! {
    /// `{xml, flags}` of define-with-flags and create-xml.
    pub struct XmlFlagsArgs<'a> { pub xml: &'a str, pub flags: u32 }
}
xdr_struct! {
    /// `remote_domain_get_state_ret`.
    pub struct DomainGetStateRet { pub state: i32, pub reason: i32 }
}
xdr_struct! {
    /// `remote_domain_get_info_ret`.
    pub struct DomainGetInfoRet {
        pub state: u32,
        pub max_mem: u64,
        pub memory: u64,
        pub nr_virt_cpu: u32,
        pub cpu_time: u64,
    }
}
xdr_struct! {
    /// `remote_domain_get_security_label_ret`.
    pub struct DomainGetSecurityLabelRet {
        pub label: CharVec<SECURITY_LABEL_MAX>,
        pub enforcing: i32,
    }
}
xdr_struct! {
    /// `remote_domain_get_messages_ret`.
    pub struct DomainGetMessagesRet { pub msgs: XdrVec<String, DOMAIN_MESSAGES_MAX> }
}

// Events.
xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_args`.
    pub struct DomainEventCallbackRegisterAnyArgs { pub event_id: i32, pub dom: Option<NonnullDomain> }
}
xdr_struct! {
    /// `remote_domain_event_callback_lifecycle_msg`.
    pub struct DomainEventCallbackLifecycleMsg {
        pub callback_id: i32,
        pub dom: NonnullDomain,
        pub event: i32,
        pub detail: i32,
    }
}
xdr_struct! {
    /// `remote_connect_event_connection_closed_msg`.
    pub struct ConnectionClosedMsg { pub reason: i32 }
}

// Networks.
xdr_struct! {
    /// `remote_connect_list_all_networks_ret`.
    pub struct ListAllNetworksRet { pub nets: XdrVec<NonnullNetwork, NETWORK_LIST_MAX>, pub ret: u32 }
}
xdr_struct! {
    /// A network argument or return.
    pub struct NetworkArg { pub net: NonnullNetwork }
}
xdr_struct! {
    /// A network plus flags.
    pub struct NetworkFlagsArgs { pub net: NonnullNetwork, pub flags: u32 }
}
xdr_struct! {
    /// `remote_network_set_autostart_args`.
    pub struct NetworkSetAutostartArgs { pub net: NonnullNetwork, pub autostart: i32 }
}

// Interfaces.
xdr_struct! {
    /// `remote_connect_list_all_interfaces_ret`.
    pub struct ListAllInterfacesRet { pub ifaces: XdrVec<NonnullInterface, INTERFACE_LIST_MAX>, pub ret: u32 }
}
xdr_struct! {
    /// An interface argument or return.
    pub struct InterfaceArg { pub iface: NonnullInterface }
}
xdr_struct! {
    /// An interface plus flags.
    pub struct InterfaceFlagsArgs { pub iface: NonnullInterface, pub flags: u32 }
}

// Storage.
xdr_struct! {
    /// `remote_connect_list_all_storage_pools_ret`.
    pub struct ListAllStoragePoolsRet { pub pools: XdrVec<NonnullStoragePool, STORAGE_POOL_LIST_MAX>, pub ret: u32 }
}
xdr_struct! {
    /// A pool argument or return.
    pub struct PoolArg { pub pool: NonnullStoragePool }
}
xdr_struct! {
    /// A pool plus flags.
    pub struct PoolFlagsArgs { pub pool: NonnullStoragePool, pub flags: u32 }
}
xdr_struct! {
    /// `remote_storage_pool_get_info_ret`.
    pub struct PoolGetInfoRet { pub state: u32, pub capacity: u64, pub allocation: u64, pub available: u64 }
}
xdr_struct! {
    /// `remote_storage_pool_list_all_volumes_args`.
    pub struct PoolListAllVolumesArgs { pub pool: NonnullStoragePool, pub need_results: i32, pub flags: u32 }
}
xdr_struct! {
    /// `remote_storage_pool_list_all_volumes_ret`.
    pub struct PoolListAllVolumesRet { pub vols: XdrVec<NonnullStorageVol, STORAGE_VOL_LIST_MAX>, pub ret: u32 }
}
xdr_struct! {
    /// A volume argument.
    pub struct VolArg { pub vol: NonnullStorageVol }
}

impl Default for TypedParamValue {
    fn default() -> Self {
        TypedParamValue::Int(0)
    }
}

xdr_struct! {
    /// `remote_typed_param`: a named typed value.
    pub struct TypedParam { pub field: String, pub value: TypedParamValue }
}

// Domain statistics.
xdr_struct! {
    /// `remote_domain_block_stats_args` and
    /// `remote_domain_interface_stats_args` (`path` names the device).
    pub struct DomainPathArgs { pub dom: NonnullDomain, pub path: String }
}
xdr_struct! {
    /// `remote_domain_block_stats_ret`.
    pub struct DomainBlockStatsRet {
        pub rd_req: i64,
        pub rd_bytes: i64,
        pub wr_req: i64,
        pub wr_bytes: i64,
        pub errs: i64,
    }
}
xdr_struct! {
    /// `remote_domain_interface_stats_ret`.
    pub struct DomainInterfaceStatsRet {
        pub rx_bytes: i64,
        pub rx_packets: i64,
        pub rx_errs: i64,
        pub rx_drop: i64,
        pub tx_bytes: i64,
        pub tx_packets: i64,
        pub tx_errs: i64,
        pub tx_drop: i64,
    }
}
xdr_struct! {
    /// `remote_domain_block_stats_flags_args`.
    pub struct DomainBlockStatsFlagsArgs {
        pub dom: NonnullDomain,
        pub path: String,
        pub nparams: i32,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_domain_block_stats_flags_ret`.
    pub struct DomainBlockStatsFlagsRet {
        pub params: XdrVec<TypedParam, DOMAIN_BLOCK_STATS_PARAMETERS_MAX>,
        pub nparams: i32,
    }
}
xdr_struct! {
    /// `remote_domain_set_block_io_tune_args`.
    pub struct DomainSetBlockIoTuneArgs {
        pub dom: NonnullDomain,
        pub disk: String,
        pub params: XdrVec<TypedParam, DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX>,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_domain_get_block_io_tune_args`.
    pub struct DomainGetBlockIoTuneArgs {
        pub dom: NonnullDomain,
        pub disk: Option<String>,
        pub nparams: i32,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_domain_get_block_io_tune_ret`.
    pub struct DomainGetBlockIoTuneRet {
        pub params: XdrVec<TypedParam, DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX>,
        pub nparams: i32,
    }
}
xdr_struct! {
    /// `remote_domain_get_control_info_ret`.
    pub struct DomainGetControlInfoRet { pub state: u32, pub details: u32, pub state_time: u64 }
}
xdr_struct! {
    /// `remote_domain_stats_record`.
    pub struct DomainStatsRecord {
        pub dom: NonnullDomain,
        pub params: XdrVec<TypedParam, CONNECT_GET_ALL_DOMAIN_STATS_MAX>,
    }
}
xdr_struct! {
    /// `remote_connect_get_all_domain_stats_args`.
    pub struct ConnectGetAllDomainStatsArgs {
        pub doms: XdrVec<NonnullDomain, DOMAIN_LIST_MAX>,
        pub stats: u32,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_connect_get_all_domain_stats_ret`.
    pub struct ConnectGetAllDomainStatsRet { pub ret_stats: XdrVec<DomainStatsRecord, DOMAIN_LIST_MAX> }
}
xdr_struct! {
    /// `remote_connect_get_domain_capabilities_args`.
    pub struct ConnectGetDomainCapabilitiesArgs {
        pub emulatorbin: Option<String>,
        pub arch: Option<String>,
        pub machine: Option<String>,
        pub virttype: Option<String>,
        pub flags: u32,
    }
}

// Streams.
xdr_struct! {
    /// `remote_domain_open_console_args`.
    pub struct DomainOpenConsoleArgs { pub dom: NonnullDomain, pub dev_name: Option<String>, pub flags: u32 }
}
xdr_struct! {
    /// `remote_domain_screenshot_args`.
    pub struct DomainScreenshotArgs { pub dom: NonnullDomain, pub screen: u32, pub flags: u32 }
}
xdr_struct! {
    /// `remote_domain_screenshot_ret`.
    pub struct DomainScreenshotRet { pub mime: Option<String> }
}

// Network update, leases and events.
xdr_struct! {
    /// `remote_network_update_args` (in the order of
    /// `VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER`: command, then section).
    pub struct NetworkUpdateArgs {
        pub net: NonnullNetwork,
        pub command: u32,
        pub section: u32,
        pub parent_index: i32,
        pub xml: String,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_domain_ip_addr` (`type_`: 0 IPv4, 1 IPv6).
    pub struct DomainIpAddrWire { pub type_: i32, pub addr: String, pub prefix: u32 }
}
xdr_struct! {
    /// `remote_domain_interface`.
    pub struct DomainInterfaceWire {
        pub name: String,
        pub hwaddr: Option<String>,
        pub addrs: XdrVec<DomainIpAddrWire, DOMAIN_IP_ADDR_MAX>,
    }
}
xdr_struct! {
    /// `remote_domain_interface_addresses_args`.
    pub struct DomainInterfaceAddressesArgs { pub dom: NonnullDomain, pub source: u32, pub flags: u32 }
}
xdr_struct! {
    /// `remote_domain_interface_addresses_ret`.
    pub struct DomainInterfaceAddressesRet {
        pub ifaces: XdrVec<DomainInterfaceWire, DOMAIN_INTERFACE_MAX>,
    }
}
xdr_struct! {
    /// `remote_network_dhcp_lease`.
    pub struct NetworkDhcpLeaseWire {
        pub iface: String,
        pub expirytime: i64,
        pub type_: i32,
        pub mac: Option<String>,
        pub iaid: Option<String>,
        pub ipaddr: String,
        pub prefix: u32,
        pub hostname: Option<String>,
        pub clientid: Option<String>,
    }
}
xdr_struct! {
    /// `remote_network_get_dhcp_leases_args`.
    pub struct NetworkGetDhcpLeasesArgs {
        pub net: NonnullNetwork,
        pub mac: Option<String>,
        pub need_results: i32,
        pub flags: u32,
    }
}
xdr_struct! {
    /// `remote_network_get_dhcp_leases_ret`.
    pub struct NetworkGetDhcpLeasesRet {
        pub leases: XdrVec<NetworkDhcpLeaseWire, NETWORK_DHCP_LEASES_MAX>,
        pub ret: u32,
    }
}
xdr_struct! {
    /// `remote_connect_network_event_register_any_args`.
    pub struct NetworkEventRegisterAnyArgs { pub event_id: i32, pub net: Option<NonnullNetwork> }
}
xdr_struct! {
    /// `remote_network_event_lifecycle_msg`.
    pub struct NetworkEventLifecycleMsg {
        pub callback_id: i32,
        pub net: NonnullNetwork,
        pub event: i32,
        pub detail: i32,
    }
}
