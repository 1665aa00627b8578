//! Packet capture on one link, like `tcpdump -n -i DEV`, without tcpdump or libpcap: an
//! AF_PACKET socket opened on a thread inside the link's netns (a socket stays bound to the
//! netns it was made in), read by a thread of its own, frames decoded by [`super::decode`].
//!
//! Bounded: at most `max_packets` are kept (the rest are counted as dropped, as are frames the
//! kernel dropped when the socket's buffer was full), and at most `snaplen` bytes of each go to
//! the pcap file. A capture ends when it is stopped, when [`stop_all`] runs (a lab's rollback)
//! or with the process.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::decode::{Decoded, decode};
use super::error::{NetError, NetResult, generic, place};
use super::netns::run_in;

/// Which frames to keep; all when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// "arp", "icmp", "icmp6", "tcp", "udp", "ip", "ip6".
    pub proto: Option<String>,
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
}

/// The protocol names `Filter::proto` knows.
pub const PROTOS: [&str; 7] = ["arp", "icmp", "icmp6", "tcp", "udp", "ip", "ip6"];

impl Filter {
    pub fn keeps(&self, d: &Decoded) -> bool {
        let proto = match self.proto.as_deref() {
            None => true,
            // tcpdump's `ip` and `ip6` mean everything over that family.
            Some("ip") => d.src.contains('.') && d.proto != "arp",
            Some("ip6") => d.src.contains(':') && d.proto != "ether",
            Some(p) => d.proto == p,
        };
        proto && self.host.is_none_or(|h| d.has_host(h)) && self.port.is_none_or(|p| d.has_port(p))
    }

    /// The filter as tcpdump's expression ("icmp and host 10.0.0.1").
    pub fn expression(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.proto {
            parts.push(p.clone());
        }
        if let Some(h) = self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(p) = self.port {
            parts.push(format!("port {p}"));
        }
        parts.join(" and ")
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub filter: Filter,
    /// Frames kept at most; later ones are counted as dropped.
    pub max_packets: usize,
    /// Bytes of each frame written to the pcap file.
    pub snaplen: u32,
    pub pcap: Option<PathBuf>,
}

pub const DEFAULT_MAX_PACKETS: usize = 10_000;
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Captures running at once in one process (each is a thread and a socket).
pub const MAX_CAPTURES: usize = 64;

impl Default for Options {
    fn default() -> Self {
        Options {
            filter: Filter::default(),
            max_packets: DEFAULT_MAX_PACKETS,
            snaplen: DEFAULT_SNAPLEN,
            pcap: None,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Seconds since the capture started.
    pub time: f64,
    pub wall: SystemTime,
    pub dev: String,
    /// Sent by this link (else received).
    pub outgoing: bool,
    /// Length on the wire.
    pub len: usize,
    pub decoded: Decoded,
}

/// What a stopped capture kept.
#[derive(Debug, Default)]
pub struct Stopped {
    pub packets: Vec<Packet>,
    /// Frames that matched but were not kept: over `max_packets`, or dropped by the kernel.
    pub dropped: u64,
}

/// Called for every kept frame, on the capture's thread (`nslab capture` prints there).
pub type Sink = Box<dyn FnMut(&Packet) + Send>;

struct Shared {
    /// The netns the socket lives in (it keeps that netns alive until the capture ends).
    ns: Option<String>,
    stop: AtomicBool,
    packets: Mutex<Vec<Packet>>,
    kept: AtomicU64,
    dropped: AtomicU64,
    error: Mutex<Option<String>>,
    /// An eventfd that wakes the reader when the capture stops.
    wake: OwnedFd,
}

impl Shared {
    fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// A running capture.
pub struct Capture {
    id: u64,
    pub dev: String,
    pub ns: Option<String>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

static ACTIVE: Mutex<Option<HashMap<u64, Arc<Shared>>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// The socket, bound to `dev`, and whether its frames start with an Ethernet header.
fn open_here(dev: &str) -> io::Result<(OwnedFd, bool)> {
    let name =
        std::ffi::CString::new(dev).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain libc calls on a valid C string and fds we own.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        // Protocol 0 until bound: the socket sees no frame of another link in between.
        let fd = cvt(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        ))?;
        let fd = OwnedFd::from_raw_fd(fd);
        // A burst (a ping flood, a TCP transfer) must not overflow the default ~200 KiB.
        let size: libc::c_int = 4 << 20;
        let _ = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        );
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = index as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        cvt(libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), len))?;
        let mut got: libc::sockaddr_ll = std::mem::zeroed();
        let mut glen = len;
        cvt(libc::getsockname(
            fd.as_raw_fd(),
            (&mut got as *mut libc::sockaddr_ll).cast(),
            &mut glen,
        ))?;
        // Loopback frames carry a (zero) Ethernet header too; tun and ipip carry bare IP.
        let ethernet = matches!(got.sll_hatype, libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK);
        Ok((fd, ethernet))
    }
}

