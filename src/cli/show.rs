//! `nslab show [LAB] [--json]`: the live kernel state as a tree — namespaces → links (state,
//! master, peer) → addresses; bridges → ports; routes; nat rules; sysctls — read from the
//! kernel, not from the journal. With LAB, only what that lab owns: its namespaces whole, and
//! elsewhere its links, the addresses, routes, rules and sysctls it added.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Failed, fail};
use crate::lab::journal;
use crate::lab::sysctl_claims;
use crate::lab::teardown::{Owned, owner_tag};
use crate::net::info::{AddrInfo, LinkInfo, RouteInfo};
use crate::net::rule::{RuleInfo, rule_info, rule_message};
use crate::net::{Kernel, NetError, Ns, Op, nat, netns};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show only what this lab owns (see `nslab ls`)
    lab: Option<String>,
    /// Print JSON instead of the tree
    #[arg(long)]
    json: bool,
}

/// The sysctl shown for every namespace: the one labs change.
const IP_FORWARD: &str = "net.ipv4.ip_forward";

#[derive(Debug, Serialize)]
pub struct State {
    /// The lab the view is limited to, if any.
    pub lab: Option<String>,
    pub namespaces: Vec<NsView>,
}

#[derive(Debug, Serialize)]
pub struct NsView {
    /// "host" for the namespace nslab runs in, else the netns name.
    pub name: String,
    /// The netns name; null for the host.
    pub netns: Option<String>,
    /// The lab whose journal created this netns.
    pub lab: Option<String>,
    pub links: Vec<LinkView>,
    pub bridges: Vec<BridgeView>,
    pub routes: Vec<RouteInfo>,
    /// Policy routing rules (`ip rule`), without the three every netns starts with.
    pub ip_rules: Vec<RuleInfo>,
    /// `iptables -t nat -S` rules; null when they could not be listed (see `nat_error`).
    pub nat: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_error: Option<String>,
    /// `iptables -S` rules of the filter table (`fw::`); empty when they could not be listed.
    pub filter: Vec<String>,
    pub sysctls: BTreeMap<String, SysctlView>,
    /// What could not be read in this namespace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LinkView {
    #[serde(flatten)]
    pub info: LinkInfo,
    /// The other end of a veth: its name and netns (null netns: the host).
    pub peer: Option<PeerRef>,
    pub addrs: Vec<AddrInfo>,
    /// The lab named by the link's `nslab:LAB` alias.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerRef {
    pub name: String,
    pub netns: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BridgeView {
    pub name: String,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SysctlView {
    pub value: String,
    /// Labs that set it and rely on it, and the value from before the first of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

pub fn run(a: Args) -> Result<(), Failed> {
    let filter = match &a.lab {
        Some(lab) => {
            journal::check_lab_name(lab).map_err(fail)?;
            Some((lab.clone(), Owned::from_ops(&journal::read(lab).map_err(fail)?)))
        }
        None => None,
    };
    let kernel = Kernel::new(None).map_err(fail)?;
    let state = collect(&kernel, filter.as_ref().map(|(l, o)| (l.as_str(), o))).map_err(fail)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&state).expect("state serialises"));
    } else {
        print!("{}", render(&state));
    }
    Ok(())
}

/// Everything one namespace holds, before filtering.
struct Raw {
    ns: Option<String>,
    links: Vec<LinkInfo>,
    addrs: Vec<AddrInfo>,
    routes: Vec<RouteInfo>,
    ip_rules: Vec<RuleInfo>,
    errors: Vec<String>,
}

type Tables = (Vec<LinkInfo>, Vec<AddrInfo>, Vec<RouteInfo>, Vec<RuleInfo>);

/// The rules every netns starts with (`local`, `main`, `default`).
fn built_in_rule(r: &RuleInfo) -> bool {
    r.from == "all"
        && r.to.is_none()
        && r.iif.is_none()
        && r.oif.is_none()
        && r.fwmark.is_none()
        && matches!((r.priority, r.table), (0, 255) | (32766, 254) | (32767, 253))
}

