//! `virtkitd`: serves every virtkit driver linked into this build over
//! libvirt's RPC protocol, so virsh, libvirt-python and virtkit's remote
//! driver can use it.
//!
//! ```text
//! virtkitd [--root DIR] [--config FILE] [--verbose]
//! ```
//!
//! Sockets: `DIR/virtkit-sock` (read-write, 0700) and `DIR/virtkit-sock-ro`
//! (read-only, every mutating call denied); `/run/virtkit/...` without
//! `--root`. With `--root DIR`, the system URIs (`qemu:///system`,
//! `lxc:///system`, `network:///system`) are served by embedded instances
//! sharing `DIR/system` (`DRIVER:///embed?root=DIR/system`), so such a
//! daemon never touches the host's `/etc`, `/run` or `/var`. TCP and TLS
//! listeners are off unless configured. SIGTERM or SIGINT stops accepting,
//! closes clients and exits; guests are not touched.

mod activation;
mod config;
mod pidfile;
mod polkit;
mod tls;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tracing::{error, info, warn};
use virtkit_remote::server::{AuthScheme, Authorizer, Peer, Server, ServerConfig};

use config::{Config, UnixAuth};

const USAGE: &str = "\
usage: virtkitd [--root DIR] [--config FILE] [--verbose]

  --root DIR      keep every file under DIR: sockets DIR/virtkit-sock and
                  DIR/virtkit-sock-ro, pidfile DIR/virtkitd.pid, configuration
                  DIR/virtkitd.conf (if present), TLS files in DIR/pki/;
                  system URIs (qemu:///system, lxc:///system, ...) are served
                  from DIR/system instead of the host's directories
  --config FILE   read settings from FILE (libvirtd.conf syntax)
  --verbose       debug logging (or set VIRTKITD_LOG to a tracing filter)
";

struct Args {
    root: Option<PathBuf>,
    config: Option<PathBuf>,
    verbose: bool,
}

fn parse_args() -> Result<Args, (String, u8)> {
    let mut a = Args {
        root: None,
        config: None,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| (format!("virtkitd: {name} needs a value\n{USAGE}"), 2u8))
        };
        match arg.as_str() {
            "--root" => a.root = Some(value("--root")?.into()),
            "--config" | "-f" => a.config = Some(value("--config")?.into()),
            "--verbose" | "-v" => a.verbose = true,
            "--help" | "-h" => return Err((USAGE.to_string(), 0)),
            "--version" => return Err((format!("virtkitd {}\n", env!("CARGO_PKG_VERSION")), 0)),
            other => return Err((format!("virtkitd: unknown option '{other}'\n{USAGE}"), 2)),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err((msg, code)) => {
            if code == 0 {
                print!("{msg}");
            } else {
                eprint!("{msg}");
            }
            return ExitCode::from(code);
        }
    };
    // Before any thread exists: activation clears its environment.
    let activated = activation::take();
    let root = match &args.root {
        Some(r) => match std::fs::create_dir_all(r).and_then(|_| std::fs::canonicalize(r)) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("virtkitd: cannot use root directory '{}': {e}", r.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut cfg = Config::defaults(root.as_deref());
    let conf_file = args.config.clone().or_else(|| {
        let p = match &root {
            Some(r) => r.join("virtkitd.conf"),
            None => PathBuf::from("/etc/virtkit/virtkitd.conf"),
        };
        p.exists().then_some(p)
    });
    if let Some(f) = &conf_file
        && let Err(e) = cfg.load(f)
    {
        eprintln!("virtkitd: {e}");
        return ExitCode::FAILURE;
    }
    let filter = std::env::var("VIRTKITD_LOG").unwrap_or_else(|_| {
        if args.verbose {
            "debug".into()
        } else {
            cfg.log_filter.clone()
        }
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();

    virtkit::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg, activated, root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The system URIs whose drivers start with the daemon (autostart runs,
/// guests are supervised before any client connects), as libvirtd starts its
/// drivers: only for the system daemon (root, no `--root`), since a
/// `--root` daemon must not touch the host's system directories.
fn startup_uris(private_root: bool) -> Vec<&'static str> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if private_root || !is_root {
        return Vec::new();
    }
    let d = virtkit::compiled_drivers();
    [
        ("network", "network:///system"),
        ("qemu", "qemu:///system"),
        ("lxc", "lxc:///system"),
    ]
    .into_iter()
    .filter(|(drv, _)| d.contains(drv))
    .map(|(_, uri)| uri)
    .collect()
}

/// Where a `--root` daemon keeps its system instances: `DIR/system`, which
/// may be a symbolic link (to state that outlives `DIR`); the resolved path
/// names the instances, so it is the same for every daemon using it.
fn system_root(root: &Path) -> PathBuf {
    let dir = root.join("system");
    std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::canonicalize(&dir))
        .unwrap_or(dir)
}

/// The URI used when a client sends none: the first local driver compiled in.
fn default_uri(cfg: &Config) -> Option<String> {
    cfg.default_uri.clone().or_else(|| {
        let d = virtkit::compiled_drivers();
        if d.contains(&"qemu") {
            Some("qemu:///system".into())
        } else if d.contains(&"test") {
            Some("test:///default".into())
        } else {
            None
        }
    })
}

fn bind_unix(path: &Path, perms: u32) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create socket directory '{}': {e}", dir.display()))?;
    }
    // Safe to remove: the pidfile lock proves no other daemon owns it.
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on '{}': {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms))
        .map_err(|e| format!("cannot set permissions of '{}': {e}", path.display()))?;
    Ok(l)
}

