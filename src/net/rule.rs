//! Policy routing rules (`ip rule`): which table a packet is looked up in, chosen by its
//! source, destination, in/out link or firewall mark. Plain data ([`RuleSpec`]), the `ip rule`
//! words and the rtnetlink messages. Knows nothing of Rhai.
//!
//! Rules carry no comment or owner tag, so a lab records each rule exactly — always with its
//! priority, filled in before the rule is journaled when the recipe gave none — and deletes
//! with every field named: the kernel's fib_nl_delrule matches all fields the request
//! carries, so an equal rule at another priority, or one with one more selector, survives.
//! A rule that outlives the lab (outside its namespaces) also carries nslab's protocol
//! (`protocol 110`, see `routing::PROTO_NSLAB`), which the delete names too: `rule_find`
//! skips a rule of another protocol (`rule->proto && r->proto != rule->proto`), so a journal
//! line cannot take the admin's rule.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};
use super::op::q;
use super::routing::table_name;

/// One rule: its selectors, the table it sends matching packets to, and its priority.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct RuleSpec {
    pub(crate) v6: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) oif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fwmark: Option<u32>,
    /// With `fwmark`: which bits count (None: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fwmask: Option<u32>,
    pub(crate) table: u32,
    /// None only until the executor fills it in (the kernel's choice, made explicit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) priority: Option<u32>,
    /// `protocol N`: `PROTO_NSLAB` on a rule that outlives the lab (set by the executors,
    /// never by a recipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<u8>,
}

impl RuleSpec {
    /// The selectors agree (what `rule::del` without a priority means by "this rule").
    pub(crate) fn same_selectors(&self, o: &RuleSpec) -> bool {
        let bare = |r: &RuleSpec| RuleSpec { priority: None, protocol: None, ..r.clone() };
        bare(self) == bare(o)
    }

    /// `o` (a rule to delete, maybe without priority or protocol) names this rule.
    pub(crate) fn matches(&self, o: &RuleSpec) -> bool {
        self.same_selectors(o)
            && o.priority.is_none_or(|p| self.priority == Some(p))
            && o.protocol.is_none_or(|p| self.protocol == Some(p))
    }
}

/// Checks a rule before it reaches the kernel. A rule with no selector would match every
/// packet (`ip rule add table 100` sends all traffic to table 100, above main): refused,
/// since it is nearly always a mistake in a recipe; `from: "0.0.0.0/0"` says it on purpose.
pub(crate) fn check_rule(r: &RuleSpec) -> NetResult<()> {
    let bad = |m: String, h: &str| Err(NetError::new(m).with_errno(libc::EINVAL).with_help(h));
    if r.from.is_none()
        && r.to.is_none()
        && r.iif.is_none()
        && r.oif.is_none()
        && r.fwmark.is_none()
    {
        return bad(
            "a rule needs a selector: from, to, iif, oif or fwmark".into(),
            "e.g. rule::add(\"r\", #{from: \"10.2.0.2\", table: 102}); #{from: \"0.0.0.0/0\"} matches everything on purpose",
        );
    }
    if r.table == 0 {
        return bad(
            "a rule's table cannot be 0".into(),
            "table 0 is \"unspecified\" to the kernel; use 1..4294967295, e.g. #{table: 100}",
        );
    }
    for (k, n) in [("from", r.from), ("to", r.to)] {
        if let Some(n) = n
            && n.addr().is_ipv6() != r.v6
        {
            return bad(
                format!("`{k}` {n} is not of the rule's family"),
                "`from` and `to` of one rule are both IPv4 or both IPv6",
            );
        }
    }
    if r.fwmask.is_some() && r.fwmark.is_none() {
        return bad("a mask needs a mark".into(), "write fwmark as \"0x10/0xff\"");
    }
    Ok(())
}

/// `ip rule add|del` after the verb, every recipe word quoted for the shell (`-6` goes
/// before `rule`: see [`rule_command`]).
pub(crate) fn rule_words(r: &RuleSpec) -> String {
    let mut s = String::new();
    let mut word = |k: &str, v: String| {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{k} {v}");
    };
    if let Some(f) = r.from {
        word("from", q(&f.to_string()));
    }
    if let Some(t) = r.to {
        word("to", q(&t.to_string()));
    }
    if let Some(i) = &r.iif {
        word("iif", q(i));
    }
    if let Some(o) = &r.oif {
        word("oif", q(o));
    }
    if let Some(m) = r.fwmark {
        match r.fwmask {
            Some(mask) => word("fwmark", format!("{m:#x}/{mask:#x}")),
            None => word("fwmark", format!("{m:#x}")),
        }
    }
    word("table", table_name(r.table));
    if let Some(p) = r.priority {
        word("priority", p.to_string());
    }
    if let Some(p) = r.protocol {
        word("protocol", p.to_string());
    }
    s
}

