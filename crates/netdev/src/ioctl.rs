//! Small safe wrappers around the ioctls this crate needs: the bridge and
//! interface ioctls on a control socket (the fallback bridge path) and the
//! `/dev/net/tun` ioctls that create taps. Every `unsafe` block of the crate's
//! device code lives here; each says why it is sound.
//!
//! These calls can wait on the kernel's RTNL lock (held for tens of
//! milliseconds while devices are being unregistered), so they run on the
//! handle's worker thread, never on an async runtime thread (see `worker.rs`).

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::{c_int, c_uint, c_ulong};

use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_val};
use vmm_sys_util::{ioctl_ior_nr, ioctl_iow_nr};

use virtkit_core::MacAddr;

/// The ioctl type letter of the tun driver (`'T'`).
const TUN_IOC_TYPE: c_uint = b'T' as c_uint;

// linux/if_tun.h. TUNSETIFF is declared with an `int` size for historical
// reasons but takes a `struct ifreq *`, as the kernel header says.
ioctl_iow_nr!(TUNSETIFF, TUN_IOC_TYPE, 202, c_int);
ioctl_iow_nr!(TUNSETPERSIST, TUN_IOC_TYPE, 203, c_int);
ioctl_iow_nr!(TUNSETOWNER, TUN_IOC_TYPE, 204, c_int);
ioctl_iow_nr!(TUNSETGROUP, TUN_IOC_TYPE, 206, c_int);
ioctl_ior_nr!(TUNGETFEATURES, TUN_IOC_TYPE, 207, c_uint);

/// Bridge ioctls (linux/sockios.h); the libc crate has them for Android only.
const SIOCBRADDBR: c_ulong = 0x89a0;
const SIOCBRDELBR: c_ulong = 0x89a1;

/// tun flags (linux/if_tun.h).
pub(crate) const IFF_TAP: u32 = 0x0002;
pub(crate) const IFF_MULTI_QUEUE: u32 = 0x0100;
pub(crate) const IFF_NO_PI: u32 = 0x1000;
pub(crate) const IFF_VNET_HDR: u32 = 0x4000;
/// Fail with EBUSY instead of attaching when the name is taken.
pub(crate) const IFF_TUN_EXCL: u32 = 0x8000;

/// An `ifreq` whose name is set; the union is zeroed.
fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `ifreq` is a plain C struct (a char array and a union of plain
    // data and one raw pointer); all-zero bytes are a valid value for it.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(ifr)
}

