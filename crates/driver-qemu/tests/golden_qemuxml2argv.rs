//! Golden test: libvirt 9.0.0's `qemuxml2argv` suite (x86_64 cases) through
//! virtkit's QEMU command-line builder, plus a measure of the
//! `qemuxml2xml` round trip through the QEMU profile.
//!
//! For every case and capability variant of `index.tsv`:
//! - `args@latest`: capabilities `caps_8.0.0.x86_64.xml`, expected
//!   `X.x86_64-latest.args`; `args@X.Y.Z`: `caps_X.Y.Z.x86_64.xml`, expected
//!   `X.x86_64-X.Y.Z.args`. The command is compared byte for byte.
//! - `args@fake` (hand-picked capability flags): parsed, normalised and
//!   built, never compared; the build must not panic.
//! - `parse-fail@*`: must be rejected (at parse or at build) with an error.
//!
//! libvirt's test harness runs QEMU in a dry-run mode with fixed host
//! resources. The test reproduces them through the [`Context`] and [`Host`]
//! it passes to the builder, never by rewriting the output:
//! - domain id -1: the private directory is `/tmp/lib/domain--1-<name cut to
//!   20 characters>` (QEMU's `HOME`, `XDG_*` below it, the master key);
//! - the environment has `PATH=/bin`, `USER=test`, `LOGNAME=test`;
//! - the monitor and every listening UNIX-socket character device are
//!   pre-opened descriptor 1729;
//! - tap devices get descriptors from 3, vhost-net descriptors from 44;
//! - VNC autoport hands out display 0 (port 5900), SPICE autoport ports
//!   5901 and 5902 (TLS);
//! - SPICE has TLS on (`/etc/pki/libvirt-spice`) and a host password;
//! - the host's DRM render node is `/dev/dri/foo`;
//! - for `@latest` only, machine aliases (`pc`, `q35`) are machines of their
//!   own, as libvirt's harness copies them.
//!
//! `VIRTKIT_GOLDEN_CASE=<name>` prints the expected and the built command
//! of that case in full.
//!
//! The gate: at least half of the `args@latest` cases match exactly. Misses
//! are printed grouped by reason. Run with `--nocapture` to see the report.
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the test prints why it skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use virtkit_core::domain::{DomainDef, FormatOptions};
use virtkit_core::xml::Element;
use virtkit_driver_qemu::argv::{
    self, Accel, Context, GraphicsPorts, Host, Hugetlbfs, NetFds, SpiceHost,
};
use virtkit_driver_qemu::caps::{Machine, QemuCaps};
use virtkit_driver_qemu::firmware::{self, FirmwareDirs};
use virtkit_driver_qemu::profile::QemuProfile;

/// Share of the `args@latest` cases that must match exactly.
const REQUIRED_LATEST_RATE: f64 = 0.70;

/// The capability data `@latest` stands for in libvirt 9.0.0.
const LATEST_CAPS: &str = "8.0.0";

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt/index.tsv").is_file().then_some(dir)
}

/// One row of `index.tsv`.
struct Case {
    stem: String,
    files: Vec<String>,
    expect: Vec<String>,
    flags: String,
}

fn read_cases(lv: &Path) -> Vec<Case> {
    let text = fs::read_to_string(lv.join("index.tsv")).expect("index.tsv is readable");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 5 && cols[0] == "qemuxml2argv").then(|| Case {
                stem: cols[1].to_string(),
                files: cols[2].split(' ').map(str::to_string).collect(),
                expect: cols[3].split(' ').map(str::to_string).collect(),
                flags: cols[4].to_string(),
            })
        })
        .collect()
}

