//! TAP links. The kernel makes tun/tap devices only through `/dev/net/tun` (its rtnetlink
//! `validate` answers EOPNOTSUPP, "tun/tap creation via rtnetlink is not supported"), so
//! this is what `ip tuntap add dev NAME mode tap` does: TUNSETIFF, then TUNSETPERSIST so
//! the link outlives the file descriptor. Deleting one is an ordinary RTM_DELLINK (the
//! rtnetlink core gives tun a default dellink), so teardown and group deletes need nothing
//! special.

use std::os::fd::AsRawFd;

use super::error::{NetError, NetResult};

// linux/if_tun.h
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
nix::ioctl_write_int!(tunsetiff, b'T', 202);
nix::ioctl_write_int!(tunsetpersist, b'T', 203);

/// Creates the persistent tap `name` in the netns of the calling thread (the tun file's
/// netns is the opener's: call this on a thread inside the target netns).
pub fn create_here(name: &str) -> NetResult<()> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").map_err(
        |e| {
            NetError::new(format!("cannot open /dev/net/tun to make tap {name}: {e}"))
                .with_errno(e.raw_os_error().unwrap_or(libc::EIO))
                .with_help("this kernel has no tun/tap support (CONFIG_TUN), or /dev/net/tun is missing: `modprobe tun`")
        },
    )?;
    // SAFETY: ifreq is plain data.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
    // SAFETY: a valid tun fd and a properly sized ifreq that outlives the call.
    unsafe { tunsetiff(f.as_raw_fd(), (&mut req as *mut libc::ifreq) as libc::c_ulong) }
        .map_err(|e| tap_error(name, e))?;
    // SAFETY: a tun fd attached to a device just above.
    unsafe { tunsetpersist(f.as_raw_fd(), 1) }.map_err(|e| tap_error(name, e))?;
    Ok(())
}

fn tap_error(name: &str, e: nix::errno::Errno) -> NetError {
    let msg = match e {
        nix::errno::Errno::EBUSY | nix::errno::Errno::EEXIST => {
            return NetError::new(format!("link {name} already exists"))
                .with_errno(libc::EEXIST)
                .with_help("pick another name for the tap");
        }
        e => format!("cannot create tap {name}: {}", e.desc()),
    };
    NetError::new(msg).with_errno(e as i32)
}
