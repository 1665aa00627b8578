//! The filter table in the model: what the `fw::` rules on a probe's path do with its
//! packets. A traced request meets OUTPUT in the sending netns, FORWARD in each netns that
//! routes it (and in each netns whose bridge forwards the frame from port to port:
//! br_netfilter, `bridge-nf-call-iptables=1`), INPUT where it is delivered. Its reply meets
//! the same chains mirrored (the model's routes are symmetric), with conntrack state
//! ESTABLISHED; a REJECT's ICMP error goes back as RELATED. Each chain is its rules in
//! order, then the policy ACCEPT (`fw::` never changes a policy).
//!
//! Never a guess: a rule the model cannot evaluate, a hop it does not follow (a VXLAN's
//! underlay, a VLAN-tagged frame on a bridge), or a `netns::exec` that may have written
//! rules itself make the answer unknown (`()` in the recipe).

use super::model::{Link, Model};
use super::trace::{Check, Hop, Trace};
use crate::net::fw::Verdict;
use crate::net::fw_eval::{EPHEMERAL, FwPacket, NATTED, chain_verdict};
use crate::net::op::Ns;

/// What the filter rules make of one stage of a probe's exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Every chain on the way accepts.
    Pass,
    /// Dropped (or rejected towards the far side): the client hears nothing and times out.
    Dropped,
    /// Rejected, and the ICMP error reaches the client: "connection refused".
    Refused,
    /// Stopped by a REJECT, but whether its error reaches the client (refused) or not
    /// (a timeout) the model cannot tell.
    Blocked,
    /// A rule or a hop the model cannot evaluate decides.
    Unknown,
}

/// The chain a reply meets where the request met `chain`.
fn mirror(chain: &str) -> &'static str {
    match chain {
        "INPUT" => "OUTPUT",
        "OUTPUT" => "INPUT",
        _ => "FORWARD",
    }
}

