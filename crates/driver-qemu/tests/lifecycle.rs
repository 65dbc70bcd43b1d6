//! End-to-end lifecycle tests with real QEMU (TCG) and the tiny Linux guest
//! from `scripts/build-test-guest`: start, boot marker on the serial port,
//! ACPI shutdown, destroy, suspend/resume, reboot, re-attach from a new
//! driver instance, and a SIGKILLed QEMU reported as crashed.
//!
//! Skipped with a printed reason when QEMU or the guest cannot be found
//! (`scripts/install-test-deps qemu` installs them).

mod common;

use std::time::Duration;

use futures::StreamExt;
use virtkit_core::event::detail;
use virtkit_core::{CreateFlags, DomainState, EventFilter, LifecycleKind};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_shutdown_destroy_suspend_resume() {
    let Some(env) = TestEnv::new("lifecycle").await else {
        return;
    };
    let conn = env.connect().await;
    let mut events = conn.subscribe(EventFilter::default()).unwrap();
    let mut dom = conn.define_domain(&env.guest_xml("g1", &[])).await.unwrap();
    assert_eq!(dom.state().await.unwrap().0, DomainState::Shutoff);

    dom.start(CreateFlags::empty()).await.unwrap();
    assert!(dom.id().is_some());
    assert_eq!(dom.state().await.unwrap(), (DomainState::Running, 1));
    env.wait_serial("g1", "VIRTKIT-GUEST-READY", 1).await;
    let info = dom.info().await.unwrap();
    assert_eq!(info.max_mem_kib, 256 * 1024);
    assert!(info.cpu_time_ns > 0);

    dom.suspend().await.unwrap();
    assert_eq!(dom.state().await.unwrap(), (DomainState::Paused, 1));
    dom.resume().await.unwrap();
    assert_eq!(dom.state().await.unwrap(), (DomainState::Running, 5));

    // ACPI power button: the guest powers itself off.
    dom.shutdown().await.unwrap();
    wait_state(&dom, DomainState::Shutoff, Duration::from_secs(60)).await;
    assert_eq!(dom.state().await.unwrap().1, 1, "shut off (shutdown)");

    dom.start(CreateFlags::empty()).await.unwrap();
    env.wait_serial("g1", "VIRTKIT-GUEST-READY", 2).await;
    dom.destroy().await.unwrap();
    assert_eq!(dom.state().await.unwrap(), (DomainState::Shutoff, 2));
    let e = dom.destroy().await.unwrap_err();
    assert!(e.to_string().contains("not running"), "{e}");

    let want = [
        (LifecycleKind::Defined, detail::DEFINED_ADDED),
        (LifecycleKind::Started, detail::STARTED_BOOTED),
        (LifecycleKind::Suspended, detail::SUSPENDED_PAUSED),
        (LifecycleKind::Resumed, detail::RESUMED_UNPAUSED),
        (LifecycleKind::Shutdown, detail::SHUTDOWN_GUEST),
        (LifecycleKind::Stopped, detail::STOPPED_SHUTDOWN),
        (LifecycleKind::Started, detail::STARTED_BOOTED),
        (LifecycleKind::Stopped, detail::STOPPED_DESTROYED),
    ];
    for (kind, d) in want {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("event in time")
            .unwrap();
        assert_eq!((ev.kind, ev.detail), (kind, d), "event order");
    }
    dom.undefine().await.unwrap();
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_boots_again() {
    let Some(env) = TestEnv::new("reboot").await else {
        return;
    };
    let conn = env.connect().await;
    let mut dom = conn.define_domain(&env.guest_xml("g2", &[])).await.unwrap();
    dom.start(CreateFlags::empty()).await.unwrap();
    env.wait_serial("g2", "VIRTKIT-GUEST-READY", 1).await;
    dom.reboot().await.unwrap();
    env.wait_serial("g2", "VIRTKIT-GUEST-READY", 2).await;
    assert_eq!(dom.state().await.unwrap().0, DomainState::Running);
    dom.destroy().await.unwrap();
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_reattaches_and_sees_crashes() {
    let Some(env) = TestEnv::new("reattach").await else {
        return;
    };
    let (pid1, pid2);
    {
        let conn = env.connect().await;
        for name in ["r1", "r2"] {
            let mut d = conn.define_domain(&env.guest_xml(name, &[])).await.unwrap();
            d.start(CreateFlags::PAUSED).await.unwrap();
        }
        pid1 = env.qemu_pid("r1");
        pid2 = env.qemu_pid("r2");
        // Dropping the last connection releases the instance; QEMU stays.
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(process_alive(pid1) && process_alive(pid2));
    // r2's QEMU dies while no virtkit process watches it.
    kill(pid2, libc::SIGKILL);
    wait_gone(pid2).await;

    let conn = env.connect().await;
    let r1 = conn.lookup_domain("r1").await.unwrap();
    assert_eq!(
        r1.state().await.unwrap(),
        (DomainState::Paused, 1),
        "re-attached, still paused"
    );
    let r2 = conn.lookup_domain("r2").await.unwrap();
    assert_eq!(
        r2.state().await.unwrap(),
        (DomainState::Shutoff, 3),
        "shut off (crashed)"
    );

    // And a crash while watched arrives as an event.
    let mut events = conn
        .subscribe(EventFilter {
            domain: Some(r1.uuid()),
            kinds: vec![LifecycleKind::Stopped],
        })
        .unwrap();
    r1.resume().await.unwrap();
    kill(pid1, libc::SIGKILL);
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event in time")
        .unwrap();
    assert_eq!(ev.detail, detail::STOPPED_FAILED);
    assert_eq!(r1.state().await.unwrap(), (DomainState::Shutoff, 3));
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_console_and_screenshot() {
    let Some(env) = TestEnv::new("monitor").await else {
        return;
    };
    let disk = env.root.join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let conn = env.connect().await;
    let extra = [
        format!(
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='vdb' bus='virtio'/></disk>",
            disk.display()
        ),
        "<serial type='pty'><target port='1'/></serial>".to_string(),
        "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut dom = conn
        .define_domain(&env.guest_xml("m1", &extra))
        .await
        .unwrap();
    dom.start(CreateFlags::empty()).await.unwrap();
    env.wait_serial("m1", "VIRTKIT-GUEST-READY", 1).await;
    let ops = conn.domains().unwrap();
    let h = dom.handle();

    let stats = ops
        .stats(h, virtkit_core::StatsGroups::empty())
        .await
        .unwrap();
    let get = |k: &str| {
        stats
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(get("state.state").as_deref(), Some("1"));
    assert!(get("cpu.time").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(get("vcpu.current").as_deref(), Some("1"));
    assert_eq!(get("block.count").as_deref(), Some("1"));
    assert_eq!(get("block.0.name").as_deref(), Some("vdb"));

    let bs = ops.block_stats(h, "vdb").await.unwrap();
    assert!(bs.rd_req > 0, "the guest kernel probed the disk: {bs:?}");
    assert!(ops.block_stats(h, "vdz").await.is_err());

    let pty = ops.console_path(h, Some("serial1")).await.unwrap();
    assert!(pty.starts_with("/dev/pts/"), "{}", pty.display());
    let e = ops.console_path(h, None).await.unwrap_err();
    assert!(
        e.to_string().contains("not interactive"),
        "serial0 is a file: {e}"
    );

    let (img, mime) = ops.screenshot(h, 0).await.unwrap();
    assert_eq!(mime, "image/x-portable-pixmap");
    assert!(img.starts_with(b"P6"), "a PPM image");
    dom.destroy().await.unwrap();
    env.assert_clean();
}
