//! Bridges: the seed regression (a bridge created with its MAC keeps it) on
//! both creation paths, its control case, MTU, STP, forward delay, fallback,
//! the leftover dummy nic, delete. Each test in its own network namespace.

mod common;

use std::time::Duration;

use common::{in_netns, link_names, mac};
use virtkit_netdev::{Bridge, BridgeCreatePath, MacAddr, Netdev, NetdevError, Tap, TapConfig};

/// The seed behaviour: bridge created with MAC `m` keeps exactly `m` while
/// ports with lower MACs come and go.
async fn keeps_its_mac(nd: Netdev, path: BridgeCreatePath) {
    let m = mac("52:54:00:ab:cd:ef");
    let br = Bridge::create_with(&nd, "virbr9", m, None, path)
        .await
        .unwrap();
    br.up().await.unwrap();
    assert_eq!(nd.mac("virbr9").await.unwrap(), m);

    // A guest tap through the normal path: host MAC fe:54:00:00:00:01.
    let guest = Tap::create(
        &nd,
        &TapConfig::new("vnet%d")
            .guest_mac(mac("52:54:00:00:00:01"))
            .bridge("virbr9"),
    )
    .await
    .unwrap();
    assert_eq!(
        nd.mac(guest.name()).await.unwrap(),
        mac("fe:54:00:00:00:01")
    );
    assert_eq!(nd.mac("virbr9").await.unwrap(), m);

    // Two taps with MACs far below M, attached one after the other.
    let mut low = Vec::new();
    for lm in ["00:00:00:00:00:01", "02:00:00:00:00:02"] {
        let mut t = Tap::create(&nd, &TapConfig::new("low%d")).await.unwrap();
        nd.set_mac(t.name(), mac(lm)).await.unwrap();
        t.attach("virbr9", None).await.unwrap();
        assert_eq!(nd.mac("virbr9").await.unwrap(), m, "after attaching {lm}");
        low.push(t);
    }
    assert_eq!(br.ports().await.unwrap().len(), 3);

    for t in &low {
        t.detach().await.unwrap();
        assert_eq!(
            nd.mac("virbr9").await.unwrap(),
            m,
            "after detaching {}",
            t.name()
        );
    }
    guest.delete().await.unwrap();
    for t in low {
        t.delete().await.unwrap();
    }
    assert!(br.ports().await.unwrap().is_empty());
    assert_eq!(
        nd.mac("virbr9").await.unwrap(),
        m,
        "after all ports are gone"
    );
}

#[test]
fn bridge_created_with_mac_keeps_it_after_tap_detach_netlink() {
    in_netns(
        "bridge_created_with_mac_keeps_it_after_tap_detach_netlink",
        |nd| keeps_its_mac(nd, BridgeCreatePath::Netlink),
    );
}

#[test]
fn bridge_created_with_mac_keeps_it_after_tap_detach_ioctl() {
    in_netns(
        "bridge_created_with_mac_keeps_it_after_tap_detach_ioctl",
        |nd| keeps_its_mac(nd, BridgeCreatePath::Ioctl),
    );
}

/// Control: the same steps on a bridge created without a MAC show the
/// kernel's lowest-port rule, so the test above can see the difference.
#[test]
fn bridge_without_mac_adopts_lowest_port_mac() {
    in_netns(
        "bridge_without_mac_adopts_lowest_port_mac",
        |nd| async move {
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            handle
                .link()
                .add(rtnetlink::LinkMessageBuilder::<rtnetlink::LinkBridge>::new("brctl").build())
                .execute()
                .await
                .unwrap();
            let random = nd.mac("brctl").await.unwrap();

            let mut fe = Tap::create(
                &nd,
                &TapConfig::new("ctl%d").guest_mac(mac("52:54:00:aa:bb:cc")),
            )
            .await
            .unwrap();
            fe.attach("brctl", None).await.unwrap();
            // The bridge drops its random MAC for its only port's.
            assert_ne!(random, mac("fe:54:00:aa:bb:cc"));
            assert_eq!(nd.mac("brctl").await.unwrap(), mac("fe:54:00:aa:bb:cc"));

            let mut low = Tap::create(&nd, &TapConfig::new("ctl%d")).await.unwrap();
            nd.set_mac(low.name(), mac("00:00:00:00:00:01"))
                .await
                .unwrap();
            low.attach("brctl", None).await.unwrap();
            assert_eq!(nd.mac("brctl").await.unwrap(), mac("00:00:00:00:00:01"));

            low.detach().await.unwrap();
            assert_eq!(nd.mac("brctl").await.unwrap(), mac("fe:54:00:aa:bb:cc"));
            drop(fe);
        },
    );
}

