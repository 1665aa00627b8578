//! iptables rules as argument lists: filter rules (`fw::`) and the nat table's SNAT, DNAT and
//! MASQUERADE (`nat::`). Pure: the words become an `Op::IptAppend`, run by `nat.rs`.
//!
//! The `iptables` crate takes a rule as one string and splits it itself with the regex
//! `["'].+?["']|[^ ]+`, dropping quotes at both ends of each piece: a word holding a quote
//! would reach iptables changed (`-o x'` installed `-o x`). Such words are refused here,
//! before anything is journaled, with the same words in `nslab run` and `nslab plan`.

use ipnet::IpNet;

use super::error::{NetError, NetResult};
use super::op::check_ifname;

/// What a filter rule does with a packet that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
}

impl Verdict {
    pub fn target(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
        }
    }
}

/// A port or an inclusive range (`--dport 8000:8080`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports(pub u16, pub u16);

impl Ports {
    fn word(self) -> String {
        if self.0 == self.1 { self.0.to_string() } else { format!("{}:{}", self.0, self.1) }
    }
}

/// What a rule matches; every field is optional (an empty match is every packet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub src: Option<IpNet>,
    pub dst: Option<IpNet>,
    pub proto: Option<String>,
    pub dport: Option<Ports>,
    pub sport: Option<Ports>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// conntrack states, lower case: new, established, related, invalid, untracked.
    pub state: Vec<String>,
}

pub const PROTOS: &[&str] = &["tcp", "udp", "icmp", "all"];
pub const STATES: &[&str] = &["new", "established", "related", "invalid", "untracked"];

fn bad(msg: String, help: &str) -> NetError {
    NetError::new(msg).with_errno(libc::EINVAL).with_help(help.to_string())
}

/// The filter chain a script names: "input" → INPUT.
pub fn chain(name: &str) -> NetResult<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "input" => Ok("INPUT"),
        "forward" => Ok("FORWARD"),
        "output" => Ok("OUTPUT"),
        _ => Err(bad(
            format!("unknown chain {name:?}"),
            "use \"input\" (to this netns), \"forward\" (through it) or \"output\" (from it)",
        )),
    }
}

/// An interface name as an iptables word: a valid link name without quotes (see the
/// module comment). iptables' own `+` wildcard (`veth+`) is allowed.
pub fn rule_ifname(name: &str) -> NetResult<()> {
    check_ifname(name)?;
    if name.contains(['\'', '"']) {
        return Err(bad(
            format!("interface name {name:?} cannot be used in an iptables rule: it has a quote"),
            "the iptables command line nslab runs would change the name; rename the link",
        ));
    }
    Ok(())
}

/// Last line of defence in `nat.rs` for a rule built elsewhere (a journal from an older
/// version, say): no word may hold a quote.
pub fn check_words(rule: &[String]) -> NetResult<()> {
    match rule.iter().find(|w| w.contains(['\'', '"'])) {
        Some(w) => Err(bad(
            format!("iptables rule word {w:?} has a quote"),
            "quotes would be changed on the way to iptables; use names without them",
        )),
        None => Ok(()),
    }
}

fn v4(what: &str, net: &IpNet) -> NetResult<String> {
    if net.addr().is_ipv6() {
        // `iptables` is IPv4 only: it would refuse the rule with a bare exit code.
        return Err(bad(
            format!("{what} {net} is IPv6; iptables rules are IPv4 only"),
            "give an IPv4 address or subnet",
        ));
    }
    // With its prefix, as `iptables -S` prints it back (`-d 10.0.0.10/32`).
    Ok(net.trunc().to_string())
}

