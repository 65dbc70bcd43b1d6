//! `virsh capabilities` and `virsh domcapabilities` documents for QEMU, in
//! libvirt's layout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use virtkit_core::host;
use virtkit_core::xml::escape_libvirt as esc;

use super::QemuCaps;

fn wordsize(arch: &str) -> u32 {
    match arch {
        "i686" | "i386" | "armv7l" | "ppc" => 32,
        _ => 64,
    }
}

/// The host capabilities document for the given binaries.
pub fn capabilities(all: &[&QemuCaps]) -> String {
    let mut s = String::from("<capabilities>\n\n  <host>\n");
    let _ = writeln!(s, "    <uuid>{}</uuid>", host::host_uuid());
    let cpus = host::host_cpus();
    let _ = writeln!(
        s,
        "    <cpu>\n      <arch>{}</arch>",
        std::env::consts::ARCH
    );
    let sockets = cpus
        .iter()
        .map(|c| c.socket)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        .max(1);
    let cores = cpus
        .iter()
        .map(|c| (c.socket, c.core))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        .max(1);
    let _ = writeln!(
        s,
        "      <topology sockets='{}' dies='1' cores='{}' threads='{}'/>",
        sockets,
        (cores / sockets).max(1),
        (cpus.len() / cores).max(1)
    );
    s.push_str("    </cpu>\n    <power_management/>\n    <iommu support='no'/>\n");
    s.push_str("    <migration_features>\n      <live/>\n      <uri_transports>\n        <uri_transport>tcp</uri_transport>\n        <uri_transport>rdma</uri_transport>\n      </uri_transports>\n    </migration_features>\n");
    let mut by_node: BTreeMap<u32, Vec<&host::HostCpu>> = BTreeMap::new();
    for c in &cpus {
        by_node.entry(c.node).or_default().push(c);
    }
    let mem = host::host_memory_kib().unwrap_or(0);
    let _ = writeln!(
        s,
        "    <topology>\n      <cells num='{}'>",
        by_node.len().max(1)
    );
    for (node, list) in &by_node {
        let _ = writeln!(s, "        <cell id='{node}'>");
        if by_node.len() == 1 {
            let _ = writeln!(s, "          <memory unit='KiB'>{mem}</memory>");
        }
        let _ = writeln!(s, "          <cpus num='{}'>", list.len());
        for c in list {
            let _ = writeln!(
                s,
                "            <cpu id='{}' socket_id='{}' die_id='{}' core_id='{}' siblings='{}'/>",
                c.id,
                c.socket,
                c.die,
                c.core,
                esc(&c.siblings)
            );
        }
        s.push_str("          </cpus>\n        </cell>\n");
    }
    s.push_str("      </cells>\n    </topology>\n");
    s.push_str("    <secmodel>\n      <model>none</model>\n      <doi>0</doi>\n    </secmodel>\n  </host>\n\n");
    for caps in all {
        let _ = write!(
            s,
            "  <guest>\n    <os_type>hvm</os_type>\n    <arch name='{}'>\n      <wordsize>{}</wordsize>\n      <emulator>{}</emulator>\n",
            esc(&caps.arch),
            wordsize(&caps.arch),
            esc(&caps.binary.to_string_lossy())
        );
        for m in caps.machines.iter().filter(|m| m.accel == "tcg") {
            let _ = writeln!(
                s,
                "      <machine maxCpus='{}'>{}</machine>",
                m.max_cpus,
                esc(&m.name)
            );
            if let Some(a) = &m.alias {
                let _ = writeln!(
                    s,
                    "      <machine canonical='{}' maxCpus='{}'>{}</machine>",
                    esc(&m.name),
                    m.max_cpus,
                    esc(a)
                );
            }
        }
        s.push_str("      <domain type='qemu'/>\n");
        if caps.kvm {
            s.push_str("      <domain type='kvm'/>\n");
        }
        s.push_str("    </arch>\n    <features>\n      <acpi default='on' toggle='yes'/>\n      <apic default='on' toggle='no'/>\n      <cpuselection/>\n      <deviceboot/>\n      <disksnapshot default='on' toggle='no'/>\n    </features>\n  </guest>\n\n");
    }
    s.push_str("</capabilities>\n");
    s
}

