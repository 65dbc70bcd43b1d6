//! FreeBSD bridges (libvirt's third path in `virNetDevBridgeCreate`):
//! `SIOCIFCREATE2` on the `bridge` cloner (the kernel names it `bridgeN`),
//! `SIOCSIFNAME` to the wanted name, `SIOCSIFLLADDR` for the MAC, and
//! `SIOCSIFMTU`; any failure destroys the half-made bridge (`SIOCIFDESTROY`).
//! FreeBSD cannot create a bridge and set its MAC in one step, so the MAC is
//! set immediately after creation, before any member is added.
//!
//! **Not run on this project's machines** (Linux only; upstream libvirt never
//! ran it either). There is no FreeBSD target standard library here, so it is
//! not compiled for FreeBSD; on Linux it is compiled and type-checked in test
//! builds against this module's own FreeBSD structure definitions, and the
//! unit tests check the ioctl numbers and `struct ifreq` layout against the
//! FreeBSD headers' values.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int, c_ulong, c_void};

use virtkit_core::MacAddr;

use crate::error::{NetdevError, Result};
use crate::name::validate_name;

const IFNAMSIZ: usize = 16;
/// `AF_LINK` on FreeBSD.
const AF_LINK: u8 = 18;

/// FreeBSD `_IOC(inout, group, num, len)` (sys/ioccom.h).
const fn ioc(inout: c_ulong, group: u8, num: u8, len: usize) -> c_ulong {
    inout | (((len as c_ulong) & 0x1fff) << 16) | ((group as c_ulong) << 8) | num as c_ulong
}
const IOC_IN: c_ulong = 0x8000_0000;
const IOC_INOUT: c_ulong = 0xc000_0000;
const IFREQ_LEN: usize = std::mem::size_of::<IfReq>();
const SIOCSIFNAME: c_ulong = ioc(IOC_IN, b'i', 40, IFREQ_LEN);
const SIOCSIFMTU: c_ulong = ioc(IOC_IN, b'i', 52, IFREQ_LEN);
const SIOCSIFLLADDR: c_ulong = ioc(IOC_IN, b'i', 60, IFREQ_LEN);
const SIOCIFDESTROY: c_ulong = ioc(IOC_IN, b'i', 121, IFREQ_LEN);
const SIOCIFCREATE2: c_ulong = ioc(IOC_INOUT, b'i', 124, IFREQ_LEN);

/// FreeBSD `struct sockaddr` (with `sa_len`).
#[repr(C)]
#[derive(Clone, Copy)]
struct SockAddr {
    sa_len: u8,
    sa_family: u8,
    sa_data: [c_char; 14],
}

/// The members of FreeBSD's `ifr_ifru` union that this module uses; the
/// 16-byte `ifreq_buffer` member is what sets the size and alignment.
#[repr(C)]
#[derive(Clone, Copy)]
union IfrIfru {
    addr: SockAddr,
    mtu: c_int,
    data: *mut c_void,
    buffer: [u64; 2],
}

/// FreeBSD `struct ifreq` (net/if.h), 32 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfReq {
    name: [c_char; IFNAMSIZ],
    ifru: IfrIfru,
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; IFNAMSIZ],
            ifru: IfrIfru { buffer: [0; 2] },
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes().take(IFNAMSIZ - 1)) {
            *d = s as c_char;
        }
        r
    }

    fn name(&self) -> String {
        let b: Vec<u8> = self
            .name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    }
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_LOCAL, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl_ifreq(sock: &OwnedFd, req: c_ulong, ifr: &mut IfReq) -> io::Result<()> {
    // SAFETY: every request passed here takes a `struct ifreq *`; `ifr` is a
    // fully initialised one with FreeBSD's layout that lives across the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), req as _, ifr as *mut IfReq) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn destroy_on(sock: &OwnedFd, name: &str) -> io::Result<()> {
    ioctl_ifreq(sock, SIOCIFDESTROY, &mut IfReq::new(name))
}

