//! virtkitd under bad input and load: malformed frames never hurt other
//! clients, 200 clients x 100 calls are all answered, file descriptors and
//! memory return to their baseline, limits hold, the pidfile keeps a
//! second daemon out, SIGTERM leaves nothing behind.
//!
//! Not tested here: re-attaching to running guests after SIGKILL. The only
//! driver virtkitd serves so far is the in-memory test driver, whose state
//! is per process by design (as in libvirt); re-attach belongs to the
//! stateful drivers (QEMU) once they are served.

mod common;

// Links the remote driver (registered at link time) into this test.
use virtkit_remote as _;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use virtkit::{Connect, ListFlags};
use virtkit_remote::protocol::header::{Header, encode_message};
use virtkit_remote::protocol::{REMOTE_PROGRAM, procs};
use virtkit_remote::xdr::Void;

/// Sends raw bytes; returns whether a reply came (Some(bytes)) or the
/// daemon closed the connection (None).
fn poke(sock: &std::path::Path, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {
            let mut rest = vec![0u8; u32::from_be_bytes(len) as usize - 4];
            s.read_exact(&mut rest).ok()?;
            Some(rest)
        }
        Err(e) => {
            assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "neither reply nor close"
            );
            None
        }
    }
}

fn call_bytes(prog: u32, vers: u32, proc_: i32, body: &[u8]) -> Vec<u8> {
    let mut m = encode_message(
        &Header {
            vers,
            ..Header::call(prog, proc_, 7)
        },
        &Void,
    )
    .unwrap();
    m.extend_from_slice(body);
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_be_bytes());
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_an_error_or_a_close_while_others_keep_working() {
    let d = Daemon::start("");
    let healthy = Connect::open(&d.uri()).await.unwrap();
    let sock = d.sock();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "length below the header",
            12u32.to_be_bytes().repeat(8),
            false,
        ),
        (
            "length above the maximum",
            [0x7f, 0xff, 0xff, 0xff].repeat(8),
            false,
        ),
        ("wrong program", call_bytes(0x1111_2222, 1, 1, &[]), true),
        ("wrong version", call_bytes(REMOTE_PROGRAM, 9, 1, &[]), true),
        (
            "unknown procedure",
            call_bytes(REMOTE_PROGRAM, 1, 99_999, &[]),
            true,
        ),
        (
            "truncated body",
            call_bytes(REMOTE_PROGRAM, 1, procs::CONNECT_OPEN, &[0, 0, 0, 1]),
            true,
        ),
        (
            "garbage XDR",
            call_bytes(REMOTE_PROGRAM, 1, procs::CONNECT_OPEN, &[0xde; 40]),
            true,
        ),
        (
            "message cut short",
            {
                let mut m = call_bytes(REMOTE_PROGRAM, 1, 1, &[0; 64]);
                m.truncate(40);
                m
            },
            false,
        ),
        (
            "bad message type",
            {
                let mut m = call_bytes(REMOTE_PROGRAM, 1, 1, &[]);
                m[16..20].copy_from_slice(&99u32.to_be_bytes());
                m
            },
            true,
        ),
    ];
    for (what, bytes, expect_reply) in cases {
        let sock = sock.clone();
        let reply = tokio::task::spawn_blocking(move || {
            // A cut-short message only ends when we stop sending.
            let mut s = UnixStream::connect(&sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut len = [0u8; 4];
            s.read_exact(&mut len).ok().map(|_| ())
        })
        .await
        .unwrap();
        assert_eq!(reply.is_some(), expect_reply, "{what}");
        // Other clients are unaffected.
        let n = healthy
            .list_domains(ListFlags::empty())
            .await
            .unwrap()
            .len();
        assert!(n >= 1, "{what}");
    }
    assert!(poke(&sock, &call_bytes(REMOTE_PROGRAM, 1, procs::AUTH_LIST, &[])).is_some());
}

async fn load(uri: &str, clients: usize, calls: usize) -> usize {
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let uri = uri.to_string();
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            let c = Connect::open(&uri).await.expect("connect");
            for _ in 0..calls {
                let l = c
                    .list_domains(ListFlags::empty())
                    .await
                    .expect("call answered");
                assert!(!l.is_empty());
                answered.fetch_add(1, Ordering::Relaxed);
            }
            c.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    answered.load(Ordering::Relaxed)
}

