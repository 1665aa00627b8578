//! Routes beyond "prefix via gateway" — route types, multipath, tables, metrics, preferred
//! source, onlink — as plain data ([`RouteOpts`]), their `ip route` words, and the rtnetlink
//! messages that make, delete and describe them. Knows nothing of Rhai.
//!
//! Deleting asks the kernel for exactly the route a lab made: table, metric, type, protocol,
//! gateway(s) and source are all in the RTM_DELROUTE, so a route somebody else added with
//! the same destination (another metric, another gateway) survives (fib_table_delete and
//! ip6_route_del compare every attribute the request carries, and only those).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::route::RouteType;
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};
use super::op::q;

mod message;
pub(crate) use message::{route_detail, route_message};

/// The kernel's table numbers with names (`/etc/iproute2/rt_tables`).
pub(crate) const TABLE_DEFAULT: u32 = 253;
pub(crate) const TABLE_MAIN: u32 = 254;
pub(crate) const TABLE_LOCAL: u32 = 255;
/// IPv6 routes added without a metric get this one (IP6_RT_PRIO_USER); IPv4 ones get 0.
pub(crate) const IPV6_DEFAULT_METRIC: u32 = 1024;

/// The route protocol (`proto 110`, `n` in ASCII) nslab gives the routes a lab adds where
/// they outlive it (a netns it did not make, a link it did not make): the kernel's own mark of
/// whose route it is. A route in the FIB carries no identity of its own: no creation time
/// (IPv4 `fib_alias`/`fib_info` have none; IPv6 dumps send RTA_CACHEINFO with only
/// `expires`), no id, no owner, so a journal has nothing to record. What it carries is
/// `rtm_protocol`, which rtnetlink(7) reserves for exactly this ("may be used to tag the
/// source of a routing information"), and RTM_DELROUTE matches it when given
/// (`fib_table_delete`: `!cfg->fc_protocol || fi->fib_protocol == cfg->fc_protocol`;
/// `ip6_route_del` the same): a delete that names 110 cannot take the admin's `proto boot`
/// or `proto static` route, whatever a journal says. 110 is in no `rt_protos` (iproute2,
/// FRR's 186-198, BIRD's 12), so `ip route` prints it as a number. Routes that die with
/// the lab keep `proto boot`, as `ip route add` makes them.
pub(crate) const PROTO_NSLAB: u8 = 110;

/// What a route does with a packet: forward it (`unicast`), or drop it silently
/// (`blackhole`), with ICMP "host unreachable" (`unreachable`) or "administratively
/// prohibited" (`prohibit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RouteKind {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteKind {
    pub(crate) fn parse(word: &str) -> Option<RouteKind> {
        match word {
            "blackhole" => Some(RouteKind::Blackhole),
            "unreachable" => Some(RouteKind::Unreachable),
            "prohibit" => Some(RouteKind::Prohibit),
            _ => None,
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Prohibit => "prohibit",
        }
    }

    fn rtn(self) -> RouteType {
        match self {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
            RouteKind::Unreachable => RouteType::Unreachable,
            RouteKind::Prohibit => RouteType::Prohibit,
        }
    }
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// One gateway of a multipath route (`nexthop via GW [dev DEV] weight W`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Nexthop {
    pub(crate) via: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dev: Option<String>,
    /// 1..=256, as `ip route` takes it (the kernel stores weight - 1).
    pub(crate) weight: u16,
}

/// Everything about a route besides its destination and single gateway/link. The default is
/// a plain unicast route in the main table, as `ip route add DEST via GW` makes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct RouteOpts {
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) kind: RouteKind,
    /// Two or more gateways (the Op's own `via`/`dev` are then None).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) nexthops: Vec<Nexthop>,
    /// None: main.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<u32>,
    /// None: the kernel's default (0 for IPv4, 1024 for IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metric: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) src: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) onlink: bool,
    /// `proto N`: [`PROTO_NSLAB`] on a route that outlives the lab (set by the executors,
    /// never by a recipe); None is `proto boot`, as `ip route add` makes routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<u8>,
}

impl RouteOpts {
    pub(crate) fn is_plain(&self) -> bool {
        *self == RouteOpts::default()
    }

    pub(crate) fn table(&self) -> u32 {
        self.table.unwrap_or(TABLE_MAIN)
    }

