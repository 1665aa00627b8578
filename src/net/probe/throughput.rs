//! A TCP throughput test against nslab's own server (`serve` is also a sink): what
//! `iperf3 -c` measures, built in.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::tcp::describe_connect_error;
use crate::net::error::{NetResult, place};
use crate::net::netns::run_in;

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Throughput {
    pub(crate) ok: bool,
    /// Bytes the server's side acknowledged.
    pub(crate) bytes: u64,
    /// From the first byte sent to the last one acknowledged.
    pub(crate) seconds: f64,
    pub(crate) mbit_s: f64,
    pub(crate) error: Option<String>,
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
pub(crate) fn throughput(
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
