//! libvirt's PCI address assignment for x86 PCs.
//!
//! Every device that sits on PCI and has no address gets one, the way
//! libvirt persists them: the chipset's fixed functions first (PIIX3 on
//! slot 1 of the i440FX, the LPC/SATA/SMBus slot 0x1f and the USB2 slot
//! 0x1d of the Q35, the primary video card on slot 2 or 1), then every
//! explicit address, then free slots in libvirt's device order. On Q35,
//! PCI Express devices each get a `pcie-root-port` and conventional PCI
//! devices a `pcie-to-pci-bridge`; controllers that are missing are added,
//! plus one spare hotplug port, as libvirt does in its first, counting
//! pass. Root ports fill the eight functions of a slot before taking the
//! next one.

use virtkit_core::xml::{Element, Node};

use super::address::{PciAddr, parse_num};
use super::controllers::insert_controller;
use super::machine::Chipset;

/// What a device plugs in as, and what a bus accepts (bit flags).
type Connect = u16;
const PCI_DEV: Connect = 1;
const PCIE_DEV: Connect = 1 << 1;
const PCI_BRIDGE: Connect = 1 << 2;
const ROOT_PORT: Connect = 1 << 3;
const PCIE_TO_PCI_BRIDGE: Connect = 1 << 4;
const DMI_TO_PCI_BRIDGE: Connect = 1 << 5;
const SWITCH_UP: Connect = 1 << 6;
const SWITCH_DOWN: Connect = 1 << 7;
const PCI_EXPANDER: Connect = 1 << 8;
const PCIE_EXPANDER: Connect = 1 << 9;

/// A PCI controller model: the slots its bus offers, what it accepts and
/// how the controller itself plugs in (`None` for roots).
struct BusModel {
    model: &'static str,
    slots: (u32, u32),
    accepts: Connect,
    plugs_as: Option<Connect>,
}

const BUS_MODELS: &[BusModel] = &[
    BusModel {
        model: "pci-root",
        slots: (1, 31),
        accepts: PCI_DEV | PCI_BRIDGE | PCI_EXPANDER,
        plugs_as: None,
    },
    BusModel {
        model: "pcie-root",
        slots: (1, 31),
        accepts: ROOT_PORT | DMI_TO_PCI_BRIDGE | PCIE_EXPANDER,
        plugs_as: None,
    },
    BusModel {
        model: "pci-bridge",
        slots: (1, 31),
        accepts: PCI_DEV | PCI_BRIDGE,
        plugs_as: Some(PCI_BRIDGE),
    },
    BusModel {
        model: "pcie-root-port",
        slots: (0, 0),
        accepts: PCIE_DEV | PCIE_TO_PCI_BRIDGE | SWITCH_UP,
        plugs_as: Some(ROOT_PORT),
    },
    BusModel {
        model: "pcie-switch-upstream-port",
        slots: (0, 31),
        accepts: SWITCH_DOWN,
        plugs_as: Some(SWITCH_UP),
    },
    BusModel {
        model: "pcie-switch-downstream-port",
        slots: (0, 0),
        accepts: PCIE_DEV | PCIE_TO_PCI_BRIDGE | SWITCH_UP,
        plugs_as: Some(SWITCH_DOWN),
    },
    BusModel {
        model: "pcie-to-pci-bridge",
        slots: (1, 31),
        accepts: PCI_DEV,
        plugs_as: Some(PCIE_TO_PCI_BRIDGE),
    },
    BusModel {
        model: "dmi-to-pci-bridge",
        slots: (0, 31),
        accepts: PCI_BRIDGE,
        plugs_as: Some(DMI_TO_PCI_BRIDGE),
    },
    BusModel {
        model: "pci-expander-bus",
        slots: (0, 31),
        accepts: PCI_DEV | PCI_BRIDGE,
        plugs_as: Some(PCI_EXPANDER),
    },
    BusModel {
        model: "pcie-expander-bus",
        slots: (0, 31),
        accepts: ROOT_PORT | SWITCH_UP,
        plugs_as: Some(PCIE_EXPANDER),
    },
];

fn bus_model(name: &str) -> Option<&'static BusModel> {
    BUS_MODELS.iter().find(|m| m.model == name)
}

