//! Disks: a `-blockdev` for the storage (file or host device) and one for
//! the format on top, then the guest device (IDE, SATA, SCSI, virtio-blk,
//! floppy, USB). Block nodes are named `libvirt-N-storage/format`, with N
//! counted from the last disk backwards as libvirt prepares them.

use virtkit_core::Result;
use virtkit_core::xml::{Element, XPath};

use super::controller::{controller_alias, virtio_options};
use super::{Gen, Props, address, attr, boot, child_attr, invalid, switch, unsupported};
use crate::profile::address::{address_of, parse_num};
use crate::profile::machine::Chipset;

/// Cache modes: (mode, direct, no-flush, guest write cache).
const CACHE_MODES: &[(&str, bool, bool, &str)] = &[
    ("none", true, false, "on"),
    ("writethrough", false, false, "off"),
    ("writeback", false, false, "on"),
    ("directsync", true, false, "off"),
    ("unsafe", false, true, "on"),
];

/// Disk formats QEMU's block layer reads directly.
const FORMATS: &[&str] = &[
    "raw",
    "qcow2",
    "qcow",
    "qed",
    "vmdk",
    "vpc",
    "vdi",
    "vhdx",
    "cloop",
    "dmg",
    "bochs",
    "parallels",
];

/// `<driver>` attributes this builder expresses.
const DRIVER_ATTRS: &[&str] = &[
    "name",
    "type",
    "cache",
    "io",
    "discard",
    "detect_zeroes",
    "error_policy",
    "rerror_policy",
    "iommu",
    "ats",
    "packed",
    "page_per_vq",
    "ioeventfd",
    "event_idx",
    "queues",
    "queue_size",
    "copy_on_read",
    "iothread",
];

/// `<disk>` children this builder expresses.
const DISK_CHILDREN: &[&str] = &[
    "driver",
    "source",
    "target",
    "address",
    "readonly",
    "shareable",
    "serial",
    "wwn",
    "vendor",
    "product",
    "boot",
    "alias",
    "backingStore",
    "blockio",
    "iotune",
    "acpi",
];

/// The cache mode a disk runs with: as written, except that a writable
/// shared disk must not be cached by the host.
fn cache_mode(d: &Element) -> Option<String> {
    let written = d
        .child("driver")
        .and_then(|x| attr(x, "cache"))
        .filter(|m| m != "default");
    let shared_rw = d.child("shareable").is_some() && d.child("readonly").is_none();
    written.or_else(|| shared_rw.then(|| "none".to_string()))
}

/// The QEMU device driver for a disk on `bus`.
fn device_driver(bus: &str, device: &str, model: Option<&str>) -> Option<&'static str> {
    Some(match (bus, device) {
        ("ide" | "sata", "cdrom") => "ide-cd",
        ("ide" | "sata", _) => "ide-hd",
        ("scsi", "cdrom") => "scsi-cd",
        ("scsi", "lun") => "scsi-block",
        ("scsi", _) => "scsi-hd",
        ("fdc", _) => "floppy",
        ("usb", _) => "usb-storage",
        ("virtio", _) => match model {
            Some("virtio-transitional") => "virtio-blk-pci-transitional",
            Some("virtio-non-transitional") => "virtio-blk-pci-non-transitional",
            _ => "virtio-blk-pci",
        },
        _ => return None,
    })
}

/// The drive address of a disk: (controller, bus, target, unit).
fn drive_address(d: &Element) -> (u32, u32, u32, u32) {
    let a = address_of(d, "drive");
    let n = |k: &str| {
        a.and_then(|a| attr(a, k))
            .and_then(|v| parse_num(&v))
            .unwrap_or(0)
    };
    (n("controller"), n("bus"), n("target"), n("unit"))
}

/// The SCSI controller model serving `controller`.
fn scsi_model(g: &Gen<'_>, controller: u32) -> String {
    g.devices
        .children_named("controller")
        .find(|c| {
            attr(c, "type").as_deref() == Some("scsi")
                && attr(c, "index").and_then(|i| parse_num(&i)) == Some(controller)
        })
        .and_then(|c| attr(c, "model"))
        .unwrap_or_else(|| "lsilogic".into())
}

