//! Probes that measure: ping statistics as ping(8) prints them, a UDP request/reply probe, and
//! a TCP throughput test against nslab's own server (no iperf needed).
//!
//! Every socket is created on a `run_in` thread, so it belongs to the probe's netns.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::error::{NetResult, place};
use super::netns::run_in;
use super::probe::{describe_connect_error, format_addr, parse_seen};

/// ping(8)'s summary line: `rtt min/avg/max/mdev`, and the loss. RTTs in milliseconds; None
/// when no reply came back (ping prints no rtt line then).
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    pub loss_pct: f64,
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
    /// The population standard deviation, as iputils computes it:
    /// sqrt(mean(rtt²) − mean(rtt)²).
    pub mdev: Option<f64>,
}

pub fn ping_stats(sent: u32, rtts_ms: &[f64]) -> PingStats {
    let n = rtts_ms.len() as f64;
    let loss_pct = if sent == 0 { 0.0 } else { 100.0 * (sent as f64 - n).max(0.0) / sent as f64 };
    if rtts_ms.is_empty() {
        return PingStats { loss_pct, min: None, avg: None, max: None, mdev: None };
    }
    let sum: f64 = rtts_ms.iter().sum();
    let sum2: f64 = rtts_ms.iter().map(|r| r * r).sum();
    let avg = sum / n;
    let mdev = (sum2 / n - avg * avg).max(0.0).sqrt();
    PingStats {
        loss_pct,
        min: rtts_ms.iter().copied().reduce(f64::min),
        avg: Some(avg),
        max: rtts_ms.iter().copied().reduce(f64::max),
        mdev: Some(mdev),
    }
}

// ---------------------------------------------------------------------------------------------
// udp
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct UdpResult {
    /// A reply came back.
    pub ok: bool,
    /// The reply (at most 2 KiB, lossy UTF-8).
    pub reply: String,
    /// Against `probe::serve(…, #{proto: "udp"})`: the address the server saw.
    pub seen: Option<String>,
    pub local: Option<String>,
    /// From the first datagram to the reply.
    pub rtt_ms: f64,
    pub error: Option<String>,
}

/// What the UDP probe sends when the recipe gives nothing.
pub const UDP_PAYLOAD: &str = "nslab-probe\n";
/// A lost datagram is sent again this often, until the timeout.
const UDP_RESEND: Duration = Duration::from_millis(500);

/// Sends `payload` to `target` from inside netns `ns` and waits up to `timeout` for a reply,
/// sending again every 500 ms (a datagram sent while a new link's queue is still inactive
/// is lost). An ICMP port unreachable ends the probe at once: nothing listens there.
pub fn udp(
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

// ---------------------------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub ok: bool,
    /// Bytes the server's side acknowledged.
    pub bytes: u64,
    /// From the first byte sent to the last one acknowledged.
    pub seconds: f64,
    pub mbit_s: f64,
    pub error: Option<String>,
}

/// What one write hands the kernel: iperf3's default TCP block.
const BLOCK: usize = 128 * 1024;
/// A send that makes no progress for this long ends the test as stalled.
const STALL: Duration = Duration::from_secs(3);

/// Sends as fast as TCP allows to nslab's server at `target` for `duration`, then waits
/// until the other side has acknowledged every byte (at most `duration` + 10 s more: a
/// slow link may still have megabytes of socket buffer to drain). Counts only what was
/// acknowledged, over the time from the first byte to the last acknowledgement: what the
/// link carried, not what the local socket buffer swallowed. `stop` (the Ctrl-C flag) ends
/// it early, as an error.
pub fn throughput(
    ns: Option<&str>,
    target: SocketAddr,
    duration: Duration,
    stop: Option<fn() -> bool>,
) -> NetResult<Throughput> {
    let target = SocketAddr::new(target.ip().to_canonical(), target.port());
    let where_ = place(ns);
    let r = run_in(ns, move || throughput_here(target, duration, stop))?;
    Ok(match r {
        Ok(t) => t,
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
            return Err(crate::net::NetError::new(format!(
                "interrupted while measuring throughput to {target} from {where_}"
            ))
            .with_errno(libc::EINTR));
        }
        Err(e) => Throughput {
            ok: false,
            bytes: 0,
            seconds: 0.0,
            mbit_s: 0.0,
            error: Some(e.to_string()),
        },
    })
}

fn failed(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn throughput_here(
    target: SocketAddr,
    duration: Duration,
    stop: Option<fn() -> bool>,
) -> io::Result<Throughput> {
    let connect = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&target, connect)
        .map_err(|e| failed(describe_connect_error(&e, connect)))?;
    // The server greets first; anything else is not a sink (it might never read).
    s.set_read_timeout(Some(connect))?;
    let mut greeting = Vec::new();
    let mut byte = [0u8; 1];
    while greeting.len() < 512 && !greeting.ends_with(b"\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => greeting.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !greeting.starts_with(b"nslab-serve ") {
        return Err(failed(format!(
            "{target} is not a probe::serve server (it must greet with `nslab-serve …`)"
        )));
    }
    s.set_write_timeout(Some(STALL))?;
    let block = vec![0x5au8; BLOCK];
    let mut sent: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < duration {
        if stop.is_some_and(|f| f()) {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        match s.write(&block) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(failed(format!(
                    "the transfer stalled: nothing could be sent for {} s",
                    STALL.as_secs()
                )));
            }
            Err(e) => return Err(failed(format!("the transfer failed: {e}"))),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Until the peer has acknowledged all (TIOCOUTQ on a TCP socket: bytes not yet acked).
    let drain_until = Instant::now() + duration + Duration::from_secs(10);
    let mut unacked = outq(&s);
    while unacked > 0 && Instant::now() < drain_until {
        if stop.is_some_and(|f| f()) {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        std::thread::sleep(Duration::from_micros(500));
        unacked = outq(&s);
    }
    let seconds = start.elapsed().as_secs_f64();
    let bytes = sent.saturating_sub(unacked);
    let mbit_s = if seconds > 0.0 { bytes as f64 * 8.0 / seconds / 1e6 } else { 0.0 };
    Ok(Throughput { ok: bytes > 0, bytes, seconds, mbit_s, error: None })
}

/// Bytes in the socket's send queue not yet acknowledged by the peer (SIOCOUTQ).
fn outq(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: a valid socket and a live int for the result.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r < 0 { 0 } else { n.max(0) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_iputils() {
        let s = ping_stats(4, &[1.0, 2.0, 3.0]);
        assert_eq!(s.loss_pct, 25.0);
        assert_eq!((s.min, s.avg, s.max), (Some(1.0), Some(2.0), Some(3.0)));
        // sqrt(mean(1,4,9) - 2²) = sqrt(14/3 - 4)
        assert!((s.mdev.unwrap() - (14.0f64 / 3.0 - 4.0).sqrt()).abs() < 1e-12);
        let none = ping_stats(3, &[]);
        assert_eq!(none.loss_pct, 100.0);
        assert_eq!(none.avg, None);
        let one = ping_stats(1, &[0.5]);
        assert_eq!((one.loss_pct, one.mdev), (0.0, Some(0.0)));
    }
}
