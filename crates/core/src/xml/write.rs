//! Writing the tree back: as defined (the user's bytes), or in libvirt's
//! canonical layout (two-space indent, single-quoted attributes, no comments).

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{Document, Element, Node};

pub(super) fn as_defined(doc: &Document) -> String {
    let mut out = String::new();
    for n in &doc.prolog {
        node(&mut out, n);
    }
    element(&mut out, &doc.root);
    for n in &doc.epilog {
        node(&mut out, n);
    }
    out
}

fn node(out: &mut String, n: &Node) {
    match n {
        Node::Element(e) => element(out, e),
        Node::Text(t) => out.push_str(&t.raw),
        Node::CData(c) => {
            out.push_str("<![CDATA[");
            out.push_str(c);
            out.push_str("]]>");
        }
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c);
            out.push_str("-->");
        }
        Node::Pi(p) | Node::Decl(p) => {
            out.push_str("<?");
            out.push_str(p);
            out.push_str("?>");
        }
        Node::DocType(d) => {
            out.push_str("<!DOCTYPE");
            out.push_str(d);
            out.push('>');
        }
    }
}

fn element(out: &mut String, e: &Element) {
    match &e.raw_start {
        Some(raw) if e.empty == raw.ends_with("/>") => out.push_str(raw),
        _ => {
            out.push('<');
            out.push_str(&e.name);
            for a in &e.attrs {
                let q = a.quote as char;
                out.push(' ');
                out.push_str(&a.name);
                out.push('=');
                out.push(q);
                out.push_str(&a.raw);
                out.push(q);
            }
            if e.is_empty_tag() {
                out.push_str("/>");
                return;
            }
            out.push('>');
        }
    }
    if e.is_empty_tag() {
        return;
    }
    for c in &e.children {
        node(out, c);
    }
    match &e.raw_end {
        Some(raw) => out.push_str(raw),
        None => {
            out.push_str("</");
            out.push_str(&e.name);
            out.push('>');
        }
    }
}

