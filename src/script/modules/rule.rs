use rhai::plugin::*;

use crate::net::Op;
use crate::script::modules::route_args;
use crate::script::{RhaiResultOf, apply, check};

fn rule_op(
    ctx: &NativeCallContext,
    ns: Option<String>,
    m: &rhai::Map,
    add: bool,
) -> RhaiResultOf<()> {
    let rule = check(ctx, route_args::rule(m))?;
    apply(ctx, if add { Op::RuleAdd { ns, rule } } else { Op::RuleDel { ns, rule } })
}

#[export_module]
pub mod rule_mod {
    use super::rule_op;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, query, to_dyn};

    /// Adds a policy routing rule, like `ip rule add from … table …`: packets that match
    /// every selector given — `from` / `to` (an address or prefix), `iif` / `oif` (a link
    /// name), `fwmark` (a number or `"MARK/MASK"`) — are looked up in `table` (default main).
    /// At least one selector is needed. Without `priority`, the kernel's choice (just above
    /// the main table's rule) is made explicit and recorded, so the lab removes exactly this
    /// rule.
    ///
    /// ```rhai
    /// rule::add(#{from: "10.2.0.2", table: 102});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, rule: rhai::Map) -> RhaiResultOf<()> {
        rule_op(&ctx, None, &rule, true)
    }

    /// Adds a rule inside a netns, like `ip -n NS rule add …`.
    ///
    /// ```rhai
    /// rule::add("r", #{from: "10.2.0.0/24", table: 102, priority: 100});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, rule: rhai::Map) -> RhaiResultOf<()> {
        rule_op(&ctx, nsname(&ctx, ns)?, &rule, true)
    }

    /// Deletes a rule, like `ip rule del …`, named by its selectors and table (and its
    /// priority, if given). Only a rule this lab added may go when it lives outside the
    /// lab's namespaces.
    ///
    /// ```rhai
    /// rule::del(#{from: "10.2.0.2", table: 102});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, rule: rhai::Map) -> RhaiResultOf<()> {
        rule_op(&ctx, None, &rule, false)
    }

    /// Deletes a rule inside a netns.
    ///
    /// ```rhai
    /// rule::del("r", #{from: "10.2.0.0/24", table: 102});
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns(ctx: NativeCallContext, ns: &str, rule: rhai::Map) -> RhaiResultOf<()> {
        rule_op(&ctx, nsname(&ctx, ns)?, &rule, false)
    }

    /// The rules here, IPv4 then IPv6, like `ip rule` and `ip -6 rule`: maps `#{priority,
    /// family, from, to, iif, oif, fwmark, fwmask, table, action}`.
    ///
    /// ```rhai
    /// for r in rule::list() { print(`${r.priority}: from ${r.from} lookup ${r.table}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.rules(None)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The rules inside a netns, like `ip -n NS rule`.
    ///
    /// ```rhai
    /// let rules = rule::list("r");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.rules(ns.as_deref())).map(|v| v.iter().map(to_dyn).collect())
    }
}
