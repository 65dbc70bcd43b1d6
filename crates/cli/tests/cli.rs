//! The `virtkit` binary's own behaviour: JSON output, commands from standard
//! input, global options, and `xml-format` giving exactly what the library's
//! canonical formatter gives (so the golden corpus results of
//! `virtkit-core` hold for the command too).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use virtkit::domain::{DomainDef, FormatOptions, GenericProfile};

fn virtkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtkit"));
    c.env_remove("VIRTKIT_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI");
    c
}

fn run(args: &[&str]) -> Output {
    virtkit().args(args).output().expect("run virtkit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_listing_and_info() {
    let o = run(&[
        "-c",
        "test:///default",
        "list --all --json; dominfo test --json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut docs = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let list = docs.next().unwrap().unwrap();
    assert_eq!(list[0]["name"], "test");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["state"], "running");
    let info = docs.next().unwrap().unwrap();
    assert_eq!(info["max_memory_kib"], 8388608);
    assert_eq!(info["persistent"], true);

    let o = run(&["-c", "test:///default", "nodeinfo --json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cpus"], 16);
    let o = run(&["-c", "test:///default", "net-list --all --json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["bridge"], "virbr0");
}

#[test]
fn commands_from_standard_input_share_one_host() {
    let mut child = virtkit()
        .args(["-q", "-c", "test:///default"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"destroy test\n# a comment\ndomstate --reason test\nbogus\nstart test; domid test\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        stdout(&o),
        "Domain 'test' destroyed\nshut off (destroyed)\nDomain 'test' started\n2\n"
    );
    assert_eq!(stderr(&o), "error: unknown command: 'bogus'\n");
    assert!(o.status.success(), "the last line succeeded");
}

#[test]
fn global_options() {
    let o = run(&["--version"]);
    assert_eq!(stdout(&o).trim(), env!("CARGO_PKG_VERSION"));
    let o = run(&["--help"]);
    assert!(o.status.success() && stdout(&o).contains("usage: virtkit"));
    let o = run(&["--foo"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unsupported option '--foo'. See --help.\n"
    );
    let o = run(&["-c"]);
    assert_eq!(
        stderr(&o),
        "error: option '-c'/'--connect' requires an argument\n"
    );
    let o = virtkit()
        .env("VIRTKIT_DEFAULT_URI", "test:///default")
        .arg("uri")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "test:///default\n\n");
    let o = run(&["-c", "xen:///system", "list"]);
    assert_eq!(
        stderr(&o),
        "error: failed to connect to the hypervisor\n\
         error: no connection driver available: driver 'xen' is not compiled in (enable cargo feature `xen`)\n"
    );
}

#[test]
fn xml_format_reports_the_position_of_bad_input() {
    let dir = std::env::temp_dir().join(format!("vk-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.xml");
    std::fs::write(
        &f,
        "<domain type='kvm'>\n  <name>x</name>\n  <memory unit='KiB'>12x</memory>\n  <os><type>hvm</type></os>\n</domain>\n",
    )
    .unwrap();
    let o = run(&["xml-format", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:3:3 (/domain/memory): expected a non-negative integer, got '12x'",
            f.display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn corpus_root() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTKIT_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    dir.join("libvirt").is_dir().then_some(dir)
}

#[test]
fn xml_format_prints_what_the_library_formats() {
    let Some(root) = corpus_root() else {
        eprintln!("SKIPPED: no corpus (set VIRTKIT_CORPUS or check out ../shared/corpus)");
        return;
    };
    let dir = root.join("libvirt/genericxml2xmlindata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut checked = 0;
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let path = f.to_str().unwrap();
        let lib = DomainDef::parse_named(&bytes, path)
            .map(|d| d.to_xml_canonical(&GenericProfile, &FormatOptions::default()));
        let o = run(&["xml-format", "--kind", "domain", path]);
        match lib {
            Ok(expected) => {
                assert!(o.status.success(), "{path}: {}", stderr(&o));
                assert_eq!(stdout(&o), format!("{expected}\n"), "{path}");
                let o = run(&["xml-format", "--as-defined", path]);
                assert_eq!(o.stdout, [bytes.as_slice(), b"\n"].concat(), "{path}");
            }
            Err(e) => {
                assert_eq!(o.status.code(), Some(1), "{path}");
                assert_eq!(stderr(&o), format!("error: {e}\n"), "{path}");
            }
        }
        checked += 1;
    }
    assert!(checked > 40);
}