/// The domain capabilities document for one binary, machine and virt type.
pub fn domain_capabilities(caps: &QemuCaps, virttype: &str, machine: &str) -> String {
    let accel = if virttype == "kvm" { "kvm" } else { "tcg" };
    let m = caps.machine(accel, machine);
    let mut s = String::from("<domainCapabilities>\n");
    let _ = writeln!(s, "  <path>{}</path>", esc(&caps.binary.to_string_lossy()));
    let _ = writeln!(s, "  <domain>{}</domain>", esc(virttype));
    let _ = writeln!(
        s,
        "  <machine>{}</machine>",
        esc(m.map_or(machine, |m| &m.name))
    );
    let _ = writeln!(s, "  <arch>{}</arch>", esc(&caps.arch));
    let _ = writeln!(s, "  <vcpu max='{}'/>", m.map_or(1, |m| m.max_cpus));
    s.push_str("  <iothreads supported='yes'/>\n");
    s.push_str("  <os supported='yes'>\n    <enum name='firmware'>\n      <value>bios</value>\n");
    if firmware::ovmf_code().is_some() {
        s.push_str("      <value>efi</value>\n");
    }
    s.push_str("    </enum>\n  </os>\n");
    s.push_str("  <cpu>\n");
    let _ = writeln!(
        s,
        "    <mode name='host-passthrough' supported='{}'/>",
        if accel == "kvm" { "yes" } else { "no" }
    );
    s.push_str(
        "    <mode name='maximum' supported='yes'/>\n    <mode name='custom' supported='yes'>\n",
    );
    for c in caps.cpu_models.iter().filter(|c| c.accel == accel) {
        let _ = writeln!(
            s,
            "      <model usable='{}'>{}</model>",
            if c.usable { "yes" } else { "no" },
            esc(&c.name)
        );
    }
    s.push_str("    </mode>\n  </cpu>\n  <devices>\n");
    let dev_enum = |s: &mut String, name: &str, values: &[&str]| {
        let _ = writeln!(s, "    <{name} supported='yes'>");
        for (key, vals) in values
            .iter()
            .map(|v| v.split_once('=').unwrap_or(("type", v)))
            .fold(BTreeMap::<&str, Vec<&str>>::new(), |mut m, (k, v)| {
                m.entry(k).or_default().push(v);
                m
            })
        {
            let _ = writeln!(s, "      <enum name='{key}'>");
            for v in vals {
                let _ = writeln!(s, "        <value>{v}</value>");
            }
            s.push_str("      </enum>\n");
        }
        let _ = writeln!(s, "    </{name}>");
    };
    dev_enum(
        &mut s,
        "disk",
        &[
            "diskDevice=disk",
            "diskDevice=cdrom",
            "bus=ide",
            "bus=scsi",
            "bus=virtio",
            "bus=sata",
            "model=virtio",
        ],
    );
    dev_enum(&mut s, "graphics", &["type=vnc"]);
    dev_enum(
        &mut s,
        "video",
        &[
            "modelType=vga",
            "modelType=cirrus",
            "modelType=virtio",
            "modelType=none",
        ],
    );
    dev_enum(&mut s, "rng", &["model=virtio", "backendModel=random"]);
    s.push_str("  </devices>\n</domainCapabilities>\n");
    s
}

/// Firmware files virtkit knows how to use.
pub mod firmware {
    use std::path::PathBuf;

    /// OVMF code images, in order of preference.
    const OVMF_CODE: &[&str] = &[
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/qemu/OVMF.fd",
    ];

    /// The OVMF code image, if one is installed.
    pub fn ovmf_code() -> Option<PathBuf> {
        OVMF_CODE.iter().map(PathBuf::from).find(|p| p.is_file())
    }

    /// The matching variables template, if installed.
    pub fn ovmf_vars_template() -> Option<PathBuf> {
        [
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    }
}
