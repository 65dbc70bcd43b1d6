//! Taps: MAC rule, MTU, queues, vnet header, persistence, owner/group, name
//! allocation, attach/detach, batches, validation. Each test in its own
//! network namespace.

mod common;

use std::time::{Duration, Instant};

use common::{in_netns, link_names, mac};
use virtkit_netdev::{Bridge, Netdev, NetdevError, Tap, TapConfig};

async fn wait_gone(nd: &Netdev, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while nd.exists(name).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "'{name}' still exists after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn tap_mac_is_guest_mac_with_fe_or_fa() {
    in_netns("tap_mac_is_guest_mac_with_fe_or_fa", |nd| async move {
        let a = Tap::create(
            &nd,
            &TapConfig::new("mac%d").guest_mac(mac("52:54:00:11:22:33")),
        )
        .await
        .unwrap();
        assert_eq!(a.mac(), Some(mac("fe:54:00:11:22:33")));
        assert_eq!(nd.mac(a.name()).await.unwrap(), mac("fe:54:00:11:22:33"));
        let b = Tap::create(
            &nd,
            &TapConfig::new("mac%d").guest_mac(mac("fe:54:00:11:22:33")),
        )
        .await
        .unwrap();
        assert_eq!(nd.mac(b.name()).await.unwrap(), mac("fa:54:00:11:22:33"));
    });
}

/// The host MAC and MTU are in place before the tap joins the bridge: a
/// bridge without a MAC of its own (the kernel's lowest-port rule) takes the
/// tap's fe: address, never the random one the tap was born with.
#[test]
fn tap_mac_and_mtu_are_set_before_attaching() {
    in_netns(
        "tap_mac_and_mtu_are_set_before_attaching",
        |nd| async move {
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            handle
                .link()
                .add(
                    rtnetlink::LinkMessageBuilder::<rtnetlink::LinkBridge>::new("brlow")
                        .mtu(1400)
                        .build(),
                )
                .execute()
                .await
                .unwrap();
            let t = Tap::create(
                &nd,
                &TapConfig::new("early%d")
                    .guest_mac(mac("00:00:00:00:00:05"))
                    .bridge("brlow"),
            )
            .await
            .unwrap();
            assert_eq!(nd.mac("brlow").await.unwrap(), mac("fe:00:00:00:00:05"));
            assert_eq!(t.mtu(), Some(1400));
            assert_eq!(nd.mtu(t.name()).await.unwrap(), 1400);
            assert_eq!(nd.master(t.name()).await.unwrap().as_deref(), Some("brlow"));
            assert!(nd.link(t.name()).await.unwrap().up);
        },
    );
}

#[test]
fn non_persistent_tap_disappears_when_its_fds_close() {
    in_netns(
        "non_persistent_tap_disappears_when_its_fds_close",
        |nd| async move {
            let t = Tap::create(&nd, &TapConfig::new("np%d")).await.unwrap();
            let name = t.name().to_string();
            let st = nd.link(&name).await.unwrap().tun.unwrap();
            assert!(!st.persistent);
            drop(t);
            wait_gone(&nd, &name).await;

            // Handing the fds over keeps it alive exactly as long as they are open.
            let t = Tap::create(&nd, &TapConfig::new("np%d")).await.unwrap();
            let name = t.name().to_string();
            let fds = t.into_fds();
            assert!(nd.exists(&name).await.unwrap());
            tokio::task::spawn_blocking(move || drop(fds))
                .await
                .unwrap();
            wait_gone(&nd, &name).await;
        },
    );
}

#[test]
fn persistent_tap_stays_until_deleted() {
    in_netns("persistent_tap_stays_until_deleted", |nd| async move {
        let t = Tap::create(&nd, &TapConfig::new("pt%d").persistent(true))
            .await
            .unwrap();
        let name = t.name().to_string();
        assert!(t.is_persistent());
        drop(t);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let st = nd.link(&name).await.unwrap().tun.unwrap();
        assert!(st.persistent);
        nd.delete(&name).await.unwrap();
        assert!(!nd.exists(&name).await.unwrap());

        // Tap::delete removes it even while the fds are open.
        let t = Tap::create(&nd, &TapConfig::new("pt%d").persistent(true))
            .await
            .unwrap();
        let name = t.name().to_string();
        t.delete().await.unwrap();
        assert!(!nd.exists(&name).await.unwrap());
    });
}

