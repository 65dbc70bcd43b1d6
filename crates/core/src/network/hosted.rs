//! What a network driver that runs networks on the host requires beyond the
//! parser (libvirt's `networkValidate`): a bridge name and MAC for the
//! modes with a virtkit-owned bridge, and which elements each forward mode
//! allows.

use super::NetworkDef;
use super::def::parse::Cx;
use super::def::{ForwardIf, ForwardMode};
use crate::error::{Error, ErrorKind, Result};
use crate::xml::{Element, XPath};

/// Highest `N` tried for a `virbrN` bridge name.
pub const MAX_BRIDGE_ID: u32 = 256;

/// The element at `names` below the root (first of each name), with its path.
fn find<'a>(root: &'a Element, names: &[&str]) -> (&'a Element, XPath) {
    let mut el = root;
    let mut p = XPath::root(root.name());
    for n in names {
        match el.child(n) {
            Some(c) => {
                p = p.child(el, c);
                el = c;
            }
            None => break,
        }
    }
    (el, p)
}

fn unsupported(def: &NetworkDef, names: &[&str], msg: String) -> Error {
    let cx = Cx {
        doc: &def.doc,
        name: def.model.name.clone(),
    };
    let (el, p) = find(&def.doc.root, names);
    cx.at(ErrorKind::ConfigUnsupported, el, &p, msg)
}

pub(super) fn prepare(
    def: &mut NetworkDef,
    taken: &dyn Fn(&str) -> bool,
    on_host: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if def.model.name.contains('\n') {
        return Err(unsupported(
            def,
            &["name"],
            "invalid char in name: 0x0a (a network name cannot contain a line break)".into(),
        ));
    }
    let mode = def.model.forward.mode;
    let mode_s = mode.as_str();
    let name = def.model.name.clone();
    let mut bandwidth_allowed = false;
    if mode.owns_bridge() {
        assign_bridge(def, taken, on_host)?;
        def.ensure_mac()?;
        bandwidth_allowed = true;
    } else {
        if mode == ForwardMode::Bridge && def.model.bridge.is_some() {
            bandwidth_allowed = true;
        }
        let m = &def.model;
        let refuse = |what: &str, at: &[&str]| {
            unsupported(
                def,
                at,
                format!(
                    "Unsupported <{what}> element in network {name} with forward mode='{mode_s}'"
                ),
            )
        };
        if m.mac.is_some() {
            return Err(refuse("mac", &["mac"]));
        }
        if !m.ips.is_empty() {
            return Err(refuse("ip", &["ip"]));
        }
        if !m.dns.txts.is_empty() || !m.dns.hosts.is_empty() || !m.dns.srvs.is_empty() {
            return Err(refuse("dns", &["dns"]));
        }
        if m.domain.is_some() {
            return Err(refuse("domain", &["domain"]));
        }
    }
    let m = &def.model;
    if m.bandwidth && !bandwidth_allowed {
        return Err(unsupported(
            def,
            &["bandwidth"],
            format!(
                "Unsupported network-wide <bandwidth> element in network {name} with forward mode='{mode_s}'"
            ),
        ));
    }
    let uses_netdev = m
        .forward
        .ifs
        .iter()
        .any(|i| matches!(i, ForwardIf::Netdev(_)));
    let uses_pci = m
        .forward
        .ifs
        .iter()
        .any(|i| matches!(i, ForwardIf::Pci { .. }));
    if mode == ForwardMode::Hostdev
        && let Some(ForwardIf::Netdev(d)) = m.forward.ifs.first()
    {
        return Err(unsupported(
            def,
            &["forward"],
            format!(
                "hostdev network '{name}' lists '{d}' in the device pool, but hostdev networks require all devices to be listed by PCI address, not network device name"
            ),
        ));
    }
    if uses_pci && mode != ForwardMode::Hostdev {
        return Err(unsupported(
            def,
            &["forward", "address"],
            format!(
                "network '{name}' has forward mode '{mode_s}' but lists a device by PCI address in the device pool. This is only supported for networks with forward mode 'hostdev'"
            ),
        ));
    }
    if usize::from(m.forward.pf.is_some()) + usize::from(uses_netdev) + usize::from(uses_pci) > 1 {
        return Err(unsupported(
            def,
            &["forward"],
            format!(
                "<address>, <interface>, and <pf> elements of <forward> in network {name} are mutually exclusive"
            ),
        ));
    }
    for v4 in [true, false] {
        if m.ip_by_family(Some(v4)).filter(|i| i.has_dhcp()).count() > 1 {
            let fam = if v4 { "IPv4" } else { "IPv6" };
            return Err(unsupported(
                def,
                &["ip"],
                format!(
                    "Multiple {fam} dhcp sections found -- dhcp is supported only for a single {fam} address on each network"
                ),
            ));
        }
    }
    check_portgroups(def, bandwidth_allowed)
}

