//! veth pairs, and the walk-through fast path that holds a new pair back until the next
//! operation (see [`Kernel::set_defer_veth`]).

use std::os::fd::AsRawFd;

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

impl Kernel {
    /// Creates the pending veth pair and sets the pending owner tags, if any (see
    /// [`Kernel::set_defer_veth`]): what anyone looking at the kernel must see.
    pub(crate) fn flush(&self) -> NetResult<()> {
        self.flush_veth()?;
        self.flush_tags()
    }

    /// Creates the pending veth pair, if any.
    pub(super) fn flush_veth(&self) -> NetResult<()> {
        let Some((ns, name, peer)) = self.pending_veth.borrow_mut().take() else { return Ok(()) };
        // The error surfaces at a later script line (or after the last one): name the call
        // it belongs to.
        self.create_veth(ns.as_deref(), &name, None, &peer, None).map_err(|e| NetError {
            message: format!(
                "veth::add(\"{name}\", \"{peer}\") could not be created: {} (it was held back until now, in case a link::set_netns followed)",
                e.message
            ),
            ..e
        })
    }

    /// Forgets the pending veth pair and tags: a run being rolled back (teardown takes a
    /// link of the lab's group with no alias yet as the lab's: a run killed between
    /// creating and tagging leaves one like that too).
    pub(crate) fn discard_pending(&self) {
        self.pending_veth.borrow_mut().take();
        self.pending_tags.borrow_mut().clear();
    }

    /// True when `op` would be merged with the pending veth (so nothing must be flushed
    /// before it).
    fn merges(&self, op: &Op) -> bool {
        let Op::LinkSetNetns { ns, dev, .. } = op else { return false };
        self.moves_pending(ns, dev)
    }

    /// Flushes the pending veth unless `op` is the move it waits for, and the pending tags
    /// before an op that moves or deletes links (the others leave aliases alone, and an `up`
    /// or `master` of a link with a pending tag carries it). Callers that do more than
    /// [`Kernel::apply`] before applying an Op (reading a sysctl first) call this.
    pub(crate) fn flush_unless_merges(&self, op: &Op) -> NetResult<()> {
        if !self.merges(op) {
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

    /// True when moving `dev` of `ns` is the move the pending veth waits for.
    fn moves_pending(&self, ns: &Ns, dev: &str) -> bool {
        match &*self.pending_veth.borrow() {
            Some((pns, name, peer)) => ns == pns && (dev == name || dev == peer),
            None => false,
        }
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
    /// [`Kernel::set_defer_veth`] is on and both ends stay in one netns.
    pub(super) fn veth_add(&self, ns: &Ns, name: &str, peer: &str, peer_ns: &Ns) -> NetResult<()> {
        if !(self.defer_veth.get() && peer_ns.is_none() && name != peer) {
            return self.create_veth(ns.as_deref(), name, None, peer, peer_ns.as_deref());
        }
        // Refuse now what the kernel would refuse at creation (see set_defer_veth).
        let nsr = ns.as_deref();
        let sock = self.sock(nsr)?;
        if sock.index_of(name).is_ok() || sock.index_of(peer).is_ok() {
            return Err(self.veth_taken(name, nsr, peer, nsr));
        }
        *self.pending_veth.borrow_mut() = Some((ns.clone(), name.to_string(), peer.to_string()));
        Ok(())
    }

    /// `ip link set DEV netns TO`; when DEV is an end of the held-back veth, the pair is
    /// created with that end already in TO.
    pub(super) fn set_netns(&self, ns: &Ns, dev: &str, to: &str) -> NetResult<()> {
        if !self.moves_pending(ns, dev) {
            return self.move_link(ns.as_deref(), dev, to);
        }
        let (_, name, peer) = self.pending_veth.borrow_mut().take().expect("moves_pending saw it");
        let nsr = ns.as_deref();
        let clash = netns::exists(to) && self.sock(Some(to))?.index_of(dev).is_ok();
        if !netns::exists(to) || clash {
            // The usual path, so the kernel's refusal is the one the move gets.
            self.create_veth(nsr, &name, None, &peer, None)?;
            return self.move_link(nsr, dev, to);
        }
        if dev == name {
            self.create_veth(nsr, &name, Some(to), &peer, None)
        } else {
            self.create_veth(nsr, &name, None, &peer, Some(to))
        }
    }

    /// Creates the veth pair `name` / `peer` through the socket of `ns`. `name_in` and
    /// `peer_in` make an end directly inside another netns: moving a link later costs the
    /// kernel 16-23 ms, creating it there about 0.5 ms.
    fn create_veth(
        &self,
        ns: Option<&str>,
        name: &str,
        name_in: Option<&str>,
        peer: &str,
        peer_in: Option<&str>,
    ) -> NetResult<()> {
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
}
