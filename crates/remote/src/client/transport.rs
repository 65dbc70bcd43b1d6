//! Getting a byte stream to the server for a URI: a unix socket (libvirt's
//! socket names per `mode`), TCP, TLS (rustls with ring; client
//! certificate and CA from libvirt's PKI paths), or a command's standard
//! input and output (`ssh host nc -U SOCKET`, `ext` with `command=`).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use virtkit_core::{Error, ErrorDomain, ErrorKind, Result, Uri};

/// A connected byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Port of plain TCP (`libvirtd --listen`, SASL in libvirt).
pub const TCP_PORT: u16 = 16509;
/// Port of TLS.
pub const TLS_PORT: u16 = 16514;

fn connect_error(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::SystemError, what.to_string()).in_domain(ErrorDomain::Rpc)
}

/// Which daemon socket names a local URI means (`mode=`).
fn socket_candidates(uri: &Uri, read_only: bool) -> Result<Vec<PathBuf>> {
    let suffix = if read_only { "-sock-ro" } else { "-sock" };
    let driver = uri.driver();
    let session = uri.path() == "/session";
    let base = if session {
        let run = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NoConnect,
                    "XDG_RUNTIME_DIR is not set: cannot find the session daemon's socket \
                     (give it with ?socket=PATH)",
                )
            })?;
        run.join("libvirt")
    } else {
        PathBuf::from("/run/libvirt")
    };
    let direct = base.join(format!("virt{driver}d{suffix}"));
    let legacy = base.join(format!("libvirt{suffix}"));
    let ours = PathBuf::from(format!("/run/virtkit/virtkit{suffix}"));
    Ok(match uri.param("mode") {
        Some("direct") => vec![direct],
        Some("legacy") => vec![legacy],
        None | Some("auto") => vec![ours, direct, legacy],
        Some(other) => {
            return Err(Error::invalid_arg(format!(
                "unknown remote mode '{other}' in '{uri}' (expected auto, direct or legacy)"
            )));
        }
    })
}

/// The unix socket path for a URI.
pub fn socket_path(uri: &Uri, read_only: bool) -> Result<PathBuf> {
    if let Some(s) = uri.param("socket") {
        return Ok(PathBuf::from(s));
    }
    let cands = socket_candidates(uri, read_only)?;
    Ok(cands
        .iter()
        .find(|p| p.exists())
        .or(cands.last())
        .cloned()
        .unwrap_or_default())
}

/// Connects the transport a URI names.
pub async fn connect(uri: &Uri, read_only: bool) -> Result<Box<dyn Stream>> {
    let transport = match (uri.transport(), uri.host()) {
        (Some(t), _) => t.to_string(),
        (None, Some(_)) => "tls".to_string(),
        (None, None) => "unix".to_string(),
    };
    match transport.as_str() {
        "unix" => {
            if uri.host().is_some() {
                return Err(Error::invalid_arg(format!(
                    "'{uri}': the unix transport takes no host name"
                )));
            }
            let path = socket_path(uri, read_only)?;
            let s = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
                connect_error(format!(
                    "Failed to connect socket to '{}': {}",
                    path.display(),
                    strerror(&e)
                ))
            })?;
            Ok(Box::new(s))
        }
        "tcp" => Ok(Box::new(tcp(uri, TCP_PORT).await?)),
        "tls" => tls(uri).await,
        "ssh" => command(ssh_argv(uri, read_only)?).await,
        "ext" => {
            let cmd = uri.param("command").ok_or_else(|| {
                Error::invalid_arg(format!("'{uri}': the ext transport needs ?command=PATH"))
            })?;
            command(vec![cmd.to_string()]).await
        }
        "libssh" | "libssh2" => Err(Error::new(
            ErrorKind::NoSupport,
            format!(
                "transport '{transport}' is not supported by virtkit; use '{}+ssh://' (the ssh program)",
                uri.driver()
            ),
        )),
        other => Err(Error::invalid_arg(format!(
            "unknown remote transport '{other}' in '{uri}' (expected unix, tcp, tls, ssh or ext)"
        ))),
    }
}

fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

async fn tcp(uri: &Uri, default_port: u16) -> Result<tokio::net::TcpStream> {
    let host = uri.host().unwrap_or("localhost");
    let port = uri.port().unwrap_or(default_port);
    let s = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| {
            connect_error(format!(
                "unable to connect to server at '{host}:{port}': {}",
                strerror(&e)
            ))
        })?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// libvirt's PKI file locations: `pkipath=DIR`, else the system paths.
fn pki_files(uri: &Uri) -> (PathBuf, PathBuf, PathBuf) {
    match uri.param("pkipath") {
        Some(dir) => {
            let d = Path::new(dir);
            (
                d.join("cacert.pem"),
                d.join("clientcert.pem"),
                d.join("clientkey.pem"),
            )
        }
        None => (
            PathBuf::from("/etc/pki/CA/cacert.pem"),
            PathBuf::from("/etc/pki/libvirt/clientcert.pem"),
            PathBuf::from("/etc/pki/libvirt/private/clientkey.pem"),
        ),
    }
}

