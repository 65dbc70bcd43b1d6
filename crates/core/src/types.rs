//! Plain data exchanged through the driver traits: handles, states, infos
//! and the flag sets of libvirt's API (same bit values, so they cross the
//! wire unchanged).

use std::fmt;

use serde::Serialize;

use crate::ids::Uuid;

/// Defines a libvirt-style flag set: a `u32` newtype with named bits.
#[macro_export]
macro_rules! flags {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $flag:ident = $val:expr; )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
        pub struct $name(pub u32);

        impl $name {
            $( $(#[$vm])* pub const $flag: $name = $name($val); )*

            /// No flags.
            pub const fn empty() -> Self { $name(0) }
            /// The raw bits.
            pub const fn bits(self) -> u32 { self.0 }
            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool { self.0 & other.0 == other.0 }
            /// Whether any bit of `other` is set.
            pub const fn intersects(self, other: Self) -> bool { self.0 & other.0 != 0 }
            /// Bits that are not one of the named flags.
            pub const fn unknown_bits(self) -> u32 { self.0 & !(0 $(| $val)*) }
        }

        impl ::std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name { $name(self.0 | rhs.0) }
        }

        impl ::std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) { self.0 |= rhs.0; }
        }
    };
}

flags! {
    /// `virConnectFlags` for opening a connection.
    OpenFlags {
        /// Read-only connection: every mutating call is denied.
        READ_ONLY = 1;
        /// Do not try to auto-start a daemon.
        NO_ALIASES = 2;
    }
}

flags! {
    /// `virConnectListAllDomainsFlags`.
    ListFlags {
        /// Running or paused domains.
        ACTIVE = 1;
        /// Shut-off domains.
        INACTIVE = 2;
        /// Domains with a persistent definition.
        PERSISTENT = 4;
        /// Transient domains.
        TRANSIENT = 8;
        /// Running.
        RUNNING = 16;
        /// Paused.
        PAUSED = 32;
        /// Shut off.
        SHUTOFF = 64;
        /// Any other state.
        OTHER = 128;
        /// With a managed-save image.
        MANAGEDSAVE = 256;
        /// Without a managed-save image.
        NO_MANAGEDSAVE = 512;
        /// Marked for autostart.
        AUTOSTART = 1024;
        /// Not marked for autostart.
        NO_AUTOSTART = 2048;
        /// With snapshots.
        HAS_SNAPSHOT = 4096;
        /// Without snapshots.
        NO_SNAPSHOT = 8192;
    }
}

flags! {
    /// `virDomainDefineFlags`.
    DefineFlags {
        /// Validate against the schema before defining.
        VALIDATE = 1;
    }
}

flags! {
    /// `virDomainCreateFlags`.
    CreateFlags {
        /// Start paused.
        PAUSED = 1;
        /// Destroy the domain when the connection closes.
        AUTODESTROY = 2;
        /// Bypass the host page cache when restoring.
        BYPASS_CACHE = 4;
        /// Remove a managed-save image before starting.
        FORCE_BOOT = 8;
        /// Validate the XML (create-xml only).
        VALIDATE = 16;
        /// Reset NVRAM from its template.
        RESET_NVRAM = 32;
    }
}

flags! {
    /// `virDomainUndefineFlagsValues`.
    UndefineFlags {
        /// Also remove a managed-save image.
        MANAGED_SAVE = 1;
        /// Also remove snapshot metadata.
        SNAPSHOTS_METADATA = 2;
        /// Also remove NVRAM.
        NVRAM = 4;
        /// Keep NVRAM.
        KEEP_NVRAM = 8;
        /// Also remove checkpoint metadata.
        CHECKPOINTS_METADATA = 16;
        /// Keep TPM state.
        KEEP_TPM = 64;
        /// Also remove TPM state.
        TPM = 32;
    }
}

flags! {
    /// `virDomainShutdownFlagValues`: which method to use.
    ShutdownFlags {
        /// ACPI power button.
        ACPI_POWER_BTN = 1;
        /// Guest agent.
        GUEST_AGENT = 2;
        /// initctl (containers).
        INITCTL = 4;
        /// A signal to init (containers).
        SIGNAL = 8;
        /// Paravirtual shutdown.
        PARAVIRT = 16;
    }
}