fn read_ns(kernel: &Kernel, ns: Option<&str>) -> Option<Raw> {
    let read = || -> Result<Tables, NetError> {
        let rules = kernel.rules(ns)?.into_iter().filter(|r| !built_in_rule(r)).collect();
        Ok((kernel.links(ns)?, kernel.addrs(ns)?, kernel.routes(ns, None)?, rules))
    };
    let r = read();
    if let Some(n) = ns {
        // The socket would keep a netns alive after someone deletes it.
        kernel.forget(n);
    }
    let (links, addrs, routes, ip_rules, errors) = match r {
        Ok((l, a, r, ru)) => (l, a, r, ru, vec![]),
        // Deleted while we looked: not worth a line.
        Err(e) if e.is_gone() => return None,
        Err(e) => {
            let why = if e.errno == Some(libc::EPERM) {
                format!("{} (needs root)", e.message)
            } else {
                e.message
            };
            (vec![], vec![], vec![], vec![], vec![format!("cannot read it: {why}")])
        }
    };
    Some(Raw { ns: ns.map(str::to_string), links, addrs, routes, ip_rules, errors })
}

/// Reads the kernel state of the host and every named netns, limited to what `filter`'s lab
/// owns when given.
pub fn collect(kernel: &Kernel, filter: Option<(&str, &Owned)>) -> Result<State, NetError> {
    let mut names: Vec<Option<String>> = vec![None];
    names.extend(netns::list()?.into_iter().map(Some));
    let raws: Vec<Raw> = names.iter().filter_map(|n| read_ns(kernel, n.as_deref())).collect();

    // With a lab, only namespaces where it can have rules: its own, and where it added some.
    let spaces: Vec<Option<String>> = raws
        .iter()
        .filter(|r| {
            let ns = r.ns.as_deref();
            filter.is_none_or(|(_, o)| {
                o.in_owned_ns(ns)
                    || o.has_change(
                        |c| matches!(c, Op::IptAppend { ns: n, .. } if n.as_deref() == ns),
                    )
            })
        })
        .map(|r| r.ns.clone())
        .collect();
    let mut listed: std::collections::HashMap<Option<String>, Result<Vec<String>, NetError>> =
        spaces.iter().cloned().zip(nat_lists(&spaces)).collect();
    let nats: Vec<Result<Vec<String>, NetError>> =
        raws.iter().map(|r| listed.remove(&r.ns).unwrap_or(Ok(Vec::new()))).collect();
    let mut listed: std::collections::HashMap<Option<String>, Result<Vec<String>, NetError>> =
        spaces.iter().cloned().zip(ipt_lists(&spaces, "filter")).collect();
    let filters: Vec<Vec<String>> = raws
        .iter()
        .map(|r| listed.remove(&r.ns).and_then(Result::ok).unwrap_or_default())
        .collect();

    let creators = netns_creators();
    let claims = sysctl_claims::all();
    let nsids = NsIds { kernel, known: Default::default() };
    let mut out = Vec::new();
    for ((raw, nat), filter_rules) in raws.iter().zip(nats).zip(filters) {
        let ns = raw.ns.as_deref();
        let whole = filter.is_none_or(|(_, o)| o.in_owned_ns(ns));
        let mut links = Vec::new();
        for l in &raw.links {
            let mine = filter.is_none_or(|(lab, o)| o.is_mine(ns, l, lab));
            let addrs: Vec<AddrInfo> = raw
                .addrs
                .iter()
                .filter(|a| a.dev == l.name)
                .filter(|a| {
                    whole
                        || mine
                        || filter.is_some_and(|(_, o)| added_addr(o, ns, &l.name, &a.cidr))
                })
                .cloned()
                .collect();
            if !(whole || mine || !addrs.is_empty()) {
                continue;
            }
            links.push(LinkView {
                peer: peer_of(&nsids, l, ns, &raws),
                owner: l
                    .alias
                    .as_deref()
                    .and_then(|a| a.strip_prefix("nslab:"))
                    .map(str::to_string),
                info: l.clone(),
                addrs,
            });
        }
        let bridges: Vec<BridgeView> = links
            .iter()
            .filter(|l| l.info.kind == "bridge")
            .map(|b| BridgeView {
                name: b.info.name.clone(),
                ports: raw
                    .links
                    .iter()
                    .filter(|p| p.master.as_deref() == Some(&b.info.name))
                    .map(|p| p.name.clone())
                    .collect(),
            })
            .collect();
        let routes: Vec<RouteInfo> = raw
            .routes
            .iter()
            .filter(|r| {
                whole
                    || filter.is_some_and(|(_, o)| {
                        r.dev.as_deref().is_some_and(|d| o.has_link(ns, d)) || added_route(o, ns, r)
                    })
            })
            .cloned()
            .collect();
        let ip_rules: Vec<RuleInfo> = raw
            .ip_rules
            .iter()
            .filter(|r| whole || filter.is_some_and(|(_, o)| added_rule(o, ns, r)))
            .cloned()
            .collect();
        let labs_only = |rules: Vec<String>| match filter {
            Some((lab, _)) if !whole => {
                let tag = owner_tag(lab);
                rules
                    .into_iter()
                    .filter(|r| rule_comment(r).as_deref() == Some(tag.as_str()))
                    .collect()
            }
            _ => rules,
        };
        let (nat, nat_error) = match nat {
            Ok(rules) => (Some(labs_only(rules)), None),
            Err(e) => (None, Some(e.message)),
        };
        let filter_rules = labs_only(filter_rules);
        let mut sysctls = BTreeMap::new();
        let mut keys: Vec<String> = Vec::new();
        if whole {
            keys.push(IP_FORWARD.to_string());
        }
        for (cns, key, _) in &claims {
            if cns.as_deref() == ns
                && !keys.contains(key)
                && (whole || filter.is_some_and(|(_, o)| set_sysctl(o, ns, key)))
            {
                keys.push(key.clone());
            }
        }
        for key in keys {
            let Ok(value) = crate::net::kernel::sysctl_get(ns, &key) else { continue };
            let claim = claims
                .iter()
                .find(|(cns, k, _)| cns.as_deref() == ns && *k == key)
                .map(|(_, _, c)| c);
            sysctls.insert(
                key,
                SysctlView {
                    value,
                    held_by: claim.map(|c| c.holders.clone()).unwrap_or_default(),
                    original: claim.filter(|c| !c.holders.is_empty()).map(|c| c.original.clone()),
                },
            );
        }
        let empty = links.is_empty()
            && routes.is_empty()
            && ip_rules.is_empty()
            && nat.as_ref().is_none_or(Vec::is_empty)
            && filter_rules.is_empty()
            && sysctls.is_empty();
        if filter.is_some() && !whole && empty {
            continue;
        }
        out.push(NsView {
            name: ns.unwrap_or("host").to_string(),
            netns: raw.ns.clone(),
            lab: ns.and_then(|n| creators.get(n).cloned()),
            links,
            bridges,
            routes,
            ip_rules,
            // A filtered view of a namespace the lab does not own says nothing about a nat
            // table it could not read.
            nat_error: if whole { nat_error } else { None },
            nat: if whole { nat } else { nat.or(Some(vec![])) },
            filter: filter_rules,
            sysctls,
            errors: raw.errors.clone(),
        });
    }
    nsids.forget();
    Ok(State { lab: filter.map(|(l, _)| l.to_string()), namespaces: out })
}

