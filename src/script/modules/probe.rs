use std::time::Duration;

use rhai::plugin::*;

use crate::net::probe::Echoes;
use crate::script::modules::{check_opts, ifname, parse_ip, parse_target};
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
) -> RhaiResultOf<rhai::Map> {
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
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("sent".into(), (r.sent as rhai::INT).into());
    m.insert("received".into(), (r.received as rhai::INT).into());
    m.insert("rtt_ms".into(), round_ms(r.rtt_ms).into());
    Ok(m)
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
) -> RhaiResultOf<rhai::Map> {
    let timeout = opt_int(ctx, &opts, "timeout_ms", 2000, &["timeout_ms"])?;
    let t = parse_target(ctx, target)?;
    let r = query(ctx, |b| b.tcp(ns.as_deref(), t, Duration::from_millis(timeout as u64)))?;
    let opt = |s: Option<String>| s.map(Dynamic::from).unwrap_or(Dynamic::UNIT);
    let mut m = rhai::Map::new();
    m.insert("ok".into(), r.ok.into());
    m.insert("reply".into(), r.reply.into());
    m.insert("seen".into(), opt(r.seen));
    m.insert("local".into(), opt(r.local));
    m.insert("rtt_ms".into(), round_ms(r.rtt_ms).into());
    m.insert("error".into(), opt(r.error));
    Ok(m)
}

#[export_module]
pub mod probe_mod {

    use super::{do_ping, do_tcp};
    use crate::script::modules::{nsname, port};
    use crate::script::{RhaiResultOf, query};

    /// Pings `addr` from inside netns `ns` (ICMP echo from a socket in the netns; no `ping`
    /// binary needed). Returns `#{ok, sent, received, rtt_ms}`. `"ADDR%DEV"` sends out of
    /// link DEV only, as a link-local IPv6 address needs: `"fe80::1%veth-red"`.
    ///
    /// ```rhai
    /// assert(probe::ping("red", "192.168.24.11").ok, "red cannot reach green");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn ping(ctx: NativeCallContext, ns: &str, addr: &str) -> RhaiResultOf<rhai::Map> {
        do_ping(&ctx, nsname(&ctx, ns)?, addr, rhai::Map::new())
    }

    /// Ping with options `#{count: 3, timeout_ms: 2000}`. With `count`, exactly that many
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
    ) -> RhaiResultOf<rhai::Map> {
        do_ping(&ctx, nsname(&ctx, ns)?, addr, opts)
    }

    /// Pings from where nslab runs (the host, or the sandbox's root).
    ///
    /// ```rhai
    /// probe::ping("192.168.24.10");
    /// ```
    #[rhai_fn(name = "ping", return_raw)]
    pub fn ping_here(ctx: NativeCallContext, addr: &str) -> RhaiResultOf<rhai::Map> {
        do_ping(&ctx, None, addr, rhai::Map::new())
    }

    /// Opens a TCP connection from netns `ns` to `"ip:port"` and reads what the server sends.
    /// Returns `#{ok, reply, seen, local, rtt_ms, error}`; against `probe::serve`, `seen` is
    /// the source address the server saw (proof of NAT).
    ///
    /// ```rhai
    /// let r = probe::tcp("internet", "203.0.113.2:8080");
    /// print(r.seen);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn tcp(ctx: NativeCallContext, ns: &str, target: &str) -> RhaiResultOf<rhai::Map> {
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
    ) -> RhaiResultOf<rhai::Map> {
        do_tcp(&ctx, nsname(&ctx, ns)?, target, opts)
    }

    /// TCP probe from where nslab runs.
    ///
    /// ```rhai
    /// let r = probe::tcp("192.168.24.10:80");
    /// ```
    #[rhai_fn(name = "tcp", return_raw)]
    pub fn tcp_here(ctx: NativeCallContext, target: &str) -> RhaiResultOf<rhai::Map> {
        do_tcp(&ctx, None, target, rhai::Map::new())
    }

    /// Starts a built-in TCP server inside netns `ns` on `port` that tells every client which
    /// address it saw (`nslab-serve ns=red seen=IP:PORT ...`). It runs until nslab exits.
    /// Returns the port.
    ///
    /// ```rhai
    /// probe::serve("red", 80);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn serve(ctx: NativeCallContext, ns: &str, p: rhai::INT) -> RhaiResultOf<rhai::INT> {
        let ns = nsname(&ctx, ns)?;
        let p = match p {
            0 => 0,
            1..=65535 => port(&ctx, p)?,
            _ => {
                return Err(fail(
                    &ctx,
                    invalid(
                        format!("port {p} is out of range"),
                        "ports go from 1 to 65535; 0 picks a free one",
                    ),
                ));
            }
        };
        query(&ctx, |b| b.serve(ns.as_deref(), p)).map(|p| p as rhai::INT)
    }
}
