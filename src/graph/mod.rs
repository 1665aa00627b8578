//! The topology as a graph: namespaces (clusters) holding links (nodes) with their
//! addresses; veth pairs, bridge ports and NAT rules as edges. Pure: built from plain data
//! (what `nslab show` reads from the kernel, or the plan's model) and rendered as Mermaid,
//! DOT ([`text`]), SVG or HTML ([`svg`]) without any external program.

pub mod svg;
pub mod text;

use std::net::IpAddr;

use ipnet::IpNet;

/// What is drawn.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// "lab tutorial", "all labs", ...
    pub title: String,
    pub spaces: Vec<Space>,
}

/// A namespace: the host (or sandbox root) or a named netns.
#[derive(Debug, Clone, Default)]
pub struct Space {
    /// "host" or the netns name.
    pub name: String,
    pub netns: Option<String>,
    /// The lab that created the netns.
    pub lab: Option<String>,
    pub links: Vec<Link>,
    /// The link of the default route: where NAT arrows point.
    pub uplink: Option<String>,
    pub nat: Vec<Nat>,
}

#[derive(Debug, Clone, Default)]
pub struct Link {
    pub name: String,
    pub kind: String,
    pub up: bool,
    pub master: Option<String>,
    /// A veth's other end: (netns, name); netns None is the host.
    pub peer: Option<(Option<String>, String)>,
    /// "192.168.24.10/24"
    pub addrs: Vec<String>,
    /// The lab of its `nslab:LAB` tag.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    Masquerade,
    Snat,
    Dnat,
}

/// A NAT rule, from its `iptables -S` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    pub kind: NatKind,
    /// `-s`: the sources it rewrites.
    pub src: Option<IpNet>,
    /// `-o`: the link it leaves by.
    pub out: Option<String>,
    /// DNAT's `--to-destination` address.
    pub to: Option<IpAddr>,
    /// "MASQUERADE 192.168.24.0/24", "DNAT tcp :8080 → 192.168.24.10:80"
    pub label: String,
    pub lab: Option<String>,
}

impl Nat {
    /// Parses an `iptables -t nat -S` line; None for what is not a NAT rule (chains, policies).
    pub fn parse(line: &str) -> Option<Nat> {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() != Some(&"-A") {
            return None;
        }
        let arg = |flag: &str| -> Option<String> {
            let i = w.iter().position(|x| *x == flag)?;
            // `! -d X`: the negation stands before the flag.
            Some(w.get(i + 1)?.trim_matches('"').to_string())
        };
        let kind = match arg("-j")?.as_str() {
            "MASQUERADE" => NatKind::Masquerade,
            "SNAT" => NatKind::Snat,
            "DNAT" => NatKind::Dnat,
            _ => return None,
        };
        let src = arg("-s").and_then(|s| s.parse::<IpNet>().ok());
        let out = arg("-o");
        let lab = arg("--comment").and_then(|c| c.strip_prefix("nslab:").map(str::to_string));
        let (to, label) = match kind {
            NatKind::Dnat => {
                let dest = arg("--to-destination").unwrap_or_default();
                let to = dest
                    .parse::<std::net::SocketAddr>()
                    .map(|s| s.ip())
                    .ok()
                    .or_else(|| dest.parse::<IpAddr>().ok());
                let proto = arg("-p").unwrap_or_default();
                let port = arg("--dport").map(|p| format!(":{p}")).unwrap_or_default();
                (to, format!("DNAT {proto} {port} → {dest}").replace("  ", " "))
            }
            NatKind::Snat => {
                let s = src.map(|s| s.to_string()).unwrap_or_else(|| "any".into());
                (None, format!("SNAT {s} → {}", arg("--to-source").unwrap_or_default()))
            }
            NatKind::Masquerade => (
                None,
                format!(
                    "MASQUERADE {}",
                    src.map(|s| s.to_string()).unwrap_or_else(|| "any".into())
                ),
            ),
        };
        Some(Nat { kind, src, out, to, label, lab })
    }
}

/// A link, by the index of its space and its own index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub space: usize,
    pub link: usize,
}

impl NodeId {
    /// An identifier every output format accepts.
    pub fn key(&self) -> String {
        format!("n{}_{}", self.space, self.link)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// The two ends of a veth pair.
    Veth,
    /// A port and its bridge (from the port).
    Port,
    /// Source NAT: from the link holding the rewritten subnet to the link it leaves by.
    Masquerade,
    /// DNAT: from the link the packets arrive on to the link that owns the new destination.
    Dnat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: EdgeKind,
    pub label: Option<String>,
}

impl Topology {
    /// A space with NAT rules but no uplink link (no default route yet, or the uplink is not
    /// drawn) gets a stand-in node for "out of the default route", so the rules still show
    /// as arrows.
    pub fn ensure_uplinks(&mut self) {
        for s in self.spaces.iter_mut().filter(|s| !s.nat.is_empty()) {
            let known = s.uplink.as_ref().is_some_and(|u| s.links.iter().any(|l| &l.name == u));
            if !known {
                let name = s.uplink.clone().unwrap_or_else(|| "(default route)".to_string());
                s.links.push(Link {
                    name: name.clone(),
                    kind: "uplink".into(),
                    up: true,
                    ..Default::default()
                });
                s.uplink = Some(name);
            }
        }
    }