fn attr(e: &Element, n: &str) -> Option<String> {
    e.attr(n).map(|v| v.into_owned())
}

/// The connection a virtio device needs: conventional PCI for the
/// transitional model, otherwise PCI Express where the machine has it.
fn virtio(model: Option<&str>, chipset: Chipset) -> Connect {
    match model {
        Some("virtio-transitional") => PCI_DEV,
        _ => endpoint(true, chipset),
    }
}

/// A PCI Express endpoint on Q35, conventional PCI elsewhere.
fn endpoint(express: bool, chipset: Chipset) -> Connect {
    if express && chipset == Chipset::Q35 {
        PCIE_DEV
    } else {
        PCI_DEV
    }
}

/// USB controller models with a PCI Express interface.
const EXPRESS_USB: &[&str] = &["nec-xhci", "qemu-xhci"];
/// SCSI controller models that are virtio devices.
const VIRTIO_SCSI: &[&str] = &[
    "virtio-scsi",
    "virtio-transitional",
    "virtio-non-transitional",
];
/// NIC models with a PCI Express interface.
const EXPRESS_NICS: &[&str] = &["e1000e", "vmxnet3"];
/// NIC models that are not on PCI.
const NON_PCI_NICS: &[&str] = &["usb-net", "spapr-vlan", "lan9118", "smc91c111"];
/// Sound models that are not on PCI.
const NON_PCI_SOUND: &[&str] = &["sb16", "pcspk", "usb"];

/// How a device plugs into PCI, or `None` when it takes no PCI address.
fn connect(dev: &Element, chipset: Chipset) -> Option<Connect> {
    let model = attr(dev, "model");
    let child_model = dev.child("model").and_then(|m| attr(m, "type"));
    let virtio_model = |m: Option<&str>| virtio(m, chipset);
    match dev.name() {
        "controller" => {
            let ty = attr(dev, "type").unwrap_or_default();
            match ty.as_str() {
                "pci" => bus_model(model.as_deref().unwrap_or("")).and_then(|m| m.plugs_as),
                "usb" => match model.as_deref() {
                    Some("none") => None,
                    Some(m) if EXPRESS_USB.contains(&m) => Some(endpoint(true, chipset)),
                    _ => Some(PCI_DEV),
                },
                "scsi" => match model.as_deref() {
                    Some(m) if VIRTIO_SCSI.contains(&m) => Some(virtio_model(Some(m))),
                    Some("ibmvscsi") => None,
                    _ => Some(PCI_DEV),
                },
                "virtio-serial" => Some(virtio_model(model.as_deref())),
                "sata" => Some(endpoint(true, chipset)),
                "ide" => Some(PCI_DEV),
                _ => None,
            }
        }
        "filesystem" => Some(virtio_model(model.as_deref())),
        "interface" => {
            if attr(dev, "type").as_deref() == Some("hostdev") {
                return None;
            }
            match child_model.as_deref() {
                Some(m) if m.starts_with("virtio") => Some(virtio_model(Some(m))),
                Some(m) if EXPRESS_NICS.contains(&m) => Some(endpoint(true, chipset)),
                Some(m) if NON_PCI_NICS.contains(&m) => None,
                _ => Some(PCI_DEV),
            }
        }
        "sound" => match model.as_deref() {
            Some(m) if NON_PCI_SOUND.contains(&m) => None,
            _ => Some(PCI_DEV),
        },
        "disk" => {
            let bus = dev.child("target").and_then(|t| attr(t, "bus"));
            (bus.as_deref() == Some("virtio")).then(|| virtio_model(model.as_deref()))
        }
        "hostdev" => {
            let ty = attr(dev, "type");
            let vfio_mdev = ty.as_deref() == Some("mdev") && model.as_deref() == Some("vfio-pci");
            (attr(dev, "mode").as_deref() != Some("capabilities")
                && (ty.as_deref() == Some("pci")
                    || ty.as_deref() == Some("scsi_host")
                    || vfio_mdev))
                .then(|| endpoint(true, chipset))
        }
        "memballoon" | "rng" | "vsock" | "crypto" => match model.as_deref() {
            Some(m) if m.starts_with("virtio") => Some(virtio_model(Some(m))),
            None if dev.name() != "memballoon" => Some(virtio_model(None)),
            _ => None,
        },
        "watchdog" => (model.as_deref() == Some("i6300esb")).then_some(PCI_DEV),
        "video" => match child_model.as_deref() {
            Some("none") | Some("ramfb") => None,
            Some("virtio") => Some(virtio_model(model.as_deref())),
            Some("bochs") => Some(endpoint(true, chipset)),
            _ => Some(PCI_DEV),
        },
        "shmem" => Some(PCI_DEV),
        "input" => {
            (attr(dev, "bus").as_deref() == Some("virtio")).then(|| virtio_model(model.as_deref()))
        }
        "serial" => (dev.child("target").and_then(|t| attr(t, "type")).as_deref()
            == Some("pci-serial"))
        .then_some(PCI_DEV),
        "iommu" => (model.as_deref() == Some("virtio")).then(|| virtio_model(None)),
        "memory" => matches!(model.as_deref(), Some("virtio-pmem") | Some("virtio-mem"))
            .then(|| virtio_model(None)),
        _ => None,
    }
}