/// Escapes text or an attribute value the way libvirt's formatter does:
/// `< > & ' "` become entities and control characters are dropped.
pub fn escape_libvirt(s: &str) -> Cow<'_, str> {
    let needs = s
        .chars()
        .any(|c| matches!(c, '<' | '>' | '&' | '\'' | '"') || is_dropped_control(c));
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if is_dropped_control(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_dropped_control(c: char) -> bool {
    (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')
}

/// Writes elements in libvirt's layout.
///
/// Children are indented by two spaces per level; an element with only text
/// is written on one line; comments and whitespace-only text between
/// elements are dropped; attribute values and text are re-escaped.
#[derive(Debug, Default)]
pub struct CanonicalWriter {
    out: String,
}

impl CanonicalWriter {
    /// An empty writer.
    pub fn new() -> Self {
        CanonicalWriter::default()
    }

    /// Writes `e` and its subtree at `indent` levels.
    pub fn element(&mut self, e: &Element, indent: usize) {
        self.pad(indent);
        self.start_tag(e);
        let has_elements = e.has_elements();
        let text = e.text();
        if !has_elements && text.is_empty() {
            self.out.push_str("/>\n");
            return;
        }
        self.out.push('>');
        if !has_elements {
            self.out.push_str(&escape_libvirt(&text));
        } else {
            self.out.push('\n');
            for c in &e.children {
                match c {
                    Node::Element(child) => self.element(child, indent + 1),
                    Node::Text(t) if !t.is_blank() => {
                        self.pad(indent + 1);
                        self.out.push_str(&escape_libvirt(t.value().trim()));
                        self.out.push('\n');
                    }
                    _ => {}
                }
            }
            self.pad(indent);
        }
        self.out.push_str("</");
        self.out.push_str(e.name());
        self.out.push_str(">\n");
    }

    /// Writes only the start tag with its attributes, without `>`.
    fn start_tag(&mut self, e: &Element) {
        self.out.push('<');
        self.out.push_str(e.name());
        for a in e.attrs() {
            let _ = write!(self.out, " {}='{}'", a.name(), escape_libvirt(&a.value()));
        }
    }

    /// Writes the start tag of `e` on its own line (children follow).
    pub fn element_open(&mut self, e: &Element, indent: usize) {
        self.pad(indent);
        self.start_tag(e);
        self.out.push_str(">\n");
    }

    /// Writes the end tag of `e` on its own line.
    pub fn element_close(&mut self, e: &Element, indent: usize) {
        self.pad(indent);
        self.out.push_str("</");
        self.out.push_str(e.name());
        self.out.push_str(">\n");
    }

    /// Writes `e` the way libvirt prints stored foreign XML (`<metadata>`):
    /// libxml2's `xmlNodeDump` with formatting, after libxml2 dropped
    /// ignorable blanks at parse time. Attributes keep double quotes,
    /// comments are kept, and an element with text children is written
    /// without added indentation.
    pub fn libxml_dump(&mut self, e: &Element, indent: usize) {
        self.pad(indent);
        libxml_node(&mut self.out, e, indent, true);
        self.out.push('\n');
    }

    /// Writes raw text as is.
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn pad(&mut self, indent: usize) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// libxml2's heuristic (`areBlanks` with keepBlanks off): which children of
/// `e` survive parsing. A whitespace-only text is dropped when markup follows
/// it, no text child precedes it, and it is not the element's only content.
fn libxml_children(e: &Element) -> Vec<&Node> {
    let mut kept: Vec<&Node> = Vec::new();
    let n = e.children.len();
    for (i, c) in e.children.iter().enumerate() {
        if let Node::Text(t) = c
            && t.is_blank()
        {
            let only_content = kept.is_empty() && i + 1 == n;
            let is_text = |k: Option<&&Node>| matches!(k, Some(Node::Text(_)));
            if !only_content && !is_text(kept.last()) && !is_text(kept.first()) {
                continue;
            }
        }
        kept.push(c);
    }
    kept
}

fn libxml_escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn libxml_escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn libxml_node(out: &mut String, e: &Element, level: usize, format: bool) {
    out.push('<');
    out.push_str(e.name());
    for a in e.attrs() {
        out.push(' ');
        out.push_str(a.name());
        out.push_str("=\"");
        libxml_escape_attr(&super::unescape(a.raw()), out);
        out.push('"');
    }
    let children = libxml_children(e);
    if children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let format = format
        && !children
            .iter()
            .any(|c| matches!(c, Node::Text(_) | Node::CData(_)));
    for c in &children {
        if format {
            out.push('\n');
            for _ in 0..=level {
                out.push_str("  ");
            }
        }
        match c {
            Node::Element(child) => libxml_node(out, child, level + 1, format),
            Node::Text(t) => libxml_escape_text(&t.value(), out),
            Node::CData(d) => {
                out.push_str("<![CDATA[");
                out.push_str(d);
                out.push_str("]]>");
            }
            Node::Comment(cm) => {
                out.push_str("<!--");
                out.push_str(cm);
                out.push_str("-->");
            }
            Node::Pi(p) => {
                out.push_str("<?");
                out.push_str(p);
                out.push_str("?>");
            }
            Node::Decl(_) | Node::DocType(_) => {}
        }
    }
    if format {
        out.push('\n');
        for _ in 0..level {
            out.push_str("  ");
        }
    }
    out.push_str("</");
    out.push_str(e.name());
    out.push('>');
}

/// Prints a document root in libvirt's layout: its top-level `<metadata>`
/// dumped the way libxml2 stores it, and the elements named in
/// `always_open` opened and closed on their own lines even when empty
/// (libvirt writes their start tag with `>` unconditionally: `<devices>`
/// and `<hyperv>` in domains, `<ip>` and `<portgroup>` in networks).
pub fn libvirt_layout(root: &Element, always_open: &[&str]) -> String {
    fn element(w: &mut CanonicalWriter, e: &Element, indent: usize, always_open: &[&str]) {
        let element_only = e.children.iter().all(|n| matches!(n, Node::Element(_)));
        let open = e.has_elements() || always_open.contains(&e.name());
        if !(open && element_only) {
            w.element(e, indent);
            return;
        }
        w.element_open(e, indent);
        for child in e.elements() {
            element(w, child, indent + 1, always_open);
        }
        w.element_close(e, indent);
    }
    let mut w = CanonicalWriter::new();
    let mut head = root.clone();
    head.children.clear();
    w.element_open(&head, 0);
    for child in root.elements() {
        if child.name() == "metadata" {
            w.libxml_dump(child, 1);
        } else {
            element(&mut w, child, 1, always_open);
        }
    }
    w.element_close(&head, 0);
    w.finish()
}
