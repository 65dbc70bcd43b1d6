//! `virNetworkUpdate` on a definition: add, delete or modify one entry of a
//! section (DHCP hosts and ranges, DNS hosts, TXT and SRV records, port
//! groups, forward interfaces), with libvirt's matching rules and messages.
//! The sections libvirt cannot update either (bridge, domain, ip, forward,
//! forward pf) are refused the same way.

use std::net::IpAddr;

use super::NetworkDef;
use super::def::parse::Cx;
use super::def::{DhcpHost, ForwardIf, IpDef, dns, ip, port};
use crate::error::{Error, ErrorKind, Result};
use crate::xml::{self, Element, Node, ParseOptions, XPath};

/// `virNetworkUpdateCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Replace an existing entry.
    Modify = 1,
    /// Remove an entry.
    Delete = 2,
    /// Append an entry.
    AddLast = 3,
    /// Prepend an entry.
    AddFirst = 4,
}

/// virsh's words for the commands.
pub const COMMANDS: &[(&str, Command)] = &[
    ("add", Command::AddLast),
    ("add-last", Command::AddLast),
    ("add-first", Command::AddFirst),
    ("delete", Command::Delete),
    ("modify", Command::Modify),
];

/// `virNetworkUpdateSection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `<bridge>`.
    Bridge = 1,
    /// `<domain>`.
    Domain = 2,
    /// `<ip>`.
    Ip = 3,
    /// `<ip><dhcp><host>`.
    IpDhcpHost = 4,
    /// `<ip><dhcp><range>`.
    IpDhcpRange = 5,
    /// `<forward>`.
    Forward = 6,
    /// `<forward><interface>`.
    ForwardInterface = 7,
    /// `<forward><pf>`.
    ForwardPf = 8,
    /// `<portgroup>`.
    Portgroup = 9,
    /// `<dns><host>`.
    DnsHost = 10,
    /// `<dns><txt>`.
    DnsTxt = 11,
    /// `<dns><srv>`.
    DnsSrv = 12,
}

/// virsh's words for the sections.
pub const SECTIONS: &[(&str, Section)] = &[
    ("bridge", Section::Bridge),
    ("domain", Section::Domain),
    ("ip", Section::Ip),
    ("ip-dhcp-host", Section::IpDhcpHost),
    ("ip-dhcp-range", Section::IpDhcpRange),
    ("forward", Section::Forward),
    ("forward-interface", Section::ForwardInterface),
    ("forward-pf", Section::ForwardPf),
    ("portgroup", Section::Portgroup),
    ("dns-host", Section::DnsHost),
    ("dns-txt", Section::DnsTxt),
    ("dns-srv", Section::DnsSrv),
];

impl Command {
    /// libvirt's number to the command.
    pub fn from_code(c: u32) -> Option<Command> {
        COMMANDS.iter().map(|(_, v)| *v).find(|v| *v as u32 == c)
    }
}

impl Section {
    /// libvirt's number to the section.
    pub fn from_code(c: u32) -> Option<Section> {
        SECTIONS.iter().map(|(_, v)| *v).find(|v| *v as u32 == c)
    }

    /// virsh's word.
    pub fn as_str(self) -> &'static str {
        SECTIONS
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::operation_invalid(msg)
}

