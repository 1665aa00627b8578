//! Reachability probes that run from inside a netns: ICMP echo (`ping`), a TCP connect that
//! reads the server's greeting (`tcp`), and a tiny TCP server that tells each client which
//! address it saw (`serve`) — the three questions a lab recipe asks, answered without `ping`,
//! `curl` or `nc` being installed.
//!
//! Every socket is created on a `run_in` thread: a socket stays bound to the netns it was
//! created in, so the rest of the work may happen on any thread.

use std::io::{self, Read, Write};
use std::mem::{size_of, zeroed};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener,
    TcpStream,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{NetError, NetResult, generic, place};
use super::netns::run_in;

// ---------------------------------------------------------------------------------------------
// ping
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    pub ok: bool,
    pub sent: u32,
    pub received: u32,
    /// Average round trip of the replies, in milliseconds; 0 when none came back.
    pub rtt_ms: f64,
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// Same payload size as iputils ping: 56 bytes, 64 with the ICMP header.
const PAYLOAD_LEN: usize = 56;
const PAYLOAD_TAG: &[u8] = b"nslab-probe";

// Not exported by the libc crate (linux/icmp.h, linux/icmpv6.h).
const ICMP_FILTER: libc::c_int = 1;
const ICMPV6_FILTER: libc::c_int = 1;

/// How a ping sends its echoes and how long it waits, like ping(8)'s `-c`, `-i` and `-W`.
#[derive(Debug, Clone, Copy)]
pub struct Echoes {
    /// At most this many echo requests.
    pub count: u32,
    /// Time between two echo requests.
    pub interval: Duration,
    /// How long to wait for answers after the last echo request.
    pub wait: Duration,
    /// Stop at the first answer (ping's `-c1 -w DEADLINE` idiom).
    pub until_first: bool,
    /// Polled while waiting; true ends the probe with EINTR (the lab layer's Ctrl-C flag,
    /// as for `exec`).
    pub stop: Option<fn() -> bool>,
}

impl Echoes {
    /// `count` echoes, `wait` after the last; they go out a second apart, or every `wait` if
    /// that is shorter, so a short timeout makes the whole probe short.
    pub fn new(count: u32, wait: Duration, until_first: bool) -> Echoes {
        Echoes {
            count: count.max(1),
            interval: wait.min(Duration::from_secs(1)),
            wait,
            until_first,
            stop: None,
        }
    }

    /// The longest the probe can take.
    pub fn deadline(&self) -> Duration {
        self.interval * (self.count - 1) + self.wait
    }
}

/// Sends ICMP echo requests to `addr` from inside netns `ns` as `echoes` says.
///
/// An answer counts whenever it arrives before the probe ends, not only before the next echo:
/// on a link that has just come up the first neighbour solicitation is dropped (its queue is
/// `noop` until linkwatch activates it, up to ~1 s here) and ARP/ND retransmit after 1 s, so
/// the first echo's reply can arrive a little over a second late. A one-echo probe with a 1 s
/// window failed that way in CI about once in fifty runs.
///
/// Uses a RAW socket (we run as root): the unprivileged ICMP "ping" datagram socket is gated
/// by `net.ipv4.ping_group_range`, which is `1 0` (nobody) in every new netns.
///
/// An echo that cannot even leave (no route, link down, dropped by a local firewall rule)
/// counts as lost rather than failing: "red cannot reach X" is the answer a recipe asks for.
/// A reply counts only if it comes from `addr` itself.
///
/// `dev` sends out of that link only (`ping -I DEV`, `ping ADDR%DEV`): a link-local IPv6
/// address (fe80::/10) means nothing without one.
pub fn ping(
    ns: Option<&str>,
    addr: IpAddr,
    dev: Option<&str>,
    echoes: Echoes,
) -> NetResult<PingResult> {
    let addr = addr.to_canonical();
    let shown = match dev {
        Some(d) => format!("{addr}%{d}"),
        None => addr.to_string(),
    };
    if let IpAddr::V6(a) = addr
        && a.is_unicast_link_local()
        && dev.is_none()
    {
        // The kernel refuses fe80:: without a scope id: which link would it leave by?
        return Err(NetError::new(format!("cannot ping link-local address {a} without its link"))
            .with_errno(libc::EINVAL)
            .with_help(format!("name the link after a %: \"{a}%eth0\"")));
    }
    let ident = next_ident();
    let nonce = next_nonce();
    let where_ = place(ns);
    let dev_owned = dev.map(str::to_string);
    let r = run_in(ns, move || ping_here(addr, dev_owned.as_deref(), echoes, ident, nonce))?;
    r.map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        match errno {
            libc::EPERM | libc::EACCES => generic(errno, &format!("cannot ping {shown} from {where_}"))
                .with_help("ICMP needs a raw socket: run nslab as root (or with CAP_NET_RAW), or try --sandbox"),
            libc::ENODEV if dev.is_some() => super::kernel::no_link(dev.unwrap_or_default(), ns),
            libc::EINTR => NetError::new(format!("interrupted while pinging {shown} from {where_}"))
                .with_errno(errno),
            0 => NetError::new(format!("cannot ping {shown} from {where_}: {e}")),
            _ => generic(errno, &format!("cannot ping {shown} from {where_}")),
        }
    })
}

