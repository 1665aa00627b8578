//! The built-in servers a lab probes against (`serve`), in three flavours, all bounded:
//!
//! - `tcp`: greets each client with `nslab-serve ns=NS seen=PEER local=LOCAL`, half-closes,
//!   then swallows whatever the client sends (at most [`SINK_LIMIT`] long, and never more
//!   than [`IDLE`] without data): that makes it the sink `probe::throughput` measures against.
//! - `udp`: answers each datagram with the same line, from the address it was sent to (a
//!   connected UDP client ignores replies from any other address: on a host with several,
//!   the kernel's own choice could be the wrong one, e.g. under policy routing or DNAT).
//! - `http`: answers each HTTP request with `200 OK` and the line as body, so `curl` works.
//!
//! Every server runs on its own thread until `stop`/`stop_all`, polling a stop flag; at most
//! [`MAX_SERVERS`] run at once, and each serves at most [`MAX_CLIENTS`] clients at a time.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt,
    sockopt,
};

use super::tcp::serve_line;
use crate::net::error::{NetError, NetResult, generic, place};
use crate::net::netns::run_in;
use crate::net::refusal::{port_in_use, udp_port_in_use};

/// Which server `serve` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Tcp,
    Udp,
    Http,
}

impl Flavour {
    pub(crate) fn proto(self) -> &'static str {
        match self {
            Flavour::Udp => "udp",
            Flavour::Tcp | Flavour::Http => "tcp",
        }
    }
}

pub(crate) const MAX_SERVERS: usize = 256;
pub(crate) const MAX_CLIENTS: usize = 64;
/// How long the TCP server swallows one client's data at most (a throughput run lasts at
/// most 60 s).
pub(crate) const SINK_LIMIT: Duration = Duration::from_secs(75);
/// A client that sends nothing for this long is dropped.
pub(crate) const IDLE: Duration = Duration::from_secs(2);
/// An HTTP request head longer than this gets `431` and the connection closed.
const MAX_HEAD: usize = 8192;
/// How often a server looks at its stop flag.
const TICK: Duration = Duration::from_millis(100);

struct Running {
    ns: Option<String>,
    stop: Arc<AtomicBool>,
    /// Joined by `stop`: when it returns, the server's socket is closed and its port free
    /// (a rebuilt lab wants it again at once).
    thread: std::thread::JoinHandle<()>,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Starts a server of `flavour` in netns `ns` on `port` (0: a free one); returns the port.
pub(crate) fn serve(ns: Option<&str>, port: u16, flavour: Flavour) -> NetResult<u16> {
    if RUNNING.lock().unwrap_or_else(|p| p.into_inner()).len() >= MAX_SERVERS {
        return Err(NetError::new(format!("too many probe servers (at most {MAX_SERVERS})"))
            .with_errno(libc::EMFILE)
            .with_help("a lab needs a few servers, not hundreds; reuse one port per netns"));
    }
    let where_ = place(ns);
    let proto = flavour.proto();
    let bound = run_in(ns, move || bind(port, flavour))?.map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        let at = if ns.is_some() { format!("in {where_}") } else { format!("on {where_}") };
        match errno {
            libc::EADDRINUSE if flavour == Flavour::Udp => udp_port_in_use(port, ns),
            libc::EADDRINUSE => port_in_use(port, ns),
            0 => NetError::new(format!("cannot listen on {proto} port {port} {at}: {e}")),
            _ => generic(errno, &format!("cannot listen on {proto} port {port} {at}")),
        }
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let label = ns.map(str::to_string);
    let flag = stop.clone();
    let (port, spawned) = match bound {
        Bound::Tcp(l) => {
            let port = l.local_addr()?.port();
            let t = std::thread::Builder::new()
                .name(format!("nslab-serve-{port}"))
                .spawn(move || accept_loop(l, label, flavour, flag));
            (port, t)
        }
        Bound::Udp(s) => {
            let port = s.local_addr()?.port();
            let t = std::thread::Builder::new()
                .name(format!("nslab-serve-udp-{port}"))
                .spawn(move || udp_loop(s, label, flag));
            (port, t)
        }
    };
    let thread = spawned?;
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).push(Running {
        ns: ns.map(str::to_string),
        stop,
        thread,
    });
    Ok(port)
}

/// Stops the servers in netns `ns` (None: on the host); returns how many.
pub(crate) fn stop(ns: Option<&str>) -> usize {
    let gone: Vec<Running> = {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        let (gone, keep) =
            std::mem::take(&mut *running).into_iter().partition(|r| r.ns.as_deref() == ns);
        *running = keep;
        gone
    };
    end(gone)
}