async fn settle(pid: u32, fds: usize) -> usize {
    for _ in 0..100 {
        if fd_count(pid) <= fds {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fd_count(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_times_a_hundred_calls_and_resources_return_to_baseline() {
    let d = Daemon::start("");
    let pid = d.pid();
    let fd0 = fd_count(pid);
    // Warm-up: thread pools, allocator arenas and caches reach their size.
    assert_eq!(load(&d.uri(), 200, 10).await, 2000);
    let fd1 = settle(pid, fd0).await;
    let rss1 = rss_kib(pid);
    assert_eq!(load(&d.uri(), 200, 100).await, 20_000);
    let fd2 = settle(pid, fd0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss2 = rss_kib(pid);
    println!(
        "daemon fds: idle {fd0}, after warm-up {fd1}, after 200x100 {fd2}; RSS KiB after warm-up {rss1}, after 200x100 {rss2}"
    );
    assert_eq!(fd1, fd0, "fds after warm-up");
    assert_eq!(fd2, fd0, "fds after the load");
    assert!(rss2 <= rss1 + 4096, "RSS grew from {rss1} to {rss2} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_refuses_extra_connections_and_frees_slots() {
    let d = Daemon::start("max_clients = 2\n");
    let a = Connect::open(&d.uri()).await.unwrap();
    let b = Connect::open(&d.uri()).await.unwrap();
    assert!(
        Connect::open(&d.uri()).await.is_err(),
        "third client refused"
    );
    a.close().await.unwrap();
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(c) = Connect::open(&d.uri()).await {
            c.close().await.unwrap();
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a slot came free");
    b.close().await.unwrap();
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let d = Daemon::start("");
    let out = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_virtkitd"))
            .arg("--root")
            .arg(d.root.path()),
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "another virtkitd (pid {}) is already using",
            d.pid()
        )),
        "{err}"
    );
    // The first daemon still serves.
    assert!(d.sock().exists());
    assert!(
        poke(
            &d.sock(),
            &call_bytes(REMOTE_PROGRAM, 1, procs::AUTH_LIST, &[])
        )
        .is_some()
    );
}

#[test]
fn sigterm_exits_cleanly_and_removes_sockets_and_pidfile() {
    let mut d = Daemon::start("");
    let _conn = UnixStream::connect(d.sock()).unwrap();
    assert!(d.terminate(), "clean exit; log:\n{}", d.log());
    assert!(!d.sock().exists());
    assert!(!d.sock_ro().exists());
    assert!(!d.root.path().join("virtkitd.pid").exists());
    assert!(d.log().contains("SIGTERM: shutting down"));
}

#[test]
fn config_errors_name_the_file_and_line() {
    let root = TempDir::new("badconf");
    std::fs::write(
        root.path().join("virtkitd.conf"),
        "listen_tcp = 1\nmax_clients = lots\n",
    )
    .unwrap();
    let out = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_virtkitd"))
            .arg("--root")
            .arg(root.path()),
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("virtkitd.conf:2: max_clients takes a number, not 'lots'"),
        "{err}"
    );
}

/// After SIGKILL a client's calls fail cleanly, and a new daemon starts on
/// the same root (the stale pidfile and sockets do not stop it). The test
/// driver's state is per process, so nothing of it survives, by design.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_clients_fail_cleanly_and_the_daemon_restarts_on_the_same_root() {
    let mut d = Daemon::start("");
    let c = Connect::open(&d.uri()).await.unwrap();
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let e = c.list_domains(ListFlags::empty()).await.unwrap_err();
    assert_eq!(e.kind(), virtkit::ErrorKind::InvalidConn, "{e}");
    assert!(d.sock().exists(), "a stale socket is left behind");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_virtkitd"))
        .arg("--root")
        .arg(d.root.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    d.child = child;
    let mut reconnected = None;
    for _ in 0..100 {
        if let Ok(c) = Connect::open(&d.uri()).await {
            reconnected = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = reconnected.expect("the restarted daemon serves");
    assert_eq!(c.list_domains(ListFlags::empty()).await.unwrap().len(), 1);
}
