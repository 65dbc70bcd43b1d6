//! Unit tests of the network view: positioned errors, generated values and
//! the canonical printout of small documents.

use super::*;

const NAT: &str = "<network>
  <name>n1</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='nat'/>
  <ip address='10.9.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.9.0.10' end='10.9.0.20'/>
    </dhcp>
  </ip>
</network>
";

#[test]
fn canonical_adds_bridge_defaults() {
    let d = NetworkDef::parse(NAT).unwrap();
    let out = d.to_xml_canonical(&FormatOptions::default());
    assert!(
        out.contains("<forward mode='nat'/>\n  <bridge stp='on' delay='0'/>"),
        "{out}"
    );
}

#[test]
fn errors_point_at_the_attribute() {
    let bad = NAT.replace("10.9.0.20", "10.9.1.20");
    let e = NetworkDef::parse(&bad).unwrap_err();
    let loc = e.xml_location().unwrap();
    assert_eq!(loc.line, 7, "{e}");
    assert_eq!(loc.path, "/network/ip/dhcp/range");
    assert!(
        e.to_string()
            .contains("not entirely within network 10.9.0.1/24"),
        "{e}"
    );

    let bad = NAT.replace("mode='nat'", "mode='tunnel'");
    let e = NetworkDef::parse(&bad).unwrap_err();
    assert_eq!(e.xml_location().unwrap().path, "/network/forward/@mode");
    assert!(
        e.to_string().contains("unknown forwarding type 'tunnel'"),
        "{e}"
    );
}

#[test]
fn prepare_for_host_assigns_bridge_and_mac_once() {
    let mut d = NetworkDef::parse(NAT).unwrap();
    d.prepare_for_host(&|b| b == "virbr0", &|_| false).unwrap();
    assert_eq!(d.bridge(), Some("virbr1"));
    let mac = d.mac().unwrap();
    assert_eq!(&mac.octets()[..3], &[0x52, 0x54, 0x00]);
    let again = NetworkDef::parse(&d.to_xml_as_defined()).unwrap();
    assert_eq!(again.mac(), Some(mac));
    let mut again = again;
    again.prepare_for_host(&|_| false, &|_| false).unwrap();
    assert_eq!(again.mac(), Some(mac));
    assert_eq!(again.bridge(), Some("virbr1"));
}

#[test]
fn update_adds_and_deletes_dhcp_hosts() {
    let mut d = NetworkDef::parse(NAT).unwrap();
    let host = "<host mac='52:54:00:00:00:01' name='g1' ip='10.9.0.50'/>";
    update::apply(
        &mut d,
        update::Command::AddLast,
        update::Section::IpDhcpHost,
        -1,
        host,
    )
    .unwrap();
    assert_eq!(d.model().ips[0].hosts.len(), 1);
    let e = update::apply(
        &mut d,
        update::Command::AddLast,
        update::Section::IpDhcpHost,
        -1,
        host,
    )
    .unwrap_err();
    assert!(e.to_string().contains("existing dhcp host entry"), "{e}");
    update::apply(
        &mut d,
        update::Command::Delete,
        update::Section::IpDhcpHost,
        -1,
        "<host mac='52:54:00:00:00:01'/>",
    )
    .unwrap();
    assert!(d.model().ips[0].hosts.is_empty());
}

fn upd(d: &mut NetworkDef, c: update::Command, s: update::Section, xml: &str) -> crate::Result<()> {
    update::apply(d, c, s, -1, xml)
}

