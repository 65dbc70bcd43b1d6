//! The handle's worker thread: runs the blocking ioctls (tap creation, the
//! ioctl bridge path) and closes tap fds, off the async runtime's threads.
//!
//! Why a dedicated thread rather than `spawn_blocking`: a tap is created in
//! the network namespace of the thread that opens `/dev/net/tun`, and the
//! blocking pool's threads may live in another namespace than the handle's
//! netlink socket (e.g. a handle opened with [`crate::Netdev::open_in_netns`]).
//! The worker is spawned by the thread that creates the handle, so it inherits
//! exactly that namespace. Closing the last fd of a tap unregisters the device,
//! which waits for the RTNL lock and an RCU grace period (about 20 ms): that too
//! belongs here rather than on a runtime thread.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use crate::ioctl::ControlSocket;

type Job = Box<dyn FnOnce(&ControlSocket) + Send>;

/// Sends jobs to the worker thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Worker {
    tx: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread in the calling thread's network namespace, with a
    /// control socket opened there too.
    pub(crate) fn spawn() -> io::Result<Worker> {
        let ctl = ControlSocket::new()?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("virtkit-netdev".into())
            .spawn(move || {
                for job in rx {
                    // A panicking job drops its reply sender, which the caller
                    // sees as an error; the worker carries on with the next job.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&ctl)));
                }
            })?;
        Ok(Worker { tx })
    }

    /// Runs `f` on the worker and waits (asynchronously) for its result.
    pub(crate) async fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ControlSocket) -> T + Send + 'static,
    {
        let (otx, orx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |ctl| {
                let _ = otx.send(f(ctl));
            }))
            .map_err(|_| io::Error::other("the netdev worker thread has stopped"))?;
        orx.await
            .map_err(|_| io::Error::other("a netdev worker job panicked"))
    }

    /// Runs `f` on the worker without waiting. If the worker is gone, `f` is
    /// dropped here (which, for a close job, closes its fds on this thread).
    pub(crate) fn run_detached<F>(&self, f: F)
    where
        F: FnOnce(&ControlSocket) + Send + 'static,
    {
        let _ = self.tx.send(Box::new(f));
    }
}