/// The match words, in the order `iptables -S` prints them.
pub fn match_words(m: &Match) -> NetResult<Vec<String>> {
    let mut w: Vec<String> = Vec::new();
    let mut push = |a: &str, b: String| {
        w.push(a.to_string());
        w.push(b);
    };
    if let Some(s) = &m.src {
        push("-s", v4("src", s)?);
    }
    if let Some(d) = &m.dst {
        push("-d", v4("dst", d)?);
    }
    if let Some(i) = &m.iif {
        rule_ifname(i)?;
        push("-i", i.clone());
    }
    if let Some(o) = &m.oif {
        rule_ifname(o)?;
        push("-o", o.clone());
    }
    let ports = m.dport.is_some() || m.sport.is_some();
    match m.proto.as_deref() {
        Some(p) if !PROTOS.contains(&p) => {
            return Err(bad(
                format!("unknown protocol {p:?}"),
                "use \"tcp\", \"udp\", \"icmp\" or \"all\"",
            ));
        }
        Some(p) if ports && p != "tcp" && p != "udp" => {
            return Err(bad(
                format!("ports need protocol tcp or udp, not {p}"),
                "add #{proto: \"tcp\"} (or \"udp\")",
            ));
        }
        None if ports => {
            return Err(bad(
                "ports need a protocol".into(),
                "add #{proto: \"tcp\"} (or \"udp\") next to sport/dport",
            ));
        }
        Some(p) => push("-p", p.to_string()),
        None => {}
    }
    if let Some(p) = m.sport {
        push("--sport", p.word());
    }
    if let Some(p) = m.dport {
        push("--dport", p.word());
    }
    if !m.state.is_empty() {
        for s in &m.state {
            if !STATES.contains(&s.as_str()) {
                return Err(bad(
                    format!("unknown connection state {s:?}"),
                    "use new, established, related, invalid or untracked",
                ));
            }
        }
        // In the order `iptables -S` prints them back (RELATED,ESTABLISHED).
        let order = ["invalid", "new", "related", "established", "untracked"];
        let mut states: Vec<&String> = m.state.iter().collect();
        states.sort_by_key(|s| order.iter().position(|o| o == s));
        states.dedup();
        let states: Vec<String> = states.iter().map(|s| s.to_ascii_uppercase()).collect();
        w.extend(["-m", "conntrack", "--ctstate"].map(String::from));
        w.push(states.join(","));
    }
    Ok(w)
}

fn comment(lab: &str) -> [String; 4] {
    ["-m".into(), "comment".into(), "--comment".into(), format!("nslab:{lab}")]
}

/// A filter rule: match, owner comment, `-j ACCEPT|DROP|REJECT`.
pub fn filter_rule(m: &Match, verdict: Verdict, lab: &str) -> NetResult<Vec<String>> {
    let mut w = match_words(m)?;
    w.extend(comment(lab));
    w.extend(["-j".to_string(), verdict.target().to_string()]);
    Ok(w)
}

/// Source NAT of `net` towards everything but `exclude` (default: `net` itself — bridged
/// packets pass iptables here, br_netfilter, so a bare `-s SUBNET` would rewrite traffic
/// between two hosts of the subnet). `to: None` is MASQUERADE, else SNAT to that address.
pub fn snat_rule(
    net: IpNet,
    exclude: Option<IpNet>,
    out: Option<&str>,
    to: Option<std::net::IpAddr>,
    lab: &str,
) -> NetResult<Vec<String>> {
    let src = v4("the subnet", &net.trunc())?;
    let ex = v4("exclude", &exclude.unwrap_or(net).trunc())?;
    let mut w: Vec<String> = ["-s", &src, "!", "-d", &ex].map(String::from).to_vec();
    if let Some(o) = out {
        rule_ifname(o)?;
        w.extend(["-o".to_string(), o.to_string()]);
    }
    w.extend(comment(lab));
    match to {
        None => w.extend(["-j", "MASQUERADE"].map(String::from)),
        Some(a) if a.is_ipv6() => {
            return Err(bad(format!("SNAT address {a} is IPv6"), "give an IPv4 address"));
        }
        Some(a) => w.extend(["-j".into(), "SNAT".into(), "--to-source".into(), a.to_string()]),
    }
    Ok(w)
}

