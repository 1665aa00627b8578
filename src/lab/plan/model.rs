//! The plan's model of what it has built so far: namespaces, links, addresses, routes,
//! sysctls and rules, and how each Op changes it (with the kernel's refusals, in its words).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::lab::journal;
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo};
use crate::net::op::{LinkAttrs, Ns};
use crate::net::refusal::*;
use crate::net::routing::RouteOpts;
use crate::net::rule::RuleSpec;
use crate::net::{NetError, NetResult, Op};

/// A link in the model. `uid` is stable for the plan's lifetime (ifindexes are per netns and
/// change when a link moves), so veth peers refer to each other by uid.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub(super) uid: usize,
    pub(super) ns: Ns,
    pub(super) name: String,
    pub(super) index: u32,
    pub(super) kind: &'static str,
    pub(super) up: bool,
    pub(super) mac: String,
    pub(super) mtu: u32,
    pub(super) txqueuelen: u32,
    pub(super) master: Option<String>,
    pub(super) peer: Option<usize>,
    /// Created by the plan: carries the lab's alias and group, as `nslab run` sets them.
    pub(super) tagged: bool,
    /// `net.ipv6.conf.NAME.disable_ipv6` is on: no IPv6 address can be added.
    pub(super) v6_off: bool,
    /// Kind settings, bridge VLANs, WireGuard (plan/links.rs).
    pub(super) ext: super::links::LinkExt,
}

/// A route added by the recipe; connected routes are derived from addresses and link state.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Route {
    pub(super) dest: Option<IpNet>,
    pub(super) v6: bool,
    pub(super) via: Option<IpAddr>,
    /// The outgoing link: given (`dev:NAME`) or resolved from the gateway, as the kernel does.
    pub(super) dev: String,
    /// No gateway: a route straight out of a link (scope link).
    pub(super) direct: bool,
    /// Type, table, metric, source, onlink and the multipath gateways as the recipe gave them.
    pub(super) opts: RouteOpts,
    /// Multipath: each gateway with the link it leaves by (resolved like `dev`) and weight.
    pub(super) hops: Vec<(IpAddr, String, u16)>,
}

/// One network namespace (or the host).
#[derive(Debug, Clone, Default)]
pub(super) struct Space {
    pub(super) next_index: u32,
    /// (dev, address) in the order they were added.
    pub(super) addrs: Vec<(String, IpNet)>,
    pub(super) routes: Vec<Route>,
    pub(super) sysctls: BTreeMap<String, String>,
    /// (table, chain, rule words) in order.
    pub(super) rules: Vec<(String, String, Vec<String>)>,
    pub(super) neigh: Vec<NeighInfo>,
    /// (bridge, learnt entry).
    pub(super) fdb: Vec<(String, FdbEntry)>,
    /// TCP ports a `probe::serve` listens on.
    pub(super) served: BTreeSet<u16>,
    /// TCP ports of those servers that speak HTTP: they greet no one, they answer requests.
    pub(super) served_http: BTreeSet<u16>,
    /// UDP ports a `probe::serve(…, #{proto: "udp"})` listens on.
    pub(super) served_udp: BTreeSet<u16>,
    /// Policy routing rules the recipe added (each with its priority), in the kernel's order.
    pub(super) ip_rules: Vec<RuleSpec>,
    /// Root qdiscs set by `tc::`, by link name (the rest have the kernel's default).
    pub(super) qdiscs: BTreeMap<String, crate::net::tc::Qdisc>,
}