    pub fn find(&self, ns: Option<&str>, name: &str) -> Option<NodeId> {
        let space = self.spaces.iter().position(|s| s.netns.as_deref() == ns)?;
        let link = self.spaces[space].links.iter().position(|l| l.name == name)?;
        Some(NodeId { space, link })
    }

    pub fn link(&self, id: NodeId) -> &Link {
        &self.spaces[id.space].links[id.link]
    }

    /// The link that has `ip` among its addresses, anywhere.
    fn owner_of(&self, ip: IpAddr) -> Option<NodeId> {
        for (si, s) in self.spaces.iter().enumerate() {
            for (li, l) in s.links.iter().enumerate() {
                if l.addrs.iter().any(|a| a.parse::<IpNet>().is_ok_and(|n| n.addr() == ip)) {
                    return Some(NodeId { space: si, link: li });
                }
            }
        }
        None
    }

    /// Every edge, each veth pair once.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out = Vec::new();
        for (si, s) in self.spaces.iter().enumerate() {
            for (li, l) in s.links.iter().enumerate() {
                let me = NodeId { space: si, link: li };
                if let Some((pns, pname)) = &l.peer
                    && let Some(p) = self.find(pns.as_deref(), pname)
                    && me < p
                {
                    out.push(Edge { from: me, to: p, kind: EdgeKind::Veth, label: None });
                }
                if let Some(m) = &l.master
                    && let Some(b) = self.find(s.netns.as_deref(), m)
                {
                    out.push(Edge { from: me, to: b, kind: EdgeKind::Port, label: None });
                }
            }
            // Rules in a stable order: `iptables -S` lists chains in its own order, a plan
            // in the recipe's.
            let mut nat: Vec<&Nat> = s.nat.iter().collect();
            nat.sort_by(|a, b| a.label.cmp(&b.label));
            for n in nat {
                let out_link = n.out.as_deref().or(s.uplink.as_deref());
                let uplink = out_link.and_then(|u| self.find(s.netns.as_deref(), u));
                match n.kind {
                    NatKind::Masquerade | NatKind::Snat => {
                        // From the link whose subnet the rule rewrites.
                        let from = n.src.and_then(|net| {
                            s.links.iter().position(|l| {
                                l.addrs.iter().any(|a| {
                                    a.parse::<IpNet>().is_ok_and(|x| net.contains(&x.addr()))
                                })
                            })
                        });
                        if let (Some(f), Some(u)) = (from, uplink) {
                            out.push(Edge {
                                from: NodeId { space: si, link: f },
                                to: u,
                                kind: EdgeKind::Masquerade,
                                label: Some(n.label.clone()),
                            });
                        }
                    }
                    NatKind::Dnat => {
                        if let (Some(u), Some(t)) = (uplink, n.to.and_then(|ip| self.owner_of(ip)))
                        {
                            out.push(Edge {
                                from: u,
                                to: t,
                                kind: EdgeKind::Dnat,
                                label: Some(n.label.clone()),
                            });
                        }
                    }
                }
            }
        }
        // A port forward is two rules (PREROUTING for traffic arriving, OUTPUT for the host's
        // own clients) with one meaning: one arrow.
        let mut seen = std::collections::HashSet::new();
        out.retain(|e| seen.insert((e.from, e.to, e.kind, e.label.clone())));
        out
    }
}

/// The title of a space's box: "netns red (lab tutorial)", "host".
pub fn space_title(s: &Space) -> String {
    match (&s.netns, &s.lab) {
        (Some(n), Some(l)) => format!("netns {n} (lab {l})"),
        (Some(n), None) => format!("netns {n}"),
        (None, _) => s.name.clone(),
    }
}