impl Case {
    /// The checks of one kind (`args`, `parse-fail`, `xml-same`...), by variant.
    fn variants(&self, kind: &str) -> Vec<String> {
        self.expect
            .iter()
            .filter_map(|e| e.split_once('@'))
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    /// The `flags` words of the argv check of `variant`: the one that
    /// expects an error (`parse_error`), or the one that builds a command.
    fn argv_flags(&self, variant: &str, parse_error: bool) -> Vec<String> {
        let prefix = format!("argv@{variant}:");
        self.flags
            .split("; ")
            .filter_map(|f| f.strip_prefix(&prefix))
            .filter(|f| {
                f.split(' ')
                    .next()
                    .is_some_and(|m| m.contains("PARSE_ERROR") == parse_error)
            })
            .flat_map(|f| f.split(' ').skip(1).map(str::to_string))
            .collect()
    }

    fn has_file(&self, name: &str) -> bool {
        self.files.iter().any(|f| f == name)
    }
}

/// Capability files and the flag-name table, loaded once.
struct CapsData {
    lv: PathBuf,
    loaded: BTreeMap<String, QemuCaps>,
    /// `QEMU_CAPS_*` name -> flag name of the capability XML.
    flag_names: BTreeMap<String, String>,
}

impl CapsData {
    fn new(lv: &Path) -> CapsData {
        let table = fs::read_to_string(lv.join("qemucapabilitiesdata/qemu-caps-flags.tsv"))
            .unwrap_or_default();
        let flag_names = table
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols.len() == 3).then(|| (cols[1].to_string(), cols[2].to_string()))
            })
            .collect();
        CapsData {
            lv: lv.to_path_buf(),
            loaded: BTreeMap::new(),
            flag_names,
        }
    }

    /// The capabilities of a real-data variant (`latest` or `X.Y.Z`), with
    /// the extra `QEMU_CAPS_*` flags the case adds.
    fn real(&mut self, variant: &str, extra: &[String]) -> Result<QemuCaps, String> {
        let ver = if variant == "latest" {
            LATEST_CAPS
        } else {
            variant
        };
        if !self.loaded.contains_key(variant) {
            let rel = format!("qemucapabilitiesdata/caps_{ver}.x86_64.xml");
            let text = fs::read_to_string(self.lv.join(&rel)).map_err(|e| format!("{rel}: {e}"))?;
            let mut caps = QemuCaps::from_libvirt_xml(&text, &rel).map_err(|e| e.to_string())?;
            if variant == "latest" {
                copy_machine_aliases(&mut caps);
            }
            self.loaded.insert(variant.to_string(), caps);
        }
        let mut caps = self.loaded[variant].clone();
        self.add_flags(&mut caps, extra);
        Ok(caps)
    }

    /// libvirt's hand-picked capability set: only the listed flags plus
    /// what its harness always adds (no-acpi/no-hpet on x86, `pc` and `q35`,
    /// TCG and KVM). Used to exercise the builder, never compared.
    fn fake(&self, extra: &[String]) -> QemuCaps {
        let machine = |name: &str, accel: &str| Machine {
            accel: accel.into(),
            name: name.into(),
            alias: None,
            default: name == "pc",
            max_cpus: 255,
            default_cpu: None,
            default_ram_id: None,
            deprecated: false,
        };
        let mut caps = QemuCaps {
            binary: "/usr/bin/qemu-system-x86_64".into(),
            version: 0,
            package: String::new(),
            arch: "x86_64".into(),
            flags: ["no-acpi", "no-hpet", "tcg", "kvm"]
                .into_iter()
                .map(String::from)
                .collect(),
            machines: ["pc", "q35"]
                .iter()
                .flat_map(|m| [machine(m, "tcg"), machine(m, "kvm")])
                .collect(),
            cpu_models: Vec::new(),
            kvm: true,
        };
        self.add_flags(&mut caps, extra);
        caps
    }

    fn add_flags(&self, caps: &mut QemuCaps, extra: &[String]) {
        for f in extra.iter().filter(|f| f.starts_with("QEMU_CAPS_")) {
            if let Some(n) = self.flag_names.get(f) {
                caps.flags.insert(n.clone());
            }
        }
    }
}