flags! {
    /// `virDomainRebootFlagValues`: which method to use.
    RebootFlags {
        /// ACPI power button.
        ACPI_POWER_BTN = 1;
        /// Guest agent.
        GUEST_AGENT = 2;
        /// initctl (containers).
        INITCTL = 4;
        /// A signal to init (containers).
        SIGNAL = 8;
        /// Paravirtual reboot.
        PARAVIRT = 16;
    }
}

flags! {
    /// `virDomainDestroyFlagsValues`.
    DestroyFlags {
        /// Only SIGTERM, never SIGKILL.
        GRACEFUL = 1;
        /// Remove log files.
        REMOVE_LOGS = 2;
    }
}

flags! {
    /// `virDomainXMLFlags` for dumping XML.
    XmlFlags {
        /// Include security-sensitive data.
        SECURE = 1;
        /// The persistent (inactive) definition rather than the live one.
        INACTIVE = 2;
        /// Update guest CPU from the host.
        UPDATE_CPU = 4;
        /// Suitable for migration.
        MIGRATABLE = 8;
    }
}

flags! {
    /// `virConnectListAllNetworksFlags`.
    NetworkListFlags {
        /// Inactive networks.
        INACTIVE = 1;
        /// Active networks.
        ACTIVE = 2;
        /// Persistent networks.
        PERSISTENT = 4;
        /// Transient networks.
        TRANSIENT = 8;
        /// Marked for autostart.
        AUTOSTART = 16;
        /// Not marked for autostart.
        NO_AUTOSTART = 32;
    }
}

flags! {
    /// `virNetworkUpdateFlags`: which definition a `net-update` changes
    /// (none = the current one: live if running, else persistent).
    NetworkUpdateFlags {
        /// The running network.
        LIVE = 1;
        /// The persistent definition.
        CONFIG = 2;
    }
}

/// One DHCP lease of a network (`virNetworkDHCPLease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkDhcpLease {
    /// The bridge the lease was handed out on.
    pub iface: String,
    /// Expiry, seconds since the epoch (0 = never).
    pub expiry_time: i64,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Client MAC address (IPv4) or empty.
    pub mac: String,
    /// DHCPv6 IAID, if any.
    pub iaid: Option<String>,
    /// The leased address.
    pub ipaddr: String,
    /// Prefix length of the network.
    pub prefix: u32,
    /// Client host name, if it sent one.
    pub hostname: Option<String>,
    /// Client id, if it sent one.
    pub clientid: Option<String>,
}

flags! {
    /// `virConnectListAllInterfacesFlags`.
    InterfaceListFlags {
        /// Inactive interfaces.
        INACTIVE = 1;
        /// Active interfaces.
        ACTIVE = 2;
    }
}

flags! {
    /// `virConnectListAllStoragePoolsFlags` (state and persistence bits).
    PoolListFlags {
        /// Inactive pools.
        INACTIVE = 1;
        /// Active pools.
        ACTIVE = 2;
        /// Persistent pools.
        PERSISTENT = 4;
        /// Transient pools.
        TRANSIENT = 8;
        /// Marked for autostart.
        AUTOSTART = 16;
        /// Not marked for autostart.
        NO_AUTOSTART = 32;
    }
}

/// A host interface handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct InterfaceRef {
    /// Name, e.g. `eth1`.
    pub name: String,
    /// MAC address as text (may be empty for interfaces without one).
    pub mac: String,
}

/// A storage pool handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoragePoolRef {
    /// Name.
    pub name: String,
    /// UUID.
    #[serde(serialize_with = "ser_display")]
    pub uuid: Uuid,
}

/// `virStoragePoolState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(i32)]
pub enum PoolState {
    /// Not running.
    Inactive = 0,
    /// Being built.
    Building = 1,
    /// Running.
    Running = 2,
    /// Running with degraded performance.
    Degraded = 3,
    /// Running but not reachable.
    Inaccessible = 4,
}

