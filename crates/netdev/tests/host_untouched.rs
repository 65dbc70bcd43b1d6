//! Only namespaces the tests create are touched: the device list of the
//! namespace this test binary runs in (the host's, on CI) is the same before
//! and after a full workout in a throwaway namespace. Its own test binary, so
//! no other test of this crate runs concurrently in the same process.

mod common;

use std::os::fd::AsFd;
use std::process::Command;

use common::{OtherNetns, in_netns, mac};
use virtkit_netdev::{
    Bridge, BridgeCreatePath, Netdev, NetnsRef, Tap, TapConfig, Veth, VethConfig,
};

fn ip_link_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip -o link show failed");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn host_namespace_device_list_is_unchanged() {
    if Command::new("ip").arg("-V").output().is_err() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: host_namespace_device_list_is_unchanged: iproute2 'ip' not installed"
        );
        return;
    }
    let before = ip_link_names();
    in_netns("host_namespace_device_list_is_unchanged", |nd| async move {
        for (name, path) in [
            ("hostchk0", BridgeCreatePath::Netlink),
            ("hostchk1", BridgeCreatePath::Ioctl),
        ] {
            let br = Bridge::create_with(&nd, name, mac("52:54:00:50:50:50"), Some(9000), path)
                .await
                .unwrap();
            br.up().await.unwrap();
        }
        let taps = Tap::create_many(
            &nd,
            &(0..20)
                .map(|_| {
                    TapConfig::new("hc%d")
                        .bridge("hostchk0")
                        .queues(2)
                        .device_group(5)
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        let persistent = Tap::create(&nd, &TapConfig::new("hcp%d").persistent(true))
            .await
            .unwrap();
        drop(persistent);
        let v = Veth::create(&nd, &VethConfig::new("hcv%d", "hcv%d").bridge("hostchk1"))
            .await
            .unwrap();
        let other = OtherNetns::new();
        nd.move_to_netns(&v.peer, NetnsRef::Fd(other.fd.as_fd()), Some("eth0"))
            .await
            .unwrap();
        let inside = Netdev::open_in_netns(other.fd.as_fd()).await.unwrap();
        inside.set_up("eth0").await.unwrap();
        nd.delete_group(5).await.unwrap();
        drop(taps);
        // Deliberately leave the rest behind: the namespace takes it along.
    });
    assert_eq!(
        ip_link_names(),
        before,
        "the test binary's own namespace changed"
    );
}