/// For `@latest`, libvirt's harness turns each machine alias into a
/// machine of its own, so `pc` stays `pc` on the command line.
fn copy_machine_aliases(caps: &mut QemuCaps) {
    let copies: Vec<Machine> = caps
        .machines
        .iter()
        .filter_map(|m| {
            m.alias.as_ref().map(|a| Machine {
                name: a.clone(),
                alias: None,
                ..m.clone()
            })
        })
        .collect();
    for m in &mut caps.machines {
        m.alias = None;
    }
    caps.machines.extend(copies);
}

/// libvirt's dry-run host: see the module documentation.
fn harness_host() -> Host {
    Host {
        path: "/bin".into(),
        chardev_listen_fd: Some(1729),
        graphics_ports: GraphicsPorts::Fixed {
            vnc: 5900,
            spice: 5901,
            spice_tls: 5902,
        },
        spice: SpiceHost {
            tls_x509_dir: Some("/etc/pki/libvirt-spice".into()),
            password: true,
        },
        render_node: Some("/dev/dri/foo".into()),
        hugetlbfs: vec![
            Hugetlbfs {
                path: "/dev/hugepages2M".into(),
                size_kib: 2048,
                default: true,
            },
            Hugetlbfs {
                path: "/dev/hugepages1G".into(),
                size_kib: 1048576,
                default: false,
            },
        ],
        page_kib: 4,
    }
}

/// The per-start resources libvirt's harness fakes for `domain`.
fn harness_context<'a>(domain: &Element, caps: &'a QemuCaps) -> Context<'a> {
    let name = domain.child("name").map(Element::text).unwrap_or_default();
    let short: String = name.chars().take(20).collect();
    let accel = match domain.attr("type").as_deref() {
        Some("kvm") => Accel::Kvm,
        _ => Accel::Tcg,
    };
    // Taps are numbered from 3 and vhost-net descriptors from 44, one per
    // queue, in interface order.
    let mut next_tap = 3;
    let mut next_vhost = 44;
    let nets = domain
        .child("devices")
        .map(|d| {
            d.children_named("interface")
                .map(|n| {
                    let ty = n.attr("type").unwrap_or_default();
                    if !matches!(ty.as_ref(), "network" | "bridge" | "ethernet") {
                        return NetFds::default();
                    }
                    let queues = n
                        .child("driver")
                        .and_then(|d| d.attr("queues"))
                        .and_then(|q| q.parse::<i32>().ok())
                        .unwrap_or(1)
                        .max(1);
                    let tap: Vec<i32> = (next_tap..next_tap + queues).collect();
                    next_tap += queues;
                    let virtio =
                        n.child("model").and_then(|m| m.attr("type")).as_deref() == Some("virtio");
                    let qemu_driver =
                        n.child("driver").and_then(|d| d.attr("name")).as_deref() == Some("qemu");
                    let vhost = if virtio && !qemu_driver && accel == Accel::Kvm {
                        let v: Vec<i32> = (next_vhost..next_vhost + queues).collect();
                        next_vhost += queues;
                        v
                    } else {
                        Vec::new()
                    };
                    NetFds { tap, vhost }
                })
                .collect()
        })
        .unwrap_or_default();
    Context {
        caps,
        accel,
        domain_dir: PathBuf::from(format!("/tmp/lib/domain--1-{short}")),
        monitor_fd: 1729,
        nets,
        user: "test".into(),
        short_name: format!("-1-{short}"),
        memory_dir: PathBuf::from(format!("/var/lib/libvirt/qemu/ram/-1-{short}")),
    }
}

