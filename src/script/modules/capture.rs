//! `capture::`: packets on a link, as a recipe can assert on them (`tcpdump -n -i DEV`).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use rhai::plugin::*;

use crate::net::capture::{self, Capture, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN, Options, Packet};
use crate::script::modules::{check_opts, ifname, parse_ip, port};
use crate::script::{RhaiResultOf, fail, invalid, query};

/// What `capture::start` returns. Cloned handles share one capture.
#[derive(Clone)]
pub struct Handle {
    dev: String,
    running: Rc<RefCell<Option<Capture>>>,
    /// False under `nslab plan`: nothing is captured.
    live: Rc<RefCell<bool>>,
    dropped: Rc<RefCell<u64>>,
}

impl Handle {
    fn to_display(&self) -> String {
        format!("<capture {}>", self.dev)
    }
}

const KNOWN: [&str; 6] = ["proto", "host", "port", "pcap", "max", "snaplen"];

fn options(ctx: &NativeCallContext, opts: &rhai::Map) -> RhaiResultOf<Options> {
    check_opts(ctx, opts, &KNOWN)?;
    let text = |key: &str| -> RhaiResultOf<Option<String>> {
        match opts.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(_) => Err(fail(
                ctx,
                invalid(format!("option `{key}` must be a string"), "e.g. #{proto: \"icmp\"}"),
            )),
        }
    };
    let int = |key: &str, lo: i64, hi: i64, default: i64| -> RhaiResultOf<i64> {
        match opts.get(key).map(|v| v.as_int()) {
            None => Ok(default),
            Some(Ok(n)) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(fail(
                ctx,
                invalid(
                    format!("option `{key}` must be an integer from {lo} to {hi}"),
                    format!("e.g. #{{{key}: {default}}}"),
                ),
            )),
        }
    };
    let mut o = Options::default();
    if let Some(p) = text("proto")? {
        let p = p.to_ascii_lowercase();
        if !capture::PROTOS.contains(&p.as_str()) {
            return Err(fail(
                ctx,
                invalid(
                    format!("unknown protocol {p:?}"),
                    format!("capture knows: {}", capture::PROTOS.join(", ")),
                ),
            ));
        }
        o.filter.proto = Some(p);
    }
    if let Some(h) = text("host")? {
        o.filter.host = Some(parse_ip(ctx, &h)?);
    }
    if let Some(v) = opts.get("port") {
        let p = v.as_int().map_err(|_| {
            fail(ctx, invalid("option `port` must be an integer", "e.g. #{port: 80}"))
        })?;
        o.filter.port = Some(port(ctx, p)?);
    }
    o.pcap = text("pcap")?.map(PathBuf::from);
    o.max_packets = int("max", 1, 1_000_000, DEFAULT_MAX_PACKETS as i64)? as usize;
    o.snaplen = int("snaplen", 64, DEFAULT_SNAPLEN as i64, DEFAULT_SNAPLEN as i64)? as u32;
    Ok(o)
}

pub fn do_start(
    ctx: &NativeCallContext,
    ns: Option<String>,
    dev: &str,
    opts: rhai::Map,
) -> RhaiResultOf<Handle> {
    let dev = ifname(ctx, dev)?;
    let o = options(ctx, &opts)?;
    let c = query(ctx, |b| b.capture_start(ns.as_deref(), &dev, o))?;
    Ok(Handle {
        dev,
        live: Rc::new(RefCell::new(c.is_some())),
        running: Rc::new(RefCell::new(c)),
        dropped: Rc::new(RefCell::new(0)),
    })
}

fn packet_map(p: &Packet) -> rhai::Map {
    let port = |p: Option<u16>| p.map(|p| Dynamic::from(p as rhai::INT)).unwrap_or(Dynamic::UNIT);
    let d = &p.decoded;
    let mut m = rhai::Map::new();
    m.insert("time".into(), ((p.time * 1e6).round() / 1e6).into());
    m.insert("dev".into(), p.dev.clone().into());
    m.insert("dir".into(), (if p.outgoing { "out" } else { "in" }).into());
    m.insert("src".into(), d.src.clone().into());
    m.insert("dst".into(), d.dst.clone().into());
    m.insert("proto".into(), d.proto.into());
    m.insert("sport".into(), port(d.sport));
    m.insert("dport".into(), port(d.dport));
    m.insert("len".into(), (p.len as rhai::INT).into());
    m.insert("summary".into(), d.summary.clone().into());
    m
}