/// Starts capturing on `dev` in `ns` (the host when None).
pub fn start(ns: Option<&str>, dev: &str, opts: Options, sink: Option<Sink>) -> NetResult<Capture> {
    let running = ACTIVE.lock().unwrap().as_ref().map_or(0, |m| m.len());
    if running >= MAX_CAPTURES {
        return Err(NetError::new(format!(
            "too many captures: at most {MAX_CAPTURES} run at once"
        ))
        .with_errno(libc::EMFILE)
        .with_help("stop captures you are done with (capture::stop); one capture sees every packet of its link"));
    }
    let d = dev.to_string();
    let (sock, ethernet) =
        run_in(ns, move || open_here(&d))?.map_err(|e| match e.raw_os_error().unwrap_or(0) {
            libc::ENODEV => super::refusal::no_link(dev, ns),
            libc::EPERM | libc::EACCES => generic(
                libc::EPERM,
                &format!("cannot capture on {dev} in {}", place(ns)),
            )
            .with_help(
                "a packet socket needs root (or CAP_NET_RAW): run with sudo, or try --sandbox",
            ),
            n => generic(n, &format!("cannot capture on {dev} in {}", place(ns))),
        })?;
    let pcap = match &opts.pcap {
        Some(p) => {
            let f = File::create(p).map_err(|e| {
                NetError::new(format!("cannot write pcap file {}: {e}", p.display()))
                    .with_help("name a file in a directory you can write to")
            })?;
            let mut w = BufWriter::new(f);
            write_pcap_header(&mut w, opts.snaplen, ethernet).map_err(|e| {
                NetError::new(format!("cannot write pcap file {}: {e}", p.display()))
            })?;
            Some(w)
        }
        None => None,
    };
    // SAFETY: eventfd returns a new fd or -1.
    let wake = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
        .map_err(|e| NetError::new(format!("cannot start a capture: {e}")))?;
    let shared = Arc::new(Shared {
        ns: ns.map(str::to_string),
        stop: AtomicBool::new(false),
        packets: Mutex::new(Vec::new()),
        kept: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        error: Mutex::new(None),
        // SAFETY: a fresh fd we own.
        wake: unsafe { OwnedFd::from_raw_fd(wake) },
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    ACTIVE.lock().unwrap().get_or_insert_with(HashMap::new).insert(id, shared.clone());
    let reader =
        Reader { sock, ethernet, dev: dev.to_string(), opts, pcap, sink, shared: shared.clone() };
    let thread = std::thread::Builder::new()
        .name(format!("capture {dev}"))
        .spawn(move || reader.run())
        .map_err(|e| NetError::new(format!("cannot start a capture thread: {e}")))?;
    Ok(Capture {
        id,
        dev: dev.to_string(),
        ns: ns.map(str::to_string),
        shared,
        thread: Some(thread),
    })
}

impl Capture {
    /// True once the reader ended (stopped, or a read error).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the capture: what arrived until now is read, the pcap file flushed.
    pub fn stop(mut self) -> NetResult<Stopped> {
        self.shared.signal_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(m) = ACTIVE.lock().unwrap().as_mut() {
            m.remove(&self.id);
        }
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            return Err(NetError::new(format!(
                "capture on {} in {} failed: {e}",
                self.dev,
                place(self.ns.as_deref())
            )));
        }
        Ok(Stopped {
            packets: std::mem::take(&mut *self.shared.packets.lock().unwrap()),
            dropped: self.shared.dropped.load(Ordering::SeqCst),
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.signal_stop();
            let _ = t.join();
            if let Some(m) = ACTIVE.lock().unwrap().as_mut() {
                m.remove(&self.id);
            }
        }
    }
}

/// Ends the captures in netns `ns` (it is being deleted; their sockets would keep it alive).
pub fn stop_in(ns: &str) {
    if let Some(m) = ACTIVE.lock().unwrap().as_ref() {
        for s in m.values().filter(|s| s.ns.as_deref() == Some(ns)) {
            s.signal_stop();
        }
    }
}

/// Ends every capture of this process (their frames stay readable by `stop`).
pub fn stop_all() {
    if let Some(m) = ACTIVE.lock().unwrap().as_ref() {
        for s in m.values() {
            s.signal_stop();
        }
    }
}

struct Reader {
    sock: OwnedFd,
    ethernet: bool,
    dev: String,
    opts: Options,
    pcap: Option<BufWriter<File>>,
    sink: Option<Sink>,
    shared: Arc<Shared>,
}

impl Reader {
    fn run(mut self) {
        let started = Instant::now();
        let mut buf = vec![0u8; 65_536 + 64];
        let r = (|| -> io::Result<()> {
            loop {
                let stopping = self.shared.stop.load(Ordering::SeqCst);
                // Drain what is queued, then wait; after a stop, one last drain.
                while let Some((n, len, outgoing)) = recv(self.sock.as_raw_fd(), &mut buf)? {
                    self.take(&buf[..n], len, outgoing, started)?;
                }
                if stopping {
                    break;
                }
                let mut fds = [
                    libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                    libc::pollfd {
                        fd: self.shared.wake.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid pollfds.
                let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return Err(io::Error::last_os_error());
                }
            }
            self.shared.dropped.fetch_add(kernel_drops(self.sock.as_raw_fd()), Ordering::SeqCst);
            if let Some(w) = self.pcap.as_mut() {
                w.flush()?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            *self.shared.error.lock().unwrap() = Some(e.to_string());
        }
    }

    fn take(
        &mut self,
        data: &[u8],
        len: usize,
        outgoing: bool,
        started: Instant,
    ) -> io::Result<()> {
        let decoded = decode(data, self.ethernet, len);
        if !self.opts.filter.keeps(&decoded) {
            return Ok(());
        }
        let mut kept = self.shared.packets.lock().unwrap();
        let n = self.shared.kept.load(Ordering::SeqCst);
        if n >= self.opts.max_packets as u64 {
            self.shared.dropped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        self.shared.kept.store(n + 1, Ordering::SeqCst);
        let wall = SystemTime::now();
        let p = Packet {
            time: started.elapsed().as_secs_f64(),
            wall,
            dev: self.dev.clone(),
            outgoing,
            len,
            decoded,
        };
        if let Some(w) = self.pcap.as_mut() {
            let cut = data.len().min(self.opts.snaplen as usize);
            write_pcap_record(w, wall, &data[..cut], len)?;
            if self.sink.is_some() {
                // A live capture's file is read while it grows (`tail -f`, Wireshark).
                w.flush()?;
            }
        }
        // A live capture hands its frames on instead of keeping them.
        match self.sink.as_mut() {
            Some(s) => s(&p),
            None => kept.push(p),
        }
        Ok(())
    }
}

/// One frame, if one is queued: (bytes read, length on the wire, outgoing).
fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, usize, bool)>> {
    // SAFETY: recvfrom into our buffer and a zeroed sockaddr_ll.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut flen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            // MSG_TRUNC: the frame's real length even when the buffer is shorter (a GSO
            // super-frame on a veth can exceed 64 KiB).
            libc::MSG_TRUNC,
            (&mut from as *mut libc::sockaddr_ll).cast(),
            &mut flen,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => Ok(None),
            // The link went away (deleted, or its netns): the capture ends with it.
            Some(libc::ENETDOWN | libc::ENXIO | libc::ENODEV) => Ok(None),
            _ => Err(e),
        };
    }
    let len = n as usize;
    Ok(Some((len.min(buf.len()), len, from.sll_pkttype == libc::PACKET_OUTGOING)))
}

/// Frames the kernel dropped since the last call (PACKET_STATISTICS resets on read).
fn kernel_drops(fd: RawFd) -> u64 {
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: getsockopt into a correctly sized struct.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if r == 0 { u64::from(st.tp_drops) } else { 0 }
}

/// The classic pcap header (microsecond timestamps, version 2.4), native byte order as
/// libpcap writes it: LINKTYPE_ETHERNET (1) or LINKTYPE_RAW (101).
pub fn write_pcap_header(w: &mut impl Write, snaplen: u32, ethernet: bool) -> io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_ne_bytes())?;
    w.write_all(&2u16.to_ne_bytes())?;
    w.write_all(&4u16.to_ne_bytes())?;
    w.write_all(&0i32.to_ne_bytes())?;
    w.write_all(&0u32.to_ne_bytes())?;
    w.write_all(&snaplen.to_ne_bytes())?;
    w.write_all(&(if ethernet { 1u32 } else { 101 }).to_ne_bytes())
}

/// A 16-byte record header (seconds, microseconds, bytes kept, length on the wire) and the data.
pub fn write_pcap_record(
    w: &mut impl Write,
    t: SystemTime,
    data: &[u8],
    len: usize,
) -> io::Result<()> {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    w.write_all(&(d.as_secs() as u32).to_ne_bytes())?;
    w.write_all(&d.subsec_micros().to_ne_bytes())?;
    w.write_all(&(data.len() as u32).to_ne_bytes())?;
    w.write_all(&(len as u32).to_ne_bytes())?;
    w.write_all(data)
}

/// `HH:MM:SS.uuuuuu` in UTC, as `tcpdump -n` starts its lines.
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, d.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pcap_layout_is_24_plus_16_per_frame() {
        let mut v = Vec::new();
        write_pcap_header(&mut v, 65535, true).unwrap();
        assert_eq!(v.len(), 24);
        assert_eq!(&v[0..4], &0xa1b2_c3d4u32.to_ne_bytes());
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        write_pcap_record(&mut v, t, &[1, 2, 3], 60).unwrap();
        assert_eq!(v.len(), 24 + 16 + 3);
        assert_eq!(&v[24..28], &1_700_000_000u32.to_ne_bytes());
        assert_eq!(&v[28..32], &123_456u32.to_ne_bytes());
        assert_eq!(&v[32..36], &3u32.to_ne_bytes());
        assert_eq!(&v[36..40], &60u32.to_ne_bytes());
    }

    #[test]
    fn filter_matches_like_tcpdump() {
        let d = Decoded {
            proto: "tcp",
            src: "10.0.0.1".into(),
            dst: "10.0.0.2".into(),
            sport: Some(40000),
            dport: Some(80),
            summary: String::new(),
        };
        assert!(Filter::default().keeps(&d));
        let f = Filter {
            proto: Some("tcp".into()),
            host: Some("10.0.0.2".parse().unwrap()),
            port: Some(80),
        };
        assert!(f.keeps(&d));
        assert_eq!(f.expression(), "tcp and host 10.0.0.2 and port 80");
        assert!(Filter { proto: Some("ip".into()), ..Default::default() }.keeps(&d));
        assert!(!Filter { proto: Some("ip6".into()), ..Default::default() }.keeps(&d));
        assert!(!Filter { proto: Some("udp".into()), ..Default::default() }.keeps(&d));
        assert!(!Filter { port: Some(443), ..Default::default() }.keeps(&d));
        assert!(
            !Filter { host: Some("10.0.0.3".parse().unwrap()), ..Default::default() }.keeps(&d)
        );
    }

    #[test]
    fn clock_reads_utc_time_of_day() {
        let t = UNIX_EPOCH + Duration::from_micros((3600 * 25 + 61) * 1_000_000 + 42);
        assert_eq!(clock(t), "01:01:01.000042");
    }
}
