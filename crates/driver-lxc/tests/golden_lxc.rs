//! Golden tests: libvirt 9.0.0's `lxcxml2xml` suite (LXC domain XML through
//! the canonical formatter with the LXC driver's defaults) and
//! `lxcconf2xml` suite (lxc-tools configuration to domain XML), compared
//! byte for byte.
//!
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the tests print why they
//! skipped. Run with `--nocapture` for the per-case table.

use std::fs;
use std::path::{Path, PathBuf};

use virtkit_core::domain::{DomainDef, FormatOptions};
use virtkit_driver_lxc::native;
use virtkit_driver_lxc::profile::LxcProfile;

/// Cases (stem, variant) that do not pass yet, with the reason. The test
/// fails when a case outside this list fails, and when a listed one passes.
const KNOWN_MISSES: &[(&str, &str)] = &[];

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt/index.tsv").is_file().then_some(dir)
}

struct Case {
    stem: String,
    files: Vec<String>,
    expect: String,
}

fn cases(lv: &Path, suite: &str) -> Vec<Case> {
    let text = fs::read_to_string(lv.join("index.tsv")).expect("index.tsv is readable");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 5 && cols[0] == suite).then(|| Case {
                stem: cols[1].to_string(),
                files: cols[2].split(' ').map(str::to_string).collect(),
                expect: cols[3].to_string(),
            })
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

/// Runs `checks` (name, outcome), prints the table and the misses grouped
/// by reason, and enforces the pass rate and the known-miss list.
fn report(suite: &str, checks: Vec<(String, Result<(), String>)>, required: f64) {
    let mut passed = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut by_reason: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, outcome) in &checks {
        let listed = KNOWN_MISSES.iter().find(|(n, _)| n == name);
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("{name:<40} ok");
                if listed.is_some() {
                    fixed.push(name.clone());
                }
            }
            Err(why) => {
                println!("{name:<40} FAIL {why}");
                let reason = listed.map_or_else(|| why.clone(), |(_, r)| r.to_string());
                by_reason.entry(reason).or_default().push(name.clone());
                if listed.is_none() {
                    unexpected.push(format!("{name}: {why}"));
                }
            }
        }
    }
    let rate = passed as f64 / checks.len() as f64;
    println!(
        "{suite}: {passed}/{} byte-identical ({:.1}%)",
        checks.len(),
        rate * 100.0
    );
    for (reason, names) in &by_reason {
        println!("  miss ({}): {reason}: {}", names.len(), names.join(", "));
    }
    assert!(
        unexpected.is_empty(),
        "{suite}: cases failing that KNOWN_MISSES does not list:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "{suite}: listed misses now pass: {fixed:?}"
    );
    assert!(
        rate >= required,
        "{suite}: {:.1}% is below {:.0}%",
        rate * 100.0,
        required * 100.0
    );
}

#[test]
fn lxcxml2xml_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIPPED: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let cases = cases(&lv, "lxcxml2xml");
    assert!(!cases.is_empty(), "no lxcxml2xml cases in index.tsv");
    let mut checks = Vec::new();
    for c in &cases {
        let input = lv.join(&c.files[0]);
        let want_file = c.files.last().expect("a file");
        let outcome = (|| -> Result<(), String> {
            let bytes = fs::read(&input).map_err(|e| e.to_string())?;
            let want = fs::read_to_string(lv.join(want_file)).map_err(|e| e.to_string())?;
            let def = DomainDef::parse_named(&bytes, &input.display().to_string())
                .map_err(|e| format!("parse: {e}"))?;
            // libvirt's test formats the definition as live and secure.
            let got = def.to_xml_canonical(
                &LxcProfile,
                &FormatOptions {
                    id: None,
                    inactive: false,
                    secure: true,
                },
            );
            if got.trim_end() == want.trim_end() {
                Ok(())
            } else {
                Err(first_diff(&want, &got))
            }
        })();
        checks.push((c.stem.clone(), outcome));
    }
    report("lxcxml2xml", checks, 0.95);
}

/// libvirt's test replaces the random UUID by this one before comparing.
const CONF_UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

#[test]
fn lxcconf2xml_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIPPED: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let cases = cases(&lv, "lxcconf2xml");
    assert!(!cases.is_empty(), "no lxcconf2xml cases in index.tsv");
    let mut checks = Vec::new();
    for c in &cases {
        for (variant, suffix) in [("", ".config"), ("-v3", "-v3.config")] {
            let name = format!("{}{variant}", c.stem);
            let Some(cfg) = c.files.iter().find(|f| {
                f.ends_with(&format!("{}{suffix}", c.stem))
                    && (variant == "-v3") == f.ends_with("-v3.config")
            }) else {
                continue;
            };
            let outcome = (|| -> Result<(), String> {
                let config = fs::read_to_string(lv.join(cfg)).map_err(|e| e.to_string())?;
                let result = native::to_xml(&config);
                if c.expect == "parse-fail" {
                    return match result {
                        Ok(_) => Err("converted, but libvirt rejects this input".into()),
                        Err(_) => Ok(()),
                    };
                }
                let got = result.map_err(|e| format!("conversion failed: {e}"))?;
                let got: String = got
                    .lines()
                    .map(|l| {
                        if l.trim_start().starts_with("<uuid>") {
                            format!("  <uuid>{CONF_UUID}</uuid>")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let xml = c
                    .files
                    .iter()
                    .find(|f| f.ends_with(".xml"))
                    .ok_or("no .xml")?;
                let want = fs::read_to_string(lv.join(xml)).map_err(|e| e.to_string())?;
                if got.trim_end() == want.trim_end() {
                    Ok(())
                } else {
                    Err(first_diff(&want, &got))
                }
            })();
            checks.push((name, outcome));
        }
    }
    report("lxcconf2xml", checks, 0.80);
}