fn os(action: String, name: &str, creating: bool) -> impl FnOnce(io::Error) -> NetdevError + '_ {
    move |e| NetdevError::from_os(action, name, creating, e)
}

/// Creates bridge `name` with MAC `mac` and, if given, `mtu`. Blocking: call
/// it from a blocking thread.
pub fn create_bridge(name: &str, mac: MacAddr, mtu: Option<u32>) -> Result<()> {
    validate_name(name)?;
    crate::link::check_mac(name, mac)?;
    let sock = control_socket().map_err(os("open a control socket".into(), name, false))?;

    let mut ifr = IfReq::new("bridge");
    ioctl_ifreq(&sock, SIOCIFCREATE2, &mut ifr).map_err(os(
        format!("create bridge '{name}' (SIOCIFCREATE2)"),
        name,
        true,
    ))?;
    let made = ifr.name();

    let mut newname = [0 as c_char; IFNAMSIZ];
    for (d, s) in newname.iter_mut().zip(name.bytes()) {
        *d = s as c_char;
    }
    let mut ifr = IfReq::new(&made);
    ifr.ifru.data = newname.as_mut_ptr().cast();
    if let Err(e) = ioctl_ifreq(&sock, SIOCSIFNAME, &mut ifr) {
        let _ = destroy_on(&sock, &made);
        return Err(os(
            format!("rename new bridge '{made}' to '{name}'"),
            name,
            true,
        )(e));
    }

    let mut ifr = IfReq::new(name);
    let mut addr = SockAddr {
        sa_len: 6,
        sa_family: AF_LINK,
        sa_data: [0; 14],
    };
    for (d, s) in addr.sa_data.iter_mut().zip(mac.0) {
        *d = s as c_char;
    }
    ifr.ifru.addr = addr;
    if let Err(e) = ioctl_ifreq(&sock, SIOCSIFLLADDR, &mut ifr) {
        let _ = destroy_on(&sock, name);
        return Err(os(
            format!("set MAC {mac} on new bridge '{name}'"),
            name,
            false,
        )(e));
    }

    if let Some(m) = mtu {
        crate::link::check_mtu(m)?;
        let mut ifr = IfReq::new(name);
        ifr.ifru.mtu = c_int::try_from(m).unwrap_or(c_int::MAX);
        if let Err(e) = ioctl_ifreq(&sock, SIOCSIFMTU, &mut ifr) {
            let _ = destroy_on(&sock, name);
            return Err(os(
                format!("set MTU {m} on new bridge '{name}'"),
                name,
                false,
            )(e));
        }
    }
    Ok(())
}

/// Destroys bridge (or any cloned interface) `name`. Blocking.
pub fn destroy(name: &str) -> Result<()> {
    validate_name(name)?;
    let sock = control_socket().map_err(os("open a control socket".into(), name, false))?;
    destroy_on(&sock, name).map_err(os(format!("destroy '{name}' (SIOCIFDESTROY)"), name, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_freebsd_headers() {
        // Values as computed by FreeBSD's sys/sockio.h on amd64.
        assert_eq!(IFREQ_LEN, 32);
        assert_eq!(SIOCIFCREATE2, 0xc020_697c);
        assert_eq!(SIOCIFDESTROY, 0x8020_6979);
        assert_eq!(SIOCSIFNAME, 0x8020_6928);
        assert_eq!(SIOCSIFLLADDR, 0x8020_693c);
        assert_eq!(SIOCSIFMTU, 0x8020_6934);
    }

    #[test]
    fn ifreq_layout_matches_freebsd() {
        assert_eq!(std::mem::size_of::<SockAddr>(), 16);
        assert_eq!(std::mem::offset_of!(IfReq, ifru), 16);
        assert_eq!(IfReq::new("bridge").name(), "bridge");
        assert_eq!(IfReq::new("0123456789abcdefXYZ").name(), "0123456789abcde");
    }
}
