//! What a lab owns, replayed from its journal: the namespaces it created, where each link it
//! created ended up, and the changes it made to things that outlive it.

use std::collections::BTreeSet;

use crate::net::info::LinkInfo;
use crate::net::{Ns, Op};

/// What a lab owns, replayed from its journal: the namespaces it created, where each link it
/// created ended up, and the changes it made to things that outlive it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Owned {
    pub(crate) netns: BTreeSet<String>,
    /// (netns, link name) of every link the lab created and still has; a veth contributes
    /// both ends. `pair` ties veth ends together.
    pub(crate) links: Vec<OwnedLink>,
    /// Addresses, routes, iptables rules and sysctls the lab added, oldest first, minus the
    /// ones it removed again itself. Those on the lab's own links or inside its own
    /// namespaces vanish with them; the others are undone one by one.
    pub(crate) changes: Vec<Op>,
    /// The next `pair` id: never reused, or a new link would join an old pair's survivor.
    next_pair: usize,
    /// How many entries of `links` have each (netns, name): `has_link` is asked for nearly
    /// every Op, and a scan of `links` made lab(1000)'s checks grow as N².
    index: std::collections::HashMap<(Ns, String), usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedLink {
    pub(crate) ns: Ns,
    pub(crate) name: String,
    pub(crate) pair: usize,
}

/// How many objects of each kind a lab has (`nslab ls`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Counts {
    pub(crate) netns: usize,
    pub(crate) links: usize,
    pub(crate) addrs: usize,
    pub(crate) routes: usize,
    pub(crate) rules: usize,
    pub(crate) sysctls: usize,
}

impl Owned {
    pub(crate) fn from_ops<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Owned {
        let mut o = Owned::default();
        for op in ops {
            o.note(op);
        }
        o
    }

