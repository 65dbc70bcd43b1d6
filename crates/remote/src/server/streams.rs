//! Procedures that open a stream (libvirt's `@readstream`): the guest
//! console (`DOMAIN_OPEN_CONSOLE`, both directions) and screenshots
//! (`DOMAIN_SCREENSHOT`, a download).
//!
//! The wire protocol is libvirt's (`remote_daemon_stream.c`): the call is
//! answered with an ordinary reply, then both sides send messages of type
//! STREAM with the call's procedure and serial. Status CONTINUE carries raw
//! data (at most 262,120 bytes, unpadded); CONTINUE with no data is the end
//! of the data. The client ends a stream with status OK (finish) or ERROR
//! (abort); either is confirmed with an empty STREAM message of status OK.
//! A stream that fails on this side sends STREAM with status ERROR and a
//! `remote_error`. Holes (sparse streams) are refused.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use virtkit_core::{Error, ErrorDomain, ErrorKind};

use super::dispatch::{Raw, StreamHandler};
use super::handlers::decode;
use super::session::{Session, StreamMsg};
use crate::protocol::convert::{dom_ref, no_flags};
use crate::protocol::header::{Header, MessageType, Status};
use crate::protocol::remote::{
    DomainOpenConsoleArgs, DomainScreenshotArgs, DomainScreenshotRet, RemoteError,
};
use crate::protocol::{STREAM_CHUNK_MAX, procs};
use crate::xdr::Void;

/// The procedures served here.
pub(crate) const STREAM_HANDLERS: &[(i32, StreamHandler)] = &[
    (procs::DOMAIN_OPEN_CONSOLE, open_console),
    (procs::DOMAIN_SCREENSHOT, screenshot),
];

/// The stream handler of a procedure.
pub(crate) fn find(number: i32) -> Option<StreamHandler> {
    STREAM_HANDLERS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, h)| *h)
}

/// `VIR_DOMAIN_CONSOLE_FORCE | VIR_DOMAIN_CONSOLE_SAFE`.
const CONSOLE_FLAGS: u32 = 3;
/// Bytes queued for a client above which a stream stops reading its source
/// until the client catches up.
const ROOM: usize = 4 * 1024 * 1024;
/// How long a finished download waits for the client's finish message.
const FINISH_WAIT: Duration = Duration::from_secs(300);

fn stream_header(call: &Header, status: Status) -> Header {
    Header {
        kind: MessageType::Stream,
        status,
        ..*call
    }
}

/// Data (or, empty, the end of the data) to the client.
fn send_data(s: &Session, call: &Header, data: &[u8]) -> bool {
    s.send_message(&stream_header(call, Status::Continue), &Raw(data))
}

/// The confirmation of the client's finish or abort.
fn send_confirm(s: &Session, call: &Header) -> bool {
    s.send_message(&stream_header(call, Status::Ok), &Void)
}

/// The stream failed on this side.
fn send_stream_error(s: &Session, call: &Header, e: &Error) -> bool {
    s.send_message(
        &stream_header(call, Status::Error),
        &RemoteError::from_error(e),
    )
}

fn stream_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Rpc, msg).in_domain(ErrorDomain::Rpc)
}

/// A byte stream to a guest device.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A character device (a pty) driven by the runtime's reactor.
struct CharDev(AsyncFd<std::fs::File>);

impl AsyncRead for CharDev {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| {
                let mut file: &std::fs::File = f.get_ref();
                file.read(unfilled)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The other end of a pty is gone: that is its end of file.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for CharDev {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|f| {
                let mut file: &std::fs::File = f.get_ref();
                file.write(data)
            }) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Puts a terminal into raw mode (no echo, no line editing, no newline
/// translation), as libvirt does with the pty of a console it streams;
/// other character devices are left as they are.
fn make_raw(f: &std::fs::File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: termios is a plain C struct; all-zero bytes are a valid value
    // for tcgetattr to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open (owned by `f` for this call); `t` is a valid,
    // writable termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTTY) | Some(libc::EINVAL) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: `t` is a valid termios obtained above.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `fd` is open; `t` is a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens the host end of a console: a unix socket, or a character device
/// (pty) in raw non-blocking mode.
async fn open_device(path: &Path) -> Result<Box<dyn Io>, Error> {
    let what = || format!("cannot open console device '{}'", path.display());
    let meta = std::fs::metadata(path).map_err(|e| Error::system(what(), &e))?;
    if meta.file_type().is_socket() {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| Error::system(what(), &e))?;
        return Ok(Box::new(s));
    }
    if !meta.file_type().is_char_device() {
        return Err(Error::operation_invalid(format!(
            "console device '{}' is neither a terminal nor a socket",
            path.display()
        )));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::system(what(), &e))?;
    make_raw(&f).map_err(|e| Error::system(what(), &e))?;
    // SAFETY: a `File` owns its descriptor: it stays open, and `as_raw_fd`
    // returns the same one, until the `File` (owned by the `AsyncFd`) drops.
    let fd = unsafe { AsyncFd::register(f) }.map_err(|e| Error::system(what(), &e.into()))?;
    Ok(Box::new(CharDev(fd)))
}

/// Registers the stream of `call`, sends the reply `ret`, and runs `pump`
/// until the stream ends.
fn start<F>(s: &Arc<Session>, call: Header, rx_ready: mpsc::Receiver<StreamMsg>, pump: F)
where
    F: FnOnce(Arc<Session>, Header, mpsc::Receiver<StreamMsg>) -> BoxFuture<'static, ()>
        + Send
        + 'static,
{
    let sess = s.clone();
    let task = tokio::spawn(async move {
        pump(sess.clone(), call, rx_ready).await;
        sess.remove_stream(call.serial);
    });
    s.set_stream_task(call.serial, task.abort_handle());
}

fn open_console<'a>(
    s: &'a Arc<Session>,
    call: Header,
    body: &'a [u8],
) -> BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move {
        let a: DomainOpenConsoleArgs = decode(call.proc_, body)?;
        no_flags(a.flags & !CONSOLE_FLAGS, "virDomainOpenConsole")?;
        let path = s
            .conn()?
            .domains()?
            .console_path(&dom_ref(&a.dom), a.dev_name.as_deref())
            .await?;
        let dev = open_device(&path).await?;
        // Registered before the reply: the client may send data right
        // after reading it.
        let rx = s.add_stream(call.serial, call.proc_)?;
        s.send_message(&call.reply(Status::Ok), &Void);
        start(s, call, rx, move |sess, call, rx| {
            Box::pin(console_pump(sess, call, dev, rx))
        });
        Ok(())
    })
}

