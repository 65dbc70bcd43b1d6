//! Interface names: the kernel's validity rules, and race-free allocation from
//! a template such as `vnet%d`.
//!
//! Allocation follows libvirt's `virNetDevGenerateName`: a process-wide,
//! monotonic counter per template (not the kernel's own `%d` expansion, which
//! hands out the lowest free number and so reuses a name the moment it is
//! freed, confusing anything that still refers to the old device). A candidate
//! that turns out to be taken is skipped; the create call itself is exclusive
//! (`NLM_F_EXCL`, `IFF_TUN_EXCL`), so two processes racing for one name cannot
//! both get it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{NetdevError, Result};

/// The longest interface name, in bytes (IFNAMSIZ 16 minus the NUL).
pub const MAX_NAME_LEN: usize = 15;

/// How many taken candidates a template allocation skips before giving up.
pub(crate) const MAX_NAME_ATTEMPTS: usize = 1024;

/// A device name as the caller asked for it: exact, or a template to allocate from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IfName {
    /// Exactly this name; creation fails if it is taken.
    Exact(String),
    /// A template with one `%d`, e.g. `vnet%d`; the next free number is used.
    Template(String),
}

impl IfName {
    /// `Template` when `s` contains `%d`, else `Exact`. Validity is checked
    /// when the name is used.
    pub fn parse(s: &str) -> IfName {
        if s.contains("%d") {
            IfName::Template(s.to_string())
        } else {
            IfName::Exact(s.to_string())
        }
    }

    /// Checks the name or template against the kernel's rules.
    pub fn validate(&self) -> Result<()> {
        match self {
            IfName::Exact(n) => validate_name(n),
            IfName::Template(t) => validate_template(t).map(|_| ()),
        }
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        match self {
            IfName::Exact(s) | IfName::Template(s) => s,
        }
    }
}

impl From<&str> for IfName {
    fn from(s: &str) -> IfName {
        IfName::parse(s)
    }
}

impl From<String> for IfName {
    fn from(s: String) -> IfName {
        IfName::parse(&s)
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> NetdevError {
    NetdevError::InvalidName {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Checks a literal device name: 1 to 15 bytes, not `.` or `..`, and no `/`,
/// `:`, `%`, NUL or whitespace (the kernel's `dev_valid_name`, plus `%`, which
/// would make the kernel treat it as a template).
pub fn validate_name(name: &str) -> Result<()> {
    check_chars(name, false)?;
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            name,
            format!(
                "{} bytes long; the kernel allows at most {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a template and returns its prefix and suffix around the one `%d`.
pub fn validate_template(template: &str) -> Result<(&str, &str)> {
    check_chars(template, true)?;
    let Some((prefix, suffix)) = template.split_once("%d") else {
        return Err(invalid(
            template,
            "a template needs one '%d', e.g. 'vnet%d'",
        ));
    };
    if prefix.len() + suffix.len() + 1 > MAX_NAME_LEN {
        return Err(invalid(
            template,
            format!(
                "with one digit the name would be {} bytes; the kernel allows at most {MAX_NAME_LEN}",
                prefix.len() + suffix.len() + 1
            ),
        ));
    }
    Ok((prefix, suffix))
}

fn check_chars(name: &str, template: bool) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(name, "it is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid(name, "'.' and '..' are reserved"));
    }
    if name.contains('/') {
        return Err(invalid(name, "it contains '/'"));
    }
    if name.contains(':') {
        return Err(invalid(
            name,
            "it contains ':' (reserved for old-style aliases)",
        ));
    }
    if name.contains('\0') {
        return Err(invalid(name, "it contains a NUL byte"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(invalid(name, "it contains whitespace"));
    }
    let percents = name.matches('%').count();
    if template {
        if percents != 1 || !name.contains("%d") {
            return Err(invalid(
                name,
                "a template must contain exactly one '%', as '%d'",
            ));
        }
    } else if percents > 0 {
        return Err(invalid(
            name,
            "'%' is only allowed in a template, as a single '%d' (e.g. 'vnet%d')",
        ));
    }
    Ok(())
}

/// Process-wide next number per template.
static COUNTERS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Hands out the next candidate name for `template` (validated by the caller).
///
/// Numbers only go up; when the result would not fit in 15 bytes the counter
/// wraps to 0, by which time the low names are long free.
pub(crate) fn next_candidate(template: &str) -> Result<String> {
    let (prefix, suffix) = validate_template(template)?;
    let room = MAX_NAME_LEN - prefix.len() - suffix.len();
    // 10^room would not fit: the largest number with `room` digits, capped for u64.
    let limit = 10u64.checked_pow(room.min(19) as u32).unwrap_or(u64::MAX);
    let mut map = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let counter = map.entry(template.to_string()).or_insert(0);
    if *counter >= limit {
        *counter = 0;
    }
    let n = *counter;
    *counter += 1;
    Ok(format!("{prefix}{n}{suffix}"))
}

/// Makes sure the counter for `template` is past `n`, so a name known to be
/// in use (found at start-up, like libvirt's `virNetDevReserveName`) is not
/// tried first.
pub fn reserve_number(template: &str, n: u64) -> Result<()> {
    validate_template(template)?;
    let mut map = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let counter = map.entry(template.to_string()).or_insert(0);
    if *counter <= n {
        *counter = n + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kernel_rules() {
        for ok in ["vnet0", "virbr0", "a", "x-y_z.1", "123456789012345"] {
            validate_name(ok).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("1234567890123456", "at most 15"),
            ("a/b", "'/'"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("eth0:1", "':'"),
            ("vnet%d", "only allowed in a template"),
            ("50%", "only allowed in a template"),
            (".", "reserved"),
            ("..", "reserved"),
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn templates_need_one_percent_d() {
        assert_eq!(validate_template("vnet%d").unwrap(), ("vnet", ""));
        assert_eq!(validate_template("br%d-nic").unwrap(), ("br", "-nic"));
        for bad in [
            "vnet",
            "vnet%s",
            "v%d%d",
            "%d%",
            "12345678901234567%d",
            "v n%d",
        ] {
            assert!(validate_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocation_is_monotonic_and_never_reuses_at_once() {
        let t = "tmono%d";
        let a = next_candidate(t).unwrap();
        let b = next_candidate(t).unwrap();
        assert_eq!(a, "tmono0");
        assert_eq!(b, "tmono1");
        reserve_number(t, 41).unwrap();
        assert_eq!(next_candidate(t).unwrap(), "tmono42");
        reserve_number(t, 3).unwrap(); // never goes backwards
        assert_eq!(next_candidate(t).unwrap(), "tmono43");
    }

    #[test]
    fn allocation_wraps_before_overflowing_the_name() {
        // 14-byte prefix leaves room for one digit: 0..=9, then wrap.
        let t = "abcdefghijklmn%d";
        let names: Vec<String> = (0..11).map(|_| next_candidate(t).unwrap()).collect();
        assert_eq!(names[9], "abcdefghijklmn9");
        assert_eq!(names[10], "abcdefghijklmn0");
        assert!(names.iter().all(|n| n.len() <= MAX_NAME_LEN));
    }

    #[test]
    fn ifname_parse() {
        assert_eq!(IfName::parse("vnet%d"), IfName::Template("vnet%d".into()));
        assert_eq!(IfName::parse("vnet3"), IfName::Exact("vnet3".into()));
        assert!(IfName::parse("bad name").validate().is_err());
    }
}