fn name_of(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A datagram socket used only as a handle for interface ioctls. Those act on
/// the socket's network namespace (fixed when it was created), not on the
/// namespace of whichever thread calls them.
#[derive(Debug)]
pub(crate) struct ControlSocket(OwnedFd);

impl ControlSocket {
    /// Opens the socket in the calling thread's network namespace.
    pub(crate) fn new() -> io::Result<ControlSocket> {
        // SAFETY: socket(2) takes no pointers; the result is checked below.
        let fd = check(unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
        Ok(ControlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `SIOCBRADDBR`: creates a bridge (no MAC yet; see `set_hwaddr`).
    pub(crate) fn bridge_add(&self, name: &str) -> io::Result<()> {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: SIOCBRADDBR reads a NUL-terminated name from the pointer; `c`
        // is one and outlives the call.
        check(unsafe { ioctl_with_ptr(&self.0, SIOCBRADDBR, c.as_ptr()) })?;
        Ok(())
    }

    /// `SIOCBRDELBR`: deletes a bridge (the kernel wants it down first).
    pub(crate) fn bridge_del(&self, name: &str) -> io::Result<()> {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: as for SIOCBRADDBR: a NUL-terminated name that outlives the call.
        check(unsafe { ioctl_with_ptr(&self.0, SIOCBRDELBR, c.as_ptr()) })?;
        Ok(())
    }

    /// `SIOCSIFHWADDR` with `ARPHRD_ETHER`.
    pub(crate) fn set_hwaddr(&self, name: &str, mac: MacAddr) -> io::Result<()> {
        let mut ifr = ifreq_for(name)?;
        // SAFETY: writing plain data into the `sockaddr` member of a zeroed
        // union; no other member is read afterwards by us.
        unsafe {
            ifr.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
            for (dst, src) in ifr.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac.0) {
                *dst = src as libc::c_char;
            }
        }
        // SAFETY: SIOCSIFHWADDR reads a `struct ifreq`; `ifr` is one, fully
        // initialised, and lives across the call.
        check(unsafe { ioctl_with_mut_ref(&self.0, libc::SIOCSIFHWADDR, &mut ifr) })?;
        Ok(())
    }

    /// `SIOCSIFMTU`.
    pub(crate) fn set_mtu(&self, name: &str, mtu: u32) -> io::Result<()> {
        let mut ifr = ifreq_for(name)?;
        ifr.ifr_ifru.ifru_mtu =
            c_int::try_from(mtu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: SIOCSIFMTU reads a `struct ifreq`; `ifr` is one and lives
        // across the call.
        check(unsafe { ioctl_with_mut_ref(&self.0, libc::SIOCSIFMTU, &mut ifr) })?;
        Ok(())
    }

    /// `SIOCGIFFLAGS` + `SIOCSIFFLAGS`: sets or clears IFF_UP.
    pub(crate) fn set_up(&self, name: &str, up: bool) -> io::Result<()> {
        let mut ifr = ifreq_for(name)?;
        // SAFETY: SIOCGIFFLAGS writes the flags into the `struct ifreq` we own.
        check(unsafe { ioctl_with_mut_ref(&self.0, libc::SIOCGIFFLAGS, &mut ifr) })?;
        // SAFETY: the kernel just filled `ifru_flags`, a plain `c_short`.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        let up_flag = libc::IFF_UP as libc::c_short;
        ifr.ifr_ifru.ifru_flags = if up {
            flags | up_flag
        } else {
            flags & !up_flag
        };
        // SAFETY: SIOCSIFFLAGS reads the `struct ifreq` we own.
        check(unsafe { ioctl_with_mut_ref(&self.0, libc::SIOCSIFFLAGS, &mut ifr) })?;
        Ok(())
    }
}

/// Opens `/dev/net/tun` (close-on-exec: the QEMU driver passes fds on purpose).
///
/// The tap created through this fd lives in the network namespace of the
/// thread that opens it, which is why only the worker thread calls this.
pub(crate) fn open_tun() -> io::Result<OwnedFd> {
    // SAFETY: the path is a NUL-terminated literal; the result is checked.
    let fd =
        check(unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `TUNGETFEATURES`: the IFF_* flags this kernel's tun driver accepts.
pub(crate) fn tun_features(fd: &OwnedFd) -> io::Result<u32> {
    let mut features: c_uint = 0;
    // SAFETY: TUNGETFEATURES writes one `unsigned int` to the pointer, which
    // points at `features`.
    check(unsafe { ioctl_with_mut_ref(fd, TUNGETFEATURES(), &mut features) })?;
    Ok(features)
}

/// `TUNSETIFF`: creates (or, without IFF_TUN_EXCL, attaches to) the device
/// `name` with `flags`; returns the name the kernel reports back.
pub(crate) fn tun_set_iff(fd: &OwnedFd, name: &str, flags: u32) -> io::Result<String> {
    let mut ifr = ifreq_for(name)?;
    // IFF_* tun flags all fit in the 16-bit ifr_flags (IFF_TUN_EXCL is 0x8000).
    ifr.ifr_ifru.ifru_flags = flags as u16 as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `ifr` is one and
    // lives across the call.
    check(unsafe { ioctl_with_mut_ref(fd, TUNSETIFF(), &mut ifr) })?;
    Ok(name_of(&ifr))
}

/// `TUNSETPERSIST`.
pub(crate) fn tun_set_persist(fd: &OwnedFd, persist: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value; no memory is touched.
    check(unsafe { ioctl_with_val(fd, TUNSETPERSIST(), c_ulong::from(persist)) })?;
    Ok(())
}

/// `TUNSETOWNER`: the uid allowed to attach to the device without CAP_NET_ADMIN.
pub(crate) fn tun_set_owner(fd: &OwnedFd, uid: u32) -> io::Result<()> {
    // SAFETY: TUNSETOWNER takes the uid by value; no memory is touched.
    check(unsafe { ioctl_with_val(fd, TUNSETOWNER(), c_ulong::from(uid)) })?;
    Ok(())
}

/// `TUNSETGROUP`: the gid allowed to attach to the device.
pub(crate) fn tun_set_group(fd: &OwnedFd, gid: u32) -> io::Result<()> {
    // SAFETY: TUNSETGROUP takes the gid by value; no memory is touched.
    check(unsafe { ioctl_with_val(fd, TUNSETGROUP(), c_ulong::from(gid)) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tun_ioctl_numbers_match_the_kernel_headers() {
        // Values from linux/if_tun.h on x86_64 (netdev-reference.md section 6).
        assert_eq!(TUNSETIFF(), 0x400454ca);
        assert_eq!(TUNSETPERSIST(), 0x400454cb);
        assert_eq!(TUNSETOWNER(), 0x400454cc);
        assert_eq!(TUNSETGROUP(), 0x400454ce);
        assert_eq!(TUNGETFEATURES(), 0x800454cf);
        assert_eq!(libc::SIOCSIFHWADDR, 0x8924);
        assert_eq!(libc::SIOCSIFMTU, 0x8922);
    }

    #[test]
    fn ifreq_rejects_names_the_kernel_would_truncate() {
        assert!(ifreq_for("0123456789abcde").is_ok());
        assert!(ifreq_for("0123456789abcdef").is_err());
        assert!(ifreq_for("").is_err());
        let ifr = ifreq_for("vnet7").unwrap();
        assert_eq!(name_of(&ifr), "vnet7");
    }
}
