//! `event`: print domain events as they arrive.

use futures::StreamExt;
use virtkit::EventFilter;

use super::spec::Call;
use super::{By, CmdResult, Ctx, Failure};

/// libvirt's domain event names; virtkit delivers `lifecycle` so far.
const KNOWN_EVENTS: &[&str] = &[
    "lifecycle",
    "reboot",
    "rtc-change",
    "watchdog",
    "io-error",
    "graphics",
    "io-error-reason",
    "control-error",
    "block-job",
    "disk-change",
    "tray-change",
    "pmwakeup",
    "pmsuspend",
    "balloon-change",
    "pmsuspend-disk",
    "device-removed",
    "block-job-2",
    "tunable",
    "agent-lifecycle",
    "device-added",
    "migration-iteration",
    "job-completed",
    "device-removal-failed",
    "metadata-change",
    "block-threshold",
    "memory-failure",
    "memory-device-size-change",
];
const SUPPORTED: &[&str] = &["lifecycle"];

/// Local time as virsh prints it: `2026-11-25 13:55:01.123+0000`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live locals; localtime_r only writes `tm`.
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if !ok {
        return format!("{}.{:03}", now.as_secs(), now.subsec_millis());
    }
    let off = tm.tm_gmtoff / 60;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}{}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis(),
        if off < 0 { '-' } else { '+' },
        off.abs() / 60,
        off.abs() % 60
    )
}

pub async fn event(ctx: &mut Ctx, call: &Call) -> CmdResult {
    if call.flag("list") {
        for e in SUPPORTED {
            ctx.println(e);
        }
        return Ok(());
    }
    let event = call.value("event");
    if event.is_none() && !call.flag("all") {
        return Err(Failure::msg(
            "one of --list, --all, or --event <type> is required",
        ));
    }
    if let Some(e) = event {
        if !KNOWN_EVENTS.contains(&e) {
            return Err(Failure::msg(format!("unknown event type {e}")));
        }
        if !SUPPORTED.contains(&e) {
            return Err(Failure::msg(format!(
                "event type {e} is not delivered by virtkit yet (supported: {})",
                SUPPORTED.join(", ")
            )));
        }
    }
    let timeout = match call.value("timeout") {
        Some(t) => Some(
            t.parse::<u64>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| Failure::msg("invalid timeout"))?,
        ),
        None => None,
    };
    let mut filter = EventFilter::default();
    if let Some(d) = call.value("domain") {
        filter.domain = Some(ctx.domain(d, By::ALL).await?.uuid());
    }
    let conn = ctx.conn().await?.clone();
    let mut stream = conn.subscribe(filter)?;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + std::time::Duration::from_secs(t));
    let mut count = 0u64;
    let looping = call.flag("loop");
    let stamp = call.flag("timestamp");
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let ending = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = stream.next() => match ev {
                Some(ev) => {
                    count += 1;
                    let prefix = if stamp { format!("{}: ", timestamp()) } else { String::new() };
                    ctx.println(&format!(
                        "{prefix}event 'lifecycle' for domain '{}': {} {}",
                        ev.domain.name,
                        ev.kind.as_str(),
                        ev.kind.detail_str(ev.detail)
                    ));
                    ctx.flush();
                    if !looping {
                        break None;
                    }
                }
                None => break Some("event loop ended: the connection closed"),
            },
            _ = sleep => break Some("event loop timed out"),
            _ = &mut ctrl_c => break Some("event loop interrupted"),
        }
    };
    if let Some(msg) = ending {
        ctx.println(msg);
    }
    ctx.println(&format!("events received: {count}"));
    if count == 0 {
        // virsh reports failure when nothing arrived; no extra message.
        return Err(Failure { lines: Vec::new() });
    }
    Ok(())
}
