//! Memory backends: the QOM object guest RAM comes from, for the machine's
//! whole memory (`pc.ram` without NUMA cells) or for one NUMA cell.
//!
//! `<memoryBacking>` chooses it as libvirt does:
//! - `<source type='memfd'/>`: `memory-backend-memfd` (huge pages through
//!   its `hugetlb` and `hugetlbsize`);
//! - huge pages, `<source type='file'/>` or a memory access mode (the
//!   cell's `memAccess`, else `<access mode>`): `memory-backend-file`, on
//!   the hugetlbfs mount of the page size (`MOUNT/libvirt/qemu/SHORTNAME`)
//!   or in the domain's memory directory (`DIR/ID`);
//! - otherwise `memory-backend-ram`.
//!
//! Huge pages and `<allocation mode='immediate'>` preallocate. When
//! preallocated memory is bound to host nodes and QEMU has thread
//! contexts, the preallocation threads run on those nodes (a
//! `thread-context` object first, named in `prealloc-context`).

use virtkit_core::domain::units;
use virtkit_core::xml::{Element, XPath};
use virtkit_core::{Error, ErrorKind, Result};

use super::numa::parse_bitmap;
use super::props::Value;
use super::{Gen, Props, attr, invalid, unsupported};

/// A hugetlbfs mount of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hugetlbfs {
    /// Where it is mounted.
    pub path: String,
    /// Its page size in KiB.
    pub size_kib: u64,
    /// Whether its page size is the host's default huge page size.
    pub default: bool,
}

/// The hugetlbfs mounts of this host (`/proc/mounts`), each with its page
/// size (`pagesize=` option, else the default from `/proc/meminfo`).
pub fn host_hugetlbfs() -> Vec<Hugetlbfs> {
    let default_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("Hugepagesize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    parse_mounts(&mounts, default_kib)
}

fn parse_mounts(mounts: &str, default_kib: Option<u64>) -> Vec<Hugetlbfs> {
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 || f[2] != "hugetlbfs" {
                return None;
            }
            let size_kib = f[3]
                .split(',')
                .find_map(|o| o.strip_prefix("pagesize="))
                .and_then(size_option_kib)
                .or(default_kib)?;
            Some(Hugetlbfs {
                // /proc/mounts escapes blanks as octal.
                path: f[1].replace("\\040", " "),
                size_kib,
                default: Some(size_kib) == default_kib,
            })
        })
        .collect()
}

/// `2M`, `1G`, `2048k` as KiB.
fn size_option_kib(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let n: u64 = num.parse().ok()?;
    let kib = match mult.to_ascii_lowercase().as_str() {
        "" => n / 1024,
        "k" | "kb" => n,
        "m" | "mb" => n * 1024,
        "g" | "gb" => n * 1024 * 1024,
        _ => return None,
    };
    Some(kib)
}

/// Where a running domain's huge-page memory goes on a hugetlbfs mount.
pub fn hugepage_dir(mount: &str, short_name: &str) -> std::path::PathBuf {
    std::path::Path::new(mount)
        .join("libvirt/qemu")
        .join(short_name)
}

