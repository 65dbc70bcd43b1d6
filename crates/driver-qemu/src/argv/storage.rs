//! The storage layer of a disk as a `-blockdev` driver and its properties:
//! local files and host devices, and the network protocols QEMU opens
//! itself (NBD, iSCSI, RBD, Gluster, NFS, HTTP(S)/FTP(S)). Sources that
//! need credentials are not expressed yet.

use virtkit_core::Result;
use virtkit_core::xml::{Element, XPath};

use super::props::Value;
use super::{Props, attr, child_attr, invalid, switch, unsupported};
use crate::profile::address::parse_num;

/// Default ports of URL-based protocols.
const URL_PORTS: &[(&str, u32)] = &[("http", 80), ("https", 443), ("ftp", 21), ("ftps", 990)];

/// Gluster's log level (libvirt's `gluster_debug_level` default).
const GLUSTER_DEBUG: u32 = 4;

/// `<source>` children understood per protocol.
const SOURCE_CHILDREN: &[(&str, &[&str])] = &[
    ("nbd", &["host"]),
    ("iscsi", &["host", "initiator"]),
    ("rbd", &["host", "config", "snapshot"]),
    ("gluster", &["host"]),
    ("nfs", &["host", "identity"]),
    ("http", &["host", "timeout", "readahead"]),
    ("https", &["host", "timeout", "readahead", "ssl"]),
    ("ftp", &["host", "timeout", "readahead"]),
    ("ftps", &["host", "timeout", "readahead", "ssl"]),
];

/// The storage of a disk: the QEMU block driver and its properties (before
/// the node name), or `None` for an empty drive.
pub(crate) fn storage(d: &Element, p: &XPath) -> Result<Option<Props>> {
    let ty = attr(d, "type").unwrap_or_else(|| "file".into());
    let device = attr(d, "device").unwrap_or_default();
    let source = d.child("source");
    let sp = p.named("source");
    if ty != "network"
        && let Some(s) = source
        && let Some(other) = s.elements().next()
    {
        return Err(unsupported(
            sp.named(other.name()),
            format!("disk source setting <{}>", other.name()),
        ));
    }
    match ty.as_str() {
        "file" => Ok(source
            .and_then(|s| attr(s, "file"))
            .map(|f| Props::new().set("driver", "file").set("filename", f))),
        "block" => Ok(source.and_then(|s| attr(s, "dev")).map(|dev| {
            // A host CD-ROM drive is opened as one, other block devices as
            // plain host devices.
            let cd =
                device == "cdrom" && (dev.starts_with("/dev/cdrom") || dev.starts_with("/dev/sr"));
            let driver = if cd { "host_cdrom" } else { "host_device" };
            Props::new().set("driver", driver).set("filename", dev)
        })),
        "network" => {
            let s = source.ok_or_else(|| invalid(&sp, "a network disk needs a <source>"))?;
            network(s, &sp).map(Some)
        }
        other => Err(unsupported(p.attr("type"), format!("disk type '{other}'"))),
    }
}

/// One `<host>` as a socket address: inet host/port or a UNIX socket.
fn server(h: &Element, default_port: Option<u32>, with_type: bool) -> Props {
    if attr(h, "transport").as_deref() == Some("unix") {
        return Props::new()
            .set("type", "unix")
            .set("path", attr(h, "socket").unwrap_or_default());
    }
    let p = if with_type {
        Props::new().set("type", "inet")
    } else {
        Props::new()
    };
    let port = attr(h, "port").or_else(|| default_port.map(|d| d.to_string()));
    p.set("host", attr(h, "name").unwrap_or_default())
        .opt("port", port)
}

