//! Domain lifecycle events with libvirt's event and detail codes, delivered
//! as an async stream per connection and filterable by domain.

use std::pin::Pin;

use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::ids::Uuid;
use crate::types::DomainRef;

/// `virDomainEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(i32)]
pub enum LifecycleKind {
    /// A definition was added or changed.
    Defined = 0,
    /// A definition was removed.
    Undefined = 1,
    /// The domain started.
    Started = 2,
    /// The domain was paused.
    Suspended = 3,
    /// The domain was unpaused.
    Resumed = 4,
    /// The domain stopped.
    Stopped = 5,
    /// The guest shut down (the domain may still be active).
    Shutdown = 6,
    /// The guest suspended itself (S3/S4).
    PmSuspended = 7,
    /// The guest crashed.
    Crashed = 8,
}

const KIND_NAMES: &[(&str, LifecycleKind, &[&str])] = &[
    (
        "Defined",
        LifecycleKind::Defined,
        &["Added", "Updated", "Renamed", "Snapshot"],
    ),
    (
        "Undefined",
        LifecycleKind::Undefined,
        &["Removed", "Renamed"],
    ),
    (
        "Started",
        LifecycleKind::Started,
        &["Booted", "Migrated", "Restored", "Snapshot", "Event wakeup"],
    ),
    (
        "Suspended",
        LifecycleKind::Suspended,
        &[
            "Paused",
            "Migrated",
            "I/O Error",
            "Watchdog",
            "Restored",
            "Snapshot",
            "API error",
            "Post-copy",
            "Post-copy Error",
        ],
    ),
    (
        "Resumed",
        LifecycleKind::Resumed,
        &[
            "Unpaused",
            "Migrated",
            "Snapshot",
            "Post-copy",
            "Post-copy Error",
        ],
    ),
    (
        "Stopped",
        LifecycleKind::Stopped,
        &[
            "Shutdown",
            "Destroyed",
            "Crashed",
            "Migrated",
            "Saved",
            "Failed",
            "Snapshot",
        ],
    ),
    (
        "Shutdown",
        LifecycleKind::Shutdown,
        &[
            "Finished",
            "Finished after guest request",
            "Finished after host request",
        ],
    ),
    (
        "PMSuspended",
        LifecycleKind::PmSuspended,
        &["Memory", "Disk"],
    ),
    (
        "Crashed",
        LifecycleKind::Crashed,
        &["Panicked", "Crashloaded"],
    ),
];

impl LifecycleKind {
    /// libvirt's number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The kind for libvirt's number.
    pub fn from_code(code: i32) -> Option<LifecycleKind> {
        KIND_NAMES
            .iter()
            .map(|(_, k, _)| *k)
            .find(|k| k.code() == code)
    }

    /// The word virsh prints (`Started`).
    pub fn as_str(self) -> &'static str {
        KIND_NAMES[self as usize].0
    }

    /// The words virsh prints for a detail code (`Booted`).
    pub fn detail_str(self, detail: i32) -> &'static str {
        usize::try_from(detail)
            .ok()
            .and_then(|d| KIND_NAMES[self as usize].2.get(d))
            .copied()
            .unwrap_or("unknown")
    }
}

/// Detail codes, per kind (`virDomainEvent*DetailType`).
#[allow(missing_docs)]
pub mod detail {
    pub const DEFINED_ADDED: i32 = 0;
    pub const DEFINED_UPDATED: i32 = 1;
    pub const DEFINED_RENAMED: i32 = 2;
    pub const UNDEFINED_REMOVED: i32 = 0;
    pub const UNDEFINED_RENAMED: i32 = 1;
    pub const STARTED_BOOTED: i32 = 0;
    pub const STARTED_MIGRATED: i32 = 1;
    pub const STARTED_RESTORED: i32 = 2;
    pub const STARTED_WAKEUP: i32 = 4;
    pub const SUSPENDED_PAUSED: i32 = 0;
    pub const SUSPENDED_IOERROR: i32 = 2;
    pub const SUSPENDED_WATCHDOG: i32 = 3;
    pub const SUSPENDED_API_ERROR: i32 = 6;
    pub const RESUMED_UNPAUSED: i32 = 0;
    pub const STOPPED_SHUTDOWN: i32 = 0;
    pub const STOPPED_DESTROYED: i32 = 1;
    pub const STOPPED_CRASHED: i32 = 2;
    pub const STOPPED_MIGRATED: i32 = 3;
    pub const STOPPED_SAVED: i32 = 4;
    pub const STOPPED_FAILED: i32 = 5;
    pub const SHUTDOWN_FINISHED: i32 = 0;
    pub const SHUTDOWN_GUEST: i32 = 1;
    pub const SHUTDOWN_HOST: i32 = 2;
    pub const PMSUSPENDED_MEMORY: i32 = 0;
    pub const CRASHED_PANICKED: i32 = 0;
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    /// The domain it is about.
    pub domain: DomainRef,
    /// What happened.
    pub kind: LifecycleKind,
    /// libvirt's detail code for `kind`.
    pub detail: i32,
}

