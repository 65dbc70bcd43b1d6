//! Quoting values for QEMU's command line.
//!
//! QEMU's `key=value,key=value` options split on commas, so a comma inside a
//! value is written twice. JSON arguments (`-device '{...}'`) are produced by
//! serde_json and need nothing more.

use std::fmt::Write as _;

/// Characters that make libvirt quote an argument when it prints a command.
const SHELL_SPECIAL: &[char] = &[
    ' ', '\t', '\r', '\n', '`', '!', '"', '#', '$', '&', '\'', '(', ')', '*', ';', '<', '>', '?',
    '[', '\\', ']', '^', '{', '|', '}', '~',
];

/// An argument as libvirt prints it in a command line: single-quoted when
/// it holds white space or a shell metacharacter, `''` when empty.
pub fn shell_quote(arg: &str) -> String {
    if arg.is_empty() {
        return "''".into();
    }
    if arg.contains(SHELL_SPECIAL) {
        format!("'{}'", arg.replace('\'', "'\\''"))
    } else {
        arg.to_string()
    }
}

/// Doubles commas so a value survives QEMU's option parser.
pub fn comma(value: &str) -> String {
    value.replace(',', ",,")
}

/// Builds a `key=value,...` option string with escaped values.
#[derive(Debug, Default)]
pub struct Opts {
    s: String,
}

impl Opts {
    /// Starts with a bare first word (e.g. the backend type), escaped.
    pub fn new(first: &str) -> Opts {
        Opts { s: comma(first) }
    }

    /// Adds `key=value`, escaping the value.
    pub fn kv(mut self, key: &str, value: impl std::fmt::Display) -> Opts {
        if !self.s.is_empty() {
            self.s.push(',');
        }
        let _ = write!(self.s, "{key}={}", comma(&value.to_string()));
        self
    }

    /// Adds `key=value` when the value is present.
    pub fn opt(self, key: &str, value: Option<impl std::fmt::Display>) -> Opts {
        match value {
            Some(v) => self.kv(key, v),
            None => self,
        }
    }

    /// The option string.
    pub fn finish(self) -> String {
        self.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_are_doubled_in_values() {
        assert_eq!(comma("a,b"), "a,,b");
        let o = Opts::new("guest=x,y")
            .kv("path", "/tmp/a,b")
            .kv("n", 3)
            .finish();
        assert_eq!(o, "guest=x,,y,path=/tmp/a,,b,n=3");
    }

    #[test]
    fn arguments_with_shell_characters_are_quoted() {
        assert_eq!(shell_quote("pc,usb=off"), "pc,usb=off");
        assert_eq!(shell_quote(r#"{"a":1}"#), r#"'{"a":1}'"#);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
