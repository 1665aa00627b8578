use rhai::plugin::*;

use crate::net::Op;
use crate::net::fw::{self, Match, Ports, Verdict};
use crate::script::modules::nat::opt_str;
use crate::script::modules::{check_opts, parse_cidr};
use crate::script::{RhaiResultOf, apply, backend, check, fail, invalid};

/// The keys a match map may have.
pub const MATCH_KEYS: &[&str] = &["src", "dst", "proto", "dport", "sport", "iif", "oif", "state"];

/// An address or subnet: `"10.0.0.5"` is the host, `"10.0.0.0/24"` the subnet.
fn net(ctx: &NativeCallContext, s: &str) -> RhaiResultOf<ipnet::IpNet> {
    match s.trim().parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ipnet::IpNet::from(ip)),
        Err(_) => parse_cidr(ctx, s),
    }
}

fn ports(ctx: &NativeCallContext, key: &str, v: &Dynamic) -> RhaiResultOf<Ports> {
    let one = |n: i64| {
        u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| {
            fail(ctx, invalid(format!("{key} {n} is out of range"), "ports go from 1 to 65535"))
        })
    };
    if let Ok(n) = v.as_int() {
        let p = one(n)?;
        return Ok(Ports(p, p));
    }
    let bad = || {
        fail(
            ctx,
            invalid(
                format!("{key} must be a port or a range, not {v}"),
                "e.g. #{dport: 80} or #{dport: \"8000:8080\"}",
            ),
        )
    };
    let s = v.clone().into_string().map_err(|_| bad())?;
    let (a, b) = s.split_once(':').unwrap_or((&s, &s));
    let (a, b) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    let (a, b) = (one(a)?, one(b)?);
    if a > b {
        return Err(bad());
    }
    Ok(Ports(a, b))
}

/// A script's match map as a [`Match`]; `known` limits the keys (a DNAT has no `oif`).
pub fn parse_match(ctx: &NativeCallContext, m: &rhai::Map, known: &[&str]) -> RhaiResultOf<Match> {
    check_opts(ctx, m, known)?;
    let mut out = Match::default();
    if let Some(s) = opt_str(ctx, m, "src")? {
        out.src = Some(net(ctx, &s)?);
    }
    if let Some(s) = opt_str(ctx, m, "dst")? {
        out.dst = Some(net(ctx, &s)?);
    }
    out.proto = opt_str(ctx, m, "proto")?.map(|p| p.to_ascii_lowercase());
    out.iif = opt_str(ctx, m, "iif")?;
    out.oif = opt_str(ctx, m, "oif")?;
    for (key, slot) in [("dport", &mut out.dport), ("sport", &mut out.sport)] {
        if let Some(v) = m.get(key).filter(|v| !v.is_unit()) {
            *slot = Some(ports(ctx, key, v)?);
        }
    }
    if let Some(v) = m.get("state").filter(|v| !v.is_unit()) {
        let words: Vec<String> = if let Some(a) = v.clone().try_cast::<rhai::Array>() {
            a.into_iter().map(|x| x.to_string()).collect()
        } else if let Ok(s) = v.clone().into_string() {
            s.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect()
        } else {
            return Err(fail(
                ctx,
                invalid(
                    format!("state must be a string or an array, not {}", v.type_name()),
                    "e.g. #{state: \"established,related\"}",
                ),
            ));
        };
        out.state = words.into_iter().map(|w| w.to_ascii_lowercase()).collect();
    }
    Ok(out)
}

fn rule(
    ctx: &NativeCallContext,
    ns: Option<String>,
    chain: &str,
    pattern: rhai::Map,
    verdict: Verdict,
) -> RhaiResultOf<()> {
    let chain = check(ctx, fw::chain(chain))?;
    let m = parse_match(ctx, &pattern, MATCH_KEYS)?;
    if chain == "INPUT" && m.oif.is_some() || chain == "OUTPUT" && m.iif.is_some() {
        let (key, why) = if chain == "INPUT" { ("oif", "leaves") } else { ("iif", "arrives") };
        return Err(fail(
            ctx,
            invalid(
                format!("the {} chain has no `{key}`", chain.to_ascii_lowercase()),
                format!(
                    "a packet in it never {why} through an interface; use \"forward\" for packets passing through"
                ),
            ),
        ));
    }
    let lab = backend(ctx)?.lab().to_string();
    let rule = check(ctx, fw::filter_rule(&m, verdict, &lab))?;
    apply(ctx, Op::IptAppend { ns, table: "filter".into(), chain: chain.into(), rule })
}