#[test]
fn multiqueue_tap_with_vnet_hdr_has_one_fd_per_queue() {
    in_netns(
        "multiqueue_tap_with_vnet_hdr_has_one_fd_per_queue",
        |nd| async move {
            let t = Tap::create(&nd, &TapConfig::new("mq%d").queues(4).vnet_hdr(true))
                .await
                .unwrap();
            assert_eq!(t.fds().len(), 4);
            assert!(t.vnet_hdr(), "kernel supports IFF_VNET_HDR");
            let st = nd.link(t.name()).await.unwrap().tun.unwrap();
            assert!(st.multi_queue && st.vnet_hdr);
            assert_eq!(st.queues, Some(4));

            let single = Tap::create(&nd, &TapConfig::new("mq%d")).await.unwrap();
            let st = nd.link(single.name()).await.unwrap().tun.unwrap();
            assert!(!st.multi_queue && !st.vnet_hdr);
            assert_eq!(single.fds().len(), 1);

            let e = Tap::create(&nd, &TapConfig::new("mq%d").queues(0))
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::InvalidArg(_)), "{e:?}");
        },
    );
}

/// An id the test may give away: 1234/5678 where the user namespace maps
/// them (root on the host), else 0 (a user+net namespace mapping only root).
fn mapped_or_root(map: &str, want: u32) -> u32 {
    let text = std::fs::read_to_string(map).unwrap_or_default();
    let mapped = text.lines().any(|l| {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        v.len() == 3 && v[0] <= u64::from(want) && u64::from(want) < v[0] + v[2]
    });
    if mapped { want } else { 0 }
}

#[test]
fn tap_owner_and_group_are_set() {
    in_netns("tap_owner_and_group_are_set", |nd| async move {
        let uid = mapped_or_root("/proc/self/uid_map", 1234);
        let gid = mapped_or_root("/proc/self/gid_map", 5678);
        let t = Tap::create(
            &nd,
            &TapConfig::new("own%d")
                .persistent(true)
                .owner(uid)
                .group(gid),
        )
        .await
        .unwrap();
        let st = nd.link(t.name()).await.unwrap().tun.unwrap();
        assert_eq!((st.owner, st.group), (Some(uid), Some(gid)));
        let plain = Tap::create(&nd, &TapConfig::new("own%d")).await.unwrap();
        let st = nd.link(plain.name()).await.unwrap().tun.unwrap();
        assert_eq!((st.owner, st.group), (None, None));
        t.delete().await.unwrap();

        // An id that does not exist (-1): a clear error, nothing left behind.
        let before = link_names(&nd).await;
        let e = Tap::create(
            &nd,
            &TapConfig::new("own%d").persistent(true).owner(u32::MAX),
        )
        .await
        .unwrap_err();
        assert!(
            e.report()
                .contains("must exist in the caller's user namespace"),
            "{}",
            e.report()
        );
        assert_eq!(link_names(&nd).await, before);
    });
}

/// Names come from the template with an own monotonic counter: a freed name
/// is not handed out again at once, and a taken name is skipped.
#[test]
fn tap_names_from_template_are_monotonic_and_skip_taken_ones() {
    in_netns(
        "tap_names_from_template_are_monotonic_and_skip_taken_ones",
        |nd| async move {
            let a = Tap::create(&nd, &TapConfig::new("mono%d")).await.unwrap();
            let b = Tap::create(&nd, &TapConfig::new("mono%d")).await.unwrap();
            assert_eq!((a.name(), b.name()), ("mono0", "mono1"));
            a.delete().await.unwrap();
            let c = Tap::create(&nd, &TapConfig::new("mono%d")).await.unwrap();
            assert_eq!(
                c.name(),
                "mono2",
                "mono0 was just freed and must not be reused"
            );

            // Someone else made mono3, a persistent tap nobody holds open:
            // skipped rather than attached to (IFF_TUN_EXCL; without it
            // TUNSETIFF would join the existing device and return mono3).
            let other = Tap::create(&nd, &TapConfig::new("mono3").persistent(true))
                .await
                .unwrap();
            let fds = other.into_fds();
            tokio::task::spawn_blocking(move || drop(fds))
                .await
                .unwrap();
            let d = Tap::create(&nd, &TapConfig::new("mono%d")).await.unwrap();
            assert_eq!(d.name(), "mono4");
            nd.delete("mono3").await.unwrap();
        },
    );
}

