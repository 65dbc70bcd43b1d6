//! Every XML file of the libvirt corpus parses (or fails with a positioned
//! error) and its as-defined output is byte-identical to the input; domain
//! documents also go through validation and canonical formatting without a
//! panic.
//!
//! The corpus is found through `VIRTKIT_CORPUS`, else
//! `<workspace>/../shared/corpus`; without it the test prints why it skipped.

use std::path::{Path, PathBuf};

use virtkit_core::domain::{DomainDef, FormatOptions, GenericProfile};
use virtkit_core::xml::{ParseOptions, parse_with};

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt").is_dir().then_some(dir)
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            xml_files(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| e == "xml" || e == "rng" || e == "vbox")
        {
            out.push(p);
        }
    }
}

#[test]
fn every_corpus_document_round_trips_byte_for_byte() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: no corpus (set VIRTKIT_CORPUS or check out ../shared/corpus)");
        return;
    };
    let mut files = Vec::new();
    xml_files(&root.join("libvirt"), &mut files);
    assert!(
        files.len() > 1000,
        "expected the whole corpus, found {}",
        files.len()
    );

    let (mut parsed, mut refused, mut domains, mut domain_errors) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let opts = ParseOptions {
            source: Some(f.display().to_string()),
            ..ParseOptions::default()
        };
        match parse_with(&bytes, &opts) {
            Ok(doc) => {
                parsed += 1;
                let out = doc.to_string_as_defined();
                if out.as_bytes() != bytes.as_slice() {
                    failures.push(format!("{}: as-defined output differs", f.display()));
                }
                if doc.root.name() == "domain" {
                    domains += 1;
                    match DomainDef::from_document(doc) {
                        Ok(def) => {
                            let _ =
                                def.to_xml_canonical(&GenericProfile, &FormatOptions::default());
                        }
                        Err(_) => domain_errors += 1,
                    }
                }
            }
            Err(e) => {
                refused += 1;
                match e.xml_location() {
                    Some(loc) if loc.line >= 1 && loc.column >= 1 => {}
                    _ => failures.push(format!("{}: error without a position: {e}", f.display())),
                }
            }
        }
    }
    println!(
        "{} corpus files: {parsed} parsed and written back byte-identical, {refused} refused \
         with a positioned error; {domains} domain documents ({domain_errors} rejected by validation)",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
