//! veth pairs, and the fast path that holds new pairs back while the recipe's next
//! operations can ride along in their creation requests, and makes them only when
//! something needs them (see [`Kernel::set_defer_veth`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use ipnet::IpNet;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{LinkUnspec, LinkVeth};

use super::Kernel;
use super::link::link_error;
use crate::net::error::{NetError, NetResult};
use crate::net::netns;
use crate::net::op::{Ns, Op};
use crate::net::refusal::veth_same_names;

/// Most ports a Linux bridge takes (BR_MAX_PORTS is 1024, port number 0 is never used).
const BRIDGE_MAX_PORTS: u32 = 1023;

/// A veth pair accepted but not created yet, and what the operations after it merged into
/// its creation request (see [`Kernel::set_defer_veth`]).
#[derive(Debug, Clone)]
pub(super) struct HeldVeth {
    /// Where the request goes (the netns of the `veth::add` call).
    pub(super) ns: Ns,
    pub(super) name: String,
    pub(super) peer: String,
    /// Where each end is made: None = `ns` (a merged `set_netns` or the call's peer netns).
    pub(super) name_in: Option<String>,
    pub(super) peer_in: Option<String>,
    /// `link::set_master(name, M)`: M's name and ifindex (IFLA_MASTER).
    pub(super) master: Option<(String, u32)>,
    /// `link::up` of each end (IFF_UP in its ifinfomsg).
    pub(super) up: bool,
    pub(super) peer_up: bool,
    /// The `veth::add` call's site (see [`NetError::site`]).
    pub(super) site: Option<u64>,
}

impl HeldVeth {
    fn name_at(&self) -> Option<&str> {
        self.name_in.as_deref().or(self.ns.as_deref())
    }
    fn peer_at(&self) -> Option<&str> {
        self.peer_in.as_deref().or(self.ns.as_deref())
    }
    /// Whether a `link::up` of `dev` in `ns` is a first `up` of the name end, or of the peer.
    fn ends_up(&self, ns: Option<&str>, dev: &str) -> (bool, bool) {
        let name_end = dev == self.name && ns == self.name_at() && !self.up;
        let peer_end = !name_end && dev == self.peer && ns == self.peer_at() && !self.peer_up;
        (name_end, peer_end)
    }

    /// Which end (true: `name`) a `set_netns` of `dev` in `ns` to `to` moves, when that can
    /// merge: made directly in `to` instead, the end is where the move puts it, as the move
    /// would leave it (down, on no bridge: so not once its `up` or `master` merged, which
    /// the move would undo), unless both ends would then share a name in `to`.
    fn end_moving(&self, ns: Option<&str>, dev: &str, to: &str) -> Option<bool> {
        let name_end = dev == self.name && ns == self.name_at();
        let peer_end = !name_end && dev == self.peer && ns == self.peer_at();
        let (other, other_at) = match (name_end, peer_end) {
            (true, _) if !self.up && self.master.is_none() => (&self.peer, self.peer_at()),
            (_, true) if !self.peer_up => (&self.name, self.name_at()),
            _ => return None,
        };
        (!(other == dev && other_at == Some(to))).then_some(name_end)
    }
    /// The recipe's lines this request stands for, for an error that surfaces late.
    fn calls(&self) -> String {
        let mut c = match (&self.peer_in, &self.name_in) {
            (Some(p), None) => format!("veth::add(\"{}\", \"{}\", \"{p}\")", self.name, self.peer),
            _ => format!("veth::add(\"{}\", \"{}\")", self.name, self.peer),
        };
        if let Some((m, _)) = &self.master {
            c += &format!(" + link::set_master(\"{}\", \"{m}\")", self.name);
        }
        if self.up {
            c += &format!(" + link::up(\"{}\")", self.name);
        }
        if self.peer_up {
            c += &format!(" + link::up(\"{}\")", self.peer);
        }
        c
    }
}