/// What the plan has built so far.
#[derive(Debug, Clone)]
pub(super) struct Model {
    pub(super) spaces: BTreeMap<Ns, Space>,
    /// In the order they were made, so by `uid` too. Only `new_link`, `remove_link` and a
    /// move change which link is where (`at` follows them).
    pub(super) links: Vec<Link>,
    /// (netns, name) -> position in `links`. A walk over every link per lookup made the
    /// plan of lab(1000) take 0.12 s and of lab(4000) 1.18 s, 62% of it in that walk.
    at: HashMap<(Ns, String), usize>,
    pub(super) alias: String,
    pub(super) group: u32,
    /// The plan stands for `nslab run --no-ipv6` (only the words of a refusal differ).
    pub(super) no_ipv6: bool,
    /// A `netns::exec` or `host::exec` ran a command that may write firewall rules
    /// (`iptables`, `nft`): the filter table is no longer known (plan/filter.rs).
    pub(super) ipt_unseen: bool,
    /// The trace under way met a frame the model does not follow (a VLAN on a VLAN:
    /// QinQ), so "no path" would be a guess (plan/trace.rs).
    pub(super) untraced: std::cell::Cell<bool>,
}
pub(super) fn key(ns: Option<&str>) -> Ns {
    ns.map(str::to_string)
}

pub(super) fn v6(ip: &IpAddr) -> bool {
    ip.is_ipv6()
}

impl Model {
    pub(super) fn new(lab: &str) -> Model {
        let mut m = Model {
            spaces: BTreeMap::new(),
            links: Vec::new(),
            at: HashMap::new(),
            alias: format!("nslab:{lab}"),
            group: journal::group_of(lab),
            no_ipv6: false,
            ipt_unseen: false,
            untraced: std::cell::Cell::new(false),
        };
        m.add_space(None);
        // A host's loopback is up with its addresses; a new netns's is down and bare.
        m.set_up(None, "lo", true);
        m
    }

    pub(super) fn add_space(&mut self, ns: Ns) {
        self.spaces.insert(ns.clone(), Space { next_index: 1, ..Space::default() });
        self.new_link(ns, "lo", "loopback", false);
    }

    pub(super) fn space(&self, ns: Option<&str>) -> NetResult<&Space> {
        self.spaces.get(&key(ns)).ok_or_else(|| no_netns(ns.unwrap_or_default()))
    }

    pub(super) fn space_mut(&mut self, ns: Option<&str>) -> NetResult<&mut Space> {
        self.spaces.get_mut(&key(ns)).ok_or_else(|| no_netns(ns.unwrap_or_default()))
    }

    pub(super) fn find(&self, ns: Option<&str>, name: &str) -> Option<usize> {
        self.at.get(&(key(ns), name.to_string())).copied()
    }

    /// The link `name` in `ns`, as the kernel would look it up: the netns first, then the name.
    pub(super) fn lookup(&self, ns: Option<&str>, name: &str) -> NetResult<usize> {
        self.space(ns)?;
        self.find(ns, name).ok_or_else(|| no_link(name, ns))
    }

    pub(super) fn by_uid(&self, uid: usize) -> Option<&Link> {
        self.pos_of(uid).map(|i| &self.links[i])
    }

    pub(super) fn pos_of(&self, uid: usize) -> Option<usize> {
        self.links.binary_search_by_key(&uid, |l| l.uid).ok()
    }

    /// The words of `Kernel::taken`: the plan's own links are this lab's, the rest nobody's.
    pub(super) fn taken(&self, ns: Option<&str>, dev: &str) -> NetError {
        let lab = self.alias.strip_prefix("nslab:");
        let mine = self.find(ns, dev).is_some_and(|i| self.links[i].tagged);
        link_taken(dev, ns, if mine { lab } else { None }, lab)
    }

