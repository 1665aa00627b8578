use std::time::Duration;

use rhai::plugin::*;

use crate::net::probe::Flavour;
use crate::net::probe::UDP_PAYLOAD;
use crate::net::probe::{Echoes, ping_stats};
use crate::script::modules::{check_opts, ifname, parse_ip, parse_target, port};
use crate::script::{RhaiResultOf, fail, invalid, query};

pub fn opt_int(
    ctx: &NativeCallContext,
    opts: &rhai::Map,
    key: &str,
    default: i64,
    known: &[&str],
) -> RhaiResultOf<i64> {
    check_opts(ctx, opts, known)?;
    match opts.get(key) {
        None => Ok(default),
        Some(v) => match v.as_int() {
            Ok(n) if n > 0 && n <= 600_000 => Ok(n),
            _ => Err(fail(
                ctx,
                invalid(
                    format!("option `{key}` must be a positive integer"),
                    format!("e.g. #{{{key}: {default}}}"),
                ),
            )),
        },
    }
}

pub fn do_ping(
    ctx: &NativeCallContext,
    ns: Option<String>,
    addr: &str,
    opts: rhai::Map,
) -> RhaiResultOf<Dynamic> {
    let known = ["count", "timeout_ms"];
    // `ADDR%DEV`: out of that link (a link-local address needs it).
    let (ip, dev) = match addr.split_once('%') {
        Some((a, d)) => (parse_ip(ctx, a)?, Some(ifname(ctx, d)?)),
        None => (parse_ip(ctx, addr)?, None),
    };
    let echoes = if opts.contains_key("count") {
        let count = opt_int(ctx, &opts, "count", 1, &known)?;
        if count > 10_000 {
            // Sequence numbers are 16 bits; a lab probe has no use for more than this.
            return Err(fail(ctx, invalid("option `count` is at most 10000", "e.g. #{count: 3}")));
        }
        let wait = opt_int(ctx, &opts, "timeout_ms", 2000, &known)?;
        Echoes::new(count as u32, Duration::from_millis(wait as u64), false)
    } else {
        // A link that has just come up drops packets until the kernel's linkwatch activates
        // its queue (up to ~1 s, seen on veths here): without an explicit count, send up to 3
        // echoes and stop at the first answer.
        let wait = opt_int(ctx, &opts, "timeout_ms", 1000, &known)?;
        Echoes::new(3, Duration::from_millis(wait as u64), true)
    };
    let r = query(ctx, |b| b.ping(ns.as_deref(), ip, dev.as_deref(), echoes))?;
    // `()` where the answer cannot be known (`nslab plan` past a rule it cannot evaluate).
    let Some(r) = r else { return Ok(Dynamic::UNIT) };
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("sent".into(), (r.sent as rhai::INT).into());
    m.insert("received".into(), (r.received as rhai::INT).into());
    m.insert("rtt_ms".into(), round_ms(r.rtt_ms).into());
    // ping(8)'s summary. The RTTs are `()` when no reply came back, or when they were not
    // measured (`nslab plan`): never a made-up number.
    let measured = r.rtts_ms.len() as u32 == r.received;
    let s = ping_stats(r.sent, if measured { &r.rtts_ms } else { &[] });
    let loss = if r.sent == 0 {
        0.0
    } else {
        100.0 * f64::from(r.sent - r.received.min(r.sent)) / f64::from(r.sent)
    };
    m.insert("loss_pct".into(), ((loss * 100.0).round() / 100.0).into());
    let stat = |v: Option<f64>| v.map(|x| Dynamic::from(round_ms(x))).unwrap_or(Dynamic::UNIT);
    m.insert("rtt_min_ms".into(), stat(s.min));
    m.insert("rtt_avg_ms".into(), stat(s.avg));
    m.insert("rtt_max_ms".into(), stat(s.max));
    m.insert("rtt_mdev_ms".into(), stat(s.mdev));
    Ok(m.into())
}

/// Microsecond precision is all a probe's timing is worth.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

