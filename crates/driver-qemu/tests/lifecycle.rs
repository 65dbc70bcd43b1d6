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
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='vdb' bus='virtio'/>\
             <iotune><total_bytes_sec>10485760</total_bytes_sec><read_iops_sec>400</read_iops_sec></iotune></disk>",
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

    // The live definition names the machine type `pc` stood for.
    let live = dom.xml(virtkit_core::XmlFlags::empty()).await.unwrap();
    assert!(live.contains("machine='pc-i440fx-"), "{live}");
    let inactive = dom.xml(virtkit_core::XmlFlags::INACTIVE).await.unwrap();
    assert!(inactive.contains("machine='pc'"), "{inactive}");

    let bs = ops.block_stats(h, "vdb").await.unwrap();
    assert!(bs.rd_req > 0, "the guest kernel probed the disk: {bs:?}");
    assert!(ops.block_stats(h, "vdz").await.is_err());

    // I/O limits: set over QMP at start, read back from QEMU, changed live.
    let tune = |p: &virtkit_core::TypedParams, k: &str| {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string())
    };
    let t = ops.block_iotune(h, "vdb").await.unwrap();
    assert_eq!(
        tune(&t, "total_bytes_sec").as_deref(),
        Some("10485760"),
        "{t:?}"
    );
    assert_eq!(tune(&t, "read_iops_sec").as_deref(), Some("400"), "{t:?}");
    assert_eq!(tune(&t, "write_iops_sec").as_deref(), Some("0"), "{t:?}");
    ops.set_block_iotune(
        h,
        "vdb",
        &vec![(
            "write_iops_sec".into(),
            virtkit_core::TypedValue::ULLong(300),
        )],
    )
    .await
    .unwrap();
    let t = ops.block_iotune(h, "vdb").await.unwrap();
    assert_eq!(tune(&t, "write_iops_sec").as_deref(), Some("300"), "{t:?}");
    assert_eq!(
        tune(&t, "total_bytes_sec").as_deref(),
        Some("10485760"),
        "others stay"
    );
    let e = ops
        .set_block_iotune(
            h,
            "vdb",
            &vec![("total_iops_sec".into(), virtkit_core::TypedValue::ULLong(5))],
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot be set at the same time"),
        "{e}"
    );
    assert!(ops.block_iotune(h, "vdz").await.is_err());

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_guests_start_concurrently() {
    let Some(env) = TestEnv::new("ten").await else {
        return;
    };
    let conn = env.connect().await;
    let mut doms = Vec::new();
    for i in 0..10 {
        let xml = env.guest_xml(&format!("c{i}"), &[]).replace(
            "<memory unit='MiB'>256</memory>",
            "<memory unit='MiB'>96</memory>",
        );
        doms.push(conn.define_domain(&xml).await.unwrap());
    }
    let starts = doms.iter_mut().map(|d| d.start(CreateFlags::empty()));
    for r in futures::future::join_all(starts).await {
        r.unwrap();
    }
    let mut ids: Vec<u32> = doms.iter().map(|d| d.id().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "ten distinct ids");
    for i in 0..10 {
        env.wait_serial(&format!("c{i}"), "VIRTKIT-GUEST-READY", 1)
            .await;
    }
    let destroys = doms.iter().map(|d| d.destroy());
    for r in futures::future::join_all(destroys).await {
        r.unwrap();
    }
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_transient_create_and_qcow2_disks() {
    let Some(env) = TestEnv::new("autostart").await else {
        return;
    };
    let Ok(qemu_img) = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(env.root.join("d.qcow2"))
        .arg("64M")
        .status()
    else {
        eprintln!("SKIPPED: no qemu-img");
        return;
    };
    assert!(qemu_img.success());
    let disk = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' discard='unmap'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>",
        env.root.join("d.qcow2").display()
    );
    {
        let conn = env.connect().await;
        let d = conn
            .define_domain(&env.guest_xml("auto", &[&disk]))
            .await
            .unwrap();
        d.set_autostart(true).await.unwrap();
        // A transient guest runs at once and is gone when it stops.
        let t = conn
            .create_domain(&env.guest_xml("trans", &[]), CreateFlags::empty())
            .await
            .unwrap();
        assert!(
            !conn
                .domains()
                .unwrap()
                .is_persistent(t.handle())
                .await
                .unwrap()
        );
        t.destroy().await.unwrap();
        assert!(
            conn.lookup_domain("trans").await.is_err(),
            "transient domain gone"
        );
        assert_eq!(d.state().await.unwrap().0, DomainState::Shutoff);
    }
    // The next instance starts the autostart domain as it opens.
    let conn = env.connect().await;
    let d = conn.lookup_domain("auto").await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Running, 1));
    env.wait_serial("auto", "VIRTKIT-GUEST-READY", 1).await;
    let st = conn
        .domains()
        .unwrap()
        .block_stats(d.handle(), "vda")
        .await
        .unwrap();
    assert!(st.rd_req > 0, "the qcow2 disk is attached and read: {st:?}");
    d.destroy().await.unwrap();
    d.set_autostart(false).await.unwrap();
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_deadline_agent_and_forced_fallback() {
    use virtkit_core::{ShutdownFlags, ShutdownOutcome};
    let Some(env) = TestEnv::new("deadline").await else {
        return;
    };
    let conn = env.connect().await;
    let agent =
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
    let mut dom = conn
        .define_domain(&env.guest_xml("s1", &[agent]))
        .await
        .unwrap();

    dom.start(CreateFlags::empty()).await.unwrap();
    env.wait_serial("s1", "VIRTKIT-GUEST-READY", 1).await;
    // The busybox guest runs no qemu-guest-agent: agent mode says so...
    let e = conn
        .domains()
        .unwrap()
        .shutdown(dom.handle(), ShutdownFlags::GUEST_AGENT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), virtkit_core::ErrorKind::AgentUnresponsive, "{e}");

    // The same agent call again, in the background: it holds the domain's
    // job lock while it waits for the silent agent. Queries answer at once
    // meanwhile; another job waits its turn.
    let bg = {
        let conn = conn.clone();
        let h = dom.handle().clone();
        tokio::spawn(async move {
            conn.domains()
                .unwrap()
                .shutdown(&h, ShutdownFlags::GUEST_AGENT)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dom.state().await.unwrap().0, DomainState::Running);
    assert!(dom.info().await.is_ok());
    assert!(
        !bg.is_finished(),
        "queries answered while the agent job is still running"
    );
    dom.suspend().await.unwrap();
    assert!(
        bg.is_finished(),
        "suspend ran only after the agent job released the domain"
    );
    assert!(bg.await.unwrap().is_err());
    dom.resume().await.unwrap();

    // ...and agent,acpi falls back to the ACPI button.
    let out = dom
        .shutdown_within(
            ShutdownFlags::GUEST_AGENT | ShutdownFlags::ACPI_POWER_BTN,
            Duration::from_secs(60),
            false,
        )
        .await
        .unwrap();
    assert_eq!(out, ShutdownOutcome::ShutDown);

    // A paused guest cannot answer the button: the deadline passes.
    dom.start(CreateFlags::PAUSED).await.unwrap();
    let e = dom
        .shutdown_within(ShutdownFlags::empty(), Duration::from_millis(500), false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), virtkit_core::ErrorKind::OperationTimeout, "{e}");
    let out = dom
        .shutdown_within(ShutdownFlags::empty(), Duration::from_millis(500), true)
        .await
        .unwrap();
    assert_eq!(out, ShutdownOutcome::Destroyed);
    assert_eq!(dom.state().await.unwrap(), (DomainState::Shutoff, 2));
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn efi_guest_boots_with_ovmf_and_keeps_its_variable_store() {
    use virtkit_core::{UndefineFlags, XmlFlags};
    use virtkit_driver_qemu::firmware::{self, FirmwareDirs};
    let Some(env) = TestEnv::new("efi").await else {
        return;
    };
    if !firmware::load(&FirmwareDirs::host(None))
        .iter()
        .any(|d| d.interfaces.iter().any(|i| i == "uefi"))
    {
        eprintln!(
            "SKIPPED: no UEFI firmware descriptor (scripts/install-test-deps qemu installs ovmf)"
        );
        return;
    }
    let conn = env.connect().await;
    // Secure boot off: the test kernel is not signed for the enrolled keys.
    let xml = env.guest_xml("efi1", &[]).replace(
        "<os>",
        "<os firmware='efi'><firmware><feature enabled='no' name='secure-boot'/></firmware>",
    );
    let mut dom = conn.define_domain(&xml).await.unwrap();
    dom.start(CreateFlags::empty()).await.unwrap();
    env.wait_serial("efi1", "VIRTKIT-GUEST-READY", 1).await;

    // The running definition names the image chosen and the variable store
    // made from its template; the persistent one still says firmware='efi'.
    let live = dom.xml(XmlFlags::empty()).await.unwrap();
    assert!(
        live.contains("type='pflash'") && live.contains("/OVMF"),
        "{live}"
    );
    let nvram = env.root.join("lib/qemu/nvram/efi1_VARS.fd");
    assert!(
        live.contains(&*nvram.to_string_lossy()),
        "nvram in the live XML: {live}"
    );
    let meta = std::fs::metadata(&nvram).expect("the variable store was created");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let inactive = dom.xml(XmlFlags::INACTIVE).await.unwrap();
    assert!(
        inactive.contains("firmware='efi'") && !inactive.contains("pflash"),
        "{inactive}"
    );

    dom.destroy().await.unwrap();
    // The store is the guest's data: undefine keeps or removes it only when told.
    let ops = conn.domains().unwrap();
    let e = ops
        .undefine(dom.handle(), UndefineFlags::empty())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nvram"), "{e}");
    assert!(conn.lookup_domain("efi1").await.is_ok(), "still defined");
    ops.undefine(dom.handle(), UndefineFlags::NVRAM)
        .await
        .unwrap();
    assert!(!nvram.exists(), "the variable store was removed");
    env.assert_clean();
}