/// The body of `ping`, on a thread that is already inside the netns.
fn ping_here(
    addr: IpAddr,
    dev: Option<&str>,
    echoes: Echoes,
    ident: u16,
    nonce: u64,
) -> io::Result<PingResult> {
    let v6 = addr.is_ipv6();
    let fd = raw_icmp_socket(v6)?;
    let scope = match dev {
        Some(d) => {
            // SO_BINDTODEVICE keeps echoes and replies on that link; the scope id is what
            // a link-local destination needs.
            // SAFETY: valid fd; the option value is the name's bytes, with its length.
            cvt(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    d.as_ptr().cast(),
                    d.len() as libc::socklen_t,
                )
            })?;
            let name = std::ffi::CString::new(d)
                .map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
            // SAFETY: a valid NUL-terminated name.
            match unsafe { libc::if_nametoindex(name.as_ptr()) } {
                0 => return Err(io::Error::from_raw_os_error(libc::ENODEV)),
                i => i,
            }
        }
        None => 0,
    };
    // Only an optimisation (every raw ICMP socket sees every ICMP packet of the netns): the
    // id/seq/payload checks below are what make a reply ours.
    let _ = install_echo_reply_filter(&fd, v6);
    let payload = echo_payload(nonce);
    let mut buf = vec![0u8; 2048];
    // When each echo went out, and whether it has been answered (seq = index; a probe sends
    // far fewer than 65536 echoes, the scripts cap `count`).
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut answered: Vec<bool> = Vec::new();
    let (mut received, mut total) = (0u32, Duration::ZERO);
    let start = Instant::now();
    loop {
        let sent = sent_at.len() as u32;
        let done = echoes.until_first && received > 0;
        if done {
            break;
        }
        let now = Instant::now();
        if sent < echoes.count && now >= start + echoes.interval * sent {
            let packet = echo_request(v6, ident, sent as u16, &payload);
            // Before the send: on a veth the reply is often queued before sendto returns.
            let at = Instant::now();
            match send_to(&fd, &packet, addr, scope) {
                Ok(()) => {}
                Err(e) if send_error_is_loss(&e) => {}
                Err(e) => return Err(e),
            }
            sent_at.push(at);
            answered.push(false);
            continue;
        }
        let until = if sent < echoes.count {
            start + echoes.interval * sent
        } else {
            sent_at.last().copied().unwrap_or(start) + echoes.wait
        };
        if now >= until {
            if sent < echoes.count {
                continue;
            }
            break;
        }
        if echoes.stop.is_some_and(|stop| stop()) {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        // In slices, so that an interruption is seen within 100 ms.
        let until = until.min(now + Duration::from_millis(100));
        let want = Echo { v6, from: addr, ident, payload: &payload };
        if let Some((seq, at)) = wait_reply(&fd, &want, until, &mut buf)?
            && let Some(seen) = answered.get_mut(seq as usize)
            && !*seen
        {
            *seen = true;
            received += 1;
            total += at - sent_at[seq as usize];
        }
    }
    let rtt_ms = if received == 0 { 0.0 } else { total.as_secs_f64() * 1000.0 / received as f64 };
    Ok(PingResult { ok: received > 0, sent: sent_at.len() as u32, received, rtt_ms })
}

