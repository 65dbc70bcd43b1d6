//! MAC addresses and UUIDs as libvirt writes and checks them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

/// Fills `buf` with random bytes from the kernel.
pub fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable slice `rest`;
        // getrandom writes at most `rest.len()` bytes into it.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom(2) only fails on ancient kernels; fall back to /dev/urandom.
            use std::io::Read;
            if let Ok(mut f) = std::fs::File::open("/dev/urandom")
                && f.read_exact(rest).is_ok()
            {
                return;
            }
            panic!("no source of random bytes (getrandom and /dev/urandom both failed)");
        }
    }
}

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

/// libvirt's prefix for guest NICs of QEMU/KVM, LXC, bhyve and test (and network bridges).
pub const MAC_PREFIX_QEMU: [u8; 3] = [0x52, 0x54, 0x00];
/// Xen (libxl).
pub const MAC_PREFIX_XEN: [u8; 3] = [0x00, 0x16, 0x3e];
/// VMware ESX / Workstation.
pub const MAC_PREFIX_VMWARE: [u8; 3] = [0x00, 0x0c, 0x29];
/// VirtualBox.
pub const MAC_PREFIX_VBOX: [u8; 3] = [0x08, 0x00, 0x27];
/// Virtuozzo.
pub const MAC_PREFIX_VZ: [u8; 3] = [0x42, 0x1c, 0x00];

impl MacAddr {
    /// A random address under a 3-byte vendor prefix (libvirt's `virMacAddrGenerate`).
    pub fn random(prefix: [u8; 3]) -> MacAddr {
        let mut tail = [0u8; 3];
        random_bytes(&mut tail);
        MacAddr([prefix[0], prefix[1], prefix[2], tail[0], tail[1], tail[2]])
    }

    /// The bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether all bytes are zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Checks that this address can be given to a NIC or bridge.
    pub fn check_unicast(&self) -> Result<()> {
        if self.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidMac,
                format!("{self} is all zeros; give a unicast address such as 52:54:00:xx:xx:xx"),
            ));
        }
        if self.is_multicast() {
            return Err(Error::new(
                ErrorKind::InvalidMac,
                format!(
                    "{self} is a multicast address (lowest bit of the first byte set); \
                     give a unicast address such as 52:54:00:xx:xx:xx"
                ),
            ));
        }
        Ok(())
    }

    /// The host-side tap MAC libvirt derives from a guest MAC: first byte 0xFE,
    /// or 0xFA when the guest's already is 0xFE.
    pub fn host_tap_mac(&self) -> MacAddr {
        let mut b = self.0;
        b[0] = if b[0] == 0xfe { 0xfa } else { 0xfe };
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl FromStr for MacAddr {
    type Err = Error;
    /// Parses `aa:bb:cc:dd:ee:ff` in any case; one-digit groups (`a:b:..`) are
    /// accepted as libvirt does.
    fn from_str(s: &str) -> Result<MacAddr> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidMac,
                format!(
                    "unable to parse mac address '{s}' (expected six hex bytes such as 52:54:00:12:34:56)"
                ),
            )
        };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.is_empty() || part.len() > 2 {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            if !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            n += 1;
        }
        if n != 6 {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

/// A 128-bit UUID, printed in libvirt's lower-case hyphenated form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// A random (version 4) UUID.
    pub fn random() -> Uuid {
        let mut b = [0u8; 16];
        random_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

impl FromStr for Uuid {
    type Err = Error;
    /// Parses 32 hex digits in any case; hyphens may appear between byte pairs
    /// and surrounding blanks are ignored (libvirt's `virUUIDParse`).
    fn from_str(s: &str) -> Result<Uuid> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "malformed uuid element '{s}' (expected 32 hex digits such as 6695eb01-f6a4-8304-79aa-97f2502e193f)"
                ),
            )
        };
        let t = s.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n');
        let hex = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut bytes = t.bytes();
        while let Some(c) = bytes.next() {
            if c == b'-' {
                continue;
            }
            let hi = hex(c).ok_or_else(bad)?;
            let lo = bytes.next().and_then(hex).ok_or_else(bad)?;
            if n == 16 {
                return Err(bad());
            }
            out[n] = hi * 16 + lo;
            n += 1;
        }
        if n != 16 {
            return Err(bad());
        }
        Ok(Uuid(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse_and_print() {
        let m: MacAddr = "AA:bb:0C:dd:EE:ff".parse().unwrap();
        assert_eq!(m.to_string(), "aa:bb:0c:dd:ee:ff");
        let m: MacAddr = "a:b:c:d:e:f".parse().unwrap();
        assert_eq!(m.to_string(), "0a:0b:0c:0d:0e:0f");
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:fg",
            "aabbccddeeff",
            "+a:bb:cc:dd:ee:ff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_rules() {
        let m = MacAddr::random(MAC_PREFIX_QEMU);
        assert_eq!(&m.0[..3], &[0x52, 0x54, 0x00]);
        assert!(m.check_unicast().is_ok());
        assert!(MacAddr([1, 0, 0, 0, 0, 1]).check_unicast().is_err());
        assert!(MacAddr([0; 6]).check_unicast().is_err());
        let g: MacAddr = "52:54:00:11:22:33".parse().unwrap();
        assert_eq!(g.host_tap_mac().to_string(), "fe:54:00:11:22:33");
        let g: MacAddr = "fe:54:00:11:22:33".parse().unwrap();
        assert_eq!(g.host_tap_mac().to_string(), "fa:54:00:11:22:33");
    }

    #[test]
    fn uuid_parse_and_print() {
        let u: Uuid = "6695EB01-f6a4-8304-79aa-97f2502e193f".parse().unwrap();
        assert_eq!(u.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        let v: Uuid = " 6695eb01f6a4830479aa97f2502e193f ".parse().unwrap();
        assert_eq!(u, v);
        assert!(
            "6695eb01-f6a4-8304-79aa-97f2502e193"
                .parse::<Uuid>()
                .is_err()
        );
        assert!(
            "6695eb01-f6a4-8304-79aa-97f2502e193f00"
                .parse::<Uuid>()
                .is_err()
        );
        let r = Uuid::random();
        assert_ne!(r, Uuid::random());
        assert_eq!(r.to_string().parse::<Uuid>().unwrap(), r);
    }
}
