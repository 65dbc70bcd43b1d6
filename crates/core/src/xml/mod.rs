//! A lossless XML document tree.
//!
//! Every byte of a parsed document is kept: the declaration, comments,
//! processing instructions, whitespace, attribute order and quoting, entity
//! references as written, namespace prefixes and foreign elements (such as the
//! contents of `<metadata>`). [`Document::to_string_as_defined`] gives back the
//! user's bytes exactly; edits through the accessors change only what they
//! touch. Typed views (`DomainDef`, ...) read and edit this tree, and the
//! canonical formatters print it the way libvirt does.
//!
//! Parsing is built on quick-xml's event reader; errors carry a line, a
//! column and the XPath-like location of the problem.

pub mod order;
mod parse;
mod write;

use std::borrow::Cow;

use compact_str::CompactString;

pub use parse::{ParseOptions, parse, parse_str, parse_with};
pub use write::{CanonicalWriter, escape_libvirt, libvirt_layout};

use crate::error::{Error, XmlLocation};

/// A position in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column in characters.
    pub column: u32,
}

/// A whole document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Nodes before the root element (declaration, comments, whitespace...).
    pub prolog: Vec<Node>,
    /// The root element.
    pub root: Element,
    /// Nodes after the root element.
    pub epilog: Vec<Node>,
    /// Name used in error messages (file path or a label).
    pub source: Option<String>,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data, kept escaped as written.
    Text(Text),
    /// A CDATA section's content.
    CData(String),
    /// A comment's content (between `<!--` and `-->`).
    Comment(String),
    /// A processing instruction's content (between `<?` and `?>`).
    Pi(String),
    /// The XML declaration's content (between `<?` and `?>`).
    Decl(String),
    /// A DOCTYPE's content (between `<!DOCTYPE` and `>`).
    DocType(String),
}

/// Character data, stored as written (with entity references).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    raw: CompactString,
}

impl Text {
    /// Text from an unescaped value.
    pub fn new(value: &str) -> Text {
        Text {
            raw: CompactString::from(escape_text(value)),
        }
    }

    /// Text from already escaped characters.
    pub fn from_raw(raw: impl AsRef<str>) -> Text {
        Text {
            raw: CompactString::from(raw.as_ref()),
        }
    }

    /// The text as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The text with references resolved.
    pub fn value(&self) -> Cow<'_, str> {
        unescape(&self.raw)
    }

    /// Whether the text is only XML whitespace.
    pub fn is_blank(&self) -> bool {
        self.raw
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    }
}

/// An attribute, with its value kept escaped as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    name: CompactString,
    raw: CompactString,
    quote: u8,
    pos: Pos,
}

impl Attr {
    /// An attribute from an unescaped value.
    pub fn new(name: impl AsRef<str>, value: &str) -> Attr {
        Attr {
            name: CompactString::from(name.as_ref()),
            raw: CompactString::from(escape_attr(value)),
            quote: b'\'',
            pos: Pos::default(),
        }
    }

    /// The qualified name as written (`type`, `xmlns:qemu`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as written between the quotes.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The value with references resolved and whitespace characters
    /// normalised to spaces (XML attribute-value normalisation).
    pub fn value(&self) -> Cow<'_, str> {
        let v = unescape(&self.raw);
        if v.contains(['\t', '\n', '\r']) {
            Cow::Owned(v.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
        } else {
            v
        }
    }

    /// The quote character used (`'` or `"`).
    pub fn quote(&self) -> char {
        self.quote as char
    }

    /// Where the attribute's name starts in the source.
    pub fn pos(&self) -> Pos {
        self.pos
    }
}

/// An element with its attributes and children.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    name: CompactString,
    attrs: Vec<Attr>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
    empty: bool,
    /// The start tag as written, when it differs from what the attributes
    /// would regenerate (extra blanks, line breaks...).
    raw_start: Option<Box<str>>,
    /// The end tag as written, when it is not plain `</name>`.
    raw_end: Option<Box<str>>,
    pos: Pos,
}

impl Element {
    /// A new element without attributes or children (written `<name/>`).
    pub fn new(name: impl AsRef<str>) -> Element {
        Element {
            name: CompactString::from(name.as_ref()),
            attrs: Vec::new(),
            children: Vec::new(),
            empty: true,
            raw_start: None,
            raw_end: None,
            pos: Pos::default(),
        }
    }

