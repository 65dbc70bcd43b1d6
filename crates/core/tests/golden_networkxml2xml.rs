//! Golden test: libvirt 9.0.0's `networkxml2xml` suite through virtkit's
//! canonical network formatter (with the `VIR_NETWORK_XML_INACTIVE` flag
//! where the suite uses it, and the inputs libvirt must reject).
//!
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the test prints why it skipped.
//! Run with `--nocapture` to see the per-case table and the percentage.

use std::fs;
use std::path::{Path, PathBuf};

use virtkit_core::network::{FormatOptions, NetworkDef};

/// Cases that do not pass yet, with the reason. The test fails when a case
/// outside this list fails, and when a listed case starts passing.
const KNOWN_MISSES: &[(&str, &str)] = &[];

/// Share of the suite that must pass.
const REQUIRED_PASS_RATE: f64 = 0.95;

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt/index.tsv").is_file().then_some(dir)
}

/// One `networkxml2xml` row of `index.tsv`: stem, expectation, flags.
fn cases(lv: &Path) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(lv.join("index.tsv")).expect("index.tsv is readable");
    text.lines()
        .filter_map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            (c.len() >= 5 && c[0] == "networkxml2xml")
                .then(|| (c[1].to_string(), c[3].to_string(), c[4].to_string()))
        })
        .collect()
}

fn first_diff(want: &str, got: &str) -> String {
    for (i, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            return format!("line {}: want `{}` got `{}`", i + 1, a.trim(), b.trim());
        }
    }
    format!(
        "length differs: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

fn run_case(lv: &Path, stem: &str, expect: &str, flags: &str) -> Result<(), String> {
    let input = lv.join(format!("networkxml2xmlin/{stem}.xml"));
    let bytes = fs::read(&input).map_err(|e| format!("cannot read input: {e}"))?;
    let parsed = NetworkDef::parse_named(&bytes, &input.display().to_string());
    if expect == "parse-fail" {
        return match parsed {
            Ok(_) => Err("parsed, but libvirt rejects this input".into()),
            Err(_) => Ok(()),
        };
    }
    let def = parsed.map_err(|e| format!("rejected: {e}"))?;
    let opts = FormatOptions {
        inactive: flags.contains("VIR_NETWORK_XML_INACTIVE"),
    };
    let got = def.to_xml_canonical(&opts);
    let want = fs::read_to_string(lv.join(format!("networkxml2xmlout/{stem}.xml")))
        .map_err(|e| format!("no expected output: {e}"))?;
    if got.trim_end() == want.trim_end() {
        Ok(())
    } else {
        Err(first_diff(&want, &got))
    }
}

#[test]
fn networkxml2xml_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIP: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let cases = cases(&lv);
    assert!(!cases.is_empty(), "no networkxml2xml cases in index.tsv");
    let (mut passed, mut unexpected, mut fixed) = (0, Vec::new(), Vec::new());
    for (stem, expect, flags) in &cases {
        let outcome = run_case(&lv, stem, expect, flags);
        let listed = KNOWN_MISSES.iter().any(|(n, _)| n == stem);
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("{stem:<44} {expect:<11} ok");
                if listed {
                    fixed.push(stem.clone());
                }
            }
            Err(why) => {
                println!("{stem:<44} {expect:<11} FAIL {why}");
                if !listed {
                    unexpected.push(format!("{stem}: {why}"));
                }
            }
        }
    }
    let rate = passed as f64 / cases.len() as f64;
    println!(
        "networkxml2xml: {passed}/{} byte-identical or rejected as libvirt does ({:.1}%)",
        cases.len(),
        rate * 100.0
    );
    let stale: Vec<_> = KNOWN_MISSES
        .iter()
        .filter(|(n, _)| !cases.iter().any(|c| c.0 == *n))
        .collect();
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
        stale.is_empty(),
        "KNOWN_MISSES names unknown cases: {stale:?}"
    );
    assert!(
        rate >= REQUIRED_PASS_RATE,
        "pass rate {:.1}% is below 95%",
        rate * 100.0
    );
}
