//! `<disk>`: the bus named by the target device prefix and the drive
//! address libvirt derives from the target name on controller-based buses.

use crate::domain::canon::values::attr;
use crate::xml::{Element, Node};

/// Target name prefixes and the bus they imply.
const BUS_BY_PREFIX: &[(&str, &str)] = &[
    ("hd", "ide"),
    ("sd", "scsi"),
    ("vd", "virtio"),
    ("xvd", "xen"),
    ("ubd", "uml"),
];

/// The index a target name stands for (`sda` 0, `hdb` 1, `vdaa` 26), as
/// libvirt's `virDiskNameToIndex`.
pub(crate) fn disk_name_index(name: &str) -> Option<u32> {
    let prefixes = ["fd", "hd", "vd", "sd", "xvd", "ubd"];
    let rest = prefixes.iter().find_map(|p| name.strip_prefix(p))?;
    let letters: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    if letters.is_empty() {
        return None;
    }
    // Anything after the letters must be a partition number.
    let tail = &rest[letters.len()..];
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut idx: u32 = 0;
    for (i, c) in letters.bytes().enumerate() {
        let v = u32::from(c - b'a');
        idx = if i == 0 {
            v
        } else {
            (idx + 1).checked_mul(26)?.checked_add(v)?
        };
    }
    Some(idx)
}

/// The order libvirt's parser leaves disks in: each disk, in document
/// order, is inserted before the first later-named disk on the same bus, or
/// right after the last disk on that bus. The bus is the one written in the
/// XML (an unwritten bus counts as one bus of its own), because libvirt
/// inserts before it fills in defaults; a name that is not a disk name
/// sorts first, as libvirt's index of -1 does.
pub(super) fn sort_as_inserted(devices: &mut Element) {
    let slots: Vec<usize> = devices
        .children
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n, Node::Element(e) if e.name() == "disk"))
        .map(|(i, _)| i)
        .collect();
    if slots.len() < 2 {
        return;
    }
    let key = |n: &Node| -> (Option<String>, i64) {
        let Node::Element(d) = n else {
            return (None, -1);
        };
        let target = d.child("target");
        let bus = target.and_then(|t| attr(t, "bus"));
        let idx = target
            .and_then(|t| attr(t, "dev"))
            .and_then(|dev| disk_name_index(&dev))
            .map_or(-1, i64::from);
        (bus, idx)
    };
    let disks: Vec<Node> = slots.iter().map(|&i| devices.children[i].clone()).collect();
    let mut placed: Vec<Node> = Vec::with_capacity(disks.len());
    for disk in disks {
        let (bus, idx) = key(&disk);
        let mut insert_at = None;
        for (i, other) in placed.iter().enumerate().rev() {
            let (obus, oidx) = key(other);
            if obus == bus {
                if oidx > idx {
                    insert_at = Some(i);
                } else if insert_at.is_none() {
                    insert_at = Some(i + 1);
                }
            }
        }
        match insert_at {
            Some(i) => placed.insert(i, disk),
            None => placed.push(disk),
        }
    }
    for (slot, disk) in slots.into_iter().zip(placed) {
        devices.children[slot] = disk;
    }
}

pub(super) fn normalise(disk: &mut Element) {
    // vhost-user disks cannot be snapshotted.
    if disk.attr("type").as_deref() == Some("vhostuser") && !disk.has_attr("snapshot") {
        disk.set_attr("snapshot", "no");
    }
    let device = attr(disk, "device").unwrap_or_default();
    let Some(target) = disk.child_mut("target") else {
        return;
    };
    let dev = attr(target, "dev").unwrap_or_default();
    if !target.has_attr("bus") {
        let bus = if device == "floppy" {
            "fdc"
        } else {
            BUS_BY_PREFIX
                .iter()
                .find(|(p, _)| dev.starts_with(p))
                .map_or("ide", |(_, b)| *b)
        };
        target.set_attr("bus", bus);
    }
    let bus = attr(target, "bus").unwrap_or_default();
    if disk.child("address").is_some() {
        return;
    }
    let Some(idx) = disk_name_index(&dev) else {
        return;
    };
    // (controller, bus, unit) per libvirt's default mapping of each bus.
    let (controller, dbus, unit) = match bus.as_str() {
        "scsi" => (idx / 7, 0, idx % 7),
        "fdc" => (idx / 2, 0, idx % 2),
        "ide" => (idx / 4, (idx % 4) / 2, idx % 2),
        "sata" => (idx / 6, 0, idx % 6),
        _ => return,
    };
    disk.push(
        Element::new("address")
            .with_attr("type", "drive")
            .with_attr("controller", &controller.to_string())
            .with_attr("bus", &dbus.to_string())
            .with_attr("target", "0")
            .with_attr("unit", &unit.to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_map_to_indexes() {
        assert_eq!(disk_name_index("sda"), Some(0));
        assert_eq!(disk_name_index("hdc"), Some(2));
        assert_eq!(disk_name_index("vdz"), Some(25));
        assert_eq!(disk_name_index("vdaa"), Some(26));
        assert_eq!(disk_name_index("xvdb"), Some(1));
        assert_eq!(disk_name_index("sda1"), Some(0));
        assert_eq!(disk_name_index("nvme0"), None);
    }

    #[test]
    fn disks_take_the_order_libvirt_inserts_them_in() {
        let disk = |dev: &str| {
            Element::new("disk").with_child(Element::new("target").with_attr("dev", dev))
        };
        let mut devices = Element::new("devices")
            .with_child(disk("hda"))
            .with_child(disk("hdc"))
            .with_child(disk("fda"));
        sort_as_inserted(&mut devices);
        let order: Vec<String> = devices
            .elements()
            .map(|d| d.child("target").unwrap().attr("dev").unwrap().into_owned())
            .collect();
        assert_eq!(order, ["hda", "fda", "hdc"]);
    }

    #[test]
    fn ide_disk_without_address_gets_drive_address_from_its_name() {
        let mut d = Element::new("disk").with_child(Element::new("target").with_attr("dev", "hdc"));
        normalise(&mut d);
        let a = d.child("address").unwrap();
        let got: Vec<String> = a.attrs().iter().map(|x| x.value().into_owned()).collect();
        assert_eq!(got, ["drive", "0", "1", "0", "0"].map(String::from));
        assert_eq!(
            d.child("target").unwrap().attr("bus").as_deref(),
            Some("ide")
        );
    }
}
