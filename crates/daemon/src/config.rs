//! virtkitd's configuration: libvirtd.conf-style `key = value` lines
//! (strings in double quotes, numbers, `#` comments), read from
//! `--config FILE`, `ROOT/virtkitd.conf` or `/etc/virtkit/virtkitd.conf`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read configuration file '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path}:{line}: {msg}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what is expected.
        msg: String,
    },
}

/// Who must authenticate on the read-write unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixAuth {
    /// Socket permissions decide.
    None,
    /// Non-root clients ask polkit.
    Polkit,
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory for sockets (and, with `--root`, everything else).
    pub sock_dir: PathBuf,
    /// Pidfile (also the lock that keeps two daemons apart).
    pub pid_file: PathBuf,
    /// Permissions of the read-write socket.
    pub rw_perms: u32,
    /// Permissions of the read-only socket.
    pub ro_perms: u32,
    /// Authentication on the read-write socket.
    pub auth_unix_rw: UnixAuth,
    /// Listen on plain TCP.
    pub listen_tcp: bool,
    /// Listen on TLS.
    pub listen_tls: bool,
    /// Address for TCP and TLS.
    pub listen_addr: String,
    /// TCP port.
    pub tcp_port: u16,
    /// TLS port.
    pub tls_port: u16,
    /// TLS server certificate (PEM).
    pub cert_file: PathBuf,
    /// TLS server key (PEM).
    pub key_file: PathBuf,
    /// CA that client certificates must chain to (PEM).
    pub ca_file: PathBuf,
    /// Most clients.
    pub max_clients: usize,
    /// Most calls in flight per client.
    pub max_client_requests: usize,
    /// Largest message in bytes.
    pub max_message_size: usize,
    /// Keepalive interval (0 disables) and count.
    pub keepalive_interval: u64,
    /// Unanswered keepalives before a client is dropped.
    pub keepalive_count: u32,
    /// URI for clients that send none.
    pub default_uri: Option<String>,
    /// tracing filter (`info`, `virtkit_remote=debug`...).
    pub log_filter: String,
}

impl Config {
    /// Defaults for a daemon rooted at `root` (tests, unprivileged users)
    /// or the system locations.
    pub fn defaults(root: Option<&Path>) -> Config {
        let (sock_dir, pid_file) = match root {
            Some(r) => (r.to_path_buf(), r.join("virtkitd.pid")),
            None => (
                PathBuf::from("/run/virtkit"),
                PathBuf::from("/run/virtkit/virtkitd.pid"),
            ),
        };
        let pki = |p: &str| match root {
            Some(r) => r
                .join("pki")
                .join(Path::new(p).file_name().unwrap_or_default()),
            None => PathBuf::from(p),
        };
        Config {
            sock_dir,
            pid_file,
            rw_perms: 0o700,
            ro_perms: 0o777,
            auth_unix_rw: UnixAuth::None,
            listen_tcp: false,
            listen_tls: false,
            listen_addr: "127.0.0.1".into(),
            tcp_port: 16509,
            tls_port: 16514,
            cert_file: pki("/etc/pki/libvirt/servercert.pem"),
            key_file: pki("/etc/pki/libvirt/private/serverkey.pem"),
            ca_file: pki("/etc/pki/CA/cacert.pem"),
            max_clients: 5000,
            max_client_requests: 16,
            max_message_size: virtkit_remote::protocol::MESSAGE_MAX,
            keepalive_interval: 5,
            keepalive_count: 5,
            default_uri: None,
            log_filter: "info".into(),
        }
    }

    /// Read-write socket path.
    pub fn rw_socket(&self) -> PathBuf {
        self.sock_dir.join("virtkit-sock")
    }

    /// Read-only socket path.
    pub fn ro_socket(&self) -> PathBuf {
        self.sock_dir.join("virtkit-sock-ro")
    }

    /// Keepalive setting for the server.
    pub fn keepalive(&self) -> Option<(Duration, u32)> {
        (self.keepalive_interval > 0).then(|| {
            (
                Duration::from_secs(self.keepalive_interval),
                self.keepalive_count,
            )
        })
    }

    /// Applies a configuration file.
    pub fn load(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.apply(path, &text)
    }