    /// The metric the kernel gives the route (what deleting it exactly must name).
    pub(crate) fn metric_for(&self, v6: bool) -> u32 {
        self.metric.unwrap_or(if v6 { IPV6_DEFAULT_METRIC } else { 0 })
    }
}

/// A table as `ip route` writes it.
pub(crate) fn table_name(t: u32) -> String {
    match t {
        TABLE_DEFAULT => "default".into(),
        TABLE_MAIN => "main".into(),
        TABLE_LOCAL => "local".into(),
        n => n.to_string(),
    }
}

/// A table a recipe names: a number 1..=2^32-1 or `main`/`default`/`local`. Table 0 is the
/// kernel's "unspecified" (it would silently mean main), so it is refused.
pub(crate) fn parse_table(word: &str) -> NetResult<u32> {
    let t = match word {
        "main" => TABLE_MAIN,
        "default" => TABLE_DEFAULT,
        "local" => TABLE_LOCAL,
        w => w.parse::<u32>().map_err(|_| bad_table(word))?,
    };
    if t == 0 {
        return Err(bad_table(word));
    }
    Ok(t)
}

fn bad_table(word: &str) -> NetError {
    NetError::new(format!("invalid routing table {word:?}"))
        .with_errno(libc::EINVAL)
        .with_help(
            "a table is a number from 1 to 4294967295 (0 means \"unspecified\" to the kernel), or \"main\", \"default\", \"local\"; e.g. #{table: 100}",
        )
}

