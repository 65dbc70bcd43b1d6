//! Facts about the real host, read from `/proc` and `/sys`, for drivers
//! that run guests on it (node info, capabilities).

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::types::NodeInfo;

/// One online CPU's place in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCpu {
    /// Logical CPU number.
    pub id: u32,
    /// Physical package.
    pub socket: u32,
    /// Die within the package.
    pub die: u32,
    /// Core within the die.
    pub core: u32,
    /// NUMA node.
    pub node: u32,
    /// Thread siblings as a CPU list (`0,4`).
    pub siblings: String,
}

fn read_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Parses a kernel CPU list (`0-3,8,10-11`).
pub fn parse_cpu_list(s: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b.min(a.saturating_add(65535)));
                }
            }
            None => {
                if let Ok(n) = part.trim().parse() {
                    out.insert(n);
                }
            }
        }
    }
    out
}

/// The online CPUs with their topology.
pub fn host_cpus() -> Vec<HostCpu> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    online
        .into_iter()
        .map(|id| {
            let base = format!("/sys/devices/system/cpu/cpu{id}");
            let node = std::fs::read_dir(&base)
                .ok()
                .and_then(|rd| {
                    rd.flatten().find_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_prefix("node"))
                            .and_then(|n| n.parse().ok())
                    })
                })
                .unwrap_or(0);
            HostCpu {
                id,
                socket: read_u32(&format!("{base}/topology/physical_package_id")).unwrap_or(0),
                die: read_u32(&format!("{base}/topology/die_id")).unwrap_or(0),
                core: read_u32(&format!("{base}/topology/core_id")).unwrap_or(id),
                node,
                siblings: std::fs::read_to_string(format!("{base}/topology/thread_siblings_list"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| id.to_string()),
            }
        })
        .collect()
}

/// Total memory in KiB (`MemTotal`).
pub fn host_memory_kib() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| Error::system("cannot read /proc/meminfo", &e))?;
    s.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::internal("no MemTotal in /proc/meminfo"))
}

/// The host's node info as `virsh nodeinfo` shows it.
pub fn node_info() -> Result<NodeInfo> {
    let cpus = host_cpus();
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("cpu MHz"))
                .and_then(|v| v.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0) as u32;
    let nodes: BTreeSet<u32> = cpus.iter().map(|c| c.node).collect();
    let sockets: BTreeSet<(u32, u32)> = cpus.iter().map(|c| (c.node, c.socket)).collect();
    let cores: BTreeSet<(u32, u32, u32)> = cpus.iter().map(|c| (c.socket, c.die, c.core)).collect();
    let n_nodes = nodes.len().max(1) as u32;
    let sockets_per_node = (sockets.len() as u32 / n_nodes).max(1);
    let cores_per_socket = (cores.len() as u32 / (sockets_per_node * n_nodes)).max(1);
    let threads = (cpus.len() as u32 / cores.len().max(1) as u32).max(1);
    Ok(NodeInfo {
        model: std::env::consts::ARCH.to_string(),
        memory_kib: host_memory_kib()?,
        cpus: cpus.len() as u32,
        mhz,
        nodes: n_nodes,
        sockets: sockets_per_node,
        cores: cores_per_socket,
        threads,
    })
}

/// The host's UUID: the SMBIOS product UUID when readable, else one derived
/// from `/etc/machine-id`.
pub fn host_uuid() -> String {
    if let Ok(s) = std::fs::read_to_string("/sys/class/dmi/id/product_uuid")
        && let Ok(u) = s.trim().parse::<crate::Uuid>()
    {
        return u.to_string();
    }
    if let Ok(s) = std::fs::read_to_string("/etc/machine-id")
        && let Ok(u) = s.trim().parse::<crate::Uuid>()
    {
        return u.to_string();
    }
    "00000000-0000-0000-0000-000000000000".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n")
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn this_host_has_cpus_and_memory() {
        let n = node_info().unwrap();
        assert!(n.cpus >= 1 && n.memory_kib > 0);
        assert_eq!(n.cpus, host_cpus().len() as u32);
    }
}
