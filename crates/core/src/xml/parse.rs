//! Parsing text into the lossless tree, with positioned errors.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Attr, Document, Element, Node, Pos, Text, is_xml_char, resolve_reference};
use crate::error::{Error, Result, XmlLocation};

/// Limits and labels for parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Name used in error messages (a file path, or a label such as
    /// `(domain_definition)`).
    pub source: Option<String>,
    /// Deepest element nesting accepted (libxml2's default is 256 too).
    pub max_depth: usize,
    /// Largest document accepted, in bytes (libvirt reads at most 10 MiB).
    pub max_size: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            source: None,
            max_depth: 256,
            max_size: 10 * 1024 * 1024,
        }
    }
}

/// Parses a document from text with default options.
pub fn parse(input: &str) -> Result<Document> {
    parse_str(input, &ParseOptions::default())
}

/// Maps byte offsets to lines and columns.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr_all(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        Pos {
            line: (line + 1) as u32,
            column: self.text[start..end].chars().count() as u32 + 1,
        }
    }
}

/// Tracks line and column while the parser moves forward through the text,
/// so that positions cost a scan of the bytes passed, nothing more.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    offset: usize,
    line: u32,
    column: u32,
}

impl Cursor {
    fn start() -> Cursor {
        Cursor {
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// Moves to `offset` (never backwards) and returns the position there.
    fn advance(&mut self, text: &[u8], offset: usize) -> Pos {
        let offset = offset.min(text.len());
        if offset > self.offset {
            for &b in &text[self.offset..offset] {
                if b == b'\n' {
                    self.line += 1;
                    self.column = 1;
                } else if b & 0xC0 != 0x80 {
                    // Count characters, not UTF-8 continuation bytes.
                    self.column += 1;
                }
            }
            self.offset = offset;
        }
        Pos {
            line: self.line,
            column: self.column,
        }
    }
}

fn memchr_all(needle: u8, hay: &[u8]) -> impl Iterator<Item = usize> + '_ {
    hay.iter()
        .enumerate()
        .filter(move |(_, b)| **b == needle)
        .map(|(i, _)| i)
}

struct Parser<'a> {
    input: &'a str,
    cursor: Cursor,
    opts: &'a ParseOptions,
    /// Open elements, with the number of earlier same-named siblings + 1.
    stack: Vec<(Element, usize)>,
    prolog: Vec<Node>,
    epilog: Vec<Node>,
    root: Option<Element>,
}

/// Parses a document from bytes.
pub fn parse_with(bytes: &[u8], opts: &ParseOptions) -> Result<Document> {
    let located = |line: u32, column: u32, msg: String| {
        Error::xml(
            msg,
            XmlLocation {
                source: opts.source.clone(),
                line,
                column,
                path: String::new(),
            },
        )
    };
    if bytes.len() > opts.max_size {
        return Err(located(
            1,
            1,
            format!(
                "document is {} bytes, more than the limit of {} bytes",
                bytes.len(),
                opts.max_size
            ),
        ));
    }
    let input = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(valid).unwrap_or("");
            let p = LineIndex::new(prefix).pos(prefix.len());
            return Err(located(
                p.line,
                p.column,
                format!(
                    "input is not valid UTF-8 (byte 0x{:02x} at offset {})",
                    bytes[e.valid_up_to()],
                    e.valid_up_to()
                ),
            ));
        }
    };
    parse_str(input, opts)
}

/// Parses a document from text (already known to be UTF-8).
pub fn parse_str(input: &str, opts: &ParseOptions) -> Result<Document> {
    if let Some(rest) = input.strip_prefix('\u{feff}') {
        let mut doc = parse_str(rest, opts)?;
        doc.prolog.insert(0, Node::Text(Text::from_raw("\u{feff}")));
        return Ok(doc);
    }
    if input.len() > opts.max_size {
        return Err(Error::xml(
            format!(
                "document is {} bytes, more than the limit of {} bytes",
                input.len(),
                opts.max_size
            ),
            XmlLocation {
                source: opts.source.clone(),
                line: 1,
                column: 1,
                path: String::new(),
            },
        ));
    }
    let mut p = Parser {
        input,
        cursor: Cursor::start(),
        opts,
        stack: Vec::new(),
        prolog: Vec::new(),
        epilog: Vec::new(),
        root: None,
    };
    if let Some((i, c)) = first_non_xml_char(input) {
        return Err(p.err(
            i,
            format!("character U+{:04X} is not allowed in XML", c as u32),
        ));
    }
    p.run()?;
    let root = p.root.take().ok_or_else(|| {
        p.err(
            input.len(),
            "document has no root element (expected e.g. <domain>)",
        )
    })?;
    Ok(Document {
        prolog: p.prolog,
        root,
        epilog: p.epilog,
        source: opts.source.clone(),
    })
}

