//! veth pairs and namespaces: create, move one end into another namespace by
//! fd and by pid, rename there, MAC and MTU; deleting one end removes both.

mod common;

use std::os::fd::AsFd;

use common::{OtherNetns, in_netns, link_names, mac};
use virtkit_netdev::{Bridge, Netdev, NetdevError, NetnsRef, Veth, VethConfig};

#[test]
fn veth_pair_with_macs_mtu_and_bridge() {
    in_netns("veth_pair_with_macs_mtu_and_bridge", |nd| async move {
        Bridge::create(&nd, "brct", mac("52:54:00:10:10:10"), Some(1450))
            .await
            .unwrap();
        let v = Veth::create(
            &nd,
            &VethConfig::new("vh%d", "vp%d")
                .host_mac(mac("fe:54:00:10:10:11"))
                .peer_mac(mac("52:54:00:10:10:11"))
                .bridge("brct"),
        )
        .await
        .unwrap();
        let host = nd.link(&v.host).await.unwrap();
        let peer = nd.link(&v.peer).await.unwrap();
        assert_eq!(host.mac, Some(mac("fe:54:00:10:10:11")));
        assert_eq!(peer.mac, Some(mac("52:54:00:10:10:11")));
        assert_eq!((host.mtu, peer.mtu), (1450, 1450), "MTU from the bridge");
        assert_eq!(host.kind.as_deref(), Some("veth"));
        assert!(
            host.up && !peer.up,
            "host end up, peer left to the container"
        );
        assert_eq!(nd.master(&v.host).await.unwrap().as_deref(), Some("brct"));
    });
}

#[test]
fn deleting_one_veth_end_removes_the_peer() {
    in_netns("deleting_one_veth_end_removes_the_peer", |nd| async move {
        let v = Veth::create(&nd, &VethConfig::new("dh0", "dp0").mtu(9000))
            .await
            .unwrap();
        assert_eq!(nd.mtu("dp0").await.unwrap(), 9000);
        nd.delete(&v.host).await.unwrap();
        assert!(!nd.exists("dh0").await.unwrap());
        assert!(!nd.exists("dp0").await.unwrap());
    });
}

#[test]
fn veth_same_template_for_both_ends_and_taken_names() {
    in_netns(
        "veth_same_template_for_both_ends_and_taken_names",
        |nd| async move {
            let a = Veth::create(&nd, &VethConfig::new("vt%d", "vt%d"))
                .await
                .unwrap();
            assert_ne!(a.host, a.peer);
            // Exact names that are taken: AlreadyExists, nothing new created.
            let before = link_names(&nd).await;
            let e = Veth::create(&nd, &VethConfig::new(a.host.as_str(), "fresh0"))
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::AlreadyExists { .. }), "{e:?}");
            assert_eq!(link_names(&nd).await, before);
            let e = Veth::create(&nd, &VethConfig::new("ok0", "bad name"))
                .await
                .unwrap_err();
            assert!(matches!(e, NetdevError::InvalidName { .. }), "{e:?}");
            let e = Veth::create(
                &nd,
                &VethConfig::new("ok0", "ok1").peer_mac(mac("33:33:00:00:00:01")),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, NetdevError::InvalidMac { .. }), "{e:?}");
            assert_eq!(link_names(&nd).await, before);
        },
    );
}

/// The LXC flow: peer end moved into the container namespace by fd and
/// renamed there in the same request; a handle opened in that namespace sees
/// and configures it.
#[test]
fn veth_end_moves_into_netns_by_fd_and_is_renamed() {
    in_netns(
        "veth_end_moves_into_netns_by_fd_and_is_renamed",
        |nd| async move {
            let other = OtherNetns::new();
            let v = Veth::create(
                &nd,
                &VethConfig::new("lxh%d", "lxp%d").peer_mac(mac("52:54:00:20:20:20")),
            )
            .await
            .unwrap();
            nd.move_to_netns(&v.peer, NetnsRef::Fd(other.fd.as_fd()), Some("eth0"))
                .await
                .unwrap();
            assert!(!nd.exists(&v.peer).await.unwrap());
            assert!(!nd.exists("eth0").await.unwrap());

            let inside = Netdev::open_in_netns(other.fd.as_fd()).await.unwrap();
            let eth0 = inside.link("eth0").await.unwrap();
            assert_eq!(eth0.mac, Some(mac("52:54:00:20:20:20")));
            inside.set_mtu("eth0", 1400).await.unwrap();
            inside
                .set_mac("eth0", mac("52:54:00:20:20:21"))
                .await
                .unwrap();
            inside.rename("eth0", "eth1").await.unwrap();
            inside.set_up("eth1").await.unwrap();
            let eth1 = inside.link("eth1").await.unwrap();
            assert_eq!((eth1.mtu, eth1.mac), (1400, Some(mac("52:54:00:20:20:21"))));
            assert!(eth1.up);

            // Deleting the host end removes the container end too.
            nd.delete(&v.host).await.unwrap();
            assert!(!inside.exists("eth1").await.unwrap());
        },
    );
}

#[test]
fn veth_end_moves_into_netns_by_pid() {
    in_netns("veth_end_moves_into_netns_by_pid", |nd| async move {
        let other = OtherNetns::new();
        let v = Veth::create(&nd, &VethConfig::new("pidh%d", "pidp%d"))
            .await
            .unwrap();
        nd.move_to_netns(&v.peer, NetnsRef::Pid(other.tid), None)
            .await
            .unwrap();
        assert!(!nd.exists(&v.peer).await.unwrap());
        let inside = Netdev::open_in_netns(other.fd.as_fd()).await.unwrap();
        assert!(inside.exists(&v.peer).await.unwrap());

        // A name taken in the target namespace.
        let w = Veth::create(&nd, &VethConfig::new("pidh%d", v.peer.as_str()))
            .await
            .unwrap();
        let e = nd
            .move_to_netns(&w.peer, NetnsRef::Pid(other.tid), None)
            .await
            .unwrap_err();
        assert!(matches!(e, NetdevError::AlreadyExists { .. }), "{e:?}");
        assert!(nd.exists(&w.peer).await.unwrap(), "stays where it was");
    });
}
