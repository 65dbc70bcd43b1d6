//! Disk I/O limits (`<disk><iotune>`, `virsh blkdeviotune`).
//!
//! With `-blockdev`, libvirt sets a disk's throttling over QMP
//! (`block_set_io_throttle`) once QEMU is up and before the guest runs, not
//! on the command line; virtkit does the same. The limits travel as
//! libvirt's typed parameters (`total_bytes_sec`, ..., `group_name`), the
//! names of the `<iotune>` children.

use serde_json::{Map, Value};
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result, TypedValue};

/// libvirt's parameter (and `<iotune>` child) names with QEMU's
/// `block_set_io_throttle` argument, in the order virsh prints them.
pub const PARAMS: &[(&str, &str)] = &[
    ("total_bytes_sec", "bps"),
    ("read_bytes_sec", "bps_rd"),
    ("write_bytes_sec", "bps_wr"),
    ("total_iops_sec", "iops"),
    ("read_iops_sec", "iops_rd"),
    ("write_iops_sec", "iops_wr"),
    ("total_bytes_sec_max", "bps_max"),
    ("read_bytes_sec_max", "bps_rd_max"),
    ("write_bytes_sec_max", "bps_wr_max"),
    ("total_iops_sec_max", "iops_max"),
    ("read_iops_sec_max", "iops_rd_max"),
    ("write_iops_sec_max", "iops_wr_max"),
    ("size_iops_sec", "iops_size"),
    ("group_name", "group"),
    ("total_bytes_sec_max_length", "bps_max_length"),
    ("read_bytes_sec_max_length", "bps_rd_max_length"),
    ("write_bytes_sec_max_length", "bps_wr_max_length"),
    ("total_iops_sec_max_length", "iops_max_length"),
    ("read_iops_sec_max_length", "iops_rd_max_length"),
    ("write_iops_sec_max_length", "iops_wr_max_length"),
];

/// One disk's limits: every numeric parameter (0: no limit) and the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoTune {
    /// By libvirt name, in [`PARAMS`] order (without `group_name`).
    pub values: Vec<(&'static str, u64)>,
    /// Throttle group shared with other disks.
    pub group: Option<String>,
}

fn invalid(what: String) -> Error {
    Error::new(ErrorKind::InvalidArg, what)
}

impl IoTune {
    /// No limits.
    pub fn none() -> IoTune {
        IoTune {
            values: PARAMS
                .iter()
                .filter(|(n, _)| *n != "group_name")
                .map(|(n, _)| (*n, 0))
                .collect(),
            group: None,
        }
    }

