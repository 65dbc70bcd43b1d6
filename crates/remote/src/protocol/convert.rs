//! Conversions between wire handles and virtkit's handles.

use virtkit_core::{
    DomainInterface, DomainRef, Error, InterfaceRef, IpAddress, NetworkDhcpLease, NetworkRef,
    Result, StoragePoolRef, StorageVolRef, TypedParams, TypedValue, Uuid, XmlFlags,
};

use super::remote::*;

/// Converts a handle (`dom_ref`).
pub fn dom_ref(d: &NonnullDomain) -> DomainRef {
    DomainRef {
        name: d.name.clone(),
        uuid: Uuid(d.uuid),
        id: u32::try_from(d.id).ok(),
    }
}

/// Converts a handle (`wire_dom`).
pub fn wire_dom(d: &DomainRef) -> NonnullDomain {
    NonnullDomain {
        name: d.name.clone(),
        uuid: d.uuid.0,
        id: d.id.map_or(-1, |i| i as i32),
    }
}

/// Converts a handle (`net_ref`).
pub fn net_ref(n: &NonnullNetwork) -> NetworkRef {
    NetworkRef {
        name: n.name.clone(),
        uuid: Uuid(n.uuid),
    }
}

/// Converts a handle (`wire_net`).
pub fn wire_net(n: &NetworkRef) -> NonnullNetwork {
    NonnullNetwork {
        name: n.name.clone(),
        uuid: n.uuid.0,
    }
}

/// Converts a handle (`iface_ref`).
pub fn iface_ref(i: &NonnullInterface) -> InterfaceRef {
    InterfaceRef {
        name: i.name.clone(),
        mac: i.mac.clone(),
    }
}

/// Converts a handle (`wire_iface`).
pub fn wire_iface(i: &InterfaceRef) -> NonnullInterface {
    NonnullInterface {
        name: i.name.clone(),
        mac: i.mac.clone(),
    }
}

/// Converts a handle (`pool_ref`).
pub fn pool_ref(p: &NonnullStoragePool) -> StoragePoolRef {
    StoragePoolRef {
        name: p.name.clone(),
        uuid: Uuid(p.uuid),
    }
}

/// Converts a handle (`wire_pool`).
pub fn wire_pool(p: &StoragePoolRef) -> NonnullStoragePool {
    NonnullStoragePool {
        name: p.name.clone(),
        uuid: p.uuid.0,
    }
}

/// Converts a handle (`wire_vol`).
pub fn wire_vol(pool: &str, v: &StorageVolRef) -> NonnullStorageVol {
    NonnullStorageVol {
        pool: pool.to_string(),
        name: v.name.clone(),
        // The key is what identifies a volume host-wide: its path here.
        key: v.path.clone(),
    }
}

/// `VIR_NETWORK_XML_INACTIVE`, `VIR_INTERFACE_XML_INACTIVE` and
/// `VIR_STORAGE_XML_INACTIVE`: the only XML flag of networks, host
/// interfaces and storage pools, bit 0 on the wire where virtkit's
/// [`XmlFlags::INACTIVE`] (shared with domains) is bit 1.
pub const OBJECT_XML_INACTIVE: u32 = 1;

/// The XML flags of a network, interface or pool call as received:
/// `INACTIVE` translated, any other bit refused as libvirt's drivers do.
pub fn object_xml_flags(wire: u32, api: &str) -> Result<XmlFlags> {
    if wire & !OBJECT_XML_INACTIVE != 0 {
        return Err(Error::invalid_arg(format!(
            "unsupported flags (0x{:x}) in function {api}",
            wire & !OBJECT_XML_INACTIVE
        )));
    }
    Ok(if wire & OBJECT_XML_INACTIVE != 0 {
        XmlFlags::INACTIVE
    } else {
        XmlFlags::empty()
    })
}

/// The wire flags for a network, interface or pool XML call: only
/// `INACTIVE` has a meaning there.
pub fn wire_object_xml_flags(f: XmlFlags) -> u32 {
    if f.contains(XmlFlags::INACTIVE) {
        OBJECT_XML_INACTIVE
    } else {
        0
    }
}

/// Refuses flags a call does not take (libvirt's `virCheckFlags(0)`).
pub fn no_flags(wire: u32, api: &str) -> Result<()> {
    if wire != 0 {
        return Err(Error::invalid_arg(format!(
            "unsupported flags (0x{wire:x}) in function {api}"
        )));
    }
    Ok(())
}