/// An MTU given at creation is set in a separate request and survives a
/// port with a smaller MTU; a port without an MTU takes the bridge's.
#[test]
fn bridge_mtu_set_after_creation_survives_smaller_port() {
    in_netns(
        "bridge_mtu_set_after_creation_survives_smaller_port",
        |nd| async move {
            let br = Bridge::create(&nd, "br9000", mac("52:54:00:00:90:00"), Some(9000))
                .await
                .unwrap();
            assert_eq!(nd.mtu("br9000").await.unwrap(), 9000);
            let small = Tap::create(&nd, &TapConfig::new("mtu%d").mtu(1500).bridge("br9000"))
                .await
                .unwrap();
            assert_eq!(nd.mtu(small.name()).await.unwrap(), 1500);
            assert_eq!(br.info().await.unwrap().mtu, 9000);
            let follow = Tap::create(&nd, &TapConfig::new("mtu%d").bridge("br9000"))
                .await
                .unwrap();
            assert_eq!(follow.mtu(), Some(9000));
            assert_eq!(nd.mtu(follow.name()).await.unwrap(), 9000);
            br.set_mtu(8000).await.unwrap();
            assert_eq!(nd.mtu("br9000").await.unwrap(), 8000);
        },
    );
}

/// Both creation paths leave the same observable state.
#[test]
fn ioctl_path_matches_netlink_path() {
    in_netns("ioctl_path_matches_netlink_path", |nd| async move {
        let m1 = mac("52:54:00:01:01:01");
        let m2 = mac("52:54:00:02:02:02");
        Bridge::create_with(&nd, "brnl", m1, Some(4000), BridgeCreatePath::Netlink)
            .await
            .unwrap();
        Bridge::create_with(&nd, "brio", m2, Some(4000), BridgeCreatePath::Ioctl)
            .await
            .unwrap();
        let a = nd.link("brnl").await.unwrap();
        let b = nd.link("brio").await.unwrap();
        assert_eq!((a.mac, b.mac), (Some(m1), Some(m2)));
        assert_eq!((a.mtu, b.mtu), (4000, 4000));
        assert_eq!(a.kind.as_deref(), Some("bridge"));
        assert_eq!(b.kind.as_deref(), Some("bridge"));
        assert!(!a.up && !b.up, "bridges are created down");
        assert_eq!(a.bridge.map(|s| s.stp), b.bridge.map(|s| s.stp));
    });
}

/// EOPNOTSUPP from netlink bridge creation falls back to the ioctls under
/// `Auto`, and is reported under `Netlink`.
#[test]
fn eopnotsupp_from_netlink_falls_back_to_ioctl() {
    in_netns(
        "eopnotsupp_from_netlink_falls_back_to_ioctl",
        |nd| async move {
            nd.simulate_netlink_bridge_unsupported(true);
            let m = mac("52:54:00:0f:0f:0f");
            let e = Bridge::create_with(&nd, "brfb", m, None, BridgeCreatePath::Netlink)
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::Unsupported { .. }), "{e:?}");
            assert!(!nd.exists("brfb").await.unwrap());

            let br = Bridge::create(&nd, "brfb", m, Some(1400)).await.unwrap();
            let info = br.info().await.unwrap();
            assert_eq!((info.mac, info.mtu), (Some(m), 1400));
            assert_eq!(info.kind.as_deref(), Some("bridge"));
        },
    );
}

