//! virtkit's remote driver against Debian's real libvirtd (a private
//! instance serving libvirt's test driver): the `virtkit` CLI must print
//! the same through libvirtd as on its own in-process test driver, and the
//! Rust API must see the same results.

mod common;

// Links the remote driver (registered at link time) into this test.
use virtkit_remote as _;

use std::process::Command;
use std::time::Duration;

use common::*;
use virtkit::{Connect, CreateFlags, DomainState, ListFlags};

const CASES: &[&str] = &[
    "list --all",
    "list --all --uuid --name --id",
    "dominfo test",
    "dominfo 1",
    "domstate --reason test",
    "domid test; domname 1; domuuid test",
    "dumpxml test",
    "define $D/vm1.xml; list --all; dominfo vm1; domstate --reason vm1; dumpxml vm1",
    "define $D/vm1.xml; start vm1; list; suspend vm1; domstate --reason vm1; resume vm1; \
     domstate --reason vm1; shutdown vm1; domstate --reason vm1",
    "define $D/vm1.xml; start vm1; destroy vm1; domstate --reason vm1; undefine vm1; list --all",
    "autostart test; dominfo test; autostart --disable test; dominfo test",
    "destroy test; start test; domid test; domstate --reason test",
    "net-list --all",
    "net-info default",
    "net-dumpxml default",
    "iface-list --all",
    "pool-list --all",
    "pool-info default-pool",
    "vol-list default-pool",
    "nodeinfo",
    "hostname",
    "start test",
    "dominfo nosuch",
    "resume test",
    "destroy test; destroy test",
];