/// The device kinds in the order libvirt assigns their addresses, after
/// the PCI controllers. `controller` here means the non-PCI ones.
const ASSIGN_ORDER: &[&str] = &[
    "filesystem",
    "interface",
    "sound",
    "controller",
    "disk",
    "hostdev",
    "memballoon",
    "rng",
    "watchdog",
    "video",
    "shmem",
    "input",
    "serial",
    "vsock",
    "iommu",
    "crypto",
    "memory",
];

/// One bus and what is plugged into it.
struct Bus {
    model: &'static BusModel,
    /// What plugs in here (a root port added for a bridge takes only that).
    accepts: Connect,
    /// Used functions per slot (bit n = function n).
    used: [u8; 32],
    /// Slots whose functions are shared by aggregating devices.
    aggregate: [bool; 32],
}

impl Bus {
    fn new(model: &'static BusModel) -> Bus {
        Bus {
            model,
            accepts: model.accepts,
            used: [0; 32],
            aggregate: [false; 32],
        }
    }

    fn fully_reserved(&self) -> bool {
        let (lo, hi) = self.model.slots;
        (lo..=hi).all(|s| self.used[s as usize] != 0)
    }

    /// The first slot that is free, or that shares a free function with
    /// an aggregating device: (slot, function).
    fn find(&self, aggregate: bool) -> Option<(u32, u32)> {
        let (lo, hi) = self.model.slots;
        for slot in lo..=hi {
            let used = self.used[slot as usize];
            if used == 0 {
                return Some((slot, 0));
            }
            if aggregate
                && self.aggregate[slot as usize]
                && let Some(f) = (0..8).find(|f| used & (1 << f) == 0)
            {
                return Some((slot, f));
            }
        }
        None
    }
}

/// The buses of a domain, indexed by PCI controller index (gaps are
/// `None` until filled).
struct Layout {
    buses: Vec<Option<Bus>>,
    /// Controllers added while counting: (index, model).
    added: Vec<(u32, &'static str)>,
}

impl Layout {
    fn new(devices: &Element) -> Layout {
        let mut buses: Vec<Option<Bus>> = Vec::new();
        for c in devices.children_named("controller") {
            if attr(c, "type").as_deref() != Some("pci") {
                continue;
            }
            let Some(idx) = attr(c, "index").and_then(|i| parse_num(&i)) else {
                continue;
            };
            let Some(model) = attr(c, "model").and_then(|m| bus_model(&m)) else {
                continue;
            };
            let idx = idx as usize;
            if idx >= 256 {
                continue;
            }
            if buses.len() <= idx {
                buses.resize_with(idx + 1, || None);
            }
            buses[idx] = Some(Bus::new(model));
        }
        Layout {
            buses,
            added: Vec::new(),
        }
    }

    fn bus_mut(&mut self, idx: u32) -> Option<&mut Bus> {
        self.buses.get_mut(idx as usize).and_then(Option::as_mut)
    }

    fn slot_in_use(&self, a: PciAddr) -> bool {
        self.buses
            .get(a.bus as usize)
            .and_then(Option::as_ref)
            .is_none_or(|b| a.slot >= 32 || b.used[a.slot as usize] != 0)
    }