/// libvirt's harness resolves `<os firmware>` from the corpus's firmware
/// descriptors, with variable stores in libvirt's system NVRAM directory.
fn fill_firmware(domain: &mut Element, caps: &QemuCaps) -> Result<(), String> {
    static DESCRIPTORS: std::sync::OnceLock<Vec<firmware::Descriptor>> = std::sync::OnceLock::new();
    let descriptors = DESCRIPTORS.get_or_init(|| {
        corpus_root()
            .map(|r| firmware::load(&FirmwareDirs::under(&r.join("libvirt/qemufirmwaredata"))))
            .unwrap_or_default()
    });
    let accel = match domain.attr("type").as_deref() {
        Some("kvm") => Accel::Kvm,
        _ => Accel::Tcg,
    };
    let asked = domain
        .child("os")
        .and_then(|o| o.child("type"))
        .and_then(|t| t.attr("machine"))
        .map(|m| m.into_owned())
        .unwrap_or_default();
    let machine = caps
        .machine(accel.name(), &asked)
        .map_or(asked.clone(), |m| m.name.clone());
    firmware::fill(
        domain,
        descriptors,
        &machine,
        Path::new("/var/lib/libvirt/qemu/nvram"),
    )
    .map_err(|e| e.to_string())
}

/// Parses, normalises and builds; every failure is an error string.
fn build_case(input: &[u8], source: &str, caps: &QemuCaps) -> Result<String, String> {
    let def = DomainDef::parse_named(input, source).map_err(|e| e.to_string())?;
    let mut domain = def.normalised(&QemuProfile);
    fill_firmware(&mut domain, caps)?;
    let ctx = harness_context(&domain, caps);
    let cmd = argv::build_with(&domain, &ctx, &harness_host()).map_err(|e| e.to_string())?;
    Ok(cmd.to_golden_text())
}

/// Runs `f`, turning a panic into an error that names it.
fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("PANIC: {msg}"))
        }
    }
}

/// Why an argv case missed, for grouping.
enum Miss {
    /// The builder (or parser) refused the input.
    Rejected(String),
    /// A command was built but differs.
    Differs { key: String, detail: String },
}

/// The option and the identifying part of an `.args` line: `-device
/// virtio-net-pci`, `-blockdev file`, `-machine`.
fn line_key(line: &str) -> String {
    let line = line.trim_end_matches(" \\");
    let (opt, val) = line.split_once(' ').unwrap_or((line, ""));
    if !opt.starts_with('-') {
        return "environment".into();
    }
    let val = val.trim_matches('\'');
    if val.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(val).unwrap_or_default();
        let what = ["driver", "qom-type", "type"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
            .unwrap_or("?");
        return format!("{opt} {what}");
    }
    match opt {
        "-chardev" | "-netdev" | "-audiodev" => {
            format!("{opt} {}", val.split(',').next().unwrap_or(""))
        }
        _ => opt.to_string(),
    }
}

/// The first difference between the expected and the built command.
fn diff(want: &str, got: &str) -> Miss {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let n = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let (key, detail) = match (w.get(n), g.get(n)) {
        (Some(a), Some(b)) => {
            // A line present on one side only reads better than a pair.
            if g.get(n + 1) == Some(a) {
                (format!("extra {}", line_key(b)), format!("extra `{b}`"))
            } else if w.get(n + 1) == Some(b) {
                (format!("missing {}", line_key(a)), format!("missing `{a}`"))
            } else {
                (
                    format!("differs {}", line_key(a)),
                    format!("want `{a}`\n        got  `{b}`"),
                )
            }
        }
        (Some(a), None) => (format!("missing {}", line_key(a)), format!("missing `{a}`")),
        (None, Some(b)) => (format!("extra {}", line_key(b)), format!("extra `{b}`")),
        (None, None) => ("final newline".into(), String::new()),
    };
    Miss::Differs { key, detail }
}