/// Guest output to the client, client input to the guest, until the client
/// finishes or aborts the stream or the session ends.
async fn console_pump(
    s: Arc<Session>,
    call: Header,
    dev: Box<dyn Io>,
    mut rx: mpsc::Receiver<StreamMsg>,
) {
    let (mut rd, mut wr) = tokio::io::split(dev);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reading = true;
    loop {
        tokio::select! {
            r = rd.read(&mut buf), if reading => match r {
                Ok(0) => {
                    // The guest side closed (QEMU exited): the end of the
                    // data; the client then finishes the stream.
                    reading = false;
                    if !send_data(&s, &call, &[]) {
                        return;
                    }
                }
                Ok(n) => {
                    if !s.wait_for_room(ROOM).await || !send_data(&s, &call, &buf[..n]) {
                        return;
                    }
                }
                Err(e) => {
                    send_stream_error(&s, &call, &Error::system("cannot read from the console", &e));
                    return;
                }
            },
            m = rx.recv() => {
                let Some(m) = m else { return };
                match (m.kind, m.status) {
                    (MessageType::Stream, Status::Continue) => {
                        if let Err(e) = wr.write_all(&m.body).await {
                            let e = Error::system("cannot write to the console", &e);
                            s.send_message(&call.reply(Status::Error), &RemoteError::from_error(&e));
                            return;
                        }
                    }
                    // Finish (OK) or abort (ERROR): confirmed alike.
                    (MessageType::Stream, _) => {
                        send_confirm(&s, &call);
                        return;
                    }
                    _ => {
                        send_stream_error(&s, &call, &stream_error("Unexpected stream hole"));
                        return;
                    }
                }
            }
        }
    }
}

fn screenshot<'a>(
    s: &'a Arc<Session>,
    call: Header,
    body: &'a [u8],
) -> BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move {
        let a: DomainScreenshotArgs = decode(call.proc_, body)?;
        no_flags(a.flags, "virDomainScreenshot")?;
        let (data, mime) = s
            .conn()?
            .domains()?
            .screenshot(&dom_ref(&a.dom), a.screen)
            .await?;
        let rx = s.add_stream(call.serial, call.proc_)?;
        s.send_message(
            &call.reply(Status::Ok),
            &DomainScreenshotRet { mime: Some(mime) },
        );
        start(s, call, rx, move |sess, call, rx| {
            Box::pin(download(sess, call, data, rx))
        });
        Ok(())
    })
}

/// Sends `data` and its end, then waits for the client to finish.
async fn download(s: Arc<Session>, call: Header, data: Vec<u8>, mut rx: mpsc::Receiver<StreamMsg>) {
    for chunk in data.chunks(STREAM_CHUNK_MAX) {
        if !s.wait_for_room(ROOM).await || !send_data(&s, &call, chunk) {
            return;
        }
    }
    if !send_data(&s, &call, &[]) {
        return;
    }
    match tokio::time::timeout(FINISH_WAIT, rx.recv()).await {
        Ok(Some(StreamMsg {
            kind: MessageType::Stream,
            status: Status::Ok | Status::Error,
            ..
        })) => {
            send_confirm(&s, &call);
        }
        Ok(Some(_)) => {
            // Data or a hole sent into a download.
            let e = stream_error("stream does not accept data: it is read-only");
            s.send_message(&call.reply(Status::Error), &RemoteError::from_error(&e));
        }
        Ok(None) | Err(_) => {}
    }
}