    /// Marks `a` used; `aggregate` marks its slot as shareable.
    fn reserve(&mut self, a: PciAddr, aggregate: bool) {
        if a.slot >= 32 || a.function >= 8 {
            return;
        }
        if let Some(b) = self.bus_mut(a.bus) {
            if b.used[a.slot as usize] == 0 {
                b.aggregate[a.slot as usize] = aggregate;
            }
            b.used[a.slot as usize] |= 1 << a.function;
        }
    }

    /// The next free address for a device plugging in as `needs`, on the
    /// lowest bus that takes it.
    fn find(&self, needs: Connect, aggregate: bool) -> Option<PciAddr> {
        self.buses.iter().enumerate().find_map(|(idx, bus)| {
            let bus = bus.as_ref()?;
            if bus.accepts & needs == 0 {
                return None;
            }
            bus.find(aggregate).map(|(slot, function)| PciAddr {
                domain: 0,
                bus: idx as u32,
                slot,
                function,
            })
        })
    }

    /// Adds the controllers libvirt adds when nothing takes `needs`;
    /// returns the bus the device goes on. The new controllers get their
    /// own addresses in the next pass.
    fn grow(&mut self, needs: Connect) -> Option<u32> {
        let push = |l: &mut Layout, model: &'static str, accepts: Option<Connect>| {
            let bm = bus_model(model)?;
            let mut bus = Bus::new(bm);
            if let Some(a) = accepts {
                bus.accepts = a;
            }
            let i = l.buses.len() as u32;
            l.buses.push(Some(bus));
            l.added.push((i, model));
            Some(i)
        };
        if self.buses.len() >= 255 {
            return None;
        }
        if needs & PCI_DEV != 0 {
            let has_bridge_slot = self
                .buses
                .iter()
                .flatten()
                .any(|b| b.accepts & PCI_BRIDGE != 0);
            if has_bridge_slot {
                push(self, "pci-bridge", None)
            } else {
                // A pure PCI Express guest: a root port that takes only the
                // bridge, and the bridge the device goes on.
                let port = push(self, "pcie-root-port", Some(PCIE_TO_PCI_BRIDGE))?;
                let bridge = push(self, "pcie-to-pci-bridge", None)?;
                if let Some(b) = self.bus_mut(port) {
                    b.used[0] = 1;
                }
                Some(bridge)
            }
        } else if needs & (PCIE_DEV | SWITCH_UP) != 0 {
            push(self, "pcie-root-port", None)
        } else {
            // Root ports, bridges into the root complex and expander buses
            // are never added automatically.
            None
        }
    }

    /// Reserves and returns a free address for `needs`, growing the bus
    /// list when counting.
    fn take(&mut self, needs: Connect, aggregate: bool, counting: bool) -> Option<PciAddr> {
        let a = match self.find(needs, aggregate) {
            Some(a) => a,
            None if counting => {
                let bus = self.grow(needs)?;
                let slot = self.buses.get(bus as usize)?.as_ref()?.model.slots.0;
                PciAddr {
                    domain: 0,
                    bus,
                    slot,
                    function: 0,
                }
            }
            None => return None,
        };
        self.reserve(a, aggregate);
        Some(a)
    }
}

/// Where the chipset puts a device that has no address: (address, whether
/// the function is built into the chipset and so always the device's,
/// even though its slot is otherwise reserved).
fn fixed_address(dev: &Element, chipset: Chipset, first_video: bool) -> Option<(PciAddr, bool)> {
    let at = |slot, function, builtin| {
        Some((
            PciAddr {
                domain: 0,
                bus: 0,
                slot,
                function,
            },
            builtin,
        ))
    };
    let ty = attr(dev, "type");
    let idx = attr(dev, "index").and_then(|i| parse_num(&i));
    let model = attr(dev, "model");
    match (chipset, dev.name()) {
        (Chipset::I440fx, "controller") if ty.as_deref() == Some("ide") && idx == Some(0) => {
            at(1, 1, true)
        }
        (Chipset::I440fx, "controller")
            if ty.as_deref() == Some("usb")
                && idx == Some(0)
                && matches!(model.as_deref(), None | Some("piix3-uhci")) =>
        {
            at(1, 2, true)
        }
        (Chipset::Q35, "controller") if ty.as_deref() == Some("sata") && idx == Some(0) => {
            at(0x1f, 2, true)
        }
        (Chipset::Q35, "controller")
            if ty.as_deref() == Some("usb") && model.as_deref() == Some("ich9-uhci1") =>
        {
            at(0x1d, 0, false)
        }
        (Chipset::Q35, "sound") if model.as_deref() == Some("ich9") => at(0x1b, 0, false),
        (Chipset::I440fx, "video") if first_video => at(2, 0, false),
        (Chipset::Q35, "video") if first_video => at(1, 0, false),
        _ => None,
    }
}

