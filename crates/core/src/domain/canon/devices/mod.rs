//! `<devices>`: per-device normalisation, the devices libvirt adds
//! implicitly (controllers, the serial console alias) and the checks its
//! parser makes. Device order is the order table's job, except where
//! libvirt reorders devices of one kind (controllers, the primary video).

mod address;
mod chardev;
mod controller;
mod defaults;
mod disk;

pub(crate) use disk::disk_name_index;
mod graphics;
mod redirfilter;
mod video;

use super::Ctx;
use crate::error::Result;
use crate::xml::{Document, Element, XPath};

/// What device passes need to know about the domain.
pub(super) struct Guest {
    /// `<os><type>` (`hvm`, `xen`, `exe`, ...).
    pub os_type: String,
    /// `<os><type arch=..>` after defaults.
    pub arch: String,
}

impl Guest {
    fn of(root: &Element, ctx: &Ctx<'_>) -> Guest {
        let t = root.child("os").and_then(|o| o.child("type"));
        let os_type = t.map(|t| t.text().trim().to_string()).unwrap_or_default();
        let arch = t
            .and_then(|t| t.attr("arch").map(|a| a.into_owned()))
            .unwrap_or_else(|| ctx.profile.default_arch(&os_type).to_string());
        Guest { os_type, arch }
    }

    fn is_hvm(&self) -> bool {
        self.os_type == "hvm"
    }
}

/// The parse-time checks of every device family.
pub(super) fn validate(doc: &Document, p: &XPath) -> Result<()> {
    let root = &doc.root;
    let Some(devices) = root.child("devices") else {
        return Ok(());
    };
    let dp = p.child(root, devices);
    for dev in devices.elements() {
        let path = dp.child(devices, dev);
        chardev::validate(doc, dev, &path)?;
        if dev.name() == "graphics" {
            graphics::validate(doc, dev, &path)?;
        }
    }
    video::validate(doc, devices, &dp)?;
    Ok(())
}

pub(super) fn normalise(root: &mut Element, ctx: &Ctx<'_>) {
    let guest = Guest::of(root, ctx);
    // libvirt always prints <devices>, even with nothing in it.
    let devices = root.child_or_insert("devices");
    disk::sort_as_inserted(devices);
    for dev in devices.elements_mut() {
        defaults::apply(dev, &guest);
        chardev::normalise(dev);
        match dev.name() {
            "disk" => disk::normalise(dev),
            "graphics" => graphics::normalise(dev, ctx.opts),
            "redirfilter" => redirfilter::normalise(dev),
            _ => {}
        }
        address::normalise_all(dev);
    }
    chardev::assign_ports(devices, &guest);
    chardev::console_compat(devices, &guest);
    controller::add_implicit(devices);
    controller::assign_indexes(devices);
    video::add_implicit(devices, ctx.profile.default_video_model());
    video::normalise(devices);
}
