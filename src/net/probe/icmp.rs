//! ICMP echo packets and the raw sockets that carry them.

use std::io::{self};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub(super) const ICMP_ECHO_REPLY: u8 = 0;
pub(super) const ICMP_ECHO_REQUEST: u8 = 8;
pub(super) const ICMPV6_ECHO_REQUEST: u8 = 128;
pub(super) const ICMPV6_ECHO_REPLY: u8 = 129;
/// Same payload size as iputils ping: 56 bytes, 64 with the ICMP header.
pub(super) const PAYLOAD_LEN: usize = 56;
pub(super) const PAYLOAD_TAG: &[u8] = b"nslab-probe";

// Not exported by the libc crate (linux/icmp.h, linux/icmpv6.h).
pub(super) const ICMP_FILTER: libc::c_int = 1;
pub(super) const ICMPV6_FILTER: libc::c_int = 1;

/// The echo payload: a tag, then the nonce repeated up to `PAYLOAD_LEN` bytes.
pub(crate) fn echo_payload(nonce: u64) -> Vec<u8> {
    let mut p = PAYLOAD_TAG.to_vec();
    let nb = nonce.to_be_bytes();
    while p.len() < PAYLOAD_LEN {
        p.push(nb[p.len() % nb.len()]);
    }
    p
}

/// The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit
/// big-endian words, an odd last byte padded with zero. Over a message that already carries
/// its checksum the result is 0.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP (v6: ICMPv6) echo request. For IPv4 we fill in the checksum ourselves; for IPv6
/// the kernel must (it covers a pseudo-header with the source address, which only the kernel
/// knows) and always does on raw ICMPv6 sockets, so the field is left 0.
pub(crate) fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.push(if v6 { ICMPV6_ECHO_REQUEST } else { ICMP_ECHO_REQUEST });
    p.push(0); // code
    p.extend_from_slice(&[0, 0]); // checksum
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The ICMP message inside an IPv4 packet as a raw socket delivers it, or None if it is not
/// a well-formed IPv4 packet.
pub(crate) fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.len() < ihl {
        return None;
    }
    Some(&packet[ihl..])
}

/// The sequence number if `icmp` (without IP header) is a reply to one of our requests
/// (`ident`, our payload). Anything else is ignored by the caller: other processes' echoes,
/// and on loopback our own echo requests, which every raw socket sees too.
pub(crate) fn our_echo_reply(icmp: &[u8], v6: bool, ident: u16, payload: &[u8]) -> Option<u16> {
    if icmp.len() < 8 {
        return None;
    }
    let want_type = if v6 { ICMPV6_ECHO_REPLY } else { ICMP_ECHO_REPLY };
    let ours = icmp[0] == want_type
        && icmp[1] == 0
        && u16::from_be_bytes([icmp[4], icmp[5]]) == ident
        && &icmp[8..] == payload
        // Raw IPv4 sockets get the packet before the kernel's own ICMP code checks it; the
        // kernel has verified ICMPv6 checksums already.
        && (v6 || checksum(icmp) == 0);
    ours.then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Errors that mean "this echo never left", which count as a lost packet: no route, the
/// link is down, no source address to send from (IPv6 without any address), or (EPERM, we
/// are root) a netfilter OUTPUT rule dropped it.
pub(super) fn send_error_is_loss(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENETDOWN
                | libc::EHOSTDOWN
                | libc::EADDRNOTAVAIL
                | libc::EPERM
                | libc::ENOBUFS
        )
    )
}

pub(super) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

pub(super) fn raw_icmp_socket(v6: bool) -> io::Result<OwnedFd> {
    let (family, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn set_opt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live T of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Asks the kernel to deliver only echo replies to this socket. In both filters a set bit
/// means "drop this ICMP type".
pub(super) fn install_echo_reply_filter(fd: &OwnedFd, v6: bool) -> io::Result<()> {
    if v6 {
        let mut data = [u32::MAX; 8];
        let t = usize::from(ICMPV6_ECHO_REPLY);
        data[t >> 5] &= !(1u32 << (t & 31));
        set_opt(fd.as_raw_fd(), libc::IPPROTO_ICMPV6, ICMPV6_FILTER, &data)
    } else {
        let mask: u32 = !(1u32 << ICMP_ECHO_REPLY);
        set_opt(fd.as_raw_fd(), libc::SOL_RAW, ICMP_FILTER, &mask)
    }
}

/// A socket address as the kernel wants it, for any IP address.
pub(super) fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage / sockaddr_in / sockaddr_in6.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let mut sin: libc::sockaddr_in = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

pub(super) fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

pub(super) fn send_to(fd: &OwnedFd, packet: &[u8], to: IpAddr, scope: u32) -> io::Result<()> {
    // Raw sockets ignore the port; it must be 0 for IPPROTO_ICMPV6 all the same.
    let to = match to {
        IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, 0, 0, scope)),
        IpAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(a, 0)),
    };
    let (ss, len) = to_sockaddr(to);
    loop {
        // SAFETY: buffer and address are live for the call.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One datagram without blocking, and the IP address it came from.
pub(super) fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
    // SAFETY: all-zero is a valid sockaddr_storage; buffer and address outlive the call.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let r = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r as usize, from_sockaddr(&ss).map(|a| a.ip().to_canonical())))
}

