//! The ownership rules (README, "Ownership is checked for every change"): which Ops a lab may
//! apply to what it did not create. One decision for both executors: `nslab run` asks the
//! kernel about the objects involved, `nslab plan` asks its model, and both refuse with the
//! same words.

use crate::net::error::place;
use crate::net::info::LinkInfo;
use crate::net::refusal::no_link;
use crate::net::{NetError, NetResult, Op};

use super::teardown::Owned;

/// What the ownership check needs to know about the world as it is now.
pub trait World {
    fn netns_exists(&self, name: &str) -> bool;
    /// The link `dev` in `ns`, or None; an error when the netns itself is missing.
    fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>>;
}

/// Refuses an Op that would delete or change something lab `lab` did not create (DESIGN §5).
/// Creating is checked by the kernel (EEXIST), except for a netns, checked here *before* the
/// Op is journaled: a `kill -9` between journaling and the kernel's refusal would otherwise
/// leave a journal entry claiming someone else's netns. Asks `world` only about Ops on
/// objects the lab does not own.
pub fn check(lab: &str, owned: &Owned, op: &Op, world: &dyn World) -> NetResult<()> {
    let not_ours = |what: String| {
        Err(NetError::new(format!("{what} was not created by lab {lab}"))
            .with_errno(libc::EPERM)
            .with_help(format!(
                "nslab only removes or changes what its lab created; do it by hand if you mean it: `{}`",
                op.command()
            )))
    };
    let place = |ns: &Option<String>| place(ns.as_deref());
    match op {
        Op::NetnsAdd { name } if world.netns_exists(name) => {
            Err(crate::net::refusal::netns_exists(name))
        }
        Op::NetnsDel { name } if !owned.netns.contains(name) => {
            if !world.netns_exists(name) {
                return Err(crate::net::refusal::no_netns(name).with_help(
                    "netns::list() shows the namespaces there are; there is nothing to delete",
                ));
            }
            not_ours(format!("netns {name}"))
        }
        Op::LinkDel { ns, dev } | Op::LinkSetNetns { ns, dev, .. }
            if !owned.link_goes(ns.as_deref(), dev) =>
        {
            // Report a missing link as missing, not as foreign.
            if world.link(ns.as_deref(), dev)?.is_none() {
                return Err(no_link(dev, ns.as_deref()));
            }
            not_ours(format!("link {dev} in {}", place(ns)))
        }
        // Up/down and enslaving are not undone by teardown, so on a foreign link they are
        // allowed only when they change nothing — except enslaving it to the lab's own
        // bridge, which deleting the bridge undoes.
        Op::LinkUp { ns, dev } | Op::LinkDown { ns, dev } | Op::LinkSetMaster { ns, dev, .. }
            if !owned.link_goes(ns.as_deref(), dev) =>
        {
            let Some(link) = world.link(ns.as_deref(), dev)? else {
                return Ok(()); // the executor's own "no link" error says it best
            };
            // `dev` was another name (an altname) of one of the lab's links.
            if owned.link_goes(ns.as_deref(), &link.name) {
                return Ok(());
            }
            let mine = |m: &str| owned.has_link(ns.as_deref(), m);
            let allowed = match op {
                Op::LinkUp { .. } => link.state == "up",
                Op::LinkDown { .. } => link.state == "down",
                Op::LinkSetMaster { master: Some(m), .. } => {
                    link.master.as_deref() == Some(m) || link.master.is_none() && mine(m)
                }
                _ => link.master.as_deref().is_none_or(mine),
            };
            if allowed { Ok(()) } else { not_ours(format!("link {dev} in {}", place(ns))) }
        }
        Op::AddrDel { ns, dev, cidr } if !owned.link_goes(ns.as_deref(), dev) => {
            let ours = owned.has_change(|c| {
                matches!(c, Op::AddrAdd { ns: n, dev: d, cidr: x } if n == ns && d == dev && x == cidr)
            });
            if ours {
                Ok(())
            } else {
                not_ours(format!("address {cidr} on {dev} in {}", place(ns)))
            }
        }
        Op::RouteDel { ns, dest, .. } if !owned.in_owned_ns(ns.as_deref()) => {
            let ours = owned.has_change(|c| op.route_del_names(c));
            let d = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
            if ours { Ok(()) } else { not_ours(format!("route {d} in {}", place(ns))) }
        }
        // Rules carry no owner tag: only one the lab added, named exactly, may go.
        Op::RuleDel { ns, rule } if !owned.in_owned_ns(ns.as_deref()) => {
            let ours = owned.has_change(
                |c| matches!(c, Op::RuleAdd { ns: n, rule: r } if n == ns && r.matches(rule)),
            );
            if ours {
                Ok(())
            } else {
                not_ours(format!("rule `{}` in {}", crate::net::rule::rule_words(rule), place(ns)))
            }
        }
        Op::IptDelete { ns, table, chain, rule } if !owned.in_owned_ns(ns.as_deref()) => {
            let ours = owned.has_change(|c| {
                matches!(c, Op::IptAppend { ns: n, table: t, chain: ch, rule: r }
                    if n == ns && t == table && ch == chain && r == rule)
            });
            if ours { Ok(()) } else { not_ours(format!("iptables rule in {}", place(ns))) }
        }
        // Settings teardown does not undo: only on links the lab made, which take them along.
        Op::BridgeSet { ns, name: dev, .. }
        | Op::BridgeVlanAdd { ns, port: dev, .. }
        | Op::BridgeVlanDel { ns, port: dev, .. }
        | Op::WireguardSet { ns, dev, .. }
            if !owned.link_goes(ns.as_deref(), dev) =>
        {
            if world.link(ns.as_deref(), dev)?.is_none() {
                return Err(no_link(dev, ns.as_deref()));
            }
            not_ours(format!("link {dev} in {}", place(ns)))
        }
        _ => Ok(()),
    }
}
