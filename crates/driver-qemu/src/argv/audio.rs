//! Audio backends as `-audiodev` objects, with the per-direction settings
//! of `<input>`/`<output>` and each backend's own options.

use virtkit_core::Result;
use virtkit_core::xml::{Element, XPath};

use super::{Gen, Props, attr, switch, unsupported};
use crate::profile::address::parse_num;

/// libvirt audio types and QEMU's driver names.
const DRIVERS: &[(&str, &str)] = &[
    ("none", "none"),
    ("alsa", "alsa"),
    ("coreaudio", "coreaudio"),
    ("jack", "jack"),
    ("oss", "oss"),
    ("pulseaudio", "pa"),
    ("sdl", "sdl"),
    ("spice", "spice"),
    ("file", "wav"),
    ("dbus", "dbus"),
    ("pipewire", "pipewire"),
];

/// How an XML attribute becomes a property.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Num,
    Str,
}

/// XML attributes and the properties they become: (attribute, property, kind).
type Settings = &'static [(&'static str, &'static str, Kind)];

/// Settings every direction has.
const COMMON_DIR: Settings = &[
    ("mixingEngine", "mixing-engine", Kind::Bool),
    ("fixedSettings", "fixed-settings", Kind::Bool),
    ("voices", "voices", Kind::Num),
    ("bufferLength", "buffer-length", Kind::Num),
];

/// `<settings>` of a direction.
const SETTINGS: Settings = &[
    ("frequency", "frequency", Kind::Num),
    ("channels", "channels", Kind::Num),
    ("format", "format", Kind::Str),
];

/// Per-backend direction settings.
const BACKEND_DIR: &[(&str, Settings)] = &[
    ("alsa", &[("dev", "dev", Kind::Str)]),
    ("coreaudio", &[("bufferCount", "buffer-count", Kind::Num)]),
    (
        "jack",
        &[
            ("serverName", "server-name", Kind::Str),
            ("clientName", "client-name", Kind::Str),
            ("connectPorts", "connect-ports", Kind::Str),
            ("exactName", "exact-name", Kind::Bool),
        ],
    ),
    (
        "oss",
        &[
            ("dev", "dev", Kind::Str),
            ("bufferCount", "buffer-count", Kind::Num),
            ("tryPoll", "try-poll", Kind::Bool),
        ],
    ),
    (
        "pulseaudio",
        &[
            ("name", "name", Kind::Str),
            ("streamName", "stream-name", Kind::Str),
            ("latency", "latency", Kind::Num),
        ],
    ),
    ("sdl", &[("bufferCount", "buffer-count", Kind::Num)]),
];

/// Per-backend top-level settings.
const BACKEND_TOP: &[(&str, Settings)] = &[
    (
        "oss",
        &[
            ("tryMMap", "try-mmap", Kind::Bool),
            ("exclusive", "exclusive", Kind::Bool),
            ("dspPolicy", "dsp-policy", Kind::Num),
        ],
    ),
    ("pulseaudio", &[("serverName", "server", Kind::Str)]),
];

fn put(p: &mut Props, el: &Element, table: Settings) {
    for (xml, prop, kind) in table {
        let Some(v) = attr(el, xml) else { continue };
        match kind {
            Kind::Bool => {
                if let Some(b) = switch(Some(v)) {
                    p.put(prop, b);
                }
            }
            Kind::Num => {
                if let Some(n) = parse_num(&v) {
                    p.put(prop, n);
                }
            }
            Kind::Str => p.put(prop, v),
        }
    }
}

fn table(t: &[(&str, Settings)], ty: &str) -> Settings {
    t.iter().find(|(k, _)| *k == ty).map_or(&[], |(_, v)| v)
}

fn direction(el: &Element, ty: &str) -> Props {
    let mut p = Props::new();
    put(&mut p, el, COMMON_DIR);
    if let Some(s) = el.child("settings") {
        put(&mut p, s, SETTINGS);
    }
    put(&mut p, el, table(BACKEND_DIR, ty));
    p
}

fn emit_one(g: &mut Gen<'_>, a: &Element, p: &XPath) -> Result<()> {
    let ty = attr(a, "type").unwrap_or_else(|| "none".into());
    let driver = DRIVERS
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, d)| *d)
        .ok_or_else(|| unsupported(p.attr("type"), format!("audio type '{ty}'")))?;
    let id = attr(a, "id").unwrap_or_else(|| "1".into());
    let mut o = Props::new()
        .set("id", format!("audio{id}"))
        .set("driver", driver);
    o = o.opt(
        "timer-period",
        attr(a, "timerPeriod").and_then(|v| parse_num(&v)),
    );
    let mut top = Props::new();
    put(&mut top, a, table(BACKEND_TOP, &ty));
    o = o.extend(top);
    if ty == "file" {
        o = o.opt("path", attr(a, "path"));
    }
    for (el, key) in [("input", "in"), ("output", "out")] {
        if let Some(d) = a.child(el) {
            let dir = direction(d, &ty);
            if !dir.is_empty() {
                o = o.set(key, dir);
            }
        }
    }
    g.a.json("-audiodev", &o);
    Ok(())
}

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for a in devices.children_named("audio") {
        let p = g.path(a);
        emit_one(g, a, &p)?;
    }
    Ok(())
}

/// The `-audiodev` id a device uses: the backend it names, else the first.
pub(crate) fn audiodev_for(g: &Gen<'_>, dev: &Element) -> Option<String> {
    let named = dev.child("audio").and_then(|a| attr(a, "id"));
    named
        .or_else(|| g.devices.child("audio").and_then(|a| attr(a, "id")))
        .map(|id| format!("audio{id}"))
}

/// Environment QEMU's audio backends read: SDL's driver choice.
pub(crate) fn environment(devices: &Element) -> Vec<(String, String)> {
    devices
        .children_named("audio")
        .filter(|a| attr(a, "type").as_deref() == Some("sdl"))
        .filter_map(|a| attr(a, "driver"))
        .take(1)
        .map(|d| ("SDL_AUDIODRIVER".to_string(), d))
        .collect()
}
