//! The kernel executor: applies [`Op`]s over rtnetlink and answers queries.
//!
//! One synchronous netlink socket per netns ([`super::nl::NlSocket`]), opened by a thread
//! while inside that netns (a netlink socket stays bound to the netns it was created in) and
//! cached by name. A netns this executor creates gets its socket while it is being created,
//! so a new netns costs no thread of its own (see [`netns::add_with`]; in a run, the one
//! background thread of `netns_background`). Every request waits for
//! its answer before the next one goes out (nl.rs says why requests are not pipelined).
//! Names are resolved to ifindexes with one `SIOCGIFINDEX` ioctl on that socket, not an
//! RTM_GETLINK round trip.
//!
//! `NSLAB_TIMING=1` prints, at exit, how long each kind of Op took (count, total, mean,
//! slowest): where a slow build spends its time.

mod addr;
mod deferred;
mod dump;
mod link;
mod link_kinds;
mod namespace;
mod route;
mod rule;
mod sysctl;
mod tc;
mod veth;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(crate) use super::refusal::*;
pub(crate) use sysctl::{sysctl_get, sysctl_set};

use super::error::{NetError, NetResult, place};
use super::nl::NlSocket;
use super::op::{Ns, Op};
use super::{nat, netns, netns_background};

/// What every link a lab creates carries, so its owner can be seen and it can be removed in
/// one request: the alias `nslab:LAB` and a link group.
#[derive(Debug, Clone)]
pub(crate) struct LinkTag {
    pub(crate) alias: String,
    pub(crate) group: u32,
}

/// A netns's socket and the identity of the netns it was opened in (None: the host).
type CachedSock = (Rc<NlSocket>, Option<netns::NetnsId>);

pub(crate) struct Kernel {
    /// One socket per netns, with the identity of the netns it was opened in (None: the
    /// host, or gone).
    socks: RefCell<HashMap<Ns, CachedSock>>,
    tag: Option<LinkTag>,
    /// `--no-ipv6` (see [`Kernel::set_no_ipv6`]).
    no_ipv6: Cell<bool>,
    /// Walk-through fast path (see [`Kernel::set_defer_veth`]).
    defer_veth: Cell<bool>,
    /// The veth pairs accepted but not created yet, with what merged into them.
    held_links: RefCell<veth::HeldLinks>,
    /// Link-ups and default routes held back in a run (`deferred`).
    deferred: RefCell<deferred::Deferred>,
    /// Links created by this executor whose owner tag (alias) is not set yet: it rides
    /// along with the next `up` or `master` of the same link (see [`Kernel::set_alias`]).
    /// A set: a lab(1000) holds a thousand, and every `up` looks for its link's.
    pending_tags: RefCell<HashSet<(Ns, String)>>,
    /// Bridges this executor made: (netns, name) -> (ifindex, ports it put on them), so a
    /// `set_master` onto one can merge into a held-back veth (`veth::bridge_with_room`).
    bridges: RefCell<HashMap<(Ns, String), (u32, u32)>>,
    /// Namespaces this executor created with IPv6 off: links made inside them need no
    /// per-link sysctl.
    v6_off_ns: RefCell<HashSet<String>>,
    /// `NSLAB_TIMING`: per kind of Op, (count, total, slowest).
    timing: Option<RefCell<BTreeMap<String, OpTime>>>,
    /// The call site of the Op being applied ([`Kernel::set_site`]).
    site: Cell<Option<u64>>,
    /// Where a netns made in the background records its identity (`netns_background`);
    /// without one every netns is made on this thread.
    netns_recorder: RefCell<Option<netns_background::Recorder>>,
    /// The netns given to the background thread and not collected yet, with the call site
    /// of their `netns::add`.
    bg_netns: RefCell<HashMap<String, Option<u64>>>,
    /// The identities of netns collected from the background thread, for the session.
    made_ids: RefCell<Vec<(String, netns::NetnsId)>>,
    /// Set while `flush_veth` makes the held pairs: the requests it sends flush nothing.
    flushing_veth: Cell<bool>,
}

/// NSLAB_TIMING per kind of Op: how many, their total, the slowest.
type OpTime = (u32, Duration, Duration);

