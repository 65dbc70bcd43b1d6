//! Network interfaces: a `-netdev` backend (user networking, or a tap the
//! driver opened, with vhost-net descriptors) followed by the guest NIC.

use virtkit_core::xml::Element;
use virtkit_core::{Error, Result};

use super::controller::virtio_options;
use super::{Gen, Props, address, alias, attr, boot, child_attr, switch, unsupported};
use crate::profile::address::parse_num;

/// NIC models: (libvirt model, QEMU driver).
const NIC_DRIVERS: &[(&str, &str)] = &[
    ("virtio", "virtio-net-pci"),
    ("virtio-transitional", "virtio-net-pci-transitional"),
    ("virtio-non-transitional", "virtio-net-pci-non-transitional"),
    ("e1000", "e1000"),
    ("e1000e", "e1000e"),
    ("rtl8139", "rtl8139"),
    ("vmxnet3", "vmxnet3"),
    ("ne2k_pci", "ne2k_pci"),
    ("pcnet", "pcnet"),
    ("i82559er", "i82559er"),
];

/// `<interface>` children this builder expresses.
const IFACE_CHILDREN: &[&str] = &[
    "mac", "source", "model", "target", "boot", "address", "alias", "driver", "mtu", "acpi",
];

fn join(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(":")
}

fn emit_one(g: &mut Gen<'_>, n: &Element, i: usize) -> Result<()> {
    let p = g.path(n);
    if let Some(other) = n.elements().find(|e| !IFACE_CHILDREN.contains(&e.name())) {
        return Err(unsupported(
            p.named(other.name()),
            format!("interface setting <{}>", other.name()),
        ));
    }
    let ty = attr(n, "type").unwrap_or_default();
    let net_alias = alias(n, format!("net{i}"));
    let host_id = format!("host{net_alias}");
    let model = child_attr(n, "model", "type").unwrap_or_else(|| "rtl8139".into());
    let virtio = model.starts_with("virtio");
    let drv = n.child("driver");
    let da = |k: &str| drv.and_then(|d| attr(d, k));
    let queues = da("queues").and_then(|q| parse_num(&q)).unwrap_or(1);
    let netdev = match ty.as_str() {
        "user" => {
            if n.child("source").is_some() {
                return Err(unsupported(p.named("source"), "user networking options"));
            }
            Props::new().set("type", "user")
        }
        "network" | "bridge" | "ethernet" => {
            let fds = g
                .ctx
                .nets
                .get(i)
                .filter(|f| !f.tap.is_empty())
                .ok_or_else(|| {
                    Error::internal(format!(
                        "no tap device was prepared for interface {i} ({p})"
                    ))
                })?;
            // One queue is a single descriptor, several a list.
            let mut o = Props::new().set("type", "tap");
            o = match fds.tap.as_slice() {
                [one] => o.set("fd", one.to_string()),
                many => o.set("fds", join(many)),
            };
            o = match fds.vhost.as_slice() {
                [] => o,
                [one] => o.set("vhost", true).set("vhostfd", one.to_string()),
                many => o.set("vhost", true).set("vhostfds", join(many)),
            };
            o
        }
        other => {
            return Err(unsupported(
                p.attr("type"),
                format!("interface type '{other}'"),
            ));
        }
    };
    if let Some(a) = drv.and_then(|d| {
        d.attrs()
            .iter()
            .find(|a| {
                !matches!(
                    a.name(),
                    "name"
                        | "queues"
                        | "iommu"
                        | "ats"
                        | "packed"
                        | "event_idx"
                        | "ioeventfd"
                        | "txmode"
                        | "rx_queue_size"
                        | "tx_queue_size"
                        | "rss"
                        | "rss_hash_report"
                        | "page_per_vq"
                )
            })
            .map(|a| a.name().to_string())
    }) {
        return Err(unsupported(
            p.named("driver").attr(&a),
            format!("interface driver setting '{a}'"),
        ));
    }
    g.netdev(&netdev.set("id", host_id.clone()));

    let driver = NIC_DRIVERS
        .iter()
        .find(|(m, _)| *m == model)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            unsupported(
                p.named("model").attr("type"),
                format!("NIC model '{model}'"),
            )
        })?;
    let mut o = Props::new().set("driver", driver);
    if virtio {
        o = o.extend(virtio_options(n));
        if let Some(tx) = da("txmode") {
            o = o.set("tx", if tx == "iothread" { "bh" } else { "timer" });
        }
        o = o
            .opt("ioeventfd", switch(da("ioeventfd")))
            .opt("event_idx", switch(da("event_idx")));
        if queues > 1 {
            o = o.set("mq", true).set("vectors", 2 * queues + 2);
        }
        o = o
            .opt("rss", switch(da("rss")))
            .opt("hash", switch(da("rss_hash_report")));
        o = o
            .opt(
                "rx_queue_size",
                da("rx_queue_size").and_then(|v| parse_num(&v)),
            )
            .opt(
                "tx_queue_size",
                da("tx_queue_size").and_then(|v| parse_num(&v)),
            );
    }
    o = o
        .set("netdev", host_id)
        .set("id", net_alias)
        .opt("mac", child_attr(n, "mac", "address"));
    if virtio && let Some(mtu) = child_attr(n, "mtu", "size").and_then(|m| parse_num(&m)) {
        o = o.set("host_mtu", mtu);
    }
    o = o.opt("bootindex", boot::index(g, n));
    o = address::pci(g, n, o);
    o = o.opt(
        "acpi-index",
        child_attr(n, "acpi", "index").and_then(|v| parse_num(&v)),
    );
    g.device(&o);
    Ok(())
}

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, n) in devices.children_named("interface").enumerate() {
        emit_one(g, n, i)?;
    }
    Ok(())
}
