//! Golden test: libvirt 9.0.0's `networkxml2conf` suite. Each network is
//! parsed and its dnsmasq configuration generated with the inputs of
//! libvirt's harness (a dnsmasq 2.67 capability set, state directory
//! `/var/lib/libvirt/dnsmasq`, no PID file); the `.conf` file and, where
//! present, the `.hostsfile` must match byte for byte (without one, no
//! hosts may be produced).
//!
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the test prints why it skipped.

use std::fs;
use std::path::{Path, PathBuf};

use virtkit_core::network::NetworkDef;
use virtkit_network::dnsmasq::{self, ConfParams, DnsmasqCaps};

/// Cases that do not pass yet, with the reason.
const KNOWN_MISSES: &[(&str, &str)] = &[];

/// Share of the suite that must pass.
const REQUIRED_PASS_RATE: f64 = 0.90;

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt/index.tsv").is_file().then_some(dir)
}

fn first_diff(want: &str, got: &str) -> String {
    for (i, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            return format!("line {}: want `{a}` got `{b}`", i + 1);
        }
    }
    format!(
        "length differs: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

fn run_case(dir: &Path, stem: &str, expect: &str) -> Result<(), String> {
    let input = dir.join(format!("{stem}.xml"));
    let bytes = fs::read(&input).map_err(|e| format!("cannot read input: {e}"))?;
    let def = NetworkDef::parse_named(&bytes, &input.display().to_string())
        .map_err(|e| format!("rejected: {e}"))?;
    let out = dnsmasq::generate(
        def.model(),
        &DnsmasqCaps::test_2_67(),
        &ConfParams::libvirt_test(),
    )
    .map_err(|e| format!("no configuration: {e}"))?;
    let want = fs::read_to_string(dir.join(format!("{stem}.conf")))
        .map_err(|e| format!("no expected .conf: {e}"))?;
    if out.conf != want {
        return Err(format!("conf {}", first_diff(&want, &out.conf)));
    }
    if expect.contains("hostsfile") {
        let want = fs::read_to_string(dir.join(format!("{stem}.hostsfile")))
            .map_err(|e| format!("no expected .hostsfile: {e}"))?;
        if out.hostsfile != want {
            return Err(format!("hostsfile {}", first_diff(&want, &out.hostsfile)));
        }
    } else if !out.hostsfile.is_empty() {
        return Err(format!(
            "unexpected hosts file content: {:?}",
            out.hostsfile
        ));
    }
    Ok(())
}

#[test]
fn networkxml2conf_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIP: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let index = fs::read_to_string(lv.join("index.tsv")).expect("index.tsv is readable");
    let cases: Vec<(String, String)> = index
        .lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() >= 4 && c[0] == "networkxml2conf")
                .then(|| (c[1].to_string(), c[3].to_string()))
        })
        .collect();
    assert!(!cases.is_empty(), "no networkxml2conf cases in index.tsv");
    let dir = lv.join("networkxml2confdata");
    let (mut passed, mut unexpected, mut fixed) = (0, Vec::new(), Vec::new());
    for (stem, expect) in &cases {
        let listed = KNOWN_MISSES.iter().any(|(n, _)| n == stem);
        match run_case(&dir, stem, expect) {
            Ok(()) => {
                passed += 1;
                println!("{stem:<40} {expect:<15} ok");
                if listed {
                    fixed.push(stem.clone());
                }
            }
            Err(why) => {
                println!("{stem:<40} {expect:<15} FAIL {why}");
                if !listed {
                    unexpected.push(format!("{stem}: {why}"));
                }
            }
        }
    }
    let rate = passed as f64 / cases.len() as f64;
    println!(
        "networkxml2conf: {passed}/{} byte-identical ({:.1}%)",
        cases.len(),
        rate * 100.0
    );
    assert!(
        unexpected.is_empty(),
        "failing cases not in KNOWN_MISSES:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "KNOWN_MISSES cases that now pass (remove them): {fixed:?}"
    );
    assert!(
        rate >= REQUIRED_PASS_RATE,
        "pass rate {:.1}% is below 90%",
        rate * 100.0
    );
}