fn controller_of<'a>(g: &Gen<'a>, ty: &str, idx: u32) -> Option<&'a Element> {
    g.devices.children_named("controller").find(|c| {
        attr(c, "type").as_deref() == Some(ty)
            && attr(c, "index").and_then(|i| parse_num(&i)) == Some(idx)
    })
}

/// Each disk's target and the QOM name of the device holding its block
/// backend.
pub(crate) fn ids(g: &Gen<'_>) -> Vec<(String, String)> {
    g.devices
        .children_named("disk")
        .filter_map(|d| {
            let bus = child_attr(d, "target", "bus")?;
            let id = disk_alias(g, d, &bus);
            Some((child_attr(d, "target", "dev")?, qom_name(&bus, &id)))
        })
        .collect()
}

/// The QOM name of the device holding a disk's block backend: a virtio
/// disk's is the virtio device inside its PCI (or CCW, MMIO) proxy.
fn qom_name(bus: &str, id: &str) -> String {
    if bus == "virtio" {
        format!("/machine/peripheral/{id}/virtio-backend")
    } else {
        id.to_string()
    }
}

/// The alias libvirt gives a disk.
fn disk_alias(g: &Gen<'_>, d: &Element, bus: &str) -> String {
    let (c, b, t, u) = drive_address(d);
    let dev = child_attr(d, "target", "dev").unwrap_or_default();
    let index = virtkit_core::domain::disk_name_index(&dev).unwrap_or(0);
    let default = match bus {
        "ide" => format!("ide{c}-{b}-{u}"),
        "sata" => format!("sata{c}-{b}-{u}"),
        "fdc" => format!("fdc{c}-{b}-{u}"),
        "scsi" if scsi_model(g, c) == "lsilogic" => format!("scsi{c}-{b}-{u}"),
        "scsi" => format!("scsi{c}-{b}-{t}-{u}"),
        "virtio" => format!("virtio-disk{index}"),
        "usb" => format!("usb-disk{index}"),
        other => format!("{other}-disk{index}"),
    };
    super::alias(d, default)
}

/// The qcow2 metadata cache size in bytes of one image: the disk's
/// `<driver><metadata_cache>` or a backing image's `<format>` one.
fn metadata_cache(layer: &Element) -> Option<u64> {
    let holder = match layer.name() {
        "disk" => layer.child("driver")?,
        _ => layer.child("format")?,
    };
    let m = holder.child("metadata_cache")?.child("max_size")?;
    // Written without a unit, the size is in bytes.
    virtkit_core::domain::units::parse_scaled(&m.text(), m.attr("unit").as_deref(), 1).ok()
}

/// Formats that can have a backing image.
const BACKED_FORMATS: &[&str] = &["qcow2", "qcow", "qed", "vmdk"];

/// One image of a disk's chain: the disk itself or a `<backingStore>`.
struct Layer<'a> {
    el: &'a Element,
    path: XPath,
    format: String,
}

/// The chain of a disk, top first: the disk, then each `<backingStore>`
/// that names an image. The last layer says whether the chain is known to
/// end there (an empty `<backingStore/>`).
fn chain<'a>(d: &'a Element, p: &XPath) -> Result<(Vec<Layer<'a>>, bool)> {
    let format = d
        .child("driver")
        .and_then(|x| attr(x, "type"))
        .unwrap_or_else(|| "raw".into());
    let mut layers = vec![Layer {
        el: d,
        path: p.clone(),
        format,
    }];
    let mut cur = d;
    let mut bp = p.clone();
    loop {
        let Some(b) = cur.child("backingStore") else {
            return Ok((layers, false));
        };
        bp = bp.named("backingStore");
        if !b.has_elements() {
            return Ok((layers, true));
        }
        let format = child_attr(b, "format", "type").unwrap_or_else(|| "raw".into());
        layers.push(Layer {
            el: b,
            path: bp.clone(),
            format,
        });
        cur = b;
    }
}