/// Applies one update to `def`; `parent_index` picks the `<ip>` for DHCP
/// sections (-1: the one that serves DHCP, else the first IPv4, else IPv6).
pub fn apply(
    def: &mut NetworkDef,
    command: Command,
    section: Section,
    parent_index: i32,
    snippet: &str,
) -> Result<()> {
    let doc = xml::parse_str(
        snippet,
        &ParseOptions {
            source: Some("(network_update)".into()),
            ..ParseOptions::default()
        },
    )?;
    let name = def.model.name.clone();
    if command == Command::Modify {
        let what = match section {
            Section::DnsTxt => Some("DNS TXT records"),
            Section::DnsSrv => Some("DNS SRV records"),
            _ => None,
        };
        if let Some(what) = what {
            return Err(Error::new(
                ErrorKind::OperationUnsupported,
                format!("{what} cannot be modified, only added or deleted"),
            ));
        }
    }
    let expect = match section {
        Section::IpDhcpHost | Section::DnsHost => "host",
        Section::IpDhcpRange => "range",
        Section::DnsTxt => "txt",
        Section::DnsSrv => "srv",
        Section::Portgroup => "portgroup",
        Section::ForwardInterface => "interface",
        other => {
            return Err(Error::new(
                ErrorKind::OperationUnsupported,
                format!(
                    "can't update '{}' section of network '{name}'",
                    other.as_str().replace('-', " ")
                ),
            ));
        }
    };
    if doc.root.name() != expect {
        return Err(doc.error_at(
            &doc.root,
            &XPath::root(doc.root.name()),
            format!(
                "unexpected element <{}>, expecting <{expect}>, while updating network '{name}'",
                doc.root.name()
            ),
        ));
    }
    let cx = Cx {
        doc: &doc,
        name: name.clone(),
    };
    let p = XPath::root(doc.root.name());
    match section {
        Section::IpDhcpHost => dhcp_host(def, &cx, &p, command, parent_index),
        Section::IpDhcpRange => dhcp_range(def, &doc.root, command, parent_index),
        Section::DnsTxt => dns_txt(def, &cx, &p, command),
        Section::DnsSrv => dns_srv(def, &cx, &p, command),
        Section::Portgroup => portgroup(def, &cx, &p, command),
        Section::ForwardInterface => forward_interface(def, &doc.root, command),
        _ => dns_host(def, &cx, &p, command),
    }
}

/// The `<ip>` an update of its DHCP section works on.
fn target_ip(def: &NetworkDef, parent_index: i32) -> Result<usize> {
    let m = &def.model;
    let name = &m.name;
    if parent_index >= 0 {
        let i = parent_index as usize;
        return if i < m.ips.len() {
            Ok(i)
        } else {
            Err(invalid(format!(
                "couldn't update dhcp host entry - no <ip> element found at index {parent_index} in network '{name}'"
            )))
        };
    }
    m.ips
        .iter()
        .position(IpDef::has_dhcp)
        .or_else(|| m.ips.iter().position(IpDef::is_v4))
        .or_else(|| m.ips.iter().position(|i| !i.is_v4()))
        .ok_or_else(|| {
            invalid(format!(
                "couldn't update dhcp host entry - no <ip> element found in network '{name}'"
            ))
        })
}

/// Only one address per family may serve DHCP.
fn check_multi_dhcp(def: &NetworkDef, idx: usize) -> Result<()> {
    let ips = &def.model.ips;
    let v4 = ips[idx].is_v4();
    if ips
        .iter()
        .enumerate()
        .any(|(i, x)| i != idx && x.is_v4() == v4 && x.has_dhcp())
    {
        return Err(invalid(format!(
            "dhcp is supported only for a single {} address on each network",
            if v4 { "IPv4" } else { "IPv6" }
        )));
    }
    Ok(())
}

/// The `n`th `<ip>` element of the root.
fn ip_element(root: &mut Element, n: usize) -> Option<&mut Element> {
    root.elements_mut().filter(|e| e.name() == "ip").nth(n)
}

