//! Containers with network interfaces, inside a network namespace the test
//! creates (never the host's): a veth per interface, the container end moved
//! in with the guest MAC and renamed, the host end on the bridge; a DHCP
//! lease from a virtkit NAT network's dnsmasq and a ping of the gateway;
//! static addresses on a plain bridge; and no veth left after destroy.

mod common;

use std::time::Duration;

use virtkit_core::{CreateFlags, MacAddr, StatsGroups, TypedValue};
use virtkit_netdev::{Bridge, Netdev};

use common::*;

fn have(cmd: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(cmd).exists())
}

fn sh(args: &[&str]) {
    let st = std::process::Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

async fn wait_no_device(nd: &Netdev, name: &str) {
    let start = std::time::Instant::now();
    while nd.exists(name).await.unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name} left behind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn container_on_a_nat_network_gets_a_lease_and_pings_the_gateway() {
    let test = "lxc_nat_network";
    if !have("dnsmasq") || !have("nft") {
        skip(test, "no dnsmasq or nft (scripts/install-test-deps net)");
        return;
    }
    let Some(env) = Env::new("natnet") else {
        return;
    };
    in_netns(test, move || async move {
        sh(&["ip", "link", "set", "lo", "up"]);
        let conn = env.connect().await;
        let nets = conn.networks().unwrap();
        let net = nets
            .define_xml(
                // STP off: a new port forwards at once (with STP the kernel
                // holds it for twice its minimum forward delay of 2 s).
                "<network><name>lxcnat</name><forward mode='nat'/><bridge stp='off'/>\
                 <ip address='10.97.0.1' netmask='255.255.255.0'>\
                 <dhcp><range start='10.97.0.10' end='10.97.0.50'/></dhcp></ip></network>",
            )
            .await
            .unwrap();
        nets.start(&net).await.unwrap();
        let bridge = nets.info(&net).await.unwrap().bridge.expect("a bridge");

        let mac = "52:54:00:cc:00:01";
        let nic = format!(
            "<interface type='network'><mac address='{mac}'/><source network='lxcnat'/></interface>"
        );
        let script = "cat /sys/class/net/eth0/address > /shared/mac; \
             udhcpc -i eth0 -n -q -t 20 -T 1 >/dev/null 2>&1; \
             cp /run/udhcpc.lease /shared/lease; \
             gw=$(cut -d' ' -f2 /run/udhcpc.lease); \
             if ping -c 1 -W 5 $gw >/dev/null 2>&1; then echo ok; else echo fail; fi > /shared/ping; \
             exec /sbin/init";
        let mut dom = conn
            .define_domain(
                &env.xml("net1", script, &nic, "")
                    .replace("<features><privnet/></features>", ""),
            )
            .await
            .unwrap();
        dom.start(CreateFlags::empty()).await.unwrap();

        // The host end: on the network's bridge.
        let nd = Netdev::new().unwrap();
        let ports = nd.bridge_ports(&bridge).await.unwrap();
        assert_eq!(
            ports.len(),
            1,
            "the container's veth is on {bridge}: {ports:?}"
        );
        let host_end = ports[0].clone();
        let live = dom.xml(Default::default()).await.unwrap();
        assert!(
            live.contains(&format!("<target dev='{host_end}'/>")),
            "{live}"
        );

        let ping = env.wait_file("ping", |s| !s.trim().is_empty()).await;
        let lease = std::fs::read_to_string(env.shared.join("lease")).unwrap_or_default();

        assert!(lease.starts_with("10.97.0."), "DHCP lease: {lease:?}");
        assert_eq!(ping.trim(), "ok", "the container pings the gateway");
        assert_eq!(
            std::fs::read_to_string(env.shared.join("mac"))
                .unwrap()
                .trim(),
            mac,
            "the container end has the guest MAC"
        );
        let leases = nets.dhcp_leases(&net, None).await.unwrap();
        assert!(
            leases.iter().any(|l| l.mac.eq_ignore_ascii_case(mac)),
            "net-dhcp-leases shows the container: {leases:?}"
        );
        let stats = conn
            .domains()
            .unwrap()
            .stats(dom.handle(), StatsGroups::INTERFACE)
            .await
            .unwrap();
        let rx = stats
            .iter()
            .find(|(k, _)| k == "net.0.rx.bytes")
            .map(|(_, v)| v.clone());
        assert!(
            matches!(rx, Some(TypedValue::ULLong(n)) if n > 0),
            "traffic is counted: {stats:?}"
        );
        let st = conn
            .domains()
            .unwrap()
            .interface_stats(dom.handle(), mac)
            .await
            .unwrap();
        assert!(st.tx_packets > 0 && st.rx_packets > 0, "{st:?}");

        // A second container with the same MAC on the same network is
        // refused before anything is made.
        let dup = conn
            .create_domain(
                &env.xml("net2", "exec /sbin/init", &nic, "")
                    .replace("<features><privnet/></features>", ""),
                CreateFlags::empty(),
            )
            .await
            .unwrap_err();
        assert!(dup.to_string().contains("already plugged"), "{dup}");
        assert_eq!(nd.bridge_ports(&bridge).await.unwrap().len(), 1);

        let pids = env.pids("net1");
        let cgroups = Env::cgroup_dirs(pids.1);
        dom.destroy().await.unwrap();
        wait_no_device(&nd, &host_end).await;
        assert!(nd.bridge_ports(&bridge).await.unwrap().is_empty());
        env.assert_clean("net1", pids, &cgroups);
        // The port was given back: the MAC can plug in again.
        dom.start(CreateFlags::empty()).await.unwrap();
        dom.destroy().await.unwrap();
        nets.destroy(&net).await.unwrap();
        assert!(!nd.exists(&bridge).await.unwrap());
    });
}

#[test]
fn static_addresses_on_a_bridge_and_a_missing_bridge_leaves_nothing() {
    let test = "lxc_bridge_static";
    let Some(env) = Env::new("bridge") else {
        return;
    };
    in_netns(test, move || async move {
        sh(&["ip", "link", "set", "lo", "up"]);
        let nd = Netdev::new().unwrap();
        let br_mac: MacAddr = "52:54:00:10:20:31".parse().unwrap();
        let br = Bridge::create(&nd, "vklxcbr0", br_mac, Some(1400))
            .await
            .unwrap();
        br.up().await.unwrap();
        sh(&["ip", "addr", "add", "10.96.0.1/24", "dev", "vklxcbr0"]);
        let conn = env.connect().await;
        let nic = "<interface type='bridge'><mac address='52:54:00:dd:00:02'/>\
                   <source bridge='vklxcbr0'/><ip address='10.96.0.2' prefix='24'/>\
                   <route address='0.0.0.0' gateway='10.96.0.1'/><guest dev='lan0'/></interface>";
        let script = "ip addr show dev lan0 > /shared/addr; ip route > /shared/route; \
             cat /sys/class/net/lan0/mtu > /shared/mtu; \
             if ping -c 1 -W 5 10.96.0.1 >/dev/null 2>&1; then echo ok; else echo fail; fi > /shared/ping; \
             exec /sbin/init";
        let mut dom = conn
            .define_domain(&env.xml("br1", script, nic, ""))
            .await
            .unwrap();
        dom.start(CreateFlags::empty()).await.unwrap();
        let ping = env.wait_file("ping", |s| !s.trim().is_empty()).await;
        let addr = std::fs::read_to_string(env.shared.join("addr")).unwrap();
        assert!(addr.contains("10.96.0.2/24"), "{addr}");
        assert!(addr.contains("52:54:00:dd:00:02"), "{addr}");
        let route = std::fs::read_to_string(env.shared.join("route")).unwrap();
        assert!(route.contains("default via 10.96.0.1"), "{route}");
        assert_eq!(
            std::fs::read_to_string(env.shared.join("mtu"))
                .unwrap()
                .trim(),
            "1400",
            "the veth takes the bridge's MTU"
        );
        assert_eq!(ping.trim(), "ok");
        let ports = nd.bridge_ports("vklxcbr0").await.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            nd.mac("vklxcbr0").await.unwrap(),
            br_mac,
            "the bridge keeps its MAC"
        );
        let host_end = ports[0].clone();
        let pids = env.pids("br1");
        let cgroups = Env::cgroup_dirs(pids.1);
        dom.destroy().await.unwrap();
        wait_no_device(&nd, &host_end).await;
        env.assert_clean("br1", pids, &cgroups);

        // A bridge that does not exist: refused, and no veth is left.
        let before = nd.links().await.unwrap().len();
        let bad = nic
            .replace("vklxcbr0", "nosuchbr")
            .replace("52:54:00:dd:00:02", "52:54:00:dd:00:03");
        let mut d2 = conn
            .define_domain(&env.xml("br2", "exec /sbin/init", &bad, ""))
            .await
            .unwrap();
        let e = d2.start(CreateFlags::empty()).await.unwrap_err();
        assert!(e.to_string().contains("nosuchbr"), "{e}");
        assert_eq!(nd.links().await.unwrap().len(), before, "no device left");
        assert!(!env.root.join("run/lxc/br2").exists());
        br.delete().await.unwrap();
    });
}