pub fn do_tcp(
    ctx: &NativeCallContext,
    ns: Option<String>,
    target: &str,
    opts: rhai::Map,
) -> RhaiResultOf<Dynamic> {
    let timeout = opt_int(ctx, &opts, "timeout_ms", 2000, &["timeout_ms"])?;
    let t = parse_target(ctx, target)?;
    let r = query(ctx, |b| b.tcp(ns.as_deref(), t, Duration::from_millis(timeout as u64)))?;
    let Some(r) = r else { return Ok(Dynamic::UNIT) };
    let opt = |s: Option<String>| s.map(Dynamic::from).unwrap_or(Dynamic::UNIT);
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("reply".into(), r.reply.into());
    m.insert("seen".into(), opt(r.seen));
    m.insert("local".into(), opt(r.local));
    m.insert("rtt_ms".into(), round_ms(r.rtt_ms).into());
    m.insert("error".into(), opt(r.error));
    Ok(m.into())
}

/// A duration option in seconds (integer or decimal) within `range`.
pub fn opt_secs(
    ctx: &NativeCallContext,
    opts: &rhai::Map,
    key: &str,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> RhaiResultOf<Duration> {
    let v = match opts.get(key) {
        None => default,
        Some(v) => match v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)) {
            Some(x) if range.contains(&x) => x,
            _ => {
                return Err(fail(
                    ctx,
                    invalid(
                        format!(
                            "option `{key}` must be a number of seconds from {} to {}, not {v}",
                            range.start(),
                            range.end()
                        ),
                        format!("e.g. #{{{key}: {default}}}"),
                    ),
                ));
            }
        },
    };
    Ok(Duration::from_secs_f64(v))
}