impl PoolState {
    /// The word virsh prints in `pool-info` and `pool-list --details`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Inactive => "inactive",
            PoolState::Building => "building",
            PoolState::Running => "running",
            PoolState::Degraded => "degraded",
            PoolState::Inaccessible => "inaccessible",
        }
    }
}

/// `virStoragePoolInfo` plus persistence and autostart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoragePoolInfo {
    /// The handle.
    #[serde(flatten)]
    pub pool: StoragePoolRef,
    /// State.
    pub state: PoolState,
    /// Size in bytes.
    pub capacity: u64,
    /// Bytes allocated.
    pub allocation: u64,
    /// Bytes free.
    pub available: u64,
    /// Has a persistent definition.
    pub persistent: bool,
    /// Started with the host.
    pub autostart: bool,
}

/// A storage volume handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StorageVolRef {
    /// Name inside its pool.
    pub name: String,
    /// Path on the host.
    pub path: String,
}

/// A domain handle: what libvirt's `virDomainPtr` carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DomainRef {
    /// Name.
    pub name: String,
    /// UUID.
    #[serde(serialize_with = "ser_display")]
    pub uuid: Uuid,
    /// Id while running (`None` when shut off; libvirt's -1).
    pub id: Option<u32>,
}

/// A network handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NetworkRef {
    /// Name.
    pub name: String,
    /// UUID.
    #[serde(serialize_with = "ser_display")]
    pub uuid: Uuid,
}

fn ser_display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `virDomainState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(i32)]
pub enum DomainState {
    /// No state.
    NoState = 0,
    /// Running.
    Running = 1,
    /// Blocked on a resource.
    Blocked = 2,
    /// Paused.
    Paused = 3,
    /// Being shut down.
    Shutdown = 4,
    /// Shut off.
    Shutoff = 5,
    /// Crashed.
    Crashed = 6,
    /// Suspended by guest power management.
    PmSuspended = 7,
}

const RUNNING_REASONS: &[&str] = &[
    "unknown",
    "booted",
    "migrated",
    "restored",
    "from snapshot",
    "unpaused",
    "migration canceled",
    "save canceled",
    "event wakeup",
    "crashed",
    "post-copy",
    "post-copy failed",
];
const PAUSED_REASONS: &[&str] = &[
    "unknown",
    "user",
    "migrating",
    "saving",
    "dumping",
    "I/O error",
    "watchdog",
    "from snapshot",
    "shutting down",
    "creating snapshot",
    "starting up",
    "post-copy",
    "post-copy failed",
    "api error",
];
const SHUTOFF_REASONS: &[&str] = &[
    "unknown",
    "shutdown",
    "destroyed",
    "crashed",
    "migrated",
    "saved",
    "failed",
    "from snapshot",
    "daemon",
];

impl DomainState {
    /// The state for libvirt's number.
    pub fn from_code(code: i32) -> DomainState {
        match code {
            1 => DomainState::Running,
            2 => DomainState::Blocked,
            3 => DomainState::Paused,
            4 => DomainState::Shutdown,
            5 => DomainState::Shutoff,
            6 => DomainState::Crashed,
            7 => DomainState::PmSuspended,
            _ => DomainState::NoState,
        }
    }

    /// libvirt's number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The words virsh prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::NoState => "no state",
            DomainState::Running => "running",
            DomainState::Blocked => "idle",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "in shutdown",
            DomainState::Shutoff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        }
    }

    /// The words virsh prints for a state reason.
    pub fn reason_str(self, reason: i32) -> &'static str {
        let table: &[&str] = match self {
            DomainState::Running => RUNNING_REASONS,
            DomainState::Paused => PAUSED_REASONS,
            DomainState::Shutoff => SHUTOFF_REASONS,
            DomainState::Shutdown => &["unknown", "user"],
            DomainState::Crashed => &["unknown", "panicked"],
            _ => &["unknown"],
        };
        usize::try_from(reason)
            .ok()
            .and_then(|r| table.get(r))
            .copied()
            .unwrap_or("unknown")
    }

    /// Whether a domain in this state has a running hypervisor process.
    pub fn is_active(self) -> bool {
        !matches!(self, DomainState::Shutoff | DomainState::NoState)
    }
}

/// Reasons for [`DomainState::Running`].
#[allow(missing_docs)]
pub mod running_reason {
    pub const UNKNOWN: i32 = 0;
    pub const BOOTED: i32 = 1;
    pub const MIGRATED: i32 = 2;
    pub const RESTORED: i32 = 3;
    pub const FROM_SNAPSHOT: i32 = 4;
    pub const UNPAUSED: i32 = 5;
    pub const WAKEUP: i32 = 8;
    pub const CRASHED: i32 = 9;
}

/// Reasons for [`DomainState::Paused`].
#[allow(missing_docs)]
pub mod paused_reason {
    pub const UNKNOWN: i32 = 0;
    pub const USER: i32 = 1;
    pub const IOERROR: i32 = 5;
    pub const WATCHDOG: i32 = 6;
    pub const SHUTTING_DOWN: i32 = 8;
    pub const STARTING_UP: i32 = 10;
}

/// Reasons for [`DomainState::Shutoff`].
#[allow(missing_docs)]
pub mod shutoff_reason {
    pub const UNKNOWN: i32 = 0;
    pub const SHUTDOWN: i32 = 1;
    pub const DESTROYED: i32 = 2;
    pub const CRASHED: i32 = 3;
    pub const MIGRATED: i32 = 4;
    pub const SAVED: i32 = 5;
    pub const FAILED: i32 = 6;
    pub const FROM_SNAPSHOT: i32 = 7;
    pub const DAEMON: i32 = 8;
}

/// Reasons for [`DomainState::Crashed`].
#[allow(missing_docs)]
pub mod crashed_reason {
    pub const UNKNOWN: i32 = 0;
    pub const PANICKED: i32 = 1;
}

/// `virDomainInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainInfo {
    /// Current state.
    pub state: DomainState,
    /// Maximum memory in KiB.
    pub max_mem_kib: u64,
    /// Current memory in KiB.
    pub memory_kib: u64,
    /// Number of virtual CPUs.
    pub nr_virt_cpu: u32,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
}

