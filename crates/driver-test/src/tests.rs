use super::*;
use futures::StreamExt;
use virtkit_core::event::LifecycleKind;
use virtkit_core::{Connect, Domain, ErrorKind};

async fn open() -> Connect {
    virtkit_core::registry::register(&TestDriver);
    Connect::open("test:///default").await.unwrap()
}

const VM: &str = "<domain type='test'><name>vm1</name><memory>1048576</memory>\
                  <os><type>hvm</type></os><devices><interface type='network'>\
                  <source network='default'/></interface></devices></domain>";

#[tokio::test]
async fn default_host_has_libvirts_contents() {
    let c = open().await;
    let doms = c.list_domains(ListFlags::empty()).await.unwrap();
    assert!(doms.iter().any(|d| d.name() == "test" && d.id() == Some(1)));
    let t = c.lookup_domain("test").await.unwrap();
    let info = t.info().await.unwrap();
    assert_eq!(
        (info.max_mem_kib, info.memory_kib, info.nr_virt_cpu),
        (8388608, 2097152, 2)
    );
    let n = c.node_info().await.unwrap();
    assert_eq!((n.cpus, n.mhz, n.memory_kib), (16, 1400, 3145728));
    let net = c
        .networks()
        .unwrap()
        .lookup_by_name("default")
        .await
        .unwrap();
    let ni = c.networks().unwrap().info(&net).await.unwrap();
    assert_eq!(ni.bridge.as_deref(), Some("virbr0"));
    assert!(ni.active && ni.persistent);
}

#[tokio::test]
async fn lifecycle_ids_reasons_and_events() {
    // A private host so that tests running in parallel do not interfere.
    let dir = std::env::temp_dir().join(format!("vk-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = dir.join("node.xml");
    std::fs::write(&node, "<node><cpu><active>4</active></cpu></node>").unwrap();
    virtkit_core::registry::register(&TestDriver);
    let c = Connect::open(&format!("test://{}", node.display()))
        .await
        .unwrap();
    assert_eq!(c.node_info().await.unwrap().cpus, 4);
    let mut events = c.subscribe(EventFilter::default()).unwrap();

    let mut d: Domain = c.define_domain(VM).await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Shutoff, 0));
    d.start(CreateFlags::empty()).await.unwrap();
    assert_eq!(d.id(), Some(1));
    assert_eq!(d.state().await.unwrap(), (DomainState::Running, 1));
    let e = d.start(CreateFlags::empty()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationInvalid);
    d.suspend().await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Paused, 1));
    assert_eq!(
        d.suspend().await.unwrap_err().to_string(),
        "internal error: domain 'vm1' not running"
    );
    d.resume().await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Running, 5));
    d.destroy().await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Shutoff, 2));
    assert_eq!(
        d.destroy().await.unwrap_err().to_string(),
        "Requested operation is not valid: domain is not running"
    );
    d.start(CreateFlags::empty()).await.unwrap();
    assert_eq!(d.id(), Some(2), "ids keep increasing");
    d.shutdown().await.unwrap();
    assert_eq!(d.state().await.unwrap(), (DomainState::Shutoff, 1));
    d.undefine().await.unwrap();
    assert_eq!(
        c.lookup_domain("vm1").await.unwrap_err().kind(),
        ErrorKind::NoDomain
    );

    use LifecycleKind::*;
    let want = vec![
        (Defined, 0),
        (Started, 0),
        (Suspended, 0),
        (Resumed, 0),
        (Stopped, 1),
        (Started, 0),
        (Stopped, 0),
        (Undefined, 0),
    ];
    let mut seen = Vec::new();
    for _ in 0..want.len() {
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.domain.name, "vm1");
        seen.push((e.kind, e.detail));
    }
    assert_eq!(seen, want);
    std::fs::remove_dir_all(&dir).ok();
}