/// Picks the bridge name: the given one (refused if another network uses
/// it), or the first name from its `%d` template or `virbr%d` that no
/// network uses and no host device has.
fn assign_bridge(
    def: &mut NetworkDef,
    taken: &dyn Fn(&str) -> bool,
    on_host: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let given = def.model.bridge.clone();
    if let Some(b) = &given
        && !b.contains("%d")
    {
        if taken(b) {
            let cx = Cx {
                doc: &def.doc,
                name: def.model.name.clone(),
            };
            let (el, p) = find(&def.doc.root, &["bridge"]);
            return Err(cx.at_attr(
                ErrorKind::Internal,
                el,
                &p,
                "name",
                format!(
                    "bridge name '{b}' already in use. Choose another name, or leave <bridge name> out to get a free virbrN"
                ),
            ));
        }
        return Ok(());
    }
    let template = match &given {
        Some(b) if b.matches("%d").count() == 1 && b.matches('%').count() == 1 => b.clone(),
        _ => "virbr%d".to_string(),
    };
    for id in 0..=MAX_BRIDGE_ID {
        let candidate = template.replacen("%d", &id.to_string(), 1);
        if !taken(&candidate) && !on_host(&candidate) {
            return def.set_bridge(&candidate);
        }
    }
    Err(Error::internal(format!(
        "Bridge generation exceeded max id {MAX_BRIDGE_ID}"
    )))
}

fn check_portgroups(def: &NetworkDef, bandwidth_allowed: bool) -> Result<()> {
    let m = &def.model;
    let name = &m.name;
    let mode = m.forward.mode;
    let vlan_allowed = match mode {
        ForwardMode::Hostdev | ForwardMode::Passthrough => true,
        ForwardMode::Bridge => m.virtualport.as_deref().is_none_or(|t| t == "openvswitch"),
        _ => false,
    };
    let vlan_used = m.vlan_tags > 0;
    let mut bad_vlan = false;
    let mut default: Option<&str> = None;
    for (i, pg) in m.portgroups.iter().enumerate() {
        if vlan_used || pg.vlan_tags > 0 {
            match &pg.virtualport {
                Some(t) if mode != ForwardMode::Bridge || t != "openvswitch" => bad_vlan = true,
                Some(_) => {}
                None if !vlan_allowed => bad_vlan = true,
                None => {}
            }
        }
        if pg.default {
            if let Some(d) = default {
                return Err(unsupported(
                    def,
                    &["portgroup"],
                    format!(
                        "network '{name}' has multiple default <portgroup> elements ({d} and {}), but only one default is allowed",
                        pg.name
                    ),
                ));
            }
            default = Some(&pg.name);
        }
        if m.portgroups[i + 1..].iter().any(|o| o.name == pg.name) {
            return Err(unsupported(
                def,
                &["portgroup"],
                format!(
                    "multiple <portgroup> elements with the same name ({}) in network '{name}'",
                    pg.name
                ),
            ));
        }
        if pg.bandwidth && (!bandwidth_allowed || mode == ForwardMode::Hostdev) {
            return Err(unsupported(
                def,
                &["portgroup"],
                format!(
                    "Unsupported <bandwidth> element in network '{name}' in portgroup '{}' with forward mode='{}'",
                    pg.name,
                    mode.as_str()
                ),
            ));
        }
    }
    if bad_vlan || (vlan_used && !vlan_allowed && default.is_none()) {
        return Err(unsupported(
            def,
            &["vlan"],
            format!(
                "<vlan> element specified for network {name}, whose type doesn't support vlan configuration"
            ),
        ));
    }
    Ok(())
}
