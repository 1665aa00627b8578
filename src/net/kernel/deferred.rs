//! Link-ups held back in a run, and the default routes that need them (see
//! [`Kernel::set_defer_veth`]): a recipe that finishes each host before making the next
//! (lab(N), `lab::attach`, `lab::fabric`) brings the hosts up at the end instead, in the
//! recipe's order, as the C floor of `benches/` does.
//!
//! Why: a host whose link comes up on a bridge sends DAD probes, router solicitations and
//! MLD reports for the next seconds, and the bridge floods each to every port that is up. With
//! the hosts up one by one while the rest are built, that flood grows with every host and
//! competes with the build for RTNL and CPU: lab(1000) took 2.1x the floor's time, 0.97x with
//! `--no-ipv6` (`benches/reference-run-1000.txt`); built in the floor's order, 1.2x
//! (`benches/README.md`, "Why the cost per host grows").
//!
//! What the recipe means does not change. Only what cannot fail is held back, so every error
//! still lands on its own line (and in a `try` around it):
//! - `link::up` of a veth end this executor made (and still knows where it is), or of `lo`
//!   in a netns it made. A veth's `ndo_open` fails only when its peer is gone, which takes
//!   the pair with it.
//! - `route::add(ns, "default", GW)` (IPv4, nothing else asked) in a netns this executor made,
//!   where no route, rule, master, new link, sysctl or outside command has been (see
//!   [`Deferred::note`]), when GW lies in the prefix of an address this run put on a link
//!   whose `up` is held back: after that `up`, the kernel's prefix route makes GW reachable
//!   (`fib_check_nh`), and no default route can be there yet.
//!
//! Everything else that names a netns with something held back sends it first, and so does
//! anything that looks (every query, `exec`, probe, the end of the run). An address added in
//! such a netns commutes with held-back ups (the kernel adds the prefix route at the up), so
//! it does not send them, unless a route is held back there too (a new prefix could change
//! which link that route takes).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::Kernel;
use crate::net::error::{NetError, NetResult};
use crate::net::op::{Ns, Op};

/// What a run holds back, and what it knows of the netns it made.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// The held-back `LinkUp` and `RouteAdd` Ops, in the recipe's order, with the call
    /// site each came from.
    ops: Vec<(Op, Option<u64>)>,
    /// The links whose `up` is in `ops`: a route asks for its link's, and a lab(1000) holds
    /// two thousand.
    ups: HashSet<(Ns, String)>,
    /// Per netns: held-back (ups, routes).
    pending: HashMap<Ns, (usize, usize)>,
    /// Namespaces this executor made, in which no route, rule or outside command has been
    /// (a held-back default route's gateway is reachable only through what it knows).
    fresh_ns: HashSet<String>,
    /// Namespaces this executor made (`lo` there can only come up).
    made_ns: HashSet<String>,
    /// veth ends this executor made, where they are now.
    veths: HashSet<(Ns, String)>,
    /// IPv4 addresses this run added in a fresh netns: netns -> [(link, address)].
    addrs: HashMap<String, Vec<(String, Ipv4Net)>>,
}

impl Deferred {
    fn forget_link(&mut self, ns: &Ns, dev: &str) {
        self.veths.remove(&(ns.clone(), dev.to_string()));
        if let Some(n) = ns
            && let Some(a) = self.addrs.get_mut(n)
        {
            a.retain(|(d, _)| d != dev);
        }
    }

    fn forget_ns(&mut self, ns: &str) {
        self.fresh_ns.remove(ns);
        self.made_ns.remove(ns);
        self.addrs.remove(ns);
        self.veths.retain(|(n, _)| n.as_deref() != Some(ns));
    }

    fn up_pending(&self, ns: &Ns, dev: &str) -> bool {
        self.ups.contains(&(ns.clone(), dev.to_string()))
    }

    /// Forgets everything held back.
    fn clear(&mut self) -> Vec<(Op, Option<u64>)> {
        self.pending.clear();
        self.ups.clear();
        std::mem::take(&mut self.ops)
    }

    /// Holds `op` back when it can be (see [`Deferred::holds`]); true when it did.
    fn hold(&mut self, op: &Op, site: Option<u64>) -> bool {
        if !self.holds(op) {
            return false;
        }
        let e = self.pending.entry(op.ns().map(str::to_string)).or_default();
        if let Op::LinkUp { ns, dev } = op {
            e.0 += 1;
            self.ups.insert((ns.clone(), dev.clone()));
        } else {
            e.1 += 1;
        }
        self.ops.push((op.clone(), site));
        self.note(op);
        true
    }

