//! Where the QEMU driver keeps its files, per URI.
//!
//! | URI | definitions | caches | live state | logs |
//! |---|---|---|---|---|
//! | `qemu:///system` | `/etc/virtkit/qemu` | `/var/lib/virtkit/qemu` | `/run/virtkit/qemu` | `/var/log/virtkit/qemu` |
//! | `qemu:///session` | `$XDG_CONFIG_HOME/virtkit/qemu` | `$XDG_DATA_HOME/virtkit/qemu` | `$XDG_RUNTIME_DIR/virtkit/qemu` | `$XDG_CACHE_HOME/virtkit/qemu/log` |
//! | `qemu:///embed?root=DIR` | `DIR/etc/qemu` | `DIR/lib/qemu` | `DIR/run/qemu` | `DIR/log/qemu` |
//!
//! Guests use the networks of the network driver instance of the same kind
//! (`network:///system`, `network:///session`, `network:///embed?root=DIR`).

use std::path::{Path, PathBuf};

use virtkit_core::{Error, Result, Uri};

/// The directories of one driver instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Persistent definitions (`NAME.xml`) and `autostart/`.
    pub config: PathBuf,
    /// Caches (capabilities) and other durable state.
    pub state: PathBuf,
    /// Live state: one directory per running domain.
    pub run: PathBuf,
    /// QEMU's own output, one file per domain.
    pub log: PathBuf,
    /// The URI this layout serves, as reported by `virConnectGetURI`.
    pub uri: String,
    /// Whether this is the privileged `system` instance.
    pub privileged: bool,
    /// The network driver instance whose networks guests of this instance
    /// use (the same URI kind and root).
    pub network: virtkit_network::Layout,
}

fn env_dir(var: &str, home_rel: &str) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(v));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        Error::invalid_arg(format!(
            "neither ${var} nor $HOME is set; cannot place session state"
        ))
    })?;
    Ok(PathBuf::from(home).join(home_rel))
}

fn net_layout(uri: &str) -> Result<virtkit_network::Layout> {
    virtkit_network::Layout::for_uri(&Uri::parse(uri)?)
}

impl Layout {
    /// The layout a `qemu://` URI names.
    pub fn for_uri(uri: &Uri) -> Result<Layout> {
        match uri.path() {
            "/system" => Ok(Layout {
                config: "/etc/virtkit/qemu".into(),
                state: "/var/lib/virtkit/qemu".into(),
                run: "/run/virtkit/qemu".into(),
                log: "/var/log/virtkit/qemu".into(),
                uri: "qemu:///system".into(),
                privileged: true,
                network: net_layout("network:///system")?,
            }),
            "/session" => {
                let runtime = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
                    Some(r) => PathBuf::from(r),
                    None => env_dir("XDG_CACHE_HOME", ".cache")?.join("virtkit-run"),
                };
                Ok(Layout {
                    config: env_dir("XDG_CONFIG_HOME", ".config")?.join("virtkit/qemu"),
                    state: env_dir("XDG_DATA_HOME", ".local/share")?.join("virtkit/qemu"),
                    run: runtime.join("virtkit/qemu"),
                    log: env_dir("XDG_CACHE_HOME", ".cache")?.join("virtkit/qemu/log"),
                    uri: "qemu:///session".into(),
                    privileged: false,
                    network: net_layout("network:///session")?,
                })
            }
            "/embed" => {
                let root = uri.param("root").ok_or_else(|| {
                    Error::invalid_arg(
                        "qemu:///embed needs a root directory: qemu:///embed?root=/path/to/dir",
                    )
                })?;
                let root = Path::new(root);
                if !root.is_absolute() || root.components().any(|c| c.as_os_str() == "..") {
                    return Err(Error::invalid_arg(format!(
                        "embed root '{}' must be an absolute path without '..'",
                        root.display()
                    )));
                }
                Ok(Layout {
                    config: root.join("etc/qemu"),
                    state: root.join("lib/qemu"),
                    run: root.join("run/qemu"),
                    log: root.join("log/qemu"),
                    uri: uri.to_string(),
                    privileged: false,
                    network: virtkit_network::Layout::under(root),
                })
            }
            other => Err(Error::invalid_arg(format!(
                "unexpected QEMU URI path '{other}' (use qemu:///system, qemu:///session or qemu:///embed?root=DIR)"
            ))),
        }
    }

    /// Creates the directories (mode 0700 for live state and definitions).
    pub fn create(&self) -> Result<()> {
        for d in [&self.config, &self.state, &self.run, &self.log] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::system(format_args!("cannot create {}", d.display()), &e))?;
        }
        std::fs::create_dir_all(self.autostart_dir()).map_err(|e| {
            Error::system(
                format_args!("cannot create {}", self.autostart_dir().display()),
                &e,
            )
        })?;
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

    /// The run directory of a running domain.
    pub fn domain_run_dir(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// QEMU's output for `name`.
    pub fn domain_log(&self, name: &str) -> PathBuf {
        self.log.join(format!("{name}.log"))
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
    fn embed_layout_is_under_its_root() {
        let u = Uri::parse("qemu:///embed?root=/tmp/vk").unwrap();
        let l = Layout::for_uri(&u).unwrap();
        assert_eq!(l.config, Path::new("/tmp/vk/etc/qemu"));
        assert_eq!(l.definition("a"), Path::new("/tmp/vk/etc/qemu/a.xml"));
        assert_eq!(l.uri, "qemu:///embed?root=/tmp/vk");
        for bad in [
            "qemu:///embed",
            "qemu:///embed?root=rel",
            "qemu:///embed?root=/a/../b",
        ] {
            assert!(Layout::for_uri(&Uri::parse(bad).unwrap()).is_err(), "{bad}");
        }
        assert!(Layout::for_uri(&Uri::parse("qemu:///other").unwrap()).is_err());
    }
}
