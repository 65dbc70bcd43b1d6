//! Test harness: every test body runs in a network namespace created for it
//! alone, on a dedicated thread (unshare(CLONE_NEWNET) affects only the calling
//! thread) with a current-thread tokio runtime. When the thread ends, the
//! runtime, the handle's sockets and the worker thread go, and the kernel
//! destroys the namespace with everything in it, so a failing test leaves
//! nothing behind and never touches the namespace the test binary started in.
//!
//! Without the privileges (no root/CAP_SYS_ADMIN for unshare, no
//! /dev/net/tun), tests print `SKIPPED: <reason>` and return; set
//! `VIRTKIT_NETDEV_REQUIRE_PRIVILEGED=1` (CI) to make that a failure instead.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread::JoinHandle;

use virtkit_netdev::{MacAddr, Netdev, current_thread_netns};

pub fn mac(s: &str) -> MacAddr {
    s.parse().expect("test MAC")
}

fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare(2) takes only flags; it changes this thread's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn skip(test: &str, reason: &str) {
    if std::env::var_os("VIRTKIT_NETDEV_REQUIRE_PRIVILEGED").is_some_and(|v| v == "1") {
        panic!("{test}: cannot run and VIRTKIT_NETDEV_REQUIRE_PRIVILEGED=1: {reason}");
    }
    // Straight to the stderr handle: libtest captures eprintln! of passing
    // tests, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// Runs `body` with a handle on a fresh, private network namespace.
pub fn in_netns<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Netdev) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        return skip(
            test,
            &format!("cannot open /dev/net/tun ({e}); modprobe tun, or run as root"),
        );
    }
    let res = std::thread::spawn(move || -> Result<(), String> {
        unshare_net().map_err(|e| {
            format!("cannot create a network namespace ({e}); run as root or under `unshare --user --map-root-user --net`")
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        rt.block_on(async move {
            let nd = Netdev::new().expect("netdev handle");
            body(nd).await;
        });
        Ok(())
    })
    .join();
    match res {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => skip(test, &reason),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Another private network namespace, held by a parked thread (whose thread
/// id can be used as an IFLA_NET_NS_PID target) and an nsfs fd.
pub struct OtherNetns {
    pub fd: OwnedFd,
    pub tid: u32,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OtherNetns {
    pub fn new() -> OtherNetns {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let r = unshare_net().and_then(|()| {
                // SAFETY: gettid(2) has no arguments and cannot fail.
                let tid = unsafe { libc::gettid() } as u32;
                Ok((current_thread_netns()?, tid))
            });
            let _ = ready_tx.send(r);
            let _ = stop_rx.recv();
        });
        let (fd, tid) = ready_rx.recv().unwrap().expect("second network namespace");
        OtherNetns {
            fd,
            tid,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for OtherNetns {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Drops CAP_NET_ADMIN from the calling thread's effective and permitted
/// sets (capabilities are per thread on Linux), as an unprivileged caller.
pub fn drop_cap_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget(2) with a v3 header writes two `Data` structs, which is
    // what `data` holds; both live across the call.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    assert_eq!(r, 0, "capget: {}", io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    data[0].permitted &= !(1 << CAP_NET_ADMIN);
    // SAFETY: capset(2) reads the same header and two `Data` structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", io::Error::last_os_error());
}

/// Names of every device in the handle's namespace, sorted.
pub async fn link_names(nd: &Netdev) -> Vec<String> {
    let mut v: Vec<String> = nd
        .links()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    v.sort();
    v
}
