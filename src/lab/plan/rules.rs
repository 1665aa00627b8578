//! Policy routing rules in the model: `ip rule add/del` with the kernel's checks and the
//! priority it picks, and `ip rule` as it lists them.

use super::model::Model;
use crate::net::NetResult;
use crate::net::refusal::{ip_rule_exists, no_ip_rule};
use crate::net::rule::{RuleInfo, RuleSpec, default_priority, rule_info, rule_message};

/// The rules every netns starts with: (priority, table).
const BUILT_IN: [(u32, u32); 3] = [(0, 255), (32766, 254), (32767, 253)];

impl Model {
    /// The priority the kernel would give `r` if added now without one.
    pub(super) fn next_rule_priority(&self, ns: Option<&str>, r: &RuleSpec) -> NetResult<u32> {
        let mut prios: Vec<u32> = BUILT_IN.iter().map(|(p, _)| *p).collect();
        prios.extend(
            self.space(ns)?.ip_rules.iter().filter(|x| x.v6 == r.v6).filter_map(|x| x.priority),
        );
        prios.sort();
        Ok(default_priority(&prios))
    }

    pub(super) fn rule_add(&mut self, ns: Option<&str>, r: &RuleSpec) -> NetResult<()> {
        let mut r = r.clone();
        if r.priority.is_none() {
            r.priority = Some(self.next_rule_priority(ns, &r)?);
        }
        let space = self.space_mut(ns)?;
        if space.ip_rules.contains(&r) {
            return Err(ip_rule_exists(ns, &r));
        }
        // After the rules of the same or a lower priority, as the kernel inserts it.
        let at = space
            .ip_rules
            .iter()
            .position(|x| x.priority > r.priority)
            .unwrap_or(space.ip_rules.len());
        space.ip_rules.insert(at, r);
        Ok(())
    }

    pub(super) fn rule_del(&mut self, ns: Option<&str>, r: &RuleSpec) -> NetResult<()> {
        let space = self.space_mut(ns)?;
        match space.ip_rules.iter().position(|x| x.matches(r)) {
            Some(i) => {
                space.ip_rules.remove(i);
                Ok(())
            }
            None => Err(no_ip_rule(ns, r)),
        }
    }

    /// `ip rule` and `ip -6 rule`: the built-in rules and the recipe's, in order.
    pub(super) fn rules_of(&self, ns: Option<&str>) -> NetResult<Vec<RuleInfo>> {
        let space = self.space(ns)?;
        let mut out = Vec::new();
        for v6 in [false, true] {
            let mut all: Vec<RuleInfo> = space
                .ip_rules
                .iter()
                .filter(|r| r.v6 == v6)
                .filter_map(|r| rule_info(&rule_message(r)))
                .collect();
            for (p, t) in BUILT_IN {
                let mut b = RuleInfo {
                    priority: p,
                    family: if v6 { "inet6" } else { "inet" }.into(),
                    from: "all".into(),
                    to: None,
                    iif: None,
                    oif: None,
                    fwmark: None,
                    fwmask: None,
                    table: t,
                    action: "lookup".into(),
                };
                b.priority = p;
                all.push(b);
            }
            all.sort_by_key(|r| r.priority);
            out.extend(all);
        }
        Ok(out)
    }
}
