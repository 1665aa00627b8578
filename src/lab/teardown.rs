//! Undoing a lab: the journal read backwards, tolerant like CNI's DEL (objects already gone
//! are fine, every error is collected, it runs to the end), and synchronous: the lab's
//! namespaces are unmounted (the kernel destroys them later, asynchronously, links inside
//! included), then its links outside them are deleted explicitly, by link group, so none is
//! left when teardown returns.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::net::error::place;
use crate::net::info::{AddrId, RouteInfo};
use crate::net::routing::PROTO_NSLAB;
use crate::net::rule::{RuleSpec, rule_info, rule_message, rule_words};
use crate::net::{Kernel, NetError, Ns, Op};

pub(crate) use super::owned::{Counts, Owned, OwnedLink, owner_tag};
use super::sysctl_claims;
use links::{Deletion, delete_links, lab_links};

mod links;

/// What a teardown did not undo: the errors it met, and what it left on purpose because the
/// kernel does not confirm the journal's word that the lab made it (each named, with why).
#[derive(Debug, Default)]
pub(crate) struct Undone {
    pub(crate) errors: Vec<NetError>,
    pub(crate) left: Vec<String>,
    /// Places where a dump showed every link of the lab's group as the lab's and all of
    /// them went: a sweep finds nothing more there.
    pub(crate) cleared: Vec<Ns>,
    /// The kernel did not show the lab's links as the journal names them (one renamed,
    /// deleted or replaced by hand, a link of the lab's group it does not name): a sweep
    /// should look for the lab's marks even when the journal is whole.
    pub(crate) stale: bool,
}

impl Undone {
    /// Everything as errors: what was left becomes one more (a rollback reports it so).
    pub(crate) fn into_errors(mut self, lab: &str) -> Vec<NetError> {
        if !self.left.is_empty() {
            self.errors.push(left_behind(lab, &self.left));
        }
        self.errors
    }
}