/// Whether `dev` is the first video device and a PCI one.
fn is_primary_video(devices: &Element, dev: &Element) -> bool {
    dev.name() == "video"
        && devices
            .children_named("video")
            .next()
            .is_some_and(|v| std::ptr::eq(v, dev))
        && connect(dev, Chipset::I440fx).is_some()
}

/// The devices of `devices` in assignment order, as (child index, connect).
fn assignment_order(devices: &Element, chipset: Chipset) -> Vec<(usize, Connect)> {
    let els: Vec<(usize, &Element)> = devices
        .children
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Node::Element(e) => Some((i, e)),
            _ => None,
        })
        .collect();
    let mut order = Vec::new();
    // PCI controllers first, then the other kinds in libvirt's order.
    for (i, e) in &els {
        if e.name() == "controller"
            && attr(e, "type").as_deref() == Some("pci")
            && let Some(c) = connect(e, chipset)
        {
            order.push((*i, c));
        }
    }
    for kind in ASSIGN_ORDER {
        for (i, e) in &els {
            if e.name() != *kind
                || (e.name() == "controller" && attr(e, "type").as_deref() == Some("pci"))
            {
                continue;
            }
            if let Some(c) = connect(e, chipset) {
                order.push((*i, c));
            }
        }
    }
    order
}

fn element_at(devices: &Element, i: usize) -> Option<&Element> {
    match devices.children.get(i) {
        Some(Node::Element(e)) => Some(e),
        _ => None,
    }
}

fn element_at_mut(devices: &mut Element, i: usize) -> Option<&mut Element> {
    match devices.children.get_mut(i) {
        Some(Node::Element(e)) => Some(e),
        _ => None,
    }
}

/// Whether a PCI controller is auto-placed into a shared slot.
fn aggregates(dev: &Element) -> bool {
    dev.name() == "controller"
        && attr(dev, "type").as_deref() == Some("pci")
        && attr(dev, "model").as_deref() == Some("pcie-root-port")
}

/// Which functions of the chipset's own slot are taken by built-in
/// devices that are not in the definition.
fn chipset_reservations(chipset: Chipset) -> &'static [(u32, u32)] {
    match chipset {
        // The PIIX3 ISA bridge and power management functions.
        Chipset::I440fx => &[(1, 0), (1, 3)],
        // The ICH9 LPC bridge and SMBus functions.
        Chipset::Q35 => &[(0x1f, 0), (0x1f, 3)],
        Chipset::Other => &[],
    }
}

