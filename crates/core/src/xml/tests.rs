use super::*;

const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a guest -->
<domain type="kvm" xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>demo &amp; co</name>
  <metadata>
    <app:info xmlns:app="http://example.com/app"  level = "3">kept</app:info>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <devices>
    <disk type='file' snapshot="no"><source file='/a.img'/></disk>
    <tpm model='tpm-crb'/>
    <disk type='file'>
      <source file="/b&apos;s.img"/>
    </disk>
  </devices>
  <qemu:commandline><qemu:arg value='-S'/></qemu:commandline>
</domain>
"#;

#[test]
fn round_trip_is_byte_identical() {
    let doc = parse(SAMPLE).unwrap();
    assert_eq!(doc.to_string_as_defined(), SAMPLE);
}

#[test]
fn accessors_decode_values() {
    let doc = parse(SAMPLE).unwrap();
    let root = &doc.root;
    assert_eq!(root.name(), "domain");
    assert_eq!(root.attr("type").as_deref(), Some("kvm"));
    assert_eq!(root.child("name").unwrap().text(), "demo & co");
    let disks: Vec<_> = root
        .child("devices")
        .unwrap()
        .children_named("disk")
        .collect();
    assert_eq!(disks.len(), 2);
    assert_eq!(
        disks[1].child("source").unwrap().attr("file").as_deref(),
        Some("/b's.img")
    );
    assert_eq!(disks[1].pos().line, 12);
    assert_eq!(disks[1].pos().column, 5);
}

#[test]
fn edit_changes_only_what_it_touches() {
    let mut doc = parse(SAMPLE).unwrap();
    doc.root.child_mut("memory").unwrap().set_text("2097152");
    let out = doc.to_string_as_defined();
    let changed: Vec<_> = SAMPLE
        .lines()
        .zip(out.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![(
            "  <memory unit='KiB'>1048576</memory>",
            "  <memory unit='KiB'>2097152</memory>"
        )]
    );
    doc.root
        .child_mut("devices")
        .unwrap()
        .child_mut("tpm")
        .unwrap()
        .set_attr("model", "tpm-tis");
    assert!(
        doc.to_string_as_defined()
            .contains("<tpm model='tpm-tis'/>")
    );
}

fn err_of(s: &str) -> crate::Error {
    parse(s).unwrap_err()
}

#[test]
fn errors_have_line_column_and_path() {
    let e = err_of("<domain>\n  <devices>\n    <disk>\n    </disc>\n  </devices>\n</domain>");
    let loc = e.xml_location().unwrap();
    assert_eq!((loc.line, loc.column), (4, 5));
    assert_eq!(loc.path, "/domain/devices/disk");
    assert!(e.to_string().contains("</disc>"), "{e}");

    let e = err_of(
        "<domain>\n<devices><disk/><disk><source file='a' file='b'/></disk></devices></domain>",
    );
    let loc = e.xml_location().unwrap();
    assert_eq!(loc.path, "/domain/devices/disk[2]");
    assert_eq!(loc.line, 2);
    assert!(e.to_string().contains("twice"), "{e}");

    let e = err_of("<domain type='kvm'>\n  <name>x</name>\n");
    assert!(e.to_string().contains("premature end"), "{e}");

    let e = err_of("<a>&foo;</a>");
    assert!(e.to_string().contains("&foo;"), "{e}");
    let e = err_of("<a b='&bar;'/>");
    assert!(e.to_string().contains("&bar;"), "{e}");
    let e = err_of("<a b='x<y'/>");
    assert!(e.to_string().contains("'<'"), "{e}");
    let e = err_of("<a/><b/>");
    assert!(e.to_string().contains("extra element"), "{e}");
    let e = err_of("hello <a/>");
    assert!(e.to_string().contains("before the root"), "{e}");
    let e = err_of("");
    assert!(e.to_string().contains("no root"), "{e}");
    let e = err_of("<a>\u{1}</a>");
    assert!(e.to_string().contains("U+0001"), "{e}");
    let e = err_of("<a b=c/>");
    assert!(e.to_string().contains("quoted"), "{e}");
    let e = err_of("<1a/>");
    assert!(e.to_string().contains("cannot start"), "{e}");
}

#[test]
fn invalid_utf8_is_positioned() {
    let e = parse_with(b"<a>\n  \xff</a>", &ParseOptions::default()).unwrap_err();
    let loc = e.xml_location().unwrap();
    assert_eq!((loc.line, loc.column), (2, 3));
}

#[test]
fn deep_nesting_is_refused() {
    let s = "<a>".repeat(300) + &"</a>".repeat(300);
    let e = err_of(&s);
    assert!(e.to_string().contains("deeper than 256"), "{e}");
}

#[test]
fn canonical_writer_layout() {
    let doc = parse("<a x=\"1\"><!-- c --><b>t&amp;'</b>\n\n<c y='&quot;'></c></a>").unwrap();
    let mut w = CanonicalWriter::new();
    w.element(&doc.root, 0);
    assert_eq!(
        w.finish(),
        "<a x='1'>\n  <b>t&amp;&apos;</b>\n  <c y='&quot;'/>\n</a>\n"
    );
}

#[test]
fn bom_and_crlf_survive() {
    let s = "\u{feff}<?xml version='1.0'?>\r\n<a>\r\n  <b c='d'/>\r\n</a>\r\n";
    let doc = parse(s).unwrap();
    assert_eq!(doc.to_string_as_defined(), s);
}

#[test]
fn xpath_indexes_repeated_siblings() {
    let doc = parse("<domain><devices><disk/><disk><source/></disk></devices></domain>").unwrap();
    let root = &doc.root;
    let devices = root.child("devices").unwrap();
    let p = XPath::root("domain").child(root, devices);
    let disk2 = devices.children_named("disk").nth(1).unwrap();
    let p = p.child(devices, disk2);
    let src = disk2.child("source").unwrap();
    assert_eq!(
        p.child(disk2, src).attr("file"),
        "/domain/devices/disk[2]/source/@file"
    );
}

#[test]
fn inserted_elements_follow_sibling_indentation() {
    let mut doc = parse("<a>\n  <b/>\n  <c/>\n</a>").unwrap();
    doc.root.insert_element(0, Element::new("x"));
    doc.root.append_element(Element::new("y"));
    assert_eq!(
        doc.to_string_as_defined(),
        "<a>\n  <x/>\n  <b/>\n  <c/>\n  <y/>\n</a>"
    );
    let mut doc = parse("<a><b/></a>").unwrap();
    doc.root.insert_element(0, Element::new("x"));
    doc.root.append_element(Element::new("y"));
    assert_eq!(doc.to_string_as_defined(), "<a><x/><b/><y/></a>");
}