/// The veth pairs a run holds back, in the recipe's order, with the IPv4 addresses put on
/// their ends meanwhile (see [`Kernel::set_defer_veth`]).
#[derive(Debug, Default)]
pub(super) struct HeldLinks {
    veths: Vec<HeldVeth>,
    /// Where each end of a held pair will be made -> its pair in `veths`: every Op asks,
    /// and a lab(1000) holds a thousand pairs.
    ends: HashMap<(Ns, String), usize>,
    /// `addr::add` on a held end, in the recipe's order, with its call site.
    addrs: Vec<(Op, Option<u64>)>,
    /// The IPv4 addresses each held end gets (the kernel refuses one twice).
    addressed: HashMap<(Ns, String), Vec<Ipv4Addr>>,
    /// Ports the held pairs add to each bridge (`bridge_with_room`).
    ports: HashMap<(Ns, String), u32>,
}

impl HeldLinks {
    pub(super) fn is_empty(&self) -> bool {
        self.veths.is_empty()
    }

    fn end(&self, ns: &Ns, dev: &str) -> Option<usize> {
        self.ends.get(&(ns.clone(), dev.to_string())).copied()
    }

    fn holds_name(&self, ns: Option<&str>, dev: &str) -> bool {
        self.ends.contains_key(&(ns.map(str::to_string), dev.to_string()))
    }
}

impl Kernel {
    /// Applies the held-back ups and routes (`deferred`), creates the held-back veth pairs
    /// and sets the pending owner tags, if any (see [`Kernel::set_defer_veth`]): what anyone
    /// looking at the kernel must see.
    pub(crate) fn flush(&self) -> NetResult<()> {
        self.flush_veth()?;
        // The tags first, but for links whose held-back `up` carries theirs: once the hosts
        // come up, every request waits for RTNL behind their IPv6 work (lab(1000): the
        // bridge ends' 1000 tags took 266 ms after the ups, 26 ms before them).
        self.flush_tags_but(&self.held_ups())?;
        self.flush_held()?;
        self.flush_tags()?;
        self.outside_may_have_acted();
        Ok(())
    }

    /// Creates the held-back veth pairs, if any, with what merged into them, in the
    /// recipe's order, each as soon as the netns it goes into is made (`netns_background`),
    /// then waits for every netns still being made and adds the addresses held back for
    /// the pairs' ends. Should the kernel refuse one after all, the rest are dropped (the
    /// run fails and rolls back).
    pub(super) fn flush_veth(&self) -> NetResult<()> {
        if self.flushing_veth.get() {
            return Ok(());
        }
        if self.held_links.borrow().is_empty() {
            return self.collect_netns();
        }
        // Taken out first: the sockets these requests ask for find nothing held.
        let held = std::mem::take(&mut *self.held_links.borrow_mut());
        self.flushing_veth.set(true);
        let made = (|| {
            for h in &held.veths {
                // Each pair as soon as its netns is there, while the background thread
                // makes the next ones. (`create_veth` would wait too; waiting here keeps
                // the wait out of the pair's NSLAB_TIMING row.)
                self.collect_netns_named(&[h.name_in.as_deref(), h.peer_in.as_deref()])?;
                self.timed("(veth held back)", || self.create_held(h))?;
            }
            self.collect_netns()
        })();
        self.flushing_veth.set(false);
        made?;
        for (op, site) in &held.addrs {
            let Op::AddrAdd { ns, dev, cidr } = op else {
                unreachable!("only addresses are held with the pairs, not {op:?}")
            };
            self.timed("(address held back)", || self.addr_add(ns.as_deref(), dev, cidr)).map_err(
                |e| NetError {
                    message: format!(
                        "{} could not be done: {} (held back until now, to make every netns first)",
                        op.command(),
                        e.message
                    ),
                    site: *site,
                    ..e
                },
            )?;
        }
        Ok(())
    }

