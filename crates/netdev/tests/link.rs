//! Device queries and generic changes: exists, index, MAC, MTU, master,
//! bridge ports, operstate, listing, groups; handles outside a runtime.

mod common;

use std::time::{Duration, Instant};

use common::{in_netns, mac};
use virtkit_netdev::{Bridge, Netdev, NetdevError, OperState, Tap, TapConfig, Veth, VethConfig};

#[test]
fn queries_report_what_the_kernel_has() {
    in_netns("queries_report_what_the_kernel_has", |nd| async move {
        assert!(nd.exists("lo").await.unwrap());
        assert!(!nd.exists("nothere0").await.unwrap());
        assert_eq!(
            nd.ifindex("lo").await.unwrap(),
            1,
            "lo is index 1 in a fresh namespace"
        );
        let e = nd.mtu("nothere0").await.unwrap_err();
        assert!(matches!(e, NetdevError::NotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("'nothere0'"), "{e}");

        let m = mac("52:54:00:30:30:30");
        Bridge::create(&nd, "brq", m, Some(1600)).await.unwrap();
        let idx = nd.ifindex("brq").await.unwrap();
        let by_index = nd.link_by_index(idx).await.unwrap();
        assert_eq!(by_index.name, "brq");
        assert_eq!(nd.mac("brq").await.unwrap(), m);
        assert_eq!(nd.mtu("brq").await.unwrap(), 1600);
        assert_eq!(nd.master("brq").await.unwrap(), None);
        assert_eq!(nd.operstate("brq").await.unwrap(), OperState::Down);

        let t1 = Tap::create(&nd, &TapConfig::new("qa%d").bridge("brq"))
            .await
            .unwrap();
        let t2 = Tap::create(&nd, &TapConfig::new("qb%d").bridge("brq"))
            .await
            .unwrap();
        assert_eq!(nd.master(t1.name()).await.unwrap().as_deref(), Some("brq"));
        let mut want = vec![t1.name().to_string(), t2.name().to_string()];
        want.sort();
        assert_eq!(nd.bridge_ports("brq").await.unwrap(), want);
        let e = nd.bridge_ports(t1.name()).await.unwrap_err();
        assert!(e.to_string().contains("not a bridge"), "{e}");

        let names: Vec<String> = nd
            .links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        for n in ["lo", "brq", t1.name(), t2.name()] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert_eq!(nd.link("lo").await.unwrap().kind, None);
    });
}

#[test]
fn operstate_follows_carrier() {
    in_netns("operstate_follows_carrier", |nd| async move {
        let v = Veth::create(&nd, &VethConfig::new("oph0", "opp0"))
            .await
            .unwrap();
        assert_eq!(nd.operstate("opp0").await.unwrap(), OperState::Down);
        nd.set_up(&v.peer).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while nd.operstate(&v.host).await.unwrap() != OperState::Up {
            assert!(Instant::now() < deadline, "host end never came up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        nd.set_down(&v.host).await.unwrap();
        assert_eq!(nd.operstate(&v.host).await.unwrap(), OperState::Down);
        assert!(!nd.link(&v.host).await.unwrap().up);
    });
}

#[test]
fn generic_changes_mac_mtu_group_rename_delete() {
    in_netns(
        "generic_changes_mac_mtu_group_rename_delete",
        |nd| async move {
            let t = Tap::create(&nd, &TapConfig::new("gen0").persistent(true).up(false))
                .await
                .unwrap();
            nd.set_mac("gen0", mac("52:54:00:40:40:40")).await.unwrap();
            nd.set_mtu("gen0", 1234).await.unwrap();
            nd.set_group("gen0", 9).await.unwrap();
            let info = nd.link("gen0").await.unwrap();
            assert_eq!(
                (info.mac, info.mtu, info.group),
                (Some(mac("52:54:00:40:40:40")), 1234, 9)
            );
            let e = nd
                .set_mac("gen0", mac("ff:ff:ff:ff:ff:ff"))
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::InvalidMac { .. }), "{e:?}");
            drop(t);
            nd.rename("gen0", "gen1").await.unwrap();
            assert!(nd.exists("gen1").await.unwrap());
            let e = nd.rename("gen1", "lo").await.unwrap_err();
            assert!(matches!(e, NetdevError::AlreadyExists { .. }), "{e:?}");
            nd.delete_group(9).await.unwrap();
            assert!(!nd.exists("gen1").await.unwrap());
            let e = nd.delete("gen1").await.unwrap_err();
            assert!(matches!(e, NetdevError::NotFound { .. }), "{e:?}");
        },
    );
}

#[test]
fn handle_needs_a_tokio_runtime() {
    let e = Netdev::new().unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
    let core: virtkit_core::Error = e.into();
    assert_eq!(core.kind(), virtkit_core::ErrorKind::InvalidArg);
}
