//! libvirt's domain formatter order (the generated `order_table.rs`),
//! applied with [`crate::xml::order`].

use super::order_table::ORDER;
use crate::xml::Element;

/// Orders `el` and its descendants as libvirt's domain formatter does.
pub(super) fn sort_tree(el: &mut Element, path: &mut Vec<String>) {
    crate::xml::order::sort_tree(ORDER, el, path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn sorted(xml: &str) -> String {
        let mut doc = parse(xml).unwrap();
        sort_tree(&mut doc.root, &mut Vec::new());
        let mut w = crate::xml::CanonicalWriter::new();
        w.element(&doc.root, 0);
        w.finish()
    }

    #[test]
    fn domain_children_follow_libvirt_order() {
        let out =
            sorted("<domain type='kvm'><devices/><os/><name>a</name><memory>1</memory></domain>");
        assert_eq!(
            out,
            "<domain type='kvm'>\n  <name>a</name>\n  <memory>1</memory>\n  <os/>\n  <devices/>\n</domain>\n"
        );
    }

    #[test]
    fn unknown_children_stay_after_their_known_predecessor() {
        let out = sorted("<domain type='kvm'><os/><x-extra/><name>a</name></domain>");
        assert_eq!(
            out,
            "<domain type='kvm'>\n  <name>a</name>\n  <os/>\n  <x-extra/>\n</domain>\n"
        );
    }

    #[test]
    fn attributes_follow_libvirt_order() {
        let out = sorted(
            "<domain type='kvm'><devices><disk device='disk' type='file'/></devices></domain>",
        );
        assert!(out.contains("<disk type='file' device='disk'/>"), "{out}");
    }

    #[test]
    fn same_named_devices_keep_document_order() {
        let out = sorted(
            "<domain type='kvm'><devices><disk type='a'/><emulator>e</emulator><disk type='b'/></devices></domain>",
        );
        let a = out.find("type='a'").unwrap();
        let b = out.find("type='b'").unwrap();
        assert!(out.find("<emulator>").unwrap() < a && a < b, "{out}");
    }
}