    /// One request for the pair and what merged into it. When the kernel refuses it, the
    /// pair is made as `veth::add` asked and each merged operation follows on its own, so
    /// the refusal is the one that operation alone would get. The error surfaces at a later
    /// script line (or after the last one): it names the calls it belongs to.
    fn create_held(&self, h: &HeldVeth) -> NetResult<()> {
        let late = |e: NetError| NetError {
            message: format!(
                "{} could not be made: {} (held back until now, to make it in one request with what followed)",
                h.calls(),
                e.message
            ),
            site: h.site,
            ..e
        };
        let merged = h.master.is_some() || h.up || h.peer_up;
        let extras = (h.master.as_ref().map(|m| m.1), h.up, h.peer_up);
        let ns = h.ns.as_deref();
        let (name_in, peer_in) = (h.name_in.as_deref(), h.peer_in.as_deref());
        match self.create_veth(ns, &h.name, name_in, &h.peer, peer_in, extras) {
            Ok(()) => {
                if h.master.is_some() {
                    self.bridge_port_added(ns, h.master.as_ref().map(|m| m.0.as_str()));
                }
                Ok(())
            }
            Err(e) if !merged => Err(late(e)),
            Err(_) => {
                self.create_veth(ns, &h.name, name_in, &h.peer, peer_in, (None, false, false))
                    .map_err(late)?;
                if let Some((m, _)) = &h.master {
                    self.set_master(h.name_at(), &h.name, Some(m)).map_err(late)?;
                }
                if h.up {
                    self.set_state(h.name_at(), &h.name, true).map_err(late)?;
                }
                if h.peer_up {
                    self.set_state(h.peer_at(), &h.peer, true).map_err(late)?;
                }
                Ok(())
            }
        }
    }

    /// Forgets the pending veth pairs, addresses and tags: a run being rolled back
    /// (teardown takes a link of the lab's group with no alias yet as the lab's: a run
    /// killed between creating and tagging leaves one like that too).
    pub(crate) fn discard_pending(&self) {
        // The rollback deletes the netns made in the background: they must be there first.
        let _ = self.collect_netns();
        std::mem::take(&mut *self.held_links.borrow_mut());
        self.pending_tags.borrow_mut().clear();
        self.discard_held();
    }

    /// True when `op` merges into a held-back veth (so nothing must be flushed before it):
    /// a `set_netns` of an end while both are where they were made and it has no address
    /// held, a `set_master` of its first end onto a bridge this executor made (by ifindex,
    /// with room left), a `link::up` of one end while the other is not coming up in the
    /// same request (a second `up` is held back until the end instead, `deferred`: a pair
    /// with both ends up has carrier, and its host would start its IPv6 chatter while the
    /// rest of the lab is built). What these can meet is known beforehand: the merged
    /// request does nothing a recipe could not foresee (see [`Kernel::set_defer_veth`]).
    pub(super) fn merges(&self, op: &Op) -> bool {
        let held = self.held_links.borrow();
        if held.is_empty() {
            return false;
        }
        // `if let`, not a match: no wildcard arm on Op (lab::plan's test), and every other
        // Op simply does not merge.
        if let Op::LinkSetNetns { ns, dev, to } = op {
            let Some(i) = held.end(ns, dev) else { return false };
            return !held.addressed.contains_key(&(ns.clone(), dev.clone()))
                && held.veths[i].end_moving(ns.as_deref(), dev, to).is_some();
        }
        if let Op::LinkSetMaster { ns, dev, master: Some(m) } = op {
            let Some(i) = held.end(ns, dev) else { return false };
            let h = &held.veths[i];
            return *dev == h.name
                && h.name_in.is_none()
                && *ns == h.ns
                && h.master.is_none()
                && self.bridge_with_room(ns.as_deref(), m, &held).is_some();
        }
        let Op::LinkUp { ns, dev } = op else { return false };
        let Some(i) = held.end(ns, dev) else { return false };
        let h = &held.veths[i];
        let (name_end, peer_end) = h.ends_up(ns.as_deref(), dev);
        (name_end && !h.peer_up) || (peer_end && !h.up)
    }

    /// Merges a `set_master` or `link::up` into its held-back veth; false when it does not
    /// merge (see [`Kernel::merges`]; a `set_netns` merges in [`Kernel::set_netns`]).
    pub(super) fn merge(&self, op: &Op) -> NetResult<bool> {
        if !self.merges(op) {
            return Ok(false);
        }
        let mut held = self.held_links.borrow_mut();
        if let Op::LinkSetMaster { ns, dev, master: Some(m) } = op {
            let idx = self.bridge_with_room(ns.as_deref(), m, &held).expect("merges saw it");
            let i = held.end(ns, dev).expect("merges saw it");
            held.veths[i].master = Some((m.clone(), idx));
            *held.ports.entry((ns.clone(), m.clone())).or_default() += 1;
            return Ok(true);
        }
        let Op::LinkUp { ns, dev } = op else { return Ok(false) };
        let i = held.end(ns, dev).expect("merges saw it");
        let h = &mut held.veths[i];
        match h.ends_up(ns.as_deref(), dev) {
            (true, _) => h.up = true,
            (_, true) => h.peer_up = true,
            (false, false) => return Ok(false),
        }
        Ok(true)
    }