    /// Updates the ownership picture after `op` was applied.
    pub(crate) fn note(&mut self, op: &Op) {
        let pair = self.next_pair;
        if matches!(op, Op::BridgeAdd { .. } | Op::VethAdd { .. } | Op::LinkAdd { .. }) {
            self.next_pair += 1;
        }
        match op {
            Op::NetnsAdd { name } => {
                self.netns.insert(name.clone());
            }
            // A netns replaced by someone else is as good as deleted, to the lab.
            Op::NetnsDel { name } | Op::NetnsForget { name } => {
                self.netns.remove(name);
                // The kernel reaps the peer of every veth end inside too: its name is free
                // again, and whatever takes it next is not ours.
                let gone: BTreeSet<usize> = self
                    .links
                    .iter()
                    .filter(|l| l.ns.as_deref() == Some(name))
                    .map(|l| l.pair)
                    .collect();
                let lost: Vec<OwnedLink> =
                    self.links.iter().filter(|l| gone.contains(&l.pair)).cloned().collect();
                self.links.retain(|l| !gone.contains(&l.pair));
                self.reindex();
                self.changes.retain(|c| c.ns() != Some(name));
                self.changes.retain(|c| {
                    !matches!(c, Op::AddrAdd { ns: n, dev: d, .. } | Op::TcSet { ns: n, dev: d, .. } if lost.iter().any(|g| &g.ns == n && &g.name == d))
                });
            }
            Op::BridgeAdd { ns, name } | Op::LinkAdd { ns, name, .. } => {
                self.push_link(OwnedLink { ns: ns.clone(), name: name.clone(), pair })
            }
            Op::VethAdd { ns, name, peer, peer_ns } => {
                self.push_link(OwnedLink { ns: ns.clone(), name: name.clone(), pair });
                self.push_link(OwnedLink {
                    ns: peer_ns.clone().or(ns.clone()),
                    name: peer.clone(),
                    pair,
                });
            }
            Op::LinkSetNetns { ns, dev, to } => {
                if self.has_link(ns.as_deref(), dev)
                    && let Some(l) = self.links.iter_mut().find(|l| &l.ns == ns && &l.name == dev)
                {
                    l.ns = Some(to.clone());
                    let key = (ns.clone(), dev.clone());
                    if let Some(n) = self.index.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            self.index.remove(&key);
                        }
                    }
                    *self.index.entry((Some(to.clone()), dev.clone())).or_default() += 1;
                }
                // Moving a link flushes its addresses, and its qdiscs (dev_shutdown).
                self.changes.retain(|c| !matches!(c, Op::AddrAdd { ns: n, dev: d, .. } | Op::TcSet { ns: n, dev: d, .. } if n == ns && d == dev));
            }
            Op::LinkDel { ns, dev } => {
                let gone: Vec<OwnedLink> =
                    match self.links.iter().find(|l| &l.ns == ns && &l.name == dev) {
                        Some(l) => {
                            let pair = l.pair;
                            self.links.iter().filter(|l| l.pair == pair).cloned().collect()
                        }
                        None => {
                            vec![OwnedLink { ns: ns.clone(), name: dev.clone(), pair: usize::MAX }]
                        }
                    };
                self.links.retain(|l| !gone.contains(l));
                self.reindex();
                self.changes.retain(|c| {
                    !matches!(c, Op::AddrAdd { ns: n, dev: d, .. } | Op::TcSet { ns: n, dev: d, .. } if gone.iter().any(|g| &g.ns == n && &g.name == d))
                });
            }
            Op::AddrAdd { .. }
            | Op::RouteAdd { .. }
            | Op::RuleAdd { .. }
            | Op::IptAppend { .. }
            | Op::SysctlSet { .. }
            | Op::TcSet { .. } => {
                self.changes.push(op.clone());
            }
            // Put back by the lab itself: the write it takes back is done with; a write still
            // in force is a change teardown undoes (the lab was killed in between).
            Op::SysctlTemp { .. } => {
                if self.changes.iter().any(|c| op.cancels(c)) {
                    self.forget(|c| op.cancels(c));
                } else {
                    self.changes.push(op.clone());
                }
            }
            Op::AddrDel { .. }
            | Op::RouteDel { .. }
            | Op::RuleDel { .. }
            | Op::IptDelete { .. } => self.forget(|c| op.cancels(c)),
            // Teardown's delete of the lab's links in one netns.
            Op::LinkGroupDel { ns, .. } => {
                let gone: Vec<OwnedLink> =
                    self.links.iter().filter(|l| &l.ns == ns).cloned().collect();
                self.links.retain(|l| &l.ns != ns);
                self.reindex();
                self.changes.retain(|c| {
                    !matches!(c, Op::AddrAdd { ns: n, dev: d, .. } if gone.iter().any(|g| &g.ns == n && &g.name == d))
                });
            }
            // Not undone by teardown: on the lab's own links only (owner.rs), which take
            // them along, or changing nothing on a foreign one.
            Op::LinkSet { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::BridgeVlanDel { .. }
            | Op::WireguardSet { .. } => {}
        }
    }

    /// A delete the recipe wrote loosely (a route without its metric, a rule without its
    /// priority) made exact from the lab's own change it names, so that only that object
    /// goes and not an equal one someone else made. Left as it is when it names none.
    pub fn complete_del(&self, op: &mut Op) {
        if !matches!(op, Op::RouteDel { .. } | Op::RuleDel { .. }) {
            return;
        }
        let found = self.changes.iter().rev().find(|c| op.cancels(c)).and_then(Op::inverse);
        if let Some(exact) = found {
            *op = exact;
        }
    }

    /// True when a route the lab adds in `ns` (through `dev`) outlives the lab: neither the
    /// netns nor the link is the lab's. Teardown deletes such a route explicitly.
    pub(crate) fn route_outlives(&self, ns: Option<&str>, dev: Option<&str>) -> bool {
        !self.in_owned_ns(ns) && !dev.is_some_and(|d| self.has_link(ns, d))
    }

    /// Marks a route or `ip rule` that will outlive the lab as nslab's where the kernel keeps
    /// the mark (`PROTO_NSLAB`): teardown deletes only one the kernel shows with it. Both
    /// executors call this, so the plan prints what the run makes.
    pub(crate) fn mark(&self, op: &mut Op) {
        use crate::net::routing::PROTO_NSLAB;
        if let Op::RouteAdd { ns, dev, opts, .. } = op
            && self.route_outlives(ns.as_deref(), dev.as_deref())
        {
            opts.protocol = Some(PROTO_NSLAB);
        }
        // A rule names links by name: it outlives them, only the netns takes it along.
        if let Op::RuleAdd { ns, rule } = op
            && !self.in_owned_ns(ns.as_deref())
        {
            rule.protocol = Some(PROTO_NSLAB);
        }
    }

    /// Drops the newest change matching `f` (the lab undid it itself).
    fn forget(&mut self, f: impl Fn(&Op) -> bool) {
        if let Some(i) = self.changes.iter().rposition(f) {
            self.changes.remove(i);
        }
    }

    /// True when the lab made a change `f` matches and still has it.
    pub(crate) fn has_change(&self, f: impl Fn(&Op) -> bool) -> bool {
        self.changes.iter().any(f)
    }

    pub(crate) fn has_link(&self, ns: Option<&str>, name: &str) -> bool {
        self.index.contains_key(&(ns.map(str::to_string), name.to_string()))
    }

    fn push_link(&mut self, l: OwnedLink) {
        *self.index.entry((l.ns.clone(), l.name.clone())).or_default() += 1;
        self.links.push(l);
    }

    /// Rebuilds `index` after `links` lost or moved entries (deletes, moves: rare).
    fn reindex(&mut self) {
        self.index.clear();
        for l in &self.links {
            *self.index.entry((l.ns.clone(), l.name.clone())).or_default() += 1;
        }
    }

    /// True when an object in `ns` dies with the lab anyway (the netns is the lab's).
    pub(crate) fn in_owned_ns(&self, ns: Option<&str>) -> bool {
        ns.is_some_and(|n| self.netns.contains(n))
    }

    /// The link goes away with the lab: created by it, or inside one of its namespaces.
    pub(crate) fn link_goes(&self, ns: Option<&str>, name: &str) -> bool {
        self.in_owned_ns(ns) || self.has_link(ns, name)
    }

    /// Is `l` (a link seen in `ns`) one this lab made? Its name is in the journal *and* it
    /// carries the lab's link group: a foreign link that took a journaled name (after a
    /// crash, say) is in group 0 or another lab's group. The alias is checked only when set,
    /// because it is set by a second request after creation (kernel.rs) and a `kill -9`
    /// can fall between the two.
    pub(crate) fn is_mine(&self, ns: Option<&str>, l: &LinkInfo, lab: &str) -> bool {
        l.group == super::journal::group_of(lab)
            && self.has_link(ns, &l.name)
            && l.alias.as_deref().is_none_or(|a| a == owner_tag(lab))
    }

    pub(crate) fn counts(&self) -> Counts {
        let mut c =
            Counts { netns: self.netns.len(), links: self.links.len(), ..Counts::default() };
        // A key set three times is one sysctl the lab changed.
        let mut keys = BTreeSet::new();
        for op in &self.changes {
            match op {
                Op::AddrAdd { .. } => c.addrs += 1,
                Op::RouteAdd { .. } => c.routes += 1,
                Op::RuleAdd { .. } => c.rules += 1,
                Op::IptAppend { .. } => c.rules += 1,
                Op::SysctlSet { ns, key, .. } | Op::SysctlTemp { ns, key, .. } => {
                    keys.insert((ns, key));
                }
                // Not counted.
                Op::TcSet { .. } => {}
                // Never in `changes`.
                Op::LinkAdd { .. }
                | Op::BridgeSet { .. }
                | Op::BridgeVlanAdd { .. }
                | Op::BridgeVlanDel { .. }
                | Op::WireguardSet { .. }
                | Op::NetnsAdd { .. }
                | Op::NetnsDel { .. }
                | Op::NetnsForget { .. }
                | Op::BridgeAdd { .. }
                | Op::VethAdd { .. }
                | Op::LinkUp { .. }
                | Op::LinkDown { .. }
                | Op::LinkSetMaster { .. }
                | Op::LinkSetNetns { .. }
                | Op::LinkDel { .. }
                | Op::LinkSet { .. }
                | Op::LinkGroupDel { .. }
                | Op::AddrDel { .. }
                | Op::RouteDel { .. }
                | Op::RuleDel { .. }
                | Op::IptDelete { .. } => {}
            }
        }
        c.sysctls = keys.len();
        c
    }
}

