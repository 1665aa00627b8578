//! Routing in the model: `ip route add/del` with the kernel's checks (types, tables, metrics,
//! multipath, source), the tables as `ip route show table …` shows them, and the policy
//! lookup (rules, then tables) that probe tracing needs.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{Model, Route, v6};
use crate::net::NetResult;
use crate::net::info::{NexthopInfo, RouteInfo};
use crate::net::op::is_link_local;
use crate::net::refusal::{
    bad_route_src, gateway_needs_link, gateway_unreachable, no_route, onlink_needs_dev,
    route_dev_down, route_exists, route_needs_way,
};
use crate::net::routing::{RouteKind, RouteOpts, TABLE_MAIN, family_v6, route_label};

/// Where a lookup sends a packet: the link it leaves by and the gateway, if any.
type Hop = (String, Option<IpAddr>);

/// The metric the kernel gives its own connected IPv6 routes.
const IPV6_CONNECTED_METRIC: u32 = 256;

impl Model {
    /// The link a gateway leaves by: the given one (checked up for IPv4), else the one the
    /// kernel's nexthop check finds. `d` names the route in refusals.
    fn gateway_dev(
        &self,
        ns: Option<&str>,
        d: &str,
        gw: Option<IpAddr>,
        dev: Option<&str>,
        v6: bool,
        onlink: bool,
    ) -> NetResult<String> {
        match (gw, dev) {
            (Some(_), None) if onlink => Err(onlink_needs_dev()),
            (Some(gw), None) if is_link_local(gw) => Err(gateway_needs_link(gw)),
            (_, Some(out_dev)) => {
                let i = self.lookup(ns, out_dev)?;
                if !v6 && !self.links[i].up {
                    return Err(route_dev_down(d, out_dev, ns));
                }
                if let Some(gw) = gw
                    && !v6
                    && !onlink
                    && self.onlink_dev(ns, gw).is_none_or(|x| x != out_dev)
                {
                    return Err(gateway_unreachable(&gw.to_string(), ns));
                }
                Ok(out_dev.to_string())
            }
            (Some(gw), None) => match self.onlink_dev(ns, gw) {
                Some(dev) => Ok(dev),
                // IPv6 accepts a gateway it cannot resolve yet less strictly; only IPv4 is
                // checked here.
                None if gw.is_ipv6() => {
                    Ok(self.route_lookup(ns, gw).map(|(d, _)| d).unwrap_or_default())
                }
                None => Err(gateway_unreachable(&gw.to_string(), ns)),
            },
            (None, None) => Err(route_needs_way(d)),
        }
    }

    pub(super) fn route_add(
        &mut self,
        ns: Option<&str>,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
        opts: &RouteOpts,
    ) -> NetResult<()> {
        self.space(ns)?;
        let d = route_label(dest, opts);
        let is_v6 = family_v6(dest, via, opts);
        // 0.0.0.0/0 and ::/0 are the default route, as the kernel sees them.
        let dest = dest.filter(|d| d.prefix_len() > 0);
        let mut hops = Vec::new();
        let out = if opts.kind != RouteKind::Unicast {
            match dev {
                Some(x) => {
                    self.lookup(ns, x)?;
                    x.to_string()
                }
                None => String::new(),
            }
        } else if opts.nexthops.is_empty() {
            self.gateway_dev(ns, &d, via, dev, is_v6, opts.onlink)?
        } else {
            for h in &opts.nexthops {
                let hd =
                    self.gateway_dev(ns, &d, Some(h.via), h.dev.as_deref(), is_v6, opts.onlink)?;
                hops.push((h.via, hd, h.weight));
            }
            String::new()
        };
        // IPv4 checks the source of a route with a gateway or link (a blackhole has
        // neither); IPv6 checks every route's.
        if let Some(src) = opts.src
            && (is_v6 || opts.kind == RouteKind::Unicast)
            && !self.space(ns)?.addrs.iter().any(|(_, a)| a.addr() == src)
        {
            return Err(bad_route_src(src, ns));
        }
        let table = opts.table();
        let metric = opts.metric_for(is_v6);
        let taken = self.routes_of(ns, Some(table)).iter().any(|r| {
            let shown = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
            r.dest == shown && (r.family == "inet6") == is_v6 && r.metric.unwrap_or(0) == metric
        });
        if taken {
            return Err(route_exists(ns, &d));
        }
        let direct = via.is_none() && opts.nexthops.is_empty() && opts.kind == RouteKind::Unicast;
        let route = Route { dest, v6: is_v6, via, dev: out, direct, opts: opts.clone(), hops };
        self.space_mut(ns)?.routes.push(route);
        Ok(())
    }