/// Undoes `ops` (the successfully applied Ops of lab `lab`, in order). Returns every error
/// met on the way and what was left; both empty means the lab is gone.
///
/// The journal is evidence, not gospel (issue 14): a line injected into it, or one naming
/// an object someone else has made since, must not make teardown delete what the lab did
/// not make. So what outlives the lab is deleted only on the kernel's word: a netns whose
/// identity the lab recorded, links by their alias and group ([`Owned::is_mine`]), an
/// address on a foreign link whose recorded identity ([`AddrId`]) the kernel still shows,
/// a route or `ip rule` with nslab's protocol (`PROTO_NSLAB`, matched by the kernel's
/// delete), an iptables rule with the lab's comment, a sysctl the lab's claim vouches for.
/// The rest is left and named in [`Undone::left`].
pub(crate) fn teardown(kernel: &Kernel, lab: &str, ops: &[Op]) -> Undone {
    let mut owned = Owned::from_ops(ops);
    let mut left = Vec::new();
    // A netns of the lab replaced by hand since its last op (see Session::forget_replaced):
    // someone else's, with whatever the lab had in it gone with the old one. One the
    // journal names but recorded no identity of is not provably the lab's: left, and said.
    let ids = super::journal::netns_ids(lab);
    let mut forget = Vec::new();
    for name in &owned.netns {
        match netns_verdict(name, &ids) {
            NetnsVerdict::Ours => {}
            NetnsVerdict::Replaced => forget.push(name.clone()),
            // Killed between making it and recording its identity (the journal's last
            // line; seen in lifecycle's kill -9 test): the lab's if it holds nothing yet.
            NetnsVerdict::Unproven if made_last_and_empty(kernel, ops, name) => {}
            NetnsVerdict::Unproven => {
                left.push(format!(
                    "netns {name}: {UNPROVEN}: the journal records no identity of it"
                ));
                forget.push(name.clone());
            }
        }
    }
    for name in forget {
        owned.note(&Op::NetnsForget { name });
    }
    let mut addr_ids = None;
    // The sysctls the lab's claims vouch for, asked before the first release removes them
    // (a key set three times is released three times, oldest value last).
    let claimed: HashSet<(Ns, String)> = owned
        .changes
        .iter()
        .filter_map(|c| {
            let Op::SysctlSet { ns, key, .. } = c else { return None };
            (!owned.in_owned_ns(ns.as_deref())).then(|| (ns.clone(), key.clone()))
        })
        .filter(|(ns, key)| sysctl_claims::vouches(lab, ns.as_deref(), key))
        .collect();
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
            // Put back only when the lab's claim vouches for the journal's line.
            Op::SysctlSet { ns, key, .. }
                if outlives && !claimed.contains(&(ns.clone(), key.clone())) =>
            {
                let l = format!("sysctl {key} in {}: {UNPROVEN}: {NO_CLAIM}", place(ns.as_deref()));
                if !left.contains(&l) {
                    left.push(l);
                }
            }
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
            // On a foreign link: only for a lab the claim names (the kernel marks no qdisc).
            Op::TcSet { ns, dev, qdisc, old: Some(old) } => {
                if owned.link_goes(ns.as_deref(), dev) {
                    continue;
                }
                let index = match kernel.link_index(ns.as_deref(), dev) {
                    Ok(i) => i,
                    Err(e) => {
                        keep(Err(e));
                        continue;
                    }
                };
                if super::tc_claims::vouches(lab, ns.as_deref(), dev, index) {
                    keep(restore_qdisc(kernel, ns, dev, qdisc, old));
                } else {
                    let l = format!(
                        "root qdisc of {dev} in {}: {UNPROVEN}: {NO_CLAIM}",
                        place(ns.as_deref())
                    );
                    if !left.contains(&l) {
                        left.push(l);
                    }
                }
            }
            // On a foreign link: only the very address the lab made, by the identity the
            // journal recorded and the kernel still shows.
            Op::AddrAdd { ns, dev, cidr } => {
                if owned.link_goes(ns.as_deref(), dev) {
                    continue;
                }
                let ids = addr_ids.get_or_insert_with(|| super::journal::addr_ids(lab));
                let recorded = ids.get(&(ns.clone(), dev.clone(), *cidr)).copied();
                let now = match kernel.addr_id(ns.as_deref(), dev, cidr) {
                    Ok(now) => now,
                    Err(e) => {
                        keep(Err(e));
                        continue;
                    }
                };
                match addr_verdict(recorded, now) {
                    Verdict::Delete => undo(op),
                    Verdict::Gone => {}
                    Verdict::Left(why) => left.push(format!(
                        "address {cidr} on {dev} in {}: {why}",
                        place(ns.as_deref())
                    )),
                }
            }
            // Only a route the kernel shows with nslab's mark: the delete names it.
            Op::RouteAdd { ns, dest, dev, opts, .. } => {
                if !owned.route_outlives(ns.as_deref(), dev.as_deref()) {
                    continue;
                }
                let marked = opts.protocol == Some(PROTO_NSLAB);
                // The mark says "nslab", the claim which lab (route_claims).
                let claimed = marked && super::route_claims::vouches(lab, op);
                if claimed {
                    let Some(inverse) = op.inverse() else { continue };
                    match kernel.apply(&inverse) {
                        Err(e) if e.errno == Some(libc::ESRCH) => {}
                        r => {
                            keep(r);
                            continue;
                        }
                    }
                }
                // Not deleted: is an equal route there (someone else's, or one an old
                // journal did not mark)?
                match kernel.routes(ns.as_deref(), Some(opts.table())) {
                    Ok(routes) => {
                        if let Some(r) = routes.iter().find(|r| same_route(op, r)) {
                            let why = route_left(marked, claimed, &r.proto);
                            let d = crate::net::routing::route_label(*dest, opts);
                            left.push(format!("route {d} in {}: {why}", place(ns.as_deref())));
                        }
                    }
                    Err(e) => keep(Err(e)),
                }
            }
            // Routes and rules are undone exactly (Op::inverse names the metric, the
            // recorded rule its priority): an equal one someone else added survives.
            // An iptables rule only with the lab's comment: `iptables -D` names the whole
            // rule, comment included, so it can take no rule without it.
            Op::IptAppend { ns, table, chain, rule } => {
                if !outlives {
                    continue;
                }
                if tagged(rule, lab) {
                    undo(op);
                } else {
                    left.push(format!(
                        "{table} rule `-A {chain} {}` in {}: {UNPROVEN}: it carries no comment {}",
                        rule.join(" "),
                        place(ns.as_deref()),
                        owner_tag(lab)
                    ));
                }
            }
            // Only a rule the kernel shows with nslab's mark: the delete names it.
            Op::RuleAdd { ns, rule } => {
                if !outlives {
                    continue;
                }
                let marked = rule.protocol == Some(PROTO_NSLAB);
                let claimed = marked && super::route_claims::vouches(lab, op);
                if claimed {
                    match kernel.apply(&Op::RuleDel { ns: ns.clone(), rule: rule.clone() }) {
                        Err(e) if e.errno == Some(libc::ENOENT) => {}
                        r => {
                            keep(r);
                            continue;
                        }
                    }
                }
                // Not deleted: is an equal rule there (someone else's, or one an old
                // journal did not mark)?
                let want = rule_info(&rule_message(&RuleSpec { protocol: None, ..rule.clone() }));
                match kernel.rules(ns.as_deref()) {
                    Ok(rules) if rules.iter().any(|r| Some(r) == want.as_ref()) => {
                        let why = if marked && !claimed {
                            format!("{UNPROVEN}: {NO_CLAIM}")
                        } else if marked {
                            format!(
                                "{NOT_MADE}: the kernel's rule is not marked protocol {PROTO_NSLAB}"
                            )
                        } else {
                            format!(
                                "{UNPROVEN}: the journal's record carries no nslab mark (protocol {PROTO_NSLAB})"
                            )
                        };
                        left.push(format!(
                            "rule `{}` in {}: {why}",
                            rule_words(&RuleSpec { protocol: None, ..rule.clone() }),
                            place(ns.as_deref())
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => keep(Err(e)),
                }
            }
            // nslab's only temporary write is `promote_secondaries` around an address
            // delete (Op::promote_write): a line naming another key is not nslab's.
            Op::SysctlTemp { ns, key, .. } => {
                if !outlives {
                    continue;
                }
                if is_promote_key(key) {
                    undo(op);
                } else {
                    left.push(format!(
                        "sysctl {key} in {}: {UNPROVEN}: nslab writes no such key for a moment",
                        place(ns.as_deref())
                    ));
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

    // 3a. The lab's links outside its namespaces, asked before step 2: right after the
    //     unmounts the kernel's netns worker holds RTNL for a long time, and a dump then
    //     waits for it (lab(200): 50-90 ms).
    let mut by_pair: HashMap<usize, Vec<&OwnedLink>> = HashMap::new();
    for l in &owned.links {
        by_pair.entry(l.pair).or_default().push(l);
    }
    let mut places: BTreeSet<Ns> = BTreeSet::new();
    // Per place, the veth ends whose peer sits in one of the lab's namespaces: the kernel
    // deletes them with that netns.
    let mut reaped: HashMap<Ns, HashSet<&str>> = HashMap::new();
    for ends in by_pair.values() {
        let outside = ends.iter().find(|l| !owned.in_owned_ns(l.ns.as_deref()));
        let end = outside.unwrap_or(&ends[0]);
        places.insert(end.ns.clone());
        if outside.is_some() && ends.iter().any(|l| owned.in_owned_ns(l.ns.as_deref())) {
            reaped.entry(end.ns.clone()).or_default().insert(&end.name);
        }
    }
    let none = HashSet::new();
    let reaped_in = |ns: &Ns| reaped.get(ns).unwrap_or(&none);
    let outside: Vec<(Ns, Result<Deletion, NetError>)> = places
        .into_iter()
        .filter(|ns| !owned.in_owned_ns(ns.as_deref()))
        .map(|ns| {
            let d = lab_links(kernel, ns.as_deref(), lab, &owned, reaped_in(&ns));
            (ns, d)
        })
        .collect();

    // 2b. The lab's bridges go down first. Right after a build, every host's IPv6 chatter
    //     (DAD, router solicitations, MLD reports) is still being flooded to every port,
    //     and that flood competes with the kernel's netns worker and with the bridge's own
    //     delete: lab(1000) destroyed right after its build took 1601-1733 ms, 421-955 ms
    //     with `ip link set br0 down` first (3 of each, alternating).
    for (ns, d) in &outside {
        if let Ok(d) = d {
            links::bridges_down(kernel, ns, d);
        }
    }

    // 2. The namespaces, newest first. Their links go with them: the kernel tears an
    //    unmounted netns down on its own worker, in one batch.
    let netns: Vec<&String> = ops
        .iter()
        .filter_map(|op| if let Op::NetnsAdd { name } = op { Some(name) } else { None })
        .collect();
    for name in netns.into_iter().rev() {
        if owned.netns.contains(name) {
            keep(kernel.apply(&Op::NetnsDel { name: name.clone() }));
        }
    }

    // 3. The lab's links outside its namespaces. The veth ends whose peers were in step 2's
    //    namespaces go with them; the rest (bridges, …) are deleted at once, before the
    //    kernel's worker takes RTNL, and then this waits until the reaped ends are gone
    //    too, so none of the lab's links is left when this returns. Deleting a bridge
    //    releases any foreign link the lab had enslaved to it.
    let mut cleared = Vec::new();
    let mut stale = false;
    for (ns, d) in outside {
        stale |= d.as_ref().map_or(true, |d| d.stale);
        let r = d.and_then(|d| delete_links(kernel, ns.as_deref(), lab, &owned, d, reaped_in(&ns)));
        if r.as_ref().is_ok_and(|&all| all) {
            cleared.push(ns);
        }
        keep(r.map(|_| ()));
    }
    Undone { errors, left, cleared, stale }
}

/// The start of why something the journal names was left: the kernel does not confirm it.
const UNPROVEN: &str = "not shown to be this lab's";
const NOT_MADE: &str = "not made by this lab";
/// Why a shared setting the journal names was left: the claims (sysctl, tc, route) do not
/// name the lab.
const NO_CLAIM: &str = "the lab holds no claim on it";

/// What teardown does with an address the journal says the lab put on a foreign link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Delete,
    /// Not there any more: nothing to do, nothing to say.
    Gone,
    /// There, but not provably the lab's: left, for this reason.
    Left(String),
}

/// `recorded`: the identity the journal recorded for the address (None: none); `now`: the
/// kernel's identity of the address there now (None: no such address or link).
pub(crate) fn addr_verdict(recorded: Option<AddrId>, now: Option<AddrId>) -> Verdict {
    match (recorded, now) {
        (_, None) => Verdict::Gone,
        (Some(r), Some(n)) if r == n => Verdict::Delete,
        (Some(_), Some(_)) => {
            Verdict::Left(format!("{NOT_MADE}: the journal's record does not match the kernel's"))
        }
        (None, Some(_)) => {
            Verdict::Left(format!("{UNPROVEN}: the journal records no identity of it"))
        }
    }
}

/// Why a route the journal names and the kernel still has was left: `marked` says whether
/// the journal's line carried nslab's protocol, `claimed` whether the lab holds the route's
/// claim (`route_claims`); `proto` is the kernel's.
fn route_left(marked: bool, claimed: bool, proto: &str) -> String {
    if marked && !claimed {
        format!("{UNPROVEN}: {NO_CLAIM}")
    } else if marked {
        format!("{NOT_MADE}: the kernel's route is proto {proto}, not nslab's {PROTO_NSLAB}")
    } else {
        format!(
            "{UNPROVEN}: the journal's record carries no nslab mark (proto {PROTO_NSLAB}), the kernel's route is proto {proto}"
        )
    }
}

/// `net.ipv4.conf.DEV.promote_secondaries`, the key of `Op::promote_write`.
fn is_promote_key(key: &str) -> bool {
    key.strip_prefix("net.ipv4.conf.")
        .and_then(|k| k.strip_suffix(".promote_secondaries"))
        .is_some_and(|dev| !dev.is_empty())
}

/// Whether iptables rule `rule` (the words after `-A CHAIN`) carries lab `lab`'s comment,
/// as every rule a lab adds does (`fw::comment`).
fn tagged(rule: &[String], lab: &str) -> bool {
    rule.windows(2).any(|w| w[0] == "--comment" && w[1] == owner_tag(lab))
}

/// Whether dumped route `r` is the one RouteAdd `op` describes: destination, gateway, type,
/// table and metric (what makes a route unique to the kernel).
fn same_route(op: &Op, r: &RouteInfo) -> bool {
    let Op::RouteAdd { dest, via, opts, .. } = op else { return false };
    let v6 = crate::net::routing::family_v6(*dest, *via, opts);
    let d = dest.map(|d| d.trunc().to_string()).unwrap_or_else(|| "default".into());
    d == r.dest
        && (r.family == "inet6") == v6
        && via.is_none_or(|v| r.via.as_deref() == Some(v.to_string().as_str()))
        && opts.kind.word() == r.kind
        && opts.table() == r.table
        && opts.metric_for(v6) == r.metric.unwrap_or(0)
}

/// What was left on purpose, as one error: named, with why, and what to do.
pub(crate) fn left_behind(lab: &str, left: &[String]) -> NetError {
    let list: String = left.iter().map(|l| format!("\n- {l}")).collect();
    NetError::new(format!(
        "lab {lab}: left {} its journal names but the kernel does not show as the lab's:{list}",
        if left.len() == 1 { "one object" } else { "objects" }
    ))
    .with_errno(libc::EPERM)
    .with_help("nslab deletes only what the kernel shows it made. No identity: the journal line was added by hand, comes from an older nslab, or nslab was killed right after making it; another identity: someone made it again since. If one is the lab's after all, remove it by hand (`ip addr del`, `ip route del`, `ip rule del`, `iptables -D`, `ip netns del`)")
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
/// replaced under the same name is left alone, as if the lab's were simply gone, and so is
/// one whose identity the lab never recorded.
pub(crate) fn still_ours(name: &str, ids: &HashMap<String, crate::net::netns::NetnsId>) -> bool {
    netns_verdict(name, ids) == NetnsVerdict::Ours
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NetnsVerdict {
    /// The lab's (or gone, or a dead mount point: nothing to spare).
    Ours,
    /// Deleted and made again by someone else since.
    Replaced,
    /// There, and the journal names it, but the lab recorded no identity of it: a line
    /// injected by hand could name any netns (issue 14), so it is not deleted.
    Unproven,
}

/// Whether `name` is the netns the journal's last Op made and it has no link but `lo`: all a
/// run killed right after `ip netns add` can have left, and no netns in use looks like it.
fn made_last_and_empty(kernel: &Kernel, ops: &[Op], name: &str) -> bool {
    if !matches!(ops.last(), Some(Op::NetnsAdd { name: n }) if n == name) {
        return false;
    }
    let empty = kernel.links(Some(name)).is_ok_and(|l| l.iter().all(|l| l.kind == "loopback"));
    kernel.forget(name);
    empty
}

pub(crate) fn netns_verdict(
    name: &str,
    ids: &HashMap<String, crate::net::netns::NetnsId>,
) -> NetnsVerdict {
    // The same mount of the same netns file (one statx): certainly the one the lab made,
    // without entering it for its cookie (`netns::surely_same`).
    if ids.get(name).is_some_and(|made| crate::net::netns::surely_same(made, name)) {
        return NetnsVerdict::Ours;
    }
    // A dead mount point (nslab killed inside `ip netns del`'s two steps) is the lab's to
    // finish removing: its identity is the empty file's, not the netns it recorded; nothing
    // can be in it.
    if crate::net::netns::is_dead(name) {
        return NetnsVerdict::Ours;
    }
    match (ids.get(name), crate::net::netns::identity(name)) {
        (Some(made), Some(now)) if made.same(&now) => NetnsVerdict::Ours,
        (Some(_), Some(_)) => NetnsVerdict::Replaced,
        (None, Some(_)) => NetnsVerdict::Unproven,
        (_, None) => NetnsVerdict::Ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_goes_only_while_the_kernel_shows_the_recorded_one() {
        let id = |ifindex, cstamp| Some(AddrId { ifindex, cstamp });
        assert_eq!(addr_verdict(id(2, 100), id(2, 100)), Verdict::Delete);
        assert_eq!(addr_verdict(id(2, 100), None), Verdict::Gone);
        assert_eq!(addr_verdict(None, None), Verdict::Gone);
        let Verdict::Left(why) = addr_verdict(id(2, 100), id(2, 101)) else { panic!() };
        assert_eq!(why, "not made by this lab: the journal's record does not match the kernel's");
        // The link made again under its name: another index.
        assert!(matches!(addr_verdict(id(2, 100), id(7, 100)), Verdict::Left(_)));
        // A line with no identity (injected, or older than the record) deletes nothing.
        let Verdict::Left(why) = addr_verdict(None, id(2, 100)) else { panic!() };
        assert!(why.starts_with("not shown to be this lab's"), "{why}");
    }

    #[test]
    fn a_dumped_route_is_matched_by_what_makes_it_unique() {
        let op = Op::RouteAdd {
            ns: None,
            dest: None,
            via: Some("203.0.113.1".parse().unwrap()),
            dev: None,
            opts: Default::default(),
        };
        let mut r = RouteInfo::main("default".into(), Some("203.0.113.1".into()), None, "inet");
        assert!(same_route(&op, &r));
        r.metric = Some(5);
        assert!(!same_route(&op, &r), "another metric: another route");
        r.metric = None;
        r.via = Some("203.0.113.9".into());
        assert!(!same_route(&op, &r));
        let v6 = Op::RouteAdd {
            ns: None,
            dest: Some("fd99::/64".parse().unwrap()),
            via: None,
            dev: Some("eth0".into()),
            opts: Default::default(),
        };
        let mut r = RouteInfo::main("fd99::/64".into(), None, Some("eth0".into()), "inet6");
        assert!(!same_route(&v6, &r), "IPv6 routes carry metric 1024");
        r.metric = Some(1024);
        assert!(same_route(&v6, &r));
    }

    #[test]
    fn only_promote_secondaries_is_put_back_as_a_temporary_write() {
        assert!(is_promote_key("net.ipv4.conf.uplink.promote_secondaries"));
        assert!(is_promote_key("net.ipv4.conf.eth0/10.promote_secondaries"));
        assert!(!is_promote_key("net.ipv4.ip_forward"));
        assert!(!is_promote_key("net.ipv4.conf.all.rp_filter"));
    }

    #[test]
    fn only_rules_with_the_labs_comment_are_undone() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(tagged(&words("-s 10.0.0.0/24 -m comment --comment nslab:t -j MASQUERADE"), "t"));
        assert!(!tagged(&words("-s 10.0.0.0/24 -m comment --comment nslab:u -j MASQUERADE"), "t"));
        assert!(!tagged(&words("-s 10.0.0.0/24 -j MASQUERADE"), "t"));
        assert!(!tagged(&words("-j LOG --log-prefix nslab:t"), "t"));
    }

    #[test]
    fn what_was_left_is_named_with_why() {
        let e = left_behind("t", &["address 1 on x: why".into()]);
        assert_eq!(
            e.message,
            "lab t: left one object its journal names but the kernel does not show as the lab's:\n- address 1 on x: why"
        );
        assert_eq!(e.errno, Some(libc::EPERM));
    }
}
