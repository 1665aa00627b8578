use rhai::plugin::*;

use crate::net::Op;
use crate::net::tc::{self, Netem, Qdisc, QdiscInfo, Tbf};
use crate::script::modules::{check_opts, ifname};
use crate::script::{RhaiResultOf, apply, fail, invalid};

pub const NETEM_KEYS: &[&str] =
    &["delay_ms", "jitter_ms", "loss_pct", "duplicate_pct", "reorder_pct", "corrupt_pct", "rate"];
/// What `veth::add` and `lab::attach` take: Mininet's TCLink in one map.
pub const LINK_KEYS: &[&str] = &["delay_ms", "jitter_ms", "loss_pct", "rate"];

/// A number option (int or float), or None when absent.
fn num(ctx: &NativeCallContext, opts: &rhai::Map, key: &str) -> RhaiResultOf<Option<f64>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => match (v.as_int(), v.as_float()) {
            (Ok(i), _) => Ok(Some(i as f64)),
            (_, Ok(f)) => Ok(Some(f)),
            _ => Err(fail(
                ctx,
                invalid(
                    format!("option `{key}` must be a number, not {}", v.type_name()),
                    "e.g. #{delay_ms: 50, loss_pct: 0.5}",
                ),
            )),
        },
    }
}

fn refuse<T>(ctx: &NativeCallContext, r: Result<T, String>, help: &str) -> RhaiResultOf<T> {
    r.map_err(|m| fail(ctx, invalid(m, help)))
}

/// A rate option: a string like iproute2's (`"10mbit"`).
fn rate(ctx: &NativeCallContext, v: &Dynamic) -> RhaiResultOf<u64> {
    let text = match v.clone().into_string() {
        Ok(s) => s,
        Err(t) => {
            return Err(fail(
                ctx,
                invalid(format!("a rate is a string like \"10mbit\", not {t}"), "e.g. \"8mbit\""),
            ));
        }
    };
    refuse(ctx, tc::parse_rate(&text), "units: bit, kbit, mbit, gbit (or Bps, KBps, MBps ...)")
}

/// netem from an option map with `keys` allowed.
pub fn netem(ctx: &NativeCallContext, opts: &rhai::Map, keys: &[&str]) -> RhaiResultOf<Netem> {
    check_opts(ctx, opts, keys)?;
    let ms = |key: &str| -> RhaiResultOf<u64> {
        let v = num(ctx, opts, key)?.unwrap_or(0.0);
        refuse(ctx, tc::millis(key, v), "a delay in milliseconds, e.g. 50 or 0.5")
    };
    let pct = |key: &str| -> RhaiResultOf<u32> {
        let v = num(ctx, opts, key)?.unwrap_or(0.0);
        refuse(ctx, tc::probability(key, v), "a percentage, e.g. 1 or 0.5")
    };
    let n = Netem {
        delay_ns: ms("delay_ms")?,
        jitter_ns: ms("jitter_ms")?,
        loss: pct("loss_pct")?,
        duplicate: pct("duplicate_pct")?,
        reorder: pct("reorder_pct")?,
        corrupt: pct("corrupt_pct")?,
        rate: opts
            .get("rate")
            .filter(|v| !v.is_unit())
            .map(|v| rate(ctx, v))
            .transpose()?
            .unwrap_or(0),
        limit: 1000,
    };
    if n.reorder != 0 && n.delay_ns == 0 {
        // netem reorders by sending some packets at once while delaying the others.
        return Err(fail(
            ctx,
            invalid(
                "reorder_pct needs a delay to reorder against",
                "add delay_ms, e.g. #{delay_ms: 10, reorder_pct: 25}",
            ),
        ));
    }
    Ok(n)
}

