//! libvirt connection URIs: `driver[+transport]://[user@][host][:port]/path[?k=v&...]`.
//!
//! A [`Uri`] keeps the exact text it was parsed from (so it prints back
//! identically) next to the decoded parts that drivers use. Percent-escapes
//! are decoded in the user, host, path and query parameters; an invalid
//! escape or character is an error naming its column.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorDomain, ErrorKind, Result};

/// A parsed connection URI.
#[derive(Clone, PartialEq, Eq)]
pub struct Uri {
    raw: String,
    scheme: String,
    driver: String,
    transport: Option<String>,
    user: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    path: String,
    query: Option<String>,
    params: Vec<(String, String)>,
    fragment: Option<String>,
    opaque: bool,
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({:?})", self.raw)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Uri> {
        Uri::parse(s)
    }
}

fn uri_error(input: &str, byte: usize, what: impl fmt::Display) -> Error {
    let column = input[..byte.min(input.len())].chars().count() + 1;
    Error::new(
        ErrorKind::InvalidArg,
        format!("cannot parse URI '{input}': {what} at column {column}"),
    )
    .in_domain(ErrorDomain::Uri)
}

/// Decodes `%XX` escapes in `s`, which starts at byte `offset` of `input`.
fn percent_decode(input: &str, s: &str, offset: usize) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    return Err(uri_error(
                        input,
                        offset + i,
                        "invalid percent-escape (expected '%' and two hex digits)",
                    ));
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        uri_error(
            input,
            offset,
            "percent-escapes decode to bytes that are not UTF-8",
        )
    })
}