    /// Builder: adds an attribute.
    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Builder: sets the text content.
    pub fn with_text(mut self, text: &str) -> Element {
        self.set_text(text);
        self
    }

    /// Builder: adds a child element.
    pub fn with_child(mut self, child: Element) -> Element {
        self.push(child);
        self
    }

    /// The qualified name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name without its namespace prefix.
    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    /// The namespace prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(p, _)| p)
    }

    /// Renames the element.
    pub fn set_name(&mut self, name: impl AsRef<str>) {
        self.name = CompactString::from(name.as_ref());
        self.raw_start = None;
        self.raw_end = None;
    }

    /// Where the start tag begins in the source.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// Whether the element was written as `<x/>` and has no children.
    pub fn is_empty_tag(&self) -> bool {
        self.empty && self.children.is_empty()
    }

    /// The attributes in document order.
    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    /// An attribute's value (unescaped, normalised).
    pub fn attr(&self, name: &str) -> Option<Cow<'_, str>> {
        self.attr_node(name).map(Attr::value)
    }

    /// An attribute node.
    pub fn attr_node(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Whether an attribute is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr_node(name).is_some()
    }

    /// Sets an attribute, keeping its place if it exists, else appending it.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        let raw = CompactString::from(escape_attr(value));
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => {
                if a.raw == raw {
                    return;
                }
                a.raw = raw;
                if a.quote == b'"' && a.raw.contains('"') {
                    a.quote = b'\'';
                }
            }
            None => self.attrs.push(Attr {
                name: CompactString::from(name),
                raw,
                quote: b'\'',
                pos: Pos::default(),
            }),
        }
        self.raw_start = None;
    }

    /// Removes an attribute, returning whether it was there.
    pub fn remove_attr(&mut self, name: &str) -> bool {
        let before = self.attrs.len();
        self.attrs.retain(|a| a.name != name);
        let removed = self.attrs.len() != before;
        if removed {
            self.raw_start = None;
        }
        removed
    }

    /// Reorders the attributes by `key` (stable).
    pub fn sort_attrs_by_key<K: Ord>(&mut self, mut key: impl FnMut(&Attr) -> K) {
        self.attrs.sort_by_key(|a| key(a));
        self.raw_start = None;
    }

    /// Keeps only the attributes for which `keep` is true.
    pub fn retain_attrs(&mut self, mut keep: impl FnMut(&Attr) -> bool) {
        let before = self.attrs.len();
        self.attrs.retain(|a| keep(a));
        if before != self.attrs.len() {
            self.raw_start = None;
        }
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl DoubleEndedIterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Child elements in order, mutable.
    pub fn elements_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first child element with this name, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// All child elements with this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    /// The first child element with this name, created (appended) if missing.
    pub fn child_or_insert(&mut self, name: &str) -> &mut Element {
        let idx = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.name == name));
        let idx = match idx {
            Some(i) => i,
            None => {
                self.push(Element::new(name));
                self.children.len() - 1
            }
        };
        match &mut self.children[idx] {
            Node::Element(e) => e,
            _ => unreachable!("index points at an element"),
        }
    }

    /// Appends a child element.
    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
        self.empty = false;
    }

    /// Inserts a child element before the node at `index`.
    pub fn insert(&mut self, index: usize, child: Element) {
        self.children
            .insert(index.min(self.children.len()), Node::Element(child));
        self.empty = false;
    }

    /// Inserts `child` as child element number `n` (0-based; past the end
    /// appends), copying the indentation of its neighbours so that the
    /// as-defined text stays tidy.
    pub fn insert_element(&mut self, n: usize, child: Element) {
        let element_positions: Vec<usize> = self
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, Node::Element(_)))
            .map(|(i, _)| i)
            .collect();
        let indent_before = |i: usize, children: &[Node]| -> Option<Node> {
            match i.checked_sub(1).map(|j| &children[j]) {
                Some(Node::Text(t)) if t.is_blank() => {
                    // Keep only the last line break and what follows it.
                    let raw = t.raw();
                    let cut = raw.rfind('\n').unwrap_or(0);
                    Some(Node::Text(Text::from_raw(&raw[cut..])))
                }
                _ => None,
            }
        };
        self.empty = false;
        match element_positions.get(n) {
            Some(&at) => {
                let ws = indent_before(at, &self.children);
                self.children.insert(at, Node::Element(child));
                if let Some(ws) = ws {
                    self.children.insert(at + 1, ws);
                }
            }
            None => match element_positions.last() {
                Some(&last) => {
                    let ws = indent_before(last, &self.children);
                    let mut at = last + 1;
                    if let Some(ws) = ws {
                        self.children.insert(at, ws);
                        at += 1;
                    }
                    self.children.insert(at, Node::Element(child));
                }
                None => self.children.push(Node::Element(child)),
            },
        }
    }

    /// Appends `child` after the last child element, indented like its siblings.
    pub fn append_element(&mut self, child: Element) {
        self.insert_element(usize::MAX, child);
    }

    /// Removes every child element with this name; returns how many.
    pub fn remove_children_named(&mut self, name: &str) -> usize {
        let before = self.children.len();
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.name == name));
        before - self.children.len()
    }

    /// The text content: all character data and CDATA directly inside this
    /// element, unescaped and concatenated.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => s.push_str(&t.value()),
                Node::CData(c) => s.push_str(c),
                _ => {}
            }
        }
        s
    }

    /// Whether the element has any child elements.
    pub fn has_elements(&self) -> bool {
        self.elements().next().is_some()
    }

    /// Replaces the children with one text node.
    pub fn set_text(&mut self, text: &str) {
        self.children = vec![Node::Text(Text::new(text))];
        self.empty = false;
    }
}