fn mac_eq(a: &str, b: &str) -> bool {
    match (
        a.parse::<crate::ids::MacAddr>(),
        b.parse::<crate::ids::MacAddr>(),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

fn dhcp_host(
    def: &mut NetworkDef,
    cx: &Cx<'_>,
    p: &XPath,
    command: Command,
    parent_index: i32,
) -> Result<()> {
    let name = def.model.name.clone();
    let idx = target_ip(def, parent_index)?;
    let ipdef = def.model.ips[idx].clone();
    let partial = command == Command::Delete;
    let host = ip::dhcp_host(cx, &cx.doc.root, p, &ipdef, partial)?;
    if !partial && host.ip.is_some_and(|a| a.is_ipv4() != ipdef.is_v4()) {
        return Err(invalid(
            "the address family of a host entry IP must match the address family of the dhcp element's parent",
        ));
    }
    let same_mac = |h: &DhcpHost| matches!((&host.mac, &h.mac), (Some(a), Some(b)) if mac_eq(a, b));
    let same_name = |h: &DhcpHost| host.name.is_some() && host.name == h.name;
    let same_ip = |h: &DhcpHost| host.ip.is_some() && host.ip == h.ip;
    let describe = || {
        format!(
            "mac='{}' name='{}' ip='{}'",
            host.mac.as_deref().unwrap_or("unknown"),
            host.name.as_deref().unwrap_or("(null)"),
            host.ip.map_or("unknown".to_string(), |a| a.to_string())
        )
    };
    let new_el = || {
        let mut e = cx.doc.root.clone();
        e.children
            .retain(|c| matches!(c, Node::Element(x) if x.name() == "lease"));
        e
    };
    match command {
        Command::AddFirst | Command::AddLast => {
            check_multi_dhcp(def, idx)?;
            if ipdef
                .hosts
                .iter()
                .any(|h| same_mac(h) || same_name(h) || same_ip(h))
            {
                return Err(invalid(format!(
                    "there is an existing dhcp host entry in network '{name}' that matches \"<host {}/>\"",
                    describe()
                )));
            }
            let el = new_el();
            def.edit(|root| {
                if let Some(ipe) = ip_element(root, idx) {
                    insert_entry(ipe, "dhcp", "host", el, command == Command::AddFirst);
                }
            })
        }
        Command::Delete => {
            let pos = ipdef.hosts.iter().position(|h| {
                (host.mac.is_none() || h.mac.is_none() || same_mac(h))
                    && (host.name.is_none() || same_name(h))
                    && (host.ip.is_none() || same_ip(h))
            });
            let Some(pos) = pos else {
                return Err(invalid(format!(
                    "couldn't locate a matching dhcp host entry in network '{name}'"
                )));
            };
            def.edit(|root| {
                if let Some(ipe) = ip_element(root, idx) {
                    remove_entry(ipe, "dhcp", "host", pos);
                }
            })
        }
        Command::Modify => {
            let pos = ipdef
                .hosts
                .iter()
                .position(|h| same_mac(h) || same_ip(h) || same_name(h));
            let Some(pos) = pos else {
                return Err(invalid(format!(
                    "couldn't locate an existing dhcp host entry with \"{}\" in network '{name}'",
                    describe()
                )));
            };
            let el = new_el();
            def.edit(|root| {
                if let Some(ipe) = ip_element(root, idx) {
                    replace_entry(ipe, "dhcp", "host", pos, el);
                }
            })
        }
    }
}

fn dhcp_range(
    def: &mut NetworkDef,
    snippet: &Element,
    command: Command,
    parent_index: i32,
) -> Result<()> {
    let name = def.model.name.clone();
    let idx = target_ip(def, parent_index)?;
    if command == Command::Modify {
        return Err(Error::new(
            ErrorKind::OperationUnsupported,
            "dhcp ranges cannot be modified, only added or deleted",
        ));
    }
    let get = |a: &str| snippet.attr(a).and_then(|v| super::addr::parse_ip(&v));
    let (Some(start), Some(end)) = (get("start"), get("end")) else {
        return Err(Error::xml(
            format!(
                "Missing or invalid 'start' or 'end' attribute in dhcp range for network '{name}'"
            ),
            crate::error::XmlLocation {
                source: Some("(network_update)".into()),
                line: snippet.pos().line,
                column: snippet.pos().column,
                path: "/range".into(),
            },
        ));
    };
    let ipdef = &def.model.ips[idx];
    if start.is_ipv4() != ipdef.is_v4() {
        return Err(invalid(
            "the address family of a dhcp range must match the address family of the dhcp element's parent",
        ));
    }
    let found = ipdef
        .ranges
        .iter()
        .position(|r| r.start == start && r.end == end);
    let el = Element::new("range")
        .with_attr("start", &start.to_string())
        .with_attr("end", &end.to_string());
    match (command, found) {
        (Command::AddFirst | Command::AddLast, Some(_)) => Err(invalid(format!(
            "there is an existing dhcp range entry in network '{name}' that matches \"<range start='{start}' end='{end}'/>\""
        ))),
        (Command::AddFirst | Command::AddLast, None) => {
            check_multi_dhcp(def, idx)?;
            def.edit(|root| {
                if let Some(ipe) = ip_element(root, idx) {
                    insert_entry(ipe, "dhcp", "range", el, command == Command::AddFirst);
                }
            })
        }
        (_, None) => Err(invalid(format!(
            "couldn't locate a matching dhcp range entry in network '{name}'"
        ))),
        (_, Some(pos)) => def.edit(|root| {
            if let Some(ipe) = ip_element(root, idx) {
                remove_entry(ipe, "dhcp", "range", pos);
            }
        }),
    }
}

fn dns_host(def: &mut NetworkDef, cx: &Cx<'_>, p: &XPath, command: Command) -> Result<()> {
    let name = def.model.name.clone();
    let add = matches!(command, Command::AddFirst | Command::AddLast);
    // Additions need a complete record; deletions match on ip or a name.
    let snippet = &cx.doc.root;
    let host_ip: Option<IpAddr> = snippet.attr("ip").and_then(|v| super::addr::parse_ip(&v));
    let names: Vec<String> = snippet
        .children_named("hostname")
        .map(Element::text)
        .collect();
    if add || command == Command::Modify {
        dns::host(cx, snippet, p)?;
    } else if host_ip.is_none() && names.is_empty() {
        return Err(Error::new(
            ErrorKind::XmlDetail,
            format!("Missing ip and hostname in network '{name}' DNS HOST record"),
        ));
    }
    let hosts = &def.model.dns.hosts;
    let matches: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            Some(h.ip) == host_ip
                || (command == Command::Delete && h.names.iter().any(|n| names.contains(n)))
        })
        .map(|(i, _)| i)
        .collect();
    let el = {
        let mut e = snippet.clone();
        e.children
            .retain(|c| matches!(c, Node::Element(x) if x.name() == "hostname"));
        e
    };
    if add {
        if !matches.is_empty() {
            return Err(invalid(format!(
                "there is already at least one DNS HOST record with a matching field in network {name}"
            )));
        }
        return def.edit(|root| {
            let first = command == Command::AddFirst;
            let dns_el = root.child_or_insert("dns");
            if first {
                let at = dns_el
                    .elements()
                    .position(|e| e.name() == "host")
                    .unwrap_or(usize::MAX);
                dns_el.insert_element(at, el);
            } else {
                dns_el.append_element(el);
            }
        });
    }
    match matches.len() {
        0 => Err(invalid(format!(
            "couldn't locate a matching DNS HOST record in network {name}"
        ))),
        1 => {
            let pos = matches[0];
            def.edit(|root| {
                if let Some(d) = root.child_mut("dns") {
                    let mut n = 0;
                    let mut replacement = Some(el);
                    d.children.retain_mut(|c| match c {
                        Node::Element(e) if e.name() == "host" => {
                            n += 1;
                            if n - 1 != pos {
                                return true;
                            }
                            match replacement.take().filter(|_| command == Command::Modify) {
                                Some(r) => {
                                    *e = r;
                                    true
                                }
                                None => false,
                            }
                        }
                        _ => true,
                    });
                }
            })
        }
        _ => Err(invalid(format!(
            "multiple matching DNS HOST records were found in network {name}"
        ))),
    }
}

