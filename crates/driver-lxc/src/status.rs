//! The status file of a running container: what a later process needs to
//! find it again (supervisor and init with their start times, consoles,
//! host network devices, cgroups, the live definition). Written atomically.

use std::path::{Path, PathBuf};

use virtkit_core::domain::DomainDef;
use virtkit_core::xml::{self, Element, escape_libvirt as esc};
use virtkit_core::{DomainState, Error, Result};

use crate::cgroup::{Cgroup, Dir, Version};

/// A running container's record.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub id: u32,
    pub supervisor: (i32, u64),
    pub init: (i32, u64),
    pub state: DomainState,
    pub reason: i32,
    /// The user side of each console.
    pub consoles: Vec<PathBuf>,
    /// Host ends of the container's veths.
    pub veths: Vec<String>,
    pub cgroup: Cgroup,
    /// The definition the container was started with.
    pub live_xml: String,
}

impl Status {
    /// The status document.
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<domstatus id='{}' state='{}' reason='{}'>\n  <supervisor pid='{}' starttime='{}'/>\n  <init pid='{}' starttime='{}'/>\n",
            self.id,
            self.state.code(),
            self.reason,
            self.supervisor.0,
            self.supervisor.1,
            self.init.0,
            self.init.1,
        );
        for c in &self.consoles {
            s.push_str(&format!(
                "  <console path='{}'/>\n",
                esc(&c.to_string_lossy())
            ));
        }
        for v in &self.veths {
            s.push_str(&format!("  <veth name='{}'/>\n", esc(v)));
        }
        for d in &self.cgroup.dirs {
            s.push_str(&format!(
                "  <cgroup path='{}' version='{}' controllers='{}'/>\n",
                esc(&d.path.to_string_lossy()),
                if d.version == Version::V1 { "1" } else { "2" },
                esc(&d.controllers.join(","))
            ));
        }
        s.push_str(&self.live_xml);
        if !self.live_xml.ends_with('\n') {
            s.push('\n');
        }
        s.push_str("</domstatus>\n");
        s
    }

    /// Reads a status document.
    pub fn parse(text: &str, source: &Path) -> Result<Status> {
        let doc = xml::parse_with(
            text.as_bytes(),
            &xml::ParseOptions {
                source: Some(source.display().to_string()),
                ..Default::default()
            },
        )?;
        let root = &doc.root;
        let bad = |what: &str| {
            Error::internal(format!(
                "status file {} is damaged: {what}",
                source.display()
            ))
        };
        let num = |e: &Element, n: &str| e.attr(n).and_then(|v| v.parse::<i64>().ok());
        let pair = |name: &str| -> Result<(i32, u64)> {
            let e = root.child(name).ok_or_else(|| bad(name))?;
            Ok((
                num(e, "pid").ok_or_else(|| bad(name))? as i32,
                num(e, "starttime").unwrap_or(0) as u64,
            ))
        };
        let domain = root.child("domain").ok_or_else(|| bad("no <domain>"))?;
        let mut w = xml::CanonicalWriter::new();
        w.element(domain, 0);
        Ok(Status {
            id: num(root, "id").ok_or_else(|| bad("no id"))? as u32,
            supervisor: pair("supervisor")?,
            init: pair("init")?,
            state: DomainState::from_code(num(root, "state").unwrap_or(1) as i32),
            reason: num(root, "reason").unwrap_or(0) as i32,
            consoles: root
                .children_named("console")
                .filter_map(|c| c.attr("path").map(|p| PathBuf::from(p.as_ref())))
                .collect(),
            veths: root
                .children_named("veth")
                .filter_map(|v| v.attr("name").map(|n| n.into_owned()))
                .collect(),
            cgroup: Cgroup {
                dirs: root
                    .children_named("cgroup")
                    .filter_map(|c| {
                        Some(Dir {
                            path: PathBuf::from(c.attr("path")?.as_ref()),
                            version: if c.attr("version").as_deref() == Some("2") {
                                Version::V2
                            } else {
                                Version::V1
                            },
                            controllers: c
                                .attr("controllers")?
                                .split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect(),
                        })
                    })
                    .collect(),
            },
            live_xml: w.finish(),
        })
    }

    /// The live definition.
    pub fn live_def(&self) -> Result<DomainDef> {
        DomainDef::parse(&self.live_xml)
    }

    /// Writes the status file atomically (not forced to disk: a host crash
    /// ends the containers it describes).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::sys::replace_file(path, self.to_xml().as_bytes())
            .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let st = Status {
            id: 3,
            supervisor: (100, 5),
            init: (101, 6),
            state: DomainState::Paused,
            reason: 1,
            consoles: vec!["/dev/pts/4".into()],
            veths: vec!["vnet0".into()],
            cgroup: Cgroup {
                dirs: vec![Dir {
                    path: "/sys/fs/cgroup/memory/machine/c.virtkit-lxc".into(),
                    version: Version::V1,
                    controllers: vec!["memory".into()],
                }],
            },
            live_xml: "<domain type='lxc' id='3'>\n  <name>c</name>\n</domain>\n".into(),
        };
        let back = Status::parse(&st.to_xml(), Path::new("status.xml")).unwrap();
        assert_eq!(back.id, 3);
        assert_eq!(back.supervisor, (100, 5));
        assert_eq!(back.init, (101, 6));
        assert_eq!(back.state, DomainState::Paused);
        assert_eq!(back.consoles, st.consoles);
        assert_eq!(back.veths, st.veths);
        assert_eq!(back.cgroup, st.cgroup);
        assert!(back.live_xml.contains("<name>c</name>"));
    }
}
