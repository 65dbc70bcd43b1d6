//! QMP events as they arrive, and the ones the driver acts on.

use serde_json::Value;

/// One event: its name and data as QEMU sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// `SHUTDOWN`, `STOP`, `RESUME`...
    pub name: String,
    /// The event's data (`Null` when there is none).
    pub data: Value,
    /// Seconds and microseconds since the epoch, as QEMU stamped it.
    pub timestamp: (u64, u32),
}

impl QmpEvent {
    /// Reads `{"event":..,"data":..,"timestamp":{..}}`.
    pub fn from_json(v: &Value) -> Option<QmpEvent> {
        let name = v.get("event")?.as_str()?.to_string();
        let ts = v.get("timestamp");
        let n = |k: &str| {
            ts.and_then(|t| t.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Some(QmpEvent {
            name,
            data: v.get("data").cloned().unwrap_or(Value::Null),
            timestamp: (n("seconds"), n("microseconds") as u32),
        })
    }

    /// For `SHUTDOWN`: whether the guest asked for it (ACPI poweroff from
    /// inside), as opposed to the host (a signal, `quit`).
    pub fn guest_initiated(&self) -> bool {
        self.data
            .get("guest")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// For `SHUTDOWN`/`RESET`: QEMU's reason string (`guest-shutdown`,
    /// `host-signal`, `host-qmp-quit`, ...).
    pub fn reason(&self) -> Option<&str> {
        self.data.get("reason").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_events_are_kept_by_name() {
        let v: Value = serde_json::from_str(
            r#"{"timestamp":{"seconds":5,"microseconds":7},"event":"NETDEV_VHOST_USER_CONNECTED","data":{"netdev-id":"n0"}}"#,
        )
        .unwrap();
        let e = QmpEvent::from_json(&v).unwrap();
        assert_eq!(e.name, "NETDEV_VHOST_USER_CONNECTED");
        assert_eq!(e.timestamp, (5, 7));
        let v: Value = serde_json::from_str(
            r#"{"event":"SHUTDOWN","data":{"guest":true,"reason":"guest-shutdown"}}"#,
        )
        .unwrap();
        let e = QmpEvent::from_json(&v).unwrap();
        assert!(e.guest_initiated());
        assert_eq!(e.reason(), Some("guest-shutdown"));
    }
}