/// Destination NAT of what `m` matches to `to` (PREROUTING).
pub fn dnat_rule(m: &Match, to: std::net::SocketAddr, lab: &str) -> NetResult<Vec<String>> {
    if to.is_ipv6() {
        return Err(bad(format!("DNAT target {to} is IPv6"), "give an IPv4 ip:port"));
    }
    if m.oif.is_some() {
        return Err(bad(
            "a DNAT rule cannot match the outgoing interface (oif)".into(),
            "the route is not chosen yet in PREROUTING; match iif instead",
        ));
    }
    let mut w = match_words(m)?;
    w.extend(comment(lab));
    w.extend(["-j".into(), "DNAT".into(), "--to-destination".into(), to.to_string()]);
    Ok(w)
}

/// A port forward: `PREROUTING` for connections arriving from elsewhere, and, unless it is
/// limited to one incoming interface, `OUTPUT` for connections this host makes to its own
/// addresses, as Docker does (`-t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type
/// LOCAL`). Loopback stays out, like Docker without its userland proxy: DNAT from 127.0.0.1
/// to another host needs `route_localnet`, and the reply could not find its way back.
/// Returns (chain, rule) pairs.
pub fn port_forward_rules(
    proto: &str,
    port: u16,
    iface: Option<&str>,
    to: std::net::SocketAddr,
    lab: &str,
) -> NetResult<Vec<(&'static str, Vec<String>)>> {
    let tail = |w: &mut Vec<String>| {
        w.extend(["--dport".to_string(), port.to_string()]);
        w.extend(comment(lab));
        w.extend(["-j".into(), "DNAT".into(), "--to-destination".into(), to.to_string()]);
    };
    let mut pre: Vec<String> = vec!["-p".into(), proto.into()];
    if let Some(i) = iface {
        rule_ifname(i)?;
        pre.extend(["-i".to_string(), i.to_string()]);
        tail(&mut pre);
        return Ok(vec![("PREROUTING", pre)]);
    }
    // Only connections addressed to this host itself: without it the rule would also
    // rewrite bridged traffic between two lab hosts that happens to use this port.
    let local = ["-m", "addrtype", "--dst-type", "LOCAL"].map(String::from);
    pre.extend(local.clone());
    tail(&mut pre);
    let mut out: Vec<String> = ["!", "-d", "127.0.0.0/8", "-p", proto].map(String::from).to_vec();
    out.extend(local);
    tail(&mut out);
    Ok(vec![("PREROUTING", pre), ("OUTPUT", out)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn filter_rules_read_like_iptables_s() {
        let m = Match {
            dst: Some("10.0.0.10/32".parse().unwrap()),
            proto: Some("tcp".into()),
            dport: Some(Ports(80, 80)),
            iif: Some("uplink".into()),
            ..Match::default()
        };
        assert_eq!(
            filter_rule(&m, Verdict::Accept, "fw").unwrap(),
            words(
                "-d 10.0.0.10/32 -i uplink -p tcp --dport 80 -m comment --comment nslab:fw -j ACCEPT"
            )
        );
        let m = Match { state: vec!["established".into(), "related".into()], ..Match::default() };
        assert_eq!(
            filter_rule(&m, Verdict::Accept, "fw").unwrap(),
            words(
                "-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment nslab:fw -j ACCEPT"
            )
        );
        assert_eq!(
            filter_rule(&Match::default(), Verdict::Drop, "fw").unwrap(),
            words("-m comment --comment nslab:fw -j DROP")
        );
        let m = Match {
            src: Some("10.0.0.77/24".parse().unwrap()),
            proto: Some("udp".into()),
            sport: Some(Ports(1000, 2000)),
            oif: Some("eth0".into()),
            ..Match::default()
        };
        assert_eq!(
            filter_rule(&m, Verdict::Reject, "x").unwrap(),
            words(
                "-s 10.0.0.0/24 -o eth0 -p udp --sport 1000:2000 -m comment --comment nslab:x -j REJECT"
            )
        );
    }

    #[test]
    fn bad_matches_are_refused_with_advice() {
        let e = |m: Match| filter_rule(&m, Verdict::Drop, "l").unwrap_err();
        let quoted = e(Match { oif: Some("x'".into()), ..Match::default() });
        assert_eq!(
            quoted.message,
            "interface name \"x'\" cannot be used in an iptables rule: it has a quote"
        );
        assert!(
            e(Match { iif: Some("a\"b".into()), ..Match::default() }).message.contains("quote")
        );
        assert_eq!(
            e(Match { dport: Some(Ports(80, 80)), ..Match::default() }).message,
            "ports need a protocol"
        );
        let icmp =
            Match { proto: Some("icmp".into()), dport: Some(Ports(1, 1)), ..Match::default() };
        assert_eq!(e(icmp).message, "ports need protocol tcp or udp, not icmp");
        assert!(
            e(Match { proto: Some("sctp".into()), ..Match::default() })
                .message
                .contains("unknown protocol")
        );
        assert!(
            e(Match { state: vec!["open".into()], ..Match::default() })
                .message
                .contains("\"open\"")
        );
        let v6 = Match { src: Some("fd00::1/64".parse().unwrap()), ..Match::default() };
        assert_eq!(e(v6).message, "src fd00::1/64 is IPv6; iptables rules are IPv4 only");
        assert!(chain("prerouting").is_err());
        assert_eq!(chain("Forward").unwrap(), "FORWARD");
        assert!(check_words(&words("-o x' -j DROP")).is_err());
        assert!(check_words(&words("-o x -j DROP")).is_ok());
    }

    #[test]
    fn nat_rules() {
        let net: IpNet = "10.200.1.0/24".parse().unwrap();
        assert_eq!(
            snat_rule(net, None, None, None, "k").unwrap(),
            words("-s 10.200.1.0/24 ! -d 10.200.1.0/24 -m comment --comment nslab:k -j MASQUERADE")
        );
        let all: IpNet = "10.200.0.0/16".parse().unwrap();
        assert_eq!(
            snat_rule(net, Some(all), Some("uplink"), None, "k").unwrap(),
            words(
                "-s 10.200.1.0/24 ! -d 10.200.0.0/16 -o uplink -m comment --comment nslab:k -j MASQUERADE"
            )
        );
        assert_eq!(
            snat_rule(net, None, None, Some("203.0.113.2".parse().unwrap()), "k").unwrap(),
            words(
                "-s 10.200.1.0/24 ! -d 10.200.1.0/24 -m comment --comment nslab:k -j SNAT --to-source 203.0.113.2"
            )
        );
        assert!(snat_rule(net, None, Some("u'"), None, "k").is_err());
        let m = Match {
            proto: Some("tcp".into()),
            dport: Some(Ports(8080, 8080)),
            iif: Some("uplink".into()),
            ..Match::default()
        };
        assert_eq!(
            dnat_rule(&m, "10.0.0.10:80".parse().unwrap(), "k").unwrap(),
            words(
                "-i uplink -p tcp --dport 8080 -m comment --comment nslab:k -j DNAT --to-destination 10.0.0.10:80"
            )
        );
        let m = Match { oif: Some("x".into()), ..Match::default() };
        assert!(dnat_rule(&m, "10.0.0.10:80".parse().unwrap(), "k").is_err());
    }

    #[test]
    fn port_forwards_answer_the_host_itself_too() {
        let to = "192.168.24.10:80".parse().unwrap();
        let r = port_forward_rules("tcp", 8080, None, to, "w").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, "PREROUTING");
        assert_eq!(
            r[0].1,
            words(
                "-p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:w -j DNAT --to-destination 192.168.24.10:80"
            )
        );
        assert_eq!(r[1].0, "OUTPUT");
        assert_eq!(
            r[1].1,
            words(
                "! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:w -j DNAT --to-destination 192.168.24.10:80"
            )
        );
        let r = port_forward_rules("udp", 53, Some("uplink"), to, "w").unwrap();
        assert_eq!(r.len(), 1, "traffic arriving on an interface never comes from OUTPUT");
    }
}
