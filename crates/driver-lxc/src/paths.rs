//! Where the LXC driver keeps its files, per URI.
//!
//! | URI | definitions | live state | supervisor logs |
//! |---|---|---|---|
//! | `lxc:///`, `lxc:///system` | `/etc/virtkit/lxc` | `/run/virtkit/lxc` | `/var/log/virtkit/lxc` |
//! | `lxc:///embed?root=DIR` | `DIR/etc/lxc` | `DIR/run/lxc` | `DIR/log/lxc` |
//!
//! Containers use the networks of the network driver instance of the same
//! kind (`network:///system`, `network:///embed?root=DIR`). Containers need
//! root, so there is no session instance (libvirt has none either).

use std::path::{Path, PathBuf};

use virtkit_core::{Error, Result, Uri};

/// The directories of one driver instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Persistent definitions (`NAME.xml`) and `autostart/`.
    pub config: PathBuf,
    /// Live state: one directory per running container.
    pub run: PathBuf,
    /// The supervisors' output, one file per container.
    pub log: PathBuf,
    /// The URI this layout serves, as reported by `virConnectGetURI`.
    pub uri: String,
    /// Whether this is the system instance.
    pub privileged: bool,
    /// The cgroup scope suffix: `NAME.SUFFIX` (`virtkit-lxc` for the system
    /// instance; embedded instances add a hash of their root, so two roots
    /// can run containers of the same name).
    pub scope_suffix: String,
    /// The network driver instance whose networks containers use.
    pub network: virtkit_network::Layout,
}

/// A short, stable hash of a path (FNV-1a), for names.
fn short_hash(p: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

impl Layout {
    /// The layout an `lxc://` URI names.
    pub fn for_uri(uri: &Uri) -> Result<Layout> {
        match uri.path() {
            "" | "/" | "/system" => Ok(Layout {
                config: "/etc/virtkit/lxc".into(),
                run: "/run/virtkit/lxc".into(),
                log: "/var/log/virtkit/lxc".into(),
                uri: "lxc:///system".into(),
                privileged: true,
                scope_suffix: "virtkit-lxc".into(),
                network: virtkit_network::Layout::for_uri(&Uri::parse("network:///system")?)?,
            }),
            "/embed" => {
                let root = uri.param("root").ok_or_else(|| {
                    Error::invalid_arg(
                        "lxc:///embed needs a root directory: lxc:///embed?root=/path/to/dir",
                    )
                })?;
                let root = Path::new(root);
                if !root.is_absolute()
                    || root.components().any(|c| c.as_os_str() == "..")
                    || root.as_os_str().as_encoded_bytes().contains(&0)
                {
                    return Err(Error::invalid_arg(format!(
                        "embed root '{}' must be an absolute path without '..'",
                        root.display()
                    )));
                }
                Ok(Layout {
                    config: root.join("etc/lxc"),
                    run: root.join("run/lxc"),
                    log: root.join("log/lxc"),
                    uri: uri.to_string(),
                    privileged: false,
                    scope_suffix: format!("{}.virtkit-lxc", short_hash(root)),
                    network: virtkit_network::Layout::under(root),
                })
            }
            "/session" => Err(Error::invalid_arg(
                "lxc:///session does not exist: containers need root; use lxc:///system \
                 (as root) or lxc:///embed?root=DIR",
            )),
            other => Err(Error::invalid_arg(format!(
                "unexpected LXC URI path '{other}' (use lxc:///system or lxc:///embed?root=DIR)"
            ))),
        }
    }

    /// Creates the directories.
    pub fn create(&self) -> Result<()> {
        for d in [&self.config, &self.run, &self.log, &self.autostart_dir()] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::system(format_args!("cannot create {}", d.display()), &e))?;
        }
        Ok(())
    }

    /// The persistent definition of `name`.
    pub fn definition(&self, name: &str) -> PathBuf {
        self.config.join(format!("{name}.xml"))
    }

    /// Where autostart marks live (one empty file per domain).
    pub fn autostart_dir(&self) -> PathBuf {
        self.config.join("autostart")
    }

    /// The run directory of a running container.
    pub fn domain_run_dir(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// The supervisor's output for `name`.
    pub fn domain_log(&self, name: &str) -> PathBuf {
        self.log.join(format!("{name}.log"))
    }

    /// The cgroup scope of a container.
    pub fn scope(&self, name: &str) -> String {
        // libvirt escapes names that could clash with cgroup control files.
        let esc = if name.starts_with(['_', '.']) || name.starts_with("cgroup.") {
            format!("_{name}")
        } else {
            name.to_string()
        };
        format!("{esc}.{}", self.scope_suffix)
    }

    /// The lock that keeps two processes from driving one instance.
    pub fn lock_file(&self) -> PathBuf {
        self.run.join("driver.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let l = Layout::for_uri(&Uri::parse("lxc:///").unwrap()).unwrap();
        assert_eq!(l.uri, "lxc:///system");
        assert_eq!(l.scope("web"), "web.virtkit-lxc");
        assert_eq!(l.scope("cgroup.procs"), "_cgroup.procs.virtkit-lxc");
        let e = Layout::for_uri(&Uri::parse("lxc:///embed?root=/tmp/vk").unwrap()).unwrap();
        assert_eq!(e.definition("a"), Path::new("/tmp/vk/etc/lxc/a.xml"));
        assert!(e.scope("a").ends_with(".virtkit-lxc") && e.scope("a").len() > 16);
        for bad in [
            "lxc:///embed",
            "lxc:///embed?root=rel",
            "lxc:///embed?root=/a/../b",
            "lxc:///session",
            "lxc:///other",
        ] {
            assert!(Layout::for_uri(&Uri::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