fn network(s: &Element, sp: &XPath) -> Result<Props> {
    let protocol = attr(s, "protocol").unwrap_or_default();
    let known = SOURCE_CHILDREN
        .iter()
        .find(|(p, _)| *p == protocol)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            unsupported(
                sp.attr("protocol"),
                format!("network disk protocol '{protocol}'"),
            )
        })?;
    if let Some(other) = s.elements().find(|e| !known.contains(&e.name())) {
        let what = match other.name() {
            "auth" | "cookies" => "network disks with credentials".to_string(),
            n => format!("network disk setting <{n}>"),
        };
        return Err(unsupported(sp.named(other.name()), what));
    }
    if s.has_attr("tls") || s.has_attr("tlsHostname") {
        return Err(unsupported(sp.attr("tls"), "TLS for network disks"));
    }
    let name = attr(s, "name").unwrap_or_default();
    let hosts: Vec<&Element> = s.children_named("host").collect();
    let first = hosts.first().copied();
    let need_host = || {
        first.ok_or_else(|| {
            invalid(
                sp.named("host"),
                format!("a '{protocol}' disk needs a <host>"),
            )
        })
    };
    let o = Props::new().set("driver", protocol.as_str());
    Ok(match protocol.as_str() {
        "nbd" => o
            .set("server", server(need_host()?, None, true))
            .opt("export", (!name.is_empty()).then_some(name)),
        "iscsi" => {
            let h = need_host()?;
            let port = attr(h, "port").unwrap_or_else(|| "3260".into());
            // The name is "target/lun".
            let (target, lun) = match name.rsplit_once('/') {
                Some((t, l)) => (t.to_string(), parse_num(l).unwrap_or(0)),
                None => (name.clone(), 0),
            };
            o.set(
                "portal",
                format!("{}:{port}", attr(h, "name").unwrap_or_default()),
            )
            .set("target", target)
            .set("lun", lun)
            .set(
                "transport",
                attr(h, "transport").unwrap_or_else(|| "tcp".into()),
            )
            .opt(
                "initiator-name",
                s.child("initiator")
                    .and_then(|i| child_attr(i, "iqn", "name")),
            )
        }
        "rbd" => {
            let (pool, image) = name
                .split_once('/')
                .ok_or_else(|| invalid(sp.attr("name"), "an RBD source is named 'pool/image'"))?;
            let mut o = o.set("pool", pool).set("image", image);
            o = o.opt("snapshot", child_attr(s, "snapshot", "name"));
            o = o.opt("conf", child_attr(s, "config", "file"));
            if !hosts.is_empty() {
                o = o.set(
                    "server",
                    Value::Arr(
                        hosts
                            .iter()
                            .map(|h| Value::Obj(server(h, None, false)))
                            .collect(),
                    ),
                );
            }
            o
        }
        "gluster" => {
            let (volume, path) = name.split_once('/').ok_or_else(|| {
                invalid(sp.attr("name"), "a Gluster source is named 'volume/path'")
            })?;
            o.set("volume", volume)
                .set("path", path)
                .set(
                    "server",
                    Value::Arr(
                        hosts
                            .iter()
                            .map(|h| Value::Obj(server(h, Some(24007), true)))
                            .collect(),
                    ),
                )
                .set("debug", GLUSTER_DEBUG)
        }
        "nfs" => {
            let h = need_host()?;
            let mut o = o
                .set(
                    "server",
                    Props::new()
                        .set("host", attr(h, "name").unwrap_or_default())
                        .set("type", "inet"),
                )
                .set("path", name);
            if let Some(id) = s.child("identity") {
                for (xml, prop) in [("user", "user"), ("group", "group")] {
                    if let Some(v) = attr(id, xml) {
                        let n = v.strip_prefix('+').and_then(parse_num).ok_or_else(|| {
                            unsupported(sp.named("identity").attr(xml), "NFS identities by name")
                        })?;
                        o = o.set(prop, n);
                    }
                }
            }
            o
        }
        _ => {
            let h = need_host()?;
            let default_port = URL_PORTS
                .iter()
                .find(|(p, _)| *p == protocol)
                .map(|(_, n)| *n);
            let port = attr(h, "port")
                .and_then(|v| parse_num(&v))
                .or(default_port)
                .unwrap_or(0);
            let path = name.trim_start_matches('/');
            let mut url = format!(
                "{protocol}://{}:{port}/{path}",
                attr(h, "name").unwrap_or_default()
            );
            if let Some(q) = attr(s, "query") {
                url.push('?');
                url.push_str(&q);
            }
            let mut o = o.set("url", url);
            if let Some(v) = child_attr(s, "ssl", "verify").and_then(|v| switch(Some(v))) {
                o = o.set("sslverify", v);
            }
            o = o.opt(
                "timeout",
                child_attr(s, "timeout", "seconds").and_then(|v| parse_num(&v)),
            );
            o.opt(
                "readahead",
                child_attr(s, "readahead", "size").and_then(|v| parse_num(&v)),
            )
        }
    })
}