/// How many block nodes a disk uses (libvirt numbers them per image).
fn chain_len(d: &Element) -> u32 {
    let mut n = 1;
    let mut cur = d;
    while let Some(b) = cur.child("backingStore").filter(|b| b.has_elements()) {
        n += 1;
        cur = b;
    }
    n
}

/// The `-blockdev` nodes of one disk (when it has media), backing images
/// first, numbered from `node` for the top image; returns the node name
/// its device uses.
fn blockdevs(g: &mut Gen<'_>, d: &Element, node: u32, p: &XPath) -> Result<Option<String>> {
    let (layers, terminated) = chain(d, p)?;
    let drv = d.child("driver");
    let dp = p.named("driver");
    let da = |n: &str| drv.and_then(|x| attr(x, n));
    let cache = match cache_mode(d).as_deref() {
        None => None,
        Some(mode) => {
            let (_, direct, no_flush, _) = CACHE_MODES
                .iter()
                .find(|(m, ..)| *m == mode)
                .ok_or_else(|| unsupported(dp.attr("cache"), format!("cache mode '{mode}'")))?;
            Some(
                Props::new()
                    .set("direct", *direct)
                    .set("no-flush", *no_flush),
            )
        }
    };
    let readonly = d.child("readonly").is_some() || attr(d, "device").as_deref() == Some("cdrom");
    let io = da("io").filter(|io| io != "default");
    let discard = da("discard").filter(|v| v != "default");
    let zeroes = da("detect_zeroes").filter(|v| v != "default" && v != "off");
    let zeroes = match (zeroes.as_deref(), discard.as_deref()) {
        (Some("unmap"), Some("unmap")) => Some("unmap".to_string()),
        (Some("unmap"), _) => Some("on".to_string()),
        (z, _) => z.map(str::to_string),
    };
    let mut storages = Vec::with_capacity(layers.len());
    for layer in &layers {
        if !FORMATS.contains(&layer.format.as_str()) {
            return Err(unsupported(
                &layer.path,
                format!("disk format '{}'", layer.format),
            ));
        }
        match super::storage::storage(layer.el, &layer.path)? {
            Some(s) => storages.push(s),
            // Only the top image may be missing (an empty drive).
            None if storages.is_empty() => return Ok(None),
            None => {
                return Err(invalid(
                    layer.path.named("source"),
                    "a backing image needs a source",
                ));
            }
        }
    }
    let last = layers.len() - 1;
    for (i, (layer, storage)) in layers.iter().zip(storages).enumerate().rev() {
        let n = node + i as u32;
        let storage_name = format!("libvirt-{n}-storage");
        let format_name = format!("libvirt-{n}-format");
        let top = i == 0;
        let s = storage
            .opt("aio", io.clone())
            .set("node-name", storage_name.clone())
            .opt("cache", cache.clone())
            .set("auto-read-only", true)
            .set("discard", "unmap");
        g.a.json("-blockdev", &s);
        let backed = BACKED_FORMATS.contains(&layer.format.as_str());
        let backing = if i < last {
            Some(super::props::Value::Str(format!(
                "libvirt-{}-format",
                n + 1
            )))
        } else if terminated && backed {
            Some(super::props::Value::Null)
        } else {
            None
        };
        let f = Props::new()
            .set("node-name", format_name)
            .set("read-only", if top { readonly } else { true })
            .opt("discard", if top { discard.clone() } else { None })
            .opt("detect-zeroes", if top { zeroes.clone() } else { None })
            .opt("cache", cache.clone())
            .set("driver", layer.format.as_str())
            .opt("cache-size", metadata_cache(layer.el))
            .set("file", storage_name)
            .opt("backing", backing);
        g.a.json("-blockdev", &f);
    }
    Ok(Some(format!("libvirt-{node}-format")))
}