fn opt_str(s: Option<String>) -> Dynamic {
    s.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

pub fn do_udp(
    ctx: &NativeCallContext,
    ns: Option<String>,
    target: &str,
    opts: rhai::Map,
) -> RhaiResultOf<Dynamic> {
    let known = ["timeout_ms", "payload"];
    let timeout = opt_int(ctx, &opts, "timeout_ms", 2000, &known)?;
    let payload = match opts.get("payload") {
        None => UDP_PAYLOAD.as_bytes().to_vec(),
        Some(p) => match p.clone().into_string() {
            Ok(p) if !p.is_empty() && p.len() <= 1400 => p.into_bytes(),
            _ => {
                return Err(fail(
                    ctx,
                    invalid(
                        "option `payload` must be a string of 1 to 1400 bytes",
                        "e.g. #{payload: \"hello\"}",
                    ),
                ));
            }
        },
    };
    let t = parse_target(ctx, target)?;
    let r =
        query(ctx, |b| b.udp(ns.as_deref(), t, Duration::from_millis(timeout as u64), payload))?;
    let Some(r) = r else { return Ok(Dynamic::UNIT) };
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("reply".into(), r.reply.into());
    m.insert("seen".into(), opt_str(r.seen));
    m.insert("local".into(), opt_str(r.local));
    m.insert("rtt_ms".into(), round_ms(r.rtt_ms).into());
    m.insert("error".into(), opt_str(r.error));
    Ok(m.into())
}

pub fn do_throughput(
    ctx: &NativeCallContext,
    ns: Option<String>,
    target: &str,
    opts: rhai::Map,
) -> RhaiResultOf<Dynamic> {
    check_opts(ctx, &opts, &["seconds"])?;
    let secs = opt_secs(ctx, &opts, "seconds", 2.0, 0.1..=60.0)?;
    let t = parse_target(ctx, target)?;
    let r = query(ctx, |b| b.throughput(ns.as_deref(), t, secs))?;
    let Some(r) = r else { return Ok(Dynamic::UNIT) };
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("mbit_s".into(), ((r.mbit_s * 100.0).round() / 100.0).into());
    m.insert("bytes".into(), (r.bytes as rhai::INT).into());
    m.insert("seconds".into(), round_ms(r.seconds).into());
    m.insert("error".into(), opt_str(r.error));
    Ok(m.into())
}

pub fn do_serve(
    ctx: &NativeCallContext,
    ns: Option<String>,
    p: rhai::INT,
    opts: rhai::Map,
) -> RhaiResultOf<rhai::INT> {
    check_opts(ctx, &opts, &["proto", "http"])?;
    let p = match p {
        0 => 0,
        1..=65535 => port(ctx, p)?,
        _ => {
            return Err(fail(
                ctx,
                invalid(
                    format!("port {p} is out of range"),
                    "ports go from 1 to 65535; 0 picks a free one",
                ),
            ));
        }
    };
    let proto = match opts.get("proto") {
        None => "tcp".to_string(),
        Some(v) => v.clone().into_string().unwrap_or_default(),
    };
    let http = match opts.get("http") {
        None => false,
        Some(v) => v.as_bool().map_err(|_| {
            fail(ctx, invalid("option `http` is true or false", "e.g. #{http: true}"))
        })?,
    };
    let flavour = match (proto.as_str(), http) {
        ("tcp", false) => Flavour::Tcp,
        ("tcp", true) => Flavour::Http,
        ("udp", false) => Flavour::Udp,
        ("udp", true) => {
            return Err(fail(
                ctx,
                invalid("HTTP runs over TCP, not UDP", "drop `proto: \"udp\"` or `http: true`"),
            ));
        }
        (other, _) => {
            return Err(fail(
                ctx,
                invalid(
                    format!("unknown protocol {other:?}"),
                    "`proto` is \"tcp\" (the default) or \"udp\"",
                ),
            ));
        }
    };
    query(ctx, |b| b.serve_flavour(ns.as_deref(), p, flavour)).map(|p| p as rhai::INT)
}

#[export_module]
pub mod probe_mod {

    use super::{do_ping, do_serve, do_tcp, do_throughput, do_udp};
    use crate::script::RhaiResultOf;
    use crate::script::modules::nsname;

    /// Pings `addr` from inside netns `ns` (ICMP echo from a socket in the netns; no `ping`
    /// binary needed). Returns `#{ok, sent, received, rtt_ms, loss_pct, rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms}`. `"ADDR%DEV"` sends out of
    /// link DEV only, as a link-local IPv6 address needs: `"fe80::1%veth-red"`. `nslab plan`
    /// answers from its model (routes, forwarding, NAT, firewall rules), and with `()` where
    /// it cannot know (a firewall rule it cannot evaluate on the way).
    ///
    /// ```rhai
    /// assert(probe::ping("red", "192.168.24.11").ok, "red cannot reach green");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn ping(ctx: NativeCallContext, ns: &str, addr: &str) -> RhaiResultOf<Dynamic> {
        do_ping(&ctx, nsname(&ctx, ns)?, addr, rhai::Map::new())
    }

    /// Ping with options `#{count: 3, timeout_ms: 2000}`. The result also has ping(8)'s
    /// summary: `loss_pct`, and `rtt_min_ms`, `rtt_avg_ms`, `rtt_max_ms`, `rtt_mdev_ms` (`()`
    /// when no reply came back, and in `nslab plan`, which cannot measure). With `count`, exactly that many
    /// echoes go out a second apart, and the probe waits `timeout_ms` (default 2000) after the
    /// last one; an answer counts whenever it arrives. Without `count`, up to 3 echoes are
    /// sent and the first answer ends the probe, which gives up `timeout_ms` (default 1000)
    /// after the third. Echoes go out every `timeout_ms` instead when that is under a second.
    ///
    /// ```rhai
    /// let r = probe::ping("red", "192.168.24.11", #{count: 3});
    /// print(`${r.received}/${r.sent} in ${r.rtt_ms} ms`);
    /// ```
    #[rhai_fn(name = "ping", return_raw)]
    pub fn ping_opts(
        ctx: NativeCallContext,
        ns: &str,
        addr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_ping(&ctx, nsname(&ctx, ns)?, addr, opts)
    }

    /// Pings from where nslab runs (the host, or the sandbox's root).
    ///
    /// ```rhai
    /// probe::ping("192.168.24.10");
    /// ```
    #[rhai_fn(name = "ping", return_raw)]
    pub fn ping_here(ctx: NativeCallContext, addr: &str) -> RhaiResultOf<Dynamic> {
        do_ping(&ctx, None, addr, rhai::Map::new())
    }

    /// Opens a TCP connection from netns `ns` to `"ip:port"` and reads what the server sends.
    /// Returns `#{ok, reply, seen, local, rtt_ms, error}`; against `probe::serve`, `seen` is
    /// the source address the server saw (proof of NAT). `nslab plan` answers `()` where its
    /// model cannot know (a server `netns::exec` started, a rule it cannot evaluate).
    ///
    /// ```rhai
    /// let r = probe::tcp("internet", "203.0.113.2:8080");
    /// print(r.seen);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn tcp(ctx: NativeCallContext, ns: &str, target: &str) -> RhaiResultOf<Dynamic> {
        do_tcp(&ctx, nsname(&ctx, ns)?, target, rhai::Map::new())
    }

    /// TCP probe with options `#{timeout_ms: 500}`.
    ///
    /// ```rhai
    /// let r = probe::tcp("red", "192.168.24.11:80", #{timeout_ms: 500});
    /// ```
    #[rhai_fn(name = "tcp", return_raw)]
    pub fn tcp_opts(
        ctx: NativeCallContext,
        ns: &str,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_tcp(&ctx, nsname(&ctx, ns)?, target, opts)
    }

    /// TCP probe from where nslab runs.
    ///
    /// ```rhai
    /// let r = probe::tcp("192.168.24.10:80");
    /// ```
    #[rhai_fn(name = "tcp", return_raw)]
    pub fn tcp_here(ctx: NativeCallContext, target: &str) -> RhaiResultOf<Dynamic> {
        do_tcp(&ctx, None, target, rhai::Map::new())
    }

    /// Starts a built-in TCP server inside netns `ns` on `port` that tells every client which
    /// address it saw (`nslab-serve ns=red seen=IP:PORT ...`), and swallows what a client
    /// sends (the sink of `probe::throughput`); `#{proto: "udp"}` and `#{http: true}` start
    /// a UDP or HTTP server instead. It runs until nslab exits or the lab is rolled back.
    /// Returns the port.
    ///
    /// ```rhai
    /// probe::serve("red", 80);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn serve(ctx: NativeCallContext, ns: &str, p: rhai::INT) -> RhaiResultOf<rhai::INT> {
        do_serve(&ctx, nsname(&ctx, ns)?, p, rhai::Map::new())
    }

    /// Starts a built-in server with options. `#{proto: "udp"}` answers each datagram with
    /// the same `nslab-serve … seen=…` line (from the address it was sent to), and
    /// `#{http: true}` answers each HTTP request with `200 OK` and that line as the body, so
    /// `curl` works against it. The plain TCP server is also the sink `probe::throughput`
    /// measures against. Servers stop when the lab is rolled back or nslab exits.
    ///
    /// ```rhai
    /// probe::serve("red", 53, #{proto: "udp"});
    /// probe::serve("red", 80, #{http: true});
    /// ```
    #[rhai_fn(name = "serve", return_raw)]
    pub fn serve_opts(
        ctx: NativeCallContext,
        ns: &str,
        p: rhai::INT,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::INT> {
        do_serve(&ctx, nsname(&ctx, ns)?, p, opts)
    }

    /// Starts a built-in server where nslab runs (the host, or the sandbox's root).
    ///
    /// ```rhai
    /// probe::serve(8080);
    /// ```
    #[rhai_fn(name = "serve", return_raw)]
    pub fn serve_here(ctx: NativeCallContext, p: rhai::INT) -> RhaiResultOf<rhai::INT> {
        do_serve(&ctx, None, p, rhai::Map::new())
    }

    /// Starts a built-in server where nslab runs, with options (`proto`, `http`).
    ///
    /// ```rhai
    /// probe::serve(8080, #{http: true});
    /// ```
    #[rhai_fn(name = "serve", return_raw)]
    pub fn serve_here_opts(
        ctx: NativeCallContext,
        p: rhai::INT,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::INT> {
        do_serve(&ctx, None, p, opts)
    }

    /// Pings from where nslab runs, with options (`count`, `timeout_ms`).
    ///
    /// ```rhai
    /// let r = probe::ping("192.168.24.10", #{count: 3});
    /// ```
    #[rhai_fn(name = "ping", return_raw)]
    pub fn ping_here_opts(
        ctx: NativeCallContext,
        addr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_ping(&ctx, None, addr, opts)
    }

    /// TCP probe from where nslab runs, with options (`timeout_ms`).
    ///
    /// ```rhai
    /// let r = probe::tcp("192.168.24.10:80", #{timeout_ms: 500});
    /// ```
    #[rhai_fn(name = "tcp", return_raw)]
    pub fn tcp_here_opts(
        ctx: NativeCallContext,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_tcp(&ctx, None, target, opts)
    }

    /// Sends a UDP datagram from netns `ns` to `"ip:port"` and waits for a reply (sending
    /// again every 500 ms until `timeout_ms`, default 2000). Returns `#{ok, reply, seen,
    /// local, rtt_ms, error}`; against `probe::serve(…, #{proto: "udp"})`, `seen` is the
    /// source address the server saw. A closed port answers at once: `error` is
    /// "connection refused (port unreachable)". `nslab plan` answers from its model, and
    /// with `()` where it cannot know (a server `netns::exec` started).
    ///
    /// ```rhai
    /// probe::serve("green", 5353, #{proto: "udp"});
    /// let r = probe::udp("red", "192.168.24.11:5353");
    /// if type_of(r) == "map" { assert(r.ok, `no UDP reply: ${r.error}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn udp(ctx: NativeCallContext, ns: &str, target: &str) -> RhaiResultOf<Dynamic> {
        do_udp(&ctx, nsname(&ctx, ns)?, target, rhai::Map::new())
    }

    /// UDP probe with options `#{timeout_ms: 2000, payload: "text"}`.
    ///
    /// ```rhai
    /// let r = probe::udp("red", "192.168.24.11:5353", #{timeout_ms: 500, payload: "hi"});
    /// ```
    #[rhai_fn(name = "udp", return_raw)]
    pub fn udp_opts(
        ctx: NativeCallContext,
        ns: &str,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_udp(&ctx, nsname(&ctx, ns)?, target, opts)
    }

    /// UDP probe from where nslab runs.
    ///
    /// ```rhai
    /// let r = probe::udp("192.168.24.10:5353");
    /// ```
    #[rhai_fn(name = "udp", return_raw)]
    pub fn udp_here(ctx: NativeCallContext, target: &str) -> RhaiResultOf<Dynamic> {
        do_udp(&ctx, None, target, rhai::Map::new())
    }

    /// UDP probe from where nslab runs, with options.
    ///
    /// ```rhai
    /// let r = probe::udp("192.168.24.10:5353", #{timeout_ms: 500});
    /// ```
    #[rhai_fn(name = "udp", return_raw)]
    pub fn udp_here_opts(
        ctx: NativeCallContext,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_udp(&ctx, None, target, opts)
    }

    /// Measures TCP throughput from netns `ns` to a `probe::serve` server at `"ip:port"`:
    /// sends as fast as TCP allows for `seconds` (default 2, at most 60), then waits until
    /// the server's side has acknowledged everything. Returns `#{ok, mbit_s, bytes, seconds,
    /// error}` — what the path carried, like `iperf3 -c`. `nslab plan` cannot know: `()`.
    ///
    /// ```rhai
    /// probe::serve("green", 5201);
    /// let t = probe::throughput("red", "192.168.24.11:5201");
    /// if type_of(t) == "map" { print(`${t.mbit_s} Mbit/s`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn throughput(ctx: NativeCallContext, ns: &str, target: &str) -> RhaiResultOf<Dynamic> {
        do_throughput(&ctx, nsname(&ctx, ns)?, target, rhai::Map::new())
    }

    /// Throughput test with options `#{seconds: 5}`.
    ///
    /// ```rhai
    /// let t = probe::throughput("red", "192.168.24.11:5201", #{seconds: 1});
    /// ```
    #[rhai_fn(name = "throughput", return_raw)]
    pub fn throughput_opts(
        ctx: NativeCallContext,
        ns: &str,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_throughput(&ctx, nsname(&ctx, ns)?, target, opts)
    }

    /// Throughput test from where nslab runs.
    ///
    /// ```rhai
    /// let t = probe::throughput("192.168.24.11:5201");
    /// ```
    #[rhai_fn(name = "throughput", return_raw)]
    pub fn throughput_here(ctx: NativeCallContext, target: &str) -> RhaiResultOf<Dynamic> {
        do_throughput(&ctx, None, target, rhai::Map::new())
    }

    /// Throughput test from where nslab runs, with options.
    ///
    /// ```rhai
    /// let t = probe::throughput("192.168.24.11:5201", #{seconds: 1});
    /// ```
    #[rhai_fn(name = "throughput", return_raw)]
    pub fn throughput_here_opts(
        ctx: NativeCallContext,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<Dynamic> {
        do_throughput(&ctx, None, target, opts)
    }
}
