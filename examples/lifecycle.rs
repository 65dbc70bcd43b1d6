//! Defines a guest, watches its lifecycle events while starting, pausing and
//! stopping it, and prints libvirt's canonical XML: the library's main loop
//! in a few lines.
//!
//! ```sh
//! cargo run --example lifecycle                      # test:///default
//! cargo run --example lifecycle -- 'qemu:///embed?root=/tmp/vk'   # real QEMU
//! ```

use futures::StreamExt;
use virtkit::{Connect, CreateFlags, EventFilter, XmlFlags};

const GUEST: &str = "<domain type='qemu'>
  <name>example</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> virtkit::Result<()> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "test:///default".into());
    let conn = Connect::open(&uri).await?;

    let mut dom = conn.define_domain(GUEST).await?;
    let mut events = conn.subscribe(EventFilter {
        domain: Some(dom.uuid()),
        ..EventFilter::default()
    })?;

    dom.start(CreateFlags::empty()).await?;
    dom.suspend().await?;
    dom.resume().await?;
    let info = dom.info().await?;
    println!(
        "{} is {:?} with {} KiB",
        dom.name(),
        info.state,
        info.memory_kib
    );
    dom.destroy().await?;

    // Started, suspended, resumed, stopped: four events.
    for _ in 0..4 {
        if let Some(ev) = events.next().await {
            println!(
                "event: {} {}",
                ev.kind.as_str(),
                ev.kind.detail_str(ev.detail)
            );
        }
    }
    println!("{}", dom.xml(XmlFlags::INACTIVE).await?);
    dom.undefine().await?;
    Ok(())
}
