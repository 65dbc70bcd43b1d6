//! Golden test: libvirt 9.0.0's `genericxml2xml` suite through virtkit's
//! canonical formatter, plus a fixed-point measure over the other
//! libvirt-formatted domain documents of the corpus.
//!
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the test prints why it skipped.
//! Run with `--nocapture` to see the per-case table and the percentages.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use virtkit_core::domain::{DomainDef, FormatOptions, GenericProfile};

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

/// One row of `index.tsv`.
struct Case {
    suite: String,
    stem: String,
    files: Vec<String>,
    expect: String,
    flags: String,
}

fn read_index(lv: &Path) -> Vec<Case> {
    let text = fs::read_to_string(lv.join("index.tsv")).expect("index.tsv is readable");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 5).then(|| Case {
                suite: cols[0].to_string(),
                stem: cols[1].to_string(),
                files: cols[2].split(' ').map(str::to_string).collect(),
                expect: cols[3].to_string(),
                flags: cols[4].to_string(),
            })
        })
        .collect()
}

/// Parses and prints `bytes` canonically. A live document keeps the
/// domain id it was printed with.
fn canonical(bytes: &[u8], name: &str, inactive: bool) -> Result<String, String> {
    let def = DomainDef::parse_named(bytes, name).map_err(|e| e.to_string())?;
    let id = def.root().attr("id").and_then(|v| v.parse().ok());
    let opts = FormatOptions {
        id: if inactive { None } else { id },
        inactive,
        secure: true,
    };
    Ok(def.to_xml_canonical(&GenericProfile, &opts))
}

/// The first differing line of two texts, for the report.
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

/// Outcome of one genericxml2xml case: `Ok` or the reason it failed.
fn run_case(lv: &Path, case: &Case) -> Result<(), String> {
    let input = lv.join(format!("genericxml2xmlindata/{}.xml", case.stem));
    let bytes = fs::read(&input).map_err(|e| format!("cannot read input: {e}"))?;
    let inactive = case.flags.split_whitespace().any(|f| f == "inactive");
    let name = input.display().to_string();
    match case.expect.as_str() {
        "parse-fail" => match canonical(&bytes, &name, inactive) {
            Ok(_) => Err("parsed, but libvirt rejects this input".into()),
            Err(_) => Ok(()),
        },
        "same" | "different" => {
            let want_path = if case.expect == "same" {
                input.clone()
            } else {
                lv.join(format!("genericxml2xmloutdata/{}.xml", case.stem))
            };
            let want = fs::read_to_string(&want_path).map_err(|e| format!("no output: {e}"))?;
            let got = canonical(&bytes, &name, inactive)?;
            if got.trim_end() == want.trim_end() {
                Ok(())
            } else {
                Err(first_diff(&want, &got))
            }
        }
        other => Err(format!("unknown expectation `{other}`")),
    }
}

#[test]
fn genericxml2xml_matches_libvirt() {
    let Some(root) = corpus_root() else {
        println!("SKIP: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let cases: Vec<Case> = read_index(&lv)
        .into_iter()
        .filter(|c| c.suite == "genericxml2xml")
        .collect();
    assert!(!cases.is_empty(), "no genericxml2xml cases in index.tsv");

    let mut passed = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    println!("{:<52} {:<11} result", "case", "expect");
    for case in &cases {
        let outcome = run_case(&lv, case);
        let listed = KNOWN_MISSES.iter().any(|(n, _)| *n == case.stem);
        match &outcome {
            Ok(()) => {
                passed += 1;
                println!("{:<52} {:<11} ok", case.stem, case.expect);
                if listed {
                    fixed.push(case.stem.clone());
                }
            }
            Err(why) => {
                println!("{:<52} {:<11} FAIL {why}", case.stem, case.expect);
                if !listed {
                    unexpected.push(format!("{}: {why}", case.stem));
                }
            }
        }
    }
    let rate = passed as f64 / cases.len() as f64;
    println!(
        "genericxml2xml: {passed}/{} passed ({:.1}%)",
        cases.len(),
        rate * 100.0
    );
    let stale: Vec<_> = KNOWN_MISSES
        .iter()
        .filter(|(n, _)| !cases.iter().any(|c| c.stem == *n))
        .map(|(n, _)| *n)
        .collect();
    assert!(
        unexpected.is_empty(),
        "cases failing that KNOWN_MISSES does not list:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "cases in KNOWN_MISSES that now pass (remove them): {fixed:?}"
    );
    assert!(
        stale.is_empty(),
        "KNOWN_MISSES names unknown cases: {stale:?}"
    );
    assert!(
        rate >= REQUIRED_PASS_RATE,
        "pass rate {:.1}% is below {:.0}%",
        rate * 100.0,
        REQUIRED_PASS_RATE * 100.0
    );
}

/// Every document libvirt itself printed, outside genericxml2xml: formatting
/// it again must give the same bytes (unless a driver-specific default is
/// missing from the generic profile).
fn libvirt_formatted_documents(lv: &Path) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for case in read_index(lv) {
        let tokens: Vec<&str> = case.expect.split_whitespace().collect();
        let same = match case.suite.as_str() {
            "lxcxml2xml" => tokens.contains(&"same"),
            "bhyvexml2argv" | "qemuxml2argv" => tokens.iter().any(|t| t.starts_with("xml-same")),
            _ => false,
        };
        if same {
            // The input of a round trip whose output equals it.
            if let Some(f) = case
                .files
                .iter()
                .find(|f| f.ends_with(".xml") && !f.contains("outdata"))
            {
                files.insert(lv.join(f));
            }
        }
    }
    for dir in [
        "qemuxml2xmloutdata",
        "lxcxml2xmloutdata",
        "bhyvexml2xmloutdata",
        "vmx2xmldata",
        "xlconfigdata",
    ] {
        if let Ok(rd) = fs::read_dir(lv.join(dir)) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "xml") {
                    files.insert(p);
                }
            }
        }
    }
    files.into_iter().collect()
}

#[test]
fn libvirt_formatted_documents_are_fixed_points() {
    let Some(root) = corpus_root() else {
        println!("SKIP: corpus not found (set VIRTKIT_CORPUS or add ../shared/corpus)");
        return;
    };
    let lv = root.join("libvirt");
    let files = libvirt_formatted_documents(&lv);
    let mut same = 0;
    let mut rejected = 0;
    let mut changed = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&lv).unwrap_or(f).display().to_string();
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        match canonical(text.as_bytes(), &rel, false) {
            Ok(out) if out.trim_end() == text.trim_end() => same += 1,
            Ok(out) => changed.push(format!("{rel}: {}", first_diff(&text, &out))),
            Err(e) => {
                rejected += 1;
                changed.push(format!("{rel}: rejected: {e}"));
            }
        }
    }
    for c in &changed {
        println!("changed {c}");
    }
    // Per folder, to tell driver-specific differences (vmx2xmldata: the
    // VMware converter prints no default <boot>) from general ones.
    let mut per_dir: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for c in &changed {
        *per_dir
            .entry(c.split('/').next().unwrap_or(""))
            .or_default() += 1;
    }
    for (dir, n) in &per_dir {
        println!("changed in {dir}: {n}");
    }
    println!(
        "fixed point: {same}/{} libvirt-formatted documents unchanged ({:.1}%), {rejected} rejected",
        files.len(),
        100.0 * same as f64 / files.len().max(1) as f64
    );
}