    /// Whether `op` can be held back (see the module's comment).
    fn holds(&self, op: &Op) -> bool {
        if let Op::LinkUp { ns, dev } = op {
            return self.veths.contains(&(ns.clone(), dev.clone()))
                || (dev == "lo" && ns.as_ref().is_some_and(|n| self.made_ns.contains(n)));
        }
        let Op::RouteAdd { ns: Some(n), dest, via: Some(IpAddr::V4(gw)), dev, opts } = op else {
            return false;
        };
        if !opts.is_plain()
            || dest.is_some_and(|d| d.prefix_len() != 0)
            || !self.fresh_ns.contains(n)
        {
            return false;
        }
        let Some(link) = self.gateway_link(n, *gw) else { return false };
        dev.as_ref().is_none_or(|d| *d == link) && self.up_pending(&Some(n.clone()), &link)
    }

    /// The link whose prefix route will carry `gw` in `ns`: the longest of this run's
    /// prefixes there that holds it, when exactly one link has it and `gw` is a plain host of
    /// it (not an address of the netns, not the network or broadcast address, which the
    /// kernel's local table answers first and refuses as a gateway).
    fn gateway_link(&self, ns: &str, gw: Ipv4Addr) -> Option<String> {
        let addrs = self.addrs.get(ns)?;
        if gw.is_loopback() || addrs.iter().any(|(_, a)| a.addr() == gw) {
            return None;
        }
        let best = addrs
            .iter()
            .filter(|(_, a)| (1..=31).contains(&a.prefix_len()) && a.contains(&gw))
            .map(|(_, a)| a.prefix_len())
            .max()?;
        let mut links = addrs.iter().filter(|(_, a)| a.prefix_len() == best && a.contains(&gw));
        let (link, net) = links.next()?;
        if links.any(|(d, _)| d != link)
            || (best < 31 && (gw == net.network() || gw == net.broadcast()))
        {
            return None;
        }
        Some(link.clone())
    }

    /// Every netns `op` acts in, deletes, moves a link to or makes a veth end in (None: the
    /// host).
    fn touches(op: &Op) -> Vec<Ns> {
        let mut v: Vec<Ns> = Vec::new();
        if let Op::NetnsAdd { name } | Op::NetnsDel { name } | Op::NetnsForget { name } = op {
            v.push(Some(name.clone()));
        } else {
            v.push(op.ns().map(str::to_string));
        }
        v.extend(op.netns_named().into_iter().map(|n| Some(n.to_string())));
        v
    }

    /// Whether `op`, not held back itself, must wait for what is held back.
    fn must_send_before(&self, op: &Op) -> bool {
        if self.ops.is_empty() {
            return false;
        }
        if let Op::AddrAdd { ns, .. } = op
            && self.pending.get(ns).is_some_and(|&(_, routes)| routes == 0)
        {
            return false;
        }
        Self::touches(op).iter().any(|n| self.pending.contains_key(n))
    }