#[test]
fn bridge_up_down_stp_forward_delay() {
    in_netns("bridge_up_down_stp_forward_delay", |nd| async move {
        let br = Bridge::create(&nd, "brstp", mac("52:54:00:05:05:05"), None)
            .await
            .unwrap();
        br.up().await.unwrap();
        assert!(br.info().await.unwrap().up);
        br.down().await.unwrap();
        assert!(!br.info().await.unwrap().up);

        // libvirt sets the delay first, then STP.
        br.set_forward_delay(Duration::from_secs(0)).await.unwrap();
        br.set_stp(false).await.unwrap();
        let st = br.info().await.unwrap().bridge.unwrap();
        assert!(!st.stp);
        assert_eq!(st.forward_delay, Duration::ZERO);

        br.set_forward_delay(Duration::from_secs(4)).await.unwrap();
        br.set_stp(true).await.unwrap();
        let st = br.info().await.unwrap().bridge.unwrap();
        assert!(st.stp);
        assert_eq!(st.forward_delay, Duration::from_secs(4));

        // With STP on, the kernel's range is 2..=30 s; the error says so.
        let e = br
            .set_forward_delay(Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("2 to 30 seconds"), "{e}");
        br.set_stp(false).await.unwrap();
        assert!(!br.info().await.unwrap().bridge.unwrap().stp);
    });
}

#[test]
fn bridge_delete_and_open() {
    in_netns("bridge_delete_and_open", |nd| async move {
        Bridge::create(&nd, "brdel", mac("52:54:00:06:06:06"), None)
            .await
            .unwrap();
        let br = Bridge::open(&nd, "brdel").await.unwrap();
        let t = Tap::create(&nd, &TapConfig::new("port%d").bridge("brdel"))
            .await
            .unwrap();
        br.delete().await.unwrap();
        assert!(!nd.exists("brdel").await.unwrap());
        // Ports survive their bridge, detached.
        assert_eq!(nd.master(t.name()).await.unwrap(), None);

        // open() refuses a non-bridge and a missing name.
        let e = Bridge::open(&nd, t.name()).await.unwrap_err();
        assert!(e.to_string().contains("not a bridge"), "{e}");
        let e = Bridge::open(&nd, "brdel").await.unwrap_err();
        assert!(matches!(e, NetdevError::NotFound { .. }), "{e:?}");
    });
}

/// A `<bridge>-nic` left by old libvirt is removed on network stop; virtkit
/// itself never makes one.
#[test]
fn leftover_dummy_nic_is_removed() {
    in_netns("leftover_dummy_nic_is_removed", |nd| async move {
        let br = Bridge::create(&nd, "virbr5", mac("52:54:00:07:07:07"), None)
            .await
            .unwrap();
        assert!(!br.delete_leftover_dummy_nic().await.unwrap());
        let old = Tap::create(
            &nd,
            &TapConfig::new("virbr5-nic")
                .persistent(true)
                .bridge("virbr5"),
        )
        .await
        .unwrap();
        drop(old); // persistent: stays after its fds close
        assert!(nd.exists("virbr5-nic").await.unwrap());
        assert!(br.delete_leftover_dummy_nic().await.unwrap());
        assert!(!nd.exists("virbr5-nic").await.unwrap());
    });
}

