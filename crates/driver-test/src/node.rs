//! The fake host: node facts and the capabilities document built from them.

use std::fmt::Write as _;

use virtkit_core::NodeInfo;

/// One NUMA cell of the fake host.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub memory_kib: u64,
    /// Size of the cell's base pages in KiB (the test driver gives each cell
    /// its own, 4 KiB times the cell number plus one).
    pub page_kib: u64,
    pub cpus: u32,
}

/// The fake host.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub info: NodeInfo,
    pub cells: Vec<Cell>,
}

impl Node {
    /// libvirt's built-in host for `test:///default`.
    pub fn builtin() -> Node {
        Node {
            info: NodeInfo {
                model: "i686".into(),
                memory_kib: 3_145_728,
                cpus: 16,
                mhz: 1400,
                nodes: 2,
                sockets: 2,
                cores: 2,
                threads: 2,
            },
            cells: (0..2u64)
                .map(|i| Cell {
                    memory_kib: (i + 1) * 2 * 1024 * 1024,
                    page_kib: 4 * (i + 1),
                    cpus: 8,
                })
                .collect(),
        }
    }

    /// The capabilities document (`virsh capabilities`).
    pub fn capabilities_xml(&self) -> String {
        let mut s = String::new();
        let arch = &self.info.model;
        s.push_str("<capabilities>\n\n  <host>\n    <cpu>\n");
        let _ = writeln!(s, "      <arch>{arch}</arch>");
        s.push_str("      <features>\n        <pae/>\n        <nonpae/>\n      </features>\n");
        let mut sizes: Vec<u64> = self.cells.iter().map(|c| c.page_kib).collect();
        sizes.extend([2048, 1_048_576]);
        sizes.sort_unstable();
        sizes.dedup();
        for size in &sizes {
            let _ = writeln!(s, "      <pages unit='KiB' size='{size}'/>");
        }
        s.push_str("    </cpu>\n    <power_management/>\n    <iommu support='no'/>\n");
        let _ = writeln!(
            s,
            "    <topology>\n      <cells num='{}'>",
            self.cells.len()
        );
        let mut cpu_id = 0;
        for (i, cell) in self.cells.iter().enumerate() {
            let _ = writeln!(s, "        <cell id='{i}'>");
            let _ = writeln!(
                s,
                "          <memory unit='KiB'>{}</memory>",
                cell.memory_kib
            );
            let _ = writeln!(
                s,
                "          <pages unit='KiB' size='{}'>{}</pages>",
                cell.page_kib,
                cell.memory_kib / cell.page_kib.max(1)
            );
            s.push_str("          <pages unit='KiB' size='2048'>0</pages>\n");
            s.push_str("          <pages unit='KiB' size='1048576'>0</pages>\n");
            let _ = writeln!(s, "          <cpus num='{}'>", cell.cpus);
            for core in 0..cell.cpus {
                let _ = writeln!(
                    s,
                    "            <cpu id='{cpu_id}' socket_id='{i}' die_id='0' core_id='{core}' siblings='{cpu_id}'/>"
                );
                cpu_id += 1;
            }
            s.push_str("          </cpus>\n        </cell>\n");
        }
        s.push_str("      </cells>\n    </topology>\n");
        s.push_str(
            "    <secmodel>\n      <model>testSecurity</model>\n      <doi></doi>\n    </secmodel>\n  </host>\n\n",
        );
        for os in ["hvm", "xen"] {
            let _ = write!(
                s,
                "  <guest>\n    <os_type>{os}</os_type>\n    <arch name='{arch}'>\n      <wordsize>32</wordsize>\n      \
                 <emulator>/usr/bin/test-hv</emulator>\n      <domain type='test'/>\n    </arch>\n    \
                 <features>\n      <pae/>\n      <nonpae/>\n    </features>\n  </guest>\n\n"
            );
        }
        s.push_str("</capabilities>\n");
        s
    }
}
