//! The plan's model as a graph (`nslab plan RECIPE --graph`): what the recipe would build,
//! drawn without root and without touching anything.

use super::Plan;
use super::model::Model;
use crate::graph::{Link, Nat, Space, Topology};
use crate::net::nat_syntax::save_line;

impl Plan {
    /// What the recipe built so far, as a topology. The sandbox's own uplink and `internet`
    /// (known to a sandboxed plan, not built by it) are drawn too, without a lab.
    pub fn topology(&self) -> Topology {
        model_topology(&self.model.borrow(), &self.lab)
    }
}

fn model_topology(m: &Model, lab: &str) -> Topology {
    let spaces = m
        .spaces
        .iter()
        .map(|(ns, s)| {
            let links = m
                .links
                .iter()
                .filter(|l| &l.ns == ns && l.kind != "loopback")
                .map(|l| Link {
                    name: l.name.clone(),
                    kind: l.kind.to_string(),
                    up: l.up,
                    master: l.master.clone(),
                    peer: l
                        .peer
                        .and_then(|p| m.links.get(p))
                        .map(|p| (p.ns.clone(), p.name.clone())),
                    addrs: s
                        .addrs
                        .iter()
                        .filter(|(dev, _)| *dev == l.name)
                        .map(|(_, a)| a.to_string())
                        .collect(),
                    owner: l.tagged.then(|| lab.to_string()),
                })
                .collect();
            Space {
                name: ns.clone().unwrap_or_else(|| "host".into()),
                netns: ns.clone(),
                // Every netns in the model but the sandbox's `internet` is the recipe's.
                lab: ns
                    .as_ref()
                    .filter(|n| {
                        *n != "internet"
                            || m.links.iter().any(|l| l.ns.as_deref() == Some(n) && l.tagged)
                    })
                    .map(|_| lab.to_string()),
                links,
                uplink: s.routes.iter().find(|r| r.dest.is_none() && !r.v6).map(|r| r.dev.clone()),
                nat: s
                    .rules
                    .iter()
                    .filter(|(t, ..)| t == "nat")
                    .filter_map(|(_, chain, rule)| Nat::parse(&save_line(chain, rule)))
                    .collect(),
            }
        })
        .collect();
    let mut t = Topology { title: format!("plan of lab {lab}"), spaces };
    t.ensure_uplinks();
    t
}