impl Drop for Kernel {
    fn drop(&mut self) {
        let Some(t) = &self.timing else { return };
        eprintln!(
            "NSLAB_TIMING {:<16} {:>6} {:>10} {:>9} {:>9}",
            "op", "count", "total ms", "mean us", "max us"
        );
        for (k, (n, total, max)) in t.borrow().iter() {
            eprintln!(
                "NSLAB_TIMING {k:<16} {n:>6} {:>10.1} {:>9.1} {:>9.0}",
                total.as_secs_f64() * 1e3,
                total.as_secs_f64() * 1e6 / f64::from(*n),
                max.as_secs_f64() * 1e6
            );
        }
    }
}

impl Kernel {
    pub(crate) fn new(tag: Option<LinkTag>) -> NetResult<Kernel> {
        let timing = std::env::var_os("NSLAB_TIMING").map(|_| RefCell::new(BTreeMap::new()));
        Ok(Kernel {
            socks: RefCell::new(HashMap::new()),
            tag,
            no_ipv6: Cell::new(false),
            defer_veth: Cell::new(false),
            held_links: RefCell::new(veth::HeldLinks::default()),
            deferred: RefCell::new(deferred::Deferred::default()),
            pending_tags: RefCell::new(HashSet::new()),
            bridges: RefCell::new(HashMap::new()),
            v6_off_ns: RefCell::new(HashSet::new()),
            timing,
            site: Cell::new(None),
            netns_recorder: RefCell::new(None),
            bg_netns: RefCell::new(HashMap::new()),
            made_ids: RefCell::new(Vec::new()),
            flushing_veth: Cell::new(false),
        })
    }

    /// `--no-ipv6`, for very large labs. Every netns created from now on gets
    /// `net.ipv6.conf.{all,default}.disable_ipv6=1` before anything is made in it (its `lo`
    /// loses `::1`, no link there gets an IPv6 address), and every bridge or veth end created
    /// in a netns this executor did not create (the host side) gets
    /// `net.ipv6.conf.DEV.disable_ipv6=1` before it can come up. Why: an IPv6 interface
    /// coming up sends DAD probes, router solicitations and MLD reports, and a bridge floods
    /// them to every port, so on one bridge that background work grows as N² and competes
    /// with the build for CPU (measured: 3008 packets out of one port of lab(500) within
    /// 3 s, 1 with IPv6 off).
    pub(crate) fn set_no_ipv6(&self, on: bool) {
        self.no_ipv6.set(on);
    }

    /// A new veth and the recipe's next operations on it in one kernel request. The
    /// walk-through's `veth::add(a, b)` followed by `link::set_netns(a, NS)` made as fast
    /// as `veth::add(b, a, NS)`: moving a link into a netns costs the kernel 16-23 ms (an
    /// `rcu_barrier` in dev_change_net_namespace), creating the end there ~0.5 ms. And a
    /// port's `link::set_master(a, BR)` and `link::up(a)` ride in the creation request
    /// (IFLA_MASTER, IFF_UP) as the C floor does: lab(N) takes 5 requests a host, not 7.
    /// With this on, a veth is accepted but not created until something needs it
    /// (`veth::HeldLinks`, [`Kernel::merges`]): the Ops that merge, a new netns or pair, an
    /// IPv4 `addr::add` on one of its ends (held with it), and the `up`s and routes that
    /// `deferred` holds wait with it; anything else (another operation, any query, the end
    /// of the run) creates every held pair, in the recipe's order, then their addresses. So
    /// lab(N), which finishes each host before making the next, makes every netns first,
    /// as the C floor does (a netns made after the hosts before it took 450 µs in
    /// lab(1000), 360 µs with every netns first).
    ///
    /// What the recipe means does not change: the same links end up in the same places
    /// and states, and what the kernel would refuse is refused at the same line. The name
    /// clash a veth creation can meet is checked when `veth::add` is called (one ioctl per
    /// name, and the held pairs' names) and reported there; a clash in the target netns
    /// makes the move take the usual path (create, then move), so the kernel's answer lands
    /// on `set_netns` as before; a `set_master` merges only onto a bridge this executor made
    /// (same ifindex) with fewer than 1023 ports put on it or held for it; an address is
    /// held only when it is not there twice. Only an error the checks cannot foresee (out
    /// of memory, a port someone else added to that bridge meanwhile) would surface late,
    /// naming the calls. For `nslab run` only: in the REPL a veth must exist as soon as its
    /// line returns. The same switch holds back the link-ups and default routes that cannot
    /// fail (`deferred`). And a new netns is made on a background thread while the recipe
    /// goes on (`netns_background`; with a recorder set, not with `--no-ipv6`).
    pub(crate) fn set_defer_veth(&self, on: bool) {
        self.defer_veth.set(on);
    }