/// Stops every server this module started; returns how many.
pub(crate) fn stop_all() -> usize {
    end(std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|p| p.into_inner())))
}

/// Tells the servers to stop, then waits for them (each notices within one TICK).
fn end(servers: Vec<Running>) -> usize {
    for r in &servers {
        r.stop.store(true, Ordering::Relaxed);
    }
    let n = servers.len();
    for r in servers {
        let _ = r.thread.join();
    }
    n
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// A socket on [::]:port that takes IPv4 too (IPV6_V6ONLY off, whatever
/// `net.ipv6.bindv6only` says), or on 0.0.0.0 when the kernel has no IPv6.
fn bind(port: u16, flavour: Flavour) -> io::Result<Bound> {
    let udp = flavour == Flavour::Udp;
    let ty = if udp { libc::SOCK_DGRAM } else { libc::SOCK_STREAM };
    // SAFETY: plain syscall; on success we own the descriptor.
    let raw = unsafe { libc::socket(libc::AF_INET6, ty | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAFNOSUPPORT) {
            return Err(e);
        }
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        return if udp {
            let s = UdpSocket::bind(any)?;
            setsockopt(&s, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
            Ok(Bound::Udp(s))
        } else {
            Ok(Bound::Tcp(TcpListener::bind(any)?))
        };
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(io::Error::from)?;
    if !udp {
        // A restarted server may reuse a port in TIME_WAIT; one that is listening still
        // fails. (Not for UDP: there it would let two servers share a port silently.)
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(io::Error::from)?;
    }
    let addr = nix::sys::socket::SockaddrIn6::from(std::net::SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        port,
        0,
        0,
    ));
    nix::sys::socket::bind(fd.as_raw_fd(), &addr).map_err(io::Error::from)?;
    if udp {
        // IPv4 datagrams on this socket report their destination in the same cmsg, as a
        // v4-mapped address (ip6_datagram_recv_specific_ctl).
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        Ok(Bound::Udp(UdpSocket::from(fd)))
    } else {
        nix::sys::socket::listen(&fd, nix::sys::socket::Backlog::new(128).expect("valid"))
            .map_err(io::Error::from)?;
        Ok(Bound::Tcp(TcpListener::from(fd)))
    }
}

use std::os::fd::FromRawFd as _;

/// Waits up to TICK for `fd` to become readable.
fn readable(fd: &impl AsFd) -> bool {
    let mut p = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
    matches!(nix::poll::poll(&mut p, nix::poll::PollTimeout::from(TICK.as_millis() as u16)), Ok(n) if n > 0)
}

fn accept_loop(l: TcpListener, ns: Option<String>, flavour: Flavour, stop: Arc<AtomicBool>) {
    let clients = Arc::new(AtomicUsize::new(0));
    let _ = l.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        if !readable(&l) {
            continue;
        }
        let (stream, peer) = match l.accept() {
            Ok(c) => c,
            Err(e) => match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    std::thread::sleep(TICK);
                    continue;
                }
                _ => continue,
            },
        };
        // Full: the client is simply disconnected.
        if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
            continue;
        }
        let _ = stream.set_nonblocking(false);
        let Ok(local) = stream.local_addr() else { continue };
        let line = serve_line(ns.as_deref(), peer, local);
        let count = clients.clone();
        count.fetch_add(1, Ordering::Relaxed);
        let stop = stop.clone();
        let spawned =
            std::thread::Builder::new().name("nslab-serve-client".into()).spawn(move || {
                match flavour {
                    Flavour::Http => answer_http(stream, &line),
                    _ => greet_and_sink(stream, &line, &stop),
                }
                count.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Sends the greeting, half-closes, then reads until the client closes: a client that sent
/// a request gets its greeting intact (closing with unread input would make the kernel send
/// a RST that can destroy it), and a throughput client gets a sink.
pub(crate) fn greet_and_sink(mut stream: TcpStream, line: &str, stop: &AtomicBool) {
    let _ = stream.set_write_timeout(Some(IDLE));
    if stream.write_all(line.as_bytes()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(IDLE));
    let start = Instant::now();
    let mut buf = vec![0u8; 128 * 1024];
    while start.elapsed() < SINK_LIMIT && !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The end of an HTTP request head, if `buf` holds one.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).or_else(|| {
        // Some hand-typed clients (`printf 'GET /\n\n' | nc`) end lines with a bare LF.
        buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
    })
}

/// The response to an HTTP request head: `200` with the greeting as a plain-text body (no
/// body for HEAD), `400` for what is not HTTP, `431` for a head that never ended.
pub(crate) fn http_response(head: Option<&[u8]>, line: &str) -> String {
    let reply = |status: &str, body: &str, with_body: bool| {
        format!(
            "HTTP/1.0 {status}\r\nServer: nslab\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if with_body { body } else { "" }
        )
    };
    let Some(head) = head else {
        return reply("431 Request Header Fields Too Large", "request head too large\n", true);
    };
    let first = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or(&[]))
        .trim_end()
        .to_string();
    let words: Vec<&str> = first.split(' ').collect();
    match words.as_slice() {
        [method, _path, version] if version.starts_with("HTTP/") => {
            reply("200 OK", line, *method != "HEAD")
        }
        _ => reply("400 Bad Request", "not an HTTP request\n", true),
    }
}