/// tbf at `rate` with `#{burst, latency_ms}`.
pub fn tbf(ctx: &NativeCallContext, rate_text: &str, opts: &rhai::Map) -> RhaiResultOf<Tbf> {
    check_opts(ctx, opts, &["burst", "latency_ms"])?;
    let r = refuse(
        ctx,
        tc::parse_rate(rate_text),
        "units: bit, kbit, mbit, gbit (or Bps, KBps, MBps ...)",
    )?;
    let burst = match opts.get("burst").filter(|v| !v.is_unit()) {
        None => (r / 100).max(16 * 1024), // 10 ms of traffic, at least 16 KiB
        Some(v) => match (v.as_int(), v.clone().into_string()) {
            (Ok(i), _) if i > 0 => i as u64,
            (_, Ok(s)) => refuse(ctx, tc::parse_size(&s), "bytes, or a size like \"32kb\"")?,
            _ => {
                return Err(fail(
                    ctx,
                    invalid(
                        format!("burst must be a size in bytes, not {v}"),
                        "e.g. #{burst: 32768} or #{burst: \"32kb\"}",
                    ),
                ));
            }
        },
    };
    let burst = u32::try_from(burst)
        .map_err(|_| fail(ctx, invalid(format!("burst {burst} is too large"), "at most 4 GiB")))?;
    let latency = num(ctx, opts, "latency_ms")?.unwrap_or(50.0);
    let latency_ns =
        refuse(ctx, tc::millis("latency_ms", latency), "how long a packet may wait, e.g. 50")?;
    let t = Tbf::new(r, burst, latency_ns / 1000);
    if t.buffer_ticks() == u32::MAX {
        return Err(fail(
            ctx,
            invalid(
                format!("a burst of {burst} bytes takes too long to send at {rate_text}"),
                "use a smaller burst or a higher rate",
            ),
        ));
    }
    Ok(t)
}

/// The qdisc `veth::add` / `lab::attach` put on both ends: netem when there is delay or
/// loss (with its own rate), tbf for a rate alone (tbf needs no netem module).
pub fn link_qdisc(ctx: &NativeCallContext, opts: &rhai::Map) -> RhaiResultOf<Option<Qdisc>> {
    let n = netem(ctx, opts, LINK_KEYS)?;
    Ok(if n.delay_ns != 0 || n.jitter_ns != 0 || n.loss != 0 {
        Some(Qdisc::Netem(n))
    } else if n.rate != 0 {
        let text = opts.get("rate").map(|v| v.to_string()).unwrap_or_default();
        Some(Qdisc::Tbf(tbf(ctx, &text, &rhai::Map::new())?))
    } else {
        None
    })
}

pub fn set(
    ctx: &NativeCallContext,
    ns: Option<String>,
    dev: &str,
    qdisc: Qdisc,
) -> RhaiResultOf<()> {
    let dev = ifname(ctx, dev)?;
    apply(ctx, Op::TcSet { ns, dev, qdisc, old: None })
}

/// One qdisc as a script map.
pub fn info_map(q: &QdiscInfo) -> Dynamic {
    let mut m = rhai::Map::new();
    let ms = |ns: u64| Dynamic::from(ns as rhai::FLOAT / 1e6);
    let pct = |p: u32| Dynamic::from((tc::percent(p) * 1e4).round() / 1e4);
    m.insert("dev".into(), q.dev.clone().into());
    m.insert("kind".into(), q.kind.clone().into());
    m.insert("handle".into(), q.handle.clone().into());
    m.insert("parent".into(), q.parent.clone().into());
    m.insert("root".into(), (q.parent == "root").into());
    match &q.qdisc {
        Some(Qdisc::Netem(n)) => {
            m.insert("delay_ms".into(), ms(n.delay_ns));
            m.insert("jitter_ms".into(), ms(n.jitter_ns));
            m.insert("loss_pct".into(), pct(n.loss));
            m.insert("duplicate_pct".into(), pct(n.duplicate));
            m.insert("reorder_pct".into(), pct(n.reorder));
            m.insert("corrupt_pct".into(), pct(n.corrupt));
            let r = if n.rate == 0 { Dynamic::UNIT } else { tc::rate_text(n.rate).into() };
            m.insert("rate".into(), r);
            m.insert("limit".into(), (n.limit as rhai::INT).into());
        }
        Some(Qdisc::Tbf(t)) => {
            m.insert("rate".into(), tc::rate_text(t.rate).into());
            m.insert("burst".into(), (t.burst as rhai::INT).into());
            m.insert("limit".into(), (t.limit as rhai::INT).into());
        }
        _ => {}
    }
    m.into()
}