/// `virNodeInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// CPU model string.
    pub model: String,
    /// Memory in KiB.
    pub memory_kib: u64,
    /// Active CPUs.
    pub cpus: u32,
    /// CPU frequency in MHz.
    pub mhz: u32,
    /// NUMA nodes.
    pub nodes: u32,
    /// Sockets per node.
    pub sockets: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

/// A security model of the host (`virSecurityModel`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SecurityModel {
    /// Model name; empty when there is none.
    pub model: String,
    /// Domain of interpretation.
    pub doi: String,
}

/// One typed value (libvirt's `virTypedParameter`), as domain statistics
/// and tunables carry them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TypedValue {
    /// Signed 32-bit.
    Int(i32),
    /// Unsigned 32-bit.
    UInt(u32),
    /// Signed 64-bit.
    LLong(i64),
    /// Unsigned 64-bit.
    ULLong(u64),
    /// Floating point.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// Text.
    String(String),
}

impl std::fmt::Display for TypedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypedValue::Int(v) => write!(f, "{v}"),
            TypedValue::UInt(v) => write!(f, "{v}"),
            TypedValue::LLong(v) => write!(f, "{v}"),
            TypedValue::ULLong(v) => write!(f, "{v}"),
            TypedValue::Double(v) => write!(f, "{v:.6}"),
            TypedValue::Bool(v) => write!(f, "{}", if *v { "yes" } else { "no" }),
            TypedValue::String(v) => f.write_str(v),
        }
    }
}

/// Named typed values (`virTypedParameterPtr` arrays), in order.
pub type TypedParams = Vec<(String, TypedValue)>;

flags! {
    /// `virDomainStatsTypes`: which groups `domstats` reports.
    StatsGroups {
        /// `state.*`.
        STATE = 1;
        /// `cpu.*`.
        CPU_TOTAL = 2;
        /// `balloon.*`.
        BALLOON = 4;
        /// `vcpu.*`.
        VCPU = 8;
        /// `net.*`.
        INTERFACE = 16;
        /// `block.*`.
        BLOCK = 32;
    }
}