async fn run(
    cfg: Config,
    activated: Vec<activation::Activated>,
    private_root: Option<PathBuf>,
) -> Result<(), String> {
    let _pid = pidfile::PidFile::acquire(&cfg.pid_file).map_err(|e| e.to_string())?;
    let authorizer: Option<Arc<dyn Authorizer>> = match cfg.auth_unix_rw {
        UnixAuth::Polkit => Some(Arc::new(polkit::PolkitAuthorizer)),
        UnixAuth::None => None,
    };
    let server = Server::new(
        ServerConfig {
            max_clients: cfg.max_clients,
            max_requests: cfg.max_client_requests,
            max_message: cfg.max_message_size,
            keepalive: cfg.keepalive(),
            default_uri: default_uri(&cfg),
            system_root: private_root.as_deref().map(system_root),
            ..ServerConfig::default()
        },
        authorizer,
    );
    for uri in startup_uris(private_root.is_some()) {
        match virtkit::Uri::parse(uri) {
            Ok(u) => match virtkit::registry::open(&u, virtkit::OpenFlags::empty()).await {
                Ok(conn) => {
                    server.retain(uri, &conn);
                    info!(uri, "driver started");
                }
                Err(e) => warn!(uri, "driver not started: {e}"),
            },
            Err(e) => warn!(uri, "{e}"),
        }
    }

    let mut tasks = Vec::new();
    let mut sockets = Vec::new();
    if activated.is_empty() {
        let rw = bind_unix(&cfg.rw_socket(), cfg.rw_perms)?;
        let ro = bind_unix(&cfg.ro_socket(), cfg.ro_perms)?;
        sockets.push(cfg.rw_socket());
        sockets.push(cfg.ro_socket());
        info!(rw = %cfg.rw_socket().display(), ro = %cfg.ro_socket().display(), "listening on unix sockets");
        tasks.push(tokio::spawn(accept_unix(
            server.clone(),
            rw,
            false,
            cfg.auth_unix_rw,
        )));
        tasks.push(tokio::spawn(accept_unix(
            server.clone(),
            ro,
            true,
            cfg.auth_unix_rw,
        )));
        if cfg.listen_tcp {
            let addr = format!("{}:{}", cfg.listen_addr, cfg.tcp_port);
            let l = TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on TCP {addr}: {e}"))?;
            warn!(%addr, "listening on plain TCP: no authentication and no encryption");
            tasks.push(tokio::spawn(accept_tcp(server.clone(), l, None)));
        }
        if cfg.listen_tls {
            let acceptor = tls::acceptor(&cfg.cert_file, &cfg.key_file, &cfg.ca_file)
                .map_err(|e| e.to_string())?;
            let addr = format!("{}:{}", cfg.listen_addr, cfg.tls_port);
            let l = TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on TLS {addr}: {e}"))?;
            info!(%addr, "listening on TLS");
            tasks.push(tokio::spawn(accept_tcp(server.clone(), l, Some(acceptor))));
        }
    } else {
        info!(count = activated.len(), "using sockets from systemd");
        for a in activated {
            match a {
                activation::Activated::Unix {
                    listener,
                    read_only,
                } => {
                    listener
                        .set_nonblocking(true)
                        .map_err(|e| format!("activated socket: {e}"))?;
                    let l = UnixListener::from_std(listener)
                        .map_err(|e| format!("activated socket: {e}"))?;
                    tasks.push(tokio::spawn(accept_unix(
                        server.clone(),
                        l,
                        read_only,
                        cfg.auth_unix_rw,
                    )));
                }
                activation::Activated::Tcp { listener, tls } => {
                    listener
                        .set_nonblocking(true)
                        .map_err(|e| format!("activated socket: {e}"))?;
                    let l = TcpListener::from_std(listener)
                        .map_err(|e| format!("activated socket: {e}"))?;
                    let acceptor = if tls {
                        Some(
                            tls::acceptor(&cfg.cert_file, &cfg.key_file, &cfg.ca_file)
                                .map_err(|e| e.to_string())?,
                        )
                    } else {
                        None
                    };
                    tasks.push(tokio::spawn(accept_tcp(server.clone(), l, acceptor)));
                }
            }
        }
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
    // Stop accepting; drivers keep their guests running.
    for t in &tasks {
        t.abort();
    }
    for s in &sockets {
        let _ = std::fs::remove_file(s);
    }
    info!(
        clients = server.clients(),
        served = server.served(),
        "virtkitd stopped"
    );
    Ok(())
}

async fn accept_unix(server: Arc<Server>, l: UnixListener, read_only: bool, auth: UnixAuth) {
    loop {
        let (stream, _) = match l.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = server.admit() else {
            warn!("too many clients; refusing a connection");
            continue;
        };
        let cred = stream.peer_cred().ok();
        let uid = cred.as_ref().map(|c| c.uid());
        let pid = cred.as_ref().and_then(|c| c.pid()).map(|p| p as u32);
        let polkit = auth == UnixAuth::Polkit && !read_only && uid != Some(0);
        let peer = Peer {
            read_only,
            auth: if polkit {
                AuthScheme::Polkit
            } else {
                AuthScheme::None
            },
            secure: true,
            pid,
            uid,
            addr: format!(
                "unix{}:pid={}",
                if read_only { "-ro" } else { "" },
                pid.map_or("?".into(), |p| p.to_string())
            ),
        };
        let s = server.clone();
        tokio::spawn(async move { s.serve(stream, peer, permit).await });
    }
}

async fn accept_tcp(server: Arc<Server>, l: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let (stream, addr) = match l.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = server.admit() else {
            warn!(%addr, "too many clients; refusing a connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let s = server.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut peer = Peer::local(false);
            peer.addr = addr.to_string();
            match tls {
                None => {
                    peer.secure = false;
                    s.serve(stream, peer, permit).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(30),
                        acceptor.accept(stream),
                    )
                    .await;
                    match handshake {
                        Ok(Ok(mut tls_stream)) => {
                            // libvirt's server confirms a checked client
                            // certificate with one byte before any message.
                            use tokio::io::AsyncWriteExt;
                            if tls_stream.write_all(&[1]).await.is_err()
                                || tls_stream.flush().await.is_err()
                            {
                                return;
                            }
                            s.serve(tls_stream, peer, permit).await
                        }
                        Ok(Err(e)) => warn!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => warn!(%addr, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}
