//! Definitions are checked against the emulator's probed capabilities when
//! they are defined: a missing emulator or a configuration the command line
//! cannot express is refused with a clear error, and nothing is stored.

use std::path::PathBuf;

use virtkit_core::{Connect, ListFlags};
use virtkit_driver_qemu as _;

fn root(name: &str) -> PathBuf {
    let r = std::env::temp_dir().join(format!("vk-qemu-define-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&r);
    r
}

fn xml(name: &str, devices: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{devices}</devices></domain>"
    )
}

#[tokio::test]
async fn bad_definitions_are_refused_and_nothing_is_stored() {
    if virtkit_driver_qemu::caps::default_emulator("x86_64").is_err() {
        eprintln!("SKIPPED: no qemu-system-x86_64 (run scripts/install-test-deps qemu)");
        return;
    }
    let dir = root("bad");
    let conn = Connect::open(&format!("qemu:///embed?root={}", dir.display()))
        .await
        .unwrap();

    let err = conn
        .define_domain(&xml(
            "vm1",
            "<emulator>/nonexistent/qemu-system-x86_64</emulator>",
        ))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/qemu-system-x86_64") && msg.contains("emulator"),
        "{msg}"
    );

    // Something this driver cannot express yet: refused, naming it.
    let err = conn
        .define_domain(&xml(
            "vm2",
            "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tpm"), "{err}");
    println!("refused: {err}");

    assert!(
        conn.list_domains(ListFlags::empty())
            .await
            .unwrap()
            .is_empty()
    );
    let stored: Vec<_> = std::fs::read_dir(dir.join("etc/qemu"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
                .collect()
        })
        .unwrap_or_default();
    assert!(stored.is_empty(), "no definition written: {stored:?}");

    // A good one is accepted (the probe result is cached for the next).
    conn.define_domain(&xml("vm3", "<memballoon model='none'/>"))
        .await
        .expect("a plain definition is accepted");
    assert!(dir.join("etc/qemu/vm3.xml").exists());
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_at_once_share_one_instance() {
    if virtkit_driver_qemu::caps::default_emulator("x86_64").is_err() {
        eprintln!("SKIPPED: no qemu-system-x86_64 (run scripts/install-test-deps qemu)");
        return;
    }
    let dir = root("concurrent");
    let uri = format!("qemu:///embed?root={}", dir.display());
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let uri = uri.clone();
            tokio::spawn(async move { Connect::open(&uri).await })
        })
        .collect();
    for o in opens {
        o.await.unwrap().expect("every concurrent open succeeds");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
