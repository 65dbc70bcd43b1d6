//! Firmware given by path: a ROM image (`-bios`) or flash images
//! (`-blockdev` nodes the machine's `pflash0`/`pflash1` point at), the
//! second one holding the guest's UEFI variables. `<os firmware='efi'>`
//! is resolved to such paths before the command line is built
//! ([`crate::firmware::fill`]); a domain that still has none here was not
//! resolved, which is an error.

use virtkit_core::Result;
use virtkit_core::xml::XPath;

use super::{Gen, Props, attr, invalid, switch, unsupported};

/// The flash images of the domain as (pflash unit, path, read-only).
fn flash_images(g: &Gen<'_>, p: &XPath) -> Result<Vec<(u32, String, bool)>> {
    let Some(os) = g.domain.child("os") else {
        return Ok(Vec::new());
    };
    let op = p.named("os");
    let resolved = os
        .child("loader")
        .is_some_and(|l| !l.text().trim().is_empty());
    if attr(os, "firmware").is_some() && !resolved {
        return Err(unsupported(
            op.attr("firmware"),
            "firmware auto-selection without firmware descriptors",
        ));
    }
    let Some(loader) = os.child("loader") else {
        if os.child("nvram").is_some() {
            return Err(invalid(
                op.named("nvram"),
                "an NVRAM store needs a <loader>",
            ));
        }
        return Ok(Vec::new());
    };
    let lp = op.named("loader");
    let path = loader.text().trim().to_string();
    if path.is_empty() {
        return Err(unsupported(
            &lp,
            "firmware auto-selection (a <loader> without a path)",
        ));
    }
    if attr(loader, "type").as_deref() != Some("pflash") {
        return Ok(Vec::new());
    }
    if attr(loader, "format").is_some_and(|f| f != "raw") {
        return Err(unsupported(
            lp.attr("format"),
            "firmware images that are not raw",
        ));
    }
    if switch(attr(loader, "secure")) == Some(true) {
        let smm_on = g
            .domain
            .child("features")
            .and_then(|f| f.child("smm"))
            .is_some_and(|s| attr(s, "state").as_deref() != Some("off"));
        if !smm_on {
            return Err(invalid(
                lp.attr("secure"),
                "a secure boot loader needs SMM: add <smm state='on'/> to <features>",
            ));
        }
    }
    let readonly = switch(attr(loader, "readonly")).unwrap_or(false);
    let stateless = switch(attr(loader, "stateless")).unwrap_or(false);
    let mut images = vec![(0, path, readonly)];
    let nvram = os.child("nvram").and_then(|n| {
        let direct = n.text().trim().to_string();
        if direct.is_empty() {
            n.child("source").and_then(|s| attr(s, "file"))
        } else {
            Some(direct)
        }
    });
    match nvram {
        Some(vars) => images.push((1, vars, false)),
        None if readonly && !stateless => {
            return Err(unsupported(
                op.named("nvram"),
                "an NVRAM store created from a template",
            ));
        }
        None => {}
    }
    Ok(images)
}

/// The `-blockdev` nodes of flash firmware (before `-machine`), returning
/// the machine options that attach them.
pub(crate) fn emit_flash(g: &mut Gen<'_>, p: &XPath) -> Result<String> {
    let mut machine_opts = String::new();
    for (unit, path, readonly) in flash_images(g, p)? {
        let storage = format!("libvirt-pflash{unit}-storage");
        let format = format!("libvirt-pflash{unit}-format");
        g.a.json(
            "-blockdev",
            &Props::new()
                .set("driver", "file")
                .set("filename", path)
                .set("node-name", storage.clone())
                .set("auto-read-only", true)
                .set("discard", "unmap"),
        );
        g.a.json(
            "-blockdev",
            &Props::new()
                .set("node-name", format.clone())
                .set("read-only", readonly)
                .set("driver", "raw")
                .set("file", storage),
        );
        machine_opts.push_str(&format!(",pflash{unit}={format}"));
    }
    Ok(machine_opts)
}

/// `-bios` for a ROM firmware image, or the secure-flash switch of a
/// secure flash loader (after `-cpu`).
pub(crate) fn emit_rom(g: &mut Gen<'_>) {
    let loader = g.domain.child("os").and_then(|o| o.child("loader"));
    if loader.is_some_and(|l| {
        attr(l, "type").as_deref() == Some("pflash") && switch(attr(l, "secure")) == Some(true)
    }) {
        g.a.opt("-global", "driver=cfi.pflash01,property=secure,value=on");
    }
    let rom = loader
        .filter(|l| attr(l, "type").as_deref() != Some("pflash"))
        .map(|l| l.text().trim().to_string())
        .filter(|p| !p.is_empty());
    if let Some(path) = rom {
        g.a.opt("-bios", path);
    }
}
