//! A synchronous rtnetlink socket: a request goes out with one `send`, its answer comes back
//! with one `recv`. No runtime, no connection task, no thread.
//!
//! Why not the rtnetlink crate's async `Handle` for every request: rtnetlink processes a
//! request inside the sender's `sendmsg` call, so the ACK is already queued when `send`
//! returns and a blocking `recv` does not sleep. The async path added a channel hop, an
//! `epoll_wait` and a `recvfrom` that returns EAGAIN per request (strace of lab(200): 4611
//! `epoll_wait` and 2205 failed `recvfrom` for 2205 requests), and a thread per netns to
//! open the connection. The message types and builders of rtnetlink's `packet_route` are
//! still used to build and parse messages, and errors come back as `rtnetlink::Error`, so
//! the error mapping is shared with the rest of the kernel layer.
//!
//! Requests are not pipelined: each waits for its ACK before the next one is sent, so an
//! error belongs to exactly one Op and is reported at the script line that made it (and a
//! recipe's `try`/`catch` around one call keeps working). What pipelining would buy, measured
//! with the C floor of `benches/` (64 requests per `sendmsg` vs one round trip each, medians
//! of 7 in one run): lab(200) 213 vs 229 ms, lab(500) 666 vs 674 ms, because the kernel's own
//! work per request dominates. nslab without pipelining: 221 and 774 ms in that run.

use std::cell::{Cell, RefCell};
use std::io;
use std::num::NonZeroI32;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rtnetlink::packet_core::{
    ErrorMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST, NetlinkDeserializable,
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use rtnetlink::packet_route::RouteNetlinkMessage;

pub type NlResult<T> = Result<T, rtnetlink::Error>;

/// Header of every netlink message: length u32, type u16, flags u16, seq u32, pid u32.
const HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
// linux/netlink.h; not exported by the libc crate for this target.
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Big enough for one dump skb (the kernel caps them at 32 KiB).
const RX: usize = 64 * 1024;

/// A NETLINK_ROUTE (or, from [`NlSocket::open_protocol`], another netlink family's)
/// socket. It stays bound to the netns of the thread that opened it.
pub struct NlSocket {
    fd: OwnedFd,
    seq: Cell<u32>,
    tx: RefCell<Vec<u8>>,
}

/// Runs `f` with this thread's receive buffer. One buffer per thread, not per socket: a
/// lab(1000) holds a socket per netns, and 64 KiB each made nslab's peak RSS 77 MB
/// (`benches/mem.sh`). Requests are blocking, so a thread uses one buffer at a time.
fn with_rx<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    thread_local!(static RX_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) });
    RX_BUF.with(|b| match b.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < RX {
                v.resize(RX, 0);
            }
            f(&mut v)
        }
        Err(_) => f(&mut vec![0; RX]),
    })
}

/// An I/O failure on the socket itself, as a netlink error carrying its errno, so callers
/// map it like any kernel answer.
fn io_error(e: io::Error) -> rtnetlink::Error {
    let mut m = ErrorMessage::default();
    m.code = NonZeroI32::new(-e.raw_os_error().unwrap_or(libc::EIO));
    rtnetlink::Error::NetlinkError(m)
}

/// The netlink messages in one received datagram: (type, sequence number, whole message).
/// Stops at a truncated or malformed header, like the kernel's NLMSG_OK.
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + HDR > buf.len() {
            return None;
        }
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
        if len < HDR || off + len > buf.len() {
            return None;
        }
        let raw = &buf[off..off + len];
        off += (len + 3) & !3;
        Some((kind, seq, raw))
    })
}

/// An error ACK's payload after the errno is the request's header, then (NLM_F_ACK_TLVS)
/// attributes. Keeps it in `ErrorMessage::header` only when it has that shape, so that
/// [`kernel_message`] can read the attributes without the outer flags.
fn with_tlvs_only(mut e: ErrorMessage, flags: u16) -> ErrorMessage {
    let capped_with_tlvs = flags & NLM_F_CAPPED != 0 && flags & NLM_F_ACK_TLVS != 0;
    if !capped_with_tlvs {
        e.header.truncate(HDR);
    }
    e
}

/// The kernel's own message in an error ACK (NLMSGERR_ATTR_MSG), without its final period:
/// "Nexthop has invalid gateway".
pub fn kernel_message(e: &rtnetlink::Error) -> Option<String> {
    let rtnetlink::Error::NetlinkError(m) = e else { return None };
    let mut tlvs = m.header.get(HDR..)?;
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text);
            let text = text.trim().trim_end_matches('.');
            return (!text.is_empty()).then(|| text.to_string());
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or_default();
    }
    None
}

