//! A TCP connect that reads the server's greeting (`tcp`).

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::net::error::NetResult;
use crate::net::netns::run_in;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TcpResult {
    /// The connection was established (whatever happened after).
    pub(crate) ok: bool,
    /// What the server sent before closing or before the timeout, at most 4 KiB (lossy UTF-8).
    pub(crate) reply: String,
    /// When the server is our own `serve`: the IP address it saw us come from (after NAT).
    pub(crate) seen: Option<String>,
    /// Our side of the connection, "ip:port".
    pub(crate) local: Option<String>,
    /// Time to establish the connection (the TCP handshake), in milliseconds.
    pub(crate) rtt_ms: f64,
    /// Why the connection failed, in words; or a read failure after connecting.
    pub(crate) error: Option<String>,
}

const MAX_REPLY: usize = 4096;

/// Connects to `target` from inside netns `ns` and reads whatever the server sends until it
/// closes, `timeout` passes, or 4 KiB arrived. A connection that fails is `ok: false` with
/// `error` saying why; only failing to enter the netns is an `Err`.
pub(crate) fn tcp(ns: Option<&str>, target: SocketAddr, timeout: Duration) -> NetResult<TcpResult> {
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
pub(crate) fn describe_connect_error(e: &io::Error, timeout: Duration) -> String {
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
        Some(n) => crate::net::error::strerror(n).to_lowercase(),
        None => e.to_string(),
    }
}

/// `addr` as "ip:port", with IPv4-mapped IPv6 addresses (what a dual-stack socket reports for
/// IPv4 peers) shown as plain IPv4: "203.0.113.1:5000", not "[::ffff:203.0.113.1]:5000".
pub(crate) fn format_addr(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// The greeting `serve` sends each client.
pub(crate) fn serve_line(ns: Option<&str>, peer: SocketAddr, local: SocketAddr) -> String {
    format!(
        "nslab-serve ns={} seen={} local={}\n",
        ns.unwrap_or("host"),
        format_addr(peer),
        format_addr(local)
    )
}

/// The IP address in the `seen=` field of a `serve` greeting; None for any other reply.
pub(crate) fn parse_seen(reply: &str) -> Option<String> {
    let line = reply.lines().find(|l| l.starts_with("nslab-serve "))?;
    let seen = line.split_whitespace().find_map(|w| w.strip_prefix("seen="))?;
    let addr: SocketAddr = seen.parse().ok()?;
    Some(addr.ip().to_canonical().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