#[test]
fn tap_exact_name_taken_is_already_exists() {
    in_netns("tap_exact_name_taken_is_already_exists", |nd| async move {
        // A persistent tap nobody holds open: TUNSETIFF without IFF_TUN_EXCL
        // would silently attach to it.
        let held = Tap::create(&nd, &TapConfig::new("dup0").persistent(true))
            .await
            .unwrap();
        let fds = held.into_fds();
        tokio::task::spawn_blocking(move || drop(fds))
            .await
            .unwrap();
        let e = Tap::create(&nd, &TapConfig::new("dup0")).await.unwrap_err();
        assert!(matches!(e, NetdevError::AlreadyExists { .. }), "{e:?}");
        assert!(nd.link("dup0").await.unwrap().tun.unwrap().persistent);
        // A non-tap device of that name too.
        Bridge::create(&nd, "dup1", mac("52:54:00:0d:0d:0d"), None)
            .await
            .unwrap();
        let e = Tap::create(&nd, &TapConfig::new("dup1")).await.unwrap_err();
        assert!(matches!(e, NetdevError::AlreadyExists { .. }), "{e:?}");
        nd.delete("dup0").await.unwrap();
    });
}

#[test]
fn tap_attach_detach() {
    in_netns("tap_attach_detach", |nd| async move {
        Bridge::create(&nd, "bratt", mac("52:54:00:0b:0b:0b"), Some(1450))
            .await
            .unwrap();
        let mut t = Tap::create(&nd, &TapConfig::new("att%d")).await.unwrap();
        assert_eq!(nd.master(t.name()).await.unwrap(), None);
        assert_eq!(t.attach("bratt", None).await.unwrap(), 1450);
        assert_eq!(nd.master(t.name()).await.unwrap().as_deref(), Some("bratt"));
        assert_eq!(
            nd.bridge_ports("bratt").await.unwrap(),
            vec![t.name().to_string()]
        );
        t.detach().await.unwrap();
        assert_eq!(nd.master(t.name()).await.unwrap(), None);
        assert_eq!(t.attach("bratt", Some(1300)).await.unwrap(), 1300);
        assert_eq!(nd.mtu(t.name()).await.unwrap(), 1300);
    });
}

