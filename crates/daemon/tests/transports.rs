//! Transports: TCP, TLS with client certificates (virtkit's client and
//! virsh), the ssh transport through a stand-in `ssh`/`nc`, `ext`, and
//! systemd socket activation.

mod common;

// Links the remote driver (registered at link time) into this test.
use virtkit_remote as _;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use virtkit::{Connect, ListFlags};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn names(uri: &str) -> Vec<String> {
    let c = Connect::open(uri)
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    let n = c
        .list_domains(ListFlags::empty())
        .await
        .unwrap()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    c.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_when_configured() {
    let port = free_port();
    let d = Daemon::start(&format!("listen_tcp = 1\ntcp_port = \"{port}\"\n"));
    let uri = format!("test+tcp://127.0.0.1:{port}/default");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names(&uri).await, ["test"]);
    if have("virsh") {
        let out = run(
            Command::new("virsh").args(["-c", &uri, "list", "--all"]),
            Duration::from_secs(20),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(" 1    test   running"),
            "{out:?}"
        );
    }
    drop(d);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client
/// certificate, in libvirt's file names.
fn make_pki(dir: &Path, ca_name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "cacert.pem",
        "-days",
        "2",
        "-subj",
    ]);
    let subj = format!("/CN={ca_name}");
    a.push(&subj);
    a.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &a);
    for (who, eku, san) in [
        (
            "server",
            "serverAuth",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ),
        ("client", "clientAuth", "subjectAltName=DNS:client"),
    ] {
        let key = format!("{who}key.pem");
        let csr = format!("{who}.csr");
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
        openssl(dir, &a);
        let ext = format!("{who}.ext");
        std::fs::write(
            dir.join(&ext),
            format!("basicConstraints=CA:FALSE\nextendedKeyUsage={eku}\n{san}\n"),
        )
        .unwrap();
        let cert = format!("{who}cert.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "cacert.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_checked_against_the_ca() {
    if !have("openssl") {
        return skip("openssl not installed");
    }
    let pki = TempDir::new("pki");
    make_pki(pki.path(), "virtkit test CA");
    let port = free_port();
    let p = pki.path().display();
    let d = Daemon::start(&format!(
        "listen_tls = 1\ntls_port = \"{port}\"\ncert_file = \"{p}/servercert.pem\"\n\
         key_file = \"{p}/serverkey.pem\"\nca_file = \"{p}/cacert.pem\"\n"
    ));
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uri = format!("test+tls://localhost:{port}/default?pkipath={p}");
    assert_eq!(names(&uri).await, ["test"]);
    if have("virsh") {
        // libvirt's own client (GnuTLS) with the same files.
        let out = run(
            Command::new("virsh").args(["-c", &uri, "list", "--all"]),
            Duration::from_secs(20),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(" 1    test   running"),
            "virsh over TLS: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without a client certificate: refused.
    let nocert = TempDir::new("nocert");
    std::fs::copy(
        pki.path().join("cacert.pem"),
        nocert.path().join("cacert.pem"),
    )
    .unwrap();
    let uri = format!(
        "test+tls://localhost:{port}/default?pkipath={}",
        nocert.path().display()
    );
    let e = Connect::open(&uri).await.unwrap_err();
    assert!(
        e.to_string().contains("TLS"),
        "without a client certificate: {e}"
    );
    // A client certificate from another CA: refused.
    let other = TempDir::new("otherca");
    make_pki(other.path(), "someone else's CA");
    std::fs::copy(
        pki.path().join("cacert.pem"),
        other.path().join("cacert.pem"),
    )
    .unwrap();
    let uri = format!(
        "test+tls://localhost:{port}/default?pkipath={}",
        other.path().display()
    );
    assert!(Connect::open(&uri).await.is_err());
    // A client that does not trust the server's CA: refused.
    let stranger = TempDir::new("stranger");
    make_pki(stranger.path(), "unrelated CA");
    let uri = format!(
        "test+tls://localhost:{port}/default?pkipath={}",
        stranger.path().display()
    );
    let e = Connect::open(&uri).await.unwrap_err();
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    drop(d);
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in `nc -U SOCKET` in python: bridges stdin/stdout to a socket.
const FAKE_NC: &str = r#"#!/usr/bin/python3
import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[sys.argv.index("-U") + 1])
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(65536)
    if not b:
        break
    os.write(1, b)
"#;

#[test]
fn ssh_and_ext_transports_run_their_commands() {
    if !Path::new("/usr/bin/python3").exists() {
        return skip("/usr/bin/python3 not installed");
    }
    let d = Daemon::start("");
    let bin = TempDir::new("fakebin");
    // `ssh ... HOST -- CMD`: run CMD here, recording the arguments.
    write_script(
        &bin.path().join("ssh"),
        &format!(
            "#!/bin/sh\necho \"$@\" > {}/ssh-args\nfor last; do :; done\nexec sh -c \"$last\"\n",
            bin.path().display()
        ),
    );
    write_script(&bin.path().join("nc"), FAKE_NC);
    let virtkit = virtkit_bin();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let uri = format!(
        "test+ssh://alice@somehost:2222/default?socket={}",
        d.sock().display()
    );
    let out = run(
        Command::new(&virtkit)
            .env("PATH", &path)
            .args(["-c", &uri, "list --all"]),
        Duration::from_secs(20),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 1    test   running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(bin.path().join("ssh-args")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "-p 2222 -l alice -T -e none somehost -- nc -U '{}'",
            d.sock().display()
        )
    );

    let ext = bin.path().join("bridge");
    write_script(
        &ext,
        &format!(
            "#!/bin/sh\nexec {}/nc -U {}\n",
            bin.path().display(),
            d.sock().display()
        ),
    );
    let uri = format!("test+ext:///default?command={}", ext.display());
    let out = run(
        Command::new(&virtkit).args(["-c", &uri, "dominfo test"]),
        Duration::from_secs(20),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Name:           test"),
        "{out:?}"
    );
}

#[test]
fn systemd_socket_activation_serves_the_passed_sockets() {
    if !have("virsh") {
        return skip("virsh not installed (scripts/install-test-deps base)");
    }
    let dir = TempDir::new("activation");
    let root = TempDir::new("actroot");
    let rw_path = dir.path().join("rw.sock");
    let ro_path = dir.path().join("ro.sock");
    let rw = std::os::unix::net::UnixListener::bind(&rw_path).unwrap();
    let ro = std::os::unix::net::UnixListener::bind(&ro_path).unwrap();
    // Move them above the range the child will use (3, 4).
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on descriptors we own.
    let (a, b) = unsafe {
        (
            libc::fcntl(rw.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100),
            libc::fcntl(ro.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100),
        )
    };
    assert!(a >= 100 && b >= 100);
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=virtkit-sock:virtkit-sock-ro exec \"$0\" --root \"$1\"",
        env!("CARGO_BIN_EXE_virtkitd"),
    ])
    .arg(root.path())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // SAFETY: dup2 is async-signal-safe; the descriptors are valid in the
    // child, which owns its copies.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // SAFETY: closing our duplicates; the child has its own.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
    wait_for(&root.path().join("virtkitd.pid"), "the pidfile");
    let uri = |p: &Path| format!("test+unix:///default?socket={}", p.display());
    let out = run(
        Command::new("virsh").args(["-c", &uri(&rw_path), "list --all"]),
        Duration::from_secs(20),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 1    test   running"),
        "{out:?}"
    );
    let out = run(
        Command::new("virsh").args(["-c", &uri(&ro_path), "destroy test"]),
        Duration::from_secs(20),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read only access prevents virDomainDestroy"),
        "{out:?}"
    );
    assert!(
        !root.path().join("virtkit-sock").exists(),
        "no sockets of its own"
    );
    let _ = child.kill();
    let _ = child.wait();
}