impl NlSocket {
    /// Opens a socket in the netns of the calling thread.
    pub fn open() -> io::Result<NlSocket> {
        Self::open_protocol(libc::NETLINK_ROUTE)
    }

    /// Opens a socket of netlink protocol `protocol` (NETLINK_GENERIC for WireGuard) in the
    /// netns of the calling thread.
    pub fn open_protocol(protocol: libc::c_int) -> io::Result<NlSocket> {
        // SAFETY: plain syscall; the fd is owned right away.
        let fd = unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Error ACKs carry only the request's header, not the whole request back (CAP_ACK),
        // and the kernel's own words when it has some (EXT_ACK: "Can not enslave a bridge to
        // a bridge" where the errno alone says "Too many symbolic links encountered").
        let one: libc::c_int = 1;
        for opt in [libc::NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
            // SAFETY: valid fd, option value points to a c_int of the given size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(NlSocket { fd, seq: Cell::new(0), tx: RefCell::new(Vec::with_capacity(1024)) })
    }

    fn send<M: NetlinkSerializable>(&self, msg: M, flags: u16) -> NlResult<u32> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut m =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
        m.header.flags = NLM_F_REQUEST | flags;
        m.header.sequence_number = seq;
        m.finalize();
        let mut tx = self.tx.borrow_mut();
        tx.clear();
        tx.resize(m.buffer_len(), 0);
        m.serialize(&mut tx);
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: buffer and address are valid for the given lengths.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    tx.as_ptr().cast(),
                    tx.len(),
                    0,
                    (&addr as *const libc::sockaddr_nl).cast(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                return Ok(seq);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_error(e));
            }
        }
    }

    /// Receives one datagram (one or more messages) into the rx buffer; returns its length.
    fn recv(&self, rx: &mut [u8]) -> NlResult<usize> {
        loop {
            // SAFETY: the buffer is valid for its length.
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), rx.as_mut_ptr().cast(), rx.len(), 0) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_error(e));
            }
        }
    }

    /// The cookie of the netns this socket was opened in (`netns::socket_cookie`).
    pub fn netns_cookie(&self) -> Option<u64> {
        super::netns::socket_cookie(self.fd.as_raw_fd())
    }

    /// Sends one request and waits for its ACK: Ok, or the kernel's error.
    pub fn ack(&self, msg: RouteNetlinkMessage, flags: u16) -> NlResult<()> {
        self.ack_any(msg, flags)
    }

    /// [`NlSocket::ack`] for a message of any netlink family.
    pub fn ack_any<M: NetlinkSerializable + NetlinkDeserializable>(
        &self,
        msg: M,
        flags: u16,
    ) -> NlResult<()> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        with_rx(|rx| {
            loop {
                let n = self.recv(rx)?;
                for (kind, mseq, raw) in messages(&rx[..n]) {
                    if mseq == seq && kind == NLMSG_ERROR {
                        return match NetlinkMessage::<M>::deserialize(raw) {
                            Ok(NetlinkMessage {
                                payload: NetlinkPayload::Error(e),
                                header,
                                ..
                            }) if e.code.is_some() => {
                                Err(rtnetlink::Error::NetlinkError(with_tlvs_only(e, header.flags)))
                            }
                            Ok(_) => Ok(()),
                            Err(e) => Err(rtnetlink::Error::InvalidNla(e.to_string())),
                        };
                    }
                }
            }
        })
    }

    /// Sends a request with NLM_F_ECHO and NLM_F_ACK and collects what comes back before the
    /// ACK: a get that the kernel answers as a notification (RTM_GETQDISC) reaches the asker
    /// only with NLM_F_ECHO, and the ACK says when nothing more will come.
    pub fn echo(&self, msg: RouteNetlinkMessage) -> NlResult<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_ECHO | NLM_F_ACK)?;
        with_rx(|rx| {
            let mut out = Vec::new();
            loop {
                let n = self.recv(rx)?;
                for (_, mseq, raw) in messages(&rx[..n]) {
                    if mseq != seq {
                        continue;
                    }
                    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                        Ok(NetlinkMessage { payload: NetlinkPayload::InnerMessage(m), .. }) => {
                            out.push(m)
                        }
                        Ok(NetlinkMessage {
                            payload: NetlinkPayload::Error(e), header, ..
                        }) => {
                            return match e.code {
                                Some(_) => Err(rtnetlink::Error::NetlinkError(with_tlvs_only(
                                    e,
                                    header.flags,
                                ))),
                                None => Ok(out),
                            };
                        }
                        _ => {}
                    }
                }
            }
        })
    }

    /// Sends a dump request and collects every answer until NLMSG_DONE.
    pub fn dump(&self, msg: RouteNetlinkMessage) -> NlResult<Vec<RouteNetlinkMessage>> {
        self.request(msg, NLM_F_DUMP)
    }

    /// Sends a request and collects every answer until NLMSG_DONE (a dump) or the first
    /// answer (a plain request such as generic netlink's CTRL_CMD_GETFAMILY, `flags` 0).
    pub fn request<M: NetlinkSerializable + NetlinkDeserializable>(
        &self,
        msg: M,
        flags: u16,
    ) -> NlResult<Vec<M>> {
        let dump = flags & NLM_F_DUMP != 0;
        let seq = self.send(msg, flags)?;
        with_rx(|rx| {
            let mut out = Vec::new();
            loop {
                let n = self.recv(rx)?;
                for (kind, mseq, raw) in messages(&rx[..n]) {
                    if mseq != seq {
                        continue;
                    }
                    if kind == NLMSG_DONE {
                        return Ok(out);
                    }
                    match NetlinkMessage::<M>::deserialize(raw) {
                        Ok(NetlinkMessage { payload: NetlinkPayload::InnerMessage(m), .. }) => {
                            out.push(m);
                            if !dump {
                                return Ok(out);
                            }
                        }
                        Ok(NetlinkMessage {
                            payload: NetlinkPayload::Error(e), header, ..
                        }) if e.code.is_some() => {
                            return Err(rtnetlink::Error::NetlinkError(with_tlvs_only(
                                e,
                                header.flags,
                            )));
                        }
                        Ok(NetlinkMessage { payload: NetlinkPayload::Done(_), .. }) => {
                            return Ok(out);
                        }
                        // A message of a kind this crate cannot parse: skip it, like `ip` does.
                        _ => {}
                    }
                }
            }
        })
    }

    /// The index of link `name` in this socket's netns (`SIOCGIFINDEX`, which resolves
    /// against the socket's netns): one ioctl instead of an RTM_GETLINK round trip that
    /// makes the kernel render the whole link with its statistics.
    pub fn index_of(&self, name: &str) -> io::Result<u32> {
        // SAFETY: ifreq is plain data.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: valid fd and a properly sized ifreq.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
        Ok(unsafe { req.ifr_ifru.ifru_ifindex } as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(((HDR + payload.len()) as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn kernel_message_reads_the_msg_attribute_after_the_capped_header() {
        let mut tail = vec![0u8; HDR]; // the request's header, capped
        let attr = |kind: u16, data: &[u8]| {
            let mut a = Vec::new();
            a.extend(((4 + data.len()) as u16).to_ne_bytes());
            a.extend(kind.to_ne_bytes());
            a.extend(data);
            while a.len() % 4 != 0 {
                a.push(0);
            }
            a
        };
        tail.extend(attr(3, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS first
        tail.extend(attr(NLMSGERR_ATTR_MSG, b"Nexthop has invalid gateway.\0"));
        let err = |header: Vec<u8>, flags: u16| {
            let mut m = ErrorMessage::default();
            m.code = NonZeroI32::new(-libc::EINVAL);
            m.header = header;
            rtnetlink::Error::NetlinkError(with_tlvs_only(m, flags))
        };
        let e = err(tail.clone(), NLM_F_CAPPED | NLM_F_ACK_TLVS);
        assert_eq!(kernel_message(&e).as_deref(), Some("Nexthop has invalid gateway"));
        // Without the flags the bytes after the header are the request itself: not read.
        assert_eq!(kernel_message(&err(tail.clone(), NLM_F_CAPPED)), None);
        assert_eq!(kernel_message(&err(tail[..HDR].to_vec(), NLM_F_CAPPED | NLM_F_ACK_TLVS)), None);
        let mut bad = tail[..HDR].to_vec();
        bad.extend([200, 0, 1, 0, b'x', 0, 0, 0]); // a length past the end
        assert_eq!(kernel_message(&err(bad, NLM_F_CAPPED | NLM_F_ACK_TLVS)), None);
    }

    #[test]
    fn messages_walks_aligned_headers_and_stops_at_truncation() {
        let mut buf = msg(16, 7, &[1, 2, 3]);
        buf.extend(msg(NLMSG_DONE, 7, &[]));
        buf.extend(&msg(2, 8, &[0; 8])[..10]); // cut short
        let got: Vec<(u16, u32, usize)> = messages(&buf).map(|(k, s, r)| (k, s, r.len())).collect();
        assert_eq!(got, vec![(16, 7, HDR + 3), (NLMSG_DONE, 7, HDR)]);
    }
}