/// Invalid input, a missing bridge, or a failure inside a batch leaves
/// nothing behind.
#[test]
fn tap_errors_leave_nothing_behind() {
    in_netns("tap_errors_leave_nothing_behind", |nd| async move {
        let before = link_names(&nd).await;
        for cfg in [
            TapConfig::new("way-too-long-tap-name"),
            TapConfig::new("tap/0"),
            TapConfig::new("tap 0"),
            TapConfig::new("tap%s"),
            TapConfig::new("t%d%d"),
            TapConfig::new("bad%d").guest_mac(mac("01:00:00:00:00:01")),
            TapConfig::new("bad%d").guest_mac(mac("00:00:00:00:00:00")),
            TapConfig::new("bad%d").mtu(20),
            TapConfig::new("bad%d").queues(1000),
        ] {
            let e = Tap::create(&nd, &cfg).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    NetdevError::InvalidName { .. }
                        | NetdevError::InvalidMac { .. }
                        | NetdevError::InvalidArg(_)
                ),
                "{cfg:?}: {e:?}"
            );
        }
        let e = Tap::create(&nd, &TapConfig::new("bad%d").bridge("nobridge"))
            .await
            .unwrap_err();
        assert!(matches!(e, NetdevError::NotFound { .. }), "{e:?}");

        // A batch whose last tap cannot be set up (MTU the kernel refuses):
        // the taps made before it, persistent ones included, are gone again.
        let batch = [
            TapConfig::new("bat%d").persistent(true),
            TapConfig::new("bat%d").persistent(true).hold_fds(false),
            TapConfig::new("bat%d"),
            TapConfig::new("bat%d").mtu(70000),
        ];
        let e = Tap::create_many(&nd, &batch).await.unwrap_err();
        assert!(e.report().contains("MTU 70000"), "{}", e.report());
        let deadline = Instant::now() + Duration::from_secs(10);
        while link_names(&nd).await != before {
            assert!(Instant::now() < deadline, "{:?}", link_names(&nd).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// A batch tagged with a device group goes with one delete_group.
#[test]
fn tap_batch_and_group_teardown() {
    in_netns("tap_batch_and_group_teardown", |nd| async move {
        Bridge::create(&nd, "brbulk", mac("52:54:00:0c:0c:0c"), None)
            .await
            .unwrap();
        let cfgs: Vec<TapConfig> = (0..50)
            .map(|i| {
                TapConfig::new("bulk%d")
                    .guest_mac(mac(&format!("52:54:00:00:01:{i:02x}")))
                    .bridge("brbulk")
                    .device_group(77)
            })
            .collect();
        let taps = Tap::create_many(&nd, &cfgs).await.unwrap();
        assert_eq!(taps.len(), 50);
        assert_eq!(nd.bridge_ports("brbulk").await.unwrap().len(), 50);
        for t in &taps {
            let info = nd.link(t.name()).await.unwrap();
            assert_eq!(info.group, 77);
            assert!(info.up);
        }
        nd.delete_group(77).await.unwrap();
        assert!(nd.bridge_ports("brbulk").await.unwrap().is_empty());
        assert!(
            nd.exists("brbulk").await.unwrap(),
            "the bridge is not in the group"
        );
        drop(taps);
        let e = nd.delete_group(0).await.unwrap_err();
        assert!(matches!(e, NetdevError::InvalidArg(_)), "{e:?}");
    });
}

/// A persistent tap set up for someone else to open: no fds kept, attached
/// and up, no carrier until opened.
#[test]
fn persistent_tap_without_fds_for_later_use() {
    in_netns(
        "persistent_tap_without_fds_for_later_use",
        |nd| async move {
            Bridge::create(&nd, "brlater", mac("52:54:00:0e:0e:0e"), None)
                .await
                .unwrap();
            let t = Tap::create(
                &nd,
                &TapConfig::new("later%d")
                    .persistent(true)
                    .hold_fds(false)
                    .owner(0)
                    .guest_mac(mac("52:54:00:0e:0e:0f"))
                    .bridge("brlater"),
            )
            .await
            .unwrap();
            assert!(t.fds().is_empty());
            let info = nd.link(t.name()).await.unwrap();
            assert!(info.up && info.tun.unwrap().persistent);
            assert_eq!(info.tun.unwrap().owner, Some(0));
            assert_eq!(info.mac, Some(mac("fe:54:00:0e:0e:0f")));
            assert_eq!(
                nd.master(t.name()).await.unwrap().as_deref(),
                Some("brlater")
            );
            assert_ne!(
                info.operstate,
                virtkit_netdev::OperState::Up,
                "no carrier without a reader"
            );
            let name = t.name().to_string();
            t.delete().await.unwrap();
            assert!(!nd.exists(&name).await.unwrap());

            let e = Tap::create(&nd, &TapConfig::new("later%d").hold_fds(false))
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::InvalidArg(_)), "{e:?}");
        },
    );
}

/// Watches the kernel's link notifications while a tap is created and
/// attached: the tap is never a bridge port with anything but its final MAC
/// and MTU, and a bridge following the lowest-port rule never takes the
/// random MAC the tap was born with.
#[test]
fn tap_never_joins_the_bridge_with_its_random_mac() {
    use futures::StreamExt;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::packet_route::link::LinkAttribute;

    in_netns(
        "tap_never_joins_the_bridge_with_its_random_mac",
        |nd| async move {
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            handle
                .link()
                .add(rtnetlink::LinkMessageBuilder::<rtnetlink::LinkBridge>::new("brwatch").build())
                .execute()
                .await
                .unwrap();
            let br = nd.link("brwatch").await.unwrap();
            let (conn, _h, mut events) =
                rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link]).unwrap();
            tokio::spawn(conn);

            let want = mac("fe:54:00:00:00:07");
            let t = Tap::create(
                &nd,
                &TapConfig::new("watch%d")
                    .guest_mac(mac("52:54:00:00:00:07"))
                    .mtu(1400)
                    .bridge("brwatch"),
            )
            .await
            .unwrap();
            assert_eq!(nd.mac("brwatch").await.unwrap(), want);

            let mut seen_tap = 0;
            let mut bridge_macs = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let next = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
                let Ok(Some((msg, _))) = next else { break };
                let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = msg.payload
                else {
                    continue;
                };
                let (mut name, mut addr, mut master, mut mtu) = (None, None, None, None);
                for a in &l.attributes {
                    match a {
                        LinkAttribute::IfName(n) => name = Some(n.clone()),
                        LinkAttribute::Address(b) if b.len() == 6 => {
                            addr = Some(virtkit_netdev::MacAddr(b.as_slice().try_into().unwrap()))
                        }
                        LinkAttribute::Controller(c) => master = Some(*c),
                        LinkAttribute::Mtu(m) => mtu = Some(*m),
                        _ => {}
                    }
                }
                if l.header.index == br.index {
                    bridge_macs.extend(addr);
                }
                if name.as_deref() == Some(t.name()) && master == Some(br.index) {
                    seen_tap += 1;
                    assert_eq!((addr, mtu), (Some(want), Some(1400)), "tap as a port");
                }
            }
            assert!(seen_tap > 0, "saw the tap become a port");
            for m in bridge_macs {
                assert!(m == br.mac.unwrap() || m == want, "bridge briefly had {m}");
            }
        },
    );
}
