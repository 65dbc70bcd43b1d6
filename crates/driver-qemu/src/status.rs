//! The status file of a running domain: what a later process needs to find
//! and re-attach to it (pid and start time, monitor socket, id, state, the
//! live definition, host devices made for it). Written atomically.

use std::path::{Path, PathBuf};

use virtkit_core::domain::DomainDef;
use virtkit_core::xml::{self, Element, escape_libvirt as esc};
use virtkit_core::{DomainState, Error, Result, files};

/// A running domain's record.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: u32,
    pub pid: i32,
    pub start_time: u64,
    pub state: DomainState,
    pub reason: i32,
    pub monitor: PathBuf,
    /// Host tap devices created for the guest (deleted when it stops).
    pub taps: Vec<String>,
    /// The definition the guest was started with.
    pub live_xml: String,
}

impl Status {
    /// Serialises to the status XML document.
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<domstatus id='{}' pid='{}' starttime='{}' state='{}' reason='{}'>\n  <monitor path='{}'/>\n",
            self.id,
            self.pid,
            self.start_time,
            self.state.code(),
            self.reason,
            esc(&self.monitor.to_string_lossy())
        );
        for t in &self.taps {
            s.push_str(&format!("  <tap name='{}'/>\n", esc(t)));
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
        let num = |n: &str| root.attr(n).and_then(|v| v.parse::<i64>().ok());
        let domain: &Element = root.child("domain").ok_or_else(|| bad("no <domain>"))?;
        let mut w = xml::CanonicalWriter::new();
        w.element(domain, 0);
        Ok(Status {
            id: num("id").ok_or_else(|| bad("no id"))? as u32,
            pid: num("pid").ok_or_else(|| bad("no pid"))? as i32,
            start_time: num("starttime").unwrap_or(0) as u64,
            state: DomainState::from_code(num("state").unwrap_or(1) as i32),
            reason: num("reason").unwrap_or(0) as i32,
            monitor: root
                .child("monitor")
                .and_then(|m| m.attr("path"))
                .map(|p| PathBuf::from(p.as_ref()))
                .ok_or_else(|| bad("no monitor path"))?,
            taps: root
                .children_named("tap")
                .filter_map(|t| t.attr("name").map(|n| n.into_owned()))
                .collect(),
            live_xml: w.finish(),
        })
    }

    /// The live definition.
    pub fn live_def(&self) -> Result<DomainDef> {
        DomainDef::parse(&self.live_xml)
    }

    /// Writes the status file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        files::write_atomic(path, self.to_xml().as_bytes())
            .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))
    }
}
