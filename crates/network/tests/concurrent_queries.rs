//! Queries do not wait behind a network being started: while `net-start`
//! waits for a slow dnsmasq (a wrapper that sleeps before running the real
//! one), `net-list`, `net-info`, `net-dumpxml` and lookups of the same and of
//! other networks answer, and a second change waits for the first.
//!
//! Its own test binary: it points `VIRTKIT_DNSMASQ` (process-wide) at the
//! wrapper. Runs in a network namespace it creates; needs root and dnsmasq.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use virtkit_core::{NetworkListFlags, NetworkOps, XmlFlags};
use virtkit_network::{Layout, NetworkConnection};

fn skip(why: &str) {
    if std::env::var_os("VIRTKIT_NET_REQUIRE_PRIVILEGED").is_some_and(|v| v == "1") {
        panic!("cannot run: {why}");
    }
    eprintln!("SKIPPED: concurrent_queries: {why}");
}

const SLOW: &str = "<network><name>slow</name><bridge name='vkslow0' stp='off'/>\
    <ip address='10.66.0.1' netmask='255.255.255.0'>\
    <dhcp><range start='10.66.0.10' end='10.66.0.20'/></dhcp></ip></network>";
const OTHER: &str = "<network><name>other</name><bridge name='vkother0' stp='off'/>\
    <ip address='10.67.0.1' netmask='255.255.255.0'/></network>";

#[test]
fn queries_answer_while_a_network_starts() {
    let Some(dnsmasq) = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return skip("dnsmasq is not installed (scripts/install-test-deps net)");
    };
    let root = std::env::temp_dir().join(format!("vk-net-concurrent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // dnsmasq that takes a second and a half longer to come up.
    let wrapper = root.join("slow-dnsmasq");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nsleep 1.5\nexec {dnsmasq} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: set before any other thread of this test binary reads the
    // environment (this binary has this one test).
    unsafe { std::env::set_var("VIRTKIT_DNSMASQ", &wrapper) };

    let r = root.clone();
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
        rt.block_on(body(r));
        Ok(())
    })
    .join();
    let _ = std::fs::remove_dir_all(&root);
    match res {
        Ok(Ok(())) => {}
        Ok(Err(why)) => skip(&why),
        Err(p) => std::panic::resume_unwind(p),
    }
}

async fn body(root: std::path::PathBuf) {
    let conn = Arc::new(
        NetworkConnection::open_layout(Layout::under(&root), false)
            .await
            .unwrap(),
    );
    let slow = conn.define_xml(SLOW).await.unwrap();
    let other = conn.define_xml(OTHER).await.unwrap();

    let c = conn.clone();
    let s = slow.clone();
    let start = tokio::spawn(async move { c.start(&s).await });
    // Let the start get going (it is then waiting for dnsmasq).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!start.is_finished(), "the slow start is still running");

    let all = conn.list_all(NetworkListFlags::empty()).await.unwrap();
    assert_eq!(all.len(), 2);
    let info = conn.info(&slow).await.unwrap();
    assert!(!info.active, "not active until its start completes");
    assert!(
        conn.xml_desc(&other, XmlFlags::empty())
            .await
            .unwrap()
            .contains("vkother0")
    );
    assert_eq!(conn.lookup_by_name("other").await.unwrap().uuid, other.uuid);
    assert!(
        !start.is_finished(),
        "the queries answered before the start completed"
    );

    // A change waits for the running one instead of interleaving with it.
    let c = conn.clone();
    let s = slow.clone();
    let destroy = tokio::spawn(async move { c.destroy(&s).await });
    start.await.unwrap().expect("the slow network starts");
    destroy.await.unwrap().expect("then it is destroyed");
    assert!(!conn.info(&slow).await.unwrap().active);

    conn.undefine(&slow).await.unwrap();
    conn.undefine(&other).await.unwrap();
}
