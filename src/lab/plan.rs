//! The plan executor (`nslab plan`): a [`Backend`] that never touches the kernel. Every Op is
//! rendered as the equivalent `ip` / `iptables` / `sysctl` command line and applied to a model
//! of what the plan has built so far; queries (`link::list`, `netns::exists`, ...) are answered
//! from that model, and probes are printed as the equivalent command (or a comment) and
//! answered with a plausible success.
//!
//! The model starts as a fresh host: nothing but `lo`, no named netns. It checks what the
//! kernel would refuse where that is cheap (a duplicate netns or link is EEXIST, a missing link
//! ENODEV, an unreachable gateway ENETUNREACH) with the same words `nslab run` uses, so a
//! recipe that would fail at run time fails at plan time, at the same line.
//!
//! Probes are traced through the model (routes, veth peers, bridges, `ip_forward`, the nat
//! table's MASQUERADE and DNAT rules) only to make their answers plausible — the address a
//! server sees, which netns answers a port forward, the ARP entries a ping leaves behind. A
//! probe always reports success: a plan predicts what the recipe builds, not whether the
//! network works.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::backend::Backend;
use super::journal;
use super::teardown::Owned;
use crate::net::error::{generic, place};
use crate::net::exec::ExecOutput;
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo, RouteInfo};
use crate::net::kernel::{
    bridges_do_not_nest, cannot_join_bridge, gateway_needs_link, gateway_unreachable,
    ipv6_disabled, is_link_local, link_taken, no_bridge, no_link, no_route, not_a_bridge,
    pinned_to_netns, route_dev_down, route_exists, sysctl_rejected, veth_same_names,
};
use crate::net::netns::missing;
use crate::net::op::{Ns, q, shell_words};
use crate::net::probe::{Echoes, PingResult, TcpResult, serve_line};
use crate::net::{NetError, NetResult, Op};

/// A link in the model. `uid` is stable for the plan's lifetime (ifindexes are per netns and
/// change when a link moves), so veth peers refer to each other by uid.
#[derive(Debug, Clone)]
struct Link {
    uid: usize,
    ns: Ns,
    name: String,
    index: u32,
    kind: &'static str,
    up: bool,
    mac: String,
    mtu: u32,
    master: Option<String>,
    peer: Option<usize>,
    /// Created by the plan: carries the lab's alias and group, as `nslab run` sets them.
    tagged: bool,
    /// `net.ipv6.conf.NAME.disable_ipv6` is on: no IPv6 address can be added.
    v6_off: bool,
}

/// A route added by the recipe; connected routes are derived from addresses and link state.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    dest: Option<IpNet>,
    v6: bool,
    via: Option<IpAddr>,
    /// The outgoing link: given (`dev:NAME`) or resolved from the gateway, as the kernel does.
    dev: String,
    /// No gateway: a route straight out of a link (scope link).
    direct: bool,
}

/// One network namespace (or the host).
#[derive(Debug, Clone, Default)]
struct Space {
    next_index: u32,
    /// (dev, address) in the order they were added.
    addrs: Vec<(String, IpNet)>,
    routes: Vec<Route>,
    sysctls: BTreeMap<String, String>,
    /// (table, chain, rule words) in order.
    rules: Vec<(String, String, Vec<String>)>,
    neigh: Vec<NeighInfo>,
    /// (bridge, learnt entry).
    fdb: Vec<(String, FdbEntry)>,
    /// TCP ports a `probe::serve` listens on.
    served: BTreeSet<u16>,
}

/// What the plan has built so far.
#[derive(Debug, Clone)]
struct Model {
    spaces: BTreeMap<Ns, Space>,
    links: Vec<Link>,
    alias: String,
    group: u32,
    /// The plan stands for `nslab run --no-ipv6` (only the words of a refusal differ).
    no_ipv6: bool,
}

/// Where a traced packet ended up.
struct Trace {
    /// The netns that answered (after any DNAT).
    server: Ns,
    /// The source address the answering netns saw (after any MASQUERADE).
    seen: IpAddr,
    /// The client's own source address.
    local: IpAddr,
    /// Destination after any DNAT.
    dst: IpAddr,
    port: Option<u16>,
}

/// One L3 neighbour reachable from a link at layer 2, and the bridge ports on the way.
struct Hop {
    target: usize,
    bridge: Option<usize>,
    /// The bridge port the sender's frames enter by (None when the sender is the bridge).
    in_port: Option<usize>,
    /// The bridge port towards the target (None when the target is the bridge).
    out_port: Option<usize>,
}

fn key(ns: Option<&str>) -> Ns {
    ns.map(str::to_string)
}