    /// What a successful `op` (applied or held back) tells about the netns and links this
    /// executor made.
    fn note(&mut self, op: &Op) {
        match op {
            Op::NetnsAdd { name } => {
                self.made_ns.insert(name.clone());
                self.fresh_ns.insert(name.clone());
            }
            Op::NetnsDel { name } | Op::NetnsForget { name } => self.forget_ns(name),
            Op::VethAdd { ns, name, peer, peer_ns } => {
                self.veths.insert((ns.clone(), name.clone()));
                self.veths.insert((peer_ns.clone().or(ns.clone()), peer.clone()));
            }
            Op::LinkSetNetns { ns, dev, to } => {
                let known = self.veths.contains(&(ns.clone(), dev.clone()));
                self.forget_link(ns, dev);
                if known {
                    self.veths.insert((Some(to.clone()), dev.clone()));
                }
            }
            // A renamed link keeps its addresses under another name: forgetting it only
            // holds back less.
            Op::LinkDel { ns, dev } | Op::LinkSet { ns, dev, .. } => self.forget_link(ns, dev),
            Op::LinkGroupDel { ns, .. } => {
                self.veths.retain(|(n, _)| n != ns);
                if let Some(n) = ns {
                    self.addrs.remove(n);
                }
            }
            Op::AddrAdd { ns: Some(n), dev, cidr: IpNet::V4(a) } if self.fresh_ns.contains(n) => {
                self.addrs.entry(n.clone()).or_default().push((dev.clone(), *a));
            }
            Op::AddrDel { ns: Some(n), dev, cidr: IpNet::V4(a) } => {
                if let Some(v) = self.addrs.get_mut(n) {
                    v.retain(|(d, x)| !(d == dev && x == a));
                }
            }
            // What can send a lookup elsewhere or make a gateway's link another one (a VRF,
            // a bridge or bond taking the link, a sysctl) ends a netns being fresh: holding
            // back less is always safe.
            Op::RouteAdd { ns: Some(n), .. }
            | Op::RouteDel { ns: Some(n), .. }
            | Op::RuleAdd { ns: Some(n), .. }
            | Op::RuleDel { ns: Some(n), .. }
            | Op::LinkSetMaster { ns: Some(n), .. }
            | Op::LinkAdd { ns: Some(n), .. }
            | Op::BridgeAdd { ns: Some(n), .. }
            | Op::SysctlSet { ns: Some(n), .. }
            | Op::SysctlTemp { ns: Some(n), .. } => {
                self.fresh_ns.remove(n);
            }
            // `if let` above and `_` here would hide a new Op; each kind is named in the
            // other executor matches (no wildcard arm on Op), and none of these changes
            // what the module's comment relies on.
            Op::AddrAdd { .. }
            | Op::AddrDel { .. }
            | Op::RouteAdd { .. }
            | Op::RouteDel { .. }
            | Op::RuleAdd { .. }
            | Op::RuleDel { .. }
            | Op::BridgeAdd { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::SysctlSet { .. }
            | Op::SysctlTemp { .. }
            | Op::IptAppend { .. }
            | Op::IptDelete { .. }
            | Op::LinkAdd { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::BridgeVlanDel { .. }
            | Op::WireguardSet { .. }
            | Op::TcSet { .. } => {}
        }
    }
}

impl Kernel {
    /// Holds `op` back when it can wait (see the module's comment); true when it did.
    pub(super) fn hold(&self, op: &Op) -> bool {
        if !self.defer_veth.get() {
            return false;
        }
        self.deferred.borrow_mut().hold(op, self.site.get())
    }

    /// Whether [`Kernel::hold`] would hold `op` back.
    pub(super) fn would_hold(&self, op: &Op) -> bool {
        self.defer_veth.get() && self.deferred.borrow().holds(op)
    }

    /// Sends what is held back when `op` must come after it (the held-back veths first:
    /// a held `up` can be of one of their ends).
    pub(super) fn flush_held_for(&self, op: &Op) -> NetResult<()> {
        let send = {
            let d = self.deferred.borrow();
            !d.holds(op) && d.must_send_before(op)
        };
        if send {
            self.flush_veth()?;
            self.flush_held()
        } else {
            Ok(())
        }
    }

    /// The links whose `up` is held back.
    pub(super) fn held_ups(&self) -> HashSet<(Ns, String)> {
        self.deferred.borrow().ups.clone()
    }

    /// Records what an applied `op` tells (see [`Deferred::note`]).
    pub(super) fn note_applied(&self, op: &Op) {
        self.deferred.borrow_mut().note(op);
    }

    /// After anything looked (a query, `exec`, a probe): what ran meanwhile may have put
    /// routes or addresses in any netns made so far, so no route there is held back again.
    pub(super) fn outside_may_have_acted(&self) {
        self.deferred.borrow_mut().fresh_ns.clear();
    }

    /// Applies what is held back, in the recipe's order. Should the kernel refuse one of
    /// them after all, the rest are dropped (the run fails and rolls back) and the error
    /// names the call it belongs to.
    pub(super) fn flush_held(&self) -> NetResult<()> {
        let ops = self.deferred.borrow_mut().clear();
        for (op, site) in &ops {
            let r = match op {
                Op::RouteAdd { ns, dest, via, dev, opts } => self.timed("RouteAdd (held)", || {
                    self.route(ns.as_deref(), true, *dest, *via, dev.as_deref(), opts)
                }),
                Op::LinkUp { ns, dev } => {
                    self.timed("LinkUp (held)", || self.set_state(ns.as_deref(), dev, true))
                }
                other => unreachable!("only ups and routes are held back, not {other:?}"),
            };
            r.map_err(|e| NetError {
                message: format!(
                    "{} could not be done: {} (held back until now, to bring the lab's hosts up together)",
                    call(op),
                    e.message
                ),
                site: *site,
                ..e
            })?;
        }
        Ok(())
    }

    /// Forgets what is held back: a run being rolled back.
    pub(super) fn discard_held(&self) {
        self.deferred.borrow_mut().clear();
    }
}

/// The recipe's call a held-back Op stands for, for an error that surfaces late.
fn call(op: &Op) -> String {
    let at = |ns: &Ns| ns.as_ref().map(|n| format!("\"{n}\", ")).unwrap_or_default();
    match op {
        Op::LinkUp { ns, dev } => format!("link::up({}\"{dev}\")", at(ns)),
        Op::RouteAdd { ns, via: Some(gw), .. } => {
            format!("route::add({}\"default\", \"{gw}\")", at(ns))
        }
        other => other.command(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Deferred {
        fn hold_here(&mut self, op: &Op) -> bool {
            self.hold(op, None)
        }
    }

    fn ns(n: &str) -> Ns {
        Some(n.to_string())
    }

    fn host(d: &mut Deferred, cidr: &str) {
        d.note(&Op::NetnsAdd { name: "h1".into() });
        d.note(&Op::VethAdd {
            ns: None,
            name: "v1-br".into(),
            peer: "v1".into(),
            peer_ns: ns("h1"),
        });
        d.note(&Op::AddrAdd { ns: ns("h1"), dev: "v1".into(), cidr: cidr.parse().unwrap() });
    }

    fn up(dev: &str) -> Op {
        Op::LinkUp { ns: ns("h1"), dev: dev.into() }
    }

    fn default_via(gw: &str) -> Op {
        Op::RouteAdd {
            ns: ns("h1"),
            dest: None,
            via: Some(gw.parse().unwrap()),
            dev: None,
            opts: Default::default(),
        }
    }

    #[test]
    fn a_default_route_waits_only_for_an_up_that_makes_its_gateway_reachable() {
        let mut d = Deferred::default();
        host(&mut d, "10.0.0.2/16");
        assert!(!d.holds(&default_via("10.0.0.1")), "v1 is not coming up: the kernel would refuse");
        assert!(d.hold_here(&up("v1")));
        assert!(d.hold_here(&up("lo")));
        for gw in ["10.1.0.1", "10.0.0.2", "10.0.0.0", "10.0.255.255", "127.0.0.1"] {
            assert!(!d.holds(&default_via(gw)), "{gw}: the kernel refuses it, so it goes now");
        }
        assert!(d.hold_here(&default_via("10.0.0.1")));
        assert!(!d.holds(&default_via("10.0.0.3")), "a second route in h1 goes now (EEXIST?)");
    }

    #[test]
    fn only_links_this_run_made_wait() {
        let mut d = Deferred::default();
        host(&mut d, "10.0.0.2/24");
        assert!(!d.holds(&up("eth9")));
        assert!(!d.holds(&Op::LinkUp { ns: ns("elsewhere"), dev: "lo".into() }));
        assert!(d.holds(&Op::LinkUp { ns: None, dev: "v1-br".into() }));
        d.note(&Op::LinkSetNetns { ns: ns("h1"), dev: "v1".into(), to: "h2".into() });
        assert!(!d.holds(&up("v1")));
        assert!(d.holds(&Op::LinkUp { ns: ns("h2"), dev: "v1".into() }));
    }

    #[test]
    fn what_names_a_netns_with_held_ops_waits_for_them() {
        let mut d = Deferred::default();
        host(&mut d, "10.0.0.2/24");
        assert!(d.hold_here(&up("lo")));
        let addr =
            Op::AddrAdd { ns: ns("h1"), dev: "v1".into(), cidr: "10.0.1.2/24".parse().unwrap() };
        assert!(!d.must_send_before(&addr), "an address commutes with an up");
        assert!(d.must_send_before(&Op::LinkDown { ns: ns("h1"), dev: "v1".into() }));
        assert!(d.must_send_before(&Op::NetnsDel { name: "h1".into() }));
        assert!(d.must_send_before(&Op::LinkSetNetns {
            ns: None,
            dev: "x".into(),
            to: "h1".into()
        }));
        assert!(!d.must_send_before(&Op::NetnsAdd { name: "h2".into() }));
        d.pending.insert(ns("h1"), (1, 1));
        assert!(d.must_send_before(&addr), "a new prefix could change the held route's link");
    }

    #[test]
    fn a_rule_or_a_master_ends_a_netns_being_fresh() {
        let mut d = Deferred::default();
        host(&mut d, "10.0.0.2/24");
        assert!(d.hold_here(&up("v1")));
        assert!(d.holds(&default_via("10.0.0.1")));
        d.note(&Op::RuleAdd { ns: ns("h1"), rule: Default::default() });
        assert!(!d.holds(&default_via("10.0.0.1")), "a rule can send the lookup elsewhere");
        let mut d = Deferred::default();
        host(&mut d, "10.0.0.2/24");
        assert!(d.hold_here(&up("v1")));
        d.note(&Op::LinkSetMaster { ns: ns("h1"), dev: "v1".into(), master: Some("vrf1".into()) });
        assert!(!d.holds(&default_via("10.0.0.1")), "a VRF moves v1's prefix out of main");
    }
}