/// The system's base page size in KiB.
pub(crate) fn system_page_kib() -> u64 {
    // SAFETY: sysconf(3) only reads a system setting.
    let sz = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if sz > 0 { sz as u64 / 1024 } else { 4 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Default,
    Anonymous,
    File,
    Memfd,
}

/// One `<hugepages><page>`.
#[derive(Debug, Clone)]
struct Page {
    size_kib: u64,
    /// The guest NUMA cells it is for; `None`: every other cell.
    nodes: Option<Vec<u32>>,
}

/// `<memoryBacking>`, read once.
#[derive(Debug, Clone)]
pub(crate) struct Backing {
    /// `None`: no `<hugepages>`; `Some([])`: the default huge page size.
    hugepages: Option<Vec<Page>>,
    source: Source,
    /// `<access mode>`: `Some(true)` shared, `Some(false)` private.
    access: Option<bool>,
    /// `<allocation mode='immediate'>`.
    immediate: bool,
    threads: Option<u32>,
    /// `<discard/>`.
    discard: bool,
    /// `<locked/>`.
    pub locked: bool,
}

/// `<memoryBacking>` children this builder expresses.
const BACKING_SUPPORTED: &[&str] = &[
    "nosharepages",
    "locked",
    "hugepages",
    "source",
    "access",
    "allocation",
    "discard",
];

/// A memory access mode (`shared`: `Some(true)`), `p` naming it in errors.
pub(crate) fn access_mode(v: Option<String>, p: &str) -> Result<Option<bool>> {
    match v.as_deref() {
        None => Ok(None),
        Some("shared") => Ok(Some(true)),
        Some("private") => Ok(Some(false)),
        Some(other) => Err(invalid(p, format!("unknown memory access mode '{other}'"))),
    }
}

impl Backing {
    /// Reads `/domain/memoryBacking`.
    pub(crate) fn of(domain: &Element, p: &XPath) -> Result<Backing> {
        let mut b = Backing {
            hugepages: None,
            source: Source::Default,
            access: None,
            immediate: false,
            threads: None,
            discard: false,
            locked: false,
        };
        let Some(mb) = domain.child("memoryBacking") else {
            return Ok(b);
        };
        let mp = p.named("memoryBacking");
        if let Some(other) = mb
            .elements()
            .find(|e| !BACKING_SUPPORTED.contains(&e.name()))
        {
            return Err(unsupported(
                mp.named(other.name()),
                format!("memory backing <{}>", other.name()),
            ));
        }
        b.locked = mb.child("locked").is_some();
        b.discard = mb.child("discard").is_some();
        if let Some(h) = mb.child("hugepages") {
            let hp = mp.named("hugepages");
            let mut pages = Vec::new();
            for pg in h.children_named("page") {
                let pp = hp.named("page");
                let kib = units::element_kib(&size_element(pg))
                    .map_err(|e| invalid(pp.attr("size"), e))?;
                let nodes = match attr(pg, "nodeset") {
                    Some(s) => Some(parse_bitmap(&s).ok_or_else(|| {
                        invalid(pp.attr("nodeset"), format!("bad node set '{s}'"))
                    })?),
                    None => None,
                };
                pages.push(Page {
                    size_kib: kib,
                    nodes,
                });
            }
            b.hugepages = Some(pages);
        }
        if let Some(s) = mb.child("source") {
            b.source = match attr(s, "type").as_deref() {
                None | Some("anonymous") => Source::Anonymous,
                Some("file") => Source::File,
                Some("memfd") => Source::Memfd,
                Some(other) => {
                    return Err(invalid(
                        mp.named("source").attr("type"),
                        format!("unknown memory source type '{other}'"),
                    ));
                }
            };
        }
        if let Some(a) = mb.child("access") {
            b.access = access_mode(attr(a, "mode"), &mp.named("access").attr("mode"))?;
        }
        if let Some(a) = mb.child("allocation") {
            let ap = mp.named("allocation");
            b.immediate = match attr(a, "mode").as_deref() {
                None | Some("ondemand") => false,
                Some("immediate") => true,
                Some(other) => {
                    return Err(invalid(
                        ap.attr("mode"),
                        format!("unknown memory allocation mode '{other}'"),
                    ));
                }
            };
            if let Some(t) = attr(a, "threads") {
                b.threads =
                    Some(t.parse().map_err(|_| {
                        invalid(ap.attr("threads"), format!("bad thread count '{t}'"))
                    })?);
            }
        }
        Ok(b)
    }

    /// The huge page size (KiB) for guest cell `cell` (`None`: the whole
    /// memory without NUMA cells, which counts as cell 0); `None` when the
    /// memory is not on huge pages.
    fn page_kib(&self, g: &Gen<'_>, cell: Option<u32>, p: &XPath) -> Result<Option<u64>> {
        let Some(pages) = &self.hugepages else {
            return Ok(None);
        };
        let id = cell.unwrap_or(0);
        let chosen = pages
            .iter()
            .find(|pg| pg.nodes.as_ref().is_some_and(|n| n.contains(&id)))
            .or_else(|| pages.iter().find(|pg| pg.nodes.is_none()));
        let kib = match (chosen, pages.is_empty()) {
            (Some(pg), _) => pg.size_kib,
            // Only pages for other cells: this one is on normal pages.
            (None, false) => return Ok(None),
            (None, true) => match g.host.hugetlbfs.iter().find(|h| h.default) {
                Some(h) => h.size_kib,
                None => {
                    return Err(Error::new(
                        ErrorKind::ConfigUnsupported,
                        format!(
                            "huge pages requested ({}) but this host has no hugetlbfs mount \
                             of the default huge page size; mount one, e.g. \
                             `mount -t hugetlbfs none /dev/hugepages`",
                            p.named("memoryBacking").named("hugepages")
                        ),
                    ));
                }
            },
        };
        if kib == g.host.page_kib {
            return Ok(None);
        }
        Ok(Some(kib))
    }
}

/// A `<page>` as an element `units` reads (`size` + `unit`).
fn size_element(pg: &Element) -> Element {
    let mut m = Element::new("size").with_text(&attr(pg, "size").unwrap_or_default());
    if let Some(u) = attr(pg, "unit") {
        m.set_attr("unit", &u);
    }
    m
}

/// One backend to emit.
#[derive(Default)]
pub(crate) struct Request<'r> {
    /// The object id (`pc.ram`, `ram-node0`, `memdimm0`).
    pub id: &'r str,
    /// The file name in the domain's memory directory when the memory is
    /// file-backed off huge pages (the cell's id or the device's alias).
    pub file_name: &'r str,
    /// The guest NUMA cell, `None` for the machine's whole memory.
    pub cell: Option<u32>,
    /// The machine's whole memory (`pc.ram`), not a cell's or a device's.
    pub system: bool,
    /// A page size chosen by the device (`<source><pagesize>`), instead of
    /// `<hugepages>`.
    pub page_kib: Option<u64>,
    /// The backing file of an NVDIMM (`<source><path>`).
    pub path: Option<String>,
    /// virtio-mem: the device preallocates, the backend reserves nothing.
    pub device_prealloc: bool,
    pub size_bytes: u64,
    /// The cell's `memAccess` (`Some(true)`: shared).
    pub mem_access: Option<bool>,
    /// The cell's `discard`.
    pub discard: Option<bool>,
    /// Host nodes and QEMU policy (`<numatune>`).
    pub binding: Option<(Vec<u32>, &'static str)>,
}

/// Emits the backend object (and its thread context) for `r`; returns
/// whether the memory is to be preallocated.
pub(crate) fn emit(g: &mut Gen<'_>, b: &Backing, r: &Request<'_>, p: &XPath) -> Result<bool> {
    let page = match (r.path.is_some(), r.page_kib) {
        (true, _) => None,
        (false, Some(kib)) => (kib != g.host.page_kib).then_some(kib),
        (false, None) => b.page_kib(g, r.cell, p)?,
    };
    let access = r.mem_access.or(b.access);
    let system = r.system;
    let kind = if r.path.is_some() {
        "memory-backend-file"
    } else if b.source == Source::Memfd {
        "memory-backend-memfd"
    } else if page.is_some() || access.is_some() || b.source == Source::File {
        "memory-backend-file"
    } else {
        "memory-backend-ram"
    };
    let mut o = Props::new().set("qom-type", kind).set("id", r.id);
    let mut prealloc = b.immediate;
    match kind {
        "memory-backend-memfd" => {
            if let Some(kib) = page {
                o.put("hugetlb", true);
                o.put("hugetlbsize", kib * 1024);
                prealloc = true;
            }
        }
        "memory-backend-file" => {
            let path = match (&r.path, page) {
                (Some(file), _) => {
                    prealloc = true;
                    file.clone()
                }
                (None, Some(kib)) => {
                    let mount = g
                        .host
                        .hugetlbfs
                        .iter()
                        .find(|h| h.size_kib == kib)
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::ConfigUnsupported,
                                format!(
                                    "no hugetlbfs mount of this host has {kib} KiB pages \
                                     ({}); mount one (`mount -t hugetlbfs -o pagesize={kib}k \
                                     none DIR`) or choose another <page size>",
                                    p.named("memoryBacking").named("hugepages")
                                ),
                            )
                        })?;
                    prealloc = true;
                    let dir = hugepage_dir(&mount.path, &g.ctx.short_name);
                    let path = dir.display().to_string();
                    g.need_dir(dir);
                    path
                }
                (None, None) => {
                    g.need_dir(g.ctx.memory_dir.clone());
                    g.ctx.memory_dir.join(r.file_name).display().to_string()
                }
            };
            o.put("mem-path", path);
            if let Some(d) = r.discard.or(b.discard.then_some(true)) {
                o.put("discard-data", d);
            }
        }
        _ => {}
    }
    if kind != "memory-backend-ram" {
        if let Some(shared) = access {
            o.put("share", shared);
        }
        if system && g.has("memory-backend-file.x-use-canonical-path-for-ramblock-id") {
            o.put("x-use-canonical-path-for-ramblock-id", false);
        }
    }
    if r.device_prealloc {
        if g.has("memory-backend-file.reserve") {
            o.put("reserve", false);
        }
    } else if prealloc {
        o.put("prealloc", true);
        if let Some(t) = b.threads {
            o.put("prealloc-threads", t);
        }
    }
    o.put("size", r.size_bytes);
    let mut context = None;
    if let Some((nodes, policy)) = &r.binding {
        let arr = || Value::Arr(nodes.iter().copied().map(Value::from).collect());
        o.put("host-nodes", arr());
        o.put("policy", *policy);
        if prealloc && !r.device_prealloc && g.has("thread-context") {
            let tc = format!("tc-{}", r.id);
            context = Some(
                Props::new()
                    .set("qom-type", "thread-context")
                    .set("id", tc.clone())
                    .set("node-affinity", arr()),
            );
            o.put("prealloc-context", tc);
        }
    }
    if let Some(tc) = context {
        g.object(&tc);
    }
    g.object(&o);
    Ok(prealloc)
}

