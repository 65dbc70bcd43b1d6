//! A remote guest console as a local terminal: [`DomainOps::console_path`]
//! must name a device the caller opens, so the remote driver opens the
//! console stream (`DOMAIN_OPEN_CONSOLE`) and bridges it to a new local
//! pseudo-terminal in raw mode, whose slave it returns.
//!
//! The bridge ends when the server ends the stream (the guest went away),
//! when the caller closed the terminal again after using it, when nobody
//! opened it within [`ATTACH_WAIT`], or with the connection.
//!
//! [`DomainOps::console_path`]: virtkit_core::DomainOps::console_path

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use virtkit_core::{Error, Result};

use super::rpc::ClientStream;

/// How long a console terminal waits to be opened.
pub const ATTACH_WAIT: Duration = Duration::from_secs(30);

/// Puts a terminal into raw mode (no echo, no line editing, no newline
/// translation): the bytes pass through unchanged.
fn make_raw(f: &File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: termios is a plain C struct; all-zero bytes are a valid value
    // for tcgetattr to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open (owned by `f`); `t` is a valid, writable termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `t` is a valid termios obtained above.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `fd` is open; `t` is a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new pseudo-terminal: its master (non-blocking) and the path of its
/// slave, set to raw mode.
fn open_pty() -> io::Result<(File, PathBuf)> {
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open("/dev/ptmx")?;
    let fd = master.as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: `fd` is an open pty master; TIOCSPTLCK reads one int.
    if unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: `fd` is an open pty master; TIOCGPTN writes one unsigned int.
    if unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let path = PathBuf::from(format!("/dev/pts/{n}"));
    // The terminal settings live with the pty as long as its master is
    // open: set them through a slave descriptor closed again at once.
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&path)?;
    make_raw(&slave)?;
    Ok((master, path))
}

/// Opens a local terminal for `stream` (just opened by the server) and
/// starts bridging them; returns the terminal's path.
pub(crate) fn bridge(stream: ClientStream) -> Result<PathBuf> {
    let (master, path) = open_pty()
        .map_err(|e| Error::system("cannot create a terminal for the remote console", &e))?;
    // SAFETY: a `File` owns its descriptor: it stays open, and `as_raw_fd`
    // returns the same one, until the `File` (owned by the `AsyncFd`) drops.
    let master = unsafe { AsyncFd::register(master) }
        .map_err(|e| Error::system("cannot create a terminal for the remote console", &e.into()))?;
    tokio::spawn(pump(master, stream));
    Ok(path)
}

/// Reads from the master. `Ok(None)`: nobody has the terminal open.
/// `attached` becomes true once the terminal was seen open.
async fn read_master(
    master: &AsyncFd<File>,
    buf: &mut [u8],
    attached: &mut bool,
) -> io::Result<Option<usize>> {
    loop {
        let mut guard = master.readable().await?;
        match guard.try_io(|f| {
            let mut file: &File = f.get_ref();
            file.read(buf)
        }) {
            Ok(Ok(n)) => {
                *attached = true;
                return Ok(Some(n));
            }
            // A pty master reads EIO while no slave is open.
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => *attached = true,
        }
    }
}

async fn write_master(master: &AsyncFd<File>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut guard = master.writable().await?;
        match guard.try_io(|f| {
            let mut file: &File = f.get_ref();
            file.write(data)
        }) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

async fn pump(master: AsyncFd<File>, mut stream: ClientStream) {
    let t0 = Instant::now();
    let mut attached = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = read_master(&master, &mut buf, &mut attached) => match r {
                Ok(Some(0)) | Ok(None) if attached => {
                    // The user closed the terminal: end the stream.
                    let _ = stream.finish().await;
                    return;
                }
                Ok(None) => {
                    if t0.elapsed() > ATTACH_WAIT {
                        let _ = stream.abort().await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Some(n)) => {
                    if stream.send(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = stream.abort().await;
                    return;
                }
            },
            d = stream.recv() => match d {
                // Output before anyone opened the terminal is dropped by
                // the pty; a closed terminal fails the write: both fine.
                Ok(Some(data)) => {
                    let _ = write_master(&master, &data).await;
                }
                Ok(None) => {
                    // The guest side ended: finish; dropping the master
                    // hangs up the terminal.
                    let _ = stream.finish().await;
                    return;
                }
                Err(_) => return,
            },
        }
    }
}