/// The first character that XML 1.0 forbids: control characters other than
/// tab, line feed and carriage return, and U+FFFE / U+FFFF. (Surrogates cannot
/// occur in a Rust string.) Checks bytes first; decodes only on a suspect.
fn first_non_xml_char(input: &str) -> Option<(usize, char)> {
    let bytes = input.as_bytes();
    let suspect = bytes
        .iter()
        .position(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF)?;
    input[suspect..]
        .char_indices()
        .find(|(_, c)| !is_xml_char(*c))
        .map(|(i, c)| (suspect + i, c))
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c as u32) >= 0x80
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

fn check_name(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("missing name".to_string()),
        Some(c) if !is_name_start(c) => Some(format!("name '{name}' cannot start with {c:?}")),
        _ => chars
            .find(|c| !is_name_char(*c))
            .map(|c| format!("character {c:?} is not allowed in name '{name}'")),
    }
}

impl<'a> Parser<'a> {
    fn path(&self) -> String {
        let mut s = String::new();
        for (e, idx) in &self.stack {
            s.push('/');
            s.push_str(e.name());
            if *idx > 1 {
                s.push_str(&format!("[{idx}]"));
            }
        }
        s
    }

    fn err(&self, offset: usize, msg: impl Into<String>) -> Error {
        // Errors are rare: index the lines only now.
        let p = LineIndex::new(self.input).pos(offset);
        Error::xml(
            msg,
            XmlLocation {
                source: self.opts.source.clone(),
                line: p.line,
                column: p.column,
                path: self.path(),
            },
        )
    }

