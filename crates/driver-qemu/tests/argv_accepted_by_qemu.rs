//! The command lines the builder writes for the common device set are
//! accepted by the installed QEMU: each guest is started paused (`-S`)
//! with the probed capabilities, and QEMU must come up to its monitor
//! (which it only does once every option and device was accepted). The
//! memory backends (memfd, files per NUMA cell) are started the same way.
//!
//! Skipped with a printed reason when `qemu-system-x86_64` is missing
//! (`scripts/install-test-deps qemu` installs it).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use virtkit_core::domain::DomainDef;
use virtkit_driver_qemu::argv::{self, Accel, Context, Host};
use virtkit_driver_qemu::caps::{self, QemuCaps};
use virtkit_driver_qemu::process::{Launch, QemuProcess};
use virtkit_driver_qemu::profile::QemuProfile;
use virtkit_driver_qemu::qmp::Qmp;

/// An i440FX guest with IDE, SCSI and virtio disks, two NICs, serial and
/// virtio channels, VNC, USB input, sound, watchdog, RNG and balloon.
const PC_GUEST: &str = r#"<domain type='qemu'>
  <name>argv-pc</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <iothreads>1</iothreads>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
    <bootmenu enable='yes' timeout='1000'/>
  </os>
  <features><acpi/><apic/></features>
  <cpu><topology sockets='1' cores='2' threads='1'/></cpu>
  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/></clock>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none' discard='unmap'/>
      <source file='@DIR@/ide.img'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' io='threads' iothread='1'/>
      <source file='@DIR@/virtio.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='@DIR@/scsi.img'/>
      <target dev='sda' bus='scsi'/>
      <serial>S1</serial>
    </disk>
    <controller type='scsi' model='virtio-scsi'/>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <model type='e1000'/>
    </interface>
    <serial type='pty'/>
    <console type='pty'/>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
    <sound model='ich6'/>
    <watchdog model='i6300esb' action='poweroff'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='virtio'/>
  </devices>
</domain>"#;

/// A Q35 guest: PCIe root ports added for every device, NUMA cells, a
/// virtio console, virtio input and GPU, xHCI USB and a second video card.
const Q35_GUEST: &str = r#"<domain type='qemu'>
  <name>argv-q35</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features><acpi/></features>
  <cpu>
    <numa>
      <cell id='0' cpus='0' memory='128' unit='MiB'/>
      <cell id='1' cpus='1' memory='128' unit='MiB'/>
    </numa>
  </cpu>
  <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='@DIR@/virtio.img'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <model type='e1000e'/>
    </interface>
    <interface type='user'>
      <model type='rtl8139'/>
    </interface>
    <console type='pty'><target type='virtio'/></console>
    <input type='keyboard' bus='virtio'/>
    <input type='tablet' bus='usb'/>
    <video><model type='virtio' heads='1'/></video>
    <video><model type='virtio' heads='1'/></video>
    <rng model='virtio'><backend model='builtin'/></rng>
  </devices>
</domain>"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vk-argv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

async fn probed() -> Option<QemuCaps> {
    let Ok(binary) = caps::default_emulator("x86_64") else {
        eprintln!("SKIPPED: no qemu-system-x86_64 (run scripts/install-test-deps qemu)");
        return None;
    };
    let dir = scratch("probe");
    let caps = caps::probe::probe(&binary, &dir).await.expect("probe");
    let _ = std::fs::remove_dir_all(&dir);
    Some(caps)
}

/// Starts `xml` paused and waits for its monitor.
async fn starts(caps: &QemuCaps, name: &str, xml: &str) {
    let dir = scratch(name);
    for img in ["ide.img", "virtio.img", "scsi.img"] {
        let f = std::fs::File::create(dir.join(img)).expect("image");
        f.set_len(1 << 20).expect("image size");
    }
    let xml = xml.replace("@DIR@", &dir.display().to_string());
    let def = DomainDef::parse(&xml).expect("definition");
    let domain = def.normalised(&QemuProfile);
    let monitor = dir.join("monitor.sock");
    let listener = std::os::unix::net::UnixListener::bind(&monitor).expect("monitor socket");
    std::fs::write(dir.join("master-key.aes"), [7u8; 32]).expect("master key");
    let ctx = Context {
        caps,
        accel: Accel::Tcg,
        domain_dir: dir.clone(),
        monitor_fd: listener.as_raw_fd(),
        nets: Vec::new(),
        user: "nobody".into(),
        short_name: argv::short_name(-1, name),
        memory_dir: dir.join("ram"),
    };
    let cmd = argv::build_with(&domain, &ctx, &Host::current()).expect("command line");
    for d in &cmd.dirs {
        std::fs::create_dir_all(d).expect("memory directory");
    }
    // A current QEMU gets libvirt's current syntax: JSON devices, and ACPI
    // switched off through the machine rather than the removed -no-acpi.
    assert!(
        cmd.args.iter().any(|a| a.starts_with(r#"{"driver":"#)),
        "{cmd:?}"
    );
    assert!(!cmd.args.iter().any(|a| a == "-no-acpi"), "{cmd:?}");
    let log = dir.join("qemu.log");
    let keep = [listener.as_raw_fd()];
    let process = QemuProcess::spawn(&Launch {
        binary: &cmd.binary,
        args: &cmd.args,
        env: &cmd.env,
        log: &log,
        keep_fds: &keep,
    })
    .expect("spawn");
    let up = Qmp::connect(&monitor, Duration::from_secs(20)).await;
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = process.terminate(Duration::from_secs(5), true).await;
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        up.is_ok(),
        "QEMU refused the command line of {name}:\n{}\nQEMU said: {said}",
        cmd.to_golden_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_accepts_the_common_device_set() {
    let Some(caps) = probed().await else {
        return;
    };
    starts(&caps, "pc", PC_GUEST).await;
    starts(&caps, "q35", Q35_GUEST).await;
    memory_backends(&caps).await;
}

/// Shared memory for vhost-user back ends: a memfd for the whole memory;
/// two NUMA cells on files, one shared and one private, with discard; and
/// memory hotplug slots with a DIMM on a file (domain children, devices).
const MEMORY_GUESTS: &[(&str, &str, &str)] = &[
    (
        "memfd",
        "<memoryBacking><source type='memfd'/><access mode='shared'/>\
         <allocation mode='immediate' threads='2'/></memoryBacking>",
        "",
    ),
    (
        "numa-files",
        "<memoryBacking><source type='file'/><discard/></memoryBacking>\
         <cpu><numa><cell id='0' cpus='0' memory='64' unit='MiB' memAccess='shared'/>\
         <cell id='1' cpus='1' memory='64' unit='MiB' memAccess='private' discard='no'/>\
         </numa></cpu>",
        "",
    ),
    (
        "dimm",
        "<maxMemory slots='4' unit='MiB'>1024</maxMemory><features><acpi/></features>\
         <cpu><numa><cell id='0' cpus='0-1' memory='128' unit='MiB'/></numa></cpu>",
        "<memory model='dimm' access='shared'><target><size unit='MiB'>128</size>\
         <node>0</node></target><address type='dimm' slot='0'/></memory>",
    ),
];

/// Starts a small guest with each of [`MEMORY_GUESTS`].
async fn memory_backends(caps: &QemuCaps) {
    for (name, top, devices) in MEMORY_GUESTS {
        let xml = format!(
            "<domain type='qemu'><name>mem-{name}</name><memory unit='MiB'>128</memory>\
             <vcpu>2</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>{top}\
             <devices>{devices}<memballoon model='none'/></devices></domain>"
        );
        starts(caps, name, &xml).await;
    }
}