    fn get(&self, name: &str) -> u64 {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    fn set(&mut self, name: &str, v: u64) -> bool {
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = v;
                true
            }
            None => false,
        }
    }

    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.values.iter().any(|(_, v)| *v != 0)
    }

    /// Reads `<iotune>` (`p`: its path, for errors).
    pub fn from_element(e: &Element, p: &XPath) -> Result<IoTune> {
        let mut t = IoTune::none();
        for c in e.elements() {
            let name = c.name();
            if name == "group_name" {
                t.group = Some(c.text().trim().to_string()).filter(|g| !g.is_empty());
                continue;
            }
            let text = c.text();
            let v: u64 = text.trim().parse().map_err(|_| {
                Error::new(
                    ErrorKind::XmlError,
                    format!(
                        "{}: '{}' is not a non-negative number",
                        p.named(name),
                        text.trim()
                    ),
                )
            })?;
            if !t.set(name, v) {
                return Err(Error::new(
                    ErrorKind::ConfigUnsupported,
                    format!("unknown disk I/O limit <{name}> ({})", p.named(name)),
                ));
            }
        }
        t.check()
            .map_err(|e| Error::new(e.kind(), format!("{} ({p})", e.message())))?;
        Ok(t)
    }

    /// Applies typed parameters (`virDomainSetBlockIoTune`) on top; on
    /// error nothing changes.
    pub fn update(&mut self, params: &[(String, TypedValue)]) -> Result<()> {
        let mut next = self.clone();
        next.apply(params)?;
        next.check()?;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, params: &[(String, TypedValue)]) -> Result<()> {
        for (name, v) in params {
            if name == "group_name" {
                match v {
                    TypedValue::String(s) => {
                        self.group = Some(s.clone()).filter(|g| !g.is_empty());
                    }
                    _ => return Err(invalid(format!("parameter '{name}' must be a string"))),
                }
                continue;
            }
            let n = match v {
                TypedValue::ULLong(n) => *n,
                TypedValue::LLong(n) if *n >= 0 => *n as u64,
                TypedValue::UInt(n) => u64::from(*n),
                TypedValue::Int(n) if *n >= 0 => *n as u64,
                _ => {
                    return Err(invalid(format!(
                        "parameter '{name}' must be a non-negative number"
                    )));
                }
            };
            if !self.set(name, n) {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    format!("unknown block I/O tuning parameter '{name}'"),
                ));
            }
        }
        Ok(())
    }

    /// libvirt's consistency rules.
    pub fn check(&self) -> Result<()> {
        for kind in ["bytes", "iops"] {
            for sfx in ["", "_max", "_max_length"] {
                let total = self.get(&format!("total_{kind}_sec{sfx}"));
                let rw = self.get(&format!("read_{kind}_sec{sfx}"))
                    + self.get(&format!("write_{kind}_sec{sfx}"));
                if total != 0 && rw != 0 {
                    return Err(invalid(format!(
                        "total and read/write of {kind}_sec{sfx} cannot be set at the same time"
                    )));
                }
            }
            for dir in ["total", "read", "write"] {
                let base = self.get(&format!("{dir}_{kind}_sec"));
                let max = self.get(&format!("{dir}_{kind}_sec_max"));
                if max != 0 && base > max {
                    return Err(invalid(format!(
                        "{dir}_{kind}_sec cannot be set higher than {dir}_{kind}_sec_max"
                    )));
                }
                if max != 0 && base == 0 {
                    return Err(invalid(format!(
                        "{dir}_{kind}_sec_max requires {dir}_{kind}_sec to be set"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The arguments of `block_set_io_throttle` for QOM device `id`.
    pub fn qmp_args(&self, id: &str) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(id));
        for (lv, q) in PARAMS {
            if *lv == "group_name" {
                if let Some(g) = &self.group {
                    m.insert((*q).into(), Value::from(g.clone()));
                }
                continue;
            }
            let v = self.get(lv);
            // The six base limits are mandatory arguments.
            if v != 0 || !lv.contains("_max") && *lv != "size_iops_sec" {
                m.insert((*q).into(), Value::from(v));
            }
        }
        Value::Object(m)
    }

    /// From `query-block`'s `inserted` object of a device.
    pub fn from_query(inserted: &Value) -> IoTune {
        let mut t = IoTune::none();
        for (lv, q) in PARAMS {
            if *lv == "group_name" {
                t.group = inserted
                    .get(*q)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .filter(|g| !g.is_empty());
            } else if let Some(v) = inserted.get(*q).and_then(Value::as_u64) {
                t.set(lv, v);
            }
        }
        t
    }

    /// As typed parameters, in virsh's order.
    pub fn to_params(&self) -> Vec<(String, TypedValue)> {
        PARAMS
            .iter()
            .map(|(lv, _)| {
                let v = if *lv == "group_name" {
                    TypedValue::String(self.group.clone().unwrap_or_default())
                } else {
                    TypedValue::ULLong(self.get(lv))
                };
                (lv.to_string(), v)
            })
            .collect()
    }

    /// As an `<iotune>` element (only what is set); `None` without limits.
    pub fn to_element(&self) -> Option<Element> {
        if !self.is_set() {
            return None;
        }
        let mut e = Element::new("iotune");
        for (lv, _) in PARAMS {
            if *lv == "group_name" {
                if let Some(g) = &self.group {
                    e.append_element(Element::new("group_name").with_text(g));
                }
                continue;
            }
            let v = self.get(lv);
            if v != 0 {
                e.append_element(Element::new(*lv).with_text(&v.to_string()));
            }
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_params_and_qmp() {
        let doc = virtkit_core::xml::parse(
            "<iotune><total_bytes_sec>5000</total_bytes_sec><read_iops_sec>70</read_iops_sec>\
             <group_name>g1</group_name></iotune>",
        )
        .unwrap();
        let p = XPath::root("iotune");
        let t = IoTune::from_element(&doc.root, &p).unwrap();
        let q = t.qmp_args("virtio-disk0");
        assert_eq!(q["id"], "virtio-disk0");
        assert_eq!(
            (q["bps"].as_u64(), q["iops_rd"].as_u64()),
            (Some(5000), Some(70))
        );
        assert_eq!(q["iops"].as_u64(), Some(0), "base limits always given");
        assert!(q.get("bps_max").is_none());
        assert_eq!(q["group"], "g1");
        let back = IoTune::from_query(&q);
        assert_eq!(back, t);
        let mut u = t.clone();
        u.update(&[("total_iops_sec".into(), TypedValue::ULLong(9))])
            .unwrap_err();
        u.update(&[("write_iops_sec".into(), TypedValue::ULLong(9))])
            .unwrap();
        assert_eq!(u.get("write_iops_sec"), 9);
        let e = u.to_element().unwrap();
        assert_eq!(e.children_named("write_iops_sec").count(), 1);
        let bad = virtkit_core::xml::parse("<iotune><total_bytes_sec>x</total_bytes_sec></iotune>")
            .unwrap();
        let err = IoTune::from_element(&bad.root, &p).unwrap_err().to_string();
        assert!(err.contains("/iotune/total_bytes_sec"), "{err}");
        let mut m = IoTune::none();
        assert!(
            m.update(&[("total_bytes_sec_max".into(), TypedValue::ULLong(5))])
                .is_err()
        );
    }
}