impl Model {
    /// Whether the filter model does not follow this hop: the underlay of a VXLAN or a
    /// WireGuard tunnel (their UDP packets meet chains the trace does not walk), or a
    /// VLAN-tagged frame crossing a bridge (br_netfilter passes it to iptables only with
    /// `bridge-nf-filter-vlan-tagged`).
    pub(super) fn hop_is_vague(&self, out: &Link, h: &Hop) -> bool {
        let kinds = |uid: Option<usize>| -> Vec<&'static str> {
            let Some(l) = uid.and_then(|u| self.by_uid(u)) else { return vec![] };
            let parent = l.ext.parent.and_then(|p| self.by_uid(p)).map(|p| p.kind);
            [Some(l.kind), parent].into_iter().flatten().collect()
        };
        let mut all = kinds(Some(out.uid));
        for u in [h.in_port, h.out_port, Some(h.target)] {
            all.extend(kinds(u));
        }
        let bridged = h.bridge.is_some() && h.in_port.is_some() && h.out_port.is_some();
        all.contains(&"vxlan") || all.contains(&"wireguard") || (bridged && all.contains(&"vlan"))
    }

    fn filter_rules<'a>(
        &'a self,
        ns: &Ns,
        chain: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a [String]> {
        self.spaces
            .get(ns)
            .into_iter()
            .flat_map(|s| s.rules.iter())
            .filter(move |(t, c, _)| t == "filter" && c == chain)
            .map(|(_, _, r)| r.as_slice())
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Whether a bridge in `ns` passes the frames it forwards to iptables: br_netfilter is
    /// on this machine (its sysctl exists) and `bridge-nf-call-iptables` is not 0 there — the
    /// recipe's value, else a fresh netns's default (1), else this host's own.
    fn br_netfilter(&self, ns: &Ns) -> bool {
        const KEY: &str = "net.bridge.bridge-nf-call-iptables";
        if let Some(v) = self.spaces.get(ns).and_then(|s| s.sysctls.get(KEY)) {
            return v.trim() != "0";
        }
        match self.sysctl_get(ns.as_deref(), KEY) {
            Err(_) => false,
            Ok(_) if ns.is_some() => true,
            Ok(v) => v.trim() != "0",
        }
    }

    /// The checks that apply, with their index: a bridge's only where br_netfilter calls
    /// iptables.
    fn applying<'a>(&'a self, t: &'a Trace) -> Vec<(usize, &'a Check)> {
        t.checks
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.bridged || self.br_netfilter(&c.ns))
            .collect()
    }

    fn has_filter_rules(&self) -> bool {
        self.spaces.values().any(|s| s.rules.iter().any(|(t, ..)| t == "filter"))
    }

    /// The client ports the kernel picks in `ns` (`net.ipv4.ip_local_port_range`).
    fn ephemeral(&self, ns: &Ns) -> (u16, u16) {
        let set = self.spaces.get(ns).and_then(|s| s.sysctls.get("net.ipv4.ip_local_port_range"));
        let parsed = set.and_then(|v| {
            let mut w = v.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((w.next()??, w.next()??))
        });
        match set {
            None => EPHEMERAL,
            // Unparsable: any port at all.
            Some(_) => parsed.unwrap_or((1, 65535)),
        }
    }

    /// Before any chain: whether the rules matter. Some(fate) settles the stage.
    fn filter_applies(&self, t: &Trace) -> Option<Fate> {
        if t.dst.is_ipv6() {
            // iptables sees IPv4 only; `fw::` refuses IPv6 rules.
            return Some(Fate::Pass);
        }
        if self.ipt_unseen {
            return Some(Fate::Unknown);
        }
        if !self.has_filter_rules() {
            return Some(Fate::Pass);
        }
        if t.vague {
            return Some(Fate::Unknown);
        }
        None
    }

    fn request_packet(
        &self,
        t: &Trace,
        c: &Check,
        proto: &'static str,
        state: &'static str,
    ) -> FwPacket {
        let client = t.checks.first().map(|c| c.ns.clone()).unwrap_or_default();
        let ports = proto != "icmp";
        FwPacket {
            src: Some(c.src),
            dst: Some(c.dst),
            proto,
            sport: ports.then(|| if c.snat_before { NATTED } else { self.ephemeral(&client) }),
            dport: c.dport.filter(|_| ports).map(|p| (p, p)),
            iif: c.iif.clone(),
            oif: c.oif.clone(),
            state,
        }
    }

    /// The request, first packet of its flow (conntrack NEW) at each chain in order.
    pub(super) fn request_fate(&self, t: &Trace, proto: &'static str) -> Fate {
        if let Some(f) = self.filter_applies(t) {
            return f;
        }
        for (k, c) in self.applying(t) {
            match chain_verdict(
                self.filter_rules(&c.ns, c.chain),
                &self.request_packet(t, c, proto, "new"),
            ) {
                Some(Verdict::Accept) => {}
                Some(Verdict::Drop) => return Fate::Dropped,
                Some(Verdict::Reject) => return self.error_fate(t, k),
                None => return Fate::Unknown,
            }
        }
        Fate::Pass
    }

    /// The client's later packets in the request's direction (TCP's ACK, the next echo
    /// requests), ESTABLISHED once a reply was seen.
    pub(super) fn next_fate(&self, t: &Trace, proto: &'static str) -> Fate {
        if let Some(f) = self.filter_applies(t) {
            return f;
        }
        for (_, c) in self.applying(t) {
            match chain_verdict(
                self.filter_rules(&c.ns, c.chain),
                &self.request_packet(t, c, proto, "established"),
            ) {
                Some(Verdict::Accept) => {}
                Some(_) => return Fate::Dropped,
                None => return Fate::Unknown,
            }
        }
        Fate::Pass
    }

    /// The reply (also a TCP reset: conntrack sees it as ESTABLISHED), the request's chains
    /// mirrored, in reverse. A REJECT here answers the server, not the client: it times out.
    pub(super) fn reply_fate(&self, t: &Trace, proto: &'static str) -> Fate {
        if let Some(f) = self.filter_applies(t) {
            return f;
        }
        for (_, c) in self.applying(t).into_iter().rev() {
            let req = self.request_packet(t, c, proto, "established");
            let pkt = FwPacket {
                src: req.dst,
                dst: req.src,
                sport: req.dport,
                dport: req.sport,
                iif: req.oif,
                oif: req.iif,
                ..req
            };
            match chain_verdict(self.filter_rules(&c.ns, mirror(c.chain)), &pkt) {
                Some(Verdict::Accept) => {}
                Some(_) => return Fate::Dropped,
                None => return Fate::Unknown,
            }
        }
        Fate::Pass
    }

    /// An ICMP port unreachable sent where the request met check `k` (a REJECT there, or no
    /// server at the end): Refused when every chain on its way back accepts it (RELATED).
    pub(super) fn error_fate(&self, t: &Trace, k: usize) -> Fate {
        if let Some(f) = self.filter_applies(t) {
            if f != Fate::Pass {
                return Fate::Blocked;
            }
            return Fate::Refused;
        }
        let c = &t.checks[k];
        let err = |iif: Option<String>, oif: Option<String>, src, dst| FwPacket {
            src,
            dst: Some(dst),
            proto: "icmp",
            sport: None,
            dport: None,
            iif,
            oif,
            state: "related",
        };
        let mut path: Vec<(&Ns, &str, FwPacket)> = Vec::new();
        match c.chain {
            "OUTPUT" => {
                // A packet this netns sent: the error comes back to it through lo, from an
                // address the model does not pick.
                let lo = Some("lo".to_string());
                path.push((&c.ns, "OUTPUT", err(None, lo.clone(), None, c.src)));
                path.push((&c.ns, "INPUT", err(lo, None, None, c.src)));
            }
            "INPUT" => {
                // From the address the request was for, back the way it came, like a reply.
                for (_, p) in self.applying(t).into_iter().filter(|(i, _)| *i <= k).rev() {
                    let src = Some(p.dst);
                    path.push((
                        &p.ns,
                        mirror(p.chain),
                        err(p.oif.clone(), p.iif.clone(), src, p.src),
                    ));
                }
            }
            _ if c.bridged => {
                // A bridge answers from its netns's own routing, if it has an address and a
                // route back at all: the model does not follow that.
                return Fate::Blocked;
            }
            _ => {
                // A router: from its address on the link the request came in by, back the
                // way the request came (a destination NAT before it rewrites that source).
                let dev = c.iif.as_deref().unwrap_or_default();
                let src = self.source_for(c.ns.as_deref(), dev, c.src);
                path.push((&c.ns, "OUTPUT", err(None, c.iif.clone(), src, c.src)));
                for (_, p) in self.applying(t).into_iter().filter(|(i, _)| *i < k).rev() {
                    let src = src.filter(|_| !c.dnat_before);
                    path.push((
                        &p.ns,
                        mirror(p.chain),
                        err(p.oif.clone(), p.iif.clone(), src, p.src),
                    ));
                }
            }
        }
        for (ns, chain, pkt) in &path {
            match chain_verdict(self.filter_rules(ns, chain), pkt) {
                Some(Verdict::Accept) => {}
                Some(_) => return Fate::Dropped,
                None => return Fate::Blocked,
            }
        }
        Fate::Refused
    }
}