#[test]
fn update_dns_txt_and_srv_records() {
    use update::{Command::*, Section::*};
    let mut d = NetworkDef::parse(NAT).unwrap();
    upd(&mut d, AddLast, DnsTxt, "<txt name='a' value='1'/>").unwrap();
    upd(&mut d, AddFirst, DnsTxt, "<txt name='b' value='2'/>").unwrap();
    let names: Vec<_> = d.model().dns.txts.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, ["b", "a"], "add-first goes first");
    let e = upd(&mut d, AddLast, DnsTxt, "<txt name='a' value='9'/>").unwrap_err();
    assert!(
        e.to_string()
            .contains("already a DNS TXT record with name 'a'"),
        "{e}"
    );
    let e = upd(&mut d, Modify, DnsTxt, "<txt name='a' value='9'/>").unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::OperationUnsupported);
    // Deleting needs only the name.
    upd(&mut d, Delete, DnsTxt, "<txt name='a'/>").unwrap();
    assert_eq!(d.model().dns.txts.len(), 1);
    let e = upd(&mut d, Delete, DnsTxt, "<txt name='zz'/>").unwrap_err();
    assert!(
        e.to_string().contains("couldn't locate a matching DNS TXT"),
        "{e}"
    );

    let srv = "<srv service='ldap' protocol='tcp' domain='x.test' target='h' port='389'/>";
    upd(&mut d, AddLast, DnsSrv, srv).unwrap();
    upd(
        &mut d,
        AddLast,
        DnsSrv,
        "<srv service='ldap' protocol='udp'/>",
    )
    .unwrap();
    let e = upd(&mut d, AddLast, DnsSrv, srv).unwrap_err();
    assert!(
        e.to_string().contains("matching all specified fields"),
        "{e}"
    );
    // A partial record that matches both is ambiguous; a fuller one is not.
    let e = upd(&mut d, Delete, DnsSrv, "<srv service='ldap'/>").unwrap_err();
    assert!(e.to_string().contains("multiple DNS SRV records"), "{e}");
    upd(
        &mut d,
        Delete,
        DnsSrv,
        "<srv service='ldap' protocol='udp'/>",
    )
    .unwrap();
    assert_eq!(d.model().dns.srvs.len(), 1);
    // Bad records are refused with the parser's message, nothing changes.
    let before = d.to_xml_as_defined();
    let e = upd(&mut d, AddLast, DnsTxt, "<txt name='a b' value='1'/>").unwrap_err();
    assert!(e.to_string().contains("prohibited character"), "{e}");
    assert_eq!(d.to_xml_as_defined(), before);
}

#[test]
fn update_portgroups_and_forward_interfaces() {
    use update::{Command::*, Section::*};
    let mut d = NetworkDef::parse(NAT).unwrap();
    upd(
        &mut d,
        AddLast,
        Portgroup,
        "<portgroup name='p1' default='yes'/>",
    )
    .unwrap();
    upd(&mut d, AddLast, Portgroup, "<portgroup name='p2'/>").unwrap();
    let e = upd(
        &mut d,
        AddLast,
        Portgroup,
        "<portgroup name='p3' default='yes'/>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("Only one default is allowed"), "{e}");
    let e = upd(&mut d, AddFirst, Portgroup, "<portgroup name='p2'/>").unwrap_err();
    assert!(e.to_string().contains("existing portgroup entry"), "{e}");
    // Modify may keep the default on the group that has it.
    upd(
        &mut d,
        Modify,
        Portgroup,
        "<portgroup name='p1' default='yes'><vlan><tag id='42'/></vlan></portgroup>",
    )
    .unwrap();
    let groups = &d.model().portgroups;
    assert_eq!(groups.len(), 2);
    assert_eq!((groups[0].name.as_str(), groups[0].vlan_tags), ("p1", 1));
    upd(&mut d, Delete, Portgroup, "<portgroup name='p1'/>").unwrap();
    let e = upd(&mut d, Delete, Portgroup, "<portgroup name='p1'/>").unwrap_err();
    assert!(
        e.to_string().contains("couldn't find a portgroup entry"),
        "{e}"
    );

    let mut b = NetworkDef::parse(
        "<network><name>b</name><forward mode='bridge'><interface dev='eth1'/></forward></network>",
    )
    .unwrap();
    upd(&mut b, AddLast, ForwardInterface, "<interface dev='eth2'/>").unwrap();
    let e = upd(
        &mut b,
        AddFirst,
        ForwardInterface,
        "<interface dev='eth1'/>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("existing interface entry"), "{e}");
    upd(&mut b, Delete, ForwardInterface, "<interface dev='eth1'/>").unwrap();
    assert_eq!(
        b.model().forward.ifs,
        vec![def::ForwardIf::Netdev("eth2".into())]
    );
    let e = upd(&mut b, Modify, ForwardInterface, "<interface dev='eth2'/>").unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::OperationUnsupported);
    // Sections libvirt cannot update are refused by name.
    let e = upd(&mut b, AddLast, Bridge, "<bridge name='x'/>").unwrap_err();
    assert!(
        e.to_string().contains("can't update 'bridge' section"),
        "{e}"
    );
}