/// Waits up to `wait` for the socket to become readable. False on timeout or EINTR.
pub(super) fn poll_readable(fd: &OwnedFd, wait: Duration) -> io::Result<bool> {
    // Round up: rounding down would spin on a zero-millisecond poll near the deadline.
    let ms = wait.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as libc::c_int;
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn checksum_pads_odd_length() {
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn echo_request_v4_is_well_formed() {
        let payload = echo_payload(42);
        let p = echo_request(false, 0x1234, 7, &payload);
        assert_eq!(p.len(), 8 + PAYLOAD_LEN);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // A message carrying its own checksum sums to zero.
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn echo_request_v6_leaves_checksum_to_kernel() {
        let p = echo_request(true, 1, 2, b"x");
        assert_eq!(&p[..4], &[128, 0, 0, 0]);
    }

    /// The reply a Linux host would send to `req`: type 0, same id/seq/payload.
    fn reply_to(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = ICMP_ECHO_REPLY;
        r[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&r);
        r[2..4].copy_from_slice(&c.to_be_bytes());
        r
    }

    #[test]
    fn matches_only_our_reply() {
        let payload = echo_payload(99);
        let req = echo_request(false, 0xbeef, 3, &payload);
        let rep = reply_to(&req);
        assert_eq!(our_echo_reply(&rep, false, 0xbeef, &payload), Some(3));
        // Our own request, seen on loopback.
        assert_eq!(our_echo_reply(&req, false, 0xbeef, &payload), None);
        // Other id, other payload, bad checksum, truncated.
        assert_eq!(our_echo_reply(&rep, false, 0xbeee, &payload), None);
        assert_eq!(our_echo_reply(&rep, false, 0xbeef, &echo_payload(98)), None);
        let mut bad = rep.clone();
        bad[20] ^= 1;
        assert_eq!(our_echo_reply(&bad, false, 0xbeef, &payload), None);
        assert_eq!(our_echo_reply(&rep[..6], false, 0xbeef, &payload), None);
    }

    #[test]
    fn matches_v6_reply_without_checking_checksum() {
        let payload = echo_payload(5);
        let mut rep = echo_request(true, 9, 1, &payload);
        rep[0] = ICMPV6_ECHO_REPLY;
        rep[2] = 0x12; // whatever the kernel computed
        assert_eq!(our_echo_reply(&rep, true, 9, &payload), Some(1));
        rep[0] = ICMPV6_ECHO_REQUEST;
        assert_eq!(our_echo_reply(&rep, true, 9, &payload), None);
    }

    #[test]
    fn strips_ipv4_header_with_options() {
        let mut pkt = vec![0x45u8; 20];
        pkt.extend_from_slice(&[0, 0, 1, 2]);
        assert_eq!(strip_ipv4_header(&pkt), Some(&[0u8, 0, 1, 2][..]));
        let mut opts = vec![0x46u8; 24];
        opts.push(7);
        assert_eq!(strip_ipv4_header(&opts), Some(&[7u8][..]));
        assert_eq!(strip_ipv4_header(&[0x45, 0, 0]), None);
        assert_eq!(strip_ipv4_header(&[0x60; 40]), None);
        assert_eq!(strip_ipv4_header(&[]), None);
    }

    #[test]
    fn payload_is_tagged_and_sized() {
        let p = echo_payload(0x0102030405060708);
        assert_eq!(p.len(), PAYLOAD_LEN);
        assert!(p.starts_with(PAYLOAD_TAG));
        assert_ne!(p, echo_payload(1));
    }

    #[test]
    fn unreachable_sends_are_losses() {
        assert!(send_error_is_loss(&io::Error::from_raw_os_error(libc::ENETUNREACH)));
        assert!(!send_error_is_loss(&io::Error::from_raw_os_error(libc::EINVAL)));
    }
}
