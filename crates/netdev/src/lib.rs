//! virtkit-netdev: every host network device virtkit creates.
//!
//! - [`Bridge`]: bridges created **with their MAC** in the creating request
//!   (so neither the kernel's lowest-port-MAC rule nor udev's MAC policy can
//!   change it), MTU set afterwards, up/down, STP, forward delay, delete.
//!   Netlink first, the `SIOCBRADDBR` ioctls when the kernel answers
//!   EOPNOTSUPP ([`BridgeCreatePath`]).
//! - [`Tap`]: `/dev/net/tun` taps for QEMU, single or multiqueue, vnet header,
//!   persistent or held by their fds, owner/group, host MAC by libvirt's 0xFE
//!   rule, MTU from the bridge, attached before anything can see them; names
//!   from a `vnet%d` template with libvirt's monotonic counter.
//! - [`Veth`]: veth pairs for containers, moved into another namespace
//!   ([`Netdev::move_to_netns`]) and renamed there.
//! - Queries ([`Netdev::link`], [`Netdev::exists`], [`Netdev::bridge_ports`]...),
//!   traffic counters ([`counters::device_counters`])
//!   and generic changes (MAC, MTU, up/down, master, rename, device group,
//!   delete, [`Netdev::delete_group`] for bulk teardown).
//!
//! One [`Netdev`] handle holds one netlink connection (reused by every call;
//! bulk calls keep many requests in flight on it) and one worker thread for
//! the ioctls and fd closes that can block, so nothing blocks a tokio runtime
//! thread. A handle acts on the network namespace it was created in
//! ([`Netdev::new`]) or opened into ([`Netdev::open_in_netns`]).
//!
//! # Teardown of many taps
//! Unregistering a network device costs the kernel an RCU grace period, and
//! it does that one device at a time for RTM_DELLINK by name or index, for the
//! last `close()` of a non-persistent tap, and for pipelined requests alike
//! (all serialised under the RTNL lock): about 19-23 s for 1,000 taps on the
//! project's 2-core machines, measured for `ip -batch`, for closing the fds and
//! for pipelined RTM_DELLINKs. One RTM_DELLINK carrying IFLA_GROUP unregisters
//! a whole device group as one batch: 0.4-0.65 s for the same 1,000 taps. So
//! taps that go away together (a network's, a daemon's) should be created
//! with [`TapConfig::device_group`] and removed with [`Netdev::delete_group`];
//! closing their fds afterwards is then cheap. `scripts/bench-netdev` measures
//! all of this against `ip -batch`.
//!
//! # Privileges
//! Everything needs CAP_NET_ADMIN over the handle's network namespace: root,
//! or an unprivileged user inside a user+net namespace of its own
//! (`unshare --user --map-root-user --net`; the whole test suite passes that
//! way as uid 65534 where `/dev/net/tun` is world-accessible). A refusal is
//! [`NetdevError::PermissionDenied`], whose message names CAP_NET_ADMIN.
//!
//! # What runs where
//! Linux paths (netlink and ioctl bridges, taps, veths, namespaces) are tested
//! on this project's machines, each test in a network namespace of its own
//! (tests print `SKIPPED: <reason>` where they cannot create one, and fail
//! instead with `VIRTKIT_NETDEV_REQUIRE_PRIVILEGED=1`). The FreeBSD
//! path (module `bsd`, `SIOCIFCREATE2` + `SIOCSIFNAME` + `SIOCSIFLLADDR`) is
//! **not run here**, and not compiled for FreeBSD either (no FreeBSD target
//! library is installed); Linux test builds type-check it and unit-test its
//! ioctl numbers and structure layout.

#[cfg(any(target_os = "freebsd", test))]
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub mod bsd;
#[cfg(target_os = "linux")]
pub mod counters;
pub mod error;
pub mod name;

#[cfg(target_os = "linux")]
mod bridge;
#[cfg(target_os = "linux")]
mod ioctl;
#[cfg(target_os = "linux")]
mod link;
#[cfg(target_os = "linux")]
mod netns;
#[cfg(target_os = "linux")]
mod nl;
#[cfg(target_os = "linux")]
mod tap;
#[cfg(target_os = "linux")]
mod veth;
#[cfg(target_os = "linux")]
mod worker;

#[cfg(target_os = "linux")]
pub use bridge::{Bridge, BridgeCreatePath, dummy_nic_name};
pub use error::{NetdevError, Result};
#[cfg(target_os = "linux")]
pub use link::{BridgeState, LinkInfo, OperState, TunState};
pub use name::{IfName, MAX_NAME_LEN};
#[cfg(target_os = "linux")]
pub use netns::{NetnsRef, current_thread_netns};
#[cfg(target_os = "linux")]
pub use tap::{DEFAULT_TAP_TEMPLATE, MAX_QUEUES, Tap, TapConfig};
#[cfg(target_os = "linux")]
pub use veth::{Veth, VethConfig};
pub use virtkit_core::MacAddr;

#[cfg(target_os = "linux")]
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle on the host network devices of one network namespace. Cheap to
/// clone; clones share the netlink connection and the worker thread.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone)]
pub struct Netdev {
    pub(crate) inner: Arc<Inner>,
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) nl: rtnetlink::Handle,
    pub(crate) worker: worker::Worker,
    simulate_nl_bridge_unsupported: AtomicBool,
}

#[cfg(target_os = "linux")]
impl Netdev {
    /// Opens a handle on the calling thread's network namespace. Must be
    /// called inside a tokio runtime (the netlink connection runs as a task
    /// on it); the runtime needs the `net` driver enabled.
    pub fn new() -> Result<Netdev> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetdevError::InvalidArg(
                "Netdev::new must be called inside a tokio runtime".into(),
            ));
        }
        let nl = nl::connect().map_err(|e| {
            NetdevError::from_os("open a NETLINK_ROUTE socket".into(), "", false, e)
        })?;
        let worker = worker::Worker::spawn().map_err(|e| {
            NetdevError::from_os("start the netdev worker thread".into(), "", false, e)
        })?;
        Ok(Netdev {
            inner: Arc::new(Inner {
                nl,
                worker,
                simulate_nl_bridge_unsupported: AtomicBool::new(false),
            }),
        })
    }

    /// For tests of the fallback: makes this handle behave as if the kernel
    /// answered EOPNOTSUPP to netlink bridge creation, as kernels without
    /// rtnetlink bridge support do, so [`BridgeCreatePath::Auto`] takes the
    /// ioctl path. Affects this handle and its clones only.
    #[doc(hidden)]
    pub fn simulate_netlink_bridge_unsupported(&self, on: bool) {
        self.inner
            .simulate_nl_bridge_unsupported
            .store(on, Ordering::Relaxed);
    }

    pub(crate) fn simulating_netlink_bridge_unsupported(&self) -> bool {
        self.inner
            .simulate_nl_bridge_unsupported
            .load(Ordering::Relaxed)
    }
}