/// The text lines of a link's box: name, kind and state (and owner), addresses.
pub fn link_lines(l: &Link) -> Vec<String> {
    let mut v = vec![l.name.clone()];
    let mut second = format!("{} {}", l.kind, if l.up { "up" } else { "down" });
    if let Some(o) = &l.owner {
        second += &format!(" [nslab:{o}]");
    }
    v.push(second);
    v.extend(l.addrs.iter().cloned());
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn link(name: &str, kind: &str, addrs: &[&str]) -> Link {
        Link {
            name: name.into(),
            kind: kind.into(),
            up: true,
            addrs: addrs.iter().map(|s| s.to_string()).collect(),
            owner: Some("t".into()),
            ..Default::default()
        }
    }

    /// The tutorial with one host, in a sandbox: host (bridge, port, uplink), red, internet.
    pub(crate) fn sample() -> Topology {
        let mut port = link("veth-red-br", "veth", &[]);
        port.master = Some("linux-bridge".into());
        port.peer = Some((Some("red".into()), "veth-red".into()));
        let mut uplink = link("uplink", "veth", &["203.0.113.2/24"]);
        uplink.owner = None;
        uplink.peer = Some((Some("internet".into()), "eth0".into()));
        let mut red_if = link("veth-red", "veth", &["192.168.24.10/24"]);
        red_if.peer = Some((None, "veth-red-br".into()));
        let mut net_if = link("eth0", "veth", &["203.0.113.1/24"]);
        net_if.peer = Some((None, "uplink".into()));
        net_if.owner = None;
        let host = Space {
            name: "host".into(),
            links: vec![link("linux-bridge", "bridge", &["192.168.24.1/24"]), port, uplink],
            uplink: Some("uplink".into()),
            nat: [
                "-P PREROUTING ACCEPT",
                "-A POSTROUTING -s 192.168.24.0/24 ! -d 192.168.24.0/24 -m comment --comment \"nslab:t\" -j MASQUERADE",
                "-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment \"nslab:t\" -j DNAT --to-destination 192.168.24.10:80",
                "-A OUTPUT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment \"nslab:t\" -j DNAT --to-destination 192.168.24.10:80",
            ]
            .iter()
            .filter_map(|l| Nat::parse(l))
            .collect(),
            ..Default::default()
        };
        let red = Space {
            name: "red".into(),
            netns: Some("red".into()),
            lab: Some("t".into()),
            links: vec![red_if],
            ..Default::default()
        };
        let internet = Space {
            name: "internet".into(),
            netns: Some("internet".into()),
            links: vec![net_if],
            ..Default::default()
        };
        Topology { title: "lab t".into(), spaces: vec![host, red, internet] }
    }

    #[test]
    fn nat_rules_parse_from_iptables_lines() {
        let t = sample();
        let nat = &t.spaces[0].nat;
        assert_eq!(nat.len(), 3, "the policy line is not a rule");
        assert_eq!(nat[0].label, "MASQUERADE 192.168.24.0/24");
        assert_eq!(nat[0].lab.as_deref(), Some("t"));
        assert_eq!(nat[1].label, "DNAT tcp :8080 → 192.168.24.10:80");
        assert_eq!(nat[1].to, Some("192.168.24.10".parse().unwrap()));
    }

    #[test]
    fn edges_join_veths_once_ports_and_nat() {
        let t = sample();
        let e = t.edges();
        let named = |e: &Edge| {
            (t.link(e.from).name.clone(), t.link(e.to).name.clone(), e.kind, e.label.clone())
        };
        let v: Vec<_> = e.iter().map(named).collect();
        assert!(v.contains(&("veth-red-br".into(), "veth-red".into(), EdgeKind::Veth, None)));
        assert!(v.contains(&("uplink".into(), "eth0".into(), EdgeKind::Veth, None)));
        assert!(v.contains(&("veth-red-br".into(), "linux-bridge".into(), EdgeKind::Port, None)));
        assert!(v.contains(&(
            "linux-bridge".into(),
            "uplink".into(),
            EdgeKind::Masquerade,
            Some("MASQUERADE 192.168.24.0/24".into())
        )));
        assert!(v.contains(&(
            "uplink".into(),
            "veth-red".into(),
            EdgeKind::Dnat,
            Some("DNAT tcp :8080 → 192.168.24.10:80".into())
        )));
        assert_eq!(v.len(), 5, "{v:?}");
    }

    #[test]
    fn nat_without_an_uplink_points_at_a_stand_in() {
        let mut t = sample();
        t.spaces[0].links.retain(|l| l.name != "uplink");
        t.spaces[0].uplink = None;
        t.ensure_uplinks();
        let e = t.edges();
        let masq = e.iter().find(|e| e.kind == EdgeKind::Masquerade).expect("an arrow");
        assert_eq!(t.link(masq.to).name, "(default route)");
    }

    #[test]
    fn titles_and_lines() {
        let t = sample();
        assert_eq!(space_title(&t.spaces[1]), "netns red (lab t)");
        assert_eq!(space_title(&t.spaces[0]), "host");
        assert_eq!(
            link_lines(&t.spaces[0].links[0]),
            ["linux-bridge", "bridge up [nslab:t]", "192.168.24.1/24"]
        );
    }
}