    fn apply(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let err = |msg: String| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err("expected 'key = value'".into()))?;
            let key = key.trim();
            let value = value.trim();
            let string = || -> Result<String, ConfigError> {
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("{key} takes a string in double quotes")))
            };
            let number = || -> Result<u64, ConfigError> {
                value
                    .parse::<u64>()
                    .map_err(|_| err(format!("{key} takes a number, not '{value}'")))
            };
            let flag = || -> Result<bool, ConfigError> {
                match value {
                    "0" => Ok(false),
                    "1" => Ok(true),
                    _ => Err(err(format!("{key} takes 0 or 1, not '{value}'"))),
                }
            };
            let perms = || -> Result<u32, ConfigError> {
                let s = string()?;
                u32::from_str_radix(&s, 8)
                    .ok()
                    .filter(|p| *p <= 0o777)
                    .ok_or_else(|| err(format!("{key} takes octal permissions like \"0700\"")))
            };
            match key {
                "unix_sock_dir" => self.sock_dir = string()?.into(),
                "pid_file" => self.pid_file = string()?.into(),
                "unix_sock_rw_perms" => self.rw_perms = perms()?,
                "unix_sock_ro_perms" => self.ro_perms = perms()?,
                "auth_unix_rw" => {
                    self.auth_unix_rw = match string()?.as_str() {
                        "none" => UnixAuth::None,
                        "polkit" => UnixAuth::Polkit,
                        other => {
                            return Err(err(format!(
                                "auth_unix_rw \"{other}\" is not supported (use \"none\" or \"polkit\")"
                            )));
                        }
                    }
                }
                "listen_tcp" => self.listen_tcp = flag()?,
                "listen_tls" => self.listen_tls = flag()?,
                "listen_addr" => self.listen_addr = string()?,
                "tcp_port" => {
                    self.tcp_port = string()?
                        .parse()
                        .map_err(|_| err("tcp_port takes a port number in quotes".into()))?
                }
                "tls_port" => {
                    self.tls_port = string()?
                        .parse()
                        .map_err(|_| err("tls_port takes a port number in quotes".into()))?
                }
                "cert_file" => self.cert_file = string()?.into(),
                "key_file" => self.key_file = string()?.into(),
                "ca_file" => self.ca_file = string()?.into(),
                "max_clients" => self.max_clients = number()?.max(1) as usize,
                "max_client_requests" => self.max_client_requests = number()?.max(1) as usize,
                "max_message_size" => {
                    self.max_message_size = (number()? as usize).clamp(
                        virtkit_remote::protocol::HEADER_LEN,
                        virtkit_remote::protocol::MESSAGE_MAX,
                    )
                }
                "keepalive_interval" => self.keepalive_interval = number()?,
                "keepalive_count" => self.keepalive_count = number()? as u32,
                "default_uri" => self.default_uri = Some(string()?),
                "log_filter" => self.log_filter = string()?,
                other => return Err(err(format!("unknown setting '{other}'"))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libvirtd_style_settings_and_names_the_line_of_an_error() {
        let mut c = Config::defaults(Some(Path::new("/tmp/r")));
        c.apply(
            Path::new("x.conf"),
            "# comment\nlisten_tcp = 1\ntcp_port = \"16600\"\nunix_sock_rw_perms = \"0770\"\n\
             auth_unix_rw = \"polkit\"\nmax_clients = 7\ndefault_uri = \"test:///default\"\n",
        )
        .unwrap();
        assert!(c.listen_tcp);
        assert_eq!(c.tcp_port, 16600);
        assert_eq!(c.rw_perms, 0o770);
        assert_eq!(c.auth_unix_rw, UnixAuth::Polkit);
        assert_eq!(c.max_clients, 7);
        assert_eq!(c.rw_socket(), Path::new("/tmp/r/virtkit-sock"));
        let e = c
            .apply(Path::new("x.conf"), "\nlisten_tcp = yes\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:2: listen_tcp takes 0 or 1, not 'yes'"
        );
        let e = c.apply(Path::new("x.conf"), "bogus = 1").unwrap_err();
        assert!(e.to_string().contains("unknown setting 'bogus'"));
    }
}
