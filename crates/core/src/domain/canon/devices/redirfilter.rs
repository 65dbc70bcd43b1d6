//! `<redirfilter>`: USB redirection rules. `-1` (any) is not printed;
//! class, vendor and product print in hex and the version as BCD
//! `major.minor` with two minor digits.

use crate::domain::canon::values::parse_u64_auto;
use crate::xml::Element;

/// Numeric rule attributes and their printed hex form.
const HEX_ATTRS: &[(&str, usize)] = &[("class", 2), ("vendor", 4), ("product", 4)];

pub(super) fn normalise(filter: &mut Element) {
    for rule in filter.elements_mut().filter(|e| e.name() == "usbdev") {
        for (name, width) in HEX_ATTRS {
            match rule.attr(name).map(|v| v.trim().to_string()) {
                Some(v) if v == "-1" => {
                    rule.remove_attr(name);
                }
                Some(v) => {
                    if let Some(n) = parse_u64_auto(&v) {
                        rule.set_attr(name, &format!("0x{n:0width$X}", width = *width));
                    }
                }
                None => {}
            }
        }
        match rule.attr("version").map(|v| v.trim().to_string()) {
            Some(v) if v == "-1" => {
                rule.remove_attr("version");
            }
            Some(v) => {
                if let Some(bcd) = version(&v) {
                    rule.set_attr("version", &bcd);
                }
            }
            None => {}
        }
    }
}

/// `9.4` is BCD 0x0940 and prints `9.40`; `2.0` prints `2.00`.
fn version(v: &str) -> Option<String> {
    let (major, minor) = v.split_once('.').unwrap_or((v, ""));
    let ok = |s: &str| s.len() <= 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if major.is_empty() || !ok(major) || !ok(minor) {
        return None;
    }
    let major = u8::from_str_radix(major, 16).ok()?;
    Some(format!("{major:x}.{minor:0<2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_values_are_dropped_and_versions_get_two_minor_digits() {
        let mut f = Element::new("redirfilter").with_child(
            Element::new("usbdev")
                .with_attr("class", "-1")
                .with_attr("vendor", "0x15e1")
                .with_attr("version", "9.4")
                .with_attr("allow", "yes"),
        );
        normalise(&mut f);
        let u = f.child("usbdev").unwrap();
        assert!(!u.has_attr("class"));
        assert_eq!(u.attr("vendor").as_deref(), Some("0x15E1"));
        assert_eq!(u.attr("version").as_deref(), Some("9.40"));
    }
}