    pub(super) fn route_del(
        &mut self,
        ns: Option<&str>,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
        opts: &RouteOpts,
    ) -> NetResult<()> {
        self.space(ns)?;
        if let Some(d) = dev {
            self.lookup(ns, d)?;
        }
        let d = route_label(dest, opts);
        let dest = dest.filter(|d| d.prefix_len() > 0);
        let space = self.space_mut(ns)?;
        let hit = space.routes.iter().position(|r| {
            r.dest == dest
                && via.is_none_or(|v| r.via == Some(v))
                && dev.is_none_or(|x| r.dev == x)
                && r.opts.kind == opts.kind
                && r.opts.table() == opts.table()
                && opts.metric.is_none_or(|m| r.opts.metric_for(r.v6) == m)
                && opts.src.is_none_or(|s| r.opts.src == Some(s))
                && opts.protocol.is_none_or(|p| r.opts.protocol == Some(p))
                && (opts.nexthops.is_empty()
                    || opts
                        .nexthops
                        .iter()
                        .map(|h| (h.via, h.weight))
                        .eq(r.hops.iter().map(|h| (h.0, h.2))))
        });
        match hit {
            Some(i) => {
                space.routes.remove(i);
                Ok(())
            }
            None => Err(no_route(ns, &d, via, dev)),
        }
    }

    /// The link an IPv4 gateway is directly reachable on: a connected subnet or a direct
    /// route of an up link (what the kernel's nexthop check asks for), or the link of an up
    /// link's own address (the local table answers the nexthop lookup: `ip route add
    /// default via OWN-ADDRESS` works).
    pub(super) fn onlink_dev(&self, ns: Option<&str>, gw: IpAddr) -> Option<String> {
        let space = self.space(ns).ok()?;
        let up = |dev: &str| self.find(ns, dev).is_some_and(|i| self.links[i].up);
        space
            .addrs
            .iter()
            .find(|(d, a)| up(d) && a.addr() == gw)
            .or_else(|| {
                space
                    .addrs
                    .iter()
                    .find(|(d, a)| up(d) && a.contains(&gw) && a.prefix_len() < a.max_prefix_len())
            })
            .map(|(d, _)| d.clone())
            .or_else(|| {
                space
                    .routes
                    .iter()
                    .find(|r| {
                        r.direct
                            && r.opts.table() == TABLE_MAIN
                            && up(&r.dev)
                            && r.dest.is_some_and(|n| n.contains(&gw))
                    })
                    .map(|r| r.dev.clone())
            })
    }

    /// Table `table` as `ip route show table T` shows it (None: every table but local):
    /// connected routes of up links (main) plus the recipe's.
    pub(super) fn routes_of(&self, ns: Option<&str>, table: Option<u32>) -> Vec<RouteInfo> {
        let Ok(space) = self.space(ns) else { return vec![] };
        let wanted = |t: u32| table.is_none_or(|x| x == t);
        let mut out: Vec<(u32, bool, Option<IpNet>, RouteInfo)> = Vec::new();
        for (dev, a) in &space.addrs {
            let up = self.find(ns, dev).is_some_and(|i| self.links[i].up);
            if !wanted(TABLE_MAIN)
                || !up
                || a.prefix_len() == a.max_prefix_len()
                || self.links[self.find(ns, dev).unwrap()].kind == "loopback"
            {
                continue;
            }
            let net = a.trunc();
            let is6 = a.addr().is_ipv6();
            let fam = if is6 { "inet6" } else { "inet" };
            if out.iter().any(|(.., d, r)| *d == Some(net) && r.dev.as_deref() == Some(dev)) {
                continue;
            }
            let mut r = RouteInfo::main(net.to_string(), None, Some(dev.clone()), fam);
            r.proto = "kernel".into();
            r.scope = if is6 { "global" } else { "link" }.into();
            r.metric = is6.then_some(IPV6_CONNECTED_METRIC);
            if !is6 {
                // The kernel gives a connected IPv4 route its address as preferred source.
                r.src = Some(a.addr().to_string());
            }
            out.push((TABLE_MAIN, is6, Some(net), r));
        }
        for r in space.routes.iter().filter(|r| wanted(r.opts.table())) {
            let fam = if r.v6 { "inet6" } else { "inet" };
            let dest = r.dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
            let mut info = RouteInfo::main(
                dest,
                r.via.map(|v| v.to_string()),
                Some(r.dev.clone()).filter(|d| !d.is_empty()),
                fam,
            );
            info.scope = if r.direct { "link" } else { "global" }.into();
            info.table = r.opts.table();
            let metric = r.opts.metric_for(r.v6);
            info.metric = (r.v6 || metric > 0).then_some(metric);
            info.kind = r.opts.kind.word().into();
            info.src = r.opts.src.map(|s| s.to_string());
            if let Some(p) = r.opts.protocol {
                info.proto = p.to_string();
            }
            info.nexthops = r
                .hops
                .iter()
                .map(|(via, dev, w)| NexthopInfo {
                    via: Some(via.to_string()),
                    dev: Some(dev.clone()).filter(|d| !d.is_empty()),
                    weight: *w,
                })
                .collect();
            out.push((info.table, r.v6, r.dest, info));
        }
        // Table by table; in each, IPv4 first with the default route leading (trie order),
        // IPv6 after, default last.
        out.sort_by_key(|(t, is6, d, r)| {
            let rank = match (is6, d) {
                (false, None) => 0,
                (false, Some(_)) => 1,
                (true, Some(_)) => 2,
                (true, None) => 3,
            };
            (*t, rank, d.map(|n| (n.network(), n.prefix_len())), r.metric)
        });
        out.into_iter().map(|(.., r)| r).collect()
    }

