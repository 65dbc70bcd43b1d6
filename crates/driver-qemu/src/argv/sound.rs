//! Sound cards: PCI and ISA cards are one device; Intel HDA controllers
//! get a codec device per `<codec>` (a duplex codec by default).

use virtkit_core::Result;

use super::audio::audiodev_for;
use super::{Gen, Props, address, alias, attr, unsupported};

/// (model, QEMU driver, is an HDA controller).
const MODELS: &[(&str, &str, bool)] = &[
    ("ac97", "AC97", false),
    ("es1370", "ES1370", false),
    ("sb16", "sb16", false),
    ("ich6", "intel-hda", true),
    ("ich9", "ich9-intel-hda", true),
    ("usb", "usb-audio", false),
];

/// HDA codec types and their devices.
const CODECS: &[(&str, &str)] = &[
    ("duplex", "hda-duplex"),
    ("micro", "hda-micro"),
    ("output", "hda-output"),
];

pub(crate) fn emit_all(g: &mut Gen<'_>) -> Result<()> {
    let devices = g.devices;
    for (i, s) in devices.children_named("sound").enumerate() {
        let p = g.path(s);
        let model = attr(s, "model").unwrap_or_default();
        let (_, driver, hda) = MODELS
            .iter()
            .find(|(m, ..)| *m == model)
            .ok_or_else(|| unsupported(p.attr("model"), format!("sound model '{model}'")))?;
        let id = alias(s, format!("sound{i}"));
        let audio = audiodev_for(g, s);
        let mut o = Props::new().set("driver", *driver).set("id", id.clone());
        if !hda {
            o = o.opt("audiodev", audio.clone());
        }
        o = address::any(g, s, o);
        g.device(&o);
        if *hda {
            let codecs: Vec<String> = s
                .children_named("codec")
                .map(|c| attr(c, "type").unwrap_or_default())
                .collect();
            let codecs = if codecs.is_empty() {
                vec!["duplex".to_string()]
            } else {
                codecs
            };
            for (n, c) in codecs.iter().enumerate() {
                let cdrv = CODECS
                    .iter()
                    .find(|(t, _)| t == c)
                    .map(|(_, d)| *d)
                    .ok_or_else(|| {
                        unsupported(p.named("codec").attr("type"), format!("HDA codec '{c}'"))
                    })?;
                g.device(
                    &Props::new()
                        .set("driver", cdrv)
                        .set("id", format!("{id}-codec{n}"))
                        .set("bus", format!("{id}.0"))
                        .set("cad", n)
                        .opt("audiodev", audio.clone()),
                );
            }
        }
    }
    Ok(())
}
