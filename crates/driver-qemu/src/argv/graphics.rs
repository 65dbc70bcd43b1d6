//! Graphics: VNC servers (`-vnc`), SPICE servers (`-spice`) and headless
//! GL (`-display egl-headless`). SDL and D-Bus displays are not expressed
//! yet.

use virtkit_core::Result;
use virtkit_core::xml::Element;

use super::audio::audiodev_for;
use super::{Gen, GraphicsPorts, Opts, attr, comma, invalid, switch, unsupported};

/// `<graphics type='vnc'>` attributes this builder expresses.
const VNC_ATTRS: &[&str] = &[
    "type",
    "port",
    "autoport",
    "listen",
    "websocket",
    "sharePolicy",
    "powerControl",
    "passwd",
    "keymap",
    "socket",
];

/// The first free TCP port from 5900 on `host`, skipping `taken`.
fn free_port(host: &str, taken: &[u16]) -> u16 {
    (5900..6000)
        .find(|p| !taken.contains(p) && std::net::TcpListener::bind((host, *p)).is_ok())
        .unwrap_or(5900)
}

/// The VNC display number for `port` on `host`, allocating one when the
/// port is automatic.
fn display(g: &Gen<'_>, host: &str, port: Option<i64>) -> i64 {
    match port {
        Some(p) if p >= 5900 => p - 5900,
        _ => match g.host.graphics_ports {
            GraphicsPorts::Fixed { vnc, .. } => i64::from(vnc) - 5900,
            GraphicsPorts::FirstFree => i64::from(free_port(host, &[])) - 5900,
        },
    }
}

/// `<graphics type='spice'>` children this builder expresses.
const SPICE_CHILDREN: &[&str] = &[
    "listen",
    "channel",
    "image",
    "jpeg",
    "zlib",
    "playback",
    "streaming",
    "clipboard",
    "filetransfer",
    "mouse",
    "gl",
    "audio",
];

/// SPICE compression settings: (element, attribute, option).
const SPICE_TUNING: &[(&str, &str, &str)] = &[
    ("image", "compression", "image-compression"),
    ("jpeg", "compression", "jpeg-wan-compression"),
    ("zlib", "compression", "zlib-glz-wan-compression"),
    ("playback", "compression", "playback-compression"),
    ("streaming", "mode", "streaming-video"),
];

fn spice(g: &mut Gen<'_>, gr: &Element) -> Result<()> {
    let p = g.path(gr);
    if let Some(other) = gr.elements().find(|e| !SPICE_CHILDREN.contains(&e.name())) {
        return Err(unsupported(
            p.named(other.name()),
            format!("SPICE setting <{}>", other.name()),
        ));
    }
    let listen = gr.child("listen");
    let ltype = listen
        .and_then(|l| attr(l, "type"))
        .unwrap_or_else(|| "address".into());
    let num = |n: &str| {
        attr(gr, n)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0)
    };
    let mut o = Opts::default();
    let mut secure = false;
    let mut address = None;
    match ltype.as_str() {
        "socket" => {
            let sock = listen
                .and_then(|l| attr(l, "socket"))
                .unwrap_or_else(|| g.ctx.domain_dir.join("spice.sock").display().to_string());
            o = Opts::new("unix").kv("addr", sock);
        }
        "none" => o = o.kv("port", 0),
        "address" => {
            let host = listen
                .and_then(|l| attr(l, "address"))
                .or_else(|| attr(gr, "listen"))
                .unwrap_or_else(|| "127.0.0.1".into());
            let tls_dir = g.host.spice.tls_x509_dir.clone();
            let (mut port, mut tls) = (num("port"), num("tlsPort"));
            if switch(attr(gr, "autoport")) == Some(true) {
                match g.host.graphics_ports {
                    GraphicsPorts::Fixed {
                        spice, spice_tls, ..
                    } => {
                        port = Some(i64::from(spice));
                        tls = tls_dir.as_ref().map(|_| i64::from(spice_tls));
                    }
                    GraphicsPorts::FirstFree => {
                        let plain = free_port(&host, &[]);
                        port = Some(i64::from(plain));
                        tls = tls_dir
                            .as_ref()
                            .map(|_| i64::from(free_port(&host, &[plain])));
                    }
                }
            }
            if let Some(port) = port {
                o = o.kv("port", port);
            }
            if let Some(tls) = tls {
                if tls_dir.is_none() {
                    return Err(unsupported(
                        p.attr("tlsPort"),
                        "SPICE TLS without a configured certificate directory",
                    ));
                }
                o = o.kv("tls-port", tls);
                secure = true;
            }
            if port.is_some() || tls.is_some() {
                address = Some(host);
            } else {
                o = o.kv("port", 0);
            }
        }
        other => {
            return Err(unsupported(
                p.named("listen").attr("type"),
                format!("SPICE listen type '{other}'"),
            ));
        }
    }
    o = o.opt("addr", address);
    if let Some(mode) = gr.child("mouse").and_then(|m| attr(m, "mode")) {
        o = o.kv("agent-mouse", if mode == "client" { "on" } else { "off" });
    }
    if secure && let Some(dir) = &g.host.spice.tls_x509_dir {
        o = o.kv("x509-dir", dir);
    }
    match attr(gr, "defaultMode").as_deref() {
        Some("secure") => o = o.kv("tls-channel", "default"),
        Some("insecure") => o = o.kv("plaintext-channel", "default"),
        _ => {}
    }
    for c in gr.children_named("channel") {
        let name = attr(c, "name").unwrap_or_default();
        match attr(c, "mode").as_deref() {
            Some("secure") => o = o.kv("tls-channel", name),
            Some("insecure") => o = o.kv("plaintext-channel", name),
            _ => {}
        }
    }
    for (el, a, opt) in SPICE_TUNING {
        if let Some(v) = gr.child(el).and_then(|e| attr(e, a)) {
            o = o.kv(opt, v);
        }
    }
    if gr
        .child("clipboard")
        .and_then(|c| switch(attr(c, "copypaste")))
        == Some(false)
    {
        o = o.kv("disable-copy-paste", "on");
    }
    if gr
        .child("filetransfer")
        .and_then(|c| switch(attr(c, "enable")))
        == Some(false)
    {
        o = o.kv("disable-agent-file-xfer", "on");
    }
    if let Some(gl) = gr.child("gl")
        && switch(attr(gl, "enable")) == Some(true)
    {
        let node = attr(gl, "rendernode")
            .or_else(|| g.host.render_node.clone())
            .ok_or_else(|| {
                unsupported(
                    p.named("gl"),
                    "SPICE GL without a DRM render node on this host",
                )
            })?;
        o = o.kv("gl", "on").kv("rendernode", node);
    }
    if attr(gr, "passwd").is_none() && !g.host.spice.password {
        o = o.kv("disable-ticketing", "on");
    }
    o = o.kv("seamless-migration", "on");
    let s = o.finish();
    g.a.opt("-spice", s.trim_start_matches(',').to_string());
    Ok(())
}

