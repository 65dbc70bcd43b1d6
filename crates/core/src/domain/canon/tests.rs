//! End-to-end tests of the canonical printer on small documents.

use crate::domain::{DomainDef, FormatOptions, GenericProfile};

fn canon(xml: &str) -> String {
    let def = DomainDef::parse(xml).unwrap();
    def.to_xml_canonical(&GenericProfile, &FormatOptions::default())
}

fn devices(inner: &str) -> String {
    format!(
        "<domain type='qemu'><name>t</name><memory>1024</memory><os><type>hvm</type></os><devices>{inner}</devices></domain>"
    )
}

#[test]
fn minimal_domain_gets_libvirt_defaults_and_an_empty_devices_element() {
    let out = canon(
        "<domain type='qemu'><name>t</name><memory unit='MiB'>1</memory><os><type>hvm</type></os></domain>",
    );
    assert_eq!(
        out,
        "<domain type='qemu'>\n  <name>t</name>\n  <memory unit='KiB'>1024</memory>\n  <currentMemory unit='KiB'>1024</currentMemory>\n  <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n  </devices>\n</domain>\n"
    );
}

#[test]
fn empty_devices_element_is_printed_open_and_closed() {
    let out = canon(&devices(""));
    assert!(out.contains("  <devices>\n  </devices>\n"), "{out}");
}

#[test]
fn tcp_chardev_gets_connect_mode_and_raw_protocol() {
    let out = canon(&devices(
        "<serial type='tcp'><source host='h' service='1'/><target port='0'/></serial>",
    ));
    assert!(
        out.contains("<source mode='connect' host='h' service='1'/>\n      <protocol type='raw'/>"),
        "{out}"
    );
}

#[test]
fn tcp_chardev_without_host_is_rejected_with_its_location() {
    let e = DomainDef::parse(&devices(
        "<serial type='tcp'>\n<source service='1'/></serial>",
    ))
    .unwrap_err();
    let loc = e.xml_location().unwrap();
    assert_eq!(loc.path, "/domain/devices/serial/source");
    assert!(e.to_string().contains("'host'"), "{e}");
}

#[test]
fn vnc_without_port_is_automatic_with_an_address_listen() {
    let out = canon(&devices("<graphics type='vnc' listen='1.2.3.4'/>"));
    assert!(
        out.contains("<graphics type='vnc' port='-1' autoport='yes' listen='1.2.3.4'>\n      <listen type='address' address='1.2.3.4'/>\n    </graphics>"),
        "{out}"
    );
}

#[test]
fn mismatching_listen_attribute_is_rejected() {
    let e = DomainDef::parse(&devices(
        "<graphics type='vnc' listen='1.1.1.1'><listen type='address' address='2.2.2.2'/></graphics>",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("must match"), "{e}");
}

#[test]
fn smartcard_gets_ccid_controller_and_address() {
    let out = canon(&devices("<smartcard mode='host'/>"));
    assert!(out.contains("<controller type='ccid' index='0'/>"), "{out}");
    assert!(
        out.contains("<address type='ccid' controller='0' slot='0'/>"),
        "{out}"
    );
}

#[test]
fn unknown_elements_are_kept() {
    let out = canon(&devices(
        "<disk type='file'><target dev='vda'/><x-note>hi</x-note></disk>",
    ));
    assert!(out.contains("<x-note>hi</x-note>"), "{out}");
}

#[test]
fn reconnect_without_timeout_is_rejected() {
    let e = DomainDef::parse(&devices(
        "<channel type='tcp'><source mode='connect' host='h' service='1'><reconnect enabled='yes'/></source><target type='virtio' name='a'/></channel>",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("timeout"), "{e}");
    assert_eq!(
        e.xml_location().unwrap().path,
        "/domain/devices/channel/source/reconnect"
    );
}

#[test]
fn reconnect_with_invalid_timeout_is_rejected() {
    let e = DomainDef::parse(&devices(
        "<channel type='tcp'><source mode='connect' host='h' service='1'><reconnect enabled='yes' timeout='soon'/></source><target type='virtio' name='a'/></channel>",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("'soon'"), "{e}");
}

#[test]
fn disabled_reconnect_drops_its_timeout() {
    let out = canon(&devices(
        "<channel type='unix'><source mode='connect' path='/s'><reconnect enabled='no' timeout='5'/></source><target type='virtio' name='a'/></channel>",
    ));
    assert!(out.contains("<reconnect enabled='no'/>"), "{out}");
}

#[test]
fn vnc_socket_attribute_becomes_a_socket_listen() {
    let out = canon(&devices("<graphics type='vnc' socket='/tmp/s'/>"));
    assert!(
        out.contains("<graphics type='vnc' socket='/tmp/s'>\n      <listen type='socket' socket='/tmp/s'/>\n    </graphics>"),
        "{out}"
    );
}

#[test]
fn serial_port_gets_a_console_alias() {
    let out = canon(&devices("<serial type='pty'/>"));
    assert!(
        out.contains("<serial type='pty'>\n      <target port='0'/>\n    </serial>\n    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>"),
        "{out}"
    );
}

#[test]
fn controllers_of_one_type_are_sorted_by_index_at_parse() {
    let out = canon(&devices(
        "<controller type='usb' index='1'/><controller type='ide' index='0'/><controller type='usb' index='0'/>",
    ));
    let usb0 = out.find("type='usb' index='0'").unwrap();
    let usb1 = out.find("type='usb' index='1'").unwrap();
    let ide = out.find("type='ide'").unwrap();
    assert!(usb0 < usb1 && usb1 < ide, "{out}");
}

#[test]
fn cachetune_vcpus_beyond_the_domain_are_dropped() {
    let out = canon(
        "<domain type='qemu'><name>t</name><memory>1024</memory><vcpu>2</vcpu>\
         <cputune><cachetune vcpus='0-3'><cache id='0' level='3' type='both' size='3072' unit='KiB'/></cachetune>\
         <cachetune vcpus='7'><cache id='0' level='3' type='both' size='1' unit='MiB'/></cachetune></cputune>\
         <os><type>hvm</type></os></domain>",
    );
    assert!(
        out.contains("<cachetune vcpus='0-1'>\n      <cache id='0' level='3' type='both' size='3' unit='MiB'/>\n    </cachetune>\n  </cputune>"),
        "{out}"
    );
}

#[test]
fn overlapping_cachetunes_are_rejected() {
    let e = DomainDef::parse(
        "<domain type='qemu'><name>t</name><memory>1024</memory><vcpu>4</vcpu>\
         <cputune><cachetune vcpus='0-1'/><memorytune vcpus='1-2'><node id='0' bandwidth='5'/></memorytune></cputune>\
         <os><type>hvm</type></os></domain>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
}
