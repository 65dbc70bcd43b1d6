//! Scalar values as libvirt reads and prints them: numbers in the base
//! libvirt's parser accepts, CPU and vCPU bitmaps (`0-3,^2,8`), yes/no and
//! on/off switches, and attribute edits that keep the rest of an element.

use std::collections::BTreeSet;

use crate::xml::Element;

/// Largest bit number a bitmap may hold (libvirt's `VIR_DOMAIN_CPUMASK_LEN`).
pub(crate) const BITMAP_LEN: u32 = 4096;

/// Parses an unsigned decimal number the way libvirt's `virStrToLong_ui`
/// does for XML attributes: optional surrounding whitespace, no sign.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Parses a signed decimal number (`-1` is common for "automatic").
pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Parses a number in C's base 0 (`0x1f` hex, `017` octal, else decimal),
/// which libvirt uses for device address parts.
pub(crate) fn parse_u64_auto(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if t.len() > 1 && t.starts_with('0') {
        let oct = &t[1..];
        if !oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        return u64::from_str_radix(oct, 8).ok();
    }
    parse_u64(t)
}

/// A yes/no switch.
pub(crate) fn parse_yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Parses a libvirt bitmap: comma-separated numbers and `a-b` ranges, with
/// `^n` removing a number. Returns `None` when the syntax is invalid or a
/// number is out of range.
pub(crate) fn parse_bitmap(s: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    let mut any = false;
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return None;
        }
        any = true;
        if let Some(neg) = part.strip_prefix('^') {
            let n = parse_u64(neg).filter(|n| *n < u64::from(BITMAP_LEN))?;
            set.remove(&(n as u32));
            continue;
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_u64(a)?, parse_u64(b)?),
            None => {
                let n = parse_u64(part)?;
                (n, n)
            }
        };
        if lo > hi || hi >= u64::from(BITMAP_LEN) {
            return None;
        }
        set.extend(lo as u32..=hi as u32);
    }
    any.then_some(set)
}

/// Prints a bitmap as libvirt does: ascending, runs as `a-b`, joined by `,`.
pub(crate) fn format_bitmap(set: &BTreeSet<u32>) -> String {
    let mut out = String::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
    }
    out
}

/// Rewrites a bitmap attribute in libvirt's printed form when it parses.
pub(crate) fn normalise_bitmap_attr(el: &mut Element, name: &str) {
    if let Some(v) = el.attr(name).and_then(|v| parse_bitmap(&v))
        && !v.is_empty()
    {
        let s = format_bitmap(&v);
        el.set_attr(name, &s);
    }
}

/// Rewrites an element's text as a plain decimal when it parses.
pub(crate) fn normalise_uint_text(el: &mut Element) {
    if let Some(n) = parse_u64(&el.text()) {
        el.set_text(&n.to_string());
    }
}

/// An attribute's value, owned (convenient where the element is then edited).
pub(crate) fn attr(el: &Element, name: &str) -> Option<String> {
    el.attr(name).map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_ranges_exclusions_and_printing() {
        let s = parse_bitmap("1-4,^3,6").unwrap();
        assert_eq!(format_bitmap(&s), "1-2,4,6");
        assert_eq!(format_bitmap(&parse_bitmap("0,1,2,3").unwrap()), "0-3");
        assert_eq!(parse_bitmap("3-1"), None);
        assert_eq!(parse_bitmap(""), None);
        assert_eq!(parse_bitmap("1,,2"), None);
        assert_eq!(parse_bitmap("5000"), None);
    }

    #[test]
    fn numbers_in_base_zero() {
        assert_eq!(parse_u64_auto("0x1f"), Some(31));
        assert_eq!(parse_u64_auto("010"), Some(8));
        assert_eq!(parse_u64_auto("10"), Some(10));
        assert_eq!(parse_u64_auto("0"), Some(0));
        assert_eq!(parse_u64_auto("0x"), None);
        assert_eq!(parse_u64_auto("09"), None);
        assert_eq!(parse_i64("-1"), Some(-1));
        assert_eq!(parse_u64("-1"), None);
    }
}
