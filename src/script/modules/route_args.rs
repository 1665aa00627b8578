//! What `route::add/del` and `rule::add/del` accept, turned into the kernel layer's plain
//! data. Pure functions over Rhai values, errors as `NetError`s (the caller puts them at the
//! recipe line), so every refusal is unit-tested here.

use std::net::IpAddr;

use ipnet::IpNet;
use rhai::Dynamic;

use crate::net::NetResult;
use crate::net::routing::{Nexthop, RouteKind, RouteOpts, check_route, parse_table};
use crate::net::rule::{RuleSpec, check_rule};
use crate::script::invalid;

/// A route as the recipe gave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteArgs {
    pub(crate) dest: Option<IpNet>,
    pub(crate) via: Option<IpAddr>,
    pub(crate) dev: Option<String>,
    pub(crate) opts: RouteOpts,
}

pub(crate) const ROUTE_OPTS: &[&str] = &["table", "metric", "src", "onlink"];
pub(crate) const RULE_KEYS: &[&str] = &["from", "to", "iif", "oif", "fwmark", "table", "priority"];
const HOP_KEYS: &[&str] = &["via", "weight", "dev"];

fn known(keys: &rhai::Map, allowed: &[&str], what: &str) -> NetResult<()> {
    for k in keys.keys() {
        if !allowed.contains(&k.as_str()) {
            let near = crate::net::error::closest(k, allowed.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(invalid(
                format!("unknown {what} `{k}`"),
                format!("{near}known: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

pub(crate) fn ifname(name: &str) -> NetResult<String> {
    crate::net::op::check_ifname(name).map(|_| name.to_string())
}

pub(crate) fn ip(s: &str) -> NetResult<IpAddr> {
    s.trim().parse::<IpAddr>().map_err(|_| {
        invalid(format!("invalid IP address {s:?}"), "write a plain address, e.g. \"192.168.24.1\"")
    })
}

/// A prefix, or a plain address meaning just that host (`/32`, `/128`).
pub(crate) fn prefix(s: &str) -> NetResult<IpNet> {
    if let Ok(a) = s.trim().parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    s.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        invalid(
            format!("invalid prefix {s:?}"),
            "write an address or a prefix, e.g. \"10.2.0.2\" or \"10.2.0.0/24\"",
        )
    })
}

/// `"ADDR"` or `"ADDR%DEV"`.
fn gateway(s: &str) -> NetResult<(IpAddr, Option<String>)> {
    match s.split_once('%') {
        Some((gw, d)) => Ok((ip(gw)?, Some(ifname(d)?))),
        None => Ok((ip(s)?, None)),
    }
}

fn string(v: &Dynamic, what: &str, example: &str) -> NetResult<String> {
    v.clone().into_string().map_err(|_| {
        invalid(
            format!("{what} must be a string, not {}", v.type_name()),
            format!("e.g. {example}"),
        )
    })
}

fn uint(v: &Dynamic, what: &str, max: i64, example: &str) -> NetResult<i64> {
    match v.as_int() {
        Ok(n) if (0..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            format!("{what} must be an integer from 0 to {max}, not {v}"),
            format!("e.g. {example}"),
        )),
    }
}

/// One hop of a multipath route: `"GW"`, `"GW%DEV"` or `#{via, weight, dev}`.
fn hop(v: &Dynamic) -> NetResult<Nexthop> {
    if let Some(m) = v.read_lock::<rhai::Map>() {
        known(&m, HOP_KEYS, "gateway key")?;
        let via = m.get("via").ok_or_else(|| {
            invalid("a gateway map needs `via`", "e.g. #{via: \"10.1.0.1\", weight: 2}")
        })?;
        let (via, mut dev) = gateway(&string(via, "`via`", "\"10.1.0.1\"")?)?;
        if let Some(d) = m.get("dev") {
            dev = Some(ifname(&string(d, "`dev`", "\"eth0\"")?)?);
        }
        let weight = match m.get("weight") {
            None => 1,
            Some(w) => match w.as_int() {
                Ok(n) if (1..=256).contains(&n) => n as u16,
                _ => {
                    return Err(invalid(
                        format!("weight {w} of gateway {via} is out of range"),
                        "a weight goes from 1 to 256, e.g. #{via: \"10.1.0.1\", weight: 2}",
                    ));
                }
            },
        };
        return Ok(Nexthop { via, dev, weight });
    }
    let s = string(v, "a gateway", "\"10.1.0.1\" or #{via: \"10.1.0.1\", weight: 2}")?;
    let (via, dev) = gateway(&s)?;
    Ok(Nexthop { via, dev, weight: 1 })
}

/// `route::add/del(dest, via [, opts])`.
pub(crate) fn route(dest: &str, via: &Dynamic, opts: Option<&rhai::Map>) -> NetResult<RouteArgs> {
    let dest = if dest == "default" {
        None
    } else {
        Some(dest.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
            let help = if dest.parse::<IpAddr>().is_ok() {
                format!("add a prefix length, e.g. \"{dest}/32\"")
            } else {
                "write \"default\" or a prefix, e.g. \"10.1.0.0/16\"".into()
            };
            invalid(format!("invalid destination {dest:?}"), help)
        })?)
    };
    let mut r = RouteArgs { dest, via: None, dev: None, opts: RouteOpts::default() };
    if let Some(list) = via.read_lock::<rhai::Array>() {
        r.opts.nexthops = list.iter().map(hop).collect::<NetResult<_>>()?;
        if r.opts.nexthops.is_empty() {
            return Err(invalid(
                "a multipath route needs at least two gateways, this one has none",
                "e.g. [\"10.1.0.1\", \"10.2.0.1\"]",
            ));
        }
    } else {
        let via = string(
            via,
            "`via`",
            "\"10.0.0.1\", \"dev:eth0\", \"blackhole\" or [\"10.1.0.1\", \"10.2.0.1\"]",
        )?;
        if let Some(kind) = RouteKind::parse(&via) {
            r.opts.kind = kind;
        } else if let Some(d) = via.strip_prefix("dev:") {
            r.dev = Some(ifname(d)?);
        } else {
            let (gw, dev) = gateway(&via).map_err(|e| {
                e.with_help("`via` is a gateway address, \"ADDR%DEV\", \"dev:NAME\", \"blackhole\", \"unreachable\", \"prohibit\", or an array of gateways")
            })?;
            r.via = Some(gw);
            r.dev = dev;
        }
    }
    if let Some(o) = opts {
        known(o, ROUTE_OPTS, "option")?;
        if let Some(t) = o.get("table") {
            r.opts.table = Some(if t.is_int() {
                uint(t, "`table`", u32::MAX as i64, "#{table: 100}")?.to_string()
            } else {
                string(t, "`table`", "#{table: 100}")?
            })
            .map(|t| parse_table(&t))
            .transpose()?;
        }
        if let Some(m) = o.get("metric") {
            r.opts.metric = Some(uint(m, "`metric`", u32::MAX as i64, "#{metric: 100}")? as u32);
        }
        if let Some(s) = o.get("src") {
            r.opts.src = Some(ip(&string(s, "`src`", "#{src: \"10.0.0.2\"}")?)?);
        }
        if let Some(b) = o.get("onlink") {
            r.opts.onlink = b
                .as_bool()
                .map_err(|_| invalid("option `onlink` is true or false", "e.g. #{onlink: true}"))?;
        }
    }
    // A gateway of the other family would get the kernel's bare "No route to host".
    let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
    if let (Some(d), Some(gw)) = (r.dest, r.via)
        && d.addr().is_ipv6() != gw.is_ipv6()
    {
        return Err(invalid(
            format!(
                "gateway {gw} is {} but the destination {d} is {}",
                fam(gw.is_ipv6()),
                fam(d.addr().is_ipv6())
            ),
            format!(
                "a route's gateway has its destination's family: an {} gateway for {d}",
                fam(d.addr().is_ipv6())
            ),
        ));
    }
    check_route(r.dest, r.via, &r.opts)?;
    Ok(r)
}

/// `rule::add/del(#{from, to, iif, oif, fwmark, table, priority})`. `table` defaults to main
/// (as with `ip rule`); `fwmark` is a number or `"MARK/MASK"`.
pub(crate) fn rule(m: &rhai::Map) -> NetResult<RuleSpec> {
    known(m, RULE_KEYS, "rule key")?;
    let mut r = RuleSpec { table: crate::net::routing::TABLE_MAIN, ..Default::default() };
    let s = |k: &str, ex: &str| m.get(k).map(|v| string(v, &format!("`{k}`"), ex)).transpose();
    if let Some(f) = s("from", "#{from: \"10.2.0.0/24\"}")? {
        r.from = Some(prefix(&f)?);
    }
    if let Some(t) = s("to", "#{to: \"10.9.0.0/16\"}")? {
        r.to = Some(prefix(&t)?);
    }
    if let Some(i) = s("iif", "#{iif: \"eth0\"}")? {
        r.iif = Some(ifname(&i)?);
    }
    if let Some(o) = s("oif", "#{oif: \"eth0\"}")? {
        r.oif = Some(ifname(&o)?);
    }
    if let Some(f) = m.get("fwmark") {
        if f.is_int() {
            r.fwmark = Some(uint(f, "`fwmark`", u32::MAX as i64, "#{fwmark: 16}")? as u32);
        } else {
            let text = string(f, "`fwmark`", "#{fwmark: \"0x10/0xff\"}")?;
            let num = |t: &str| {
                let t = t.trim();
                let v = match t.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16),
                    None => t.parse::<u32>(),
                };
                v.map_err(|_| {
                    invalid(
                        format!("invalid fwmark {text:?}"),
                        "a mark is a number, or \"MARK/MASK\" in decimal or 0x hex: \"0x10/0xff\"",
                    )
                })
            };
            match text.split_once('/') {
                Some((mark, mask)) => {
                    r.fwmark = Some(num(mark)?);
                    r.fwmask = Some(num(mask)?);
                }
                None => r.fwmark = Some(num(&text)?),
            }
        }
    }
    if let Some(t) = m.get("table") {
        let word = if t.is_int() {
            uint(t, "`table`", u32::MAX as i64, "#{table: 100}")?.to_string()
        } else {
            string(t, "`table`", "#{table: 100}")?
        };
        if word == "0" {
            return Err(invalid(
                "a rule's table cannot be 0",
                "table 0 is \"unspecified\" to the kernel; use 1..4294967295, e.g. #{table: 100}",
            ));
        }
        r.table = parse_table(&word)?;
    }
    if let Some(p) = m.get("priority") {
        let p = uint(p, "`priority`", u32::MAX as i64, "#{priority: 100}")?;
        if p == 0 {
            return Err(invalid(
                "priority 0 belongs to the kernel's `local` rule",
                "pick a priority from 1 up; below 32766 comes before the main table",
            ));
        }
        r.priority = Some(p as u32);
    }
    r.v6 = r.from.or(r.to).is_some_and(|n| n.addr().is_ipv6());
    check_rule(&r)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(src: &str) -> rhai::Map {
        rhai::Engine::new().eval::<rhai::Map>(src).unwrap()
    }

    fn dynv(src: &str) -> Dynamic {
        rhai::Engine::new().eval::<Dynamic>(src).unwrap()
    }

    fn err(r: NetResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn via_takes_every_form() {
        let r = route("10.0.0.0/8", &dynv(r#""10.1.0.1""#), None).unwrap();
        assert_eq!(r.via, Some("10.1.0.1".parse().unwrap()));
        let r = route("default", &dynv(r#""dev:eth0""#), None).unwrap();
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        let r = route("10.9.0.0/16", &dynv(r#""blackhole""#), None).unwrap();
        assert_eq!(r.opts.kind, RouteKind::Blackhole);
        let r = route("default", &dynv(r#"["10.1.0.1", #{via: "10.2.0.1", weight: 3}]"#), None)
            .unwrap();
        assert_eq!(r.opts.nexthops.len(), 2);
        assert_eq!(r.opts.nexthops[1].weight, 3);
        let r =
            route("10.0.0.0/8", &dynv(r#""fe80::1%eth0""#), Some(&map("#{table: 100, metric: 5}")));
        assert!(err(r).contains("is IPv6 but the destination"));
        let r = route(
            "10.0.0.5/8",
            &dynv(r#""10.1.0.1""#),
            Some(&map(r#"#{table: "main", src: "10.0.0.2", onlink: true}"#)),
        )
        .unwrap();
        assert_eq!(r.dest, Some("10.0.0.0/8".parse().unwrap()), "host bits are dropped");
        assert_eq!((r.opts.table, r.opts.onlink), (Some(254), true));
    }

    #[test]
    fn bad_routes_get_words() {
        let one = route("default", &dynv(r#"[#{via: "10.1.0.1", weight: 0}]"#), None);
        assert_eq!(err(one), "weight 0 of gateway 10.1.0.1 is out of range");
        let single = route("default", &dynv(r#"["10.1.0.1"]"#), None);
        assert!(err(single).contains("at least two gateways"));
        assert!(err(route("default", &dynv("[]"), None)).contains("has none"));
        let t0 = route("default", &dynv(r#""10.1.0.1""#), Some(&map("#{table: 0}")));
        assert!(err(t0).contains("invalid routing table"));
        let typo = route("default", &dynv(r#""10.1.0.1""#), Some(&map("#{tabel: 1}")));
        let e = typo.unwrap_err();
        assert_eq!(e.message, "unknown option `tabel`");
        assert!(e.help.unwrap().starts_with("did you mean `table`?"));
        assert!(err(route("default", &dynv(r#""gw""#), None)).contains("invalid IP address"));
        assert!(err(route("10.0.0.1", &dynv(r#""10.1.0.1""#), None)).contains("destination"));
        let bh = route("10.0.0.0/8", &dynv(r#""blackhole""#), Some(&map("#{onlink: true}")));
        assert!(err(bh).contains("has no gateway"));
        let hopkey = route("default", &dynv(r#"[#{gw: "10.1.0.1"}, "10.2.0.1"]"#), None);
        assert!(err(hopkey).contains("unknown gateway key `gw`"));
    }

    #[test]
    fn rules_parse_like_ip_rule() {
        let r = rule(&map(r#"#{from: "10.2.0.2", table: 102}"#)).unwrap();
        assert_eq!(r.from, Some("10.2.0.2/32".parse().unwrap()));
        assert_eq!((r.table, r.priority, r.v6), (102, None, false));
        let r = rule(&map(r#"#{fwmark: "0x10/0xff", iif: "eth0", priority: 100}"#)).unwrap();
        assert_eq!((r.fwmark, r.fwmask, r.priority), (Some(16), Some(255), Some(100)));
        assert_eq!(r.table, 254, "ip rule's default table is main");
        let v6 = rule(&map(r#"#{to: "fd00::/64", table: "100"}"#)).unwrap();
        assert!(v6.v6);
        assert!(err(rule(&map("#{table: 100}"))).contains("needs a selector"));
        assert!(err(rule(&map(r#"#{from: "10.0.0.1", table: 0}"#))).contains("cannot be 0"));
        assert!(err(rule(&map(r#"#{from: "10.0.0.1", priority: 0}"#))).contains("local"));
        assert!(err(rule(&map(r#"#{form: "10.0.0.1"}"#))).contains("unknown rule key `form`"));
        assert!(err(rule(&map(r#"#{fwmark: "x"}"#))).contains("invalid fwmark"));
        let mixed = rule(&map(r#"#{from: "10.0.0.1", to: "fd00::1"}"#));
        assert!(err(mixed).contains("not of the rule's family"));
    }
}