/// Reserves the chipset's functions and every explicit address, then
/// hands out addresses in order. In the counting pass (`counting`) the
/// devices keep their elements unchanged and missing buses are added.
fn place(devices: &mut Element, chipset: Chipset, counting: bool) -> Layout {
    let mut layout = Layout::new(devices);
    let order = assignment_order(devices, chipset);
    // Explicit addresses, adding buses that are named but missing while
    // counting.
    for &(i, needs) in &order {
        let Some(dev) = element_at(devices, i) else {
            continue;
        };
        if let Some(a) = PciAddr::of(dev) {
            while counting && layout.buses.len() <= a.bus as usize {
                if layout.grow(needs).is_none() {
                    break;
                }
            }
            layout.reserve(a, aggregates(dev));
        }
    }
    // The chipset's fixed places for devices that have no address.
    let mut fixed = Vec::new();
    for &(i, _) in &order {
        let Some(dev) = element_at(devices, i) else {
            continue;
        };
        if !PciAddr::wanted(dev) {
            continue;
        }
        let Some((mut a, builtin)) = fixed_address(dev, chipset, false) else {
            continue;
        };
        // A second USB2 set goes where real Q35 hardware has it.
        if a.slot == 0x1d && layout.slot_in_use(a) {
            a.slot = 0x1a;
        }
        if builtin || !layout.slot_in_use(a) {
            layout.reserve(a, false);
            fixed.push((i, a));
        }
    }
    for &(slot, function) in chipset_reservations(chipset) {
        layout.reserve(
            PciAddr {
                domain: 0,
                bus: 0,
                slot,
                function,
            },
            false,
        );
    }
    // The primary video card takes the slot QEMU would give it, or the
    // next free one before anything else.
    if let Some(&(i, needs)) = order.iter().find(|(i, _)| {
        element_at(devices, *i).is_some_and(|d| is_primary_video(devices, d) && PciAddr::wanted(d))
    }) && let Some(dev) = element_at(devices, i)
        && let Some((a, _)) = fixed_address(dev, chipset, true)
    {
        let a = if layout.slot_in_use(a) {
            layout.take(needs, false, counting)
        } else {
            layout.reserve(a, false);
            Some(a)
        };
        if let Some(a) = a {
            fixed.push((i, a));
        }
    }
    if !counting {
        for (i, a) in &fixed {
            if let Some(dev) = element_at_mut(devices, *i) {
                a.store(dev, false);
            }
        }
    }
    // libvirt keeps one conventional slot free for later while counting
    // on a PCI root, so a full bus gets a bridge in time.
    if counting
        && chipset == Chipset::I440fx
        && layout.buses.iter().flatten().any(|b| !b.fully_reserved())
    {
        let _ = layout.take(PCI_DEV, false, true);
    }
    let mut placed: Vec<(usize, PciAddr)> = fixed.clone();
    for &(i, needs) in &order {
        let Some(dev) = element_at(devices, i) else {
            continue;
        };
        if !PciAddr::wanted(dev) || fixed.iter().any(|(f, _)| *f == i) {
            continue;
        }
        if dev.name() == "controller"
            && matches!(
                attr(dev, "model").as_deref(),
                Some("pci-root" | "pcie-root")
            )
        {
            continue;
        }
        let a = match usb2_function(dev) {
            Some(function) => {
                let idx = attr(dev, "index");
                let sibling = order.iter().find_map(|&(j, _)| {
                    let other = element_at(devices, j)?;
                    if j == i || usb2_function(other).is_none() || attr(other, "index") != idx {
                        return None;
                    }
                    PciAddr::of(other)
                        .or_else(|| placed.iter().find(|(k, _)| *k == j).map(|(_, a)| *a))
                });
                match sibling {
                    Some(s) => {
                        let a = PciAddr { function, ..s };
                        layout.reserve(a, false);
                        Some(a)
                    }
                    None => layout.take(needs, false, counting).map(|a| {
                        let a = PciAddr { function, ..a };
                        layout.reserve(a, false);
                        a
                    }),
                }
            }
            None => layout.take(needs, aggregates(dev), counting),
        };
        let Some(a) = a else { continue };
        placed.push((i, a));
        if !counting && let Some(dev) = element_at_mut(devices, i) {
            a.store(dev, false);
        }
    }
    layout
}

/// The function a USB2 controller takes in the slot its set shares.
fn usb2_function(dev: &Element) -> Option<u32> {
    if dev.name() != "controller" || attr(dev, "type").as_deref() != Some("usb") {
        return None;
    }
    match attr(dev, "model").as_deref()? {
        "ich9-ehci1" => Some(7),
        "ich9-uhci1" => Some(0),
        "ich9-uhci2" => Some(1),
        "ich9-uhci3" => Some(2),
        _ => None,
    }
}

/// Sets `multifunction='on'` on function 0 of every slot with more than
/// one function in use, unless the device says otherwise.
fn mark_multifunction(devices: &mut Element) {
    let mut used: Vec<PciAddr> = devices.elements().filter_map(PciAddr::of).collect();
    used.sort();
    for dev in devices.elements_mut() {
        let Some(a) = PciAddr::of(dev) else { continue };
        if a.function != 0 || PciAddr::multifunction(dev).is_some() {
            continue;
        }
        let shared = used
            .iter()
            .any(|u| u.bus == a.bus && u.slot == a.slot && u.function != 0);
        if shared {
            a.store(dev, true);
        }
    }
}

