//! Taps for QEMU guests, created through `/dev/net/tun` as libvirt's
//! `virNetDevTapCreateInBridgePort` does.
//!
//! Per tap, in this order: open one `/dev/net/tun` fd per queue and
//! `TUNSETIFF` them (`IFF_TAP | IFF_NO_PI`, `IFF_MULTI_QUEUE` for more than one
//! queue, `IFF_VNET_HDR` when asked and the kernel has it; queue 0 with
//! `IFF_TUN_EXCL` so a taken name fails instead of attaching to someone else's
//! tap); owner, group and persistence; then one RTM_SETLINK with the host-side
//! MAC (the guest's with byte 0 = 0xFE, or 0xFA when it already is 0xFE), the
//! MTU (the network's, or the bridge's current one), the device group and the
//! bridge, and after its ACK a second one with IFF_UP. The kernel applies
//! IFLA_ADDRESS and IFLA_MTU before IFLA_MASTER (`do_setlink`), so the bridge
//! never sees the kernel's random MAC or another MTU; IFF_UP comes last, as in
//! libvirt, rather than relying on where a given kernel version puts flag
//! changes relative to IFLA_MASTER within one message.
//!
//! The fds are the tap: a non-persistent tap disappears when its last fd is
//! closed, which is how QEMU holds it. [`Tap::create_many`] creates a batch:
//! the tun ioctls in one worker job, then the netlink requests of up to
//! 128 taps in flight at once on the one socket.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;

use futures::{StreamExt, TryStreamExt};
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::RouteNetlinkMessage;
use virtkit_core::MacAddr;

use crate::error::{NetdevError, Result};
use crate::ioctl::{self, ControlSocket};
use crate::link::{check_mac, check_mtu};
use crate::name::{IfName, MAX_NAME_ATTEMPTS, next_candidate, validate_name};
use crate::{Netdev, nl};

/// The name template QEMU guest taps get by default, as in libvirt.
pub const DEFAULT_TAP_TEMPLATE: &str = "vnet%d";

/// Most queues a multiqueue tap may have (the kernel's MAX_TAP_QUEUES).
pub const MAX_QUEUES: usize = 256;

/// How to create a tap. Start from [`TapConfig::new`] and chain the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    name: IfName,
    guest_mac: Option<MacAddr>,
    queues: usize,
    vnet_hdr: bool,
    persistent: bool,
    hold_fds: bool,
    owner: Option<u32>,
    group: Option<u32>,
    bridge: Option<String>,
    mtu: Option<u32>,
    up: bool,
    device_group: Option<u32>,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig::new(DEFAULT_TAP_TEMPLATE)
    }
}

impl TapConfig {
    /// A single-queue, non-persistent tap named `name` (exact, or a template
    /// with `%d`), brought up, attached to nothing.
    pub fn new(name: impl Into<IfName>) -> TapConfig {
        TapConfig {
            name: name.into(),
            guest_mac: None,
            queues: 1,
            vnet_hdr: false,
            persistent: false,
            hold_fds: true,
            owner: None,
            group: None,
            bridge: None,
            mtu: None,
            up: true,
            device_group: None,
        }
    }

    /// The guest's MAC; the tap gets [`MacAddr::host_tap_mac`] of it.
    pub fn guest_mac(mut self, mac: MacAddr) -> Self {
        self.guest_mac = Some(mac);
        self
    }

    /// Number of queues (one fd each); more than one makes a multiqueue tap.
    pub fn queues(mut self, n: usize) -> Self {
        self.queues = n;
        self
    }

    /// Ask for IFF_VNET_HDR (used only if the kernel supports it; see [`Tap::vnet_hdr`]).
    pub fn vnet_hdr(mut self, on: bool) -> Self {
        self.vnet_hdr = on;
        self
    }

    /// Keep the device after the fds close (TUNSETPERSIST).
    pub fn persistent(mut self, on: bool) -> Self {
        self.persistent = on;
        self
    }