fn vnc(g: &mut Gen<'_>, gr: &Element) -> Result<()> {
    let p = g.path(gr);
    if let Some(a) = gr.attrs().iter().find(|a| !VNC_ATTRS.contains(&a.name())) {
        return Err(unsupported(
            p.attr(a.name()),
            format!("VNC setting '{}'", a.name()),
        ));
    }
    if attr(gr, "keymap").is_some() {
        return Err(unsupported(p.attr("keymap"), "VNC keymaps"));
    }
    if let Some(other) = gr
        .elements()
        .find(|e| !matches!(e.name(), "listen" | "audio"))
    {
        return Err(unsupported(
            p.named(other.name()),
            format!("VNC setting <{}>", other.name()),
        ));
    }
    let listen = gr.child("listen");
    let ltype = listen
        .and_then(|l| attr(l, "type"))
        .unwrap_or_else(|| "address".into());
    let mut spec = match ltype.as_str() {
        "socket" => {
            let sock = listen
                .and_then(|l| attr(l, "socket"))
                .unwrap_or_else(|| g.ctx.domain_dir.join("vnc.sock").display().to_string());
            format!("vnc=unix:{}", comma(&sock))
        }
        "none" => "none".to_string(),
        "address" => {
            let host = listen
                .and_then(|l| attr(l, "address"))
                .or_else(|| attr(gr, "listen"))
                .unwrap_or_else(|| "127.0.0.1".into());
            let autoport = switch(attr(gr, "autoport")) == Some(true);
            let port = if autoport {
                None
            } else {
                attr(gr, "port").and_then(|v| v.parse().ok())
            };
            let d = display(g, &host, port);
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("{host}:{d}")
        }
        other => {
            return Err(unsupported(
                p.named("listen").attr("type"),
                format!("VNC listen type '{other}'"),
            ));
        }
    };
    if let Some(ws) = attr(gr, "websocket") {
        let ws: i64 = ws
            .parse()
            .map_err(|_| invalid(p.attr("websocket"), "bad websocket port"))?;
        if ws < 0 {
            return Err(unsupported(
                p.attr("websocket"),
                "automatic websocket ports",
            ));
        }
        spec.push_str(&format!(",websocket={ws}"));
    }
    if let Some(share) = attr(gr, "sharePolicy") {
        spec.push_str(&format!(",share={}", comma(&share)));
    }
    if attr(gr, "passwd").is_some() {
        spec.push_str(",password=on");
    }
    if switch(attr(gr, "powerControl")) == Some(true) {
        spec.push_str(",power-control=on");
    }
    if let Some(a) = audiodev_for(g, gr) {
        spec.push_str(&format!(",audiodev={a}"));
    }
    g.a.opt("-vnc", spec);
    Ok(())
}

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for gr in devices.children_named("graphics") {
        match attr(gr, "type").as_deref() {
            Some("vnc") => vnc(g, gr)?,
            Some("spice") => spice(g, gr)?,
            Some("egl-headless") => {
                let p = g.path(gr);
                let node = gr
                    .child("gl")
                    .and_then(|gl| attr(gl, "rendernode"))
                    .or_else(|| g.host.render_node.clone())
                    .ok_or_else(|| {
                        unsupported(&p, "headless GL without a DRM render node on this host")
                    })?;
                g.a.opt(
                    "-display",
                    format!("egl-headless,rendernode={}", comma(&node)),
                );
            }
            other => {
                return Err(unsupported(
                    g.path(gr).attr("type"),
                    format!("graphics type '{}'", other.unwrap_or("")),
                ));
            }
        }
    }
    Ok(())
}