fn answer_http(mut stream: TcpStream, line: &str) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head = loop {
        if let Some(end) = head_end(&buf) {
            break Some(end);
        }
        if buf.len() > MAX_HEAD {
            break None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                if buf.is_empty() {
                    return;
                }
                // A head cut short is answered as far as it goes.
                break Some(buf.len());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let response = http_response(head.map(|e| &buf[..e]), line);
    if stream.write_all(response.as_bytes()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Drain briefly so that the close does not turn into a RST over unread input.
    let mut drained = 0;
    while drained < 1 << 16 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn udp_loop(s: UdpSocket, ns: Option<String>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 2048];
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::in_pktinfo);
    while !stop.load(Ordering::Relaxed) {
        if !readable(&s) {
            continue;
        }
        let mut iov = [IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<SockaddrStorage>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) else {
            continue;
        };
        let Some(peer) = msg.address.and_then(|a| to_std(&a)) else { continue };
        let mut dst = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(i) => dst = Some(Dst::V6(i)),
                    ControlMessageOwned::Ipv4PacketInfo(i) => dst = Some(Dst::V4(i)),
                    _ => {}
                }
            }
        }
        let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
        let local = match &dst {
            Some(Dst::V6(i)) => SocketAddr::from((Ipv6Addr::from(i.ipi6_addr.s6_addr), port)),
            Some(Dst::V4(i)) => {
                SocketAddr::from((Ipv4Addr::from(i.ipi_addr.s_addr.to_ne_bytes()), port))
            }
            None => SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        };
        let line = serve_line(ns.as_deref(), peer, local);
        let iov = [IoSlice::new(line.as_bytes())];
        let to = SockaddrStorage::from(peer);
        // Reply from the address the datagram came to; the interface only for a link-local
        // destination, which needs it (else the route decides, as for any reply).
        let sent = match dst {
            Some(Dst::V6(mut i)) => {
                if !Ipv6Addr::from(i.ipi6_addr.s6_addr).is_unicast_link_local() {
                    i.ipi6_ifindex = 0;
                }
                let c = [ControlMessage::Ipv6PacketInfo(&i)];
                sendmsg(s.as_raw_fd(), &iov, &c, MsgFlags::MSG_DONTWAIT, Some(&to))
            }
            Some(Dst::V4(mut i)) => {
                i.ipi_spec_dst = i.ipi_addr;
                i.ipi_ifindex = 0;
                let c = [ControlMessage::Ipv4PacketInfo(&i)];
                sendmsg(s.as_raw_fd(), &iov, &c, MsgFlags::MSG_DONTWAIT, Some(&to))
            }
            None => sendmsg(s.as_raw_fd(), &iov, &[], MsgFlags::MSG_DONTWAIT, Some(&to)),
        };
        let _ = sent;
    }
}

enum Dst {
    V6(libc::in6_pktinfo),
    V4(libc::in_pktinfo),
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(SocketAddr::V6(std::net::SocketAddrV6::from(*v6)));
    }
    a.as_sockaddr_in().map(|v4| SocketAddr::V4(std::net::SocketAddrV4::from(*v4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_get_with_the_line() {
        let line = "nslab-serve ns=red seen=10.0.0.2:4000 local=10.0.0.1:80\n";
        let r = http_response(Some(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), line);
        assert!(r.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(r.contains(&format!("Content-Length: {}\r\n", line.len())));
        assert!(r.ends_with(&format!("\r\n\r\n{line}")));
        let head = http_response(Some(b"HEAD / HTTP/1.1\r\n\r\n"), line);
        assert!(
            head.ends_with("\r\n\r\n") && head.contains(&format!("Content-Length: {}", line.len()))
        );
        assert!(http_response(Some(b"hello\r\n\r\n"), line).starts_with("HTTP/1.0 400"));
        assert!(http_response(None, line).starts_with("HTTP/1.0 431"));
    }

    #[test]
    fn heads_end_at_a_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n"), None);
    }
}
