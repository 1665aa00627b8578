//! Policy routing rules: `ip rule add|del`, and the priority the kernel would give a rule
//! added without one (the executor records it, see `Op::RuleAdd`).

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::rule::RuleMessage;

use super::Kernel;
use crate::net::error::{NetResult, from_nl, place};
use crate::net::refusal::{ip_rule_exists, no_ip_rule};
use crate::net::rule::{RuleInfo, RuleSpec, default_priority, rule_info, rule_message, rule_words};

impl Kernel {
    /// `ip rule add|del …` (`add` false: del).
    pub(super) fn rule(&self, ns: Option<&str>, add: bool, r: &RuleSpec) -> NetResult<()> {
        let msg = rule_message(r);
        let sock = self.sock(ns)?;
        // EXCL: an identical rule is refused (EEXIST) instead of added twice, so the lab's
        // journal never names a rule that is someone else's too.
        let res = if add {
            sock.ack(RouteNetlinkMessage::NewRule(msg), NLM_F_CREATE | NLM_F_EXCL)
        } else {
            sock.ack(RouteNetlinkMessage::DelRule(msg), 0)
        };
        res.map_err(|e| {
            from_nl(
                e,
                &format!("cannot {} rule `{}`", if add { "add" } else { "delete" }, rule_words(r)),
                |errno| match errno {
                    libc::EEXIST => Some(ip_rule_exists(ns, r)),
                    libc::ENOENT => Some(no_ip_rule(ns, r)),
                    _ => None,
                },
            )
        })
    }

    /// The rules of one family (`ip rule`, `ip -6 rule`), in the kernel's order.
    pub(crate) fn rules(&self, ns: Option<&str>) -> NetResult<Vec<RuleInfo>> {
        let sock = self.sock(ns)?;
        let mut out = Vec::new();
        for v6 in [false, true] {
            let mut req = RuleMessage::default();
            req.header.family = if v6 {
                rtnetlink::packet_route::AddressFamily::Inet6
            } else {
                rtnetlink::packet_route::AddressFamily::Inet
            };
            let msgs = sock.dump(RouteNetlinkMessage::GetRule(req)).map_err(|e| {
                from_nl(e, &format!("cannot list rules in {}", place(ns)), |_| None)
            })?;
            out.extend(msgs.iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(m) => rule_info(m),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// The priority the kernel would give `r` if added now without one.
    pub(crate) fn next_rule_priority(&self, ns: Option<&str>, r: &RuleSpec) -> NetResult<u32> {
        let fam = if r.v6 { "inet6" } else { "inet" };
        let prios: Vec<u32> =
            self.rules(ns)?.iter().filter(|i| i.family == fam).map(|i| i.priority).collect();
        Ok(default_priority(&prios))
    }
}