fn is_add(command: Command) -> bool {
    matches!(command, Command::AddFirst | Command::AddLast)
}

/// The snippet as it is stored: the element without its text and comments.
fn stored(snippet: &Element) -> Element {
    let mut e = snippet.clone();
    e.children.retain(|c| matches!(c, Node::Element(_)));
    e
}

fn dns_txt(def: &mut NetworkDef, cx: &Cx<'_>, p: &XPath, command: Command) -> Result<()> {
    let name = def.model.name.clone();
    let txt = dns::txt(cx, &cx.doc.root, p, !is_add(command))?;
    let found = def.model.dns.txts.iter().position(|t| t.name == txt.name);
    match (is_add(command), found) {
        (true, Some(_)) => Err(invalid(format!(
            "there is already a DNS TXT record with name '{}' in network {name}",
            txt.name
        ))),
        (true, None) => {
            let el = stored(&cx.doc.root);
            def.edit(|root| insert_entry(root, "dns", "txt", el, command == Command::AddFirst))
        }
        (false, None) => Err(invalid(format!(
            "couldn't locate a matching DNS TXT record in network {name}"
        ))),
        (false, Some(pos)) => def.edit(|root| remove_entry(root, "dns", "txt", pos)),
    }
}

fn dns_srv(def: &mut NetworkDef, cx: &Cx<'_>, p: &XPath, command: Command) -> Result<()> {
    let name = def.model.name.clone();
    let srv = dns::srv(cx, &cx.doc.root, p, !is_add(command))?;
    let same = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
    let found: Vec<usize> = def
        .model
        .dns
        .srvs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            same(&srv.domain, &s.domain)
                && same(&srv.service, &s.service)
                && same(&srv.protocol, &s.protocol)
                && same(&srv.target, &s.target)
        })
        .map(|(i, _)| i)
        .collect();
    if is_add(command) {
        if !found.is_empty() {
            return Err(invalid(format!(
                "there is already at least one DNS SRV record matching all specified fields in network {name}"
            )));
        }
        let el = stored(&cx.doc.root);
        return def.edit(|root| insert_entry(root, "dns", "srv", el, command == Command::AddFirst));
    }
    match found.as_slice() {
        [] => Err(invalid(format!(
            "couldn't locate a matching DNS SRV record in network {name}"
        ))),
        [pos] => {
            let pos = *pos;
            def.edit(|root| remove_entry(root, "dns", "srv", pos))
        }
        _ => Err(invalid(format!(
            "multiple DNS SRV records matching all specified fields were found in network {name}"
        ))),
    }
}