async fn tls(uri: &Uri) -> Result<Box<dyn Stream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let (ca, cert, key) = pki_files(uri);
    let pem_err = |p: &Path, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::SystemError,
            format!("cannot read '{}': {e}", p.display()),
        )
        .in_domain(ErrorDomain::Rpc)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup failed: {e}")))?;
    let no_verify = uri.param("no_verify") == Some("1");
    let builder = if no_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(super::tls_noverify::NoVerify::new()))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca).map_err(|e| pem_err(&ca, &e))? {
            roots
                .add(c.map_err(|e| pem_err(&ca, &e))?)
                .map_err(|e| pem_err(&ca, &e))?;
        }
        builder.with_root_certificates(roots)
    };
    let config = if cert.exists() {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .map_err(|e| pem_err(&cert, &e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| pem_err(&cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| pem_err(&key, &e))?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::invalid_arg(format!("client certificate rejected: {e}")))?
    } else {
        builder.with_no_client_auth()
    };
    let host = uri.host().unwrap_or("localhost").to_string();
    let name = ServerName::try_from(host.clone())
        .map_err(|e| Error::invalid_arg(format!("'{host}' is not a valid TLS server name: {e}")))?;
    let tcp = tcp(uri, TLS_PORT).await?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::AuthFailed,
                format!("TLS handshake with '{host}' failed: {e}"),
            )
            .in_domain(ErrorDomain::Rpc)
        })?;
    // The server confirms it accepted our certificate with one byte.
    let mut confirm = [0u8; 1];
    use tokio::io::AsyncReadExt;
    match s.read_exact(&mut confirm).await {
        Ok(_) if confirm[0] == 1 => Ok(Box::new(s)),
        Ok(_) => Err(Error::new(
            ErrorKind::AuthFailed,
            format!("the server at '{host}' refused our TLS client certificate"),
        )
        .in_domain(ErrorDomain::Rpc)),
        Err(e) => Err(Error::new(
            ErrorKind::AuthFailed,
            format!(
                "the server at '{host}' closed the TLS session ({}): is our client certificate                  signed by the CA it trusts?",
                strerror(&e)
            ),
        )
        .in_domain(ErrorDomain::Rpc)),
    }
}

/// `ssh [-p PORT] [-l USER] [-i KEYFILE] [-T] [-o BatchMode=yes] HOST -- NETCAT -U SOCKET`.
fn ssh_argv(uri: &Uri, read_only: bool) -> Result<Vec<String>> {
    let host = uri
        .host()
        .ok_or_else(|| Error::invalid_arg(format!("'{uri}': the ssh transport needs a host")))?;
    let mut argv = vec![std::env::var("VIRTKIT_SSH").unwrap_or_else(|_| "ssh".into())];
    if let Some(p) = uri.port() {
        argv.extend(["-p".into(), p.to_string()]);
    }
    if let Some(u) = uri.user() {
        argv.extend(["-l".into(), u.to_string()]);
    }
    if let Some(k) = uri.param("keyfile") {
        argv.extend(["-i".into(), k.to_string()]);
    }
    argv.push("-T".into());
    if uri.param("no_tty") == Some("1") {
        argv.extend(["-o".into(), "BatchMode=yes".into()]);
    }
    argv.extend(["-e".into(), "none".into(), host.to_string(), "--".into()]);
    let netcat = uri.param("netcat").unwrap_or("nc");
    let socket = match uri.param("socket") {
        Some(s) => s.to_string(),
        None => {
            // The remote host's socket: libvirt's legacy name unless a
            // mode says otherwise.
            let cands = socket_candidates(uri, read_only)?;
            let pick = if uri.param("mode") == Some("direct") {
                0
            } else {
                cands.len() - 1
            };
            cands[pick].display().to_string()
        }
    };
    argv.push(format!("{netcat} -U {}", shell_quote(&socket)));
    Ok(argv)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A child process's standard input and output as one stream; the child
/// is killed when the stream is dropped.
struct ChildStream {
    _child: tokio::process::Child,
    io: tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
}

impl AsyncRead for ChildStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChildStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn command(argv: Vec<String>) -> Result<Box<dyn Stream>> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::invalid_arg("empty transport command"))?;
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| connect_error(format!("cannot run '{prog}': {}", strerror(&e))))?;
    let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(Error::internal(format!(
            "'{prog}' has no standard input or output"
        )));
    };
    Ok(Box::new(ChildStream {
        _child: child,
        io: tokio::io::join(out, inp),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_follow_libvirts_modes() {
        let u = Uri::parse("qemu+unix:///system?mode=direct").unwrap();
        assert_eq!(
            socket_path(&u, false).unwrap(),
            PathBuf::from("/run/libvirt/virtqemud-sock")
        );
        assert_eq!(
            socket_path(&u, true).unwrap(),
            PathBuf::from("/run/libvirt/virtqemud-sock-ro")
        );
        let u = Uri::parse("qemu+unix:///system?mode=legacy").unwrap();
        assert_eq!(
            socket_path(&u, false).unwrap(),
            PathBuf::from("/run/libvirt/libvirt-sock")
        );
        let u = Uri::parse("test+unix:///default?socket=/tmp/x").unwrap();
        assert_eq!(socket_path(&u, false).unwrap(), PathBuf::from("/tmp/x"));
        let u = Uri::parse("qemu+unix:///system?mode=bogus").unwrap();
        assert!(socket_path(&u, false).is_err());
    }

    #[test]
    fn ssh_command_line() {
        let u = Uri::parse("qemu+ssh://alice@host:2222/system?keyfile=/k&no_tty=1").unwrap();
        let argv = ssh_argv(&u, false).unwrap();
        assert_eq!(
            argv[1..],
            [
                "-p",
                "2222",
                "-l",
                "alice",
                "-i",
                "/k",
                "-T",
                "-o",
                "BatchMode=yes",
                "-e",
                "none",
                "host",
                "--",
                "nc -U '/run/libvirt/libvirt-sock'"
            ]
        );
    }
}
