//! Scaled values (`<memory unit='GiB'>2</memory>`) as libvirt reads them.

use crate::xml::Element;

/// The multiplier of a unit name: `b`/`bytes` 1, `k`/`KiB` 1024, `KB` 1000,
/// and so on up to exbibytes. Case-insensitive like libvirt.
pub fn unit_scale(unit: &str) -> Option<u64> {
    let u = unit.to_ascii_lowercase();
    if matches!(u.as_str(), "b" | "byte" | "bytes") {
        return Some(1);
    }
    let mut chars = u.chars();
    let power = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: u64 = match chars.as_str() {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    Some(base.pow(power))
}

/// Parses `value` in `unit` (or `default_scale` when no unit is given) into bytes.
pub fn parse_scaled(value: &str, unit: Option<&str>, default_scale: u64) -> Result<u64, String> {
    let v = value.trim();
    let n: u64 = v
        .parse()
        .map_err(|_| format!("expected a non-negative integer, got '{value}'"))?;
    let scale = match unit {
        Some(u) => unit_scale(u).ok_or_else(|| {
            format!("unknown unit '{u}' (use b, KiB, MiB, GiB, TiB, KB, MB, GB...)")
        })?,
        None => default_scale,
    };
    n.checked_mul(scale).ok_or_else(|| {
        format!(
            "value '{value}' in unit '{}' is too large",
            unit.unwrap_or("KiB")
        )
    })
}

/// The KiB value of a memory-like element (`unit` attribute, default KiB),
/// rounded up to whole KiB as libvirt does.
pub fn element_kib(el: &Element) -> Result<u64, String> {
    let unit = el.attr("unit");
    let bytes = parse_scaled(&el.text(), unit.as_deref(), 1024)?;
    Ok(bytes.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales() {
        assert_eq!(unit_scale("KiB"), Some(1024));
        assert_eq!(unit_scale("k"), Some(1024));
        assert_eq!(unit_scale("KB"), Some(1000));
        assert_eq!(unit_scale("GiB"), Some(1 << 30));
        assert_eq!(unit_scale("bytes"), Some(1));
        assert_eq!(unit_scale("xb"), None);
        assert_eq!(parse_scaled("3", Some("MB"), 1024), Ok(3_000_000));
        assert!(parse_scaled("-1", None, 1024).is_err());
        assert!(parse_scaled("99999999999999999", Some("EiB"), 1024).is_err());
    }
}