/// `iptables -t nat -S` of each namespace.
pub fn nat_lists(spaces: &[Option<String>]) -> Vec<Result<Vec<String>, NetError>> {
    ipt_lists(spaces, "nat")
}

/// `iptables -t TABLE -S` of each namespace. iptables is a process (~3 ms): run up to 16 side
/// by side, so a lab of hundreds of namespaces is listed in a fraction of the time.
pub fn ipt_lists(spaces: &[Option<String>], table: &str) -> Vec<Result<Vec<String>, NetError>> {
    let mut out = Vec::with_capacity(spaces.len());
    for chunk in spaces.chunks(16) {
        let threads: Vec<_> = chunk
            .iter()
            .map(|ns| {
                let ns = ns.clone();
                let table = table.to_string();
                std::thread::spawn(move || {
                    // A netns without a single rule needs no iptables process.
                    if !crate::net::nft_probe::may_have_rules(ns.as_deref()) {
                        return Ok(Vec::new());
                    }
                    nat::list(ns.as_deref(), &table)
                })
            })
            .collect();
        out.extend(
            threads.into_iter().map(|t| {
                t.join().unwrap_or_else(|_| Err(NetError::new("iptables listing panicked")))
            }),
        );
    }
    out
}

fn added_addr(o: &Owned, ns: Option<&str>, dev: &str, cidr: &str) -> bool {
    o.has_change(|c| matches!(c, Op::AddrAdd { ns: n, dev: d, cidr: x } if n.as_deref() == ns && d == dev && x.to_string() == cidr))
}

fn added_route(o: &Owned, ns: Option<&str>, r: &RouteInfo) -> bool {
    o.has_change(|c| {
        let Op::RouteAdd { ns: n, dest, via, opts, .. } = c else { return false };
        let d = dest.map(|d| d.trunc().to_string()).unwrap_or_else(|| "default".into());
        let hops: Vec<String> = opts.nexthops.iter().map(|h| h.via.to_string()).collect();
        let seen: Vec<String> = r.nexthops.iter().filter_map(|h| h.via.clone()).collect();
        n.as_deref() == ns
            && d == r.dest
            && via.map(|v| v.to_string()) == r.via
            && opts.table() == r.table
            && opts.kind.word() == r.kind
            && opts.metric.is_none_or(|m| r.metric.unwrap_or(0) == m)
            && hops == seen
    })
}

