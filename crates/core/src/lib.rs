//! virtkit-core: what every virtkit driver and tool stands on.
//!
//! - [`Uri`]: libvirt connection URIs, parsed and printed back identically.
//! - [`Error`]: one error type whose kinds are libvirt's error codes.
//! - [`Driver`], [`Connection`], [`DomainOps`], [`NetworkOps`], [`EventOps`]:
//!   the async driver traits; [`register_driver!`] and [`registry`] route a
//!   URI scheme to its driver.
//! - [`Connect`] and [`Domain`]: the typed entry points for Rust programs.
//! - [`xml`]: a lossless XML tree; [`domain::DomainDef`]: a validating view
//!   of domain XML with libvirt's canonical output.
//! - [`network::NetworkDef`]: a validating view of network XML with
//!   libvirt's canonical output.
//! - [`event`]: lifecycle events with libvirt's codes, as async streams.
//! - [`MacAddr`], [`Uuid`]: identifiers with libvirt's rules.

pub mod connect;
pub mod domain;
pub mod driver;
pub mod error;
pub mod event;
pub mod files;
pub mod host;
pub mod ids;
pub mod network;
pub mod registry;
pub mod types;
pub mod uri;
pub mod xml;

pub use connect::{Connect, Domain, ShutdownOutcome, check_object_name};
pub use driver::{Connection, DomainOps, Driver, EventOps, InterfaceOps, NetworkOps, StorageOps};
pub use error::{Error, ErrorDetail, ErrorDomain, ErrorKind, Result, XmlLocation};
pub use event::{
    EventBus, EventFilter, EventStream, LifecycleEvent, LifecycleKind, NetworkEvent,
    NetworkEventBus, NetworkEventKind, NetworkEventStream,
};
pub use ids::{MacAddr, Uuid};
pub use types::*;
pub use uri::Uri;

/// Re-exported so drivers need no direct dependency on async-trait.
pub use async_trait::async_trait;