    /// Where the recipe asks for the Ops applied from now on (a number the script layer
    /// gave). What is held back keeps it, so an error that surfaces later can point there.
    pub(crate) fn set_site(&self, site: u64) {
        self.site.set(Some(site));
    }

    /// The cached netlink socket of `ns`, opened on first use. Every netlink request goes
    /// through here, so this is where the held-back veths (and their addresses) are made
    /// before anything else reaches the kernel ([`Kernel::set_defer_veth`]); writes that take no socket flush in
    /// [`Kernel::apply`], and the session's queries that take none in `Backend::settle`.
    pub(super) fn sock(&self, ns: Option<&str>) -> NetResult<Rc<NlSocket>> {
        self.flush_veth()?;
        self.sock_here(ns)
    }

    /// [`Kernel::sock`] without making the held-back veths first: for a look at a name
    /// that decides whether an Op can wait (an ioctl changes nothing).
    pub(super) fn sock_here(&self, ns: Option<&str>) -> NetResult<Rc<NlSocket>> {
        if ns.is_some_and(|n| self.in_background(n)) {
            self.collect_netns()?;
        }
        let key: Ns = ns.map(str::to_string);
        // The netns behind a name can change under a long session (`ip netns del red; ip
        // netns add red` in another terminal): a socket of the old one would act on a dead
        // netns. One statx per request (~1 µs) tells (netns::identity).
        let id = ns.and_then(netns::identity_here);
        if let Some((s, at)) = self.socks.borrow().get(&key)
            && match (at, &id) {
                (Some(a), Some(b)) => a.same_here(b),
                (None, None) => ns.is_none(),
                _ => false,
            }
        {
            return Ok(s.clone());
        }
        let s = match ns {
            None => NlSocket::open(),
            Some(_) => netns::run_in(ns, NlSocket::open)?,
        }
        .map_err(|e| {
            NetError::new(format!("cannot open a netlink socket in {}: {e}", place(ns)))
        })?;
        let s = Rc::new(s);
        self.socks.borrow_mut().insert(key, (s.clone(), id));
        Ok(s)
    }

    /// Drops the cached socket of a netns: an open socket keeps a deleted netns alive.
    pub(crate) fn forget(&self, ns: &str) {
        self.socks.borrow_mut().remove(&Some(ns.to_string()));
        self.v6_off_ns.borrow_mut().remove(ns);
    }

