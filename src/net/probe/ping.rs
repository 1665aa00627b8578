//! ICMP echo (`ping`) from inside a netns.

use std::io::{self};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::icmp::*;
use crate::net::error::{NetError, NetResult, generic, place};
use crate::net::netns::run_in;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PingResult {
    pub(crate) ok: bool,
    pub(crate) sent: u32,
    pub(crate) received: u32,
    /// Average round trip of the replies, in milliseconds; 0 when none came back.
    pub(crate) rtt_ms: f64,
    /// Each reply's round trip, in milliseconds (empty when not measured, as in a plan).
    pub(crate) rtts_ms: Vec<f64>,
}

/// How a ping sends its echoes and how long it waits, like ping(8)'s `-c`, `-i` and `-W`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Echoes {
    /// At most this many echo requests.
    pub(crate) count: u32,
    /// Time between two echo requests.
    pub(crate) interval: Duration,
    /// How long to wait for answers after the last echo request.
    pub(crate) wait: Duration,
    /// Stop at the first answer (ping's `-c1 -w DEADLINE` idiom).
    pub(crate) until_first: bool,
    /// Polled while waiting; true ends the probe with EINTR (the lab layer's Ctrl-C flag,
    /// as for `exec`).
    pub(crate) stop: Option<fn() -> bool>,
}

impl Echoes {
    /// `count` echoes, `wait` after the last; they go out a second apart, or every `wait` if
    /// that is shorter, so a short timeout makes the whole probe short.
    pub(crate) fn new(count: u32, wait: Duration, until_first: bool) -> Echoes {
        Echoes {
            count: count.max(1),
            interval: wait.min(Duration::from_secs(1)),
            wait,
            until_first,
            stop: None,
        }
    }

    /// The longest the probe can take.
    pub(crate) fn deadline(&self) -> Duration {
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
pub(crate) fn ping(
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
        return Err(crate::net::refusal::ping_needs_link(a));
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
            libc::ENODEV if dev.is_some() => crate::net::refusal::no_link(dev.unwrap_or_default(), ns),
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
    let mut rtts_ms = Vec::new();
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
            rtts_ms.push((at - sent_at[seq as usize]).as_secs_f64() * 1000.0);
        }
    }
    let rtt_ms = if received == 0 { 0.0 } else { total.as_secs_f64() * 1000.0 / received as f64 };
    Ok(PingResult { ok: received > 0, sent: sent_at.len() as u32, received, rtt_ms, rtts_ms })
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