/// Characters allowed literally in a URI (RFC 3986 unreserved, reserved and `%`).
fn uri_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Characters that are escaped when a part is put into a URI.
fn encode_part(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || keep.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Uri {
    /// Parses a connection URI.
    pub fn parse(input: &str) -> Result<Uri> {
        if input.is_empty() {
            return Err(uri_error(input, 0, "empty URI"));
        }
        if let Some((i, c)) = input.char_indices().find(|&(_, c)| !uri_char_ok(c)) {
            let what = if c.is_whitespace() {
                "whitespace is not allowed (escape it as %20)".to_string()
            } else {
                format!("character {c:?} is not allowed (percent-escape it)")
            };
            return Err(uri_error(input, i, what));
        }
        let colon = input.find(':').ok_or_else(|| {
            uri_error(
                input,
                input.len(),
                "no scheme (expected e.g. 'qemu:///system' or 'test:///default')",
            )
        })?;
        let scheme = &input[..colon];
        if scheme.is_empty() {
            return Err(uri_error(input, 0, "empty scheme"));
        }
        for (i, c) in scheme.char_indices() {
            let ok = if i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric() || "+-.".contains(c)
            };
            if !ok {
                return Err(uri_error(
                    input,
                    i,
                    format!("character {c:?} is not allowed in a scheme"),
                ));
            }
        }
        let (driver, transport) = match scheme.split_once('+') {
            Some((d, t)) => {
                if d.is_empty() {
                    return Err(uri_error(input, 0, "empty driver name before '+'"));
                }
                if t.is_empty() || t.contains('+') {
                    return Err(uri_error(
                        input,
                        d.len() + 1,
                        "expected one transport after '+' (unix, ssh, tcp, tls, ext, libssh, libssh2)",
                    ));
                }
                (d.to_ascii_lowercase(), Some(t.to_ascii_lowercase()))
            }
            None => (scheme.to_ascii_lowercase(), None),
        };

        let rest_start = colon + 1;
        let mut rest = &input[rest_start..];
        let mut pos = rest_start;

        let mut fragment = None;
        if let Some(h) = rest.find('#') {
            fragment = Some(percent_decode(input, &rest[h + 1..], pos + h + 1)?);
            rest = &rest[..h];
        }
        let mut query = None;
        let mut params = Vec::new();
        if let Some(q) = rest.find('?') {
            let qs = &rest[q + 1..];
            let qpos = pos + q + 1;
            params = parse_params(input, qs, qpos)?;
            query = Some(qs.to_string());
            rest = &rest[..q];
        }

        let mut user = None;
        let mut host = None;
        let mut port = None;
        let opaque;
        if let Some(after) = rest.strip_prefix("//") {
            opaque = false;
            pos += 2;
            let auth_end = after.find('/').unwrap_or(after.len());
            let authority = &after[..auth_end];
            let mut hostport = authority;
            let mut hp_pos = pos;
            if let Some(at) = authority.rfind('@') {
                user = Some(percent_decode(input, &authority[..at], pos)?);
                hostport = &authority[at + 1..];
                hp_pos = pos + at + 1;
            }
            let (h, p) = split_host_port(input, hostport, hp_pos)?;
            if !h.is_empty() {
                host = Some(percent_decode(input, h, hp_pos)?);
            }
            if let Some((ptext, ppos)) = p {
                if ptext.is_empty() {
                    // "host:" with an empty port means the default port.
                } else {
                    let n: u32 = ptext
                        .parse()
                        .ok()
                        .filter(|n| *n <= u16::MAX as u32)
                        .ok_or_else(|| {
                            uri_error(
                                input,
                                ppos,
                                format!("port '{ptext}' is not a number between 0 and 65535"),
                            )
                        })?;
                    port = Some(n as u16);
                }
            }
            pos += auth_end;
            rest = &after[auth_end..];
        } else {
            opaque = !rest.starts_with('/');
        }
        let path = percent_decode(input, rest, pos)?;

        Ok(Uri {
            raw: input.to_string(),
            scheme: scheme.to_string(),
            driver,
            transport,
            user,
            host,
            port,
            path,
            query,
            params,
            fragment,
            opaque,
        })
    }

    /// Builds a URI from parts, escaping them as needed.
    pub fn from_parts(
        scheme: &str,
        host: Option<&str>,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Uri> {
        let mut s = format!("{scheme}://");
        if let Some(h) = host {
            if h.contains(':') {
                s.push('[');
                s.push_str(h);
                s.push(']');
            } else {
                s.push_str(&encode_part(h, ""));
            }
        }
        s.push_str(&encode_part(path, "/"));
        for (i, (k, v)) in params.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&encode_part(k, ""));
            s.push('=');
            s.push_str(&encode_part(v, "/"));
        }
        Uri::parse(&s)
    }

    /// The text the URI was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The full scheme, e.g. `qemu+ssh`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The driver part of the scheme, lower-cased, e.g. `qemu`.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The transport part of the scheme (`ssh`, `unix`, `tcp`, `tls`...).
    pub fn transport(&self) -> Option<&str> {
        self.transport.as_deref()
    }

    /// The decoded user name.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The decoded host name (IPv6 literals without their brackets).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port, when given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The decoded path, e.g. `/system`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string (without `?`).
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Decoded query parameters in the order given.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The decoded fragment.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// Whether the URI has no `//` authority part (`test:default`).
    pub fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// Whether this URI names a remote connection: a transport or a host.
    /// Such URIs are served by the remote driver.
    pub fn is_remote(&self) -> bool {
        self.transport.is_some() || self.host.is_some()
    }

    /// The URI a client sends to the server it connects to: without the
    /// transport, user, host, port and the client-only parameters (as libvirt
    /// does for `CONNECT_OPEN`).
    pub fn server_name(&self) -> String {
        const CLIENT_ONLY: &[&str] = &[
            "name",
            "command",
            "socket",
            "netcat",
            "keyfile",
            "no_verify",
            "no_tty",
            "pkipath",
            "known_hosts",
            "known_hosts_verify",
            "sshauth",
            "mode",
            "proxy",
            "tls_priority",
        ];
        if let Some((_, name)) = self.params.iter().find(|(k, _)| k == "name") {
            return name.clone();
        }
        let mut s = format!("{}://{}", self.driver, encode_part(&self.path, "/"));
        let kept: Vec<_> = self
            .params
            .iter()
            .filter(|(k, _)| !CLIENT_ONLY.contains(&k.as_str()))
            .collect();
        for (i, (k, v)) in kept.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&encode_part(k, ""));
            s.push('=');
            s.push_str(&encode_part(v, "/"));
        }
        s
    }
}

fn split_host_port<'a>(
    input: &str,
    hostport: &'a str,
    pos: usize,
) -> Result<(&'a str, Option<(&'a str, usize)>)> {
    if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| uri_error(input, pos, "'[' of an IPv6 address is not closed"))?;
        let host = &inner[..close];
        let after = &inner[close + 1..];
        if after.is_empty() {
            return Ok((host, None));
        }
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some((p, pos + close + 3)))),
            None => Err(uri_error(
                input,
                pos + close + 2,
                "expected ':' and a port after ']'",
            )),
        };
    }
    match hostport.rfind(':') {
        Some(c) => Ok((&hostport[..c], Some((&hostport[c + 1..], pos + c + 1)))),
        None => Ok((hostport, None)),
    }
}