    /// Longest-prefix match over the main table: (outgoing link, gateway).
    pub(super) fn route_lookup(
        &self,
        ns: Option<&str>,
        dst: IpAddr,
    ) -> Option<(String, Option<IpAddr>)> {
        self.table_lookup(ns, TABLE_MAIN, dst).flatten()
    }

    /// Longest-prefix match (then lowest metric) in one table. None: no route there (the
    /// lookup goes on with the next rule); Some(None): a route that drops the packet
    /// (blackhole, unreachable, prohibit). A multipath route answers with its first gateway:
    /// which one a flow takes depends on the kernel's hash.
    fn table_lookup(&self, ns: Option<&str>, table: u32, dst: IpAddr) -> Option<Option<Hop>> {
        let space = self.space(ns).ok()?;
        let up = |dev: &str| self.find(ns, dev).is_some_and(|i| self.links[i].up);
        let mut best: Option<(u8, u32, Option<Hop>)> = None;
        let mut offer = |len: u8, metric: u32, hit: Option<Hop>| {
            if best.as_ref().is_none_or(|(b, m, _)| len > *b || (len == *b && metric < *m)) {
                best = Some((len, metric, hit));
            }
        };
        if table == TABLE_MAIN {
            for (dev, a) in &space.addrs {
                if up(dev) && a.contains(&dst) && dev != "lo" {
                    let m = if a.addr().is_ipv6() { IPV6_CONNECTED_METRIC } else { 0 };
                    offer(a.prefix_len(), m, Some((dev.clone(), None)));
                }
            }
        }
        for r in space.routes.iter().filter(|r| r.opts.table() == table) {
            let len = match r.dest {
                Some(d) if d.contains(&dst) => d.prefix_len(),
                None if r.v6 == v6(&dst) => 0,
                _ => continue,
            };
            let metric = r.opts.metric_for(r.v6);
            if r.opts.kind != RouteKind::Unicast {
                offer(len, metric, None);
            } else if let Some((gw, dev, _)) = r.hops.iter().find(|h| up(&h.1)) {
                offer(len, metric, Some((dev.clone(), Some(*gw))));
            } else if r.hops.is_empty() && up(&r.dev) {
                offer(len, metric, Some((r.dev.clone(), r.via)));
            }
        }
        best.map(|(_, _, hit)| hit)
    }

    /// The kernel's policy lookup: the rules in priority order (`local` 0, the recipe's,
    /// `main` 32766, `default` 32767), each naming a table, until one table has a route.
    /// `src` is the packet's source (None for one this netns sends: the kernel looks up
    /// before it picks a source, so `from` rules do not match it), `iif` the link it came
    /// in by (None: sent from here, which `iif lo` matches). A rule with `oif` or `fwmark`
    /// never matches: the model knows no bound sockets and no marks.
    /// None: no route at all (the kernel's ENETUNREACH); Some(None): a route that drops
    /// the packet (blackhole, unreachable, prohibit).
    pub(super) fn policy_route(
        &self,
        ns: Option<&str>,
        dst: IpAddr,
        src: Option<IpAddr>,
        iif: Option<&str>,
    ) -> Option<Option<Hop>> {
        let space = self.space(ns).ok()?;
        let fam_v6 = v6(&dst);
        let mut tables: Vec<(u32, u32)> = space
            .ip_rules
            .iter()
            .filter(|r| r.v6 == fam_v6)
            .filter(|r| {
                r.from.is_none_or(|f| f.prefix_len() == 0 || src.is_some_and(|s| f.contains(&s)))
                    && r.to.is_none_or(|t| t.contains(&dst))
                    && r.iif.as_deref().is_none_or(|i| i == iif.unwrap_or("lo"))
                    && r.oif.is_none()
                    && r.fwmark.is_none_or(|m| m & r.fwmask.unwrap_or(u32::MAX) == 0)
            })
            .map(|r| (r.priority.unwrap_or(0), r.table))
            .collect();
        tables.push((32766, TABLE_MAIN));
        tables.push((32767, crate::net::routing::TABLE_DEFAULT));
        // Stable: rules of equal priority keep the order they were added in.
        tables.sort_by_key(|(p, _)| *p);
        tables.into_iter().find_map(|(_, t)| self.table_lookup(ns, t, dst))
    }

    /// The source address for a packet to `nh` out of `dev`.
    pub(super) fn source_for(&self, ns: Option<&str>, dev: &str, nh: IpAddr) -> Option<IpAddr> {
        let space = self.space(ns).ok()?;
        let fam = |a: &IpNet| a.addr().is_ipv6() == v6(&nh) && !a.addr().is_loopback();
        let on_dev = || space.addrs.iter().filter(|(d, a)| d == dev && fam(a));
        on_dev()
            .find(|(_, a)| a.contains(&nh))
            .or_else(|| on_dev().next())
            .or_else(|| space.addrs.iter().find(|(_, a)| fam(a)))
            .map(|(_, a)| a.addr())
    }
}
