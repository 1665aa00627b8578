//! Undoing a lab: the journal read backwards, tolerant like CNI's DEL (objects already gone
//! are fine, every error is collected, it runs to the end), and synchronous: the lab's
//! namespaces are unmounted (the kernel destroys them later, asynchronously, links inside
//! included), then its links outside them are deleted explicitly, by link group, so none is
//! left when teardown returns.

use std::collections::{BTreeSet, HashMap};

use crate::net::info::LinkInfo;
use crate::net::{Kernel, NetError, Ns, Op};

pub(crate) use super::owned::{Counts, Owned, OwnedLink, owner_tag};
use super::sysctl_claims;

/// Undoes `ops` (the successfully applied Ops of lab `lab`, in order). Returns every error
/// met on the way; an empty list means the lab is gone.
pub(crate) fn teardown(kernel: &Kernel, lab: &str, ops: &[Op]) -> Vec<NetError> {
    let mut owned = Owned::from_ops(ops);
    // A netns of the lab replaced by hand since its last op (see Session::forget_replaced):
    // someone else's, with whatever the lab had in it gone with the old one.
    let ids = super::journal::netns_ids(lab);
    let replaced: Vec<String> =
        owned.netns.iter().filter(|n| !still_ours(n, &ids)).cloned().collect();
    for name in replaced {
        owned.note(&Op::NetnsForget { name });
    }
    let mut errors = Vec::new();
    let mut keep = |r: Result<(), NetError>| {
        if let Err(e) = r
            && !e.is_gone()
        {
            errors.push(e);
        }
    };

    // 1. Changes to things that outlive the lab, newest first: rules, sysctls, addresses and
    //    routes on foreign links. Whatever lives on the lab's own links or in its own
    //    namespaces disappears with them.
    for op in owned.changes.iter().rev() {
        let outlives = !owned.in_owned_ns(op.ns());
        // An address delete is bracketed by `promote_secondaries`, as in a run: the owner's
        // secondaries stay.
        let mut undo = |op: &Op| {
            let Some(inverse) = op.inverse() else { return };
            let r = kernel
                .promote_write(&inverse)
                .and_then(|temp| crate::net::op::bracketed(temp, inverse, |op| kernel.apply(&op)));
            keep(r);
        };
        match op {
            Op::SysctlSet { ns, key, value, old } if outlives => {
                let restore = |to: &str, now: &str| {
                    kernel.apply(&Op::SysctlSet {
                        ns: ns.clone(),
                        key: key.clone(),
                        value: to.to_string(),
                        old: Some(now.to_string()),
                    })
                };
                let ns = ns.as_deref();
                keep(sysctl_claims::release(lab, ns, key, value, old.as_deref(), restore));
            }
            // In the lab's own netns the value dies with it; only the hold goes.
            Op::SysctlSet { ns, key, .. } => {
                keep(sysctl_claims::drop_holder(lab, ns.as_deref(), key))
            }
            Op::TcSet { ns, dev, qdisc, old: Some(old) } => {
                if !owned.link_goes(ns.as_deref(), dev) {
                    keep(restore_qdisc(kernel, ns, dev, qdisc, old));
                }
            }
            Op::AddrAdd { ns, dev, .. } => {
                if !owned.link_goes(ns.as_deref(), dev) {
                    undo(op);
                }
            }
            Op::RouteAdd { ns, dev, .. } => {
                if outlives && !dev.as_deref().is_some_and(|d| owned.has_link(ns.as_deref(), d)) {
                    undo(op);
                }
            }
            // Routes and rules are undone exactly (Op::inverse names the metric, the
            // recorded rule its priority): an equal one someone else added survives.
            Op::IptAppend { .. } | Op::SysctlTemp { .. } | Op::RuleAdd { .. } => {
                if outlives {
                    undo(op);
                }
            }
            // Made on a link that dies with the lab (Session: no old qdisc kept).
            Op::TcSet { old: None, .. } => {}
            // Never in `changes` (Owned::note).
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

    // 2a. What `netns::exec` left running in the background: it would keep a netns alive
    //     (with whatever is in it) after the lab is gone.
    super::stop_backgrounds(lab);

    // 2. The namespaces, newest first. Their links go with them: the kernel tears an
    //    unmounted netns down on its own worker, in one batch, while step 3 runs (lab(200)
    //    with `ip -batch` doing the same two steps: all links gone after 122 ms in this
    //    order, 136 ms with the group delete first; medians of 6).
    let netns: Vec<&String> = ops
        .iter()
        .filter_map(|op| if let Op::NetnsAdd { name } = op { Some(name) } else { None })
        .collect();
    for name in netns.into_iter().rev() {
        if owned.netns.contains(name) {
            keep(kernel.apply(&Op::NetnsDel { name: name.clone() }));
        }
    }

    // 3. The lab's links outside its namespaces: one group delete per netns, which also
    //    takes every veth end whose peer sat in a namespace of step 2 and that the kernel has
    //    not reaped yet, so none of the lab's links is left when this returns. Deleting a
    //    bridge releases any foreign link the lab had enslaved to it.
    let mut by_pair: HashMap<usize, Vec<&OwnedLink>> = HashMap::new();
    for l in &owned.links {
        by_pair.entry(l.pair).or_default().push(l);
    }
    let mut places: BTreeSet<Ns> = BTreeSet::new();
    for ends in by_pair.values() {
        let outside = ends.iter().find(|l| !owned.in_owned_ns(l.ns.as_deref()));
        places.insert(outside.unwrap_or(&ends[0]).ns.clone());
    }
    for ns in places.iter().filter(|ns| !owned.in_owned_ns(ns.as_deref())) {
        keep(delete_links(kernel, ns.as_deref(), lab, &owned));
    }
    errors
}

/// Puts back the root qdisc `old` of a foreign link, unless someone changed it since the lab
/// set `ours` (then it is theirs now, and stays).
fn restore_qdisc(
    kernel: &Kernel,
    ns: &Ns,
    dev: &str,
    ours: &crate::net::tc::Qdisc,
    old: &crate::net::tc::Qdisc,
) -> Result<(), NetError> {
    let now = kernel.root_qdisc(ns.as_deref(), dev)?;
    if !now.restorable().is_ok_and(|q| ours.same_as(&q)) {
        return Ok(());
    }
    kernel.apply(&Op::TcSet {
        ns: ns.clone(),
        dev: dev.to_string(),
        qdisc: old.clone(),
        old: Some(ours.clone()),
    })
}

/// Whether netns `name` is still the one the lab made (see `journal::netns_ids`): a netns
/// replaced under the same name is left alone, as if the lab's were simply gone.
pub(crate) fn still_ours(name: &str, ids: &HashMap<String, crate::net::netns::NetnsId>) -> bool {
    // A dead mount point (nslab killed inside `ip netns del`'s two steps) is the lab's to
    // finish removing: its identity is the empty file's, not the netns it recorded.
    if crate::net::netns::is_dead(name) {
        return true;
    }
    match (ids.get(name), crate::net::netns::identity(name)) {
        (Some(made), Some(now)) => made.same(&now),
        _ => true,
    }
}

/// Deletes the lab's links in `ns`: one RTM_DELLINK for the whole link group when every
/// link in the group is this lab's (see [`Owned::is_mine`]), else one by one — never a
/// foreign link, even one that shares the group number.
fn delete_links(
    kernel: &Kernel,
    ns: Option<&str>,
    lab: &str,
    owned: &Owned,
) -> Result<(), NetError> {
    let group = super::journal::group_of(lab);
    let links = match kernel.links(ns) {
        Ok(l) => l,
        Err(e) if e.is_gone() => return Ok(()),
        Err(e) => return Err(e),
    };
    let in_group: Vec<&LinkInfo> = links.iter().filter(|l| l.group == group).collect();
    if in_group.is_empty() {
        return Ok(());
    }
    if in_group.iter().all(|l| owned.is_mine(ns, l, lab)) {
        return match kernel.apply(&Op::LinkGroupDel { ns: ns.map(str::to_string), group }) {
            Err(e) if e.is_gone() => Ok(()),
            r => r,
        };
    }
    let mut first_err = None;
    for l in in_group {
        if owned.is_mine(ns, l, lab)
            && let Err(e) =
                kernel.apply(&Op::LinkDel { ns: ns.map(str::to_string), dev: l.name.clone() })
            && !e.is_gone()
        {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}