    pub(crate) fn link_index(&self, ns: Option<&str>, dev: &str) -> NetResult<u32> {
        self.sock(ns)?.index_of(dev).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => no_link(dev, ns),
            _ => NetError::from(e),
        })
    }

    pub(crate) fn apply(&self, op: &Op) -> NetResult<()> {
        if self.timing.is_none() {
            return self.apply_inner(op);
        }
        let kind = format!("{op:?}").split([' ', '{']).next().unwrap_or_default().to_string();
        self.timed(kind, || self.apply_inner(op))
    }

    /// Runs `f`, adding its duration to `kind` when NSLAB_TIMING is on.
    pub(super) fn timed<T>(&self, kind: impl Into<String>, f: impl FnOnce() -> T) -> T {
        if self.timing.is_none() {
            return f();
        }
        let t0 = Instant::now();
        let r = f();
        self.note_time(kind, t0.elapsed());
        r
    }

    /// `NSLAB_TIMING`: one more of `kind`, which took `d`.
    pub(super) fn note_time(&self, kind: impl Into<String>, d: Duration) {
        let Some(timing) = &self.timing else { return };
        let mut t = timing.borrow_mut();
        let e = t.entry(kind.into()).or_insert((0, Duration::ZERO, Duration::ZERO));
        e.0 += 1;
        e.1 += d;
        e.2 = e.2.max(d);
    }

    /// One line per kind of Op: each family's file says how it is done.
    fn apply_inner(&self, op: &Op) -> NetResult<()> {
        self.flush_unless_merges(op)?;
        if self.merge(op)? || self.hold(op) {
            return Ok(());
        }
        if self.hold_addr(op) {
            self.note_applied(op);
            return Ok(());
        }
        let r = self.apply_now(op);
        if r.is_ok() {
            self.note_applied(op);
        }
        r
    }

    fn apply_now(&self, op: &Op) -> NetResult<()> {
        match op {
            Op::NetnsAdd { name } => self.netns_add(name),
            Op::NetnsDel { name } => self.netns_del(name),
            Op::BridgeAdd { ns, name } => self.bridge_add(ns.as_deref(), name),
            Op::VethAdd { ns, name, peer, peer_ns } => self.veth_add(ns, name, peer, peer_ns),
            Op::LinkUp { ns, dev } => self.set_state(ns.as_deref(), dev, true),
            Op::LinkDown { ns, dev } => self.set_state(ns.as_deref(), dev, false),
            Op::LinkSetMaster { ns, dev, master } => {
                self.set_master(ns.as_deref(), dev, master.as_deref())
            }
            Op::LinkSetNetns { ns, dev, to } => self.set_netns(ns, dev, to),
            Op::LinkDel { ns, dev } => self.link_del(ns.as_deref(), dev),
            Op::AddrAdd { ns, dev, cidr } => self.addr_add(ns.as_deref(), dev, cidr),
            Op::AddrDel { ns, dev, cidr } => self.addr_del(ns.as_deref(), dev, cidr),
            Op::RouteAdd { ns, dest, via, dev, opts } => {
                self.route(ns.as_deref(), true, *dest, *via, dev.as_deref(), opts)
            }
            Op::RouteDel { ns, dest, via, dev, opts } => {
                self.route(ns.as_deref(), false, *dest, *via, dev.as_deref(), opts)
            }
            Op::RuleAdd { ns, rule } => self.rule(ns.as_deref(), true, rule),
            Op::RuleDel { ns, rule } => self.rule(ns.as_deref(), false, rule),
            Op::SysctlSet { ns, key, value, .. } => sysctl_set(ns.as_deref(), key, value),
            Op::SysctlTemp { ns, key, value, .. } => sysctl_set(ns.as_deref(), key, value),
            Op::LinkSet { ns, dev, set, .. } => self.link_set(ns.as_deref(), dev, set),
            Op::LinkGroupDel { ns, group } => self.link_group_del(ns.as_deref(), *group),
            // Journal bookkeeping: nothing changes in the kernel.
            Op::NetnsForget { .. } => Ok(()),
            Op::IptAppend { ns, table, chain, rule } => {
                nat::append(ns.as_deref(), table, chain, rule)
            }
            Op::IptDelete { ns, table, chain, rule } => {
                nat::delete(ns.as_deref(), table, chain, rule)
            }
            Op::LinkAdd { ns, name, kind } => self.link_add(ns.as_deref(), name, kind),
            Op::BridgeSet { ns, name, vlan_filtering, stp } => {
                self.bridge_set(ns.as_deref(), name, *vlan_filtering, *stp)
            }
            Op::BridgeVlanAdd { ns, port, vid, pvid, untagged, on_bridge } => {
                self.bridge_vlan(ns.as_deref(), port, *vid, Some((*pvid, *untagged)), *on_bridge)
            }
            Op::BridgeVlanDel { ns, port, vid, on_bridge } => {
                self.bridge_vlan(ns.as_deref(), port, *vid, None, *on_bridge)
            }
            Op::WireguardSet { ns, dev, private_key, listen_port, peers } => self.wireguard_set(
                ns.as_deref(),
                dev,
                private_key.as_ref(),
                *listen_port,
                peers.as_deref(),
            ),
            Op::TcSet { ns, dev, qdisc, .. } => self.tc_set(ns.as_deref(), dev, qdisc),
        }
    }
}