fn added_rule(o: &Owned, ns: Option<&str>, r: &RuleInfo) -> bool {
    o.has_change(|c| {
        let Op::RuleAdd { ns: n, rule } = c else { return false };
        n.as_deref() == ns && rule_info(&rule_message(rule)).is_some_and(|mine| mine == *r)
    })
}

fn set_sysctl(o: &Owned, ns: Option<&str>, key: &str) -> bool {
    o.has_change(
        |c| matches!(c, Op::SysctlSet { ns: n, key: k, .. } if n.as_deref() == ns && k == key),
    )
}

/// The `--comment` of an `iptables -S` line (printed quoted: `--comment "nslab:x"`).
pub fn rule_comment(rule: &str) -> Option<String> {
    let rest = rule.split_once("--comment ")?.1;
    let c = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split_whitespace().next()?,
    };
    Some(c.to_string())
}

/// netns name -> the lab whose journal created it and still owns it.
fn netns_creators() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for lab in journal::labs() {
        if let Ok(ops) = journal::read(&lab) {
            for n in Owned::from_ops(&ops).netns {
                m.insert(n, lab.clone());
            }
        }
    }
    m
}

/// Finds the other end of veth `l` (in `ns`): a veth whose index is `l`'s peer index and whose
/// peer index is `l`'s index. Ifindexes repeat across namespaces (every netns numbers its links
/// from 1: the two ends of `veth::add("a1", "x", "b1", "y")` and of the same in a2/b2 are all
/// index 2 with peer 2), so where the kernel says the peer is in another netns
/// (IFLA_LINK_NETNSID) and more than one fits, the netns whose id in `ns` is that one wins.
fn peer_of(nsids: &NsIds, l: &LinkInfo, ns: Option<&str>, raws: &[Raw]) -> Option<PeerRef> {
    let p = l.peer_index?;
    let is_peer = |m: &LinkInfo| {
        m.index == p
            && m.kind == "veth"
            && m.peer_index == Some(l.index)
            && m.peer_netnsid.is_some() == l.peer_netnsid.is_some()
    };
    let found = match l.peer_netnsid {
        None => raws
            .iter()
            .find(|r| r.ns.as_deref() == ns)
            .and_then(|r| r.links.iter().find(|m| is_peer(m) && m.name != l.name).map(|m| (r, m))),
        Some(id) => {
            let fits: Vec<(&Raw, &LinkInfo)> = raws
                .iter()
                .filter(|r| r.ns.as_deref() != ns)
                .flat_map(|r| r.links.iter().filter(|m| is_peer(m)).map(move |m| (r, m)))
                .collect();
            if fits.len() == 1 {
                fits.into_iter().next()
            } else {
                fits.into_iter().find(|(r, _)| nsids.get(ns, r.ns.as_deref()) == Some(id))
            }
        }
    };
    found.map(|(r, m)| PeerRef { name: m.name.clone(), netns: r.ns.clone() })
}

/// The ids namespaces give each other (`Kernel::nsid`), asked once per pair; the sockets it
/// opens are dropped by `forget` (an open socket keeps a deleted netns alive).
struct NsIds<'a> {
    kernel: &'a Kernel,
    known: std::cell::RefCell<BTreeMap<(Ns, Ns), Option<i32>>>,
}

impl NsIds<'_> {
    fn get(&self, ns: Option<&str>, other: Option<&str>) -> Option<i32> {
        let key = (ns.map(str::to_string), other.map(str::to_string));
        if let Some(id) = self.known.borrow().get(&key) {
            return *id;
        }
        let id = self.kernel.nsid(ns, other).ok().flatten();
        self.known.borrow_mut().insert(key, id);
        id
    }

    fn forget(&self) {
        for (ns, _) in self.known.borrow().keys() {
            if let Some(n) = ns {
                self.kernel.forget(n);
            }
        }
    }
}

fn state_word(l: &LinkInfo) -> String {
    match (l.state.as_str(), l.oper.as_str()) {
        ("up", "down" | "lowerlayerdown" | "notpresent") => "up, no carrier".into(),
        (s, _) => s.to_string(),
    }
}

