//! Where a network driver instance keeps its files, per URI:
//!
//! | URI | definitions | live state | dnsmasq files |
//! |---|---|---|---|
//! | `network:///system` | `/etc/virtkit/network` | `/run/virtkit/network` | `/var/lib/virtkit/dnsmasq` |
//! | `network:///session` | `$XDG_CONFIG_HOME/virtkit/network` | `$XDG_RUNTIME_DIR/virtkit/network` | `$XDG_STATE_HOME/virtkit/dnsmasq` |
//! | `network:///embed?root=DIR` | `DIR/etc/network` | `DIR/run/network` | `DIR/lib/dnsmasq` |
//!
//! Autostart marks are symbolic links in `<definitions>/autostart/`, as
//! libvirt keeps them.

use std::path::{Path, PathBuf};

use virtkit_core::{Error, Uri};

/// The directories of one driver instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Persistent definitions (`<name>.xml`).
    pub config_dir: PathBuf,
    /// Autostart links.
    pub autostart_dir: PathBuf,
    /// Live state of running networks (`<name>.xml`, `<name>.status`).
    pub run_dir: PathBuf,
    /// dnsmasq's configuration, hosts, lease and PID files.
    pub dnsmasq_dir: PathBuf,
}

impl Layout {
    /// The layout below one root (`embed?root=DIR`).
    pub fn under(root: &Path) -> Layout {
        let config_dir = root.join("etc/network");
        Layout {
            autostart_dir: config_dir.join("autostart"),
            config_dir,
            run_dir: root.join("run/network"),
            dnsmasq_dir: root.join("lib/dnsmasq"),
        }
    }

    /// The layout a URI names; an error for an unknown path.
    pub fn for_uri(uri: &Uri) -> Result<Layout, Error> {
        match uri.path() {
            "/system" | "" | "/" => {
                let config_dir = PathBuf::from("/etc/virtkit/network");
                Ok(Layout {
                    autostart_dir: config_dir.join("autostart"),
                    config_dir,
                    run_dir: PathBuf::from("/run/virtkit/network"),
                    dnsmasq_dir: PathBuf::from("/var/lib/virtkit/dnsmasq"),
                })
            }
            "/session" => {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "/".into());
                let env = |v: &str, fallback: PathBuf| {
                    std::env::var_os(v)
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .unwrap_or(fallback)
                };
                let config = env("XDG_CONFIG_HOME", home.join(".config")).join("virtkit/network");
                // SAFETY: getuid has no preconditions and cannot fail.
                let uid = unsafe { libc::getuid() };
                let runtime = env("XDG_RUNTIME_DIR", PathBuf::from(format!("/run/user/{uid}")));
                let state = env("XDG_STATE_HOME", home.join(".local/state"));
                Ok(Layout {
                    autostart_dir: config.join("autostart"),
                    config_dir: config,
                    run_dir: runtime.join("virtkit/network"),
                    dnsmasq_dir: state.join("virtkit/dnsmasq"),
                })
            }
            "/embed" => match uri.param("root") {
                Some(r) if Path::new(r).is_absolute() => Ok(Layout::under(Path::new(r))),
                Some(r) => Err(Error::invalid_arg(format!(
                    "embedded network driver root '{r}' must be an absolute path"
                ))),
                None => Err(Error::invalid_arg(
                    "network:///embed needs a root directory: network:///embed?root=/some/dir",
                )),
            },
            other => Err(Error::invalid_arg(format!(
                "unexpected network URI path '{other}', try network:///system, network:///session or network:///embed?root=DIR"
            ))),
        }
    }
}