    pub(super) fn new_link(
        &mut self,
        ns: Ns,
        name: &str,
        kind: &'static str,
        tagged: bool,
    ) -> usize {
        // The newest link has the highest uid (`links` is in the order they were made).
        let uid = self.links.last().map_or(0, |l| l.uid + 1);
        let space = self.spaces.get_mut(&ns).expect("the netns was checked");
        let v6_off = v6_default_off(space);
        let index = space.next_index;
        space.next_index += 1;
        let (mac, mtu) = match kind {
            "loopback" => ("00:00:00:00:00:00".to_string(), 65536),
            // Locally administered and recognisable: 02:6e:73 is "\x02ns".
            _ => (format!("02:6e:73:00:{:02x}:{:02x}", (uid >> 8) & 0xff, uid & 0xff), 1500),
        };
        self.at.insert((ns.clone(), name.to_string()), self.links.len());
        self.links.push(Link {
            uid,
            ns,
            name: name.to_string(),
            index,
            kind,
            up: false,
            mac,
            mtu,
            txqueuelen: 1000,
            master: None,
            peer: None,
            tagged,
            v6_off,
            ext: Default::default(),
        });
        uid
    }

    pub(super) fn set_up(&mut self, ns: Option<&str>, dev: &str, up: bool) {
        let Some(i) = self.find(ns, dev) else { return };
        self.links[i].up = up;
        if up && self.links[i].kind == "loopback" {
            // The kernel gives lo its addresses when it comes up (::1 unless IPv6 is off).
            let v6_off = self.links[i].v6_off;
            let space = self.spaces.get_mut(&key(ns)).expect("the netns exists");
            let mine: &[&str] = if v6_off { &["127.0.0.1/8"] } else { &["127.0.0.1/8", "::1/128"] };
            for a in mine {
                let a: IpNet = a.parse().expect("valid");
                if !space.addrs.iter().any(|(d, x)| d == dev && *x == a) {
                    space.addrs.push((dev.to_string(), a));
                }
            }
        }
        if !up {
            self.link_down(ns, dev);
        }
    }

    /// What the kernel drops when a link goes down: its routes, its neighbours and every
    /// IPv6 address on it, `nodad` (permanent) ones too (addrconf_ifdown with the default
    /// `keep_addr_on_down=0`; seen with `ip -j addr` on kernel 6.x). IPv4 addresses stay;
    /// coming up again brings back only lo's ::1 (and link-local addresses the model does
    /// not track).
    pub(super) fn link_down(&mut self, ns: Option<&str>, dev: &str) {
        if let Some(space) = self.spaces.get_mut(&key(ns)) {
            space.routes.retain(|r| r.dev != dev);
            space.neigh.retain(|n| n.dev != dev);
            space.addrs.retain(|(d, a)| d != dev || a.addr().is_ipv4());
        }
    }

    /// Everything attached to a link that leaves its netns (deleted or moved).
    pub(super) fn detach(&mut self, ns: Option<&str>, dev: &str) {
        if let Some(space) = self.spaces.get_mut(&key(ns)) {
            space.addrs.retain(|(d, _)| d != dev);
            space.routes.retain(|r| r.dev != dev);
            space.neigh.retain(|n| n.dev != dev);
            space.fdb.retain(|(b, e)| b != dev && e.port != dev);
            // A link leaving its netns loses its qdiscs (dev_shutdown).
            space.qdiscs.remove(dev);
        }
        for l in self.links.iter_mut() {
            if l.ns.as_deref() == ns && l.master.as_deref() == Some(dev) {
                l.master = None;
            }
        }
    }