fn v6(ip: &IpAddr) -> bool {
    ip.is_ipv6()
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

impl Model {
    fn new(lab: &str) -> Model {
        let mut m = Model {
            spaces: BTreeMap::new(),
            links: Vec::new(),
            alias: format!("nslab:{lab}"),
            group: journal::group_of(lab),
            no_ipv6: false,
        };
        m.add_space(None);
        // A host's loopback is up with its addresses; a new netns's is down and bare.
        m.set_up(None, "lo", true);
        m
    }

    fn add_space(&mut self, ns: Ns) {
        self.spaces.insert(ns.clone(), Space { next_index: 1, ..Space::default() });
        self.new_link(ns, "lo", "loopback", false);
    }

    fn space(&self, ns: Option<&str>) -> NetResult<&Space> {
        self.spaces.get(&key(ns)).ok_or_else(|| missing(ns.unwrap_or_default()))
    }

    fn space_mut(&mut self, ns: Option<&str>) -> NetResult<&mut Space> {
        self.spaces.get_mut(&key(ns)).ok_or_else(|| missing(ns.unwrap_or_default()))
    }

    fn find(&self, ns: Option<&str>, name: &str) -> Option<usize> {
        self.links.iter().position(|l| l.ns.as_deref() == ns && l.name == name)
    }

    /// The link `name` in `ns`, as the kernel would look it up: the netns first, then the name.
    fn lookup(&self, ns: Option<&str>, name: &str) -> NetResult<usize> {
        self.space(ns)?;
        self.find(ns, name).ok_or_else(|| no_link(name, ns))
    }

    fn by_uid(&self, uid: usize) -> Option<&Link> {
        self.links.iter().find(|l| l.uid == uid)
    }

    fn pos_of(&self, uid: usize) -> Option<usize> {
        self.links.iter().position(|l| l.uid == uid)
    }

    /// The words of `Kernel::taken`: the plan's own links are this lab's, the rest nobody's.
    fn taken(&self, ns: Option<&str>, dev: &str) -> NetError {
        let lab = self.alias.strip_prefix("nslab:");
        let mine = self.find(ns, dev).is_some_and(|i| self.links[i].tagged);
        link_taken(dev, ns, if mine { lab } else { None }, lab)
    }

    fn new_link(&mut self, ns: Ns, name: &str, kind: &'static str, tagged: bool) -> usize {
        let uid = self.links.iter().map(|l| l.uid + 1).max().unwrap_or(0);
        let space = self.spaces.get_mut(&ns).expect("the netns was checked");
        let v6_off = v6_default_off(space);
        let index = space.next_index;
        space.next_index += 1;
        let (mac, mtu) = match kind {
            "loopback" => ("00:00:00:00:00:00".to_string(), 65536),
            // Locally administered and recognisable: 02:6e:73 is "\x02ns".
            _ => (format!("02:6e:73:00:{:02x}:{:02x}", (uid >> 8) & 0xff, uid & 0xff), 1500),
        };
        self.links.push(Link {
            uid,
            ns,
            name: name.to_string(),
            index,
            kind,
            up: false,
            mac,
            mtu,
            master: None,
            peer: None,
            tagged,
            v6_off,
        });
        uid
    }

    fn set_up(&mut self, ns: Option<&str>, dev: &str, up: bool) {
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
    fn link_down(&mut self, ns: Option<&str>, dev: &str) {
        if let Some(space) = self.spaces.get_mut(&key(ns)) {
            space.routes.retain(|r| r.dev != dev);
            space.neigh.retain(|n| n.dev != dev);
            space.addrs.retain(|(d, a)| d != dev || a.addr().is_ipv4());
        }
    }

    /// `disable_ipv6` on a link changes: off drops its IPv6 addresses and routes; on again
    /// gives an up lo back its ::1.
    fn set_v6_off(&mut self, ns: Option<&str>, i: usize, off: bool) {
        let was = std::mem::replace(&mut self.links[i].v6_off, off);
        let (dev, up, lo) =
            (self.links[i].name.clone(), self.links[i].up, self.links[i].kind == "loopback");
        let Some(space) = self.spaces.get_mut(&key(ns)) else { return };
        if off {
            space.addrs.retain(|(d, a)| d != &dev || a.addr().is_ipv4());
            space.routes.retain(|r| r.dev != dev || !r.v6);
        } else if was && up && lo {
            self.set_up(ns, &dev, true);
        }
    }

    /// A write of `net.ipv6.conf.{all,default,DEV}.disable_ipv6`: `all` also sets `default`
    /// and every link of the netns (addrconf_disable_ipv6), DEV only that link.
    fn disable_ipv6_write(&mut self, ns: Option<&str>, sysctl: &str, value: &str) {
        let Some(conf) =
            sysctl.strip_prefix("net.ipv6.conf.").and_then(|k| k.strip_suffix(".disable_ipv6"))
        else {
            return;
        };
        let off = value.trim().parse::<i64>().is_ok_and(|v| v != 0);
        let targets: Vec<usize> = match conf {
            "default" => vec![],
            "all" => (0..self.links.len()).filter(|&i| self.links[i].ns.as_deref() == ns).collect(),
            dev => self.find(ns, &dev.replace('/', ".")).into_iter().collect(),
        };
        if conf == "all"
            && let Some(space) = self.spaces.get_mut(&key(ns))
        {
            space.sysctls.insert("net.ipv6.conf.default.disable_ipv6".into(), value.to_string());
        }
        for i in targets {
            self.set_v6_off(ns, i, off);
        }
    }

    /// Everything attached to a link that leaves its netns (deleted or moved).
    fn detach(&mut self, ns: Option<&str>, dev: &str) {
        if let Some(space) = self.spaces.get_mut(&key(ns)) {
            space.addrs.retain(|(d, _)| d != dev);
            space.routes.retain(|r| r.dev != dev);
            space.neigh.retain(|n| n.dev != dev);
            space.fdb.retain(|(b, e)| b != dev && e.port != dev);
        }
        for l in self.links.iter_mut() {
            if l.ns.as_deref() == ns && l.master.as_deref() == Some(dev) {
                l.master = None;
            }
        }
    }

    /// Deletes a link; a veth takes its peer along.
    fn remove_link(&mut self, uid: usize) {
        let Some(i) = self.pos_of(uid) else { return };
        let l = self.links.remove(i);
        self.detach(l.ns.as_deref(), &l.name);
        if let Some(p) = l.peer {
            self.remove_link(p);
        }
    }

    fn apply(&mut self, op: &Op) -> NetResult<()> {
        match op {
            Op::NetnsAdd { name } => {
                if self.spaces.contains_key(&Some(name.clone())) {
                    // The words of `netns::add`.
                    return Err(NetError::new(format!("netns {name} already exists"))
                        .with_errno(libc::EEXIST)
                        .with_help(format!(
                            "pick another name, or remove the old one (`nslab destroy LAB` if a lab made it, `ip netns del {name}` if not)"
                        )));
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
                self.new_link(key(ns), name, "bridge", true);
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
                    if self.links[mi].kind != "bridge" {
                        return Err(not_a_bridge(Some(m), dev));
                    }
                    if self.links[i].kind == "bridge" {
                        return Err(bridges_do_not_nest(dev, Some(m)));
                    }
                    if self.links[i].kind == "loopback" {
                        return Err(cannot_join_bridge(dev));
                    }
                    self.links[i].master = Some(m.clone());
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
                    return Err(NetError::new(format!(
                        "netns {to} already has a link named {dev}"
                    ))
                    .with_errno(libc::EEXIST)
                    .with_help("rename one of them"));
                }
                // Moving takes a link down and loses its addresses, routes and master.
                self.detach(nsr, dev);
                let space = self.spaces.get_mut(&Some(to.clone())).expect("checked above");
                let index = space.next_index;
                space.next_index += 1;
                let v6_off = v6_default_off(space);
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
                    return Err(generic(
                        libc::EOPNOTSUPP,
                        &format!("cannot delete link {dev} in {}", place(ns.as_deref())),
                    ));
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
                    return Err(NetError::new(format!(
                        "{dev} in {} already has address {cidr}",
                        place(nsr)
                    ))
                    .with_errno(libc::EEXIST)
                    .with_help("addr::list shows the addresses; delete it first or pick another"));
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
                    return Err(NetError::new(format!(
                        "{dev} in {} has no address {cidr}",
                        place(nsr)
                    ))
                    .with_errno(libc::EADDRNOTAVAIL));
                }
            }
            Op::RouteAdd { ns, dest, via, dev } => {
                self.route_add(ns.as_deref(), *dest, *via, dev.as_deref())?
            }
            Op::RouteDel { ns, dest, via, dev } => {
                self.route_del(ns.as_deref(), *dest, *via, dev.as_deref())?
            }
            Op::SysctlSet { ns, key, value, .. } => {
                let ns = ns.as_deref();
                // A key whose value is numbers takes only numbers (proc_dointvec); ranges
                // the kernel also checks are not known here.
                if integers(&self.sysctl_get(ns, key)?) && !integers(value) {
                    return Err(sysctl_rejected(key, value));
                }
                self.space_mut(ns)?.sysctls.insert(key.clone(), value.clone());
                self.disable_ipv6_write(ns, key, value);
            }
            Op::IptAppend { ns, table, chain, rule } => {
                let space = self.space_mut(ns.as_deref())?;
                if space.rules.iter().any(|(t, c, r)| t == table && c == chain && r == rule) {
                    return Err(crate::net::nat::rule_exists(ns.as_deref(), table, chain));
                }
                space.rules.push((table.clone(), chain.clone(), rule.clone()));
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
        }
        Ok(())
    }

    fn route_add(
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
            (None, None) => return Err(generic(libc::EINVAL, &format!("cannot add route {d}"))),
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

    fn route_del(
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
    fn onlink_dev(&self, ns: Option<&str>, gw: IpAddr) -> Option<String> {
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
    fn routes_of(&self, ns: Option<&str>) -> Vec<RouteInfo> {
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

    fn oper(&self, l: &Link) -> &'static str {
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

    fn info(&self, l: &Link) -> LinkInfo {
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
        }
    }

    fn links_of(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.space(ns)?;
        let mut v: Vec<&Link> = self.links.iter().filter(|l| l.ns.as_deref() == ns).collect();
        v.sort_by_key(|l| l.index);
        Ok(v.into_iter().map(|l| self.info(l)).collect())
    }

    fn addrs_of(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
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

    fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String> {
        let space = self.space(ns)?;
        // IPv6 on and off per link is the model's (`--no-ipv6`, writes to `all`).
        if let Some(conf) =
            key.strip_prefix("net.ipv6.conf.").and_then(|k| k.strip_suffix(".disable_ipv6"))
            && conf != "all"
            && conf != "default"
            // A dotted link name is written with `/` in a key (op::sysctl_path).
            && let Some(i) = self.find(ns, &conf.replace('/', "."))
        {
            return Ok(if self.links[i].v6_off { "1" } else { "0" }.into());
        }
        if let Some(v) = space.sysctls.get(key) {
            return Ok(v.clone());
        }
        if key.starts_with("net.ipv6.conf.") && key.ends_with(".disable_ipv6") {
            return Ok("0".into());
        }
        let no_such = || {
            // The words of `kernel::sysctl_get`.
            NetError::new(format!("no sysctl {key} in {}", place(ns)))
                .with_errno(libc::ENOENT)
                .with_help("check the key with `sysctl -a | grep KEY`; per-link keys need the link to exist")
        };
        // Per-link keys exist only for links of that netns (and `all` / `default`).
        let parts: Vec<&str> = key.split('.').collect();
        let mut probe_key = key.to_string();
        if parts.len() >= 5 && matches!(parts[2], "conf" | "neigh") {
            let dev = parts[3];
            if dev != "all" && dev != "default" {
                if self.find(ns, &dev.replace('/', ".")).is_none() {
                    return Err(no_such());
                }
                probe_key = key.replacen(&format!(".{dev}."), ".default.", 1);
            }
        }
        // A fresh netns forwards nothing, whatever the machine running the plan does.
        if matches!(
            key,
            "net.ipv4.ip_forward" | "net.ipv6.conf.all.forwarding" | "net.ipv4.conf.all.forwarding"
        ) {
            return Ok("0".into());
        }
        // Anything else: this machine's value (a read of our own netns, nothing changes) as
        // the plausible answer for a fresh host.
        match std::fs::read_to_string(format!("/proc/sys/{}", probe_key.replace('.', "/"))) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such()),
            Err(_) => Ok("0".into()),
        }
    }

    // -----------------------------------------------------------------------------------
    // Probe tracing
    // -----------------------------------------------------------------------------------

    fn is_local(&self, ns: Option<&str>, ip: IpAddr) -> bool {
        let Ok(space) = self.space(ns) else { return false };
        space
            .addrs
            .iter()
            .any(|(dev, a)| a.addr() == ip || (ip.is_loopback() && dev == "lo" && a.contains(&ip)))
    }

    /// Longest-prefix match over the main table: (outgoing link, gateway).
    fn route_lookup(&self, ns: Option<&str>, dst: IpAddr) -> Option<(String, Option<IpAddr>)> {
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
    fn source_for(&self, ns: Option<&str>, dev: &str, nh: IpAddr) -> Option<IpAddr> {
        let space = self.space(ns).ok()?;
        let fam = |a: &IpNet| a.addr().is_ipv6() == v6(&nh) && !a.addr().is_loopback();
        let on_dev = || space.addrs.iter().filter(|(d, a)| d == dev && fam(a));
        on_dev()
            .find(|(_, a)| a.contains(&nh))
            .or_else(|| on_dev().next())
            .or_else(|| space.addrs.iter().find(|(_, a)| fam(a)))
            .map(|(_, a)| a.addr())
    }

    fn ports_of(&self, bridge: &Link) -> Vec<&Link> {
        self.links
            .iter()
            .filter(|p| {
                p.ns == bridge.ns && p.master.as_deref() == Some(bridge.name.as_str()) && p.up
            })
            .collect()
    }

    /// The interfaces a frame sent on link `uid` reaches at layer 2.
    fn segment(&self, uid: usize) -> Vec<Hop> {
        let Some(l) = self.by_uid(uid) else { return vec![] };
        if !l.up {
            return vec![];
        }
        let up_peer =
            |p: &Link| p.peer.and_then(|q| self.by_uid(q)).filter(|q| q.up).map(|q| q.uid);
        let mut out = Vec::new();
        match l.kind {
            "bridge" => {
                for p in self.ports_of(l) {
                    if let Some(t) = up_peer(p) {
                        out.push(Hop {
                            target: t,
                            bridge: Some(l.uid),
                            in_port: None,
                            out_port: Some(p.uid),
                        });
                    }
                }
            }
            "veth" => {
                let Some(q) = l.peer.and_then(|q| self.by_uid(q)).filter(|q| q.up) else {
                    return out;
                };
                let bridge = q
                    .master
                    .as_deref()
                    .and_then(|m| self.find(q.ns.as_deref(), m))
                    .map(|i| &self.links[i]);
                match bridge {
                    Some(b) if b.up => {
                        out.push(Hop {
                            target: b.uid,
                            bridge: Some(b.uid),
                            in_port: Some(q.uid),
                            out_port: None,
                        });
                        for p in self.ports_of(b) {
                            if p.uid == q.uid {
                                continue;
                            }
                            if let Some(t) = up_peer(p) {
                                out.push(Hop {
                                    target: t,
                                    bridge: Some(b.uid),
                                    in_port: Some(q.uid),
                                    out_port: Some(p.uid),
                                });
                            }
                        }
                    }
                    Some(_) => {}
                    None => {
                        out.push(Hop { target: q.uid, bridge: None, in_port: None, out_port: None })
                    }
                }
            }
            _ => {}
        }
        out
    }

    fn has_addr(&self, uid: usize, ip: IpAddr) -> bool {
        let Some(l) = self.by_uid(uid) else { return false };
        self.space(l.ns.as_deref())
            .is_ok_and(|s| s.addrs.iter().any(|(d, a)| d == &l.name && a.addr() == ip))
    }

    fn learn_neigh(&mut self, ns: &Ns, ip: IpAddr, mac: &str, dev: &str, state: &str) {
        if let Some(space) = self.spaces.get_mut(ns) {
            space.neigh.retain(|n| !(n.ip == ip.to_string() && n.dev == dev));
            space.neigh.push(NeighInfo {
                ip: ip.to_string(),
                mac: Some(mac.to_string()),
                dev: dev.to_string(),
                state: state.into(),
            });
        }
    }

    fn learn_fdb(&mut self, bridge: usize, port: Option<usize>, mac: &str) {
        let (Some(b), Some(p)) = (self.by_uid(bridge), port.and_then(|p| self.by_uid(p))) else {
            return;
        };
        let (ns, bname, pname) = (b.ns.clone(), b.name.clone(), p.name.clone());
        if let Some(space) = self.spaces.get_mut(&ns) {
            space.fdb.retain(|(bn, e)| !(bn == &bname && e.mac == mac));
            space.fdb.push((
                bname,
                FdbEntry { mac: mac.to_string(), port: pname, local: false, ageing: 0.0 },
            ));
        }
    }

    /// First rule of `chain` in `ns`'s nat table that matches, by its words.
    fn nat_match(&self, ns: &Ns, chain: &str, pkt: &Packet) -> Option<Vec<String>> {
        let space = self.spaces.get(ns)?;
        space
            .rules
            .iter()
            .filter(|(t, c, _)| t == "nat" && c == chain)
            .find(|(_, _, r)| rule_matches(r, pkt, |ip| self.is_local(ns.as_deref(), ip)))
            .map(|(_, _, r)| r.clone())
    }

    /// Follows a packet from `from` to `dst` hop by hop; learns neighbours and bridge
    /// entries on the way. None when the model sees no path.
    fn trace(
        &mut self,
        from: Option<&str>,
        dst: IpAddr,
        port: Option<(&str, u16)>,
    ) -> Option<Trace> {
        let mut cur: Ns = key(from);
        let mut pkt = Packet {
            src: None,
            dst,
            proto: port.map(|p| p.0.to_string()),
            dport: port.map(|p| p.1),
            in_dev: None,
            out_dev: None,
        };
        let mut local = None;
        for hop in 0..16 {
            if hop > 0 {
                // PREROUTING on arrival: a port forward may rewrite the destination.
                if let Some(rule) = self.nat_match(&cur, "PREROUTING", &pkt)
                    && let Some((ip, p)) = dnat_target(&rule)
                {
                    pkt.dst = ip;
                    pkt.dport = p.or(pkt.dport);
                }
            }
            if self.is_local(cur.as_deref(), pkt.dst) {
                let seen = pkt.src.unwrap_or(pkt.dst);
                return Some(Trace {
                    server: cur,
                    seen,
                    local: local.unwrap_or(seen),
                    dst: pkt.dst,
                    port: pkt.dport,
                });
            }
            if hop > 0
                && self.spaces.get(&cur)?.sysctls.get("net.ipv4.ip_forward").map(String::as_str)
                    != Some("1")
            {
                return None;
            }
            let (dev, gw) = self.route_lookup(cur.as_deref(), pkt.dst)?;
            let nh = gw.unwrap_or(pkt.dst);
            let hop_src = self.source_for(cur.as_deref(), &dev, nh)?;
            if pkt.src.is_none() {
                pkt.src = Some(hop_src);
                local = Some(hop_src);
            }
            pkt.out_dev = Some(dev.clone());
            if let Some(rule) = self.nat_match(&cur, "POSTROUTING", &pkt)
                && rule.iter().any(|w| w == "MASQUERADE")
            {
                pkt.src = Some(hop_src);
            }
            let out = self.links[self.find(cur.as_deref(), &dev)?].clone();
            let h = self.segment(out.uid).into_iter().find(|h| self.has_addr(h.target, nh))?;
            let target = self.by_uid(h.target)?.clone();
            // ARP both ways, and the bridge learns both ends' addresses on their ports.
            self.learn_neigh(&cur, nh, &target.mac, &out.name, "reachable");
            self.learn_neigh(&target.ns, hop_src, &out.mac, &target.name, "stale");
            if let Some(b) = h.bridge {
                self.learn_fdb(b, h.in_port, &out.mac);
                self.learn_fdb(b, h.out_port, &target.mac);
            }
            cur = target.ns.clone();
            pkt.in_dev = Some(target.name.clone());
            pkt.out_dev = None;
        }
        None
    }
}

/// New links of a netns start with IPv6 off when its `default.disable_ipv6` says so.
fn v6_default_off(space: &Space) -> bool {
    space
        .sysctls
        .get("net.ipv6.conf.default.disable_ipv6")
        .is_some_and(|v| v.trim().parse::<i64>().is_ok_and(|v| v != 0))
}

/// Whitespace-separated decimal integers, as the kernel's proc_dointvec parses them (`-1`,
/// not `+1`).
fn integers(s: &str) -> bool {
    let mut words = s.split_whitespace().peekable();
    words.peek().is_some()
        && words.all(|w| {
            let d = w.strip_prefix('-').unwrap_or(w);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        })
}

/// What the nat rules of a hop look at.
struct Packet {
    src: Option<IpAddr>,
    dst: IpAddr,
    proto: Option<String>,
    dport: Option<u16>,
    in_dev: Option<String>,
    out_dev: Option<String>,
}

/// Whether iptables rule words (as `nat::` builds them) match `pkt`. Matches the model does
/// not know are taken as matching.
fn rule_matches(rule: &[String], pkt: &Packet, is_local: impl Fn(IpAddr) -> bool) -> bool {
    let net = |s: &str| s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(host_net));
    let mut neg = false;
    let mut i = 0;
    while i < rule.len() {
        let w = rule[i].as_str();
        let arg = rule.get(i + 1).map(String::as_str).unwrap_or("");
        let test = match w {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-s" => Some(pkt.src.is_some_and(|s| net(arg).is_some_and(|n| n.contains(&s)))),
            "-d" => Some(net(arg).is_some_and(|n| n.contains(&pkt.dst))),
            "-i" => Some(pkt.in_dev.as_deref() == Some(arg)),
            "-o" => Some(pkt.out_dev.as_deref() == Some(arg)),
            "-p" => Some(pkt.proto.as_deref() == Some(arg)),
            "--dport" => Some(pkt.dport.map(|p| p.to_string()).as_deref() == Some(arg)),
            "--dst-type" => Some(arg != "LOCAL" || is_local(pkt.dst)),
            _ => None,
        };
        match test {
            Some(t) => {
                if t == neg {
                    return false;
                }
                neg = false;
                i += 2;
            }
            None => i += 1,
        }
    }
    true
}

fn dnat_target(rule: &[String]) -> Option<(IpAddr, Option<u16>)> {
    if !rule.iter().any(|w| w == "DNAT") {
        return None;
    }
    let i = rule.iter().position(|w| w == "--to-destination")?;
    let t = rule.get(i + 1)?;
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    t.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// A rule as `iptables -t TABLE -S` prints it: the basic matches first (`-s -d -i -o -p`),
/// the protocol's own match module before `--dport`, the comment quoted.
pub fn save_line(chain: &str, rule: &[String]) -> String {
    let mut basic: Vec<(usize, Vec<String>)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let order = ["-s", "-d", "-i", "-o", "-p"];
    let mut proto = None;
    let mut i = 0;
    while i < rule.len() {
        let neg = rule[i] == "!" && rule.get(i + 1).is_some_and(|w| order.contains(&w.as_str()));
        let j = if neg { i + 1 } else { i };
        if let Some(rank) = order.iter().position(|o| *o == rule[j]) {
            let mut words = if neg { vec!["!".to_string()] } else { vec![] };
            words.push(rule[j].clone());
            if let Some(a) = rule.get(j + 1) {
                words.push(a.clone());
                if rule[j] == "-p" {
                    proto = Some(a.clone());
                }
            }
            basic.push((rank, words));
            i = j + 2;
            continue;
        }
        rest.push(rule[i].clone());
        i += 1;
    }
    basic.sort_by_key(|(r, _)| *r);
    let mut out = vec!["-A".to_string(), chain.to_string()];
    out.extend(basic.into_iter().flat_map(|(_, w)| w));
    let mut k = 0;
    let mut proto_match_done = false;
    while k < rest.len() {
        let w = &rest[k];
        if w == "-m" && proto.as_deref() == rest.get(k + 1).map(String::as_str) {
            proto_match_done = true;
        }
        if (w == "--dport" || w == "--sport") && !proto_match_done {
            if let Some(p) = &proto {
                out.extend(["-m".to_string(), p.clone()]);
            }
            proto_match_done = true;
        }
        if w == "--comment" {
            out.push(w.clone());
            if let Some(c) = rest.get(k + 1) {
                out.push(format!("\"{c}\""));
            }
            k += 2;
            continue;
        }
        out.push(w.clone());
        k += 1;
    }
    out.join(" ")
}

impl super::owner::World for Model {
    fn netns_exists(&self, name: &str) -> bool {
        self.spaces.contains_key(&Some(name.to_string()))
    }

    fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>> {
        self.space(ns)?;
        Ok(self.find(ns, dev).map(|i| self.info(&self.links[i])))
    }
}

/// The plan executor. Build one per plan, install it as the script backend, run the recipe,
/// then print [`Plan::lines`].
pub struct Plan {
    lab: String,
    model: RefCell<Model>,
    owned: RefCell<Owned>,
    lines: RefCell<Vec<String>>,
    next_port: Cell<u16>,
    /// `--no-ipv6`: the namespaces made with IPv6 off so far, or None when it is off.
    v6_off: RefCell<Option<HashSet<String>>>,
}

impl Plan {
    /// A plan for lab `lab` on a fresh host.
    pub fn new(lab: &str) -> Plan {
        Plan {
            lab: lab.to_string(),
            model: RefCell::new(Model::new(lab)),
            owned: RefCell::new(Owned::default()),
            lines: RefCell::new(Vec::new()),
            next_port: Cell::new(40000),
            v6_off: RefCell::new(None),
        }
    }

    /// A plan for lab `lab` on a host that looks like nslab's sandbox: the `uplink` with its
    /// address and default route, and the netns `internet` behind it. They are known to the
    /// plan (recipes may probe them) but not created by it, and not part of its output.
    pub fn new_sandboxed(lab: &str) -> Plan {
        let p = Plan::new(lab);
        {
            let mut m = p.model.borrow_mut();
            for op in &super::sandbox::uplink_ops() {
                m.apply(op).expect("the sandbox's own setup is consistent");
            }
            for l in m.links.iter_mut() {
                l.tagged = false;
            }
        }
        p
    }

    /// Prints the sysctl writes `nslab run --no-ipv6` makes along with each operation.
    pub fn set_no_ipv6(&self, on: bool) {
        *self.v6_off.borrow_mut() = on.then(HashSet::new);
        self.model.borrow_mut().no_ipv6 = on;
    }

    /// The script lines so far: commands and comments, in order.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// Adds a comment (each line prefixed with `# `), e.g. what the recipe prints.
    pub fn comment(&self, text: &str) {
        let mut lines = self.lines.borrow_mut();
        for l in text.lines() {
            let l = l.trim_end();
            lines.push(if l.is_empty() { "#".to_string() } else { format!("# {l}") });
        }
        if text.is_empty() {
            lines.push("#".to_string());
        }
    }

    fn out(&self, line: String) {
        self.lines.borrow_mut().push(line);
    }

    /// `owner::check` against the model: the ownership rules of `nslab run`.
    fn check_owner(&self, op: &Op) -> NetResult<()> {
        super::owner::check(&self.lab, &self.owned.borrow(), op, &*self.model.borrow())
    }

    fn prefix(ns: Option<&str>) -> String {
        match ns {
            Some(n) => format!("ip netns exec {} ", q(n)),
            None => String::new(),
        }
    }
}

impl Backend for Plan {
    fn lab(&self) -> &str {
        &self.lab
    }

    fn apply(&self, mut op: Op) -> NetResult<()> {
        self.check_owner(&op)?;
        if let Op::SysctlSet { ns, key, old, .. } = &mut op {
            *old = Some(self.model.borrow().sysctl_get(ns.as_deref(), key)?);
        }
        self.model.borrow_mut().apply(&op)?;
        self.owned.borrow_mut().note(&op);
        self.out(op.command());
        if let Some(off) = self.v6_off.borrow_mut().as_mut() {
            for w in op.no_ipv6_writes(|ns| ns.is_some_and(|n| off.contains(n))) {
                // The model turns IPv6 off where `nslab run --no-ipv6` does.
                self.model.borrow_mut().apply(&w)?;
                self.out(w.command());
            }
            match &op {
                Op::NetnsAdd { name } => _ = off.insert(name.clone()),
                Op::NetnsDel { name } => _ = off.remove(name),
                _ => {}
            }
        }
        Ok(())
    }

    fn netns_list(&self) -> NetResult<Vec<String>> {
        Ok(self.model.borrow().spaces.keys().flatten().cloned().collect())
    }

    fn netns_exists(&self, name: &str) -> NetResult<bool> {
        Ok(self.model.borrow().spaces.contains_key(&Some(name.to_string())))
    }

    fn links(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.model.borrow().links_of(ns)
    }

    fn addrs(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
        self.model.borrow().addrs_of(ns)
    }

    fn routes(&self, ns: Option<&str>) -> NetResult<Vec<RouteInfo>> {
        let m = self.model.borrow();
        m.space(ns)?;
        Ok(m.routes_of(ns))
    }

    fn neighbours(&self, ns: Option<&str>) -> NetResult<Vec<NeighInfo>> {
        Ok(self.model.borrow().space(ns)?.neigh.clone())
    }

    fn fdb(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<FdbEntry>> {
        let m = self.model.borrow();
        let b = &m.links[m.lookup(ns, bridge)?];
        if b.kind != "bridge" {
            return Err(NetError::new(format!("{bridge} is a {} link, not a bridge", b.kind)));
        }
        let mut out: Vec<FdbEntry> = m
            .space(ns)?
            .fdb
            .iter()
            .filter(|(bn, _)| bn == bridge)
            .map(|(_, e)| e.clone())
            .collect();
        // The bridge's own entries: each port's address (`brctl showmacs`: local).
        for p in m.links.iter().filter(|p| p.ns == b.ns && p.master.as_deref() == Some(bridge)) {
            out.push(FdbEntry {
                mac: p.mac.clone(),
                port: p.name.clone(),
                local: true,
                ageing: 0.0,
            });
        }
        Ok(out)
    }

    fn bridge_ports(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<LinkInfo>> {
        let m = self.model.borrow();
        let b = &m.links[m.lookup(ns, bridge)?];
        if b.kind != "bridge" {
            return Err(NetError::new(format!("{bridge} is a {} link, not a bridge", b.kind)));
        }
        Ok(m.links_of(ns)?.into_iter().filter(|l| l.master.as_deref() == Some(bridge)).collect())
    }

    fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String> {
        self.model.borrow().sysctl_get(ns, key)
    }

    fn nat_list(&self, ns: Option<&str>) -> NetResult<Vec<String>> {
        let m = self.model.borrow();
        let space = m.space(ns)?;
        // `iptables -S` lists chains in their built-in order, each chain's rules in order.
        let chains = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];
        let mut rules: Vec<&(String, String, Vec<String>)> =
            space.rules.iter().filter(|(t, ..)| t == "nat").collect();
        rules.sort_by_key(|(_, c, _)| chains.iter().position(|x| x == c).unwrap_or(chains.len()));
        Ok(rules.into_iter().map(|(_, c, r)| save_line(c, r)).collect())
    }

    fn exec(
        &self,
        ns: Option<&str>,
        argv: Vec<String>,
        timeout: Option<Duration>,
    ) -> NetResult<ExecOutput> {
        self.model.borrow().space(ns)?;
        // coreutils `timeout` kills the command as nslab does (and fails the script, as the
        // run fails).
        let limit = match timeout {
            Some(t) => format!("timeout -s KILL {} ", t.as_secs_f64()),
            None => String::new(),
        };
        self.out(format!("{}{limit}{}", Plan::prefix(ns), shell_words(&argv)));
        Ok(ExecOutput { status: 0, stdout: String::new(), stderr: String::new(), background: None })
    }

    fn ping(
        &self,
        ns: Option<&str>,
        addr: IpAddr,
        dev: Option<&str>,
        echoes: Echoes,
    ) -> NetResult<PingResult> {
        {
            let m = self.model.borrow();
            m.space(ns)?;
            // `ADDR%DEV` sends out of DEV: the kernel path looks it up first.
            if let Some(d) = dev {
                m.lookup(ns, d)?;
            }
        }
        let secs = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        let interval = if echoes.interval < Duration::from_secs(1) {
            format!(" -i{}", echoes.interval.as_secs_f64())
        } else {
            String::new()
        };
        // ping(8) counts late answers too, like nslab; `-c1 -w DEADLINE` is its "echo until
        // the first answer" idiom.
        let (args, sent) = if echoes.until_first {
            (format!("-c1 -w{}{interval}", secs(echoes.deadline())), 1)
        } else {
            (format!("-c{} -W{}{interval}", echoes.count, secs(echoes.wait)), echoes.count)
        };
        // iputils takes `ADDR%DEV` for an IPv6 link-local address only; `-I DEV` for the rest.
        let target = match dev {
            Some(d) if is_link_local(addr) => q(&format!("{addr}%{d}")),
            Some(d) => format!("-I {} {addr}", q(d)),
            None => addr.to_string(),
        };
        self.out(format!("{}ping {args} {target}", Plan::prefix(ns)));
        let _ = self.model.borrow_mut().trace(ns, addr, None);
        Ok(PingResult { ok: true, sent, received: sent, rtt_ms: 0.0 })
    }

    fn tcp(&self, ns: Option<&str>, target: SocketAddr, timeout: Duration) -> NetResult<TcpResult> {
        self.model.borrow().space(ns)?;
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        let (ip, port) = (target.ip(), target.port());
        self.out(format!(
            "# probe::tcp: connect to {target} and read the reply (needs a server there): {}timeout {secs} bash -c 'cat </dev/tcp/{ip}/{port}'",
            Plan::prefix(ns)
        ));
        let trace = self.model.borrow_mut().trace(ns, ip, Some(("tcp", port)));
        let client_port = 40000;
        let r = match trace {
            Some(t) => {
                let served = self
                    .model
                    .borrow()
                    .spaces
                    .get(&t.server)
                    .is_some_and(|s| s.served.contains(&t.port.unwrap_or(port)));
                let local = SocketAddr::new(t.local, client_port);
                let reply = if served {
                    serve_line(
                        t.server.as_deref(),
                        SocketAddr::new(t.seen, client_port),
                        SocketAddr::new(t.dst, t.port.unwrap_or(port)),
                    )
                } else {
                    String::new()
                };
                TcpResult {
                    ok: true,
                    reply,
                    seen: served.then(|| t.seen.to_string()),
                    local: Some(local.to_string()),
                    rtt_ms: 0.0,
                    error: None,
                }
            }
            None => TcpResult {
                ok: true,
                reply: String::new(),
                seen: None,
                local: None,
                rtt_ms: 0.0,
                error: None,
            },
        };
        Ok(r)
    }

    fn serve(&self, ns: Option<&str>, port: u16) -> NetResult<u16> {
        let mut m = self.model.borrow_mut();
        let space = m.space_mut(ns)?;
        let port = if port == 0 {
            let p = self.next_port.get();
            self.next_port.set(p + 1);
            p
        } else {
            port
        };
        if !space.served.insert(port) {
            let (place_, hint) = match ns {
                Some(n) => {
                    (format!("in netns {n}"), format!(" (`ip netns exec {n} ss -ltnp` shows it)"))
                }
                None => ("on the host".to_string(), " (`ss -ltnp` shows it)".to_string()),
            };
            return Err(NetError::new(format!("port {port} is already in use {place_}"))
                .with_errno(libc::EADDRINUSE)
                .with_help(format!(
                    "pick another port (0 picks a free one), or stop what listens there{hint}"
                )));
        }
        drop(m);
        self.out(format!(
            "# probe::serve: nslab's built-in server listens on tcp port {port} {} and tells each client the address it saw (no standard command does this)",
            match ns {
                Some(n) => format!("in netns {n}"),
                None => "here".to_string(),
            }
        ));
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(p: &Plan, ops: Vec<Op>) {
        for op in ops {
            p.apply(op).unwrap();
        }
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    fn walkthrough(p: &Plan) {
        let red = Some(s("red"));
        ops(
            p,
            vec![
                Op::BridgeAdd { ns: None, name: s("br") },
                Op::LinkUp { ns: None, dev: s("br") },
                Op::AddrAdd { ns: None, dev: s("br"), cidr: "10.0.0.1/24".parse().unwrap() },
                Op::NetnsAdd { name: s("red") },
                Op::VethAdd { ns: None, name: s("v-red"), peer: s("v-red-br"), peer_ns: None },
                Op::LinkSetNetns { ns: None, dev: s("v-red"), to: s("red") },
                Op::LinkSetMaster { ns: None, dev: s("v-red-br"), master: Some(s("br")) },
                Op::LinkUp { ns: None, dev: s("v-red-br") },
                Op::AddrAdd {
                    ns: red.clone(),
                    dev: s("v-red"),
                    cidr: "10.0.0.10/24".parse().unwrap(),
                },
                Op::LinkUp { ns: red.clone(), dev: s("v-red") },
                Op::RouteAdd {
                    ns: red.clone(),
                    dest: None,
                    via: Some("10.0.0.1".parse().unwrap()),
                    dev: None,
                },
            ],
        );
    }

    #[test]
    fn ops_render_and_build_the_model() {
        let p = Plan::new("t");
        walkthrough(&p);
        assert_eq!(
            p.lines()[0],
            "ip link add name br type bridge",
            "`br` alone reads as `broadcast`"
        );
        assert_eq!(p.lines()[5], "ip link set v-red netns red");
        let red = p.links(Some("red")).unwrap();
        assert_eq!(red.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["lo", "v-red"]);
        assert_eq!(red[1].alias.as_deref(), Some("nslab:t"));
        assert_eq!(red[1].oper, "up");
        let ports = p.bridge_ports(None, "br").unwrap();
        assert_eq!(ports.len(), 1);
        let routes = p.routes(Some("red")).unwrap();
        assert_eq!(routes[0].dest, "default");
        assert_eq!(routes[0].via.as_deref(), Some("10.0.0.1"));
        assert_eq!(routes[1].dest, "10.0.0.0/24");
        assert_eq!(routes[1].proto, "kernel");
        assert!(p.netns_exists("red").unwrap());
        assert_eq!(p.netns_list().unwrap(), ["red"]);
    }

    #[test]
    fn the_kernel_refusals_come_back_in_its_words() {
        let p = Plan::new("t");
        walkthrough(&p);
        let e = p.apply(Op::NetnsAdd { name: s("red") }).unwrap_err();
        assert_eq!((e.message.as_str(), e.errno), ("netns red already exists", Some(libc::EEXIST)));
        let e = p.apply(Op::LinkUp { ns: Some(s("red")), dev: s("nope") }).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.errno),
            ("no link nope in netns red", Some(libc::ENODEV))
        );
        let e = p.apply(Op::LinkUp { ns: Some(s("blue")), dev: s("lo") }).unwrap_err();
        assert_eq!(e.message, "netns blue does not exist");
        let e = p.apply(Op::BridgeAdd { ns: None, name: s("br") }).unwrap_err();
        assert_eq!(e.message, "link br already exists in the host");
        // A gateway outside every connected subnet, as the kernel's nexthop check sees it.
        let e = p
            .apply(Op::RouteAdd {
                ns: Some(s("red")),
                dest: Some("10.9.0.0/16".parse().unwrap()),
                via: Some("10.1.0.1".parse().unwrap()),
                dev: None,
            })
            .unwrap_err();
        assert_eq!(e.errno, Some(libc::ENETUNREACH));
        let e = p
            .apply(Op::RouteAdd {
                ns: Some(s("red")),
                dest: None,
                via: Some("10.0.0.1".parse().unwrap()),
                dev: None,
            })
            .unwrap_err();
        assert_eq!(e.message, "netns red already has a route default");
        let e = p.apply(Op::LinkDel { ns: None, dev: s("lo") }).unwrap_err();
        assert_eq!(e.errno, Some(libc::EPERM));
        // Nothing failed is rendered.
        assert_eq!(p.lines().len(), 11);
    }

    #[test]
    fn deleting_a_netns_takes_the_veth_peer_along() {
        let p = Plan::new("t");
        walkthrough(&p);
        p.apply(Op::NetnsDel { name: s("red") }).unwrap();
        assert!(p.links(None).unwrap().iter().all(|l| l.name != "v-red-br"));
        assert!(!p.netns_exists("red").unwrap());
    }

    #[test]
    fn probes_print_commands_and_learn_neighbours() {
        let p = Plan::new("t");
        walkthrough(&p);
        let r = p
            .ping(
                Some("red"),
                "10.0.0.1".parse().unwrap(),
                None,
                Echoes::new(3, Duration::from_secs(1), true),
            )
            .unwrap();
        assert!(r.ok);
        assert_eq!(p.lines().last().unwrap(), "ip netns exec red ping -c1 -w3 10.0.0.1");
        let n = p.neighbours(Some("red")).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].ip, "10.0.0.1");
        assert!(p.fdb(None, "br").unwrap().iter().any(|e| !e.local && e.port == "v-red-br"));
    }

    #[test]
    fn masquerade_and_port_forward_are_traced() {
        let p = Plan::new_sandboxed("t");
        walkthrough(&p);
        let rule = |w: &str| w.split(' ').map(String::from).collect::<Vec<_>>();
        ops(
            &p,
            vec![
                Op::SysctlSet { ns: None, key: s("net.ipv4.ip_forward"), value: s("1"), old: None },
                Op::IptAppend {
                    ns: None,
                    table: s("nat"),
                    chain: s("POSTROUTING"),
                    rule: rule("-s 10.0.0.0/24 ! -d 10.0.0.0/24 -j MASQUERADE"),
                },
                Op::IptAppend {
                    ns: None,
                    table: s("nat"),
                    chain: s("PREROUTING"),
                    rule: rule(
                        "-p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:t -j DNAT --to-destination 10.0.0.10:80",
                    ),
                },
            ],
        );
        p.serve(Some("internet"), 80).unwrap();
        let r =
            p.tcp(Some("red"), "203.0.113.1:80".parse().unwrap(), Duration::from_secs(1)).unwrap();
        assert_eq!(r.seen.as_deref(), Some("203.0.113.2"));
        p.serve(Some("red"), 80).unwrap();
        let r = p
            .tcp(Some("internet"), "203.0.113.2:8080".parse().unwrap(), Duration::from_secs(1))
            .unwrap();
        assert!(r.reply.starts_with("nslab-serve ns=red seen=203.0.113.1:"), "{}", r.reply);
        assert_eq!(
            p.nat_list(None).unwrap()[0],
            "-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment \"nslab:t\" -j DNAT --to-destination 10.0.0.10:80"
        );
        // The sandbox's own objects are known but not rendered.
        assert!(!p.lines().iter().any(|l| l.contains("uplink")));
        assert_eq!(p.serve(Some("red"), 80).unwrap_err().errno, Some(libc::EADDRINUSE));
    }

    #[test]
    fn save_lines_look_like_iptables_s() {
        let r: Vec<String> =
            "-s 10.0.0.0/24 ! -d 10.0.0.0/24 -o uplink -m comment --comment nslab:x -j MASQUERADE"
                .split(' ')
                .map(String::from)
                .collect();
        assert_eq!(
            save_line("POSTROUTING", &r),
            "-A POSTROUTING -s 10.0.0.0/24 ! -d 10.0.0.0/24 -o uplink -m comment --comment \"nslab:x\" -j MASQUERADE"
        );
        let r: Vec<String> = "-p udp -i uplink --dport 53 -j DNAT --to-destination 10.0.0.1:53"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(
            save_line("PREROUTING", &r),
            "-A PREROUTING -i uplink -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.0.1:53"
        );
    }
}