/// The alias of a lab's links and the comment of its iptables rules.
pub(crate) fn owner_tag(lab: &str) -> String {
    format!("nslab:{lab}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: &str) -> Ns {
        Some(n.to_string())
    }

    #[test]
    fn replays_moves_and_deletes() {
        let ops = vec![
            Op::NetnsAdd { name: "red".into() },
            Op::BridgeAdd { ns: None, name: "br".into() },
            Op::VethAdd { ns: None, name: "v".into(), peer: "v-br".into(), peer_ns: None },
            Op::LinkSetNetns { ns: None, dev: "v".into(), to: "red".into() },
            Op::AddrAdd { ns: None, dev: "eth9".into(), cidr: "10.0.0.1/24".parse().unwrap() },
            Op::AddrAdd { ns: None, dev: "eth9".into(), cidr: "10.0.0.2/24".parse().unwrap() },
            Op::AddrDel { ns: None, dev: "eth9".into(), cidr: "10.0.0.2/24".parse().unwrap() },
            Op::VethAdd { ns: None, name: "x".into(), peer: "y".into(), peer_ns: ns("red") },
            Op::LinkDel { ns: ns("red"), dev: "y".into() },
        ];
        let o = Owned::from_ops(&ops);
        assert!(o.has_link(Some("red"), "v"));
        assert!(!o.has_link(None, "v"));
        assert!(o.has_link(None, "v-br"));
        assert!(!o.has_link(None, "x"), "deleting one veth end deletes both");
        assert_eq!(o.changes.len(), 1);
        assert_eq!(o.counts(), Counts { netns: 1, links: 3, addrs: 1, ..Counts::default() });
    }

    #[test]
    fn only_routes_that_outlive_the_lab_are_marked() {
        let o = Owned::from_ops(&[
            Op::NetnsAdd { name: "red".into() },
            Op::BridgeAdd { ns: None, name: "br".into() },
        ]);
        let route = |ns: Ns, dev: Option<&str>| Op::RouteAdd {
            ns,
            dest: Some("10.9.0.0/24".parse().unwrap()),
            via: Some("10.0.0.1".parse().unwrap()),
            dev: dev.map(str::to_string),
            opts: Default::default(),
        };
        let proto = |mut op: Op| {
            o.mark(&mut op);
            let Op::RouteAdd { opts, .. } = op else { unreachable!() };
            opts.protocol
        };
        let mark = Some(crate::net::routing::PROTO_NSLAB);
        assert_eq!(proto(route(None, None)), mark, "via a gateway on the host");
        assert_eq!(proto(route(None, Some("uplink"))), mark, "on a foreign link");
        assert_eq!(proto(route(ns("other"), None)), mark, "in a foreign netns");
        assert_eq!(proto(route(None, Some("br"))), None, "on the lab's bridge: goes with it");
        assert_eq!(proto(route(ns("red"), None)), None, "in the lab's netns");
        // A delete the recipe wrote without the mark still cancels the marked route.
        let mut marked = route(None, None);
        o.mark(&mut marked);
        let del = Op::RouteDel {
            ns: None,
            dest: Some("10.9.0.0/24".parse().unwrap()),
            via: None,
            dev: None,
            opts: Default::default(),
        };
        assert!(del.cancels(&marked));
        assert!(marked.inverse().unwrap().cancels(&marked));
    }

    #[test]
    fn a_sysctl_set_twice_counts_once() {
        let set = |v: &str| Op::SysctlSet {
            ns: None,
            key: "net.ipv4.ip_forward".into(),
            value: v.into(),
            old: Some("0".into()),
        };
        assert_eq!(Owned::from_ops(&[set("1"), set("0"), set("1")]).counts().sysctls, 1);
    }

    #[test]
    fn pair_ids_are_never_reused() {
        // Deleting `a` used to lower links.len(), so `e` got the pair id of `c`/`d` and
        // deleting `e` forgot `c` and `d`, which destroy then left behind.
        let v = |a: &str, b: &str| Op::VethAdd {
            ns: None,
            name: a.into(),
            peer: b.into(),
            peer_ns: None,
        };
        let del = |a: &str| Op::LinkDel { ns: None, dev: a.into() };
        let o = Owned::from_ops(&[v("a", "b"), v("c", "d"), del("a"), v("e", "f"), del("e")]);
        assert!(o.has_link(None, "c") && o.has_link(None, "d"));
        assert_eq!(o.links.len(), 2);
    }

    #[test]
    fn deleting_a_netns_forgets_the_peers_the_kernel_reaps() {
        let o = Owned::from_ops(&[
            Op::NetnsAdd { name: "red".into() },
            Op::VethAdd { ns: None, name: "v1".into(), peer: "v2".into(), peer_ns: ns("red") },
            Op::AddrAdd { ns: None, dev: "v1".into(), cidr: "10.0.0.1/24".parse().unwrap() },
            Op::BridgeAdd { ns: None, name: "br".into() },
            Op::NetnsDel { name: "red".into() },
        ]);
        assert!(!o.has_link(None, "v1"), "v1 died with its peer; a new v1 is someone else's");
        assert!(o.has_link(None, "br"));
        assert!(o.changes.is_empty(), "v1's address went with it");
    }

    #[test]
    fn a_foreign_link_with_a_journaled_name_is_not_mine() {
        let o = Owned::from_ops(&[Op::BridgeAdd { ns: None, name: "br".into() }]);
        let mut l = LinkInfo {
            name: "br".into(),
            index: 3,
            kind: "bridge".into(),
            state: "up".into(),
            oper: "up".into(),
            mac: String::new(),
            mtu: 1500,
            master: None,
            alias: Some("nslab:t".into()),
            group: crate::lab::journal::group_of("t"),
            peer_index: None,
            peer_netnsid: None,
            detail: Default::default(),
        };
        assert!(o.is_mine(None, &l, "t"));
        l.alias = None; // killed between creation and tagging
        assert!(o.is_mine(None, &l, "t"));
        l.alias = Some("mine, by hand".into());
        assert!(!o.is_mine(None, &l, "t"));
        l.alias = None;
        l.group = 0;
        assert!(!o.is_mine(None, &l, "t"));
        l.group = crate::lab::journal::group_of("t");
        assert!(!o.is_mine(Some("red"), &l, "t"));
    }
}