    /// Deletes a link; a veth takes its peer along.
    pub(super) fn remove_link(&mut self, uid: usize) {
        let Some(i) = self.pos_of(uid) else { return };
        let children = self.children(uid);
        let l = self.links.remove(i);
        self.at = self
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| ((l.ns.clone(), l.name.clone()), i))
            .collect();
        self.detach(l.ns.as_deref(), &l.name);
        if let Some(p) = l.peer {
            self.remove_link(p);
        }
        for c in children {
            self.remove_link(c);
        }
    }

    pub(super) fn apply(&mut self, op: &Op) -> NetResult<()> {
        match op {
            Op::NetnsAdd { name } => {
                if self.spaces.contains_key(&Some(name.clone())) {
                    return Err(netns_exists(name));
                }
                self.add_space(Some(name.clone()));
            }
            Op::NetnsDel { name } => {
                self.space(Some(name))?;
                // Its links die with it; a veth end inside takes its peer outside along.
                let inside: Vec<usize> = self
                    .links
                    .iter()
                    .filter(|l| l.ns.as_deref() == Some(name.as_str()))
                    .map(|l| l.uid)
                    .collect();
                for uid in inside {
                    self.remove_link(uid);
                }
                self.spaces.remove(&Some(name.clone()));
            }
            Op::BridgeAdd { ns, name } => {
                let ns = ns.as_deref();
                self.space(ns)?;
                if self.find(ns, name).is_some() {
                    return Err(self.taken(ns, name));
                }
                // A new bridge starts down, as with `ip link add NAME type bridge`.
                let uid = self.new_link(key(ns), name, "bridge", true);
                let i = self.pos_of(uid).expect("just made");
                self.links[i].ext.vlans = super::links::default_vlans();
            }
            Op::VethAdd { ns, name, peer, peer_ns } => {
                // The order `Kernel::apply` meets them in: the peer's netns is opened first.
                if let Some(p) = peer_ns {
                    self.space(Some(p))?;
                }
                let nsr = ns.as_deref();
                self.space(nsr)?;
                let pns = peer_ns.as_deref().or(nsr);
                if nsr == pns && name == peer {
                    return Err(veth_same_names(name));
                }
                if self.find(nsr, name).is_some() {
                    return Err(self.taken(nsr, name));
                }
                if self.find(pns, peer).is_some() {
                    return Err(self.taken(pns, peer));
                }
                let a = self.new_link(key(nsr), name, "veth", true);
                let b = self.new_link(key(pns), peer, "veth", true);
                let (ia, ib) =
                    (self.pos_of(a).expect("just made"), self.pos_of(b).expect("just made"));
                self.links[ia].peer = Some(b);
                self.links[ib].peer = Some(a);
            }
            Op::LinkUp { ns, dev } | Op::LinkDown { ns, dev } => {
                let ns = ns.as_deref();
                self.lookup(ns, dev)?;
                self.set_up(ns, dev, matches!(op, Op::LinkUp { .. }));
            }
            Op::LinkSetMaster { ns, dev, master } => {
                let ns = ns.as_deref();
                if let Some(m) = master {
                    // `Kernel::apply` looks the master up first, and reports any failure so.
                    let Some(mi) = self.space(ns).ok().and_then(|_| self.find(ns, m)) else {
                        let bridges = self
                            .links
                            .iter()
                            .filter(|l| l.ns.as_deref() == ns && l.kind == "bridge")
                            .map(|l| l.name.as_str());
                        return Err(no_bridge(m, ns, bridges));
                    };
                    let i = self.lookup(ns, dev)?;
                    // The kernel's order: do_set_master, then br_add_if's checks.
                    if !matches!(self.links[mi].kind, "bridge" | "bond") {
                        return Err(not_a_bridge(Some(m), dev));
                    }
                    if self.links[i].kind == "bridge" {
                        return Err(bridges_do_not_nest(dev, Some(m)));
                    }
                    if self.links[i].kind == "loopback" {
                        return Err(cannot_join_bridge(dev));
                    }
                    self.links[i].master = Some(m.clone());
                    if self.links[mi].kind == "bridge" {
                        self.links[i].ext.vlans = super::links::default_vlans();
                    }
                } else {
                    let i = self.lookup(ns, dev)?;
                    self.links[i].master = None;
                }
            }
            Op::LinkSetNetns { ns, dev, to } => {
                self.space(Some(to))?;
                let nsr = ns.as_deref();
                let i = self.lookup(nsr, dev)?;
                // dev_change_net_namespace's order: pinned links, then "nothing to do" (the
                // same netns: fine, whatever else is there), then a name clash.
                if matches!(self.links[i].kind, "loopback" | "bridge") {
                    // NETIF_F_NETNS_LOCAL: the kernel refuses to move these.
                    return Err(pinned_to_netns(dev, to));
                }
                if nsr == Some(to.as_str()) {
                    return Ok(());
                }
                if self.find(Some(to), dev).is_some() {
                    return Err(netns_has_link(to, dev));
                }
                // Moving takes a link down and loses its addresses, routes and master.
                self.detach(nsr, dev);
                let space = self.spaces.get_mut(&Some(to.clone())).expect("checked above");
                let index = space.next_index;
                space.next_index += 1;
                let v6_off = v6_default_off(space);
                self.at.remove(&(ns.clone(), dev.clone()));
                self.at.insert((Some(to.clone()), dev.clone()), i);
                let l = &mut self.links[i];
                l.ns = Some(to.clone());
                l.index = index;
                l.up = false;
                l.master = None;
                // The link's IPv6 settings are made anew from the new netns's defaults.
                l.v6_off = v6_off;
            }
            Op::LinkDel { ns, dev } => {
                let i = self.lookup(ns.as_deref(), dev)?;
                if self.links[i].kind == "loopback" {
                    return Err(loopback_stays(dev, ns.as_deref()));
                }
                let uid = self.links[i].uid;
                self.remove_link(uid);
            }
            Op::AddrAdd { ns, dev, cidr } => {
                let nsr = ns.as_deref();
                let i = self.lookup(nsr, dev)?;
                if cidr.addr().is_ipv6() && self.links[i].v6_off {
                    return Err(ipv6_disabled(*cidr, dev, nsr, self.no_ipv6));
                }
                let space = self.space_mut(nsr)?;
                // IPv4: the same address with the same prefix; IPv6: the same address.
                let dup = space.addrs.iter().any(|(d, a)| {
                    d == dev
                        && a.addr() == cidr.addr()
                        && (cidr.addr().is_ipv6() || a.prefix_len() == cidr.prefix_len())
                });
                if dup {
                    return Err(addr_exists(dev, nsr, cidr));
                }
                space.addrs.push((dev.clone(), *cidr));
            }
            Op::AddrDel { ns, dev, cidr } => {
                let nsr = ns.as_deref();
                self.lookup(nsr, dev)?;
                let space = self.space_mut(nsr)?;
                let before = space.addrs.len();
                space.addrs.retain(|(d, a)| !(d == dev && a == cidr));
                if space.addrs.len() == before {
                    return Err(no_addr(dev, nsr, cidr));
                }
            }
            Op::RouteAdd { ns, dest, via, dev, opts } => {
                self.route_add(ns.as_deref(), *dest, *via, dev.as_deref(), opts)?
            }
            Op::RouteDel { ns, dest, via, dev, opts } => {
                self.route_del(ns.as_deref(), *dest, *via, dev.as_deref(), opts)?
            }
            Op::RuleAdd { ns, rule } => self.rule_add(ns.as_deref(), rule)?,
            Op::RuleDel { ns, rule } => self.rule_del(ns.as_deref(), rule)?,
            Op::SysctlSet { ns, key, value, .. } => {
                let ns = ns.as_deref();
                // A key whose value is numbers takes only numbers (proc_dointvec); ranges
                // the kernel also checks are not known here.
                if super::sysctl::integers(&self.sysctl_get(ns, key)?)
                    && !super::sysctl::integers(value)
                {
                    return Err(sysctl_rejected(key, value));
                }
                self.space_mut(ns)?.sysctls.insert(key.clone(), value.clone());
                self.disable_ipv6_write(ns, key, value);
            }
            Op::IptAppend { ns, table, chain, rule } => {
                let space = self.space_mut(ns.as_deref())?;
                if space.rules.iter().any(|(t, c, r)| t == table && c == chain && r == rule) {
                    return Err(rule_exists(ns.as_deref(), table, chain));
                }
                space.rules.push((table.clone(), chain.clone(), rule.clone()));
            }
            Op::LinkSet { ns, dev, set, .. } => {
                let i = self.lookup(ns.as_deref(), dev)?;
                if let Some(mtu) = set.mtu {
                    check_mtu(dev, mtu)?;
                }
                let l = &mut self.links[i];
                l.mtu = set.mtu.unwrap_or(l.mtu);
                l.mac = set.mac.clone().unwrap_or_else(|| l.mac.clone());
                l.txqueuelen = set.txqueuelen.unwrap_or(l.txqueuelen);
            }
            Op::SysctlTemp { ns, key, value, .. } => {
                self.space_mut(ns.as_deref())?.sysctls.insert(key.clone(), value.clone());
            }
            Op::LinkGroupDel { ns, group } => {
                let gone: Vec<usize> = self
                    .links
                    .iter()
                    .filter(|l| &l.ns == ns && l.tagged && self.group == *group)
                    .map(|l| l.uid)
                    .collect();
                for uid in gone {
                    self.remove_link(uid);
                }
            }
            // Journal bookkeeping of `nslab run`; a plan never replaces a netns.
            Op::NetnsForget { .. } => {}
            Op::TcSet { ns, dev, qdisc, .. } => {
                let i = self.lookup(ns.as_deref(), dev)?;
                let name = self.links[i].name.clone();
                let space = self.space_mut(ns.as_deref())?;
                match qdisc {
                    crate::net::tc::Qdisc::Default => _ = space.qdiscs.remove(&name),
                    q => _ = space.qdiscs.insert(name, q.clone()),
                }
            }
            Op::IptDelete { ns, table, chain, rule } => {
                // Like `nat::delete`: a rule that is already gone is fine.
                let space = self.space_mut(ns.as_deref())?;
                if let Some(i) =
                    space.rules.iter().position(|(t, c, r)| t == table && c == chain && r == rule)
                {
                    space.rules.remove(i);
                }
            }
            Op::LinkAdd { ns, name, kind } => self.link_add(ns.as_deref(), name, kind)?,
            Op::BridgeSet { ns, name, vlan_filtering, stp } => {
                self.bridge_set(ns.as_deref(), name, *vlan_filtering, *stp)?
            }
            Op::BridgeVlanAdd { ns, port, vid, pvid, untagged, on_bridge } => {
                self.bridge_vlan(ns.as_deref(), port, *vid, Some((*pvid, *untagged)), *on_bridge)?
            }
            Op::BridgeVlanDel { ns, port, vid, on_bridge } => {
                self.bridge_vlan(ns.as_deref(), port, *vid, None, *on_bridge)?
            }
            Op::WireguardSet { ns, dev, private_key, listen_port, peers } => self.wireguard_set(
                ns.as_deref(),
                dev,
                private_key.as_ref(),
                *listen_port,
                peers.as_deref(),
            )?,
        }
        Ok(())
    }

    pub(super) fn oper(&self, l: &Link) -> &'static str {
        match l.kind {
            _ if !l.up => "down",
            "loopback" => "unknown",
            "veth" => match l.peer.and_then(|p| self.by_uid(p)) {
                Some(p) if p.up => "up",
                _ => "down",
            },
            "bridge" => {
                let ports = self
                    .links
                    .iter()
                    .filter(|p| p.ns == l.ns && p.master.as_deref() == Some(l.name.as_str()));
                if ports.clone().any(|p| self.oper(p) == "up") { "up" } else { "unknown" }
            }
            _ => "unknown",
        }
    }

    pub(super) fn info(&self, l: &Link) -> LinkInfo {
        LinkInfo {
            name: l.name.clone(),
            index: l.index,
            kind: l.kind.to_string(),
            state: if l.up { "up".into() } else { "down".into() },
            oper: self.oper(l).into(),
            mac: l.mac.clone(),
            mtu: l.mtu,
            master: l.master.clone(),
            alias: l.tagged.then(|| self.alias.clone()),
            group: if l.tagged { self.group } else { 0 },
            peer_index: l.peer.and_then(|p| self.by_uid(p)).map(|p| p.index),
            // The model numbers no namespaces; any id says "the peer is in another one".
            peer_netnsid: l.peer.and_then(|p| self.by_uid(p)).filter(|p| p.ns != l.ns).map(|_| 0),
            detail: self.detail(l),
        }
    }

    pub(super) fn links_of(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.space(ns)?;
        let mut v: Vec<&Link> = self.links.iter().filter(|l| l.ns.as_deref() == ns).collect();
        v.sort_by_key(|l| l.index);
        Ok(v.into_iter().map(|l| self.info(l)).collect())
    }

    pub(super) fn addrs_of(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
        let space = self.space(ns)?;
        let index = |dev: &str| self.find(ns, dev).map(|i| self.links[i].index).unwrap_or(0);
        let mut v: Vec<(bool, u32, usize, AddrInfo)> = space
            .addrs
            .iter()
            .enumerate()
            .map(|(n, (dev, a))| {
                let scope = if a.addr().is_loopback() { "host" } else { "global" };
                let fam = if a.addr().is_ipv6() { "inet6" } else { "inet" };
                (
                    a.addr().is_ipv6(),
                    index(dev),
                    n,
                    AddrInfo {
                        dev: dev.clone(),
                        cidr: a.to_string(),
                        family: fam.into(),
                        scope: scope.into(),
                    },
                )
            })
            .collect();
        v.sort_by_key(|(is6, idx, n, _)| (*is6, *idx, *n));
        Ok(v.into_iter().map(|(.., a)| a).collect())
    }
}