impl LifecycleEvent {
    /// A new event.
    pub fn new(domain: DomainRef, kind: LifecycleKind, detail: i32) -> LifecycleEvent {
        LifecycleEvent {
            domain,
            kind,
            detail,
        }
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events about this domain.
    pub domain: Option<Uuid>,
    /// Only events of these kinds (all when empty).
    pub kinds: Vec<LifecycleKind>,
}

impl EventFilter {
    /// Whether `ev` passes.
    pub fn matches(&self, ev: &LifecycleEvent) -> bool {
        self.domain.is_none_or(|u| u == ev.domain.uuid)
            && (self.kinds.is_empty() || self.kinds.contains(&ev.kind))
    }
}

/// An async stream of lifecycle events. It ends when the connection that
/// produced it is closed. A subscriber that falls more than the bus
/// capacity behind skips the oldest events rather than blocking the driver.
pub type EventStream = Pin<Box<dyn Stream<Item = LifecycleEvent> + Send>>;

/// A broadcast bus drivers use to publish events to their subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<LifecycleEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

impl EventBus {
    /// A bus keeping up to `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    /// Publishes an event to every current subscriber.
    pub fn emit(&self, ev: LifecycleEvent) {
        // No subscribers is not an error.
        let _ = self.tx.send(ev);
    }

    /// Whether anyone listens (lets drivers skip building events).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A stream of the events that pass `filter`, from now on.
    pub fn subscribe(&self, filter: EventFilter) -> EventStream {
        let rx = self.tx.subscribe();
        Box::pin(futures::stream::unfold(
            (rx, filter),
            |(mut rx, filter)| async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) if filter.matches(&ev) => return Some((ev, (rx, filter))),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

/// `virNetworkEventLifecycleType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(i32)]
pub enum NetworkEventKind {
    /// A definition was added or changed.
    Defined = 0,
    /// A definition was removed.
    Undefined = 1,
    /// The network started.
    Started = 2,
    /// The network stopped.
    Stopped = 3,
}

impl NetworkEventKind {
    /// libvirt's number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The word virsh's `net-event` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkEventKind::Defined => "Defined",
            NetworkEventKind::Undefined => "Undefined",
            NetworkEventKind::Started => "Started",
            NetworkEventKind::Stopped => "Stopped",
        }
    }
}

/// One network lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkEvent {
    /// The network it is about.
    pub network: crate::types::NetworkRef,
    /// What happened.
    pub kind: NetworkEventKind,
}

/// An async stream of network events; it ends when its bus is dropped.
pub type NetworkEventStream = Pin<Box<dyn Stream<Item = NetworkEvent> + Send>>;

/// A broadcast bus for network events.
#[derive(Debug, Clone)]
pub struct NetworkEventBus {
    tx: broadcast::Sender<NetworkEvent>,
}

impl Default for NetworkEventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        NetworkEventBus { tx }
    }
}

impl NetworkEventBus {
    /// Publishes an event to every current subscriber.
    pub fn emit(&self, network: crate::types::NetworkRef, kind: NetworkEventKind) {
        // No subscribers is not an error.
        let _ = self.tx.send(NetworkEvent { network, kind });
    }

    /// A stream of the events about `network` (all when `None`), from now on.
    pub fn subscribe(&self, network: Option<Uuid>) -> NetworkEventStream {
        let rx = self.tx.subscribe();
        Box::pin(futures::stream::unfold(
            (rx, network),
            |(mut rx, net)| async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) if net.is_none_or(|u| u == ev.network.uuid) => {
                            return Some((ev, (rx, net)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn dom(name: &str, u: u8) -> DomainRef {
        DomainRef {
            name: name.into(),
            uuid: Uuid([u; 16]),
            id: None,
        }
    }

    #[tokio::test]
    async fn filter_by_domain_and_kind() {
        let bus = EventBus::default();
        let mut all = bus.subscribe(EventFilter::default());
        let mut only_b = bus.subscribe(EventFilter {
            domain: Some(Uuid([2; 16])),
            kinds: vec![LifecycleKind::Stopped],
        });
        bus.emit(LifecycleEvent::new(dom("a", 1), LifecycleKind::Started, 0));
        bus.emit(LifecycleEvent::new(dom("b", 2), LifecycleKind::Started, 0));
        bus.emit(LifecycleEvent::new(
            dom("b", 2),
            LifecycleKind::Stopped,
            detail::STOPPED_DESTROYED,
        ));
        assert_eq!(all.next().await.unwrap().domain.name, "a");
        let ev = only_b.next().await.unwrap();
        assert_eq!((ev.kind, ev.detail), (LifecycleKind::Stopped, 1));
        drop(bus);
        assert_eq!(all.next().await.unwrap().domain.name, "b");
        assert_eq!(all.next().await.unwrap().kind, LifecycleKind::Stopped);
        assert!(all.next().await.is_none());
    }

    #[test]
    fn names_match_virsh() {
        assert_eq!(LifecycleKind::Stopped.as_str(), "Stopped");
        assert_eq!(LifecycleKind::Stopped.detail_str(1), "Destroyed");
        assert_eq!(LifecycleKind::PmSuspended.as_str(), "PMSuspended");
        assert_eq!(LifecycleKind::from_code(8), Some(LifecycleKind::Crashed));
        assert_eq!(
            LifecycleKind::Shutdown.detail_str(1),
            "Finished after guest request"
        );
    }
}
