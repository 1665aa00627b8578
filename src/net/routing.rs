//! Routes beyond "prefix via gateway" — route types, multipath, tables, metrics, preferred
//! source, onlink — as plain data ([`RouteOpts`]), their `ip route` words, and the rtnetlink
//! messages that make, delete and describe them. Knows nothing of Rhai.
//!
//! Deleting asks the kernel for exactly the route a lab made: table, metric, type, protocol,
//! gateway(s) and source are all in the RTM_DELROUTE, so a route somebody else added with
//! the same destination (another metric, another gateway) survives (fib_table_delete and
//! ip6_route_del compare every attribute the request carries, and only those).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};
use super::info::{NexthopInfo, RouteInfo};
use super::op::q;

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

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// The RTM_NEWROUTE / RTM_DELROUTE for a route. `index` resolves a link name in the route's
/// netns. `add` false makes the delete request, which leaves the scope open
/// (RT_SCOPE_NOWHERE), as `ip route del` does.
pub(crate) fn route_message(
    dest: Option<IpNet>,
    via: Option<IpAddr>,
    dev: Option<&str>,
    o: &RouteOpts,
    add: bool,
    index: &dyn Fn(&str) -> NetResult<u32>,
) -> NetResult<RouteMessage> {
    let v6 = family_v6(dest, via, o);
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    let table = o.table();
    h.table = if table < 256 { table as u8 } else { RouteHeader::RT_TABLE_UNSPEC };
    // `ip route add` marks routes proto boot; so do we, so that `ip route` shows the same
    // after `nslab run` as after the commands `nslab plan` prints. A route that outlives
    // the lab carries nslab's own mark (see PROTO_NSLAB), its delete too.
    h.protocol = o.protocol.map_or(RouteProtocol::Boot, RouteProtocol::from);
    h.kind = o.kind.rtn();
    h.scope = if !add {
        RouteScope::NoWhere
    } else if o.kind == RouteKind::Unicast && via.is_none() && o.nexthops.is_empty() {
        // Like `ip route add PREFIX dev DEV`: a directly connected route.
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    if o.onlink && o.nexthops.is_empty() {
        h.flags |= RouteFlags::Onlink;
    }
    let unspecified =
        if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let (addr, len) = match dest {
        Some(d) => (d.network(), d.prefix_len()),
        None => (unspecified, 0),
    };
    h.destination_prefix_length = len;
    if len > 0 {
        m.attributes.push(RouteAttribute::Destination(route_address(addr)));
    }
    m.attributes.push(RouteAttribute::Table(table));
    if let Some(g) = via {
        m.attributes.push(RouteAttribute::Gateway(route_address(g)));
    }
    if let Some(d) = dev {
        m.attributes.push(RouteAttribute::Oif(index(d)?));
    }
    if !o.nexthops.is_empty() {
        let mut hops = Vec::new();
        for n in &o.nexthops {
            let mut h = RouteNextHop::default();
            h.hops = (n.weight.clamp(1, 256) - 1) as u8;
            if let Some(d) = &n.dev {
                h.interface_index = index(d)?;
            }
            if o.onlink {
                h.flags |= RouteNextHopFlags::Onlink;
            }
            h.attributes.push(RouteAttribute::Gateway(route_address(n.via)));
            hops.push(h);
        }
        m.attributes.push(RouteAttribute::MultiPath(hops));
    }
    // A delete without a metric matches any (fib_nh_match and ip6_route_del skip 0), like
    // `ip route del`; teardown names the exact one (`Op::inverse`).
    if let Some(metric) = o.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(s) = o.src {
        m.attributes.push(RouteAttribute::PrefSource(route_address(s)));
    }
    Ok(m)
}

fn address_string(r: &RouteAddress) -> Option<String> {
    match r {
        RouteAddress::Inet(a) => Some(a.to_string()),
        RouteAddress::Inet6(a) => Some(a.to_string()),
        _ => None,
    }
}

/// Lower-case words for the kernel's numbers, as iproute2 prints them.
fn protocol_word(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::Unspec => "unspec".into(),
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Boot => "boot".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Ra => "ra".into(),
        RouteProtocol::Dhcp => "dhcp".into(),
        // As iproute2 prints a number it has no name for (nslab's 110).
        RouteProtocol::Other(n) => n.to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn type_word(t: RouteType) -> String {
    match t {
        RouteType::Unicast => "unicast".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Describes one dumped route; None for what is not a route of IPv4/IPv6 (or malformed).
/// `names` maps ifindex to link name in that netns.
pub(crate) fn route_detail(m: &RouteMessage, names: &HashMap<u32, String>) -> Option<RouteInfo> {
    let v6 = match m.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let (mut dest, mut via, mut dev, mut src, mut metric) = (None, None, None, None, None);
    let mut table = u32::from(m.header.table);
    let mut nexthops = Vec::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dest = address_string(d),
            RouteAttribute::Gateway(g) => via = address_string(g),
            RouteAttribute::Oif(i) => dev = names.get(i).cloned(),
            RouteAttribute::PrefSource(s) => src = address_string(s),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::MultiPath(hops) => {
                for h in hops {
                    let via = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => address_string(g),
                        _ => None,
                    });
                    nexthops.push(NexthopInfo {
                        via,
                        dev: names.get(&h.interface_index).cloned(),
                        weight: u16::from(h.hops) + 1,
                    });
                }
            }
            _ => {}
        }
    }
    let dest = match dest {
        Some(d) => format!("{d}/{}", m.header.destination_prefix_length),
        None if m.header.destination_prefix_length == 0 => "default".into(),
        None => return None,
    };
    Some(RouteInfo {
        dest,
        via,
        dev,
        family: if v6 { "inet6".into() } else { "inet".into() },
        proto: protocol_word(m.header.protocol),
        scope: match m.header.scope {
            RouteScope::Link => "link".into(),
            RouteScope::Universe => "global".into(),
            RouteScope::Host => "host".into(),
            s => format!("{s:?}").to_lowercase(),
        },
        table,
        metric,
        kind: type_word(m.header.kind),
        src,
        nexthops,
    })
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::{Emitable, Parseable};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn idx(name: &str) -> NetResult<u32> {
        match name {
            "eth0" => Ok(2),
            "eth1" => Ok(3),
            _ => Err(NetError::new(format!("no link {name}")).with_errno(libc::ENODEV)),
        }
    }

    fn names() -> HashMap<u32, String> {
        [(2, "eth0".to_string()), (3, "eth1".to_string())].into()
    }

    /// What the kernel would read back: emit, then parse the bytes.
    fn round_trip(m: &RouteMessage) -> RouteMessage {
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        RouteMessage::parse(&buf).unwrap()
    }

    fn hops(list: &[(&str, Option<&str>, u16)]) -> Vec<Nexthop> {
        list.iter()
            .map(|(v, d, w)| Nexthop { via: ip(v), dev: d.map(str::to_string), weight: *w })
            .collect()
    }

    #[test]
    fn multipath_encodes_weights_and_devices() {
        let o = RouteOpts {
            nexthops: hops(&[("10.1.0.1", None, 1), ("10.2.0.1", Some("eth1"), 3)]),
            table: Some(100),
            metric: Some(7),
            ..Default::default()
        };
        let m = route_message(None, None, None, &o, true, &idx).unwrap();
        let back = round_trip(&m);
        assert_eq!(back.header.table, 100);
        assert_eq!(back.header.scope, RouteScope::Universe);
        let d = route_detail(&back, &names()).unwrap();
        assert_eq!(d.dest, "default");
        assert_eq!(d.table, 100);
        assert_eq!(d.metric, Some(7));
        assert_eq!(
            d.nexthops,
            vec![
                NexthopInfo { via: Some("10.1.0.1".into()), dev: None, weight: 1 },
                NexthopInfo { via: Some("10.2.0.1".into()), dev: Some("eth1".into()), weight: 3 },
            ]
        );
        assert_eq!(
            route_words(None, None, None, &o),
            "default nexthop via 10.1.0.1 weight 1 nexthop via 10.2.0.1 dev eth1 weight 3 table 100 metric 7"
        );
    }

    #[test]
    fn blackhole_has_its_type_and_no_gateway() {
        let o = RouteOpts { kind: RouteKind::Blackhole, ..Default::default() };
        let dest = Some(net("10.9.0.0/16"));
        let m = round_trip(&route_message(dest, None, None, &o, true, &idx).unwrap());
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert_eq!(m.header.scope, RouteScope::Universe, "ip route add blackhole: scope global");
        let d = route_detail(&m, &names()).unwrap();
        assert_eq!((d.kind.as_str(), d.dest.as_str(), d.via), ("blackhole", "10.9.0.0/16", None));
        assert_eq!(route_words(dest, None, None, &o), "blackhole 10.9.0.0/16");
        let with_gw = check_route(dest, Some(ip("10.0.0.1")), &o).unwrap_err();
        assert_eq!(with_gw.message, "a blackhole route has no gateway");
    }

    #[test]
    fn delete_names_the_metric_only_when_given() {
        let dest = Some(net("fd00:9::/64"));
        let o = RouteOpts::default();
        let exact = RouteOpts { metric: Some(o.metric_for(true)), ..RouteOpts::default() };
        let m = route_message(dest, Some(ip("fd00::1")), None, &exact, false, &idx).unwrap();
        assert!(m.attributes.contains(&RouteAttribute::Priority(IPV6_DEFAULT_METRIC)));
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        let v4 =
            route_message(Some(net("10.0.0.0/8")), None, Some("eth0"), &o, false, &idx).unwrap();
        assert!(!v4.attributes.iter().any(|a| matches!(a, RouteAttribute::Priority(_))));
        assert!(v4.attributes.contains(&RouteAttribute::Oif(2)));
        // An add without a metric leaves the choice to the kernel.
        let add = route_message(dest, Some(ip("fd00::1")), None, &o, true, &idx).unwrap();
        assert!(!add.attributes.iter().any(|a| matches!(a, RouteAttribute::Priority(_))));
        assert_eq!(add.header.table, 254);
    }

    #[test]
    fn big_tables_go_in_the_attribute_only() {
        let o = RouteOpts {
            table: Some(1000),
            src: Some(ip("10.0.0.2")),
            onlink: true,
            ..Default::default()
        };
        let m = route_message(None, Some(ip("10.0.0.1")), Some("eth0"), &o, true, &idx).unwrap();
        assert_eq!(m.header.table, 0);
        assert!(m.header.flags.contains(RouteFlags::Onlink));
        let d = route_detail(&round_trip(&m), &names()).unwrap();
        assert_eq!((d.table, d.src.as_deref()), (1000, Some("10.0.0.2")));
        assert_eq!(
            route_words(None, Some(ip("10.0.0.1")), Some("eth0"), &o),
            "default via 10.0.0.1 dev eth0 table 1000 src 10.0.0.2 onlink"
        );
    }

    #[test]
    fn the_mark_goes_into_the_add_the_delete_and_the_words() {
        let marked = RouteOpts { protocol: Some(PROTO_NSLAB), ..Default::default() };
        let dest = Some(net("10.9.0.0/24"));
        for add in [true, false] {
            let m = route_message(dest, Some(ip("10.0.0.1")), None, &marked, add, &idx).unwrap();
            assert_eq!(m.header.protocol, RouteProtocol::Other(PROTO_NSLAB));
            assert_eq!(route_detail(&round_trip(&m), &names()).unwrap().proto, "110");
        }
        let plain = route_message(dest, None, Some("eth0"), &RouteOpts::default(), false, &idx);
        assert_eq!(plain.unwrap().header.protocol, RouteProtocol::Boot);
        assert_eq!(
            route_words(dest, Some(ip("10.0.0.1")), None, &marked),
            "10.9.0.0/24 via 10.0.0.1 proto 110"
        );
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