/// The whole `ip rule` command.
pub(crate) fn rule_command(ns: Option<&str>, add: bool, r: &RuleSpec) -> String {
    let n = match ns {
        Some(ns) => format!("ip -n {} ", q(ns)),
        None => "ip ".into(),
    };
    let fam = if r.v6 { "-6 " } else { "" };
    let verb = if add { "add" } else { "del" };
    format!("{n}{fam}rule {verb} {}", rule_words(r))
}

/// The RTM_NEWRULE / RTM_DELRULE for a rule.
pub(crate) fn rule_message(r: &RuleSpec) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if r.v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    m.header.action = RuleAction::ToTable;
    m.header.table = if r.table < 256 { r.table as u8 } else { 0 };
    if let Some(f) = r.from {
        m.header.src_len = f.prefix_len();
        m.attributes.push(RuleAttribute::Source(f.network()));
    }
    if let Some(t) = r.to {
        m.header.dst_len = t.prefix_len();
        m.attributes.push(RuleAttribute::Destination(t.network()));
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some(mark) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
    }
    if let Some(mask) = r.fwmask {
        m.attributes.push(RuleAttribute::FwMask(mask));
    }
    m.attributes.push(RuleAttribute::Table(r.table));
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(p) = r.protocol {
        m.attributes.push(RuleAttribute::Protocol(p.into()));
    }
    m
}

/// A rule as `rule::list` and `nslab show` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RuleInfo {
    pub(crate) priority: u32,
    /// "inet" or "inet6".
    pub(crate) family: String,
    /// "all" when the rule has no source selector, as `ip rule` prints it.
    pub(crate) from: String,
    pub(crate) to: Option<String>,
    pub(crate) iif: Option<String>,
    pub(crate) oif: Option<String>,
    pub(crate) fwmark: Option<u32>,
    pub(crate) fwmask: Option<u32>,
    pub(crate) table: u32,
    /// "lookup" for a table lookup; "blackhole", "unreachable", "prohibit", "goto", "nop".
    pub(crate) action: String,
}

impl RuleInfo {
    /// As `ip rule` prints it: `PRIORITY: from X [to Y] [iif I] [oif O] [fwmark M] lookup T`.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{}: from {}", self.priority, self.from);
        if let Some(t) = &self.to {
            let _ = write!(s, " to {t}");
        }
        if let Some(i) = &self.iif {
            let _ = write!(s, " iif {i}");
        }
        if let Some(o) = &self.oif {
            let _ = write!(s, " oif {o}");
        }
        if let Some(m) = self.fwmark {
            let _ = write!(s, " fwmark {m:#x}");
            if let Some(mask) = self.fwmask {
                let _ = write!(s, "/{mask:#x}");
            }
        }
        if self.action == "lookup" {
            let _ = write!(s, " lookup {}", table_name(self.table));
        } else {
            let _ = write!(s, " {}", self.action);
        }
        s
    }
}

/// Describes one dumped rule; None for another family.
pub(crate) fn rule_info(m: &RuleMessage) -> Option<RuleInfo> {
    let v6 = match m.header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut r = RuleInfo {
        priority: 0,
        family: if v6 { "inet6".into() } else { "inet".into() },
        from: "all".into(),
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        fwmask: None,
        table: u32::from(m.header.table),
        action: match m.header.action {
            RuleAction::ToTable => "lookup".into(),
            RuleAction::Goto => "goto".into(),
            RuleAction::Nop => "nop".into(),
            RuleAction::Blackhole => "blackhole".into(),
            RuleAction::Unreachable => "unreachable".into(),
            RuleAction::Prohibit => "prohibit".into(),
            a => format!("{a:?}").to_lowercase(),
        },
    };
    let net = |ip: &IpAddr, len: u8| format!("{ip}/{len}");
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => r.priority = *p,
            RuleAttribute::Source(ip) => r.from = net(ip, m.header.src_len),
            RuleAttribute::Destination(ip) => r.to = Some(net(ip, m.header.dst_len)),
            RuleAttribute::Iifname(i) => r.iif = Some(i.clone()),
            RuleAttribute::Oifname(o) => r.oif = Some(o.clone()),
            RuleAttribute::FwMark(f) => r.fwmark = Some(*f),
            RuleAttribute::FwMask(f) => r.fwmask = Some(*f),
            RuleAttribute::Table(t) => r.table = *t,
            _ => {}
        }
    }
    // The kernel reports the mask it filled in (all ones for a bare mark).
    if r.fwmark.is_none() || r.fwmask == Some(u32::MAX) {
        r.fwmask = None;
    }
    Some(r)
}

