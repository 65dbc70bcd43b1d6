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
