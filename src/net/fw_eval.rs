//! What a chain of filter rules does with one packet, for the plan's probe model: iptables
//! rule words as `fw::` builds them, evaluated against a packet whose fields the model may
//! know only in part (a client's port is one of the kernel's ephemeral ports). Pure.
//!
//! The answer is a verdict only when it is certain: a rule whose match the model cannot
//! evaluate (a word it does not know, a port range that covers part of the ephemeral
//! range, an unknown source address) makes the chain's answer unknown, unless the rule
//! could not change it (its verdict is the one the packet gets anyway).

use std::net::IpAddr;

use ipnet::IpNet;

use super::fw::Verdict;

/// Whether a match holds: yes, no, or the model cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    Yes,
    No,
    Unknown,
}

/// A packet as one filter chain sees it. Ports are the range of values the packet may
/// carry (a client's source port is one of the ephemeral ports); None for ICMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FwPacket {
    /// None: the model does not know it (an ICMP error's source after NAT).
    pub(crate) src: Option<IpAddr>,
    pub(crate) dst: Option<IpAddr>,
    /// "tcp", "udp" or "icmp".
    pub(crate) proto: &'static str,
    pub(crate) sport: Option<(u16, u16)>,
    pub(crate) dport: Option<(u16, u16)>,
    /// The interfaces iptables' `-i` and `-o` compare (None: the chain has none).
    pub(crate) iif: Option<String>,
    pub(crate) oif: Option<String>,
    /// conntrack state, lower case: "new", "established" or "related".
    pub(crate) state: &'static str,
}

/// The source ports Linux picks for a client (`net.ipv4.ip_local_port_range` by default).
pub(crate) const EPHEMERAL: (u16, u16) = (32768, 60999);

/// The ports a source NAT may give a client port of `EPHEMERAL` (it keeps the port when it
/// is free, else picks one among the unprivileged ports).
pub(crate) const NATTED: (u16, u16) = (1024, 65535);

