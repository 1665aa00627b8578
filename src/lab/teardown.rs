//! Undoing a lab: the journal read backwards, tolerant like CNI's DEL (objects already gone
//! are fine, every error is collected, it runs to the end), and synchronous: the lab's links
//! are deleted explicitly, by link group, before its namespaces are unmounted (the kernel
//! destroys an unmounted netns later, asynchronously).

use std::collections::{BTreeSet, HashMap};

use crate::net::{Kernel, NetError, Ns, Op};

use super::sysctl_claims;

/// Where each link a lab created ended up, and which namespaces it owns.
#[derive(Debug, Default, Clone)]
pub struct Owned {
    pub netns: BTreeSet<String>,
    /// (netns, link name) of every link the lab created and still has; a veth contributes
    /// both ends. `pair` ties veth ends together.
    pub links: Vec<OwnedLink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLink {
    pub ns: Ns,
    pub name: String,
    pub pair: usize,
}

impl Owned {
    pub fn from_ops<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Owned {
        let mut o = Owned::default();
        for op in ops {
            o.note(op);
        }
        o
    }

    /// Updates the ownership picture after `op` was applied.
    pub fn note(&mut self, op: &Op) {
        let pair = self.links.len();
        match op {
            Op::NetnsAdd { name } => {
                self.netns.insert(name.clone());
            }
            Op::NetnsDel { name } => {
                self.netns.remove(name);
                self.links.retain(|l| l.ns.as_deref() != Some(name));
            }
            Op::BridgeAdd { ns, name } => self.links.push(OwnedLink { ns: ns.clone(), name: name.clone(), pair }),
            Op::VethAdd { ns, name, peer, peer_ns } => {
                self.links.push(OwnedLink { ns: ns.clone(), name: name.clone(), pair });
                self.links.push(OwnedLink { ns: peer_ns.clone().or(ns.clone()), name: peer.clone(), pair });
            }
            Op::LinkSetNetns { ns, dev, to } => {
                if let Some(l) = self.links.iter_mut().find(|l| &l.ns == ns && &l.name == dev) {
                    l.ns = Some(to.clone());
                }
            }
            Op::LinkDel { ns, dev } => {
                if let Some(l) = self.links.iter().find(|l| &l.ns == ns && &l.name == dev) {
                    let pair = l.pair;
                    self.links.retain(|l| l.pair != pair);
                }
            }
            _ => {}
        }
    }

    pub fn has_link(&self, ns: Option<&str>, name: &str) -> bool {
        self.links.iter().any(|l| l.ns.as_deref() == ns && l.name == name)
    }

    /// True when an object in `ns` dies with the lab anyway (the netns is the lab's).
    pub fn in_owned_ns(&self, ns: Option<&str>) -> bool {
        ns.is_some_and(|n| self.netns.contains(n))
    }

    /// The link goes away with the lab: created by it, or inside one of its namespaces.
    pub fn link_goes(&self, ns: Option<&str>, name: &str) -> bool {
        self.in_owned_ns(ns) || self.has_link(ns, name)
    }
}

/// Undoes `ops` (the successfully applied Ops of lab `lab`, in order). Returns every error
/// met on the way; an empty list means the lab is gone.
pub fn teardown(kernel: &Kernel, lab: &str, ops: &[Op]) -> Vec<NetError> {
    let owned = Owned::from_ops(ops);
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
    for op in ops.iter().rev() {
        match op {
            Op::IptAppend { ns, table, chain, rule } if !owned.in_owned_ns(ns.as_deref()) => {
                keep(kernel.apply(&Op::IptDelete { ns: ns.clone(), table: table.clone(), chain: chain.clone(), rule: rule.clone() }));
            }
            Op::SysctlSet { ns, key, value, old } if !owned.in_owned_ns(ns.as_deref()) => {
                keep(sysctl_claims::release(lab, ns.as_deref(), key, value, old.as_deref()));
            }
            Op::AddrAdd { ns, dev, cidr } if !owned.link_goes(ns.as_deref(), dev) => {
                keep(kernel.apply(&Op::AddrDel { ns: ns.clone(), dev: dev.clone(), cidr: *cidr }));
            }
            Op::RouteAdd { ns, dest, via, dev } if !owned.in_owned_ns(ns.as_deref()) && !dev.as_deref().is_some_and(|d| owned.has_link(ns.as_deref(), d)) => {
                keep(kernel.apply(&Op::RouteDel { ns: ns.clone(), dest: *dest, via: *via, dev: dev.clone() }));
            }
            Op::LinkSetMaster { ns, dev, master: Some(m) } if !owned.link_goes(ns.as_deref(), dev) && owned.has_link(ns.as_deref(), m) => {
                // A foreign link on the lab's bridge is released when the bridge goes.
            }
            _ => {}
        }
    }

    // 2. The lab's links. Each link (or veth pair) is deleted where one end sits outside
    //    the lab's namespaces, or else where it was created; one group delete per netns.
    let group = super::journal::group_of(lab);
    let mut by_pair: HashMap<usize, Vec<&super::teardown::OwnedLink>> = HashMap::new();
    for l in &owned.links {
        by_pair.entry(l.pair).or_default().push(l);
    }
    let mut places: BTreeSet<Ns> = BTreeSet::new();
    for ends in by_pair.values() {
        let outside = ends.iter().find(|l| !owned.in_owned_ns(l.ns.as_deref()));
        places.insert(outside.unwrap_or(&ends[0]).ns.clone());
    }
    for ns in &places {
        keep(delete_links(kernel, ns.as_deref(), lab, group, &owned));
    }

    // 3. The namespaces, newest first.
    let netns: Vec<&String> = ops.iter().filter_map(|op| if let Op::NetnsAdd { name } = op { Some(name) } else { None }).collect();
    for name in netns.into_iter().rev() {
        if owned.netns.contains(name) {
            keep(kernel.apply(&Op::NetnsDel { name: name.clone() }));
        }
    }
    errors
}

/// Deletes the lab's links in `ns`: one RTM_DELLINK for the whole group when every link in
/// the group carries this lab's alias, else one by one (never a foreign link).
fn delete_links(kernel: &Kernel, ns: Option<&str>, lab: &str, group: u32, owned: &Owned) -> Result<(), NetError> {
    let alias = format!("nslab:{lab}");
    let links = match kernel.links(ns) {
        Ok(l) => l,
        Err(e) if e.is_gone() => return Ok(()),
        Err(e) => return Err(e),
    };
    let in_group: Vec<_> = links.iter().filter(|l| l.group == group).collect();
    if !in_group.is_empty() && in_group.iter().all(|l| l.alias.as_deref() == Some(alias.as_str())) {
        kernel.del_group(ns, group)?;
    }
    // Links created before tagging existed, or left after a foreign-group clash.
    let mut first_err = None;
    for l in kernel.links(ns)? {
        if owned.has_link(ns, &l.name) && l.alias.as_deref() == Some(alias.as_str()) {
            if let Err(e) = kernel.apply(&Op::LinkDel { ns: ns.map(str::to_string), dev: l.name.clone() })
                && !e.is_gone()
            {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}