    fn run(&mut self) -> Result<()> {
        let mut reader = Reader::from_str(self.input);
        {
            let cfg = reader.config_mut();
            cfg.check_comments = true;
            cfg.check_end_names = false;
            cfg.allow_unmatched_ends = true;
            cfg.expand_empty_elements = false;
            cfg.trim_text_start = false;
            cfg.trim_text_end = false;
        }
        loop {
            let start = reader.buffer_position() as usize;
            let ev = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let off = reader.error_position() as usize;
                    return Err(self.err(off, describe_reader_error(&e)));
                }
            };
            let end = reader.buffer_position() as usize;
            let raw = &self.input[start..end];
            match ev {
                Event::Start(_) => {
                    let el = self.parse_tag(raw, start, false)?;
                    if self.stack.len() >= self.opts.max_depth {
                        return Err(self.err(
                            start,
                            format!(
                                "elements are nested deeper than {} levels",
                                self.opts.max_depth
                            ),
                        ));
                    }
                    self.check_second_root(start, &el)?;
                    let idx = self.sibling_index(el.name());
                    self.stack.push((el, idx));
                }
                Event::Empty(_) => {
                    let el = self.parse_tag(raw, start, true)?;
                    self.check_second_root(start, &el)?;
                    self.add_element(el);
                }
                Event::End(_) => {
                    let name = raw
                        .strip_prefix("</")
                        .and_then(|r| r.strip_suffix('>'))
                        .unwrap_or("")
                        .trim_end_matches([' ', '\t', '\n', '\r']);
                    let Some((mut el, _)) = self.stack.pop() else {
                        return Err(self.err(
                            start,
                            format!("closing tag </{name}> has no matching opening tag"),
                        ));
                    };
                    if el.name() != name {
                        let opened = el.pos;
                        let name = name.to_string();
                        let el_name = el.name().to_string();
                        self.stack.push((el, 0));
                        return Err(self.err(
                            start,
                            format!(
                                "closing tag </{name}> does not match <{el_name}> opened at line {}, column {}",
                                opened.line, opened.column
                            ),
                        ));
                    }
                    if raw.len() != el.name().len() + 3 {
                        el.raw_end = Some(raw.into());
                    }
                    self.add_element(el);
                }
                Event::Text(_) => {
                    if let Some(i) = raw.contains(']').then(|| raw.find("]]>")).flatten() {
                        return Err(self.err(start + i, "']]>' is not allowed in text"));
                    }
                    self.add_text(start, raw)?;
                }
                Event::GeneralRef(_) => {
                    let name = &raw[1..raw.len() - 1];
                    if resolve_reference(name).is_none() {
                        return Err(self.err(start, bad_reference(name)));
                    }
                    self.add_text(start, raw)?;
                }
                Event::CData(c) => {
                    self.add_node(start, Node::CData(c.into_inner().into_owned()), false)?;
                }
                Event::Comment(c) => {
                    self.add_node(start, Node::Comment(c.into_inner().into_owned()), false)?;
                }
                Event::PI(_) => {
                    let inner = &raw[2..raw.len() - 2];
                    if inner.len() >= 3 && inner[..3].eq_ignore_ascii_case("xml") && {
                        let next = inner[3..].chars().next();
                        next.is_none() || next.is_some_and(|c| c.is_whitespace())
                    } {
                        return Err(self.err(
                            start,
                            "the XML declaration is allowed only at the very start of the document",
                        ));
                    }
                    self.add_node(start, Node::Pi(inner.to_string()), false)?;
                }
                Event::Decl(_) => {
                    if start != 0 {
                        return Err(self.err(
                            start,
                            "the XML declaration is allowed only at the very start of the document",
                        ));
                    }
                    let inner = &raw[2..raw.len() - 2];
                    self.prolog.push(Node::Decl(inner.to_string()));
                }
                Event::DocType(_) => {
                    if self.root.is_some() || !self.stack.is_empty() {
                        return Err(
                            self.err(start, "DOCTYPE is allowed only before the root element")
                        );
                    }
                    let inner = &raw[9..raw.len() - 1];
                    self.prolog.push(Node::DocType(inner.to_string()));
                }
                Event::Eof => break,
            }
        }
        if let Some((el, _)) = self.stack.last() {
            let (line, col, name) = (el.pos.line, el.pos.column, el.name().to_string());
            return Err(self.err(
                self.input.len(),
                format!(
                    "premature end of data: <{name}> opened at line {line}, column {col} is not closed"
                ),
            ));
        }
        Ok(())
    }

    fn sibling_index(&self, name: &str) -> usize {
        match self.stack.last() {
            Some((parent, _)) => parent.children_named(name).count() + 1,
            None => 1,
        }
    }

    fn check_second_root(&self, offset: usize, el: &Element) -> Result<()> {
        if self.stack.is_empty()
            && let Some(root) = &self.root
        {
            return Err(self.err(
                offset,
                format!(
                    "extra element <{}> after the root element <{}> (a document has one root)",
                    el.name(),
                    root.name()
                ),
            ));
        }
        Ok(())
    }

    fn add_element(&mut self, el: Element) {
        match self.stack.last_mut() {
            Some((parent, _)) => {
                parent.children.push(Node::Element(el));
                parent.empty = false;
            }
            None => self.root = Some(el),
        }
    }

    fn add_text(&mut self, offset: usize, raw: &str) -> Result<()> {
        match self.stack.last_mut() {
            Some((parent, _)) => {
                if let Some(Node::Text(t)) = parent.children.last_mut() {
                    t.raw.push_str(raw);
                } else {
                    parent.children.push(Node::Text(Text::from_raw(raw)));
                }
                parent.empty = false;
                Ok(())
            }
            None => {
                if !raw.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                    let skip = raw.len() - raw.trim_start().len();
                    return Err(self.err(
                        offset + skip,
                        if self.root.is_some() {
                            "text after the root element"
                        } else {
                            "text before the root element"
                        },
                    ));
                }
                let list = if self.root.is_some() {
                    &mut self.epilog
                } else {
                    &mut self.prolog
                };
                if let Some(Node::Text(t)) = list.last_mut() {
                    t.raw.push_str(raw);
                } else {
                    list.push(Node::Text(Text::from_raw(raw)));
                }
                Ok(())
            }
        }
    }

    fn add_node(&mut self, offset: usize, node: Node, _element: bool) -> Result<()> {
        let _ = offset;
        match self.stack.last_mut() {
            Some((parent, _)) => {
                parent.children.push(node);
                parent.empty = false;
            }
            None => {
                if self.root.is_some() {
                    self.epilog.push(node)
                } else {
                    self.prolog.push(node)
                }
            }
        }
        Ok(())
    }

    /// Parses a start or empty-element tag from its exact text.
    fn parse_tag(&mut self, raw: &str, offset: usize, empty: bool) -> Result<Element> {
        let inner_end = raw.len() - if empty { 2 } else { 1 };
        let body = &raw[1..inner_end];
        let name_end = body.find([' ', '\t', '\n', '\r']).unwrap_or(body.len());
        let name = &body[..name_end];
        if let Some(msg) = check_name(name) {
            return Err(self.err(offset + 1, msg));
        }
        let mut el = Element::new(name);
        el.empty = empty;
        el.pos = self.cursor.advance(self.input.as_bytes(), offset);

        let bytes = body.as_bytes();
        let mut i = name_end;
        loop {
            let ws_start = i;
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            let at = offset + 1 + i;
            if i == ws_start {
                return Err(self.err(at, "attributes must be separated by whitespace"));
            }
            let n_start = i;
            while i < bytes.len() && !matches!(bytes[i], b'=' | b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            let aname = &body[n_start..i];
            if let Some(msg) = check_name(aname) {
                return Err(self.err(at, format!("bad attribute: {msg}")));
            }
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            if bytes.get(i) != Some(&b'=') {
                return Err(self.err(
                    offset + 1 + i,
                    format!("attribute '{aname}' has no value (expected {aname}='...')"),
                ));
            }
            i += 1;
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            let quote = match bytes.get(i) {
                Some(q @ (b'\'' | b'"')) => *q,
                _ => {
                    return Err(self.err(
                        offset + 1 + i,
                        format!("value of attribute '{aname}' must be quoted"),
                    ));
                }
            };
            i += 1;
            let v_start = i;
            while i < bytes.len() && bytes[i] != quote {
                i += 1;
            }
            if i >= bytes.len() {
                return Err(self.err(
                    offset + 1 + v_start,
                    format!("value of attribute '{aname}' is not closed"),
                ));
            }
            let value = &body[v_start..i];
            i += 1;
            self.check_attr_value(aname, value, offset + 1 + v_start)?;
            if el.attrs.iter().any(|a| a.name == aname) {
                return Err(self.err(at, format!("attribute '{aname}' is given twice")));
            }
            let pos = self.cursor.advance(self.input.as_bytes(), at);
            el.attrs.push(Attr {
                name: aname.into(),
                raw: value.into(),
                quote,
                pos,
            });
        }
        if !regenerates(raw, &el) {
            el.raw_start = Some(raw.into());
        }
        Ok(el)
    }

    fn check_attr_value(&self, name: &str, value: &str, offset: usize) -> Result<()> {
        if let Some(i) = value.find('<') {
            return Err(self.err(
                offset + i,
                format!("'<' is not allowed in the value of attribute '{name}' (write &lt;)"),
            ));
        }
        let mut rest = value;
        let mut base = offset;
        while let Some(amp) = rest.find('&') {
            let after = &rest[amp + 1..];
            let semi = after.find(';').filter(|s| {
                after[..*s]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '#' || c == '_' || c == '-' || c == '.')
            });
            match semi {
                Some(s) if resolve_reference(&after[..s]).is_some() => {
                    let used = amp + 1 + s + 1;
                    base += used;
                    rest = &rest[used..];
                }
                Some(s) => return Err(self.err(base + amp, bad_reference(&after[..s]))),
                None => {
                    return Err(self.err(
                        base + amp,
                        format!("'&' in the value of attribute '{name}' must be written &amp;"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether writing `el`'s name and attributes back with single blanks gives
/// exactly `raw` (then the raw start tag need not be kept).
fn regenerates(raw: &str, el: &Element) -> bool {
    let mut rest = match raw
        .strip_prefix('<')
        .and_then(|r| r.strip_prefix(el.name()))
    {
        Some(r) => r,
        None => return false,
    };
    for a in &el.attrs {
        let q = a.quote as char;
        let Some(r) = rest
            .strip_prefix(' ')
            .and_then(|r| r.strip_prefix(a.name.as_str()))
            .and_then(|r| r.strip_prefix('='))
            .and_then(|r| r.strip_prefix(q))
            .and_then(|r| r.strip_prefix(a.raw.as_str()))
            .and_then(|r| r.strip_prefix(q))
        else {
            return false;
        };
        rest = r;
    }
    rest == if el.empty { "/>" } else { ">" }
}

fn bad_reference(name: &str) -> String {
    if name.starts_with('#') {
        format!("'&{name};' is not a valid character reference")
    } else {
        format!(
            "entity '&{name};' is not defined (only &lt; &gt; &amp; &apos; &quot; and character references are accepted)"
        )
    }
}

fn describe_reader_error(e: &quick_xml::Error) -> String {
    use quick_xml::errors::{Error as QE, IllFormedError as IF};
    match e {
        QE::IllFormed(IF::MissingEndTag(n)) => format!("element <{n}> is not closed"),
        QE::IllFormed(IF::UnmatchedEndTag(n)) => {
            format!("closing tag </{n}> has no matching opening tag")
        }
        QE::IllFormed(other) => other.to_string(),
        QE::Syntax(s) => s.to_string(),
        other => other.to_string(),
    }
}
