//! Routing in the model: `ip route add/del` with the kernel's checks, the main table as
//! `ip route` shows it, and the lookups probe tracing needs.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{Model, Route, v6};
use crate::net::NetResult;
use crate::net::info::RouteInfo;
use crate::net::op::is_link_local;
use crate::net::refusal::{
    gateway_needs_link, gateway_unreachable, no_route, route_dev_down, route_exists,
    route_needs_way,
};

impl Model {
    pub(super) fn route_add(
        &mut self,
        ns: Option<&str>,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> NetResult<()> {
        self.space(ns)?;
        if let Some(d) = dev {
            self.lookup(ns, d)?;
        }
        let d = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
        let is_v6 = dest.map(|d| d.addr().is_ipv6()).or(via.map(|v| v.is_ipv6())).unwrap_or(false);
        // 0.0.0.0/0 and ::/0 are the default route, as the kernel sees them.
        let dest = dest.filter(|d| d.prefix_len() > 0);
        let shown = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
        let out = match (via, dev) {
            (Some(gw), None) if is_link_local(gw) => return Err(gateway_needs_link(gw)),
            (_, Some(out_dev)) => {
                let i = self.find(ns, out_dev).expect("looked up above");
                if !is_v6 && !self.links[i].up {
                    return Err(route_dev_down(&d, out_dev, ns));
                }
                out_dev.to_string()
            }
            (Some(gw), None) => match self.onlink_dev(ns, gw) {
                Some(dev) => dev,
                // IPv6 accepts a gateway it cannot resolve yet less strictly; only IPv4 is
                // checked here.
                None if gw.is_ipv6() => {
                    self.route_lookup(ns, gw).map(|(d, _)| d).unwrap_or_default()
                }
                None => return Err(gateway_unreachable(&gw.to_string(), ns)),
            },
            (None, None) => return Err(route_needs_way(&d)),
        };
        let taken = self.routes_of(ns).iter().any(|r| {
            let same_dest = r.dest == shown && (r.family == "inet6") == is_v6;
            // IPv6 kernel routes have metric 256, ours 1024: only our own collide.
            same_dest && (!is_v6 || r.proto != "kernel")
        });
        if taken {
            return Err(route_exists(ns, &d));
        }
        let direct = via.is_none();
        self.space_mut(ns)?.routes.push(Route { dest, v6: is_v6, via, dev: out, direct });
        Ok(())
    }

    pub(super) fn route_del(
        &mut self,
        ns: Option<&str>,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> NetResult<()> {
        self.space(ns)?;
        if let Some(d) = dev {
            self.lookup(ns, d)?;
        }
        let d = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
        let dest = dest.filter(|d| d.prefix_len() > 0);
        let space = self.space_mut(ns)?;
        let hit = space.routes.iter().position(|r| {
            r.dest == dest && via.is_none_or(|v| r.via == Some(v)) && dev.is_none_or(|x| r.dev == x)
        });
        match hit {
            Some(i) => {
                space.routes.remove(i);
                Ok(())
            }
            None => Err(no_route(ns, &d.to_string(), via, dev)),
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
                    .find(|r| r.direct && up(&r.dev) && r.dest.is_some_and(|n| n.contains(&gw)))
                    .map(|r| r.dev.clone())
            })
    }

    /// The main table as `ip route` shows it: connected routes of up links plus the recipe's.
    pub(super) fn routes_of(&self, ns: Option<&str>) -> Vec<RouteInfo> {
        let Ok(space) = self.space(ns) else { return vec![] };
        let mut out: Vec<(bool, Option<IpNet>, RouteInfo)> = Vec::new();
        for (dev, a) in &space.addrs {
            let up = self.find(ns, dev).is_some_and(|i| self.links[i].up);
            if !up
                || a.prefix_len() == a.max_prefix_len()
                || self.links[self.find(ns, dev).unwrap()].kind == "loopback"
            {
                continue;
            }
            let net = a.trunc();
            let fam = if a.addr().is_ipv6() { "inet6" } else { "inet" };
            if out.iter().any(|(_, d, r)| *d == Some(net) && r.dev.as_deref() == Some(dev)) {
                continue;
            }
            let scope = if a.addr().is_ipv6() { "global" } else { "link" };
            out.push((
                a.addr().is_ipv6(),
                Some(net),
                RouteInfo {
                    dest: net.to_string(),
                    via: None,
                    dev: Some(dev.clone()),
                    family: fam.into(),
                    proto: "kernel".into(),
                    scope: scope.into(),
                },
            ));
        }
        for r in &space.routes {
            out.push((
                r.v6,
                r.dest,
                RouteInfo {
                    dest: r.dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into()),
                    via: r.via.map(|v| v.to_string()),
                    dev: Some(r.dev.clone()).filter(|d| !d.is_empty()),
                    family: if r.v6 { "inet6".into() } else { "inet".into() },
                    proto: "boot".into(),
                    scope: if r.direct { "link".into() } else { "global".into() },
                },
            ));
        }
        // IPv4 first with the default route leading (trie order); IPv6 after, default last.
        out.sort_by_key(|(is6, d, _)| {
            let rank = match (is6, d) {
                (false, None) => 0,
                (false, Some(_)) => 1,
                (true, Some(_)) => 2,
                (true, None) => 3,
            };
            (rank, d.map(|n| (n.network(), n.prefix_len())))
        });
        out.into_iter().map(|(_, _, r)| r).collect()
    }

    /// Longest-prefix match over the main table: (outgoing link, gateway).
    pub(super) fn route_lookup(
        &self,
        ns: Option<&str>,
        dst: IpAddr,
    ) -> Option<(String, Option<IpAddr>)> {
        let space = self.space(ns).ok()?;
        let up = |dev: &str| self.find(ns, dev).is_some_and(|i| self.links[i].up);
        let mut best: Option<(u8, String, Option<IpAddr>)> = None;
        let mut offer = |len: u8, dev: &str, gw: Option<IpAddr>| {
            if best.as_ref().is_none_or(|(b, ..)| len > *b) {
                best = Some((len, dev.to_string(), gw));
            }
        };
        for (dev, a) in &space.addrs {
            if up(dev) && a.contains(&dst) && dev != "lo" {
                offer(a.prefix_len(), dev, None);
            }
        }
        for r in &space.routes {
            let len = match r.dest {
                Some(d) if d.contains(&dst) => d.prefix_len(),
                None if r.v6 == v6(&dst) => 0,
                _ => continue,
            };
            if up(&r.dev) {
                offer(len, &r.dev, r.via);
            }
        }
        best.map(|(_, d, g)| (d, g))
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