fn parse_params(input: &str, qs: &str, pos: usize) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut off = 0;
    for part in qs.split(['&', ';']) {
        let p = pos + off;
        off += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let (k, v, vpos) = match part.split_once('=') {
            Some((k, v)) => (k, v, p + k.len() + 1),
            None => (part, "", p + part.len()),
        };
        if k.is_empty() {
            return Err(uri_error(input, p, "query parameter without a name"));
        }
        out.push((
            percent_decode(input, k, p)?,
            percent_decode(input, v, vpos)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_forms() {
        for s in [
            "qemu:///system",
            "qemu:///session",
            "test:///default",
            "lxc:///",
            "xen:///system",
            "bhyve:///system",
            "vbox:///session",
        ] {
            let u = Uri::parse(s).unwrap();
            assert_eq!(u.to_string(), s);
            assert!(!u.is_remote(), "{s}");
            assert!(u.host().is_none());
        }
        let u = Uri::parse("qemu:///embed?root=/var/tmp/vk").unwrap();
        assert_eq!(u.driver(), "qemu");
        assert_eq!(u.path(), "/embed");
        assert_eq!(u.param("root"), Some("/var/tmp/vk"));
        let u = Uri::parse("test:///abs/path.xml").unwrap();
        assert_eq!(u.path(), "/abs/path.xml");
    }

    #[test]
    fn remote_forms() {
        let u = Uri::parse("qemu+ssh://user@host:22/system?keyfile=/home/u/.ssh/id").unwrap();
        assert_eq!(u.driver(), "qemu");
        assert_eq!(u.transport(), Some("ssh"));
        assert_eq!(u.user(), Some("user"));
        assert_eq!(u.host(), Some("host"));
        assert_eq!(u.port(), Some(22));
        assert_eq!(u.path(), "/system");
        assert_eq!(u.param("keyfile"), Some("/home/u/.ssh/id"));
        assert_eq!(u.server_name(), "qemu:///system");
        assert!(u.is_remote());

        let u = Uri::parse("qemu+unix:///system?socket=/p").unwrap();
        assert_eq!(u.host(), None);
        assert_eq!(u.param("socket"), Some("/p"));
        assert!(u.is_remote());

        let u = Uri::parse("esx://host/?no_verify=1").unwrap();
        assert_eq!(u.host(), Some("host"));
        assert_eq!(u.path(), "/");
        assert_eq!(u.param("no_verify"), Some("1"));

        let u = Uri::parse("vpx://vc/dc/cluster/host").unwrap();
        assert_eq!(u.host(), Some("vc"));
        assert_eq!(u.path(), "/dc/cluster/host");

        let u = Uri::parse("qemu+tcp://[::1]:16509/system").unwrap();
        assert_eq!(u.host(), Some("::1"));
        assert_eq!(u.port(), Some(16509));
    }

    #[test]
    fn percent_decoding() {
        let u = Uri::parse("qemu+ssh://us%40er@h/system?keyfile=%2Ftmp%2Fa%20b").unwrap();
        assert_eq!(u.user(), Some("us@er"));
        assert_eq!(u.param("keyfile"), Some("/tmp/a b"));
        assert_eq!(
            u.to_string(),
            "qemu+ssh://us%40er@h/system?keyfile=%2Ftmp%2Fa%20b"
        );
    }

    #[test]
    fn errors_name_the_column() {
        let e = Uri::parse("qemu:///sys%zztem").unwrap_err();
        assert!(e.to_string().contains("column 12"), "{e}");
        let e = Uri::parse("qemu+ssh://h:99999/system").unwrap_err();
        assert!(e.to_string().contains("port '99999'"), "{e}");
        assert!(e.to_string().contains("column 14"), "{e}");
        let e = Uri::parse("qemu:///my system").unwrap_err();
        assert!(e.to_string().contains("whitespace"), "{e}");
        let e = Uri::parse("default").unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
        let e = Uri::parse("1emu:///system").unwrap_err();
        assert!(e.to_string().contains("column 1"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArg);
    }

    #[test]
    fn from_parts_escapes() {
        let u = Uri::from_parts("qemu", None, "/embed", &[("root", "/tmp/a b")]).unwrap();
        assert_eq!(u.to_string(), "qemu:///embed?root=/tmp/a%20b");
        assert_eq!(u.param("root"), Some("/tmp/a b"));
    }
}
