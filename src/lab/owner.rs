//! The ownership rules (README, "Ownership is checked for every change"): which Ops a lab may
//! apply to what it did not create. One decision for both executors: `nslab run` asks the
//! kernel about the objects involved, `nslab plan` asks its model, and both refuse with the
//! same words.

use crate::net::error::place;
use crate::net::info::LinkInfo;
use crate::net::refusal::{netns_exists, no_link, no_netns};
use crate::net::{NetError, NetResult, Op};

use super::teardown::Owned;

/// What the ownership check needs to know about the world as it is now.
pub(crate) trait World {
    fn netns_exists(&self, name: &str) -> bool;
    /// The link `dev` in `ns`, or None; an error when the netns itself is missing.
    fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>>;
}

/// Refuses an Op that would delete or change something lab `lab` did not create.
/// Creating is checked by the kernel (EEXIST), except for a netns. Asks `world` only about
/// Ops on objects the lab does not own. Exhaustive: a new Op does not compile without its
/// rule.
pub(crate) fn check(lab: &str, owned: &Owned, op: &Op, world: &dyn World) -> NetResult<()> {
    let not_ours = |what: String| {
        Err(NetError::new(format!("{what} was not created by lab {lab}"))
            .with_errno(libc::EPERM)
            .with_help(format!(
                "nslab only removes or changes what its lab created; do it by hand if you mean it: `{}`",
                op.command()
            )))
    };
    let place = |ns: &Option<String>| place(ns.as_deref());
    let link_goes = |ns: &Option<String>, dev: &str| owned.link_goes(ns.as_deref(), dev);
    // Up/down and enslaving are not undone by teardown, so on a foreign link they are
    // allowed only when they change nothing — except enslaving it to the lab's own bridge,
    // which deleting the bridge undoes. `unchanged` says so of the link as it is.
    let harmless = |ns: &Option<String>, dev: &str, unchanged: &dyn Fn(&LinkInfo) -> bool| {
        if link_goes(ns, dev) {
            return Ok(());
        }
        let Some(link) = world.link(ns.as_deref(), dev)? else {
            return Ok(()); // the executor's own "no link" error says it best
        };
        // `dev` was another name (an altname) of one of the lab's links.
        if link_goes(ns, &link.name) || unchanged(&link) {
            return Ok(());
        }
        not_ours(format!("link {dev} in {}", place(ns)))
    };
    let mine = |ns: &Option<String>, m: &str| owned.has_link(ns.as_deref(), m);
    match op {
        // Checked here *before* the Op is journaled: a `kill -9` between journaling and the
        // kernel's refusal would otherwise leave a journal entry claiming someone else's netns.
        Op::NetnsAdd { name } => {
            if world.netns_exists(name) {
                Err(netns_exists(name))
            } else {
                Ok(())
            }
        }
        Op::NetnsDel { name } => {
            if owned.netns.contains(name) {
                return Ok(());
            }
            if !world.netns_exists(name) {
                return Err(no_netns(name).with_help(
                    "netns::list() shows the namespaces there are; there is nothing to delete",
                ));
            }
            not_ours(format!("netns {name}"))
        }
        Op::LinkDel { ns, dev }
        | Op::LinkSetNetns { ns, dev, .. }
        | Op::LinkSet { ns, dev, .. } => {
            if link_goes(ns, dev) {
                return Ok(());
            }
            // Report a missing link as missing, not as foreign.
            if world.link(ns.as_deref(), dev)?.is_none() {
                return Err(no_link(dev, ns.as_deref()));
            }
            not_ours(format!("link {dev} in {}", place(ns)))
        }
        Op::LinkUp { ns, dev } => harmless(ns, dev, &|l| l.state == "up"),
        Op::LinkDown { ns, dev } => harmless(ns, dev, &|l| l.state == "down"),
        Op::LinkSetMaster { ns, dev, master: Some(m) } => harmless(ns, dev, &|l| {
            l.master.as_deref() == Some(m) || l.master.is_none() && mine(ns, m)
        }),
        Op::LinkSetMaster { ns, dev, master: None } => {
            harmless(ns, dev, &|l| l.master.as_deref().is_none_or(|m| mine(ns, m)))
        }
        Op::AddrDel { ns, dev, cidr } => {
            if link_goes(ns, dev) || owned.has_change(|c| op.cancels(c)) {
                return Ok(());
            }
            not_ours(format!("address {cidr} on {dev} in {}", place(ns)))
        }
        Op::RouteDel { ns, dest, .. } => {
            if owned.in_owned_ns(ns.as_deref()) || owned.has_change(|c| op.cancels(c)) {
                return Ok(());
            }
            let d = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
            not_ours(format!("route {d} in {}", place(ns)))
        }
        Op::IptDelete { ns, .. } => {
            if owned.in_owned_ns(ns.as_deref()) || owned.has_change(|c| op.cancels(c)) {
                return Ok(());
            }
            not_ours(format!("iptables rule in {}", place(ns)))
        }
        // Rules carry no owner tag: only one the lab added, named exactly, may go.
        Op::RuleDel { ns, rule } => {
            if owned.in_owned_ns(ns.as_deref()) || owned.has_change(|c| op.cancels(c)) {
                return Ok(());
            }
            not_ours(format!("rule `{}` in {}", crate::net::rule::rule_words(rule), place(ns)))
        }
        // Settings teardown does not undo: only on links the lab made, which take them along.
        Op::BridgeSet { ns, name: dev, .. }
        | Op::BridgeVlanAdd { ns, port: dev, .. }
        | Op::BridgeVlanDel { ns, port: dev, .. }
        | Op::WireguardSet { ns, dev, .. } => {
            if link_goes(ns, dev) {
                return Ok(());
            }
            if world.link(ns.as_deref(), dev)?.is_none() {
                return Err(no_link(dev, ns.as_deref()));
            }
            not_ours(format!("link {dev} in {}", place(ns)))
        }
        // Creating: a clash is the kernel's EEXIST (a link's name, an address, a route, a
        // rule); a sysctl is claimed (sysctl_claims), so another lab's value is refused there.
        Op::BridgeAdd { .. }
        | Op::VethAdd { .. }
        | Op::LinkAdd { .. }
        | Op::AddrAdd { .. }
        | Op::RouteAdd { .. }
        | Op::RuleAdd { .. }
        | Op::SysctlSet { .. }
        | Op::IptAppend { .. } => Ok(()),
        // The root qdisc: teardown puts the old one back (the session refuses a qdisc it
        // could not rebuild).
        Op::TcSet { .. } => Ok(()),
        // An executor's own write, put back right after the Op it serves.
        Op::SysctlTemp { .. } => Ok(()),
        // Teardown's, after `Owned::is_mine` checked every link in the group; and journal
        // bookkeeping that changes nothing.
        Op::LinkGroupDel { .. } | Op::NetnsForget { .. } => Ok(()),
    }
}
