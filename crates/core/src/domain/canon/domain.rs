//! Top-level scalars of `<domain>`: identifiers, clock and lifecycle
//! actions, with the defaults libvirt fills in.

use super::Ctx;
use crate::ids::Uuid;
use crate::xml::Element;

/// Lifecycle elements and the action libvirt prints when one is missing.
const LIFECYCLE_DEFAULTS: &[(&str, &str)] = &[
    ("on_poweroff", "destroy"),
    ("on_reboot", "restart"),
    ("on_crash", "destroy"),
];

/// Identifiers as libvirt prints them: UUIDs lowercase with hyphens.
pub(super) fn normalise(root: &mut Element, _ctx: &Ctx<'_>) {
    for name in ["uuid", "genid"] {
        if let Some(el) = root.child_mut(name)
            && let Ok(u) = el.text().parse::<Uuid>()
        {
            el.set_text(&u.to_string());
        }
    }
}

/// Defaults that apply once everything else is in place: the clock offset
/// and the three lifecycle actions.
pub(super) fn apply_defaults(root: &mut Element) {
    let clock = root.child_or_insert("clock");
    if !clock.has_attr("offset") {
        clock.set_attr("offset", "utc");
    }
    // A variable clock always states its adjustment and basis.
    if clock.attr("offset").as_deref() == Some("variable") {
        if !clock.has_attr("adjustment") {
            clock.set_attr("adjustment", "0");
        }
        if !clock.has_attr("basis") {
            clock.set_attr("basis", "utc");
        }
    }
    for (event, action) in LIFECYCLE_DEFAULTS {
        if root.child(event).is_none_or(|e| e.text().trim().is_empty()) {
            root.child_or_insert(event).set_text(action);
        }
    }
}
