//! Links: creating bridges, state, master, moving, deleting, the lab's tag on each link it
//! makes, and the link group delete of teardown.

use std::collections::HashSet;
use std::os::fd::AsRawFd;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec};

use super::Kernel;
use crate::net::error::{NetError, NetResult, errno_of, from_nl, place};
use crate::net::netns;
use crate::net::nl::NlSocket;
use crate::net::op::{LinkAttrs, Ns, parse_mac};
use crate::net::refusal::{
    already_enslaved, bridge_full, bridges_do_not_nest, cannot_join_bridge, link_busy, link_exists,
    link_taken, mtu_out_of_range, netns_has_link, no_bridge, no_link, not_a_bridge,
    pinned_to_netns,
};

pub(super) fn link_error(e: rtnetlink::Error, dev: &str, ns: Option<&str>, what: &str) -> NetError {
    from_nl(e, &format!("cannot {what} {dev} in {}", place(ns)), |errno| match errno {
        libc::ENODEV => Some(no_link(dev, ns)),
        libc::EEXIST => Some(link_exists(dev, ns)),
        libc::EBUSY => Some(link_busy(dev, ns)),
        _ => None,
    })
}

impl Kernel {
    /// The refusal for creating link `dev` in `ns` where one exists: says whose it is.
    pub(super) fn taken(&self, ns: Option<&str>, dev: &str) -> NetError {
        let owner = self
            .links(ns)
            .ok()
            .and_then(|ls| ls.into_iter().find(|l| l.name == dev))
            .and_then(|l| l.alias)
            .and_then(|a| a.strip_prefix("nslab:").map(str::to_string));
        let lab = self.tag.as_ref().and_then(|t| t.alias.strip_prefix("nslab:"));
        link_taken(dev, ns, owner.as_deref(), lab)
    }

    pub(super) fn tagged<T>(&self, b: LinkMessageBuilder<T>) -> LinkMessageBuilder<T> {
        match &self.tag {
            Some(t) => b.alias(t.alias.clone()).link_group(t.group),
            None => b,
        }
    }

    /// The kernel ignores IFLA_IFALIAS in a link's creation request (it is only handled by
    /// do_setlink; seen on 6.18: `ip -d link` showed no alias), so the owner tag is set with
    /// a second request. The link group, used for deletion, is applied at creation.
    ///
    /// In a run (`set_defer_veth`) that request is held back and rides along with the next
    /// `link::up` or `link::set_master` of the same link, which a recipe nearly always says
    /// next (lab(N): two requests fewer per host); anything that looks at links, moves or
    /// deletes them, and the end of the run, send it first ([`Kernel::flush`]). A run killed
    /// meanwhile leaves a link of the lab's group without alias, which teardown already
    /// takes as the lab's (the same as a kill between creating and tagging).
    pub(super) fn set_alias(&self, ns: Option<&str>, dev: &str) -> NetResult<()> {
        if self.tag.is_none() {
            return Ok(());
        }
        if self.defer_veth.get() {
            self.pending_tags.borrow_mut().insert((ns.map(str::to_string), dev.to_string()));
            return Ok(());
        }
        self.send_alias(ns, dev)
    }

    fn send_alias(&self, ns: Option<&str>, dev: &str) -> NetResult<()> {
        let Some(t) = &self.tag else { return Ok(()) };
        let msg = LinkUnspec::new_with_name(dev).alias(t.alias.clone()).build();
        self.sock(ns)?
            .ack(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| link_error(e, dev, ns, "tag"))
    }

    /// Sets the pending owner tags (see [`Kernel::set_alias`]). A link already gone needs
    /// none.
    pub(super) fn flush_tags(&self) -> NetResult<()> {
        self.flush_tags_but(&HashSet::new())
    }

