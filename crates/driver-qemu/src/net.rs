//! Host network devices for guest interfaces.
//!
//! Taps are created owned by the file descriptors QEMU inherits, so they
//! disappear when QEMU exits, whatever the reason; nothing needs deleting
//! afterwards. Persistent taps (named in the status file) are removed here.

/// Removes tap devices that outlive QEMU (persistent ones), by name.
pub fn release_taps(taps: &[String]) {
    for t in taps {
        // Taps we create are not persistent; a name still present belongs to
        // a persistent device from an older run and is deleted best-effort.
        if std::path::Path::new("/sys/class/net").join(t).exists() {
            let _ = std::process::Command::new("ip")
                .args(["link", "delete", t])
                .status();
        }
    }
}