/// A typed value on the wire.
pub fn wire_typed_value(v: &TypedValue) -> TypedParamValue {
    match v {
        TypedValue::Int(i) => TypedParamValue::Int(*i),
        TypedValue::UInt(i) => TypedParamValue::UInt(*i),
        TypedValue::LLong(i) => TypedParamValue::LLong(*i),
        TypedValue::ULLong(i) => TypedParamValue::ULLong(*i),
        TypedValue::Double(d) => TypedParamValue::Double(*d),
        TypedValue::Bool(b) => TypedParamValue::Boolean(i32::from(*b)),
        TypedValue::String(s) => TypedParamValue::String(s.clone()),
    }
}

/// A typed value from the wire.
pub fn typed_value(v: &TypedParamValue) -> TypedValue {
    match v {
        TypedParamValue::Int(i) => TypedValue::Int(*i),
        TypedParamValue::UInt(i) => TypedValue::UInt(*i),
        TypedParamValue::LLong(i) => TypedValue::LLong(*i),
        TypedParamValue::ULLong(i) => TypedValue::ULLong(*i),
        TypedParamValue::Double(d) => TypedValue::Double(*d),
        TypedParamValue::Boolean(b) => TypedValue::Bool(*b != 0),
        TypedParamValue::String(s) => TypedValue::String(s.clone()),
    }
}

/// Typed parameters on the wire.
pub fn wire_typed_params(p: &TypedParams) -> Vec<TypedParam> {
    p.iter()
        .map(|(field, v)| TypedParam {
            field: field.clone(),
            value: wire_typed_value(v),
        })
        .collect()
}

/// Typed parameters from the wire.
pub fn typed_params(p: &[TypedParam]) -> TypedParams {
    p.iter()
        .map(|t| (t.field.clone(), typed_value(&t.value)))
        .collect()
}

/// `virIPAddrType`: `VIR_IP_ADDR_TYPE_IPV4` 0, `VIR_IP_ADDR_TYPE_IPV6` 1.
fn ip_type(family: &str) -> i32 {
    if family == "ipv6" { 1 } else { 0 }
}

/// A DHCP lease on the wire.
pub fn wire_lease(l: &NetworkDhcpLease) -> NetworkDhcpLeaseWire {
    let opt = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    NetworkDhcpLeaseWire {
        iface: l.iface.clone(),
        expirytime: l.expiry_time,
        type_: ip_type(&l.family),
        mac: Some(l.mac.clone()).filter(|m| !m.is_empty()),
        iaid: opt(&l.iaid),
        ipaddr: l.ipaddr.clone(),
        prefix: l.prefix,
        hostname: opt(&l.hostname),
        clientid: opt(&l.clientid),
    }
}

/// A guest interface with its addresses, on the wire.
pub fn wire_interface(i: &DomainInterface) -> DomainInterfaceWire {
    DomainInterfaceWire {
        name: i.name.clone(),
        hwaddr: i.hwaddr.clone(),
        addrs: i
            .addrs
            .iter()
            .map(|a| DomainIpAddrWire {
                type_: ip_type(&a.family),
                addr: a.addr.clone(),
                prefix: a.prefix,
            })
            .collect::<Vec<_>>()
            .into(),
    }
}

/// A guest interface with its addresses, from the wire.
pub fn interface(i: &DomainInterfaceWire) -> DomainInterface {
    DomainInterface {
        name: i.name.clone(),
        hwaddr: i.hwaddr.clone(),
        addrs: i
            .addrs
            .iter()
            .map(|a| IpAddress {
                family: ip_family(a.type_),
                addr: a.addr.clone(),
                prefix: a.prefix,
            })
            .collect(),
    }
}

/// `virIPAddrType` as `ipv4`/`ipv6`.
fn ip_family(t: i32) -> String {
    match t {
        0 => "ipv4",
        1 => "ipv6",
        _ => "unknown",
    }
    .to_string()
}

/// A DHCP lease from the wire.
pub fn lease(l: &NetworkDhcpLeaseWire) -> NetworkDhcpLease {
    NetworkDhcpLease {
        iface: l.iface.clone(),
        expiry_time: l.expirytime,
        family: ip_family(l.type_),
        mac: l.mac.clone().unwrap_or_default(),
        iaid: l.iaid.clone(),
        ipaddr: l.ipaddr.clone(),
        prefix: l.prefix,
        hostname: l.hostname.clone(),
        clientid: l.clientid.clone(),
    }
}