    /// [`Kernel::flush_tags`] but for the links in `keep`, whose tags stay pending (to ride
    /// along with their held-back `up`).
    pub(super) fn flush_tags_but(&self, keep: &HashSet<(Ns, String)>) -> NetResult<()> {
        let tags: Vec<(Ns, String)> = {
            let mut pending = self.pending_tags.borrow_mut();
            let go = pending.iter().filter(|t| !keep.contains(*t)).cloned().collect();
            pending.retain(|t| keep.contains(t));
            go
        };
        for (ns, dev) in tags {
            match self.timed("(tags)", || self.send_alias(ns.as_deref(), &dev)) {
                Err(e) if e.errno == Some(libc::ENODEV) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Takes `dev`'s pending tag, if it has one: the caller's request carries it.
    fn take_tag(&self, ns: Option<&str>, dev: &str) -> bool {
        self.pending_tags.borrow_mut().remove(&(ns.map(str::to_string), dev.to_string()))
    }

    /// Sends a change of `dev` with its pending tag, if any, in one request. When the
    /// kernel refuses the change, the tag goes alone (the link is the lab's either way) and
    /// the change's own error is returned, as without the merge.
    fn set_link_tagged(
        &self,
        sock: &NlSocket,
        ns: Option<&str>,
        dev: &str,
        b: LinkMessageBuilder<LinkUnspec>,
    ) -> Result<(), rtnetlink::Error> {
        let tag = self.take_tag(ns, dev).then_some(self.tag.as_ref()).flatten();
        let b = match tag {
            Some(t) => b.alias(t.alias.clone()),
            None => b,
        };
        let r = sock.ack(RouteNetlinkMessage::SetLink(b.build()), 0);
        if r.is_err() && tag.is_some() {
            let _ = self.send_alias(ns, dev);
        }
        r
    }

    /// `ip link add NAME type bridge`.
    pub(super) fn bridge_add(&self, ns: Option<&str>, name: &str) -> NetResult<()> {
        let msg = self.tagged(LinkMessageBuilder::<LinkBridge>::new(name)).build();
        self.sock(ns)?.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map_err(
            |e| match errno_of(&e) {
                Some(libc::EEXIST) => self.taken(ns, name),
                _ => link_error(e, name, ns, "create bridge"),
            },
        )?;
        self.set_alias(ns, name)
            .and_then(|()| self.link_v6_off(ns, name))
            .inspect_err(|_| self.undo_link(ns, name))?;
        // Known as a bridge with no port yet: a `set_master` onto it can merge into a
        // held-back veth's creation (veth.rs).
        if let Ok(idx) = self.link_index(ns, name) {
            self.bridges.borrow_mut().insert((ns.map(str::to_string), name.to_string()), (idx, 0));
        }
        Ok(())
    }

    /// `ip link set DEV up|down`.
    pub(super) fn set_state(&self, ns: Option<&str>, dev: &str, up: bool) -> NetResult<()> {
        let b = LinkUnspec::new_with_name(dev);
        let b = if up { b.up() } else { b.down() };
        let sock = self.sock(ns)?;
        self.set_link_tagged(&sock, ns, dev, b).map_err(|e| link_error(e, dev, ns, "set state of"))
    }

    /// `ip link set DEV master M` (`nomaster` for None).
    pub(super) fn set_master(
        &self,
        ns: Option<&str>,
        dev: &str,
        master: Option<&str>,
    ) -> NetResult<()> {
        let b = LinkUnspec::new_with_name(dev);
        let b = match master {
            Some(m) => {
                let idx = self.link_index(ns, m).map_err(|_| {
                    let bridges: Vec<String> = self
                        .links(ns)
                        .map(|ls| {
                            ls.into_iter().filter(|l| l.kind == "bridge").map(|l| l.name).collect()
                        })
                        .unwrap_or_default();
                    no_bridge(m, ns, bridges.iter().map(String::as_str))
                })?;
                b.controller(idx)
            }
            None => b.nocontroller(),
        };
        let sock = self.sock(ns)?;
        let r = self.set_link_tagged(&sock, ns, dev, b);
        if r.is_ok() {
            self.bridge_port_added(ns, master);
        }
        r.map_err(|e| {
            from_nl(e, &format!("cannot set master of {dev}"), |errno| match errno {
                libc::ENODEV => Some(no_link(dev, ns)),
                libc::EOPNOTSUPP => Some(not_a_bridge(master, dev)),
                libc::EINVAL => Some(cannot_join_bridge(dev)),
                libc::ELOOP => Some(bridges_do_not_nest(dev, master)),
                libc::EBUSY => Some(already_enslaved(dev)),
                // br_add_if: the 1024th port (BR_MAX_PORTS).
                libc::EXFULL => Some(bridge_full(dev, master.unwrap_or("?"))),
                _ => None,
            })
        })
    }

    /// `ip link del DEV`.
    pub(super) fn link_del(&self, ns: Option<&str>, dev: &str) -> NetResult<()> {
        let mut b = LinkUnspec::new_with_name(dev).build();
        b.header.index = 0;
        self.sock(ns)?
            .ack(RouteNetlinkMessage::DelLink(b), 0)
            .map_err(|e| link_error(e, dev, ns, "delete link"))
    }

    /// Deletes a link this call has just created (a veth takes its peer along), when a
    /// later step of the same operation failed. Best effort: the error that matters is the
    /// one being returned.
    pub(super) fn undo_link(&self, ns: Option<&str>, dev: &str) {
        let mut b = LinkUnspec::new_with_name(dev).build();
        b.header.index = 0;
        if let Ok(sock) = self.sock(ns) {
            let _ = sock.ack(RouteNetlinkMessage::DelLink(b), 0);
        }
    }

    /// `ip link set DEV netns TO`.
    pub(super) fn move_link(&self, ns: Option<&str>, dev: &str, to: &str) -> NetResult<()> {
        let fd = netns::open(to)?;
        let b = LinkUnspec::new_with_name(dev).setns_by_fd(fd.as_raw_fd());
        let r = self.sock(ns)?.ack(RouteNetlinkMessage::SetLink(b.build()), 0);
        drop(fd);
        r.map_err(|e| {
            from_nl(e, &format!("cannot move {dev} to netns {to}"), |errno| match errno {
                libc::ENODEV => Some(no_link(dev, ns)),
                libc::EEXIST => Some(netns_has_link(to, dev)),
                libc::EINVAL => Some(pinned_to_netns(dev, to)),
                _ => None,
            })
        })
    }

    /// `ip link del group N`: every link of `group` in `ns` with one RTM_DELLINK,
    /// synchronous, and far faster than deleting veths one by one (~20 ms each on this
    /// kernel).
    pub(super) fn link_group_del(&self, ns: Option<&str>, group: u32) -> NetResult<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::Group(group));
        self.sock(ns)?.ack(RouteNetlinkMessage::DelLink(m), 0).map_err(|e| {
            from_nl(e, &format!("cannot delete link group {group} in {}", place(ns)), |_| None)
        })
    }

    /// `ip link set DEV mtu N address MAC txqueuelen N` (only what `set` names), in one
    /// request: the kernel applies all of it or, refusing one, none.
    pub(super) fn link_set(&self, ns: Option<&str>, dev: &str, set: &LinkAttrs) -> NetResult<()> {
        let mut b = LinkUnspec::new_with_name(dev);
        if let Some(mtu) = set.mtu {
            b = b.mtu(mtu);
        }
        if let Some(mac) = &set.mac {
            b = b.address(parse_mac(mac)?);
        }
        if let Some(len) = set.txqueuelen {
            b = b.txqueuelen(len);
        }
        self.sock(ns)?.ack(RouteNetlinkMessage::SetLink(b.build()), 0).map_err(|e| {
            match (errno_of(&e), set.mtu) {
                // dev_validate_mtu: "mtu less than device minimum" / "greater than maximum".
                (Some(libc::EINVAL), Some(mtu)) => mtu_out_of_range(dev, mtu),
                _ => link_error(e, dev, ns, "set"),
            }
        })
    }
}
