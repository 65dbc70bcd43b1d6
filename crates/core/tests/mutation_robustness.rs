//! Robustness: mutated corpus documents (truncation, byte flips, deep
//! nesting, huge attributes, invalid UTF-8, entity expansion, spliced
//! markup) never panic and never hang; what is refused is refused with a
//! positioned error, and what is accepted still round-trips byte for byte
//! and survives validation and canonical formatting.
//!
//! Deterministic: the seed is fixed (override with `VIRTKIT_FUZZ_SEED`), and
//! the number of documents with `VIRTKIT_FUZZ_CASES` (default 10,000).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use virtkit_core::domain::{DomainDef, FormatOptions, GenericProfile};
use virtkit_core::xml::{ParseOptions, parse_with};

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt").is_dir().then_some(dir)
}

/// xorshift64*: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const MARKUP: &[&[u8]] = &[
    b"<",
    b">",
    b"&",
    b"&amp",
    b"&#0;",
    b"&#x110000;",
    b"'",
    b"\"",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version='1.0'?>",
    b"<![CDATA[",
    b"</",
    b"/>",
    b"<x:y",
    b" a='1' a='2'",
    b"\0",
    b"<!DOCTYPE d>",
    b"=",
];

fn mutate(rng: &mut Rng, doc: &[u8]) -> (Vec<u8>, &'static str) {
    let mut d = doc.to_vec();
    let at = |rng: &mut Rng, d: &Vec<u8>| rng.below(d.len() + 1);
    match rng.below(10) {
        0 => {
            let n = at(rng, &d);
            d.truncate(n);
            (d, "truncation")
        }
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !d.is_empty() {
                    let i = rng.below(d.len());
                    d[i] ^= 1 << rng.below(8);
                }
            }
            (d, "byte flips")
        }
        2 => {
            let depth = 100 + rng.below(3000);
            let i = d.windows(2).position(|w| w == b"/>").map_or(0, |p| p);
            let open = b"<n>".repeat(depth);
            let close = if rng.below(2) == 0 {
                b"</n>".repeat(depth)
            } else {
                Vec::new()
            };
            d.splice(i..i, open.into_iter().chain(close));
            (d, "deep nesting")
        }
        3 => {
            let size = 1 + rng.below(256 * 1024);
            let i = d.iter().position(|b| *b == b'>').unwrap_or(0);
            let mut attr = b" huge='".to_vec();
            attr.extend(std::iter::repeat_n(b'A', size));
            attr.push(b'\'');
            d.splice(i..i, attr);
            (d, "huge attribute")
        }
        4 => {
            let i = at(rng, &d);
            let bad: &[u8] = match rng.below(4) {
                0 => b"\xff",
                1 => b"\xc3",
                2 => b"\xed\xa0\x80",
                _ => b"\xf4\x90\x80\x80",
            };
            d.splice(i..i, bad.iter().copied());
            (d, "invalid UTF-8")
        }
        5 => {
            let mut p = b"<!DOCTYPE domain [<!ENTITY a \"aaaaaaaaaa\">".to_vec();
            for k in 1..10 {
                p.extend(
                    format!(
                        "<!ENTITY e{k} \"&e{};&e{};&e{};&e{};\">",
                        k - 1,
                        k - 1,
                        k - 1,
                        k - 1
                    )
                    .bytes(),
                );
            }
            p.extend(b"]>");
            let mut d2 = p;
            let body = String::from_utf8_lossy(&d).replace("<name>", "<name>&e9;");
            d2.extend(body.bytes());
            (d2, "entity expansion")
        }
        6 => {
            if !d.is_empty() {
                let i = rng.below(d.len());
                let j = (i + 1 + rng.below(64)).min(d.len());
                d.drain(i..j);
            }
            (d, "deletion")
        }
        7 => {
            if !d.is_empty() {
                let i = rng.below(d.len());
                let j = (i + 1 + rng.below(200)).min(d.len());
                let piece: Vec<u8> = d[i..j].to_vec();
                let k = at(rng, &d);
                d.splice(k..k, piece);
            }
            (d, "splice")
        }
        _ => {
            for _ in 0..1 + rng.below(3) {
                let m = MARKUP[rng.below(MARKUP.len())];
                let i = at(rng, &d);
                d.splice(i..i, m.iter().copied());
            }
            (d, "markup insertion")
        }
    }
}

/// Checks one document; returns a failure description.
fn check(bytes: &[u8]) -> Option<String> {
    let opts = ParseOptions {
        source: Some("(fuzz)".into()),
        ..ParseOptions::default()
    };
    match parse_with(bytes, &opts) {
        Ok(doc) => {
            let out = doc.to_string_as_defined();
            if out.as_bytes() != bytes {
                return Some("accepted, but the as-defined output differs".into());
            }
            if doc.root.name() == "domain" {
                match DomainDef::from_document(doc) {
                    Ok(def) => {
                        let _ = def.to_xml_canonical(&GenericProfile, &FormatOptions::default());
                    }
                    Err(e) => {
                        if e.kind() == virtkit_core::ErrorKind::XmlError
                            && e.xml_location().is_none()
                        {
                            return Some(format!("XML error without a position: {e}"));
                        }
                    }
                }
            }
            None
        }
        Err(e) => match e.xml_location() {
            Some(l) if l.line >= 1 && l.column >= 1 => None,
            _ => Some(format!("refused without a position: {e}")),
        },
    }
}

#[test]
fn mutated_documents_never_panic_or_hang() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: no corpus (set VIRTKIT_CORPUS or check out ../shared/corpus)");
        return;
    };
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for dir in [
        "genericxml2xmlindata",
        "qemuxml2argvdata",
        "networkxml2xmlin",
        "lxcxml2xmldata",
    ] {
        let mut names: Vec<_> = std::fs::read_dir(root.join("libvirt").join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        names.sort();
        seeds.extend(names.iter().take(60).map(|p| std::fs::read(p).unwrap()));
    }
    let cases: usize = std::env::var("VIRTKIT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::var("VIRTKIT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001);

    // The work runs on its own thread so that a hang is reported, not waited on.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut failures = Vec::new();
        let mut refused = 0usize;
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for n in 0..cases {
            let base = &seeds[rng.below(seeds.len())];
            let (doc, kind) = mutate(&mut rng, base);
            *kinds.entry(kind).or_default() += 1;
            let res = std::panic::catch_unwind(|| check(&doc));
            match res {
                Ok(None) => {}
                Ok(Some(msg)) => failures.push(format!("case {n} ({kind}): {msg}")),
                Err(_) => failures.push(format!("case {n} ({kind}): PANIC")),
            }
            if parse_with(&doc, &ParseOptions::default()).is_err() {
                refused += 1;
            }
        }
        let _ = tx.send((failures, refused, kinds));
    });
    let (failures, refused, kinds) = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("mutated documents took over 10 minutes: a parse hangs");
    println!(
        "{cases} mutated documents (seed {seed:#x}): {refused} refused with a positioned error; by mutation: {kinds:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