/// The priority the kernel gives a rule added without one (fib_default_rule_pref): one
/// below the second rule's, i.e. just above `main` (32766) in a fresh netns; 0 when there is
/// no such rule. `prios` are the priorities of the family's rules, in the kernel's order.
pub(crate) fn default_priority(prios: &[u32]) -> u32 {
    match prios.get(1) {
        Some(&p) if p > 0 => p - 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::{Emitable, Parseable};

    use super::*;

    fn spec() -> RuleSpec {
        RuleSpec {
            from: Some("10.2.0.2/32".parse().unwrap()),
            table: 102,
            priority: Some(100),
            ..Default::default()
        }
    }

    #[test]
    fn rules_round_trip_through_the_kernels_bytes() {
        let mut r = spec();
        r.iif = Some("eth0".into());
        r.fwmark = Some(0x10);
        r.fwmask = Some(0xff);
        r.table = 1000;
        let m = rule_message(&r);
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        let back = RuleMessage::parse(&buf).unwrap();
        assert_eq!(back.header.table, 0, "a table over 255 goes in the attribute only");
        let info = rule_info(&back).unwrap();
        assert_eq!(info.from, "10.2.0.2/32");
        assert_eq!((info.table, info.priority), (1000, 100));
        assert_eq!((info.fwmark, info.fwmask), (Some(0x10), Some(0xff)));
        assert_eq!(info.iif.as_deref(), Some("eth0"));
        assert_eq!(info.action, "lookup");
    }

    #[test]
    fn commands_read_like_ip_rule() {
        assert_eq!(
            rule_command(Some("r"), true, &spec()),
            "ip -n r rule add from 10.2.0.2/32 table 102 priority 100"
        );
        let r = RuleSpec {
            v6: true,
            fwmark: Some(1),
            table: 254,
            oif: Some("a b".into()),
            ..Default::default()
        };
        assert_eq!(rule_command(None, false, &r), "ip -6 rule del oif 'a b' fwmark 0x1 table main");
    }

    #[test]
    fn bad_rules_are_refused() {
        let none = RuleSpec { table: 100, ..Default::default() };
        assert!(check_rule(&none).unwrap_err().message.contains("needs a selector"));
        let zero = RuleSpec { table: 0, ..spec() };
        assert_eq!(check_rule(&zero).unwrap_err().message, "a rule's table cannot be 0");
        let mixed = RuleSpec { v6: true, ..spec() };
        assert!(check_rule(&mixed).is_err());
        assert!(check_rule(&spec()).is_ok());
    }

    #[test]
    fn deletes_name_exactly_one_rule() {
        let ours = spec();
        let asked = RuleSpec { priority: None, ..spec() };
        assert!(ours.matches(&asked));
        assert!(!ours.matches(&RuleSpec { priority: Some(5), ..spec() }));
        assert!(!ours.matches(&RuleSpec { table: 5, ..asked }));
        // nslab's mark: a delete without it still names the rule; one with another does not.
        let marked = RuleSpec { protocol: Some(110), ..spec() };
        assert!(marked.matches(&spec()));
        assert!(!spec().matches(&marked), "a delete naming the mark cannot take an unmarked rule");
        assert!(rule_words(&marked).ends_with(" protocol 110"), "{}", rule_words(&marked));
        assert!(rule_message(&marked).attributes.contains(&RuleAttribute::Protocol(110.into())));
    }

    #[test]
    fn default_priority_is_the_kernels() {
        assert_eq!(default_priority(&[0, 32766, 32767]), 32765);
        assert_eq!(default_priority(&[0, 100, 32766, 32767]), 99);
        assert_eq!(default_priority(&[0]), 0);
    }
}
