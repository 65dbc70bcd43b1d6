//! virtkit: manage virtual machines and containers through libvirt's API,
//! XML vocabulary and command-line conventions, in Rust.
//!
//! This crate is the facade: it re-exports the public API of
//! [`virtkit_core`] and links in the drivers selected by cargo features
//! (`test` is on by default; see the workspace README for the list).
//!
//! ```
//! # async fn demo() -> virtkit::Result<()> {
//! # if !virtkit::compiled_drivers().contains(&"test") { return Ok(()); }
//! use virtkit::{Connect, ListFlags};
//!
//! let conn = Connect::open("test:///default").await?;
//! for dom in conn.list_domains(ListFlags::empty()).await? {
//!     let (state, _reason) = dom.state().await?;
//!     println!("{} {}", dom.name(), state.as_str());
//! }
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Drivers register themselves at link time. A Cargo dependency alone links
//! nothing, which is why this facade names every enabled driver crate below.
//! Third-party drivers depend on `virtkit-core` only and are linked in by the
//! application with one line, `use my_driver as _;`. Programs that lose
//! link-time registration (a C program linking a static library without
//! `--whole-archive`) call [`init`] once before opening connections.

pub use virtkit_core::*;

/// The test driver (`test:///default`, `test:///PATH.xml`).
#[cfg(feature = "test")]
pub use virtkit_driver_test as test_driver;

/// The QEMU/KVM driver (`qemu:///system`, `qemu:///session`, `qemu:///embed?root=DIR`).
#[cfg(feature = "qemu")]
pub use virtkit_driver_qemu as qemu_driver;

/// The LXC driver (`lxc:///system`, `lxc:///embed?root=DIR`).
#[cfg(feature = "lxc")]
pub use virtkit_driver_lxc as lxc_driver;

/// The remote driver (URIs with a transport or a host: virtkitd, libvirtd).
#[cfg(feature = "remote")]
pub use virtkit_remote as remote_driver;

/// The network driver (`network:///system`, `network:///embed?root=DIR`).
#[cfg(feature = "network")]
pub use virtkit_network as network_driver;

/// Registers every driver compiled into this build explicitly.
///
/// Only needed where link-time registration is lost (static libraries linked
/// without `--whole-archive`); harmless otherwise.
pub fn init() {
    #[cfg(feature = "test")]
    virtkit_core::registry::register(&virtkit_driver_test::TestDriver);
    #[cfg(feature = "remote")]
    virtkit_core::registry::register(&virtkit_remote::RemoteDriver);
    #[cfg(feature = "qemu")]
    virtkit_core::registry::register(&virtkit_driver_qemu::QemuDriver);
    #[cfg(feature = "network")]
    virtkit_core::registry::register(&virtkit_network::NetworkDriver);
    #[cfg(feature = "lxc")]
    virtkit_core::registry::register(&virtkit_driver_lxc::LxcDriver);
}

/// Names of the drivers this build of the facade was compiled with.
pub fn compiled_drivers() -> &'static [&'static str] {
    &[
        #[cfg(feature = "remote")]
        "remote",
        #[cfg(feature = "test")]
        "test",
        #[cfg(feature = "qemu")]
        "qemu",
        #[cfg(feature = "network")]
        "network",
        #[cfg(feature = "lxc")]
        "lxc",
    ]
}