/// What a reply to one of our echo requests must look like (any sequence number).
struct Echo<'a> {
    v6: bool,
    from: IpAddr,
    ident: u16,
    payload: &'a [u8],
}

/// Waits until `deadline` for a reply to one of our echoes; returns its sequence number and
/// when it arrived.
fn wait_reply(
    fd: &OwnedFd,
    want: &Echo,
    deadline: Instant,
    buf: &mut [u8],
) -> io::Result<Option<(u16, Instant)>> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if !poll_readable(fd, deadline - now)? {
            continue; // woken early or EINTR: the deadline check above decides
        }
        let (n, from) = match recv_from(fd, buf) {
            Ok(r) => r,
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) =>
            {
                continue;
            }
            // A pending ICMP error reported on the socket says nothing about this echo.
            Err(e) if send_error_is_loss(&e) => continue,
            Err(e) => return Err(e),
        };
        if from != Some(want.from) {
            continue;
        }
        // IPv4 raw sockets deliver the IP header too; IPv6 raw sockets never do.
        let icmp = if want.v6 { Some(&buf[..n]) } else { strip_ipv4_header(&buf[..n]) };
        if let Some(icmp) = icmp
            && let Some(seq) = our_echo_reply(icmp, want.v6, want.ident, want.payload)
        {
            return Ok(Some((seq, Instant::now())));
        }
    }
}

/// Counter mixed into the ICMP identifier: concurrent pings in one process must not take
/// each other's replies (every raw ICMP socket sees every echo reply).
static IDENT_COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_ident() -> u16 {
    let n = IDENT_COUNTER.fetch_add(1, Ordering::Relaxed);
    (std::process::id() as u16).wrapping_add((n as u16).wrapping_mul(40503))
}

static NONCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A per-ping value carried in the payload, so that another process (say a real `ping`) that
/// happens to use the same identifier cannot feed us its replies.
fn next_nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ NONCE_COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