/// Invalid input is refused before anything is created.
#[test]
fn bridge_validation_creates_nothing() {
    in_netns("bridge_validation_creates_nothing", |nd| async move {
        let before = link_names(&nd).await;
        let good = mac("52:54:00:08:08:08");
        for (name, m) in [
            ("this-name-is-too-long", good),
            ("br/0", good),
            ("br 0", good),
            ("br%d", good),
            ("brm", MacAddr([0; 6])),
            ("brm", mac("01:00:5e:00:00:01")),
        ] {
            for path in [BridgeCreatePath::Netlink, BridgeCreatePath::Ioctl] {
                let e = Bridge::create_with(&nd, name, m, None, path)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        e,
                        NetdevError::InvalidName { .. } | NetdevError::InvalidMac { .. }
                    ),
                    "{name} {m}: {e:?}"
                );
            }
        }
        let e = Bridge::create(&nd, "brm", good, Some(10))
            .await
            .unwrap_err();
        assert!(matches!(e, NetdevError::InvalidArg(_)), "{e:?}");
        // An MTU the kernel refuses: the bridge made before it is removed again.
        for path in [BridgeCreatePath::Netlink, BridgeCreatePath::Ioctl] {
            let e = Bridge::create_with(&nd, "brm", good, Some(70000), path)
                .await
                .unwrap_err();
            assert!(e.report().contains("MTU 70000"), "{}", e.report());
        }
        assert_eq!(link_names(&nd).await, before);
    });
}

#[test]
fn bridge_name_taken_is_already_exists() {
    in_netns("bridge_name_taken_is_already_exists", |nd| async move {
        let m = mac("52:54:00:09:09:09");
        Bridge::create(&nd, "brdup", m, None).await.unwrap();
        for path in [BridgeCreatePath::Netlink, BridgeCreatePath::Ioctl] {
            let e = Bridge::create_with(&nd, "brdup", mac("52:54:00:09:09:0a"), None, path)
                .await
                .unwrap_err();
            assert!(
                matches!(e, NetdevError::AlreadyExists { .. }),
                "{path:?}: {e:?}"
            );
        }
        // The existing bridge is untouched.
        assert_eq!(nd.mac("brdup").await.unwrap(), m);
    });
}

/// Without CAP_NET_ADMIN the error says so, on both paths.
#[test]
fn bridge_without_cap_net_admin_says_so() {
    in_netns("bridge_without_cap_net_admin_says_so", |_| async move {
        common::drop_cap_net_admin();
        // A handle opened after dropping the capability, as an unprivileged caller would.
        let nd = Netdev::new().unwrap();
        for path in [BridgeCreatePath::Netlink, BridgeCreatePath::Ioctl] {
            let e = Bridge::create_with(&nd, "brperm", mac("52:54:00:0a:0a:0a"), None, path)
                .await
                .unwrap_err();
            assert!(
                matches!(e, NetdevError::PermissionDenied { .. }),
                "{path:?}: {e:?}"
            );
            assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
            let core: virtkit_core::Error = e.into();
            assert_eq!(core.kind(), virtkit_core::ErrorKind::OperationDenied);
        }
        let e = Tap::create(&nd, &TapConfig::new("perm%d"))
            .await
            .unwrap_err();
        assert!(matches!(e, NetdevError::PermissionDenied { .. }), "{e:?}");
    });
}

/// Over netlink the MAC is part of the creating request: the kernel's very
/// first announcement of the bridge already carries it, so no other MAC is
/// ever visible (to udev or anyone else).
#[test]
fn netlink_bridge_is_announced_with_its_mac() {
    use futures::StreamExt;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::packet_route::link::LinkAttribute;

    in_netns(
        "netlink_bridge_is_announced_with_its_mac",
        |nd| async move {
            let (conn, _h, mut events) =
                rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link]).unwrap();
            tokio::spawn(conn);
            let m = mac("52:54:00:0c:0c:01");
            Bridge::create_with(&nd, "brann", m, Some(1400), BridgeCreatePath::Netlink)
                .await
                .unwrap();
            let mut macs = Vec::new();
            while let Ok(Some((msg, _))) =
                tokio::time::timeout(Duration::from_millis(300), events.next()).await
            {
                let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = msg.payload
                else {
                    continue;
                };
                let named = l
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::IfName(n) if n == "brann"));
                for a in &l.attributes {
                    if let (true, LinkAttribute::Address(b)) = (named, a) {
                        macs.push(MacAddr(b.as_slice().try_into().unwrap()));
                    }
                }
            }
            assert!(!macs.is_empty(), "saw the bridge announced");
            assert!(macs.iter().all(|x| *x == m), "announced MACs: {macs:?}");
        },
    );
}
