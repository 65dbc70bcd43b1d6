//! Network namespaces: naming one (by a process id or an nsfs fd), moving a
//! device into one, and opening a handle that works inside one.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::error::{NetdevError, Result};
use crate::name::validate_name;
use crate::{Netdev, nl};

/// A network namespace to move a device into.
#[derive(Debug, Clone, Copy)]
pub enum NetnsRef<'a> {
    /// The namespace of this process or thread id (IFLA_NET_NS_PID), e.g. a
    /// container's init.
    Pid(u32),
    /// An nsfs fd (IFLA_NET_NS_FD), e.g. `/proc/PID/ns/net` or
    /// `/run/netns/NAME`, opened by the caller.
    Fd(BorrowedFd<'a>),
}

/// Opens the calling thread's network namespace (`/proc/thread-self/ns/net`).
pub fn current_thread_netns() -> io::Result<OwnedFd> {
    Ok(std::fs::File::open("/proc/thread-self/ns/net")?.into())
}

/// Moves the calling thread into the network namespace `ns`.
fn setns_net(ns: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns(2) takes an fd (valid: borrowed from an OwnedFd that
    // outlives the call) and a flag; it touches no memory of ours.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Netdev {
    /// A handle whose netlink socket, ioctl socket and worker thread all live
    /// in the network namespace `ns` (e.g. a container's), so every call on it
    /// acts there. Needs CAP_SYS_ADMIN over that namespace.
    pub async fn open_in_netns(ns: BorrowedFd<'_>) -> Result<Netdev> {
        let ns = ns
            .try_clone_to_owned()
            .map_err(|e| NetdevError::from_os("duplicate the namespace fd".into(), "", false, e))?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            NetdevError::InvalidArg(
                "Netdev::open_in_netns must be called inside a tokio runtime".into(),
            )
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A short-lived thread enters the namespace, so that neither this
        // thread nor a runtime thread ever changes namespace. Sockets keep the
        // namespace they were created in, and the worker thread it spawns
        // inherits it.
        std::thread::Builder::new()
            .name("virtkit-netns".into())
            .spawn(move || {
                let res = setns_net(&ns)
                    .map_err(|e| {
                        NetdevError::from_os(
                            "enter the target network namespace (setns)".into(),
                            "",
                            false,
                            e,
                        )
                    })
                    .and_then(|()| {
                        let _guard = rt.enter();
                        Netdev::new()
                    });
                let _ = tx.send(res);
            })
            .map_err(|e| {
                NetdevError::from_os("start a thread to enter the namespace".into(), "", false, e)
            })?;
        rx.await.map_err(|_| {
            NetdevError::from_os(
                "open a handle in the target namespace".into(),
                "",
                false,
                io::Error::other("the namespace thread ended without an answer"),
            )
        })?
    }

    /// Moves device `name` into the namespace `target`, renaming it to
    /// `new_name` on the way if given (one RTM_SETLINK: the kernel uses the
    /// name in the target namespace). Set MAC and MTU before moving, or
    /// through a handle opened with [`Netdev::open_in_netns`].
    pub async fn move_to_netns(
        &self,
        name: &str,
        target: NetnsRef<'_>,
        new_name: Option<&str>,
    ) -> Result<()> {
        validate_name(name)?;
        if let Some(n) = new_name {
            validate_name(n)?;
        }
        let index = self.ifindex(name).await?;
        let mut b = LinkUnspec::new_with_index(index);
        let where_to = match target {
            NetnsRef::Pid(pid) => {
                b = b.setns_by_pid(pid);
                format!("the network namespace of process {pid}")
            }
            NetnsRef::Fd(fd) => {
                b = b.setns_by_fd(fd.as_raw_fd());
                format!("the network namespace of fd {}", fd.as_raw_fd())
            }
        };
        if let Some(n) = new_name {
            b = b.name(n);
        }
        let final_name = new_name.unwrap_or(name);
        let action = match new_name {
            Some(n) => format!("move '{name}' into {where_to} as '{n}'"),
            None => format!("move '{name}' into {where_to}"),
        };
        nl::ack(
            &self.inner.nl,
            RouteNetlinkMessage::SetLink(b.build()),
            nl::CHANGE,
        )
        .await
        .map_err(|e| match e.raw_os_error() {
            // The name is taken in the target namespace.
            Some(libc::EEXIST) => NetdevError::AlreadyExists {
                name: final_name.to_string(),
            },
            Some(libc::ESRCH) => {
                NetdevError::InvalidArg(format!("cannot {action}: no such process"))
            }
            _ => NetdevError::from_os(action, name, false, e),
        })
    }
}