#[export_module]
pub mod fw_mod {
    use super::rule;
    use crate::net::fw::Verdict;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, query};

    /// Accepts packets that match, like `iptables -A CHAIN … -j ACCEPT` (a firewall rule).
    /// `chain` is
    /// `"input"` (to this host), `"forward"` (through it) or `"output"` (from it); the match
    /// map takes `src`, `dst` (address or subnet), `proto` (`"tcp"`, `"udp"`, `"icmp"`),
    /// `dport`, `sport` (a port or `"8000:8080"`), `iif`, `oif` (interfaces) and `state`
    /// (`"established,related"`). `#{}` matches every packet. Rules are appended in the
    /// order they are made, tagged `nslab:LAB`, and removed with the lab.
    ///
    /// ```rhai
    /// fw::allow("forward", #{proto: "tcp", dst: "10.0.0.10", dport: 80});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn allow(ctx: NativeCallContext, chain: &str, pattern: rhai::Map) -> RhaiResultOf<()> {
        rule(&ctx, None, chain, pattern, Verdict::Accept)
    }

    /// Accepts matching packets inside a netns.
    ///
    /// ```rhai
    /// fw::allow("router", "forward", #{state: "established,related"});
    /// ```
    #[rhai_fn(name = "allow", return_raw)]
    pub fn allow_ns(
        ctx: NativeCallContext,
        ns: &str,
        chain: &str,
        pattern: rhai::Map,
    ) -> RhaiResultOf<()> {
        rule(&ctx, nsname(&ctx, ns)?, chain, pattern, Verdict::Accept)
    }

    /// Drops matching packets silently, like `iptables -A CHAIN … -j DROP`: a client's
    /// connection times out. Same chains and match keys as `fw::allow`.
    ///
    /// ```rhai
    /// fw::drop("forward", #{});   // everything not allowed before
    /// ```
    #[rhai_fn(return_raw)]
    pub fn drop(ctx: NativeCallContext, chain: &str, pattern: rhai::Map) -> RhaiResultOf<()> {
        rule(&ctx, None, chain, pattern, Verdict::Drop)
    }

    /// Drops matching packets inside a netns.
    ///
    /// ```rhai
    /// fw::drop("router", "forward", #{proto: "icmp"});
    /// ```
    #[rhai_fn(name = "drop", return_raw)]
    pub fn drop_ns(
        ctx: NativeCallContext,
        ns: &str,
        chain: &str,
        pattern: rhai::Map,
    ) -> RhaiResultOf<()> {
        rule(&ctx, nsname(&ctx, ns)?, chain, pattern, Verdict::Drop)
    }

    /// Rejects matching packets, like `iptables -A CHAIN … -j REJECT`: the sender is told at
    /// once (ICMP port unreachable; a TCP client sees "connection refused").
    ///
    /// ```rhai
    /// fw::reject("input", #{proto: "tcp", dport: 22});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn reject(ctx: NativeCallContext, chain: &str, pattern: rhai::Map) -> RhaiResultOf<()> {
        rule(&ctx, None, chain, pattern, Verdict::Reject)
    }

    /// Rejects matching packets inside a netns.
    ///
    /// ```rhai
    /// fw::reject("router", "forward", #{proto: "udp", dport: 53});
    /// ```
    #[rhai_fn(name = "reject", return_raw)]
    pub fn reject_ns(
        ctx: NativeCallContext,
        ns: &str,
        chain: &str,
        pattern: rhai::Map,
    ) -> RhaiResultOf<()> {
        rule(&ctx, nsname(&ctx, ns)?, chain, pattern, Verdict::Reject)
    }

    /// The filter table's rules here, as `iptables -S` prints them.
    ///
    /// ```rhai
    /// for r in fw::list() { print(r); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.ipt_list(None, "filter"))
            .map(|v| v.into_iter().map(Dynamic::from).collect())
    }

    /// The filter table's rules inside a netns.
    ///
    /// ```rhai
    /// let rules = fw::list("router");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.ipt_list(ns.as_deref(), "filter"))
            .map(|v| v.into_iter().map(Dynamic::from).collect())
    }
}