    /// Whether to keep the fds (default: yes). `false` closes them as soon as
    /// the device exists, before it is configured, and needs
    /// [`persistent`](Self::persistent): the tap is then set up for someone
    /// else to open later, e.g. an unprivileged QEMU allowed in by
    /// [`owner`](Self::owner). Such a tap has no carrier until opened, which
    /// also makes it much cheaper for the kernel to attach (no bridge port
    /// state changes, no IPv6 link-local setup yet).
    pub fn hold_fds(mut self, on: bool) -> Self {
        self.hold_fds = on;
        self
    }

    /// User allowed to attach to the tap without CAP_NET_ADMIN (TUNSETOWNER).
    pub fn owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }

    /// Group allowed to attach to the tap (TUNSETGROUP).
    pub fn group(mut self, gid: u32) -> Self {
        self.group = Some(gid);
        self
    }

    /// Attach to this bridge.
    pub fn bridge(mut self, bridge: impl Into<String>) -> Self {
        self.bridge = Some(bridge.into());
        self
    }

    /// MTU to give the tap; without one, a bridged tap takes the bridge's MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Whether to bring the tap up (default: yes).
    pub fn up(mut self, on: bool) -> Self {
        self.up = on;
        self
    }

    /// Put the tap into this device group, so that all taps of a network can
    /// be deleted with one [`Netdev::delete_group`].
    pub fn device_group(mut self, group: u32) -> Self {
        self.device_group = Some(group);
        self
    }

    fn validate(&self) -> Result<()> {
        self.name.validate()?;
        if self.queues == 0 || self.queues > MAX_QUEUES {
            return Err(NetdevError::InvalidArg(format!(
                "a tap needs 1 to {MAX_QUEUES} queues, not {}",
                self.queues
            )));
        }
        if !self.hold_fds && !self.persistent {
            return Err(NetdevError::InvalidArg(format!(
                "tap '{}': not keeping the fds needs a persistent tap, or it would vanish at once",
                self.name.as_str()
            )));
        }
        if let Some(mac) = self.guest_mac {
            check_mac(self.name.as_str(), mac)?;
        }
        if let Some(m) = self.mtu {
            check_mtu(m)?;
        }
        if let Some(b) = &self.bridge {
            validate_name(b)?;
        }
        Ok(())
    }
}

/// A tap device and the fds that hold it (one per queue).
///
/// Dropping a `Tap` closes its fds (on the handle's worker thread), which
/// removes a non-persistent tap. Hand the fds to QEMU with [`Tap::into_fds`].
#[derive(Debug)]
pub struct Tap {
    nd: Netdev,
    name: String,
    fds: Vec<OwnedFd>,
    persistent: bool,
    vnet_hdr: bool,
    mac: Option<MacAddr>,
    mtu: Option<u32>,
}

/// What the worker made for one config.
struct RawTap {
    name: String,
    fds: Vec<OwnedFd>,
    vnet_hdr: bool,
}

impl Tap {
    /// Creates one tap as `cfg` says. Nothing is left behind on error.
    pub async fn create(nd: &Netdev, cfg: &TapConfig) -> Result<Tap> {
        let mut taps = Tap::create_many(nd, std::slice::from_ref(cfg)).await?;
        Ok(taps.remove(0))
    }