fn portgroup(def: &mut NetworkDef, cx: &Cx<'_>, p: &XPath, command: Command) -> Result<()> {
    let name = def.model.name.clone();
    let pg = port::portgroup(cx, &cx.doc.root, p)?;
    let groups = &def.model.portgroups;
    let found = groups.iter().position(|g| g.name == pg.name);
    let default = groups.iter().position(|g| g.default);
    match (command, found) {
        (Command::Modify | Command::Delete, None) => {
            return Err(invalid(format!(
                "couldn't find a portgroup entry in network '{name}' matching <portgroup name='{}'>",
                pg.name
            )));
        }
        (Command::AddFirst | Command::AddLast, Some(_)) => {
            return Err(invalid(format!(
                "there is an existing portgroup entry in network '{name}' that matches \"<portgroup name='{}'>\"",
                pg.name
            )));
        }
        _ => {}
    }
    if command != Command::Delete && pg.default && default.is_some() && default != found {
        return Err(invalid(format!(
            "a different portgroup entry in network '{name}' is already set as the default. Only one default is allowed."
        )));
    }
    let el = stored(&cx.doc.root);
    let idx = found.unwrap_or(0);
    def.edit(|root| {
        let positions: Vec<usize> = root
            .elements()
            .enumerate()
            .filter(|(_, e)| e.name() == "portgroup")
            .map(|(i, _)| i)
            .collect();
        match command {
            Command::Modify => {
                if let Some(e) = root
                    .elements_mut()
                    .filter(|e| e.name() == "portgroup")
                    .nth(idx)
                {
                    *e = el;
                }
            }
            Command::Delete => {
                let mut n = 0;
                root.children.retain(|c| match c {
                    Node::Element(e) if e.name() == "portgroup" => {
                        n += 1;
                        n - 1 != idx
                    }
                    _ => true,
                });
            }
            Command::AddFirst => {
                root.insert_element(positions.first().copied().unwrap_or(usize::MAX), el)
            }
            Command::AddLast => {
                root.insert_element(positions.last().map_or(usize::MAX, |l| l + 1), el)
            }
        }
    })
}