/// The settings libvirt gives PCI controllers once they have addresses:
/// the QEMU device model name and the chassis/port/bus numbers.
fn controller_targets(devices: &mut Element) {
    for c in devices.elements_mut() {
        if c.name() != "controller" || attr(c, "type").as_deref() != Some("pci") {
            continue;
        }
        let model = attr(c, "model").unwrap_or_default();
        let idx = attr(c, "index").and_then(|i| parse_num(&i)).unwrap_or(0);
        let addr = PciAddr::of(c);
        let name = match model.as_str() {
            "pci-bridge" => "pci-bridge",
            "pcie-root-port" => "pcie-root-port",
            "pcie-switch-upstream-port" => "x3130-upstream",
            "pcie-switch-downstream-port" => "xio3130-downstream",
            "dmi-to-pci-bridge" => "i82801b11-bridge",
            "pcie-to-pci-bridge" => "pcie-pci-bridge",
            "pci-expander-bus" => "pxb",
            "pcie-expander-bus" => "pxb-pcie",
            _ => continue,
        };
        if c.child("model").is_none_or(|m| !m.has_attr("name")) {
            c.child_or_insert("model").set_attr("name", name);
        }
        let target_needed = matches!(
            model.as_str(),
            "pci-bridge" | "pcie-root-port" | "pcie-switch-downstream-port"
        );
        if !target_needed {
            continue;
        }
        let t = c.child_or_insert("target");
        match model.as_str() {
            "pci-bridge" => {
                if !t.has_attr("chassisNr") {
                    t.set_attr("chassisNr", &idx.to_string());
                }
            }
            _ => {
                if !t.has_attr("chassis") {
                    t.set_attr("chassis", &idx.to_string());
                }
                // A root port's number encodes its slot and function; a
                // switch's downstream port is numbered by its slot.
                let port = addr.map(|a| match model.as_str() {
                    "pcie-root-port" => (a.slot << 3) + a.function,
                    _ => a.slot,
                });
                if !t.has_attr("port")
                    && let Some(port) = port
                {
                    t.set_attr("port", &format!("0x{port:x}"));
                }
            }
        }
    }
}

/// Assigns PCI addresses to every device of `domain` that needs one,
/// adding the PCI controllers libvirt would add.
pub fn assign(domain: &mut Element, chipset: Chipset) {
    if !chipset.has_pci() {
        return;
    }
    let Some(devices) = domain.child_mut("devices") else {
        return;
    };
    // First pass: count the controllers needed. A Q35 guest whose PCI
    // controllers are all libvirt's gets one spare root port for hotplug.
    let user_buses = devices
        .children_named("controller")
        .filter(|c| attr(c, "type").as_deref() == Some("pci"))
        .filter_map(|c| attr(c, "index").and_then(|i| parse_num(&i)))
        .max()
        .unwrap_or(0);
    let mut counting = place(devices, chipset, true);
    if chipset == Chipset::Q35 && user_buses == 0 && counting.buses.len() > 1 {
        let _ = counting.take(PCIE_DEV, false, true);
    }
    // Fill gaps in the controller indexes with the machine's usual bus.
    let gap_model = if chipset == Chipset::Q35 {
        "pcie-root-port"
    } else {
        "pci-bridge"
    };
    let mut new_controllers: Vec<(u32, &str)> = counting
        .buses
        .iter()
        .enumerate()
        .filter(|(i, b)| b.is_none() && !counting.added.iter().any(|(a, _)| *a as usize == *i))
        .map(|(i, _)| (i as u32, gap_model))
        .collect();
    new_controllers.extend(counting.added.iter().copied());
    new_controllers.sort();
    for (idx, model) in new_controllers {
        insert_controller(
            devices,
            Element::new("controller")
                .with_attr("type", "pci")
                .with_attr("index", &idx.to_string())
                .with_attr("model", model),
        );
    }
    // Second pass: the real assignment.
    place(devices, chipset, false);
    mark_multifunction(devices);
    controller_targets(devices);
}
