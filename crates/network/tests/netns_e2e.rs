//! End-to-end tests of real networks, each inside a network namespace the
//! test creates (never the host's): bridge, nftables, dnsmasq, a guest
//! namespace on a veth that gets a lease with busybox udhcpc, pings the
//! gateway and resolves a `<dns><host>` name; then destroy leaves nothing.
//!
//! Needs root (unshare), dnsmasq, nft, busybox and nsenter; without them
//! each test prints `SKIPPED: <reason>` (set VIRTKIT_NET_REQUIRE_PRIVILEGED=1
//! to make that a failure).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use virtkit_core::{NetworkListFlags, NetworkOps, XmlFlags};
use virtkit_netdev::{Netdev, NetnsRef, Veth, VethConfig};
use virtkit_network::{Layout, NetworkConnection, firewall};

fn skip(test: &str, why: &str) {
    if std::env::var_os("VIRTKIT_NET_REQUIRE_PRIVILEGED").is_some_and(|v| v == "1") {
        panic!("{test}: cannot run: {why}");
    }
    eprintln!("SKIPPED: {test}: {why}");
}

fn have(cmd: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(cmd).exists())
}

/// Runs `body` on a thread in a fresh network namespace, with a temporary
/// state root that is removed afterwards.
fn in_netns<F, Fut>(test: &'static str, body: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    for c in ["dnsmasq", "nft", "busybox", "nsenter", "ip"] {
        if !have(c) {
            return skip(
                test,
                &format!("`{c}` is not installed (scripts/install-test-deps net)"),
            );
        }
    }
    let root = std::env::temp_dir().join(format!("vk-net-{test}-{}", std::process::id()));
    let r2 = root.clone();
    let res = std::thread::spawn(move || -> Result<(), String> {
        // SAFETY: unshare(2) takes only flags and changes this thread only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot create a network namespace ({}); run as root",
                std::io::Error::last_os_error()
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&r2).map_err(|e| e.to_string())?;
        rt.block_on(async move {
            // Loopback up, as in any namespace where DNS is tested.
            let _ = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            body(r2).await;
        });
        Ok(())
    })
    .join();
    let _ = std::fs::remove_dir_all(&root);
    match res {
        Ok(Ok(())) => {}
        Ok(Err(why)) => skip(test, &why),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A guest: a process holding its own network namespace, killed on drop.
struct Guest {
    holder: Child,
}

impl Guest {
    fn new() -> Guest {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the guest namespace holder");
        // Let unshare create the namespace before anyone uses it.
        std::thread::sleep(Duration::from_millis(100));
        Guest { holder }
    }

    fn pid(&self) -> u32 {
        // `unshare` execs `sleep` in place: the PID is the same process.
        self.holder.id()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .args(args)
            .output()
            .expect("run a command in the guest namespace")
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

const NAT_NET: &str = "<network>
  <name>e2e</name>
  <forward mode='nat'/>
  <domain name='e2e.test'/>
  <dns>
    <host ip='10.77.0.5'>
      <hostname>files.e2e.test</hostname>
    </host>
  </dns>
  <ip address='10.77.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.77.0.10' end='10.77.0.50'/>
    </dhcp>
  </ip>
</network>
";

/// PIDs of processes called `name` whose command line mentions `root`: other
/// tests running at the same time start their own dnsmasq, which must not count.
fn processes_named_under(name: &str, root: &std::path::Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == name)
                        && std::fs::read(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&root))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn nat_network_serves_dhcp_dns_and_leaves_nothing_behind() {
    in_netns("nat_e2e", |root| async move {
        let conn = NetworkConnection::open_layout(Layout::under(&root), false)
            .await
            .expect("open the driver");
        let nd = Netdev::new().unwrap();
        let links_before: Vec<String> = nd
            .links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        let dnsmasq_before = processes_named_under("dnsmasq", &root);

        let net = conn.define_xml(NAT_NET).await.expect("define");
        conn.start(&net).await.expect("start");
        let info = conn.info(&net).await.unwrap();
        let bridge = info.bridge.clone().expect("a bridge name was assigned");
        assert_eq!(bridge, "virbr0");
        let xml = conn.xml_desc(&net, XmlFlags::empty()).await.unwrap();
        let mac: virtkit_core::MacAddr = xml
            .split("<mac address='")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("a generated <mac>")
            .parse()
            .unwrap();
        assert_eq!(
            nd.mac(&bridge).await.unwrap(),
            mac,
            "bridge created with the network's MAC"
        );
        assert!(
            firewall::table_exists(),
            "virtkit's nftables table is there"
        );
        assert_eq!(
            processes_named_under("dnsmasq", &root).len(),
            dnsmasq_before.len() + 1,
            "one dnsmasq for this network"
        );

        // The guest: a veth pair, one end on the bridge, the other in the
        // guest's namespace.
        let guest = Guest::new();
        let cfg = VethConfig::new("vkhost0", "vkguest0")
            .bridge(bridge.clone())
            .host_up(true);
        Veth::create(&nd, &cfg).await.expect("veth");
        nd.move_to_netns("vkguest0", NetnsRef::Pid(guest.pid()), Some("eth0"))
            .await
            .expect("move the guest end");
        let lease_file = root.join("udhcpc.out");
        let script = root.join("udhcpc.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip $subnet $router $dns\" > {}\nexit 0\n",
                lease_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert!(
            guest
                .run(&["ip", "link", "set", "lo", "up"])
                .status
                .success()
        );
        assert!(
            guest
                .run(&["ip", "link", "set", "eth0", "up"])
                .status
                .success()
        );
        let out = guest.run(&[
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "10",
            "-T",
            "1",
            "-s",
            script.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "udhcpc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read_to_string(&lease_file).expect("udhcpc bound a lease");
        let fields: Vec<&str> = got.split_whitespace().collect();
        let ip: std::net::Ipv4Addr = fields[0].parse().unwrap();
        let last = ip.octets()[3];
        assert!(
            ip.octets()[..3] == [10, 77, 0] && (10..=50).contains(&last),
            "lease {ip} in range"
        );
        assert_eq!(fields.get(2), Some(&"10.77.0.1"), "router option");
        println!("guest lease: {got}");

        // net-dhcp-leases shows it.
        let leases = conn.dhcp_leases(&net, None).await.unwrap();
        assert!(
            leases
                .iter()
                .any(|l| l.ipaddr == fields[0] && l.prefix == 24),
            "{leases:?}"
        );

        // Ping the gateway and resolve a <dns><host> name through dnsmasq.
        assert!(
            guest
                .run(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])
                .status
                .success()
        );
        let ping = guest.run(&["busybox", "ping", "-c", "1", "-W", "2", "10.77.0.1"]);
        assert!(
            ping.status.success(),
            "ping: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        let ns = guest.run(&["busybox", "nslookup", "files.e2e.test", "10.77.0.1"]);
        let ns_out = String::from_utf8_lossy(&ns.stdout);
        assert!(
            ns_out.contains("10.77.0.5"),
            "nslookup: {ns_out} {}",
            String::from_utf8_lossy(&ns.stderr)
        );
        println!("nslookup: {}", ns_out.trim());

        // Live updates: a new DNS host is answered after dnsmasq rereads its
        // host file, a new TXT record after it restarts with the new
        // configuration; both reach the saved definition too.
        use virtkit_core::NetworkUpdateFlags;
        use virtkit_core::network::update::{Command as UpdCmd, Section};
        let both = NetworkUpdateFlags::LIVE | NetworkUpdateFlags::CONFIG;
        conn.update(
            &net,
            UpdCmd::AddLast,
            Section::DnsHost,
            -1,
            "<host ip='10.77.0.6'><hostname>added.e2e.test</hostname></host>",
            both,
        )
        .await
        .expect("net-update add dns-host");
        conn.update(
            &net,
            UpdCmd::AddLast,
            Section::DnsTxt,
            -1,
            "<txt name='note.e2e.test' value='virtkit-was-here'/>",
            both,
        )
        .await
        .expect("net-update add dns-txt");
        let ns = guest.run(&["busybox", "nslookup", "added.e2e.test", "10.77.0.1"]);
        let ns_out = String::from_utf8_lossy(&ns.stdout);
        assert!(
            ns_out.contains("10.77.0.6"),
            "nslookup after update: {ns_out}"
        );
        let ns = guest.run(&[
            "busybox",
            "nslookup",
            "-type=TXT",
            "note.e2e.test",
            "10.77.0.1",
        ]);
        let ns_out = String::from_utf8_lossy(&ns.stdout);
        assert!(
            ns_out.contains("virtkit-was-here"),
            "TXT lookup after update: {ns_out} {}",
            String::from_utf8_lossy(&ns.stderr)
        );
        let saved = conn.xml_desc(&net, XmlFlags::INACTIVE).await.unwrap();
        assert!(
            saved.contains("added.e2e.test") && saved.contains("virtkit-was-here"),
            "{saved}"
        );

        // Destroy: nothing is left.
        drop(guest);
        conn.destroy(&net).await.expect("destroy");
        let _ = nd.delete("vkhost0").await;
        let links_after: Vec<String> = nd
            .links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(
            links_after, links_before,
            "links are back to what they were"
        );
        assert!(!firewall::table_exists(), "the nftables table is gone");
        assert_eq!(
            processes_named_under("dnsmasq", &root),
            dnsmasq_before,
            "no dnsmasq left"
        );
        let run_files: Vec<_> = std::fs::read_dir(root.join("run/network"))
            .map(|r| r.flatten().collect())
            .unwrap_or_default();
        assert!(run_files.is_empty(), "no live state files: {run_files:?}");
        let dns_files: Vec<String> = std::fs::read_dir(root.join("lib/dnsmasq"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            dns_files.iter().all(|f| f.ends_with(".leases")),
            "only the lease file stays: {dns_files:?}"
        );
        conn.undefine(&net).await.unwrap();
        assert!(
            conn.list_all(NetworkListFlags::empty())
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn generated_mac_survives_restart_and_a_new_driver_instance() {
    in_netns("mac_kept", |root| async move {
        let nd = Netdev::new().unwrap();
        let mac = {
            let conn = NetworkConnection::open_layout(Layout::under(&root), false)
                .await
                .unwrap();
            let net = conn
                .define_xml(
                    "<network><name>m</name><ip address='10.78.0.1' prefix='24'/></network>",
                )
                .await
                .unwrap();
            conn.start(&net).await.unwrap();
            let bridge = conn.info(&net).await.unwrap().bridge.unwrap();
            let mac = nd.mac(&bridge).await.unwrap();
            assert_eq!(&mac.octets()[..3], &[0x52, 0x54, 0x00]);
            conn.destroy(&net).await.unwrap();
            conn.start(&net).await.unwrap();
            assert_eq!(
                nd.mac(&bridge).await.unwrap(),
                mac,
                "same MAC after destroy/start"
            );
            mac
        };
        // The instance is gone with its last connection; a new one reads the
        // files, finds the network running and keeps its MAC.
        let conn = NetworkConnection::open_layout(Layout::under(&root), false)
            .await
            .unwrap();
        let net = conn.lookup_by_name("m").await.unwrap();
        let info = conn.info(&net).await.unwrap();
        assert!(info.active, "the running network is found again");
        let bridge = info.bridge.unwrap();
        conn.destroy(&net).await.unwrap();
        conn.start(&net).await.unwrap();
        assert_eq!(
            nd.mac(&bridge).await.unwrap(),
            mac,
            "same MAC in a new driver instance"
        );
        let saved = std::fs::read_to_string(root.join("etc/network/m.xml")).unwrap();
        assert!(
            saved.contains(&mac.to_string()),
            "MAC kept in the persistent definition:\n{saved}"
        );
        conn.destroy(&net).await.unwrap();
        conn.undefine(&net).await.unwrap();
    });
}

#[test]
fn bad_input_is_refused_clearly_and_creates_nothing() {
    in_netns("bad_input", |root| async move {
        let conn = NetworkConnection::open_layout(Layout::under(&root), false)
            .await
            .unwrap();
        let nd = Netdev::new().unwrap();
        let a = conn
            .define_xml("<network><name>a</name><ip address='10.80.0.1' prefix='24'/></network>")
            .await
            .unwrap();
        conn.start(&a).await.unwrap();
        let links = || async {
            nd.links()
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect::<Vec<_>>()
        };
        let before = links().await;

        // Overlapping subnet with the active network.
        let b = conn
            .define_xml(
                "<network><name>b</name>\n  <ip address='10.80.0.129' prefix='25'/></network>",
            )
            .await
            .unwrap();
        let e = conn.start(&b).await.unwrap_err();
        println!("overlap: {e}");
        assert!(
            e.to_string()
                .contains("overlaps 10.80.0.0/24 of active network 'a'"),
            "{e}"
        );
        assert_eq!(
            e.xml_location().map(|l| (l.line, l.path.as_str())),
            Some((2, "/network/ip/@address"))
        );
        assert_eq!(links().await, before);

        // DHCP range outside its subnet.
        let e = conn
            .define_xml(
                "<network><name>c</name><ip address='10.81.0.1' prefix='24'>\n<dhcp><range start='10.81.0.10' end='10.82.0.10'/></dhcp></ip></network>",
            )
            .await
            .unwrap_err();
        println!("range: {e}");
        assert!(
            e.to_string()
                .contains("is not entirely within network 10.81.0.1/24"),
            "{e}"
        );
        assert_eq!(e.xml_location().map(|l| l.line), Some(2));

        // A bridge name a host device already has.
        let cfg = VethConfig::new("taken0", "taken0p");
        Veth::create(&nd, &cfg).await.unwrap();
        let before = links().await;
        let d = conn
            .define_xml("<network><name>d</name>\n  <bridge name='taken0'/><ip address='10.83.0.1' prefix='24'/></network>")
            .await
            .unwrap();
        let e = conn.start(&d).await.unwrap_err();
        println!("bridge in use: {e}");
        assert!(
            e.to_string()
                .contains("bridge name 'taken0' is already in use"),
            "{e}"
        );
        assert_eq!(
            e.xml_location().map(|l| (l.line, l.path.as_str())),
            Some((2, "/network/bridge/@name"))
        );
        assert_eq!(links().await, before);
        // A bridge name another network uses.
        let e = conn
            .define_xml("<network><name>e</name><bridge name='virbr0'/></network>")
            .await
            .unwrap_err();
        println!("bridge of another network: {e}");
        assert!(
            e.to_string()
                .contains("bridge name 'virbr0' already in use"),
            "{e}"
        );

        // Unknown forward mode.
        let e = conn
            .define_xml("<network><name>f</name>\n  <forward mode='tunnel'/></network>")
            .await
            .unwrap_err();
        println!("forward mode: {e}");
        assert!(
            e.to_string().contains("unknown forwarding type 'tunnel'"),
            "{e}"
        );
        assert_eq!(
            e.xml_location().map(|l| (l.line, l.path.as_str())),
            Some((2, "/network/forward/@mode"))
        );

        let names: Vec<String> = conn
            .list_all(NetworkListFlags::empty())
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(
            names,
            ["a", "b", "d"],
            "refused definitions were not stored"
        );
        conn.destroy(&a).await.unwrap();
        let _ = nd.delete("taken0").await;
    });
}