pub fn register_type(engine: &mut Engine) {
    engine
        .register_type_with_name::<Handle>("Capture")
        .register_fn("to_string", |h: &mut Handle| h.to_display())
        .register_fn("to_debug", |h: &mut Handle| h.to_display());
}

#[export_module]
pub mod capture_mod {
    use super::{Handle, do_start, packet_map};
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, check};
    use rhai::Dynamic;

    /// Starts capturing every frame on link `dev` in netns `ns`, like `tcpdump -n -i DEV`
    /// (an AF_PACKET socket inside the netns; no tcpdump needed). Returns a handle for
    /// `capture::stop`. At most 10000 packets are kept (option `max`); a capture ends with its
    /// lab or the run.
    ///
    /// ```rhai
    /// let c = capture::start("red", "veth-red");
    /// probe::ping("red", "192.168.24.1");
    /// for p in capture::stop(c) { print(p.summary); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn start(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<Handle> {
        do_start(&ctx, nsname(&ctx, ns)?, dev, rhai::Map::new())
    }

    /// Capture with a filter and options: `proto` (`"icmp"`, `"tcp"`, `"udp"`, `"arp"`,
    /// `"icmp6"`, `"ip"`, `"ip6"`), `host` (either end), `port` (either end), `pcap` (also
    /// write this pcap file, which `tcpdump -r` and Wireshark read), `max` (packets kept,
    /// default 10000; more are counted by `capture::dropped`), `snaplen` (bytes of each packet
    /// in the pcap file, default 262144).
    ///
    /// ```rhai
    /// let c = capture::start("red", "veth-red", #{proto: "icmp", pcap: "red.pcap"});
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_opts(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Handle> {
        do_start(&ctx, nsname(&ctx, ns)?, dev, opts)
    }

    /// Captures on a link where nslab runs (the host, or the sandbox's root).
    ///
    /// ```rhai
    /// let c = capture::start("veth-red-br");
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_here(ctx: NativeCallContext, dev: &str) -> RhaiResultOf<Handle> {
        do_start(&ctx, None, dev, rhai::Map::new())
    }

    /// Captures on a link where nslab runs, with options (see above).
    ///
    /// ```rhai
    /// let c = capture::start("uplink", #{proto: "tcp", port: 80});
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_here_opts(
        ctx: NativeCallContext,
        dev: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Handle> {
        do_start(&ctx, None, dev, opts)
    }

    /// Stops a capture and returns its packets, oldest first: an array of `#{time, dev, dir,
    /// src, dst, proto, sport, dport, len, summary}`. `time` is seconds since the start,
    /// `dir` `"in"` or `"out"`, `src`/`dst` IP addresses (ARP: sender and target), ports `()`
    /// where the protocol has none, `summary` a `tcpdump -n` line. Stopping twice returns an
    /// empty array. Under `nslab plan` nothing is captured and `stop` returns `()` (not an
    /// empty array: a recipe can tell "no packets" from "not captured").
    ///
    /// ```rhai
    /// let c = capture::start("uplink", #{proto: "icmp"});
    /// probe::ping("red", "203.0.113.1");
    /// let pkts = capture::stop(c);
    /// if pkts != () {
    ///     assert(pkts.all(|p| p.src == "203.0.113.2" || p.dst == "203.0.113.2"), "not masqueraded");
    /// }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn stop(ctx: NativeCallContext, handle: Handle) -> RhaiResultOf<Dynamic> {
        if !*handle.live.borrow() {
            return Ok(Dynamic::UNIT);
        }
        let Some(c) = handle.running.borrow_mut().take() else {
            return Ok(rhai::Array::new().into());
        };
        let dev = c.dev.clone();
        let r = check(&ctx, c.stop())?;
        *handle.dropped.borrow_mut() += r.dropped;
        if r.dropped > 0 {
            eprintln!(
                "warning: the capture on {dev} dropped {} packets (over its `max`, or the kernel's buffer was full)",
                r.dropped
            );
        }
        Ok(r.packets.iter().map(|p| Dynamic::from(packet_map(p))).collect::<rhai::Array>().into())
    }

    /// How many packets a stopped capture could not keep (over `max`, or dropped by the
    /// kernel).
    ///
    /// ```rhai
    /// let c = capture::start("uplink", #{max: 10});
    /// capture::stop(c);
    /// print(capture::dropped(c));
    /// ```
    pub fn dropped(handle: Handle) -> rhai::INT {
        *handle.dropped.borrow() as rhai::INT
    }
}