fn ports(word: &str) -> Option<(u16, u16)> {
    let (a, b) = word.split_once(':').unwrap_or((word, word));
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Whether a packet port among `have` falls in the rule's `want`.
fn in_range(have: Option<(u16, u16)>, want: &str) -> Tri {
    let (Some((a, b)), Some((lo, hi))) = (have, ports(want)) else {
        return if have.is_none() { Tri::No } else { Tri::Unknown };
    };
    if lo <= a && b <= hi {
        Tri::Yes
    } else if b < lo || a > hi {
        Tri::No
    } else {
        Tri::Unknown
    }
}

/// `-i veth+` is every name that starts with `veth`; a chain without the interface (no
/// `-i` in OUTPUT) never matches one.
fn ifname(have: Option<&str>, want: &str) -> Tri {
    let Some(have) = have else { return Tri::No };
    let hit = match want.strip_suffix('+') {
        Some(prefix) => have.starts_with(prefix),
        None => have == want,
    };
    if hit { Tri::Yes } else { Tri::No }
}

fn addr(have: Option<IpAddr>, want: &str) -> Tri {
    let net = want.parse::<IpNet>().ok().or_else(|| want.parse::<IpAddr>().ok().map(IpNet::from));
    match (have, net) {
        (Some(ip), Some(n)) => {
            if n.contains(&ip) {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        _ => Tri::Unknown,
    }
}

/// Whether rule words match `pkt`, and the rule's verdict (None: a target the model does not
/// know, such as a jump to another chain).
pub(crate) fn rule_test(rule: &[String], pkt: &FwPacket) -> (Tri, Option<Verdict>) {
    let mut all = Tri::Yes;
    let mut verdict = None;
    let mut neg = false;
    let mut i = 0;
    let mut fold = |t: Tri, neg: bool| {
        let t = match (t, neg) {
            (Tri::Yes, true) => Tri::No,
            (Tri::No, true) => Tri::Yes,
            (t, _) => t,
        };
        all = match (all, t) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::Yes,
        };
    };
    while i < rule.len() {
        let w = rule[i].as_str();
        let arg = rule.get(i + 1).map(String::as_str).unwrap_or("");
        let t = match w {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-s" => addr(pkt.src, arg),
            "-d" => addr(pkt.dst, arg),
            "-i" => ifname(pkt.iif.as_deref(), arg),
            "-o" => ifname(pkt.oif.as_deref(), arg),
            "-p" if arg == "all" => Tri::Yes,
            "-p" => {
                if arg == pkt.proto {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            "--sport" => in_range(pkt.sport, arg),
            "--dport" => in_range(pkt.dport, arg),
            "--ctstate" => {
                if arg.split(',').any(|s| s.eq_ignore_ascii_case(pkt.state)) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            // The match modules `fw::` loads; their options are read above.
            "-m" if matches!(arg, "conntrack" | "comment" | "tcp" | "udp" | "icmp") => Tri::Yes,
            "--comment" => Tri::Yes,
            "-j" => {
                verdict = match arg {
                    "ACCEPT" => Some(Verdict::Accept),
                    "DROP" => Some(Verdict::Drop),
                    "REJECT" => Some(Verdict::Reject),
                    _ => None,
                };
                Tri::Yes
            }
            // REJECT's default answer is the one the model follows; others are not modelled.
            "--reject-with" if arg == "icmp-port-unreachable" => Tri::Yes,
            _ => {
                // A word the model does not know: it cannot tell what the rest means either.
                fold(Tri::Unknown, false);
                return (all, None);
            }
        };
        fold(t, neg);
        neg = false;
        i += 2;
    }
    (all, verdict)
}

/// What a chain (its rules in order, then the policy ACCEPT: `fw::` never changes a policy)
/// does with `pkt`. None when the answer depends on a rule the model cannot evaluate.
pub(crate) fn chain_verdict<'a>(
    rules: impl DoubleEndedIterator<Item = &'a [String]>,
    pkt: &FwPacket,
) -> Option<Verdict> {
    // From the last rule back: each rule either decides (it matches), passes the packet on
    // (it does not), or leaves the answer unknown unless it would decide the same anyway.
    let mut out = Some(Verdict::Accept);
    for rule in rules.rev() {
        out = match rule_test(rule, pkt) {
            (Tri::No, _) => out,
            (Tri::Yes, v) => v,
            (Tri::Unknown, v) if v.is_some() && v == out => out,
            (Tri::Unknown, _) => None,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fw::{Match, Ports, filter_rule};

    fn tcp(dport: u16, state: &'static str) -> FwPacket {
        FwPacket {
            src: Some("10.1.0.2".parse().unwrap()),
            dst: Some("10.2.0.2".parse().unwrap()),
            proto: "tcp",
            sport: Some(EPHEMERAL),
            dport: Some((dport, dport)),
            iif: Some("wan".into()),
            oif: Some("lan".into()),
            state,
        }
    }

    fn rule(m: Match, v: Verdict) -> Vec<String> {
        filter_rule(&m, v, "t").unwrap()
    }

    fn verdict(rules: &[Vec<String>], pkt: &FwPacket) -> Option<Verdict> {
        chain_verdict(rules.iter().map(Vec::as_slice), pkt)
    }

    #[test]
    fn rules_decide_in_order_and_the_policy_accepts() {
        let allow_web = rule(
            Match { proto: Some("tcp".into()), dport: Some(Ports(80, 80)), ..Match::default() },
            Verdict::Accept,
        );
        let drop_all = rule(Match::default(), Verdict::Drop);
        let rules = [allow_web.clone(), drop_all.clone()];
        assert_eq!(verdict(&rules, &tcp(80, "new")), Some(Verdict::Accept));
        assert_eq!(verdict(&rules, &tcp(22, "new")), Some(Verdict::Drop));
        // The other order: the drop comes first.
        assert_eq!(verdict(&[drop_all, allow_web], &tcp(80, "new")), Some(Verdict::Drop));
        assert_eq!(verdict(&[], &tcp(80, "new")), Some(Verdict::Accept));
    }

    #[test]
    fn matches_on_addresses_interfaces_protocols_and_states() {
        let p = tcp(80, "new");
        let t = |m: Match| rule_test(&rule(m, Verdict::Drop), &p).0;
        assert_eq!(
            t(Match { src: Some("10.1.0.0/24".parse().unwrap()), ..Match::default() }),
            Tri::Yes
        );
        assert_eq!(
            t(Match { dst: Some("10.1.0.0/24".parse().unwrap()), ..Match::default() }),
            Tri::No
        );
        assert_eq!(t(Match { iif: Some("wan".into()), ..Match::default() }), Tri::Yes);
        assert_eq!(t(Match { oif: Some("wan".into()), ..Match::default() }), Tri::No);
        assert_eq!(t(Match { iif: Some("wa+".into()), ..Match::default() }), Tri::Yes);
        assert_eq!(t(Match { proto: Some("icmp".into()), ..Match::default() }), Tri::No);
        assert_eq!(t(Match { proto: Some("all".into()), ..Match::default() }), Tri::Yes);
        let udp80 =
            Match { proto: Some("udp".into()), dport: Some(Ports(80, 80)), ..Match::default() };
        assert_eq!(t(udp80), Tri::No);
        assert_eq!(t(Match { state: vec!["new".into()], ..Match::default() }), Tri::Yes);
        let est = Match { state: vec!["established".into(), "related".into()], ..Match::default() };
        assert_eq!(t(est.clone()), Tri::No);
        assert_eq!(rule_test(&rule(est, Verdict::Accept), &tcp(80, "related")).0, Tri::Yes);
        // OUTPUT has no incoming interface: `-i` never matches there.
        let out = FwPacket { iif: None, ..p.clone() };
        let r = rule(Match { iif: Some("wan".into()), ..Match::default() }, Verdict::Drop);
        assert_eq!(rule_test(&r, &out).0, Tri::No);
        // An ICMP error whose source the model does not know.
        let err = FwPacket { src: None, proto: "icmp", sport: None, dport: None, ..p };
        let r = rule(
            Match { src: Some("10.9.0.1/32".parse().unwrap()), ..Match::default() },
            Verdict::Drop,
        );
        assert_eq!(rule_test(&r, &err).0, Tri::Unknown);
        let r = rule(
            Match {
                src: Some("10.9.0.1/32".parse().unwrap()),
                proto: Some("tcp".into()),
                ..Match::default()
            },
            Verdict::Drop,
        );
        assert_eq!(rule_test(&r, &err).0, Tri::No, "a known mismatch settles it");
    }

    #[test]
    fn a_client_port_is_any_ephemeral_port() {
        let p = tcp(80, "new");
        let sport = |a, b| {
            rule(
                Match { proto: Some("tcp".into()), sport: Some(Ports(a, b)), ..Match::default() },
                Verdict::Drop,
            )
        };
        assert_eq!(rule_test(&sport(1024, 65535), &p).0, Tri::Yes);
        assert_eq!(rule_test(&sport(1, 1023), &p).0, Tri::No);
        assert_eq!(rule_test(&sport(40000, 40000), &p).0, Tri::Unknown);
        // Unknown, but harmless when it would decide what the chain decides anyway.
        let drop_all = rule(Match::default(), Verdict::Drop);
        assert_eq!(verdict(&[sport(40000, 40000), drop_all], &p), Some(Verdict::Drop));
        assert_eq!(verdict(&[sport(40000, 40000)], &p), None);
        let accept_some = rule(
            Match {
                proto: Some("tcp".into()),
                sport: Some(Ports(40000, 40000)),
                ..Match::default()
            },
            Verdict::Accept,
        );
        assert_eq!(verdict(&[accept_some], &p), Some(Verdict::Accept));
    }

    #[test]
    fn words_the_model_does_not_know_make_the_answer_unknown() {
        let p = tcp(80, "new");
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(rule_test(&w("-m addrtype --dst-type LOCAL -j DROP"), &p).0, Tri::Unknown);
        assert_eq!(verdict(&[w("-m limit --limit 1/s -j DROP")], &p), None);
        assert_eq!(verdict(&[w("-p udp -m limit --limit 1/s -j DROP")], &p), Some(Verdict::Accept));
        assert_eq!(verdict(&[w("-j LOG")], &p), None);
        assert_eq!(verdict(&[w("-p tcp -j REJECT --reject-with tcp-reset")], &p), None);
        assert_eq!(
            verdict(&[w("-p tcp -j REJECT --reject-with icmp-port-unreachable")], &p),
            Some(Verdict::Reject)
        );
        assert_eq!(verdict(&[w("! -s 10.1.0.0/24 -j DROP")], &p), Some(Verdict::Accept));
        assert_eq!(verdict(&[w("! -s 10.9.0.0/24 -j DROP")], &p), Some(Verdict::Drop));
    }
}
