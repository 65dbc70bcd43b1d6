//! JSON property objects for `-device`, `-blockdev`, `-netdev`, `-object`
//! and `-audiodev`, with keys kept in insertion order: libvirt writes
//! properties in a fixed order and the golden files compare text.

use std::fmt::Write as _;

/// A property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (sizes can exceed `i64`).
    UInt(u64),
    /// A boolean.
    Bool(bool),
    /// A nested object.
    Obj(Props),
    /// An array.
    Arr(Vec<Value>),
    /// JSON `null`.
    Null,
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Str(v.clone())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::UInt(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::UInt(u64::from(v))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::UInt(v as u64)
    }
}
impl From<Props> for Value {
    fn from(v: Props) -> Value {
        Value::Obj(v)
    }
}

/// An ordered JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props(Vec<(String, Value)>);

impl Props {
    /// An empty object.
    pub fn new() -> Props {
        Props(Vec::new())
    }

    /// Sets `key` (replacing an earlier value in place).
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Props {
        self.put(key, v);
        self
    }

    /// Sets `key` when `v` is present.
    pub fn opt(self, key: &str, v: Option<impl Into<Value>>) -> Props {
        match v {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Sets `key` in place.
    pub fn put(&mut self, key: &str, v: impl Into<Value>) {
        let v = v.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.0.push((key.to_string(), v)),
        }
    }

    /// Appends every property of `other`.
    pub fn extend(mut self, other: Props) -> Props {
        for (k, v) in other.0 {
            self.put(&k, v);
        }
        self
    }

    /// Whether the object has no property.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// QEMU's `key=value,...` form for binaries without JSON options: the
    /// value of `first` comes first and bare, booleans are `on`/`off`,
    /// commas in values are doubled. Nested objects do not occur in the
    /// options written this way.
    pub fn to_keyval(&self, first: &str) -> String {
        let mut parts = Vec::new();
        if let Some(Value::Str(v)) = self.get(first) {
            parts.push(v.replace(',', ",,"));
        }
        for (k, v) in &self.0 {
            if k == first {
                continue;
            }
            let text = match v {
                Value::Str(s) => s.replace(',', ",,"),
                Value::Int(n) => n.to_string(),
                Value::UInt(n) => n.to_string(),
                Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
                Value::Arr(items) => {
                    // Lists of numbers are written as repeated ranges.
                    let mut nums: Vec<u64> = items
                        .iter()
                        .filter_map(|v| match v {
                            Value::UInt(n) => Some(*n),
                            Value::Int(n) => u64::try_from(*n).ok(),
                            _ => None,
                        })
                        .collect();
                    nums.sort_unstable();
                    let mut i = 0;
                    while i < nums.len() {
                        let mut j = i;
                        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                            j += 1;
                        }
                        let r = if i == j {
                            nums[i].to_string()
                        } else {
                            format!("{}-{}", nums[i], nums[j])
                        };
                        parts.push(format!("{k}={r}"));
                        i = j + 1;
                    }
                    continue;
                }
                Value::Obj(_) | Value::Null => continue,
            };
            parts.push(format!("{k}={text}"));
        }
        parts.join(",")
    }

    /// Compact JSON text, as libvirt prints it.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        write_obj(&mut s, self);
        s
    }
}

fn write_str(out: &mut String, v: &str) {
    // serde_json's string escaping matches libvirt's for the characters
    // that occur in practice (quotes, backslashes, control characters).
    out.push_str(&serde_json::Value::String(v.to_string()).to_string());
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => write_str(out, s),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::UInt(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Obj(o) => write_obj(out, o),
        Value::Arr(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, v);
            }
            out.push(']');
        }
        Value::Null => out.push_str("null"),
    }
}

fn write_obj(out: &mut String, o: &Props) {
    out.push('{');
    for (i, (k, v)) in o.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_insertion_order() {
        let p = Props::new()
            .set("driver", "virtio-blk-pci")
            .set("bus", "pci.0")
            .set("addr", "0x3")
            .set(
                "cache",
                Props::new().set("direct", true).set("no-flush", false),
            )
            .set("size", 224395264u64)
            .opt("id", None::<&str>);
        assert_eq!(
            p.to_json(),
            r#"{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x3","cache":{"direct":true,"no-flush":false},"size":224395264}"#
        );
    }

    #[test]
    fn keyval_form_puts_the_type_first() {
        let p = Props::new()
            .set("bus", "pci.0")
            .set("driver", "ide-hd")
            .set("multifunction", true)
            .set("serial", "a,b");
        assert_eq!(
            p.to_keyval("driver"),
            "ide-hd,bus=pci.0,multifunction=on,serial=a,,b"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let p = Props::new().set("serial", r"\ a");
        assert_eq!(p.to_json(), r#"{"serial":"\\ a"}"#);
    }
}
