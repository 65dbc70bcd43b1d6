//! A thread that stays in the network namespace the driver was opened in.
//!
//! Processes (dnsmasq, nft, ip), `/proc/sys/net` writes and
//! `/proc/thread-self/net` reads all act on the network namespace of the
//! calling *thread*. The driver runs them on this thread, which is spawned
//! by the thread that opened the driver and so inherits its namespace, so a
//! connection opened inside a private namespace (as the tests do) never
//! touches the host's. Jobs run one at a time, in order.

use std::sync::mpsc;

use crate::error::{NetworkError, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The handle; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct NsWorker {
    tx: mpsc::Sender<Job>,
}

impl NsWorker {
    /// Starts the thread in the calling thread's network namespace.
    pub fn spawn() -> Result<NsWorker> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("virtkit-netns-worker".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(|e| {
                NetworkError::Host(format!("cannot start the network worker thread: {e}"))
            })?;
        Ok(NsWorker { tx })
    }

    /// Runs `f` on the worker thread and waits for its result without
    /// blocking the async runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| NetworkError::Host("the network worker thread has stopped".into()))?;
        rx.await
            .map_err(|_| NetworkError::Host("the network worker thread dropped a job".into()))
    }
}

/// The inode of the calling thread's network namespace.
pub(crate) fn current_netns_inode() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .ok()
        .map(|m| m.ino())
}