fn check(d: &Element, p: &XPath) -> Result<()> {
    if let Some(other) = d.elements().find(|e| !DISK_CHILDREN.contains(&e.name())) {
        return Err(unsupported(
            p.named(other.name()),
            format!("disk setting <{}>", other.name()),
        ));
    }
    if let Some(drv) = d.child("driver")
        && let Some(other) = drv.elements().find(|e| e.name() != "metadata_cache")
    {
        return Err(unsupported(
            p.named("driver").named(other.name()),
            format!("disk driver setting <{}>", other.name()),
        ));
    }
    if let Some(drv) = d.child("driver")
        && let Some(a) = drv
            .attrs()
            .iter()
            .find(|a| !DRIVER_ATTRS.contains(&a.name()))
    {
        return Err(unsupported(
            p.named("driver").attr(a.name()),
            format!("disk driver setting '{}'", a.name()),
        ));
    }
    if d.child("blockio").is_some() {
        return Err(unsupported(p.named("blockio"), "disk <blockio>"));
    }
    if attr(d, "model").is_some_and(|m| !m.starts_with("virtio")) {
        return Err(unsupported(p.attr("model"), "disk model"));
    }
    Ok(())
}

fn emit_disk(g: &mut Gen<'_>, d: &Element, node: u32) -> Result<()> {
    let p = g.path(d);
    check(d, &p)?;
    let device = attr(d, "device").unwrap_or_else(|| "disk".into());
    let bus = child_attr(d, "target", "bus")
        .ok_or_else(|| invalid(p.named("target"), "disk has no target bus"))?;
    let model = attr(d, "model");
    let driver = device_driver(&bus, &device, model.as_deref())
        .ok_or_else(|| unsupported(p.named("target").attr("bus"), format!("disk bus '{bus}'")))?;
    if device == "lun" && bus != "scsi" {
        return Err(unsupported(
            p.attr("device"),
            "LUN passthrough outside SCSI",
        ));
    }
    let mut drive = blockdevs(g, d, node, &p)?;
    // Copy-on-read is a filter node on top of the format node.
    if let Some(format) = &drive
        && switch(d.child("driver").and_then(|x| attr(x, "copy_on_read"))) == Some(true)
    {
        let dev = child_attr(d, "target", "dev").unwrap_or_default();
        let cor = format!("libvirt-CoR-{dev}");
        g.a.json(
            "-blockdev",
            &Props::new()
                .set("driver", "copy-on-read")
                .set("node-name", cor.clone())
                .set("file", format.as_str())
                .set("discard", "unmap"),
        );
        drive = Some(cor);
    }
    let id = disk_alias(g, d, &bus);
    // Limits go over QMP once QEMU is up (crate::iotune).
    if let Some(t) = d.child("iotune") {
        let t = crate::iotune::IoTune::from_element(t, &p.named("iotune"))?;
        if t.is_set() {
            g.iotune.push((qom_name(&bus, &id), t));
        }
    }
    let (c, b, t, u) = drive_address(d);
    let drv = d.child("driver");
    let da = |n: &str| drv.and_then(|x| attr(x, n));
    let mut o = Props::new().set("driver", driver);
    match bus.as_str() {
        "virtio" => {
            // Old binaries default virtio-blk to SCSI passthrough; libvirt
            // turns it off.
            if g.has("virtio-blk-pci.scsi") && !g.has("virtio-blk-pci.scsi.default.disabled") {
                o = o.set("scsi", false);
            }
            o = o.opt("iothread", da("iothread").map(|t| format!("iothread{t}")));
            o = o.extend(virtio_options(d));
            o = o
                .opt("num-queues", da("queues").and_then(|v| parse_num(&v)))
                .opt("queue-size", da("queue_size").and_then(|v| parse_num(&v)))
                .opt("ioeventfd", switch(da("ioeventfd")))
                .opt("event_idx", switch(da("event_idx")));
            o = address::pci(g, d, o);
            o = o.opt(
                "acpi-index",
                child_attr(d, "acpi", "index").and_then(|v| parse_num(&v)),
            );
        }
        "ide" => {
            if g.chipset != Chipset::I440fx || c != 0 {
                return Err(unsupported(
                    p.named("target").attr("bus"),
                    "IDE disks outside the i440FX's built-in controller",
                ));
            }
            o = o.set("bus", format!("ide.{b}")).set("unit", u);
        }
        "sata" => {
            let ctl = controller_of(g, "sata", c)
                .map_or_else(|| format!("sata{c}"), |x| controller_alias(g, x));
            o = o.set("bus", format!("{ctl}.{u}"));
        }
        "scsi" => {
            let model = scsi_model(g, c);
            let ctl = controller_of(g, "scsi", c)
                .map_or_else(|| format!("scsi{c}"), |x| controller_alias(g, x));
            if model == "lsilogic" {
                o = o.set("bus", format!("{ctl}.{b}")).set("scsi-id", u);
            } else {
                o = o
                    .set("bus", format!("{ctl}.0"))
                    .set("channel", b)
                    .set("scsi-id", t)
                    .set("lun", u);
            }
            if device != "lun" {
                let serial = d.child("serial").map(|s| s.text());
                o = o.set("device_id", serial.unwrap_or_else(|| format!("drive-{id}")));
            }
        }
        "fdc" => {
            o = o.set("unit", u);
        }
        "usb" => {
            o = address::usb(g, d, o);
        }
        _ => {}
    }
    if d.child("shareable").is_some() {
        o = o.set("share-rw", true);
    }
    o = o.opt("drive", drive).set("id", id);
    if bus != "fdc" {
        o = o.opt("bootindex", boot::index(g, d));
    }
    if let Some(w) = d.child("wwn") {
        let text = w.text();
        let hex = text.trim().trim_start_matches("0x");
        let n = u64::from_str_radix(hex, 16)
            .map_err(|_| invalid(p.named("wwn"), "a WWN is 16 hexadecimal digits"))?;
        o = o.set("wwn", n);
    }
    o = o
        .opt(
            "vendor",
            d.child("vendor").map(|v| v.text().trim().to_string()),
        )
        .opt(
            "product",
            d.child("product").map(|v| v.text().trim().to_string()),
        );
    if bus == "usb" {
        o = o.set(
            "removable",
            switch(child_attr(d, "target", "removable")).unwrap_or(false),
        );
    }
    if let Some(mode) = cache_mode(d)
        && let Some((.., wc)) = CACHE_MODES.iter().find(|(m, ..)| *m == mode)
        && bus != "fdc"
    {
        o = o.set("write-cache", *wc);
    }
    // QEMU spells libvirt's "enospace" "enospc"; it is a write-only policy.
    let policy = |v: String| {
        if v == "enospace" {
            "enospc".to_string()
        } else {
            v
        }
    };
    o = o
        .opt(
            "werror",
            da("error_policy").filter(|v| v != "default").map(policy),
        )
        .opt(
            "rerror",
            da("rerror_policy")
                .or_else(|| da("error_policy"))
                .filter(|v| v != "default" && v != "enospace"),
        );
    o = o.opt("serial", d.child("serial").map(|s| s.text()));
    g.device(&o);
    Ok(())
}

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    let disks: Vec<&Element> = devices.children_named("disk").collect();
    // Floppies boot through the floppy controller's properties.
    let floppies: Vec<&Element> = disks
        .iter()
        .copied()
        .filter(|d| child_attr(d, "target", "bus").as_deref() == Some("fdc"))
        .collect();
    // The i440FX has its floppy controller built in (set through
    // `-global`); on Q35 it is a device of its own.
    let mut fdc = Props::new().set("driver", "isa-fdc");
    for f in &floppies {
        if let Some(i) = boot::index(g, f) {
            let unit = drive_address(f).3;
            let drive = if unit == 0 { "A" } else { "B" };
            if g.chipset == Chipset::Q35 {
                fdc = fdc.set(&format!("bootindex{drive}"), i);
            } else {
                g.a.opt("-global", format!("isa-fdc.bootindex{drive}={i}"));
            }
        }
    }
    if g.chipset == Chipset::Q35 && !floppies.is_empty() {
        g.device(&fdc);
    }
    // libvirt numbers block nodes from the last disk backwards, one per
    // image of each disk's chain.
    let mut next = 1;
    let mut first_node = vec![0; disks.len()];
    for (i, d) in disks.iter().enumerate().rev() {
        first_node[i] = next;
        next += chain_len(d);
    }
    for (d, node) in disks.iter().zip(first_node) {
        emit_disk(g, d, node)?;
    }
    Ok(())
}