    /// Creates a batch of taps: the tun ioctls in one worker job, then the
    /// netlink setup of up to 128 taps in flight at once on the handle's
    /// socket. All or nothing: on any error every tap of the batch is removed
    /// again.
    pub async fn create_many(nd: &Netdev, cfgs: &[TapConfig]) -> Result<Vec<Tap>> {
        for c in cfgs {
            c.validate()?;
        }
        // Look each bridge up once, before creating anything.
        let mut bridges: HashMap<String, (u32, u32)> = HashMap::new();
        for b in cfgs.iter().filter_map(|c| c.bridge.as_deref()) {
            if !bridges.contains_key(b) {
                let info = nd.link(b).await?;
                if info.kind.as_deref() != Some("bridge") {
                    return Err(NetdevError::InvalidArg(format!(
                        "cannot attach a tap to '{b}': it is not a bridge (kind {})",
                        info.kind.as_deref().unwrap_or("unknown")
                    )));
                }
                bridges.insert(b.to_string(), (info.index, info.mtu));
            }
        }

        let specs: Vec<TapConfig> = cfgs.to_vec();
        let raw = nd
            .inner
            .worker
            .run(move |ctl| create_tuns(ctl, &specs))
            .await
            .map_err(|e| NetdevError::from_os("create taps".into(), "", true, e))??;

        let mut taps: Vec<Tap> = raw
            .into_iter()
            .zip(cfgs)
            .map(|(r, c)| Tap {
                nd: nd.clone(),
                name: r.name,
                fds: r.fds,
                persistent: c.persistent,
                vnet_hdr: r.vnet_hdr,
                mac: c.guest_mac.map(|m| m.host_tap_mac()),
                mtu: c
                    .mtu
                    .or_else(|| c.bridge.as_ref().map(|b| bridges[b.as_str()].1)),
            })
            .collect();

        // Two requests per tap, in libvirt's order: everything up to and
        // including the bridge, then IFF_UP. Taps are independent of each
        // other, so up to WINDOW of them are in flight at once.
        let requests: Vec<_> = taps
            .iter()
            .zip(cfgs)
            .map(|(t, c)| {
                let mut b = LinkUnspec::new_with_name(&t.name);
                let mut any = false;
                if let Some(mac) = t.mac {
                    b = b.address(mac.0.to_vec());
                    any = true;
                }
                if let Some(m) = t.mtu {
                    b = b.mtu(m);
                    any = true;
                }
                if let Some(g) = c.device_group {
                    b = b.link_group(g);
                    any = true;
                }
                if let Some(br) = &c.bridge {
                    b = b.controller(bridges[br.as_str()].0);
                    any = true;
                }
                let setup = any.then(|| b.build());
                let up =
                    c.up.then(|| LinkUnspec::new_with_name(&t.name).up().build());
                (t.name.clone(), c.clone(), setup, up)
            })
            .collect();

        let handle = nd.inner.nl.clone();
        let outcome = futures::stream::iter(requests)
            .map(|(name, c, setup, up)| {
                let handle = handle.clone();
                async move {
                    if !c.hold_fds {
                        // The fds were just closed, so the tap lost its carrier,
                        // but the kernel updates the operstate lazily (linkwatch,
                        // up to a second later). RTM_GETLINK syncs it now;
                        // otherwise the bridge would enable the port on IFF_UP
                        // and disable it again a moment later.
                        let msg = LinkUnspec::new_with_name(&name).build();
                        nl::get_link(&handle, msg).await.map_err(|e| {
                            NetdevError::from_os(
                                format!("look up new tap '{name}'"),
                                &name,
                                false,
                                e,
                            )
                        })?;
                    }
                    for msg in [setup, up].into_iter().flatten() {
                        nl::ack(&handle, RouteNetlinkMessage::SetLink(msg), nl::CHANGE)
                            .await
                            .map_err(|e| {
                                NetdevError::from_os(setup_action(&name, &c), &name, false, e)
                            })?;
                    }
                    Ok::<(), NetdevError>(())
                }
            })
            .buffer_unordered(nl::WINDOW)
            .try_collect::<Vec<()>>()
            .await;

        if let Err(e) = outcome {
            // Undo the whole batch. Taps still held: clear persistence so that
            // closing the fds removes them. Persistent taps whose fds are
            // already closed: delete them by name.
            let held: Vec<(bool, Vec<OwnedFd>)> = taps
                .iter_mut()
                .filter(|t| !t.fds.is_empty())
                .map(|t| (t.persistent, std::mem::take(&mut t.fds)))
                .collect();
            let unheld: Vec<String> = cfgs
                .iter()
                .zip(&taps)
                .filter(|(c, _)| !c.hold_fds)
                .map(|(_, t)| t.name.clone())
                .collect();
            let _ = nd
                .inner
                .worker
                .run(move |_| {
                    for (persistent, fds) in held {
                        if persistent && let Some(fd) = fds.first() {
                            let _ = ioctl::tun_set_persist(fd, false);
                        }
                        drop(fds);
                    }
                })
                .await;
            let _ = futures::stream::iter(unheld)
                .map(|name| {
                    let nd = nd.clone();
                    async move { nd.delete(&name).await }
                })
                .buffer_unordered(nl::WINDOW)
                .collect::<Vec<_>>()
                .await;
            return Err(e);
        }
        Ok(taps)
    }