/// New links of a netns start with IPv6 off when its `default.disable_ipv6` says so.
pub(super) fn v6_default_off(space: &Space) -> bool {
    space
        .sysctls
        .get("net.ipv6.conf.default.disable_ipv6")
        .is_some_and(|v| v.trim().parse::<i64>().is_ok_and(|v| v != 0))
}

impl crate::lab::owner::World for Model {
    fn netns_exists(&self, name: &str) -> bool {
        self.spaces.contains_key(&Some(name.to_string()))
    }

    fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>> {
        self.space(ns)?;
        Ok(self.find(ns, dev).map(|i| self.info(&self.links[i])))
    }
}

/// The MTU range of an Ethernet link (veth, bridge): ETH_MIN_MTU to ETH_MAX_MTU; the kernel
/// refuses the rest with EINVAL.
fn check_mtu(dev: &str, mtu: u32) -> NetResult<()> {
    if (68..=65535).contains(&mtu) { Ok(()) } else { Err(mtu_out_of_range(dev, mtu)) }
}

impl Model {
    /// The temporary `promote_secondaries` write `op` needs (see [`Op::promote_write`]).
    pub(super) fn promote_write(&self, op: &Op) -> NetResult<Option<Op>> {
        let Op::AddrDel { ns, dev, .. } = op else { return Ok(None) };
        let Ok(space) = self.space(ns.as_deref()) else { return Ok(None) };
        let on_link: Vec<IpNet> =
            space.addrs.iter().filter(|(d, _)| d == dev).map(|(_, a)| *a).collect();
        op.promote_write(&on_link, |key| self.sysctl_get(ns.as_deref(), key))
    }

    /// What `link::set` may change on `dev`, as it is now.
    pub(super) fn link_attrs(&self, ns: Option<&str>, dev: &str) -> NetResult<LinkAttrs> {
        let l = &self.links[self.lookup(ns, dev)?];
        Ok(LinkAttrs { mtu: Some(l.mtu), mac: Some(l.mac.clone()), txqueuelen: Some(l.txqueuelen) })
    }

    /// Netns `name` was made with IPv6 off (`--no-ipv6`): links made in it need no write of
    /// their own.
    pub(super) fn made_v6_off(&self, name: &str) -> bool {
        self.spaces.get(&Some(name.to_string())).is_some_and(v6_default_off)
    }
}
