//! libvirt's network formatter order (the generated `order_table.rs`),
//! applied with [`crate::xml::order`]. A `<host>` of `<dhcp>` is not a
//! `<host>` of `<dns>`: such contexts have three-name rows.

use super::order_table::ORDER;
use crate::xml::Element;

/// Orders `el` and its descendants as libvirt's network formatter does.
pub(super) fn sort_tree(el: &mut Element, path: &mut Vec<String>) {
    crate::xml::order::sort_tree(ORDER, el, path);
}
