//! The REMOTE program's procedures virtkit speaks: number, the public API
//! it carries (the name libvirt puts into "read only access prevents ..."),
//! and whether it changes anything. This one table decides what a
//! read-only client may call.

/// What a procedure may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Connection setup and authentication: allowed before authentication.
    Setup,
    /// Reads state; allowed on read-only connections.
    Read,
    /// Changes state; denied on read-only connections.
    Write,
}

/// One procedure.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo {
    /// Procedure number.
    pub number: i32,
    /// libvirt's name without `REMOTE_PROC_`.
    pub name: &'static str,
    /// The public API it implements.
    pub api: &'static str,
    /// Read, write or setup.
    pub access: Access,
}

macro_rules! procedures {
    ($( $name:ident = $num:literal, $api:literal, $access:ident; )*) => {
        $(
            #[doc = concat!("`REMOTE_PROC_", stringify!($name), "` (", $api, ").")]
            pub const $name: i32 = $num;
        )*

        /// Every procedure virtkit knows, by number.
        pub const TABLE: &[ProcInfo] = &[
            $( ProcInfo { number: $num, name: stringify!($name), api: $api, access: Access::$access }, )*
        ];
    };
}

procedures! {
    CONNECT_OPEN = 1, "virConnectOpen", Setup;
    CONNECT_CLOSE = 2, "virConnectClose", Setup;
    CONNECT_GET_TYPE = 3, "virConnectGetType", Read;
    CONNECT_GET_VERSION = 4, "virConnectGetVersion", Read;
    NODE_GET_INFO = 6, "virNodeGetInfo", Read;
    CONNECT_GET_CAPABILITIES = 7, "virConnectGetCapabilities", Read;
    DOMAIN_CREATE = 9, "virDomainCreate", Write;
    DOMAIN_CREATE_XML = 10, "virDomainCreateXML", Write;
    DOMAIN_DEFINE_XML = 11, "virDomainDefineXML", Write;
    DOMAIN_DESTROY = 12, "virDomainDestroy", Write;
    DOMAIN_GET_XML_DESC = 14, "virDomainGetXMLDesc", Read;
    DOMAIN_GET_AUTOSTART = 15, "virDomainGetAutostart", Read;
    DOMAIN_GET_INFO = 16, "virDomainGetInfo", Read;
    DOMAIN_GET_OS_TYPE = 19, "virDomainGetOSType", Read;
    DOMAIN_LOOKUP_BY_ID = 22, "virDomainLookupByID", Read;
    DOMAIN_LOOKUP_BY_NAME = 23, "virDomainLookupByName", Read;
    DOMAIN_LOOKUP_BY_UUID = 24, "virDomainLookupByUUID", Read;
    DOMAIN_REBOOT = 27, "virDomainReboot", Write;
    DOMAIN_RESUME = 28, "virDomainResume", Write;
    DOMAIN_SET_AUTOSTART = 29, "virDomainSetAutostart", Write;
    DOMAIN_SHUTDOWN = 33, "virDomainShutdown", Write;
    DOMAIN_SUSPEND = 34, "virDomainSuspend", Write;
    DOMAIN_UNDEFINE = 35, "virDomainUndefine", Write;
    NETWORK_CREATE = 39, "virNetworkCreate", Write;
    NETWORK_CREATE_XML = 40, "virNetworkCreateXML", Write;
    NETWORK_DEFINE_XML = 41, "virNetworkDefineXML", Write;
    NETWORK_DESTROY = 42, "virNetworkDestroy", Write;
    NETWORK_GET_XML_DESC = 43, "virNetworkGetXMLDesc", Read;
    NETWORK_GET_AUTOSTART = 44, "virNetworkGetAutostart", Read;
    NETWORK_GET_BRIDGE_NAME = 45, "virNetworkGetBridgeName", Read;
    NETWORK_LOOKUP_BY_NAME = 46, "virNetworkLookupByName", Read;
    NETWORK_LOOKUP_BY_UUID = 47, "virNetworkLookupByUUID", Read;
    NETWORK_SET_AUTOSTART = 48, "virNetworkSetAutostart", Write;
    NETWORK_UNDEFINE = 49, "virNetworkUndefine", Write;
    CONNECT_GET_HOSTNAME = 59, "virConnectGetHostname", Read;
    CONNECT_SUPPORTS_FEATURE = 60, "virConnectSupportsFeature", Setup;
    DOMAIN_BLOCK_STATS = 64, "virDomainBlockStats", Read;
    DOMAIN_INTERFACE_STATS = 65, "virDomainInterfaceStats", Read;
    AUTH_LIST = 66, "virConnectAuthList", Setup;
    AUTH_POLKIT = 70, "virConnectAuthPolkit", Setup;
    STORAGE_POOL_LOOKUP_BY_NAME = 84, "virStoragePoolLookupByName", Read;
    STORAGE_POOL_LOOKUP_BY_UUID = 85, "virStoragePoolLookupByUUID", Read;
    STORAGE_POOL_GET_INFO = 87, "virStoragePoolGetInfo", Read;
    STORAGE_POOL_GET_XML_DESC = 88, "virStoragePoolGetXMLDesc", Read;
    STORAGE_POOL_GET_AUTOSTART = 89, "virStoragePoolGetAutostart", Read;
    STORAGE_VOL_GET_PATH = 100, "virStorageVolGetPath", Read;
    CONNECT_GET_URI = 110, "virConnectGetURI", Read;
    DOMAIN_GET_SECURITY_LABEL = 121, "virDomainGetSecurityLabel", Read;
    NODE_GET_SECURITY_MODEL = 122, "virNodeGetSecurityModel", Read;
    INTERFACE_LOOKUP_BY_NAME = 128, "virInterfaceLookupByName", Read;
    INTERFACE_LOOKUP_BY_MAC_STRING = 129, "virInterfaceLookupByMACString", Read;
    INTERFACE_GET_XML_DESC = 130, "virInterfaceGetXMLDesc", Read;
    CONNECT_IS_SECURE = 149, "virConnectIsSecure", Read;
    DOMAIN_IS_ACTIVE = 150, "virDomainIsActive", Read;
    DOMAIN_IS_PERSISTENT = 151, "virDomainIsPersistent", Read;
    NETWORK_IS_ACTIVE = 152, "virNetworkIsActive", Read;
    NETWORK_IS_PERSISTENT = 153, "virNetworkIsPersistent", Read;
    STORAGE_POOL_IS_ACTIVE = 154, "virStoragePoolIsActive", Read;
    STORAGE_POOL_IS_PERSISTENT = 155, "virStoragePoolIsPersistent", Read;
    INTERFACE_IS_ACTIVE = 156, "virInterfaceIsActive", Read;
    CONNECT_GET_LIB_VERSION = 157, "virConnectGetLibVersion", Read;
    DOMAIN_HAS_MANAGED_SAVE_IMAGE = 183, "virDomainHasManagedSaveImage", Read;
    DOMAIN_CREATE_WITH_FLAGS = 196, "virDomainCreateWithFlags", Write;
    DOMAIN_OPEN_CONSOLE = 201, "virDomainOpenConsole", Write;
    DOMAIN_SCREENSHOT = 211, "virDomainScreenshot", Write;
    DOMAIN_GET_STATE = 212, "virDomainGetState", Read;
    DOMAIN_GET_CONTROL_INFO = 229, "virDomainGetControlInfo", Read;
    DOMAIN_UNDEFINE_FLAGS = 231, "virDomainUndefineFlags", Write;
    DOMAIN_DESTROY_FLAGS = 234, "virDomainDestroyFlags", Write;
    DOMAIN_BLOCK_STATS_FLAGS = 243, "virDomainBlockStatsFlags", Read;
    DOMAIN_RESET = 245, "virDomainReset", Write;
    DOMAIN_SET_BLOCK_IO_TUNE = 252, "virDomainSetBlockIoTune", Write;
    DOMAIN_GET_BLOCK_IO_TUNE = 253, "virDomainGetBlockIoTune", Read;
    DOMAIN_SHUTDOWN_FLAGS = 258, "virDomainShutdownFlags", Write;
    CONNECT_LIST_ALL_DOMAINS = 273, "virConnectListAllDomains", Read;
    CONNECT_LIST_ALL_STORAGE_POOLS = 281, "virConnectListAllStoragePools", Read;
    STORAGE_POOL_LIST_ALL_VOLUMES = 282, "virStoragePoolListAllVolumes", Read;
    CONNECT_LIST_ALL_NETWORKS = 283, "virConnectListAllNetworks", Read;
    CONNECT_LIST_ALL_INTERFACES = 284, "virConnectListAllInterfaces", Read;
    NETWORK_UPDATE = 291, "virNetworkUpdate", Write;
    CONNECT_NETWORK_EVENT_REGISTER_ANY = 313, "virConnectNetworkEventRegisterAny", Read;
    CONNECT_NETWORK_EVENT_DEREGISTER_ANY = 314, "virConnectNetworkEventDeregisterAny", Read;
    NETWORK_EVENT_LIFECYCLE = 315, "(network lifecycle event)", Read;
    CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 316, "virConnectDomainEventRegisterAny", Read;
    CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = 317, "virConnectDomainEventDeregisterAny", Read;
    DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318, "(lifecycle event)", Read;
    NETWORK_GET_DHCP_LEASES = 341, "virNetworkGetDHCPLeases", Read;
    CONNECT_GET_DOMAIN_CAPABILITIES = 342, "virConnectGetDomainCapabilities", Write;
    CONNECT_GET_ALL_DOMAIN_STATS = 344, "virConnectGetAllDomainStats", Read;
    DOMAIN_DEFINE_XML_FLAGS = 350, "virDomainDefineXMLFlags", Write;
    DOMAIN_INTERFACE_ADDRESSES = 353, "virDomainInterfaceAddresses", Read;
    CONNECT_REGISTER_CLOSE_CALLBACK = 360, "virConnectRegisterCloseCallback", Read;
    CONNECT_UNREGISTER_CLOSE_CALLBACK = 361, "virConnectUnregisterCloseCallback", Read;
    CONNECT_EVENT_CONNECTION_CLOSED = 362, "(connection closed event)", Read;
    DOMAIN_GET_MESSAGES = 426, "virDomainGetMessages", Read;
}

/// The highest REMOTE procedure number libvirt had assigned when this table
/// was written (`DOMAIN_FD_ASSOCIATE`, libvirt 9.6). Numbers up to it are
/// real libvirt procedures; above it they are garbage.
pub const LAST_KNOWN: i32 = 443;

/// The procedure with this number.
pub fn lookup(number: i32) -> Option<&'static ProcInfo> {
    TABLE
        .binary_search_by_key(&number, |p| p.number)
        .ok()
        .map(|i| &TABLE[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique_so_lookup_works() {
        assert!(TABLE.windows(2).all(|w| w[0].number < w[1].number));
        assert_eq!(
            lookup(273).map(|p| p.name),
            Some("CONNECT_LIST_ALL_DOMAINS")
        );
        assert_eq!(lookup(11).map(|p| p.access), Some(Access::Write));
        assert!(lookup(5).is_none());
    }
}