    /// Holds back `addr::add` of an IPv4 address on an end of a held-back pair, which
    /// cannot fail but for the same address twice on that end (then it is not held: the
    /// pairs are made and the kernel answers at the call). Without this, each host's
    /// address made its pair at once, before the next host's netns: made after the hosts
    /// before it, a netns took 450 µs in lab(1000), and 360 µs with every netns first, as
    /// in the C floor (the same kernel work, but interrupted by the kernel's workers
    /// finishing what the previous hosts left: `benches/README.md`).
    pub(super) fn hold_addr(&self, op: &Op) -> bool {
        if !self.addr_holds(op) {
            return false;
        }
        let Op::AddrAdd { ns, dev, cidr: IpNet::V4(a) } = op else { return false };
        let mut held = self.held_links.borrow_mut();
        held.addressed.entry((ns.clone(), dev.clone())).or_default().push(a.addr());
        held.addrs.push((op.clone(), self.site.get()));
        true
    }

    fn addr_holds(&self, op: &Op) -> bool {
        let Op::AddrAdd { ns, dev, cidr: IpNet::V4(a) } = op else { return false };
        let ip = a.addr();
        // What the kernel treats otherwise (0.0.0.0 is dropped without a word) goes now.
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
            return false;
        }
        let held = self.held_links.borrow();
        held.end(ns, dev).is_some()
            && !held.addressed.get(&(ns.clone(), dev.clone())).is_some_and(|v| v.contains(&ip))
    }

    /// Flushes the pending veths unless `op` merges into one or can wait with them, and
    /// the pending tags before an op that moves or deletes links (the others leave aliases
    /// alone, and an `up` or `master` of a link with a pending tag carries it). Callers
    /// that do more than [`Kernel::apply`] before applying an Op (reading a sysctl first)
    /// call this.
    pub(crate) fn flush_unless_merges(&self, op: &Op) -> NetResult<()> {
        self.flush_held_for(op)?;
        // A new netns or veth pair meets nothing held: a pair checks its names against the
        // held ones too (`veth_add`).
        let waits = matches!(op, Op::NetnsAdd { .. } | Op::VethAdd { .. })
            || self.merges(op)
            || self.addr_holds(op)
            || self.would_hold(op);
        if !waits {
            self.flush_veth()?;
        }
        let moves_or_deletes = match op {
            Op::LinkSetNetns { .. }
            | Op::LinkDel { .. }
            | Op::LinkGroupDel { .. }
            | Op::NetnsDel { .. }
            | Op::NetnsForget { .. } => true,
            Op::NetnsAdd { .. }
            | Op::BridgeAdd { .. }
            | Op::VethAdd { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::AddrAdd { .. }
            | Op::AddrDel { .. }
            | Op::RouteAdd { .. }
            | Op::RouteDel { .. }
            | Op::RuleAdd { .. }
            | Op::RuleDel { .. }
            | Op::SysctlSet { .. }
            | Op::SysctlTemp { .. }
            | Op::LinkSet { .. }
            | Op::IptAppend { .. }
            | Op::IptDelete { .. }
            | Op::LinkAdd { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::BridgeVlanDel { .. }
            | Op::WireguardSet { .. }
            | Op::TcSet { .. } => false,
        };
        if moves_or_deletes { self.flush_tags() } else { Ok(()) }
    }

    /// Whether link `dev` is in `ns`, for a name check that decides whether a veth can be
    /// held back. A netns still being made in the background is not waited for: it has
    /// only `lo` so far. (Should the kernel put another link in every new netns, a `sit0`
    /// once its module is loaded, the held creation meets it and fails late, naming its
    /// call, as `Kernel::set_defer_veth` allows.)
    fn has_link(&self, ns: Option<&str>, dev: &str) -> NetResult<bool> {
        if let Some(n) = ns
            && self.in_background(n)
        {
            return Ok(dev == "lo");
        }
        Ok(self.sock_here(ns)?.index_of(dev).is_ok())
    }

    /// Which end of a veth pair clashes, as [`Kernel::taken`] says it.
    fn veth_taken(
        &self,
        name: &str,
        name_at: Option<&str>,
        peer: &str,
        peer_at: Option<&str>,
    ) -> NetError {
        if name_at == peer_at && name == peer {
            return veth_same_names(name);
        }
        let name_exists = self.sock(name_at).is_ok_and(|s| s.index_of(name).is_ok());
        if name_exists { self.taken(name_at, name) } else { self.taken(peer_at, peer) }
    }

    /// `ip link add NAME type veth peer name PEER [netns PEER_NS]`; held back when
    /// [`Kernel::set_defer_veth`] is on. What the kernel would refuse at creation is refused
    /// here, at the call: a name taken in either netns (in the kernel, or by a pair held
    /// back), a peer netns that is not there.
    pub(super) fn veth_add(&self, ns: &Ns, name: &str, peer: &str, peer_ns: &Ns) -> NetResult<()> {
        let same = peer_ns.is_none() || peer_ns == ns;
        if !self.defer_veth.get() || (same && name == peer) {
            return self.create_veth(
                ns.as_deref(),
                name,
                None,
                peer,
                peer_ns.as_deref(),
                (None, false, false),
            );
        }
        let nsr = ns.as_deref();
        let peer_at = peer_ns.as_deref().or(nsr);
        if let Some(p) = peer_ns.as_deref()
            && !netns::exists(p)
        {
            // The kernel's own answer, through the usual path.
            return self.create_veth(nsr, name, None, peer, Some(p), (None, false, false));
        }
        let held_clash = {
            let held = self.held_links.borrow();
            held.holds_name(nsr, name) || held.holds_name(peer_at, peer)
        };
        if held_clash {
            // Made, so the kernel's state tells which name clashes.
            self.flush_veth()?;
        }
        if self.has_link(nsr, name)? || self.has_link(peer_at, peer)? {
            return Err(self.veth_taken(name, nsr, peer, peer_at));
        }
        let mut held = self.held_links.borrow_mut();
        let i = held.veths.len();
        held.veths.push(HeldVeth {
            ns: ns.clone(),
            name: name.to_string(),
            peer: peer.to_string(),
            name_in: None,
            peer_in: peer_ns.clone().filter(|_| !same),
            master: None,
            up: false,
            peer_up: false,
            site: self.site.get(),
        });
        held.ends.insert((ns.clone(), name.to_string()), i);
        held.ends.insert((peer_at.map(str::to_string), peer.to_string()), i);
        Ok(())
    }

    /// `ip link set DEV netns TO`; when DEV is an end of a held-back veth, that end is
    /// made directly in TO, in the same request.
    pub(super) fn set_netns(&self, ns: &Ns, dev: &str, to: &str) -> NetResult<()> {
        let op = Op::LinkSetNetns { ns: ns.clone(), dev: dev.to_string(), to: to.to_string() };
        if !self.merges(&op) {
            return self.move_link(ns.as_deref(), dev, to);
        }
        let clash = netns::exists(to)
            && (self.held_links.borrow().holds_name(Some(to), dev)
                || self.has_link(Some(to), dev)?);
        if !netns::exists(to) || clash {
            // The usual path, so the kernel's refusal is the one the move gets.
            self.flush_veth()?;
            return self.move_link(ns.as_deref(), dev, to);
        }
        let mut held = self.held_links.borrow_mut();
        let i = held.end(ns, dev).expect("merges saw it");
        let h = &mut held.veths[i];
        if h.end_moving(ns.as_deref(), dev, to).expect("merges saw it") {
            h.name_in = Some(to.to_string());
        } else {
            h.peer_in = Some(to.to_string());
        }
        held.ends.remove(&(ns.clone(), dev.to_string()));
        held.ends.insert((Some(to.to_string()), dev.to_string()), i);
        Ok(())
    }
    /// Creates the veth pair `name` / `peer` through the socket of `ns`. `name_in` and
    /// `peer_in` make an end directly inside another netns: moving a link later costs the
    /// kernel 16-23 ms, creating it there about 0.5 ms. `extras`: IFLA_MASTER of `name`,
    /// IFF_UP of `name`, IFF_UP of `peer`, set by the same request (the kernel brings the
    /// ends up, then enslaves `name`: rtnl_newlink_create).
    fn create_veth(
        &self,
        ns: Option<&str>,
        name: &str,
        name_in: Option<&str>,
        peer: &str,
        peer_in: Option<&str>,
        extras: (Option<u32>, bool, bool),
    ) -> NetResult<()> {
        let (master, up, peer_up) = extras;
        // A netns the background thread could not make has no file any more: its own error,
        // not "does not exist" (seen on the second kernel, where the thread failed before
        // this call looked).
        self.collect_netns_named(&[name_in, peer_in])?;
        // The netns fds must stay open until the request has completed.
        let name_fd = name_in.map(netns::open).transpose()?;
        let peer_fd = peer_in.map(netns::open).transpose()?;
        // One TX and one RX queue per end (`numtxqueues 1 numrxqueues 1`). By default the
        // kernel allocates one per possible CPU and then shrinks the veth to the single queue
        // it uses, which waits for an expedited RCU grace period per end (veth_init_queues ->
        // netif_set_real_num_tx_queues): 399 of them in lab(200), 14 ms on an idle machine,
        // 185 ms with a compile running (`perf sched`). The queue in use is the same either
        // way; only raising the count later with `ethtool -L` (multi-queue XDP) is not possible.
        let mut peer_msg = self
            .tagged(LinkUnspec::new_with_name(peer))
            .append_extra_attribute(LinkAttribute::NumTxQueues(1))
            .append_extra_attribute(LinkAttribute::NumRxQueues(1));
        if peer_up {
            peer_msg = peer_msg.up();
        }
        if let Some(fd) = &peer_fd {
            peer_msg = peer_msg.setns_by_fd(fd.as_raw_fd());
        }
        let mut b = self
            .tagged(LinkVeth::new(name, peer))
            .append_extra_attribute(LinkAttribute::NumTxQueues(1))
            .append_extra_attribute(LinkAttribute::NumRxQueues(1))
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
        if let Some(fd) = &name_fd {
            b = b.setns_by_fd(fd.as_raw_fd());
        }
        if let Some(m) = master {
            b = b.controller(m);
        }
        if up {
            b = b.up();
        }
        let (name_at, peer_at) = (name_in.or(ns), peer_in.or(ns));
        self.sock(ns)?
            .ack(RouteNetlinkMessage::NewLink(b.build()), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| match crate::net::error::errno_of(&e) {
                Some(libc::EEXIST) => self.veth_taken(name, name_at, peer, peer_at),
                _ => link_error(e, name, ns, "create veth"),
            })?;
        drop((name_fd, peer_fd));
        let finish = || -> NetResult<()> {
            self.set_alias(name_at, name)?;
            self.set_alias(peer_at, peer)?;
            self.link_v6_off(name_at, name)?;
            self.link_v6_off(peer_at, peer)
        };
        // The op fails as a whole, so the journal drops it: nothing of it may stay behind.
        finish().inspect_err(|_| self.undo_link(name_at, name))
    }

    /// The ifindex of bridge `m` in `ns` when this executor made it and has put fewer than
    /// [`BRIDGE_MAX_PORTS`] ports on it, counting those of the pairs `held` back: a
    /// `set_master` onto it can only succeed. (A port someone else adds meanwhile is not
    /// counted: the 1024th would then be refused late, naming the call.)
    fn bridge_with_room(&self, ns: Option<&str>, m: &str, held: &HeldLinks) -> Option<u32> {
        let key = (ns.map(str::to_string), m.to_string());
        let &(idx, ports) = self.bridges.borrow().get(&key)?;
        if ports + held.ports.get(&key).copied().unwrap_or(0) >= BRIDGE_MAX_PORTS {
            return None;
        }
        // The name still means that bridge (deleted and made again, it has another index).
        let sock = self.socks.borrow().get(&key.0).map(|(s, _)| s.clone())?;
        (sock.index_of(m).ok()? == idx).then_some(idx)
    }

    /// Counts a port this executor put on bridge `m` (see [`Kernel::bridge_with_room`]).
    pub(super) fn bridge_port_added(&self, ns: Option<&str>, m: Option<&str>) {
        let Some(m) = m else { return };
        let key = (ns.map(str::to_string), m.to_string());
        if let Some(b) = self.bridges.borrow_mut().get_mut(&key) {
            b.1 += 1;
        }
    }
}