#[export_module]
pub mod tc_mod {
    use super::{NETEM_KEYS, info_map, netem as netem_opts, set, tbf};
    use crate::net::tc::Qdisc;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, query};

    /// Impairs what leaves `dev`: its root qdisc becomes netem, like `tc qdisc replace dev
    /// DEV root netem delay 50ms loss 1%`. Options: `delay_ms`, `jitter_ms`, `loss_pct`,
    /// `duplicate_pct`, `reorder_pct` (needs a delay), `corrupt_pct` and `rate` (`"10mbit"`).
    /// One request; the qdisc that was there comes back when the lab goes. Needs the
    /// kernel's sch_netem module.
    ///
    /// ```rhai
    /// tc::netem("veth-red-br", #{delay_ms: 50, jitter_ms: 5, loss_pct: 1});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn netem(ctx: NativeCallContext, dev: &str, opts: rhai::Map) -> RhaiResultOf<()> {
        let n = netem_opts(&ctx, &opts, NETEM_KEYS)?;
        set(&ctx, None, dev, Qdisc::Netem(n))
    }

    /// netem on a link inside a netns.
    ///
    /// ```rhai
    /// tc::netem("red", "eth0", #{delay_ms: 100});
    /// ```
    #[rhai_fn(name = "netem", return_raw)]
    pub fn netem_ns(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        let n = netem_opts(&ctx, &opts, NETEM_KEYS)?;
        set(&ctx, ns, dev, Qdisc::Netem(n))
    }

    /// Limits what leaves `dev` to `rate` (token bucket), like `tc qdisc replace dev DEV root
    /// tbf rate 10mbit burst 16kb latency 50ms`. Rates as iproute2 writes them: `"512kbit"`,
    /// `"10mbit"`, `"1gbit"`. One request; undone with the lab.
    ///
    /// ```rhai
    /// tc::rate("veth-red-br", "10mbit");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn rate(ctx: NativeCallContext, dev: &str, rate: &str) -> RhaiResultOf<()> {
        let t = tbf(&ctx, rate, &rhai::Map::new())?;
        set(&ctx, None, dev, Qdisc::Tbf(t))
    }

    /// A rate limit with options: `burst` (bytes or `"32kb"`; default 10 ms of traffic, at
    /// least 16 KiB) and `latency_ms` (how long a packet may queue; default 50).
    ///
    /// ```rhai
    /// tc::rate("veth-red-br", "8mbit", #{burst: "32kb", latency_ms: 100});
    /// ```
    #[rhai_fn(name = "rate", return_raw)]
    pub fn rate_opts(
        ctx: NativeCallContext,
        dev: &str,
        rate: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let t = tbf(&ctx, rate, &opts)?;
        set(&ctx, None, dev, Qdisc::Tbf(t))
    }

    /// A rate limit on a link inside a netns.
    ///
    /// ```rhai
    /// tc::rate("red", "eth0", "1mbit");
    /// ```
    #[rhai_fn(name = "rate", return_raw)]
    pub fn rate_ns(ctx: NativeCallContext, ns: &str, dev: &str, rate: &str) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        let t = tbf(&ctx, rate, &rhai::Map::new())?;
        set(&ctx, ns, dev, Qdisc::Tbf(t))
    }

    /// A rate limit inside a netns, with options.
    ///
    /// ```rhai
    /// tc::rate("red", "eth0", "1mbit", #{latency_ms: 200});
    /// ```
    #[rhai_fn(name = "rate", return_raw)]
    pub fn rate_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        rate: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        let t = tbf(&ctx, rate, &opts)?;
        set(&ctx, ns, dev, Qdisc::Tbf(t))
    }

    /// Removes the impairment or rate limit of `dev`: the kernel's default qdisc comes back,
    /// like `tc qdisc del dev DEV root`.
    ///
    /// ```rhai
    /// tc::clear("veth-red-br");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn clear(ctx: NativeCallContext, dev: &str) -> RhaiResultOf<()> {
        set(&ctx, None, dev, Qdisc::Default)
    }

    /// Clears the root qdisc of a link inside a netns.
    ///
    /// ```rhai
    /// tc::clear("red", "eth0");
    /// ```
    #[rhai_fn(name = "clear", return_raw)]
    pub fn clear_ns(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<()> {
        set(&ctx, nsname(&ctx, ns)?, dev, Qdisc::Default)
    }

    /// The qdiscs here, like `tc qdisc show`: `#{dev, kind, handle, parent, root}` each, and
    /// for netem and tbf their settings in the names `tc::netem` and `tc::rate` take.
    ///
    /// ```rhai
    /// for q in tc::list() { print(`${q.dev}: ${q.kind}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.qdiscs(None)).map(|v| v.iter().map(info_map).collect())
    }

    /// The qdiscs inside a netns.
    ///
    /// ```rhai
    /// let qs = tc::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.qdiscs(ns.as_deref())).map(|v| v.iter().map(info_map).collect())
    }

    /// The qdiscs of one link inside a netns, like `tc -n NS qdisc show dev DEV`.
    ///
    /// ```rhai
    /// let root = tc::list("red", "eth0").filter(|q| q.root)[0];
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns_dev(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.qdiscs(ns.as_deref()))
            .map(|v| v.iter().filter(|q| q.dev == dev).map(info_map).collect())
    }
}