/// The echo payload: a tag, then the nonce repeated up to `PAYLOAD_LEN` bytes.
pub fn echo_payload(nonce: u64) -> Vec<u8> {
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
pub fn checksum(data: &[u8]) -> u16 {
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
pub fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
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
pub fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
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
pub fn our_echo_reply(icmp: &[u8], v6: bool, ident: u16, payload: &[u8]) -> Option<u16> {
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
fn send_error_is_loss(e: &io::Error) -> bool {
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

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn raw_icmp_socket(v6: bool) -> io::Result<OwnedFd> {
    let (family, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_opt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
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
fn install_echo_reply_filter(fd: &OwnedFd, v6: bool) -> io::Result<()> {
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
fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
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

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
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

fn send_to(fd: &OwnedFd, packet: &[u8], to: IpAddr, scope: u32) -> io::Result<()> {
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
fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
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
fn poll_readable(fd: &OwnedFd, wait: Duration) -> io::Result<bool> {
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

// ---------------------------------------------------------------------------------------------
// tcp
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct TcpResult {
    /// The connection was established (whatever happened after).
    pub ok: bool,
    /// What the server sent before closing or before the timeout, at most 4 KiB (lossy UTF-8).
    pub reply: String,
    /// When the server is our own `serve`: the IP address it saw us come from (after NAT).
    pub seen: Option<String>,
    /// Our side of the connection, "ip:port".
    pub local: Option<String>,
    /// Time to establish the connection (the TCP handshake), in milliseconds.
    pub rtt_ms: f64,
    /// Why the connection failed, in words; or a read failure after connecting.
    pub error: Option<String>,
}

const MAX_REPLY: usize = 4096;

/// Connects to `target` from inside netns `ns` and reads whatever the server sends until it
/// closes, `timeout` passes, or 4 KiB arrived. A connection that fails is `ok: false` with
/// `error` saying why; only failing to enter the netns is an `Err`.
pub fn tcp(ns: Option<&str>, target: SocketAddr, timeout: Duration) -> NetResult<TcpResult> {
    let target = SocketAddr::new(target.ip().to_canonical(), target.port());
    run_in(ns, move || tcp_here(target, timeout))
}

fn tcp_here(target: SocketAddr, timeout: Duration) -> TcpResult {
    // connect_timeout and set_read_timeout reject a zero duration.
    let timeout = timeout.max(Duration::from_millis(1));
    let mut r = TcpResult {
        ok: false,
        reply: String::new(),
        seen: None,
        local: None,
        rtt_ms: 0.0,
        error: None,
    };
    let start = Instant::now();
    let mut stream = match TcpStream::connect_timeout(&target, timeout) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(describe_connect_error(&e, timeout));
            return r;
        }
    };
    r.ok = true;
    r.rtt_ms = start.elapsed().as_secs_f64() * 1000.0;
    r.local = stream.local_addr().ok().map(format_addr);

    let deadline = Instant::now() + timeout;
    let mut data = vec![0u8; MAX_REPLY];
    let mut got = 0;
    while got < MAX_REPLY {
        let now = Instant::now();
        if now >= deadline || stream.set_read_timeout(Some(deadline - now)).is_err() {
            break;
        }
        match stream.read(&mut data[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The server keeps the connection open: what it sent so far is the reply.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                break;
            }
            Err(e) => {
                r.error = Some(format!("{} after connecting", describe_io_error(&e)));
                break;
            }
        }
    }
    r.reply = String::from_utf8_lossy(&data[..got]).into_owned();
    r.seen = parse_seen(&r.reply);
    r
}

/// A failed connect in the words a recipe author expects.
pub fn describe_connect_error(e: &io::Error, timeout: Duration) -> String {
    if e.kind() == io::ErrorKind::TimedOut || e.raw_os_error() == Some(libc::ETIMEDOUT) {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    describe_io_error(e)
}

fn describe_io_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "connection refused".into(),
        Some(libc::ENETUNREACH) => "network unreachable".into(),
        Some(libc::EHOSTUNREACH) => "host unreachable".into(),
        Some(libc::ENETDOWN) => "network is down".into(),
        Some(libc::ECONNRESET) => "connection reset".into(),
        Some(libc::EADDRNOTAVAIL) => "no usable source address".into(),
        // We are root, so EPERM/EACCES on connect come from netfilter (an OUTPUT rule).
        Some(libc::EPERM | libc::EACCES) => "blocked by a firewall rule".into(),
        Some(n) => super::error::strerror(n).to_lowercase(),
        None => e.to_string(),
    }
}

/// `addr` as "ip:port", with IPv4-mapped IPv6 addresses (what a dual-stack socket reports for
/// IPv4 peers) shown as plain IPv4: "203.0.113.1:5000", not "[::ffff:203.0.113.1]:5000".
pub fn format_addr(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// The greeting `serve` sends each client.
pub fn serve_line(ns: Option<&str>, peer: SocketAddr, local: SocketAddr) -> String {
    format!(
        "nslab-serve ns={} seen={} local={}\n",
        ns.unwrap_or("host"),
        format_addr(peer),
        format_addr(local)
    )
}

/// The IP address in the `seen=` field of a `serve` greeting; None for any other reply.
pub fn parse_seen(reply: &str) -> Option<String> {
    let line = reply.lines().find(|l| l.starts_with("nslab-serve "))?;
    let seen = line.split_whitespace().find_map(|w| w.strip_prefix("seen="))?;
    let addr: SocketAddr = seen.parse().ok()?;
    Some(addr.ip().to_canonical().to_string())
}

// ---------------------------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeInfo {
    pub port: u16,
}

/// Servers started by `serve`, so `stop` can end them. The registry holds a dup of each
/// listening socket: shutting that down wakes the accept loop, which then exits.
struct Running {
    id: u64,
    ns: Option<String>,
    fd: OwnedFd,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

/// Starts a TCP server in netns `ns` on port `port` (0: any free port), on both IPv4 and IPv6.
/// Every client gets one line — `nslab-serve ns=NS seen=PEER local=LOCAL` — and is
/// disconnected, so `tcp` (or `nc`) shows which address the server saw, i.e. what NAT did.
/// Runs until the process exits or `stop` is called.
pub fn serve(ns: Option<&str>, port: u16) -> NetResult<ServeInfo> {
    let where_ = place(ns);
    let listener = run_in(ns, move || listen_dual_stack(port))?.map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        let place = if ns.is_some() { format!("in {where_}") } else { format!("on {where_}") };
        match errno {
            libc::EADDRINUSE => NetError::new(format!("port {port} is already in use {place}"))
                .with_errno(errno)
                .with_help(format!(
                    "pick another port (0 picks a free one), or stop what listens there{}",
                    match ns {
                        Some(n) => format!(" (`ip netns exec {n} ss -ltnp` shows it)"),
                        None => " (`ss -ltnp` shows it)".to_string(),
                    }
                )),
            0 => NetError::new(format!("cannot listen on port {port} {place}: {e}")),
            _ => generic(errno, &format!("cannot listen on port {port} {place}")),
        }
    })?;
    let port = listener.local_addr()?.port();

    let id = NEXT_SERVER.fetch_add(1, Ordering::Relaxed);
    let label = ns.map(str::to_string);
    let registry_fd = listener.try_clone().map(OwnedFd::from)?;
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).push(Running {
        id,
        ns: label.clone(),
        fd: registry_fd,
    });

    // The thread owns the listener and nothing that pins the netns besides it (no netns fd):
    // deleting the netns and calling `stop` frees it. It lives on the caller's netns; the
    // socket, and every connection it accepts, stay in the netns they were created in.
    let spawned = std::thread::Builder::new()
        .name(format!("nslab-serve-{port}"))
        .spawn(move || accept_loop(listener, label, id));
    if let Err(e) = spawned {
        forget(id);
        return Err(e.into());
    }
    Ok(ServeInfo { port })
}

/// Stops the servers `serve` started in netns `ns` (None: on the host); returns how many.
/// Call it before deleting a netns: a listening socket keeps its namespace alive.
pub fn stop(ns: Option<&str>) -> usize {
    let stopped: Vec<Running> = {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        let (gone, keep) =
            std::mem::take(&mut *running).into_iter().partition(|r| r.ns.as_deref() == ns);
        *running = keep;
        gone
    };
    for r in &stopped {
        // shutdown() on a listening socket makes the blocked accept() fail with EINVAL.
        // SAFETY: r.fd is an open socket we own.
        unsafe { libc::shutdown(r.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }
    stopped.len()
}

/// Stops every server `serve` started, wherever it listens; returns how many.
pub fn stop_all() -> usize {
    let stopped = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|p| p.into_inner()));
    for r in &stopped {
        // SAFETY: r.fd is an open socket we own.
        unsafe { libc::shutdown(r.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }
    stopped.len()
}

fn forget(id: u64) {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).retain(|r| r.id != id);
}

/// A listening TCP socket on [::]:port that also accepts IPv4 (IPV6_V6ONLY off, whatever
/// `net.ipv6.bindv6only` says), or on 0.0.0.0 when the kernel has no IPv6.
fn listen_dual_stack(port: u16) -> io::Result<TcpListener> {
    // SAFETY: plain syscall; on success we own the descriptor.
    let fd = match cvt(unsafe {
        libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
    }) {
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            return TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
        }
        Err(e) => return Err(e),
    };
    let raw = fd.as_raw_fd();
    let off: libc::c_int = 0;
    let on: libc::c_int = 1;
    set_opt(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &off)?;
    // Lets a restarted server reuse a port still in TIME_WAIT; a port some socket is
    // *listening* on still fails with EADDRINUSE.
    set_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, &on)?;
    let (ss, len) = to_sockaddr(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
    // SAFETY: a valid address of the given length.
    cvt(unsafe { libc::bind(raw, (&ss as *const libc::sockaddr_storage).cast(), len) })?;
    cvt(unsafe { libc::listen(raw, 128) })?;
    Ok(TcpListener::from(fd))
}

fn accept_loop(listener: TcpListener, ns: Option<String>, id: u64) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                let line = match stream.local_addr() {
                    Ok(local) => serve_line(ns.as_deref(), peer, local),
                    Err(_) => continue,
                };
                // One short-lived thread per client, so a slow client cannot hold up others.
                // If no thread can be had, the client is simply disconnected.
                let _ = std::thread::Builder::new()
                    .name("nslab-serve-client".into())
                    .spawn(move || greet(stream, &line));
            }
            Err(e) => match e.raw_os_error() {
                // Transient: an aborted handshake, a signal, or out of descriptors/memory.
                Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => {}
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                // EINVAL: `stop` shut the socket down. Anything else: give up.
                _ => break,
            },
        }
    }
    forget(id);
}

