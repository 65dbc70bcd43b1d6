//! virtkit's own QMP client: a tolerant transport that uses qapi's types.
//!
//! qapi's stream decodes every line into its generated `Event` enum and ends
//! the stream on an event its schema does not know (QEMU 10 already emits
//! some). Here each line is parsed as JSON first: replies go to the request
//! with the same id (every command is sent with an id), events are fanned
//! out to subscribers as [`QmpEvent`] (name + raw data), whatever QEMU adds
//! in the future. Typed commands use qapi's [`qapi::Command`] structs.

mod event;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{broadcast, oneshot};

pub use event::QmpEvent;

/// What can go wrong talking to QEMU's monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpError {
    /// The socket could not be reached or the greeting did not arrive.
    Connect(String),
    /// QEMU answered with an error.
    Command {
        /// The command.
        command: String,
        /// QEMU's error class, e.g. `GenericError`.
        class: String,
        /// QEMU's message.
        desc: String,
    },
    /// No answer within the deadline.
    Timeout {
        /// The command.
        command: String,
        /// The deadline.
        after: Duration,
    },
    /// The monitor connection is gone (QEMU exited or closed it).
    Closed,
    /// The reply did not have the expected shape.
    Decode(String),
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Connect(m) => write!(f, "cannot connect to the QEMU monitor: {m}"),
            QmpError::Command {
                command,
                class,
                desc,
            } => write!(f, "QEMU refused '{command}': {desc} ({class})"),
            QmpError::Timeout { command, after } => write!(
                f,
                "QEMU did not answer '{command}' within {:.1} s",
                after.as_secs_f64()
            ),
            QmpError::Closed => f.write_str("the QEMU monitor connection is closed"),
            QmpError::Decode(m) => write!(f, "unexpected reply from QEMU: {m}"),
        }
    }
}

impl std::error::Error for QmpError {}

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Result<Value, QmpError>>>>>>;

/// The greeting QEMU sends when a client connects.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// QEMU's version as major*1,000,000 + minor*1,000 + micro.
    pub version: u64,
    /// The distribution's package string.
    pub package: String,
}

/// A connected, negotiated QMP session.
#[derive(Debug)]
pub struct Qmp {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    events: broadcast::Sender<QmpEvent>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn greeting_of(v: &Value) -> Option<Greeting> {
    let q = v.get("QMP")?.get("version")?;
    let n = |k: &str| q.get("qemu")?.get(k)?.as_u64();
    Some(Greeting {
        version: n("major")? * 1_000_000 + n("minor")? * 1000 + n("micro")?,
        package: q
            .get("package")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string(),
    })
}

impl Qmp {
    /// Connects to a monitor socket, reads the greeting and negotiates
    /// capabilities, all within `deadline`.
    pub async fn connect(
        path: &Path,
        deadline: Duration,
    ) -> Result<(Arc<Qmp>, Greeting), QmpError> {
        tokio::time::timeout(deadline, Self::connect_inner(path))
            .await
            .map_err(|_| {
                QmpError::Connect(format!(
                    "no greeting on {} within {:.1} s",
                    path.display(),
                    deadline.as_secs_f64()
                ))
            })?
    }

    async fn connect_inner(path: &Path) -> Result<(Arc<Qmp>, Greeting), QmpError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| QmpError::Connect(format!("{}: {e}", path.display())))?;
        let (r, w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let first = lines
            .next_line()
            .await
            .map_err(|e| QmpError::Connect(e.to_string()))?
            .ok_or_else(|| QmpError::Connect("QEMU closed the monitor before greeting".into()))?;
        let greeting = serde_json::from_str::<Value>(&first)
            .ok()
            .as_ref()
            .and_then(greeting_of)
            .ok_or_else(|| QmpError::Connect(format!("not a QMP greeting: {first}")))?;

        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (events, _) = broadcast::channel(256);
        let reader = tokio::spawn(read_loop(lines, pending.clone(), events.clone()));
        let qmp = Arc::new(Qmp {
            writer: tokio::sync::Mutex::new(w),
            pending,
            next_id: AtomicU64::new(1),
            events,
            reader,
        });
        qmp.execute_raw("qmp_capabilities", None, Duration::from_secs(10))
            .await?;
        Ok((qmp, greeting))
    }

    /// Events from now on. A slow subscriber misses the oldest events
    /// rather than slowing the monitor down.
    pub fn events(&self) -> broadcast::Receiver<QmpEvent> {
        self.events.subscribe()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.pending.lock().map(|p| p.is_none()).unwrap_or(true)
    }

    /// Runs a command given by name and JSON arguments.
    pub async fn execute_raw(
        &self,
        command: &str,
        arguments: Option<Value>,
        deadline: Duration,
    ) -> Result<Value, QmpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().map_err(|_| QmpError::Closed)?;
            p.as_mut().ok_or(QmpError::Closed)?.insert(id, tx);
        }
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        let sent = {
            let mut w = self.writer.lock().await;
            w.write_all(line.as_bytes()).await
        };
        if sent.is_err() {
            self.forget(id);
            return Err(QmpError::Closed);
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(r)) => r.map_err(|e| match e {
                QmpError::Command { class, desc, .. } => QmpError::Command {
                    command: command.to_string(),
                    class,
                    desc,
                },
                other => other,
            }),
            Ok(Err(_)) => Err(QmpError::Closed),
            Err(_) => {
                self.forget(id);
                Err(QmpError::Timeout {
                    command: command.to_string(),
                    after: deadline,
                })
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut p) = self.pending.lock()
            && let Some(map) = p.as_mut()
        {
            map.remove(&id);
        }
    }

    /// Runs a typed qapi command.
    pub async fn execute<C: qapi::Command>(
        &self,
        cmd: &C,
        deadline: Duration,
    ) -> Result<C::Ok, QmpError> {
        let args = serde_json::to_value(cmd).map_err(|e| QmpError::Decode(e.to_string()))?;
        let args = match &args {
            Value::Object(m) if m.is_empty() => None,
            Value::Null => None,
            _ => Some(args),
        };
        let v = self.execute_raw(C::NAME, args, deadline).await?;
        serde_json::from_value(v).map_err(|e| QmpError::Decode(format!("{}: {e}", C::NAME)))
    }
}

async fn read_loop(
    mut lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    pending: Pending,
    events: broadcast::Sender<QmpEvent>,
) {
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => break,
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(line, "ignoring a monitor line that is not JSON");
            continue;
        };
        if v.get("event").is_some() {
            if let Some(ev) = QmpEvent::from_json(&v) {
                let _ = events.send(ev);
            }
            continue;
        }
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let result = if let Some(r) = v.get("return") {
            Ok(r.clone())
        } else {
            let e = v.get("error");
            let s = |k: &str| {
                e.and_then(|e| e.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            Err(QmpError::Command {
                command: String::new(),
                class: s("class"),
                desc: s("desc"),
            })
        };
        let waiter = pending
            .lock()
            .ok()
            .and_then(|mut p| p.as_mut().and_then(|m| m.remove(&id)));
        if let Some(tx) = waiter {
            let _ = tx.send(result);
        }
    }
    // Fail every call still waiting, and refuse new ones.
    if let Ok(mut p) = pending.lock() {
        p.take();
    }
}