/// `virDomainBlockStatsStruct`: I/O of one disk; -1 where unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BlockStats {
    /// Read requests.
    pub rd_req: i64,
    /// Bytes read.
    pub rd_bytes: i64,
    /// Write requests.
    pub wr_req: i64,
    /// Bytes written.
    pub wr_bytes: i64,
    /// Errors.
    pub errs: i64,
}

/// `virDomainInterfaceStatsStruct`, from the guest's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InterfaceStats {
    /// Bytes received.
    pub rx_bytes: i64,
    /// Packets received.
    pub rx_packets: i64,
    /// Receive errors.
    pub rx_errs: i64,
    /// Received packets dropped.
    pub rx_drop: i64,
    /// Bytes sent.
    pub tx_bytes: i64,
    /// Packets sent.
    pub tx_packets: i64,
    /// Send errors.
    pub tx_errs: i64,
    /// Sent packets dropped.
    pub tx_drop: i64,
}

impl InterfaceStats {
    /// The `net.N.*` traffic counters of `domstats` for interface `n`
    /// (unknown, negative counters as 0).
    pub fn domstats(&self, n: usize) -> Vec<(String, TypedValue)> {
        [
            ("rx.bytes", self.rx_bytes),
            ("rx.pkts", self.rx_packets),
            ("rx.errs", self.rx_errs),
            ("rx.drop", self.rx_drop),
            ("tx.bytes", self.tx_bytes),
            ("tx.pkts", self.tx_packets),
            ("tx.errs", self.tx_errs),
            ("tx.drop", self.tx_drop),
        ]
        .into_iter()
        .map(|(k, v)| (format!("net.{n}.{k}"), TypedValue::ULLong(v.max(0) as u64)))
        .collect()
    }
}

/// Where `virDomainInterfaceAddresses` looks for a guest's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceAddressSource {
    /// The DHCP leases of the virtual networks the guest is on.
    Lease = 0,
    /// The guest agent.
    Agent = 1,
    /// The host's ARP table.
    Arp = 2,
}

impl InterfaceAddressSource {
    /// The source with libvirt's number.
    pub fn from_u32(n: u32) -> Option<InterfaceAddressSource> {
        match n {
            0 => Some(InterfaceAddressSource::Lease),
            1 => Some(InterfaceAddressSource::Agent),
            2 => Some(InterfaceAddressSource::Arp),
            _ => None,
        }
    }

    /// virsh's name (`lease`, `agent`, `arp`).
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceAddressSource::Lease => "lease",
            InterfaceAddressSource::Agent => "agent",
            InterfaceAddressSource::Arp => "arp",
        }
    }
}

/// One address of a guest interface (`virDomainIPAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpAddress {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// The address.
    pub addr: String,
    /// Its prefix length.
    pub prefix: u32,
}

/// A guest interface with its addresses (`virDomainInterface`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainInterface {
    /// The interface's name (host device, or the guest's name for it).
    pub name: String,
    /// Its MAC address.
    pub hwaddr: Option<String>,
    /// Its addresses.
    pub addrs: Vec<IpAddress>,
}

/// What a process needs to run a command inside a running container
/// (libvirt's `virDomainLxcOpenNamespace` and `virDomainLxcEnterCGroup`).
#[derive(Debug)]
pub struct ContainerEntry {
    /// The container init's namespaces by kind (`user`, `ipc`, `uts`,
    /// `net`, `pid`, `mnt`), as open nsfs descriptors, in the order to enter
    /// them.
    pub namespaces: Vec<(String, std::os::fd::OwnedFd)>,
    /// The `cgroup.procs` files of the container's cgroups, to join first.
    pub cgroup_procs: Vec<std::path::PathBuf>,
}

/// A domain's security label (`virSecurityLabel`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SecurityLabel {
    /// The label.
    pub label: String,
    /// Whether it is enforced.
    pub enforcing: bool,
}

/// What `net-info` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    /// The handle.
    #[serde(flatten)]
    pub net: NetworkRef,
    /// Running.
    pub active: bool,
    /// Has a persistent definition.
    pub persistent: bool,
    /// Started with the host.
    pub autostart: bool,
    /// Bridge device name, if any.
    pub bridge: Option<String>,
}
