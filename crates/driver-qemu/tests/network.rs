//! A guest on a bridge: its tap is created by netdev with the host MAC rule
//! and the bridge's MTU, the guest gets a DHCP lease from a dnsmasq on the
//! bridge and pings the gateway, and the tap is gone after destroy. All of it
//! inside a network namespace the test creates.

mod common;

use std::time::Duration;

use virtkit_core::{CreateFlags, MacAddr};
use virtkit_netdev::{Bridge, Netdev};

use common::*;

#[test]
fn bridged_guest_gets_a_lease_and_pings_the_gateway() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(env) = rt.block_on(TestEnv::new("bridge")) else {
        return;
    };
    if which("dnsmasq").is_none() {
        eprintln!("SKIPPED: no dnsmasq (scripts/install-test-deps net)");
        return;
    }
    let env = std::sync::Arc::new(env);
    let e2 = env.clone();
    in_netns(
        "bridged_guest_gets_a_lease_and_pings_the_gateway",
        move || async move {
            let env = e2;
            let nd = Netdev::new().unwrap();
            let br_mac: MacAddr = "52:54:00:10:20:30".parse().unwrap();
            let br = Bridge::create(&nd, "vkbr0", br_mac, Some(1400))
                .await
                .unwrap();
            br.up().await.unwrap();
            sh(&["ip", "link", "set", "lo", "up"]);
            sh(&["ip", "addr", "add", "10.99.0.1/24", "dev", "vkbr0"]);
            let leases = env.root.join("leases");
            let mut dnsmasq = std::process::Command::new(which("dnsmasq").unwrap())
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--interface=vkbr0",
                    "--bind-interfaces",
                    "--except-interface=lo",
                    "--dhcp-range=10.99.0.10,10.99.0.50,255.255.255.0,1h",
                    "--port=0",
                ])
                .arg(format!("--dhcp-leasefile={}", leases.display()))
                .arg(format!(
                    "--pid-file={}",
                    env.root.join("dnsmasq.pid").display()
                ))
                .spawn()
                .unwrap();

            let conn = env.connect().await;
            let guest_mac = "52:54:00:aa:00:01";
            let nic = format!(
                "<interface type='bridge'><mac address='{guest_mac}'/><source bridge='vkbr0'/><model type='virtio'/></interface>"
            );
            let mut dom = conn
                .define_domain(&env.guest_xml("n1", &[&nic]))
                .await
                .unwrap();
            dom.start(CreateFlags::empty()).await.unwrap();

            // The tap: on the bridge, host MAC by the 0xFE rule, bridge's MTU.
            let xml = dom.xml(Default::default()).await.unwrap();
            let tap = xml
                .split("<target dev='")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .expect("live XML names the tap")
                .to_string();
            assert!(tap.starts_with("vnet"), "{tap}");
            assert_eq!(nd.master(&tap).await.unwrap().as_deref(), Some("vkbr0"));
            assert_eq!(nd.mac(&tap).await.unwrap().to_string(), "fe:54:00:aa:00:01");
            assert_eq!(nd.mtu(&tap).await.unwrap(), 1400);
            assert_eq!(
                nd.mac("vkbr0").await.unwrap(),
                br_mac,
                "the bridge keeps its MAC"
            );

            env.wait_serial("n1", "VIRTKIT-DHCP-OK 10.99.0.", 1).await;
            env.wait_serial("n1", "VIRTKIT-PING-OK", 1).await;
            let lease = std::fs::read_to_string(&leases).unwrap_or_default();
            assert!(lease.contains(guest_mac), "dnsmasq lease file: {lease}");

            dom.destroy().await.unwrap();
            // The tap went with QEMU.
            let start = std::time::Instant::now();
            while nd.exists(&tap).await.unwrap() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "tap {tap} left behind"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = dnsmasq.kill();
            let _ = dnsmasq.wait();
            env.assert_clean();
        },
    );
}

