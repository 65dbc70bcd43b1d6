//! Conversions between wire handles and virtkit's handles.

use virtkit_core::{DomainRef, InterfaceRef, NetworkRef, StoragePoolRef, StorageVolRef, Uuid};

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