/// Resolves the five predefined entities and character references.
/// References that do not resolve are kept as written (the parser has
/// already rejected them in parsed documents).
pub fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            out.push_str(&rest[amp..]);
            return Cow::Owned(out);
        };
        let name = &after[..semi];
        match resolve_reference(name) {
            Some(c) => out.push(c),
            None => {
                out.push('&');
                out.push_str(name);
                out.push(';');
            }
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference (`lt`, `#60`, `#x3C`) stands for, if it is a
/// predefined entity or a valid XML character reference.
pub(crate) fn resolve_reference(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|c| is_xml_char(*c))
        }
    }
}

/// Whether `c` may appear in an XML 1.0 document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text content (`&`, `<`, `>`).
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes an attribute value for single quotes.
pub fn escape_attr(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '\'', '"', '\n', '\r', '\t']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Builds XPath-like locations (`/domain/devices/disk[2]/source/@file`) while
/// walking a tree, for error messages.
#[derive(Debug, Clone, Default)]
pub struct XPath {
    parts: Vec<String>,
}

impl XPath {
    /// The path of a root element.
    pub fn root(name: &str) -> XPath {
        XPath {
            parts: vec![name.to_string()],
        }
    }

    /// The path of `child`, a child of the element this path names, with an
    /// index when `parent` has several children of that name.
    pub fn child(&self, parent: &Element, child: &Element) -> XPath {
        let same: Vec<_> = parent.children_named(child.name()).collect();
        let mut p = self.clone();
        if same.len() > 1 {
            let idx = same
                .iter()
                .position(|e| std::ptr::eq(*e, child))
                .map(|i| i + 1)
                .unwrap_or(1);
            p.parts.push(format!("{}[{idx}]", child.name()));
        } else {
            p.parts.push(child.name().to_string());
        }
        p
    }

    /// The path of a child by name (no index).
    pub fn named(&self, name: &str) -> XPath {
        let mut p = self.clone();
        p.parts.push(name.to_string());
        p
    }

    /// The path of an attribute of this element.
    pub fn attr(&self, name: &str) -> String {
        format!("{self}/@{name}")
    }
}

impl std::fmt::Display for XPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.parts {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

impl Document {
    /// The document exactly as defined: the parsed bytes, with any edits.
    pub fn to_string_as_defined(&self) -> String {
        write::as_defined(self)
    }

    /// An error located at `element`.
    pub fn error_at(&self, element: &Element, path: &XPath, message: impl Into<String>) -> Error {
        Error::xml(
            message,
            XmlLocation {
                source: self.source.clone(),
                line: element.pos.line,
                column: element.pos.column,
                path: path.to_string(),
            },
        )
    }

    /// An error located at attribute `name` of `element`.
    pub fn error_at_attr(
        &self,
        element: &Element,
        path: &XPath,
        name: &str,
        message: impl Into<String>,
    ) -> Error {
        let pos = element
            .attr_node(name)
            .map(|a| a.pos)
            .unwrap_or(element.pos);
        Error::xml(
            message,
            XmlLocation {
                source: self.source.clone(),
                line: pos.line,
                column: pos.column,
                path: path.attr(name),
            },
        )
    }
}

#[cfg(test)]
mod tests;