/// Sends the greeting and closes gracefully. Closing a socket with unread input makes the
/// kernel send a RST, which can destroy the greeting before the client reads it (think of an
/// HTTP client that sent a request); so half-close, then drain until the client closes.
fn greet(mut stream: TcpStream, line: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(line.as_bytes()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

// ---------------------------------------------------------------------------------------------

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
    fn formats_mapped_addresses_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:203.0.113.1]:5000".parse().unwrap();
        assert_eq!(format_addr(mapped), "203.0.113.1:5000");
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(format_addr(v6), "[2001:db8::1]:80");
        let v4: SocketAddr = "10.0.0.1:22".parse().unwrap();
        assert_eq!(format_addr(v4), "10.0.0.1:22");
    }

    #[test]
    fn serve_line_round_trips_through_parse_seen() {
        let peer: SocketAddr = "[::ffff:192.168.24.1]:40000".parse().unwrap();
        let local: SocketAddr = "[::ffff:192.168.24.10]:80".parse().unwrap();
        let line = serve_line(Some("red"), peer, local);
        assert_eq!(line, "nslab-serve ns=red seen=192.168.24.1:40000 local=192.168.24.10:80\n");
        assert_eq!(parse_seen(&line).as_deref(), Some("192.168.24.1"));

        let peer6: SocketAddr = "[fd00::2]:1234".parse().unwrap();
        let line6 = serve_line(None, peer6, "[fd00::1]:80".parse().unwrap());
        assert!(line6.starts_with("nslab-serve ns=host seen=[fd00::2]:1234 "));
        assert_eq!(parse_seen(&line6).as_deref(), Some("fd00::2"));
    }

    #[test]
    fn parse_seen_ignores_other_servers() {
        assert_eq!(parse_seen("HTTP/1.1 200 OK\r\nseen=1.2.3.4:5\r\n"), None);
        assert_eq!(parse_seen(""), None);
        assert_eq!(parse_seen("nslab-serve ns=x seen=garbage local=y"), None);
        // Tolerates a missing trailing newline.
        assert_eq!(
            parse_seen("nslab-serve ns=x seen=10.0.0.2:1 local=10.0.0.1:80").as_deref(),
            Some("10.0.0.2")
        );
    }

    #[test]
    fn connect_errors_in_words() {
        let t = Duration::from_millis(2000);
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(describe_connect_error(&e(libc::ECONNREFUSED), t), "connection refused");
        assert_eq!(describe_connect_error(&e(libc::ETIMEDOUT), t), "timed out after 2000 ms");
        assert_eq!(
            describe_connect_error(&io::Error::from(io::ErrorKind::TimedOut), t),
            "timed out after 2000 ms"
        );
        assert_eq!(describe_connect_error(&e(libc::ENETUNREACH), t), "network unreachable");
    }

    #[test]
    fn unreachable_sends_are_losses() {
        assert!(send_error_is_loss(&io::Error::from_raw_os_error(libc::ENETUNREACH)));
        assert!(!send_error_is_loss(&io::Error::from_raw_os_error(libc::EINVAL)));
    }
}