/// Checks a route as a whole before it reaches the kernel, in words the kernel does not
/// have (it answers most of these with a bare EINVAL).
pub(crate) fn check_route(
    dest: Option<IpNet>,
    via: Option<IpAddr>,
    o: &RouteOpts,
) -> NetResult<()> {
    let bad = |m: String, h: &str| Err(NetError::new(m).with_errno(libc::EINVAL).with_help(h));
    let v6 = family_v6(dest, via, o);
    let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
    if o.nexthops.len() == 1 {
        return bad(
            "a multipath route needs at least two gateways, this one has one".into(),
            "give two or more: [\"10.1.0.1\", \"10.2.0.1\"], or a single gateway as a string",
        );
    }
    for h in &o.nexthops {
        if !(1..=256).contains(&h.weight) {
            return bad(
                format!("weight {} of gateway {} is out of range", h.weight, h.via),
                "a weight goes from 1 to 256, e.g. #{via: \"10.1.0.1\", weight: 2}",
            );
        }
        if h.via.is_ipv6() != v6 {
            return bad(
                format!("gateway {} is {} but the route is {}", h.via, fam(!v6), fam(v6)),
                "every gateway of a route has the destination's family",
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(h) = o.nexthops.iter().find(|h| !seen.insert((h.via, h.dev.clone()))) {
        return bad(
            format!("gateway {} appears twice in one multipath route", h.via),
            "give each gateway once; a weight says how much traffic it gets",
        );
    }
    if o.kind != RouteKind::Unicast && (via.is_some() || !o.nexthops.is_empty() || o.onlink) {
        return bad(
            format!("a {} route has no gateway", o.kind.word()),
            "write the type alone: route::add(\"10.9.0.0/16\", \"blackhole\")",
        );
    }
    if let Some(s) = o.src
        && s.is_ipv6() != v6
    {
        return bad(
            format!("source {s} is {} but the route is {}", fam(s.is_ipv6()), fam(v6)),
            "`src` is an address of this netns in the route's family",
        );
    }
    if o.onlink && via.is_none() && o.nexthops.is_empty() {
        return bad(
            "`onlink` needs a gateway".into(),
            "onlink says \"this gateway is on the link even if no subnet says so\": give via and a dev, e.g. \"10.9.9.1%eth0\"",
        );
    }
    if o.table == Some(0) {
        return Err(bad_table("0"));
    }
    Ok(())
}

/// IPv6 when the destination, a gateway or the source says so; else IPv4 (as `ip route`).
pub(crate) fn family_v6(dest: Option<IpNet>, via: Option<IpAddr>, o: &RouteOpts) -> bool {
    dest.map(|d| d.addr().is_ipv6())
        .or(via.map(|v| v.is_ipv6()))
        .or(o.nexthops.first().map(|h| h.via.is_ipv6()))
        .or(o.src.map(|s| s.is_ipv6()))
        .unwrap_or(false)
}

/// `ip route add|del` after the verb: `[TYPE] DEST [via GW] [dev DEV] [nexthop ...]
/// [table T] [metric M] [src S] [onlink]`, every recipe word quoted for the shell.
pub(crate) fn route_words(
    dest: Option<IpNet>,
    via: Option<IpAddr>,
    dev: Option<&str>,
    o: &RouteOpts,
) -> String {
    let mut s = String::new();
    if o.kind != RouteKind::Unicast {
        s.push_str(o.kind.word());
        s.push(' ');
    }
    match dest {
        Some(d) => s.push_str(&q(&d.to_string())),
        None => s.push_str("default"),
    }
    if let Some(v) = via {
        let _ = write!(s, " via {}", q(&v.to_string()));
    }
    if let Some(d) = dev {
        let _ = write!(s, " dev {}", q(d));
    }
    for h in &o.nexthops {
        let _ = write!(s, " nexthop via {}", q(&h.via.to_string()));
        if let Some(d) = &h.dev {
            let _ = write!(s, " dev {}", q(d));
        }
        let _ = write!(s, " weight {}", h.weight);
        if o.onlink {
            s.push_str(" onlink");
        }
    }
    if let Some(t) = o.table {
        let _ = write!(s, " table {}", table_name(t));
    }
    if let Some(m) = o.metric {
        let _ = write!(s, " metric {m}");
    }
    if let Some(src) = o.src {
        let _ = write!(s, " src {}", q(&src.to_string()));
    }
    if o.onlink && o.nexthops.is_empty() {
        s.push_str(" onlink");
    }
    if let Some(p) = o.protocol {
        let _ = write!(s, " proto {p}");
    }
    s
}

/// A route in messages: its destination, plus the table and metric when not the default
/// ("10.0.0.0/8 table 100 metric 5").
pub(crate) fn route_label(dest: Option<IpNet>, o: &RouteOpts) -> String {
    let mut s = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
    if o.kind != RouteKind::Unicast {
        s = format!("{} {s}", o.kind.word());
    }
    if let Some(t) = o.table {
        let _ = write!(s, " table {}", table_name(t));
    }
    if let Some(m) = o.metric {
        let _ = write!(s, " metric {m}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    pub(super) fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    pub(super) fn hops(list: &[(&str, Option<&str>, u16)]) -> Vec<Nexthop> {
        list.iter()
            .map(|(v, d, w)| Nexthop { via: ip(v), dev: d.map(str::to_string), weight: *w })
            .collect()
    }

    #[test]
    fn bad_routes_are_refused_in_words() {
        let one = RouteOpts { nexthops: hops(&[("10.1.0.1", None, 1)]), ..Default::default() };
        assert!(check_route(None, None, &one).unwrap_err().message.contains("at least two"));
        let w = RouteOpts {
            nexthops: hops(&[("10.1.0.1", None, 0), ("10.2.0.1", None, 1)]),
            ..Default::default()
        };
        assert_eq!(
            check_route(None, None, &w).unwrap_err().message,
            "weight 0 of gateway 10.1.0.1 is out of range"
        );
        let mixed = RouteOpts {
            nexthops: hops(&[("10.1.0.1", None, 1), ("fd00::1", None, 1)]),
            ..Default::default()
        };
        assert!(check_route(None, None, &mixed).is_err());
        let twice = RouteOpts {
            nexthops: hops(&[("10.1.0.1", None, 1), ("10.1.0.1", None, 2)]),
            ..Default::default()
        };
        assert!(check_route(None, None, &twice).unwrap_err().message.contains("twice"));
        let src = RouteOpts { src: Some(ip("fd00::2")), ..Default::default() };
        assert!(check_route(Some(net("10.0.0.0/8")), None, &src).is_err());
        assert!(parse_table("0").is_err());
        assert!(parse_table("x").is_err());
        assert_eq!(parse_table("main").unwrap(), 254);
        assert_eq!(parse_table("100").unwrap(), 100);
    }

    #[test]
    fn opts_stay_out_of_the_journal_when_plain() {
        assert_eq!(serde_json::to_string(&RouteOpts::default()).unwrap(), "{}");
        let o = RouteOpts { kind: RouteKind::Prohibit, table: Some(5), ..Default::default() };
        let j = serde_json::to_string(&o).unwrap();
        assert_eq!(j, r#"{"kind":"prohibit","table":5}"#);
        assert_eq!(serde_json::from_str::<RouteOpts>(&j).unwrap(), o);
    }
}
