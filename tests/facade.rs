//! End-to-end tests of the `virtkit` facade: drivers linked in by feature,
//! a third-party driver linked in by one `use`, and the registry's errors.

// This line is what links the example plugin into this test binary.
use virtkit_plugin_hello as _;

use virtkit::{Connect, ErrorKind, registry};

#[cfg(feature = "test")]
#[tokio::test]
async fn test_driver_through_the_facade() {
    let conn = Connect::open("test:///default").await.unwrap();
    let doms = conn
        .list_domains(virtkit::ListFlags::empty())
        .await
        .unwrap();
    assert!(doms.iter().any(|d| d.name() == "test"));
    assert_eq!(conn.hypervisor_type().await.unwrap(), "TEST");
}

#[cfg(not(feature = "test"))]
#[tokio::test]
async fn without_the_feature_the_test_driver_is_named_as_missing() {
    let e = Connect::open("test:///default").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("driver 'test' is not compiled in (enable cargo feature `test`)"),
        "{e}"
    );
}

#[tokio::test]
async fn third_party_plugin_opens_through_the_facade() {
    let conn = Connect::open("hello:///").await.unwrap();
    assert_eq!(conn.hypervisor_type().await.unwrap(), "HELLO");
    let mut d = conn.lookup_domain("hello").await.unwrap();
    d.start(Default::default()).await.unwrap();
    assert_eq!(d.state().await.unwrap().0, virtkit::DomainState::Running);
    d.destroy().await.unwrap();
    // What the plugin does not implement is the typed unsupported error.
    let e = conn.networks().err().unwrap();
    assert!(e.is_unsupported(), "{e}");
    assert_eq!(
        e.detail(),
        &virtkit::ErrorDetail::Unsupported {
            driver: "hello".into(),
            operation: "networks".into()
        }
    );
    let e = d.suspend().await.unwrap_err();
    assert!(e.is_unsupported());
    assert!(e.to_string().contains("domain.suspend"), "{e}");
}

#[test]
fn no_two_drivers_claim_a_scheme() {
    let mut seen = std::collections::BTreeMap::new();
    for d in registry::drivers() {
        for s in d.schemes() {
            if let Some(other) = seen.insert(*s, d.name()) {
                panic!("scheme '{s}' claimed by both '{other}' and '{}'", d.name());
            }
        }
    }
    assert!(seen.contains_key("hello"));
    for name in virtkit::compiled_drivers() {
        assert!(
            registry::drivers().iter().any(|d| d.name() == *name),
            "feature-enabled driver '{name}' is not registered"
        );
    }
}

#[tokio::test]
async fn unknown_scheme_and_missing_feature_are_different_errors() {
    let e = Connect::open("foo:///x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoConnect);
    assert!(
        e.to_string()
            .contains("unknown URI scheme 'foo' (available: "),
        "{e}"
    );
    let e = Connect::open("bhyve:///system").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("driver 'bhyve' is not compiled in (enable cargo feature `bhyve`)"),
        "{e}"
    );
    let e = Connect::open("not a uri").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
}

#[test]
fn init_is_idempotent() {
    virtkit::init();
    virtkit::init();
    let n = registry::drivers()
        .iter()
        .filter(|d| d.name() == "test")
        .count();
    assert_eq!(n, usize::from(cfg!(feature = "test")));
}