    /// The tap's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue fds, in queue order (none for a tap made with
    /// [`TapConfig::hold_fds`]`(false)`).
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// Gives up the fds (for QEMU's `-netdev tap,fds=...`). They are
    /// close-on-exec: clear that on the ones passed to the child. A
    /// non-persistent tap now lives exactly as long as these fds.
    pub fn into_fds(mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// Whether the device outlives its fds.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Whether IFF_VNET_HDR is on (asked for and supported by the kernel).
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The host-side MAC given to the tap, if a guest MAC was configured.
    pub fn mac(&self) -> Option<MacAddr> {
        self.mac
    }

    /// The MTU given to the tap (QEMU's `host_mtu`), if one was set.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// Attaches the tap to `bridge` with `mtu` or the bridge's MTU (libvirt's
    /// `virNetDevTapAttachBridge`). Returns the MTU used.
    pub async fn attach(&mut self, bridge: &str, mtu: Option<u32>) -> Result<u32> {
        let m = self.nd.attach_to_bridge(&self.name, bridge, mtu).await?;
        self.mtu = Some(m);
        Ok(m)
    }

    /// Takes the tap out of its bridge.
    pub async fn detach(&self) -> Result<()> {
        self.nd.detach_from_bridge(&self.name).await
    }

    /// Deletes the device (even if copies of its fds are open elsewhere) and
    /// closes the fds.
    pub async fn delete(mut self) -> Result<()> {
        let res = self.nd.delete(&self.name).await;
        let fds = std::mem::take(&mut self.fds);
        let _ = self.nd.inner.worker.run(move |_| drop(fds)).await;
        res
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if !self.fds.is_empty() {
            let fds = std::mem::take(&mut self.fds);
            // The last close of a non-persistent tap unregisters it, which
            // waits for the RTNL lock and an RCU grace period: not on a
            // runtime thread.
            self.nd.inner.worker.run_detached(move |_| drop(fds));
        }
    }
}

fn setup_action(name: &str, c: &TapConfig) -> String {
    let mut parts = Vec::new();
    if let Some(m) = c.guest_mac {
        parts.push(format!("MAC {}", m.host_tap_mac()));
    }
    if let Some(m) = c.mtu {
        parts.push(format!("MTU {m}"));
    }
    if let Some(b) = &c.bridge {
        parts.push(format!("bridge '{b}'"));
    }
    if let Some(g) = c.device_group {
        parts.push(format!("device group {g}"));
    }
    if c.up {
        parts.push("up".into());
    }
    format!("set up tap '{name}' ({})", parts.join(", "))
}

/// Worker side: the tun ioctls for every config, all or nothing.
fn create_tuns(_ctl: &ControlSocket, cfgs: &[TapConfig]) -> Result<Vec<RawTap>> {
    let mut out: Vec<(bool, RawTap)> = Vec::with_capacity(cfgs.len());
    for c in cfgs {
        match create_tun(c) {
            Ok(t) => out.push((c.persistent, t)),
            Err(e) => {
                for (persistent, t) in out {
                    if persistent && let Some(fd) = t.fds.first() {
                        let _ = ioctl::tun_set_persist(fd, false);
                    }
                }
                return Err(e);
            }
        }
    }
    // Fds the caller does not keep are closed only now, after the whole
    // batch exists, so that the rollback above can still reach every tap.
    Ok(out
        .into_iter()
        .zip(cfgs)
        .map(|((_, mut t), c)| {
            if !c.hold_fds {
                t.fds.clear();
            }
            t
        })
        .collect())
}

fn create_tun(c: &TapConfig) -> Result<RawTap> {
    let what = c.name.as_str();
    let first = ioctl::open_tun().map_err(|source| NetdevError::NoTun {
        action: format!("create tap '{what}'"),
        source,
    })?;
    // Old kernels lack TUNGETFEATURES; then they lack the optional flags too.
    let features = ioctl::tun_features(&first).unwrap_or(0);
    let mut flags = ioctl::IFF_TAP | ioctl::IFF_NO_PI;
    if c.queues > 1 {
        if features & ioctl::IFF_MULTI_QUEUE == 0 {
            return Err(NetdevError::Unsupported {
                action: format!("create multiqueue tap '{what}' with {} queues", c.queues),
                source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
            });
        }
        flags |= ioctl::IFF_MULTI_QUEUE;
    }
    // Like libvirt: vnet headers are an optimisation, used only if supported.
    let vnet_hdr = c.vnet_hdr && features & ioctl::IFF_VNET_HDR != 0;
    if vnet_hdr {
        flags |= ioctl::IFF_VNET_HDR;
    }

    // Queue 0 creates the device; IFF_TUN_EXCL makes a taken name fail with
    // EBUSY instead of silently attaching to someone else's tap.
    let mut attempts = 0;
    let name = loop {
        let candidate = match &c.name {
            IfName::Exact(n) => n.clone(),
            IfName::Template(t) => next_candidate(t)?,
        };
        match ioctl::tun_set_iff(&first, &candidate, flags | ioctl::IFF_TUN_EXCL) {
            Ok(actual) => break actual,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST))
                    && matches!(c.name, IfName::Template(_))
                    && attempts < MAX_NAME_ATTEMPTS =>
            {
                attempts += 1;
            }
            Err(e) => {
                return Err(NetdevError::from_os(
                    format!("create tap '{candidate}' (TUNSETIFF)"),
                    &candidate,
                    true,
                    e,
                ));
            }
        }
    };

    let mut fds = vec![first];
    let finish = |fds: &mut Vec<OwnedFd>| -> std::result::Result<(), (String, io::Error)> {
        for q in 1..c.queues {
            let attach = || {
                let fd = ioctl::open_tun()?;
                ioctl::tun_set_iff(&fd, &name, flags)?;
                Ok(fd)
            };
            fds.push(attach().map_err(|e| (format!("attach queue {q} of tap '{name}'"), e))?);
        }
        if let Some(uid) = c.owner {
            ioctl::tun_set_owner(&fds[0], uid).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                    " (the uid must exist in the caller's user namespace)"
                } else {
                    ""
                };
                (format!("make uid {uid} the owner of tap '{name}'{hint}"), e)
            })?;
        }
        if let Some(gid) = c.group {
            ioctl::tun_set_group(&fds[0], gid).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                    " (the gid must exist in the caller's user namespace)"
                } else {
                    ""
                };
                (format!("make gid {gid} the group of tap '{name}'{hint}"), e)
            })?;
        }
        if c.persistent {
            ioctl::tun_set_persist(&fds[0], true)
                .map_err(|e| (format!("make tap '{name}' persistent"), e))?;
        }
        Ok(())
    };
    if let Err((action, e)) = finish(&mut fds) {
        // Not yet persistent (that is the last step), so closing removes it.
        drop(fds);
        return Err(NetdevError::from_os(action, &name, false, e));
    }
    Ok(RawTap {
        name,
        fds,
        vnet_hdr,
    })
}