/// IPv6 link-local addresses and routes are derived from random MACs and appear a moment
/// after a link comes up; the tree leaves them out (the JSON has them).
fn link_local(s: &str) -> bool {
    s.starts_with("fe80:")
}

/// The tree, as `nslab show` prints it.
pub fn render(state: &State) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if state.namespaces.is_empty() {
        let _ =
            writeln!(s, "lab {} has nothing in the kernel", state.lab.as_deref().unwrap_or("?"));
    }
    for ns in &state.namespaces {
        let _ = match (&ns.netns, &ns.lab) {
            (None, _) => writeln!(s, "host"),
            (Some(n), Some(lab)) => writeln!(s, "netns {n}  (lab {lab})"),
            (Some(n), None) => writeln!(s, "netns {n}"),
        };
        for e in &ns.errors {
            let _ = writeln!(s, "  ! {e}");
        }
        if !ns.links.is_empty() {
            let _ = writeln!(s, "  links");
            let w = ns.links.iter().map(|l| l.info.name.len()).max().unwrap_or(0);
            let kw = ns.links.iter().map(|l| l.info.kind.len()).max().unwrap_or(0);
            for l in &ns.links {
                let mut line =
                    format!("    {:w$}  {:kw$}  {}", l.info.name, l.info.kind, state_word(&l.info));
                if let Some(m) = &l.info.master {
                    let _ = write!(line, "  master {m}");
                }
                if let Some(p) = &l.peer {
                    let _ =
                        write!(line, "  peer {}@{}", p.name, p.netns.as_deref().unwrap_or("host"));
                } else if let Some(i) = l.info.peer_index {
                    let _ = write!(line, "  peer #{i} (in a namespace without a name)");
                }
                if !l.info.detail.is_empty() {
                    let _ = write!(line, "  {}", l.info.detail.words());
                }
                if let Some(o) = &l.owner {
                    let _ = write!(line, "  [nslab:{o}]");
                }
                let _ = writeln!(s, "{line}");
                for a in l.addrs.iter().filter(|a| !link_local(&a.cidr)) {
                    let _ = writeln!(s, "      {}", a.cidr);
                }
            }
        }
        if !ns.bridges.is_empty() {
            let _ = writeln!(s, "  bridges");
            for b in &ns.bridges {
                let ports =
                    if b.ports.is_empty() { "(no ports)".to_string() } else { b.ports.join(", ") };
                let _ = writeln!(s, "    {}: {ports}", b.name);
            }
        }
        let routes: Vec<&RouteInfo> = ns.routes.iter().filter(|r| !link_local(&r.dest)).collect();
        if !routes.is_empty() {
            let _ = writeln!(s, "  routes");
            for r in routes {
                let mut line = format!("    {}", r.describe());
                if r.proto == "kernel" {
                    line.push_str("  (kernel)");
                }
                let _ = writeln!(s, "{line}");
            }
        }
        if !ns.ip_rules.is_empty() {
            let _ = writeln!(s, "  ip rules");
            for r in &ns.ip_rules {
                let _ = writeln!(s, "    {}", r.describe());
            }
        }
        match (&ns.nat, &ns.nat_error) {
            (Some(rules), _) if !rules.is_empty() => {
                let _ = writeln!(s, "  nat");
                for r in rules {
                    let _ = writeln!(s, "    {r}");
                }
            }
            (None, Some(e)) if ns.errors.is_empty() => {
                let _ = writeln!(s, "  nat: cannot list: {e}");
            }
            _ => {}
        }
        if !ns.filter.is_empty() {
            let _ = writeln!(s, "  filter");
            for r in &ns.filter {
                let _ = writeln!(s, "    {r}");
            }
        }
        if !ns.sysctls.is_empty() {
            let _ = writeln!(s, "  sysctl");
            for (k, v) in &ns.sysctls {
                let mut line = format!("    {k} = {}", v.value);
                if !v.held_by.is_empty() {
                    let _ = write!(line, "  (set by lab {}", v.held_by.join(", lab "));
                    if let Some(o) = &v.original {
                        let _ = write!(line, "; was {o}");
                    }
                    line.push(')');
                }
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_are_read_from_rules() {
        let r = r#"-A POSTROUTING -s 10.0.0.0/24 -m comment --comment "nslab:t" -j MASQUERADE"#;
        assert_eq!(super::rule_comment(r).as_deref(), Some("nslab:t"));
        assert_eq!(
            super::rule_comment("-A X -m comment --comment plain -j ACCEPT").as_deref(),
            Some("plain")
        );
        assert_eq!(super::rule_comment("-A X -j ACCEPT"), None);
    }
}
