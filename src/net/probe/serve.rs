//! A tiny TCP server that tells each client which address it saw (`serve`).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::icmp::*;
use super::tcp::serve_line;
use crate::net::error::{NetError, NetResult, generic, place};
use crate::net::netns::run_in;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServeInfo {
    pub(crate) port: u16,
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
pub(crate) fn serve(ns: Option<&str>, port: u16) -> NetResult<ServeInfo> {
    let where_ = place(ns);
    let listener = run_in(ns, move || listen_dual_stack(port))?.map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        let place = if ns.is_some() { format!("in {where_}") } else { format!("on {where_}") };
        match errno {
            libc::EADDRINUSE => crate::net::refusal::port_in_use(port, ns),
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
pub(crate) fn stop(ns: Option<&str>) -> usize {
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
pub(crate) fn stop_all() -> usize {
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
