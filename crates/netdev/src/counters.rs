//! Traffic counters of a device, as its network namespace counts them.
//!
//! Read from `/proc/PID/net/dev`, which shows the namespace of the process
//! PID (`self`: the caller's) whatever `/sys` is mounted: a daemon that
//! joined a network namespace with `nsenter --net` still sees the host's
//! `/sys/class/net`, but its own devices here.

use virtkit_core::InterfaceStats;

/// The counters of `dev` from the device's side (`rx_*`: what it received),
/// in the network namespace of process `pid` (`None`: the caller's).
/// `None` if there is no such device or process.
pub fn device_counters(pid: Option<i32>, dev: &str) -> Option<InterfaceStats> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/net/dev"),
        None => "/proc/self/net/dev".to_string(),
    };
    parse(&std::fs::read_to_string(path).ok()?, dev)
}

fn parse(text: &str, dev: &str) -> Option<InterfaceStats> {
    // Two header lines, then `NAME: rx(bytes packets errs drop fifo frame
    // compressed multicast) tx(bytes packets errs drop fifo colls carrier
    // compressed)`.
    let line = text.lines().skip(2).find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        (name.trim() == dev).then_some(rest)
    })?;
    let f: Vec<i64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if f.len() < 12 {
        return None;
    }
    Some(InterfaceStats {
        rx_bytes: f[0],
        rx_packets: f[1],
        rx_errs: f[2],
        rx_drop: f[3],
        tx_bytes: f[8],
        tx_packets: f[9],
        tx_errs: f[10],
        tx_drop: f[11],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
vnet12: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0
";

    #[test]
    fn parses_a_device_line() {
        let s = parse(SAMPLE, "vnet12").unwrap();
        assert_eq!(
            (s.rx_bytes, s.rx_packets, s.rx_errs, s.rx_drop),
            (1000, 10, 1, 2)
        );
        assert_eq!(
            (s.tx_bytes, s.tx_packets, s.tx_errs, s.tx_drop),
            (2000, 20, 3, 4)
        );
        assert!(parse(SAMPLE, "vnet1").is_none(), "whole names only");
        assert!(parse(SAMPLE, "Inter-").is_none());
    }

    #[test]
    fn reads_this_namespace() {
        assert!(
            device_counters(None, "lo").is_some(),
            "loopback always exists"
        );
        assert!(device_counters(None, "no-such-dev0").is_none());
    }
}