/// Starts a second guest with `nic` (and so its MAC): it must be refused.
async fn start_duplicate(
    conn: &virtkit_core::Connect,
    env: &TestEnv,
    nic: &str,
) -> virtkit_core::Error {
    conn.create_domain(
        &env.guest_xml("dup", &[nic]).replace(
            "<name>dup</name>",
            "<name>dup</name><uuid>11111111-0000-0000-0000-000000000001</uuid>",
        ),
        CreateFlags::empty(),
    )
    .await
    .unwrap_err()
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn guest_on_a_virtkit_nat_network_gets_a_lease_and_pings_the_gateway() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(env) = rt.block_on(TestEnv::new("natnet")) else {
        return;
    };
    if which("dnsmasq").is_none() || which("nft").is_none() {
        eprintln!("SKIPPED: no dnsmasq or nft (scripts/install-test-deps net)");
        return;
    }
    let env = std::sync::Arc::new(env);
    let e2 = env.clone();
    in_netns("guest_on_a_virtkit_nat_network", move || async move {
        let env = e2;
        sh(&["ip", "link", "set", "lo", "up"]);
        let conn = env.connect().await;
        let nets = conn.networks().unwrap();
        let net = nets
            .define_xml(
                "<network><name>nat1</name><forward mode='nat'/>\
                 <ip address='10.98.0.1' netmask='255.255.255.0'>\
                 <dhcp><range start='10.98.0.10' end='10.98.0.50'/></dhcp></ip></network>",
            )
            .await
            .unwrap();
        nets.start(&net).await.unwrap();
        let bridge = nets
            .info(&net)
            .await
            .unwrap()
            .bridge
            .expect("a bridge name was allocated");

        let guest_mac = "52:54:00:bb:00:02";
        let nic = format!(
            "<interface type='network'><mac address='{guest_mac}'/><source network='nat1'/><model type='virtio'/></interface>"
        );
        let mut dom = conn
            .define_domain(&env.guest_xml("nat-guest", &[&nic]))
            .await
            .unwrap();
        dom.start(CreateFlags::empty()).await.unwrap();
        let nd = Netdev::new().unwrap();
        let ports = nd.bridge_ports(&bridge).await.unwrap();
        assert_eq!(ports.len(), 1, "the guest's tap is on {bridge}: {ports:?}");

        env.wait_serial("nat-guest", "VIRTKIT-DHCP-OK 10.98.0.", 1)
            .await;
        env.wait_serial("nat-guest", "VIRTKIT-PING-OK", 1).await;
        let leases = nets.dhcp_leases(&net, None).await.unwrap();
        assert!(
            leases.iter().any(|l| l.mac.eq_ignore_ascii_case(guest_mac)),
            "net-dhcp-leases shows the guest: {leases:?}"
        );

        // A second guest with the same MAC on the same network is refused
        // before anything is created.
        let dup = start_duplicate(&conn, &env, &nic).await;
        assert!(dup.to_string().contains("already plugged"), "{dup}");

        // A new instance (as a new process would) re-attaches to the guest
        // and claims its port again: the duplicate is still refused, and
        // the port is given back when the guest stops.
        drop((dom, net));
        let _ = nets;
        drop(conn);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let conn = env.connect().await;
        let nets = conn.networks().unwrap();
        let net = nets.lookup_by_name("nat1").await.unwrap();
        let dom = conn.lookup_domain("nat-guest").await.unwrap();
        assert_eq!(
            dom.state().await.unwrap().0,
            virtkit_core::DomainState::Running
        );
        let dup = start_duplicate(&conn, &env, &nic).await;
        assert!(
            dup.to_string().contains("already plugged"),
            "after re-attach: {dup}"
        );

        dom.destroy().await.unwrap();
        // The port was released: the same MAC can be plugged in again.
        let again = conn
            .create_domain(&env.guest_xml("again", &[&nic]), CreateFlags::empty())
            .await
            .expect("the MAC is free once its guest stopped");
        again.destroy().await.unwrap();
        nets.destroy(&net).await.unwrap();
        assert!(
            !nd.exists(&bridge).await.unwrap(),
            "bridge {bridge} removed"
        );
        env.assert_clean();
    });
}
