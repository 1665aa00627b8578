//! A UDP request/reply probe (`udp`), the UDP side of `serve`'s question "which address did
//! you see?".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::tcp::{describe_connect_error, format_addr, parse_seen};
use crate::net::error::NetResult;
use crate::net::netns::run_in;

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UdpResult {
    /// A reply came back.
    pub(crate) ok: bool,
    /// The reply (at most 2 KiB, lossy UTF-8).
    pub(crate) reply: String,
    /// Against `probe::serve(…, #{proto: "udp"})`: the address the server saw.
    pub(crate) seen: Option<String>,
    pub(crate) local: Option<String>,
    /// From the first datagram to the reply.
    pub(crate) rtt_ms: f64,
    pub(crate) error: Option<String>,
}

/// What the UDP probe sends when the recipe gives nothing.
pub(crate) const UDP_PAYLOAD: &str = "nslab-probe\n";
/// A lost datagram is sent again this often, until the timeout.
const UDP_RESEND: Duration = Duration::from_millis(500);

/// Sends `payload` to `target` from inside netns `ns` and waits up to `timeout` for a reply,
/// sending again every 500 ms (a datagram sent while a new link's queue is still inactive
/// is lost). An ICMP port unreachable ends the probe at once: nothing listens there.
pub(crate) fn udp(
    ns: Option<&str>,
    target: SocketAddr,
    timeout: Duration,
    payload: Vec<u8>,
) -> NetResult<UdpResult> {
    let target = SocketAddr::new(target.ip().to_canonical(), target.port());
    run_in(ns, move || udp_here(target, timeout, &payload))
}

fn udp_here(target: SocketAddr, timeout: Duration, payload: &[u8]) -> UdpResult {
    let mut r = UdpResult {
        ok: false,
        reply: String::new(),
        seen: None,
        local: None,
        rtt_ms: 0.0,
        error: None,
    };
    let any: IpAddr =
        if target.is_ipv6() { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
    let sock = match UdpSocket::bind((any, 0)).and_then(|s| s.connect(target).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(describe_connect_error(&e, timeout));
            return r;
        }
    };
    r.local = sock.local_addr().ok().map(format_addr);
    let start = Instant::now();
    let deadline = start + timeout.max(Duration::from_millis(1));
    let mut next_send = start;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= deadline {
            r.error = Some(format!("no reply within {} ms", timeout.as_millis()));
            return r;
        }
        if now >= next_send {
            match sock.send(payload) {
                Ok(_) => {}
                // Counted as lost, like a ping's echo that cannot leave.
                Err(e) if e.raw_os_error() != Some(libc::ECONNREFUSED) => {}
                Err(_) => {
                    r.error = Some("connection refused (port unreachable)".into());
                    return r;
                }
            }
            next_send = now + UDP_RESEND;
        }
        let wait = next_send.min(deadline).saturating_duration_since(Instant::now());
        let _ = sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match sock.recv(&mut buf) {
            Ok(n) => {
                r.ok = true;
                r.rtt_ms = start.elapsed().as_secs_f64() * 1000.0;
                r.reply = String::from_utf8_lossy(&buf[..n]).into_owned();
                r.seen = parse_seen(&r.reply);
                return r;
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                r.error = Some("connection refused (port unreachable)".into());
                return r;
            }
            Err(_) => {} // timeout, or an ICMP error other than "refused": try again
        }
    }
}
