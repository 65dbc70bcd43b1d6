//! The driver registry: URI scheme -> driver.
//!
//! Drivers register at link time with [`register_driver!`](crate::register_driver)
//! (inventory). A Cargo dependency alone links nothing: the `virtkit` facade
//! names every enabled driver crate, and a program that uses a third-party
//! driver names it once (`use my_driver as _;`). Where link-time registration
//! is lost (a C program linking a staticlib without `--whole-archive`),
//! [`register`] adds drivers explicitly; the facade's `virtkit::init()` does
//! that for every compiled-in driver. dlopen plugins are not supported: a
//! plugin loaded at run time would fill its own copy of the registry.

use std::sync::{Arc, RwLock};

use crate::driver::{Connection, Driver};
use crate::error::{Error, ErrorDomain, ErrorKind, Result};
use crate::types::OpenFlags;
use crate::uri::Uri;

/// A link-time registration; built by [`register_driver!`](crate::register_driver).
#[derive(Clone, Copy)]
pub struct DriverRegistration(pub &'static dyn Driver);

impl std::fmt::Debug for DriverRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DriverRegistration({})", self.0.name())
    }
}

inventory::collect!(DriverRegistration);

#[doc(hidden)]
pub use inventory as __inventory;

/// Registers a driver at link time. The argument is a constant expression of
/// a type implementing [`Driver`](crate::Driver), usually a unit struct.
///
/// ```ignore
/// struct HelloDriver;
/// virtkit_core::register_driver!(HelloDriver);
/// ```
#[macro_export]
macro_rules! register_driver {
    ($driver:expr) => {
        $crate::registry::__inventory::submit! {
            $crate::registry::DriverRegistration(&$driver)
        }
    };
}

static EXPLICIT: RwLock<Vec<&'static dyn Driver>> = RwLock::new(Vec::new());

/// Drivers virtkit knows of, with their schemes and the cargo feature of the
/// `virtkit` facade that compiles them in.
pub const KNOWN_DRIVERS: &[(&str, &[&str], &str)] = &[
    ("test", &["test"], "test"),
    ("qemu", &["qemu"], "qemu"),
    ("lxc", &["lxc"], "lxc"),
    ("network", &["network"], "network"),
    ("xen", &["xen"], "xen"),
    ("esx", &["esx", "gsx", "vpx"], "esx"),
    (
        "vmware",
        &["vmwareplayer", "vmwarews", "vmwarefusion"],
        "vmware",
    ),
    ("hyperv", &["hyperv"], "hyperv"),
    ("vbox", &["vbox"], "vbox"),
    ("bhyve", &["bhyve"], "bhyve"),
    ("vz", &["vz", "parallels"], "vz"),
    ("remote", &["remote"], "remote"),
];

/// Adds a driver explicitly (for staticlib users and tests). Registering the
/// same driver name twice keeps the first.
pub fn register(driver: &'static dyn Driver) {
    let mut list = EXPLICIT.write().unwrap_or_else(|p| p.into_inner());
    if !list.iter().any(|d| d.name() == driver.name()) {
        list.push(driver);
    }
}

/// All registered drivers, sorted by name, each name once.
pub fn drivers() -> Vec<&'static dyn Driver> {
    let mut all: Vec<&'static dyn Driver> = inventory::iter::<DriverRegistration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.extend(
        EXPLICIT
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied(),
    );
    all.sort_by_key(|d| d.name());
    all.dedup_by_key(|d| d.name());
    all
}

/// Finds the driver that serves `uri`.
pub fn driver_for(uri: &Uri) -> Result<&'static dyn Driver> {
    let all = drivers();
    let scheme_driver = all
        .iter()
        .copied()
        .find(|d| d.schemes().contains(&uri.driver()));
    if uri.is_remote() && !scheme_driver.is_some_and(|d| d.handles_remote_uris()) {
        return all
            .iter()
            .copied()
            .find(|d| d.name() == "remote")
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NoConnect,
                    format!(
                        "'{uri}' names a remote host or transport, but the remote driver is not \
                         compiled in (enable cargo feature `remote`)"
                    ),
                )
                .in_domain(ErrorDomain::Uri)
            });
    }
    if let Some(d) = scheme_driver {
        return Ok(d);
    }
    if let Some((name, _, feature)) = KNOWN_DRIVERS
        .iter()
        .find(|(_, schemes, _)| schemes.contains(&uri.driver()))
    {
        return Err(Error::new(
            ErrorKind::NoConnect,
            format!("driver '{name}' is not compiled in (enable cargo feature `{feature}`)"),
        )
        .in_domain(ErrorDomain::Uri));
    }
    let mut available: Vec<&str> = all
        .iter()
        .flat_map(|d| d.schemes().iter().copied())
        .collect();
    available.sort_unstable();
    Err(Error::new(
        ErrorKind::NoConnect,
        format!(
            "unknown URI scheme '{}' (available: {})",
            uri.driver(),
            if available.is_empty() {
                "none: no driver is compiled in".to_string()
            } else {
                available.join(", ")
            }
        ),
    )
    .in_domain(ErrorDomain::Uri))
}

/// Opens a connection to `uri` through the driver that serves it.
pub async fn open(uri: &Uri, flags: OpenFlags) -> Result<Arc<dyn Connection>> {
    driver_for(uri)?.open(uri, flags).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct Fake;

    #[async_trait]
    impl Driver for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &["fake"]
        }
        async fn open(&self, _uri: &Uri, _flags: OpenFlags) -> Result<Arc<dyn Connection>> {
            Err(Error::internal("fake cannot open"))
        }
    }

    crate::register_driver!(Fake);

    #[test]
    fn lookup_distinguishes_unknown_from_not_compiled() {
        assert_eq!(
            driver_for(&Uri::parse("fake:///x").unwrap())
                .unwrap()
                .name(),
            "fake"
        );
        let e = driver_for(&Uri::parse("foo:///x").unwrap()).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::NoConnect);
        assert!(
            e.to_string()
                .contains("unknown URI scheme 'foo' (available: fake"),
            "{e}"
        );
        let e = driver_for(&Uri::parse("xen:///system").unwrap())
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("driver 'xen' is not compiled in (enable cargo feature `xen`)"),
            "{e}"
        );
        let e = driver_for(&Uri::parse("fake+ssh://h/x").unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("remote driver"), "{e}");
    }

    #[test]
    fn explicit_registration_does_not_duplicate() {
        static F: Fake = Fake;
        register(&F);
        register(&F);
        assert_eq!(drivers().iter().filter(|d| d.name() == "fake").count(), 1);
    }
}
