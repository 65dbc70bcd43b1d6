//! The network commands that need no hypervisor: `xml-format --kind
//! network` prints exactly what the library's canonical formatter prints
//! (so the networkxml2xml golden results hold for the command), and
//! `net-dnsmasq-conf` exactly libvirt's dnsmasq configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use virtkit::network::{FormatOptions, NetworkDef};

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt").is_dir().then_some(dir)
}

fn virtkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_virtkit"))
        .args(args)
        .output()
        .expect("run virtkit")
}

#[test]
fn xml_format_network_prints_the_canonical_form() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: no corpus (set VIRTKIT_CORPUS)");
        return;
    };
    let dir = root.join("libvirt/networkxml2xmlin");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        let p = path.to_str().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let o = virtkit(&["-q", "xml-format", "--kind", "network", p]);
        match NetworkDef::parse_named(&bytes, p) {
            Ok(d) => {
                assert!(o.status.success(), "{p}");
                assert_eq!(
                    String::from_utf8_lossy(&o.stdout),
                    d.to_xml_canonical(&FormatOptions::default()),
                    "{p}"
                );
            }
            Err(e) => {
                assert_eq!(o.status.code(), Some(1), "{p}");
                assert_eq!(String::from_utf8_lossy(&o.stderr), format!("error: {e}\n"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 30);
}

#[cfg(feature = "network")]
#[test]
fn net_dnsmasq_conf_prints_libvirts_configuration() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: no corpus (set VIRTKIT_CORPUS)");
        return;
    };
    let dir = root.join("libvirt/networkxml2confdata");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        let o = virtkit(&["-q", "net-dnsmasq-conf", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", path.display());
        let want = std::fs::read_to_string(path.with_extension("conf")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            want,
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 20);
}