/// A cell's `memAccess` and `discard`.
pub(crate) fn cell_settings(c: &Element, p: &XPath) -> Result<(Option<bool>, Option<bool>)> {
    let access = access_mode(attr(c, "memAccess"), &p.attr("memAccess"))?;
    let discard = match attr(c, "discard").as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => {
            return Err(invalid(
                p.attr("discard"),
                format!("invalid discard value '{other}' (yes or no)"),
            ));
        }
    };
    Ok((access, discard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugetlbfs_mounts_and_page_sizes() {
        let m = "\
sysfs /sys sysfs rw 0 0
hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
none /mnt/huge\\0401g hugetlbfs rw,pagesize=1024M 0 0
none /mnt/plain hugetlbfs rw 0 0
";
        let h = parse_mounts(m, Some(2048));
        assert_eq!(h.len(), 3);
        assert_eq!(
            (h[0].path.as_str(), h[0].size_kib, h[0].default),
            ("/dev/hugepages", 2048, true)
        );
        assert_eq!(
            (h[1].path.as_str(), h[1].size_kib, h[1].default),
            ("/mnt/huge 1g", 1048576, false)
        );
        assert_eq!(h[2].size_kib, 2048, "no pagesize option: the default");
        assert!(
            parse_mounts(m, None).len() == 2,
            "unknown size without a default"
        );
        assert_eq!(size_option_kib("2048k"), Some(2048));
        assert_eq!(size_option_kib("1G"), Some(1048576));
        assert_eq!(size_option_kib("2x"), None);
        assert!(system_page_kib() >= 4);
    }
}