#[test]
fn virtkit_cli_through_libvirtd_matches_its_own_test_driver() {
    let Some(lv) = Libvirtd::start() else {
        return skip("libvirtd not installed (scripts/install-test-deps daemon)");
    };
    let bin = virtkit_bin();
    let dir = TempDir::new("xml");
    std::fs::write(dir.path().join("vm1.xml"), VM1).unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let cmd = case.replace("$D", &dir.path().display().to_string());
        let want = run(
            Command::new(&bin).args(["-c", "test:///default", &cmd]),
            Duration::from_secs(30),
        );
        // libvirtd's test:///default lives while a connection is open, like
        // ours: each virtkit run starts from the built-in host.
        let got = run(
            Command::new(&bin).args(["-c", &lv.uri(), &cmd]),
            Duration::from_secs(30),
        );
        let (w, g) = (mask(&want.stdout), mask(&got.stdout));
        let (we, ge) = (mask(&want.stderr), mask(&got.stderr));
        if w != g || we != ge || want.status.code() != got.status.code() {
            failures.push(format!(
                "case {case:?}\n--- in-process\n{w}\n{we}\n--- through libvirtd\n{g}\n{ge}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_api_through_libvirtd_sees_libvirts_test_driver() {
    let Some(lv) = Libvirtd::start() else {
        return skip("libvirtd not installed (scripts/install-test-deps daemon)");
    };
    let c = Connect::open(&lv.uri()).await.unwrap();
    assert_eq!(c.hypervisor_type().await.unwrap(), "TEST");
    assert_eq!(c.hypervisor_version().await.unwrap(), 2);
    let n = c.node_info().await.unwrap();
    assert_eq!((n.model.as_str(), n.cpus, n.mhz), ("i686", 16, 1400));
    let doms = c.list_domains(ListFlags::empty()).await.unwrap();
    assert_eq!(doms.len(), 1);
    let mut d = c.define_domain(VM1).await.unwrap();
    d.start(CreateFlags::empty()).await.unwrap();
    assert_eq!(d.state().await.unwrap().0, DomainState::Running);
    assert_eq!(d.id(), Some(2));
    // libvirt's own error, code and words, arrive unchanged.
    d.destroy().await.unwrap();
    let e = d.destroy().await.unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::OperationInvalid);
    assert_eq!(
        e.to_string(),
        "Requested operation is not valid: domain is not running"
    );
    d.undefine().await.unwrap();
    let label = c
        .domains()
        .unwrap()
        .security_label(c.lookup_domain("test").await.unwrap().handle())
        .await
        .unwrap();
    assert_eq!(label.label, "libvirt-test");
    let m = c.security_model().await.unwrap();
    assert_eq!(m.model, "testSecurity");
    c.close().await.unwrap();
    // A closed connection fails cleanly.
    let e = c.hypervisor_type().await.unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::InvalidConn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_libvirtd_reach_a_virtkit_subscriber() {
    use futures::StreamExt;
    let Some(lv) = Libvirtd::start() else {
        return skip("libvirtd not installed (scripts/install-test-deps daemon)");
    };
    let watcher = Connect::open(&lv.uri()).await.unwrap();
    let actor = Connect::open(&lv.uri()).await.unwrap();
    let mut events = watcher.subscribe(Default::default()).unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    let mut d = actor.define_domain(VM1).await.unwrap();
    d.start(CreateFlags::empty()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("event in time")
            .unwrap();
        got.push((ev.domain.name, ev.kind.as_str(), ev.detail));
    }
    assert_eq!(
        got,
        [
            ("vm1".to_string(), "Defined", 0),
            ("vm1".to_string(), "Started", 0)
        ]
    );
}

/// Statistics, leases, network updates, XML flags and a streamed
/// screenshot: `virtkit` through libvirtd prints what `virsh` prints on
/// libvirt's in-process test driver (whose I/O counters follow the clock,
/// so their digits are masked).
#[test]
fn virtkit_cli_through_libvirtd_matches_virsh_for_monitoring_updates_and_streams() {
    if !have("virsh") {
        return skip("virsh not installed (scripts/install-test-deps base)");
    }
    let Some(lv) = Libvirtd::start() else {
        return skip("libvirtd not installed (scripts/install-test-deps daemon)");
    };
    let bin = virtkit_bin();
    let dir = TempDir::new("shots");
    let cases = [
        "domstats test",
        "domstats",
        "domstats --state test",
        "domblkstat test vda",
        "domblkstat test vda --human",
        "domifstat test testnet0",
        "net-dhcp-leases default",
        // VIR_NETWORK_XML_INACTIVE goes out as 1: libvirt's test driver
        // refuses it with its own words.
        "net-dumpxml --inactive default",
        "net-update default add ip-dhcp-host \"<host mac='00:11:22:33:44:55' ip='192.168.122.5'/>\" \
         --live --config; net-dumpxml default",
        "net-update default delete ip-dhcp-host \"<host mac='00:11:22:33:44:66' ip='192.168.122.6'/>\"",
        "net-destroy default; net-update default add dns-host \
         \"<host ip='192.168.122.7'><hostname>foo</hostname></host>\"; net-dumpxml default",
        "screenshot test $D/shot.png",
    ];
    let digits = |s: &[u8]| -> String {
        let s = mask(s);
        let mut out = String::with_capacity(s.len());
        let mut last_digit = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !last_digit {
                    out.push('N');
                }
                last_digit = true;
            } else {
                out.push(c);
                last_digit = false;
            }
        }
        out
    };
    let mut failures = Vec::new();
    for case in cases {
        let masked = case.starts_with("domblkstat") || case.starts_with("domifstat");
        let norm = |s: &[u8]| if masked { digits(s) } else { mask(s) };
        let want_cmd = case.replace("$D/shot.png", &format!("{}/want.png", dir.path().display()));
        let got_cmd = case.replace("$D/shot.png", &format!("{}/got.png", dir.path().display()));
        let want = run(
            Command::new("virsh").args(["-c", "test:///default", &want_cmd]),
            Duration::from_secs(30),
        );
        let got = run(
            Command::new(&bin).args(["-c", &lv.uri(), &got_cmd]),
            Duration::from_secs(30),
        );
        let (w, g) = (
            norm(&want.stdout).replace("want.png", "X"),
            norm(&got.stdout).replace("got.png", "X"),
        );
        let (we, ge) = (norm(&want.stderr), norm(&got.stderr));
        if w.trim_end() != g.trim_end()
            || we.trim_end() != ge.trim_end()
            || want.status.code() != got.status.code()
        {
            failures.push(format!(
                "case {case:?}\n--- virsh on test:///default\n{w}\n{we}\n--- virtkit through libvirtd\n{g}\n{ge}"
            ));
        }
    }
    // The streamed image is libvirt's, byte for byte.
    let want = std::fs::read(dir.path().join("want.png")).unwrap();
    let got = std::fs::read(dir.path().join("got.png")).unwrap();
    assert!(want.starts_with(b"\x89PNG"));
    assert_eq!(got, want, "the screenshot differs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Network lifecycle events and the typed statistics calls of the Rust API
/// against libvirtd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_events_and_statistics_from_libvirtd() {
    use futures::StreamExt;
    use virtkit::{NetworkEventKind, StatsGroups, TypedValue};
    let Some(lv) = Libvirtd::start() else {
        return skip("libvirtd not installed (scripts/install-test-deps daemon)");
    };
    let watcher = Connect::open(&lv.uri()).await.unwrap();
    let actor = Connect::open(&lv.uri()).await.unwrap();
    let mut events = watcher.events().unwrap().subscribe_networks(None).unwrap();
    // The stream registers when first polled.
    let _ = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    let nets = actor.networks().unwrap();
    let default = nets.lookup_by_name("default").await.unwrap();
    nets.destroy(&default).await.unwrap();
    nets.start(&default).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("event in time")
            .unwrap();
        got.push((ev.network.name, ev.kind));
    }
    assert_eq!(
        got,
        [
            ("default".to_string(), NetworkEventKind::Stopped),
            ("default".to_string(), NetworkEventKind::Started),
        ]
    );
    drop(events);

    let d = actor.lookup_domain("test").await.unwrap();
    let ops = actor.domains().unwrap();
    let stats = ops.stats(d.handle(), StatsGroups::STATE).await.unwrap();
    assert_eq!(
        stats,
        [
            ("state.state".to_string(), TypedValue::Int(1)),
            ("state.reason".to_string(), TypedValue::Int(0)),
        ]
    );
    let bs = ops.block_stats(d.handle(), "vda").await.unwrap();
    assert!(bs.rd_req > 0 && bs.errs >= 0, "{bs:?}");
    let is = ops.interface_stats(d.handle(), "testnet0").await.unwrap();
    assert!(is.rx_bytes > 0, "{is:?}");
    let e = ops.block_stats(d.handle(), "vdz").await.unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::InvalidArg, "{e}");
    let e = nets.dhcp_leases(&default, None).await.unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::NoSupport);
    let e = actor
        .domain_capabilities(None, None, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::NoSupport);
}