fn forward_interface(def: &mut NetworkDef, snippet: &Element, command: Command) -> Result<()> {
    let name = def.model.name.clone();
    if command == Command::Modify {
        return Err(Error::new(
            ErrorKind::OperationUnsupported,
            "forward interface entries cannot be modified, only added or deleted",
        ));
    }
    let Some(dev) = snippet.attr("dev").map(|d| d.into_owned()) else {
        return Err(Error::new(
            ErrorKind::XmlError,
            "missing dev attribute in <interface> element",
        ));
    };
    let in_model = def
        .model
        .forward
        .ifs
        .iter()
        .any(|i| matches!(i, ForwardIf::Netdev(d) if *d == dev));
    // Entries as written: `<forward><interface dev>` children.
    let pos = def.doc.root.child("forward").and_then(|f| {
        f.elements()
            .filter(|e| e.name() == "interface")
            .position(|e| e.attr("dev").as_deref() == Some(dev.as_str()))
    });
    if is_add(command) {
        if in_model {
            return Err(invalid(format!(
                "there is an existing interface entry in network '{name}' that matches \"<interface dev='{dev}'>\""
            )));
        }
        if def.doc.root.child("forward").is_none() {
            return Err(invalid(format!(
                "network '{name}' has no <forward> element to add an interface to"
            )));
        }
        let el = Element::new("interface").with_attr("dev", &dev);
        return def.edit(|root| {
            insert_entry(
                root,
                "forward",
                "interface",
                el,
                command == Command::AddFirst,
            )
        });
    }
    match pos {
        Some(pos) => def.edit(|root| remove_entry(root, "forward", "interface", pos)),
        None => Err(invalid(format!(
            "couldn't find an interface entry in network '{name}' matching <interface dev='{dev}'>"
        ))),
    }
}

/// Adds `entry` to the `<container>` child of `parent` (created when
/// missing), before or after the entries of its kind.
fn insert_entry(parent: &mut Element, container: &str, kind: &str, entry: Element, first: bool) {
    let c = parent.child_or_insert(container);
    let positions: Vec<usize> = c
        .elements()
        .enumerate()
        .filter(|(_, e)| e.name() == kind)
        .map(|(i, _)| i)
        .collect();
    let at = if first {
        positions.first().copied().unwrap_or(0)
    } else {
        positions.last().map_or(c.elements().count(), |l| l + 1)
    };
    c.insert_element(at, entry);
}

/// Removes the `n`th `kind` entry of `<container>`.
fn remove_entry(parent: &mut Element, container: &str, kind: &str, n: usize) {
    if let Some(c) = parent.child_mut(container) {
        let mut i = 0;
        c.children.retain(|ch| match ch {
            Node::Element(e) if e.name() == kind => {
                i += 1;
                i - 1 != n
            }
            _ => true,
        });
    }
}

/// Replaces the `n`th `kind` entry of `<container>` with `entry`.
fn replace_entry(parent: &mut Element, container: &str, kind: &str, n: usize, entry: Element) {
    if let Some(c) = parent.child_mut(container)
        && let Some(e) = c.elements_mut().filter(|e| e.name() == kind).nth(n)
    {
        *e = entry;
    }
}