/// An error message with its XML location and quoted values cut, so that
/// similar rejections group together.
fn error_key(msg: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in msg.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out
        .split(" is not supported")
        .next()
        .unwrap_or(&out)
        .to_string();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Outcome of one argv check.
fn run_args(lv: &Path, caps: &mut CapsData, case: &Case, variant: &str) -> Result<(), Miss> {
    let input_rel = format!("qemuxml2argvdata/{}.xml", case.stem);
    let want_rel = format!("qemuxml2argvdata/{}.x86_64-{variant}.args", case.stem);
    let input = fs::read(lv.join(&input_rel)).map_err(|e| Miss::Rejected(e.to_string()))?;
    let want = fs::read_to_string(lv.join(&want_rel)).map_err(|e| Miss::Rejected(e.to_string()))?;
    let c = caps
        .real(variant, &case.argv_flags(variant, false))
        .map_err(Miss::Rejected)?;
    let got = no_panic(|| build_case(&input, &input_rel, &c)).map_err(Miss::Rejected)?;
    if got == want {
        return Ok(());
    }
    if std::env::var("VIRTKIT_GOLDEN_CASE").is_ok_and(|c| c == case.stem) {
        let normal = DomainDef::parse_named(&input, &input_rel)
            .map(|d| d.to_xml_canonical(&QemuProfile, &FormatOptions::default()))
            .unwrap_or_default();
        println!("--- normalised\n{normal}--- {want_rel}\n{want}--- built\n{got}");
    }
    Err(diff(&want, &got))
}

/// The expected round-trip output of `variant` for the inactive form.
fn xml_expected(lv: &Path, case: &Case, kind: &str, variant: &str) -> Option<PathBuf> {
    let out = |suffix: &str| {
        let sfx = if variant == "fake" {
            String::new()
        } else {
            format!(".x86_64-{variant}")
        };
        format!("qemuxml2xmloutdata/{}{suffix}{sfx}.xml", case.stem)
    };
    let candidates = if kind == "xml-split" {
        vec![out("-inactive")]
    } else {
        vec![out("-inactive"), out("")]
    };
    for c in candidates {
        if case.has_file(&c) {
            return Some(lv.join(c));
        }
    }
    (kind == "xml-same").then(|| lv.join(format!("qemuxml2argvdata/{}.xml", case.stem)))
}

#[test]
fn qemuxml2argv_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIPPED: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let cases = read_cases(&lv);
    assert!(!cases.is_empty(), "no qemuxml2argv cases in index.tsv");
    let mut caps = CapsData::new(&lv);

    // args@latest and args@X.Y.Z: exact comparison.
    let mut latest_total = 0;
    let mut latest_ok = 0;
    let mut ver_total = 0;
    let mut ver_ok = 0;
    let mut panics = Vec::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in &cases {
        for variant in case.variants("args") {
            if variant == "fake" {
                continue;
            }
            let latest = variant == "latest";
            let label = if latest {
                case.stem.clone()
            } else {
                format!("{}@{variant}", case.stem)
            };
            let outcome = run_args(&lv, &mut caps, case, &variant);
            if latest {
                latest_total += 1;
            } else {
                ver_total += 1;
            }
            match outcome {
                Ok(()) => {
                    if latest {
                        latest_ok += 1;
                    } else {
                        ver_ok += 1;
                    }
                    println!("ok    {label}");
                }
                Err(Miss::Rejected(msg)) => {
                    if msg.starts_with("PANIC") {
                        panics.push(format!("{label}: {msg}"));
                    }
                    println!("MISS  {label}: rejected: {msg}");
                    groups
                        .entry(format!("rejected: {}", error_key(&msg)))
                        .or_default()
                        .push(label);
                }
                Err(Miss::Differs { key, detail }) => {
                    println!("MISS  {label}: {detail}");
                    groups.entry(key).or_default().push(label);
                }
            }
        }
    }

    // args@fake: parse and build only; a panic is a failure.
    let mut fake_total = 0;
    let mut fake_built = 0;
    for case in cases
        .iter()
        .filter(|c| c.variants("args").iter().any(|v| v == "fake"))
    {
        fake_total += 1;
        let rel = format!("qemuxml2argvdata/{}.xml", case.stem);
        let Ok(input) = fs::read(lv.join(&rel)) else {
            continue;
        };
        let c = caps.fake(&case.argv_flags("fake", false));
        match no_panic(|| build_case(&input, &rel, &c)) {
            Ok(_) => fake_built += 1,
            Err(e) if e.starts_with("PANIC") => panics.push(format!("{}@fake: {e}", case.stem)),
            Err(_) => {}
        }
    }

    // parse-fail: must be rejected with an error.
    let mut fail_total = 0;
    let mut fail_rejected = 0;
    let mut accepted = Vec::new();
    for case in &cases {
        for variant in case.variants("parse-fail") {
            fail_total += 1;
            let rel = format!("qemuxml2argvdata/{}.xml", case.stem);
            let err_rel = if variant == "fake" {
                format!("qemuxml2argvdata/{}.err", case.stem)
            } else {
                format!("qemuxml2argvdata/{}.x86_64-{variant}.err", case.stem)
            };
            let want = fs::read_to_string(lv.join(&err_rel)).unwrap_or_default();
            let Ok(input) = fs::read(lv.join(&rel)) else {
                continue;
            };
            let c = if variant == "fake" {
                caps.fake(&case.argv_flags("fake", true))
            } else {
                match caps.real(&variant, &case.argv_flags(&variant, true)) {
                    Ok(c) => c,
                    Err(_) => continue,
                }
            };
            match no_panic(|| build_case(&input, &rel, &c)) {
                Ok(_) => accepted.push(format!("{}@{variant}", case.stem)),
                Err(e) if e.starts_with("PANIC") => {
                    panics.push(format!("{}@{variant}: {e}", case.stem))
                }
                Err(e) => {
                    fail_rejected += 1;
                    println!(
                        "reject {}@{variant}: {e}\n        libvirt: {}",
                        case.stem,
                        want.trim()
                    );
                }
            }
        }
    }

    // qemuxml2xml: measured, not gated.
    // (checked, matching) for real capability data and for hand-picked
    // flags; the profile models a real binary, so the first is the signal.
    let mut xml_real = (0, 0);
    let mut xml_fake = (0, 0);
    let mut xml_seen = BTreeSet::new();
    for case in &cases {
        for kind in ["xml-same", "xml-different", "xml-split"] {
            for variant in case.variants(kind) {
                let Some(want_path) = xml_expected(&lv, case, kind, &variant) else {
                    continue;
                };
                if !xml_seen.insert(want_path.clone()) {
                    continue;
                }
                let tally = if variant == "fake" {
                    &mut xml_fake
                } else {
                    &mut xml_real
                };
                tally.0 += 1;
                let rel = format!("qemuxml2argvdata/{}.xml", case.stem);
                let (Ok(input), Ok(want)) =
                    (fs::read(lv.join(&rel)), fs::read_to_string(&want_path))
                else {
                    continue;
                };
                let got = no_panic(|| {
                    let def = DomainDef::parse_named(&input, &rel).map_err(|e| e.to_string())?;
                    Ok(def.to_xml_canonical(
                        &QemuProfile,
                        &FormatOptions {
                            id: None,
                            inactive: true,
                            secure: true,
                        },
                    ))
                });
                match got {
                    Ok(g) if g.trim_end() == want.trim_end() => tally.1 += 1,
                    Ok(g) => {
                        let n = want
                            .lines()
                            .zip(g.lines())
                            .take_while(|(a, b)| a == b)
                            .count();
                        println!(
                            "XML   {}@{variant}: line {}: want `{}` got `{}`",
                            case.stem,
                            n + 1,
                            want.lines().nth(n).unwrap_or("").trim(),
                            g.lines().nth(n).unwrap_or("").trim()
                        );
                    }
                    Err(e) if e.starts_with("PANIC") => {
                        panics.push(format!("{}@{variant} xml: {e}", case.stem))
                    }
                    Err(e) => println!("XML   {}@{variant}: rejected: {e}", case.stem),
                }
            }
        }
    }

    println!("\nmisses by reason (args@latest and args@X.Y.Z):");
    let mut by_size: Vec<(&String, &Vec<String>)> = groups.iter().collect();
    by_size.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    for (reason, list) in by_size {
        println!("  {:>3}  {reason}: {}", list.len(), list.join(" "));
    }
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "\nqemuxml2argv args@latest: {latest_ok}/{latest_total} match exactly ({:.1}%)",
        pct(latest_ok, latest_total)
    );
    println!(
        "qemuxml2argv args@X.Y.Z: {ver_ok}/{ver_total} match exactly ({:.1}%)",
        pct(ver_ok, ver_total)
    );
    println!("qemuxml2argv args@fake (build only, not compared): {fake_built}/{fake_total} built");
    println!("qemuxml2argv parse-fail: {fail_rejected}/{fail_total} rejected");
    println!(
        "qemuxml2xml through QemuProfile (inactive), real capabilities: {}/{} match ({:.1}%)",
        xml_real.1,
        xml_real.0,
        pct(xml_real.1, xml_real.0)
    );
    println!(
        "qemuxml2xml through QemuProfile (inactive), hand-picked flags: {}/{} match ({:.1}%)",
        xml_fake.1,
        xml_fake.0,
        pct(xml_fake.1, xml_fake.0)
    );

    // Every other domain document of the two folders (other architectures,
    // error cases, round-trip-only inputs) must not panic either.
    let mut swept = 0;
    if let Ok(latest) = caps.real("latest", &[]) {
        for dir in ["qemuxml2argvdata", "qemuxml2xmloutdata"] {
            let Ok(rd) = fs::read_dir(lv.join(dir)) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .collect();
            files.sort();
            for f in files {
                let Ok(bytes) = fs::read(&f) else { continue };
                let rel = f.strip_prefix(&lv).unwrap_or(&f).display().to_string();
                swept += 1;
                if let Err(e) = no_panic(|| build_case(&bytes, &rel, &latest))
                    && e.starts_with("PANIC")
                {
                    panics.push(format!("{rel}: {e}"));
                }
            }
        }
    }
    println!(
        "robustness: {swept} further domain documents built, {} panicked",
        panics.len()
    );

    assert!(
        panics.is_empty(),
        "inputs that panicked:\n{}",
        panics.join("\n")
    );
    assert!(
        accepted.is_empty(),
        "inputs libvirt rejects were accepted: {accepted:?}"
    );
    let rate = latest_ok as f64 / latest_total.max(1) as f64;
    assert!(
        rate >= REQUIRED_LATEST_RATE,
        "args@latest match rate {:.1}% is below {:.0}%",
        rate * 100.0,
        REQUIRED_LATEST_RATE * 100.0
    );
}

/// `host-model` runs as QEMU's host CPU limited to migratable features
/// under KVM (libvirt expands it with its own CPU map instead: the
/// `cpu-host-model` cases stay misses); under TCG it is refused clearly.
#[test]
fn host_model_runs_as_the_migratable_host_cpu() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: host_model: no corpus");
        return;
    };
    let mut data = CapsData::new(&root.join("libvirt"));
    let caps = data.real("latest", &[]).unwrap();
    let xml = |ty: &str| {
        format!(
            "<domain type='{ty}'><name>hm</name><memory>131072</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <cpu mode='host-model' check='partial'><feature policy='disable' name='vmx'/></cpu>\
             </domain>"
        )
    };
    let args = build_case(xml("kvm").as_bytes(), "hm.xml", &caps).unwrap();
    assert!(
        args.contains("-cpu host,migratable=on,vmx=off \\"),
        "{args}"
    );
    let err = build_case(xml("qemu").as_bytes(), "hm.xml", &caps).unwrap_err();
    assert!(
        err.contains("needs KVM") && err.contains("/domain/cpu/@mode"),
        "{err}"
    );
}
