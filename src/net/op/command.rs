//! What an Op looks like as a command line (`--explain`, `nslab plan`): the iproute2 /
//! sysctl / iptables line a learner would type, every word from a recipe quoted.

use std::fmt::Write as _;

use super::{Ns, Op};
use crate::net::link_kind::LinkKind;
use crate::net::routing;
use crate::net::rule::rule_command;

impl Op {
    /// The equivalent iproute2 / sysctl / iptables command line, as a learner would type it.
    pub(crate) fn command(&self) -> String {
        let mut s = String::new();
        self.write_command(&mut s).expect("writing to a String cannot fail");
        s
    }

    fn write_command(&self, s: &mut String) -> std::fmt::Result {
        // Every word that is not a fixed keyword is quoted for the shell (`q`): names and
        // values come from recipes, and the plan is a bash script. Ordinary names need no
        // quotes and print as they are.
        let n = |ns: &Ns| match ns {
            Some(ns) => format!("ip -n {} ", q(ns)),
            None => "ip ".to_string(),
        };
        match self {
            Op::NetnsAdd { name } => write!(s, "ip netns add {}", q(name)),
            Op::NetnsDel { name } => write!(s, "ip netns del {}", q(name)),
            Op::BridgeAdd { ns, name } => {
                write!(s, "{}link add {} type bridge", n(ns), link_arg("name", name))
            }
            Op::VethAdd { ns, name, peer, peer_ns } => {
                let name = link_arg("name", name);
                write!(s, "{}link add {name} type veth peer name {}", n(ns), q(peer))?;
                match peer_ns {
                    Some(p) => write!(s, " netns {}", q(p)),
                    None => Ok(()),
                }
            }
            Op::LinkUp { ns, dev } => write!(s, "{}link set {} up", n(ns), link_arg("dev", dev)),
            Op::LinkDown { ns, dev } => {
                write!(s, "{}link set {} down", n(ns), link_arg("dev", dev))
            }
            Op::LinkSetMaster { ns, dev, master: Some(m) } => {
                write!(s, "{}link set {} master {}", n(ns), link_arg("dev", dev), q(m))
            }
            Op::LinkSetMaster { ns, dev, master: None } => {
                write!(s, "{}link set {} nomaster", n(ns), link_arg("dev", dev))
            }
            Op::LinkSetNetns { ns, dev, to } => {
                write!(s, "{}link set {} netns {}", n(ns), link_arg("dev", dev), q(to))
            }
            Op::LinkDel { ns, dev } => write!(s, "{}link del {}", n(ns), link_arg("dev", dev)),
            Op::AddrAdd { ns, dev, cidr } => {
                let nodad = if cidr.addr().is_ipv6() { " nodad" } else { "" };
                write!(s, "{}addr add {} dev {}{nodad}", n(ns), q(&cidr.to_string()), q(dev))
            }
            Op::AddrDel { ns, dev, cidr } => {
                write!(s, "{}addr del {} dev {}", n(ns), q(&cidr.to_string()), q(dev))
            }
            Op::RouteAdd { ns, dest, via, dev, opts }
            | Op::RouteDel { ns, dest, via, dev, opts } => {
                let verb = if matches!(self, Op::RouteAdd { .. }) { "add" } else { "del" };
                // `ip` takes the family from the first address it reads; a default route
                // has none, so say it when the route is IPv6.
                let family = match dest {
                    None if routing::family_v6(*dest, *via, opts) => "-6 ",
                    _ => "",
                };
                let words = routing::route_words(*dest, *via, dev.as_deref(), opts);
                write!(s, "{}{family}route {verb} {words}", n(ns))
            }
            Op::RuleAdd { ns, rule } => write!(s, "{}", rule_command(ns.as_deref(), true, rule)),
            Op::RuleDel { ns, rule } => write!(s, "{}", rule_command(ns.as_deref(), false, rule)),
            Op::SysctlSet { ns, key, value, .. } | Op::SysctlTemp { ns, key, value, .. } => {
                // One word: a value with a space (`ping_group_range`) must stay one.
                let kv = q(&format!("{key}={value}"));
                match ns {
                    Some(ns) => write!(s, "ip netns exec {} sysctl -qw {kv}", q(ns)),
                    None => write!(s, "sysctl -qw {kv}"),
                }
            }
            Op::TcSet { ns, dev, qdisc, .. } => {
                write!(s, "{}", qdisc.command(ns.as_deref().map(q).as_deref(), &q(dev)))
            }
            Op::LinkAdd { ns, name, kind } => {
                let name = match kind {
                    LinkKind::Tap => q(name),
                    _ => link_arg("name", name),
                };
                write!(s, "{}{}", n(ns), kind.command(&name))
            }
            Op::BridgeSet { ns, name, vlan_filtering, stp } => {
                write!(s, "{}link set {} type bridge", n(ns), link_arg("dev", name))?;
                if let Some(v) = vlan_filtering {
                    write!(s, " vlan_filtering {}", u8::from(*v))?;
                }
                if let Some(v) = stp {
                    write!(s, " stp_state {}", u8::from(*v))?;
                }
                Ok(())
            }
            Op::BridgeVlanAdd { ns, port, vid, pvid, untagged, on_bridge } => {
                write!(s, "bridge {}vlan add dev {} vid {vid}", bridge_n(ns), q(port))?;
                for (on, word) in
                    [(*pvid, " pvid"), (*untagged, " untagged"), (*on_bridge, " self")]
                {
                    if on {
                        s.push_str(word);
                    }
                }
                Ok(())
            }
            Op::BridgeVlanDel { ns, port, vid, on_bridge } => {
                let own = if *on_bridge { " self" } else { "" };
                write!(s, "bridge {}vlan del dev {} vid {vid}{own}", bridge_n(ns), q(port))
            }
            Op::WireguardSet { ns, dev, private_key, listen_port, peers } => {
                if let Some(ns) = ns {
                    write!(s, "ip netns exec {} ", q(ns))?;
                }
                let args = crate::net::wireguard::command_args(
                    dev,
                    private_key.as_ref(),
                    *listen_port,
                    peers.as_deref(),
                );
                write!(s, "wg set {args}")
            }
            Op::LinkSet { ns, dev, set, .. } => {
                write!(s, "{}link set {}", n(ns), link_arg("dev", dev))?;
                if let Some(mtu) = set.mtu {
                    write!(s, " mtu {mtu}")?;
                }
                if let Some(mac) = &set.mac {
                    write!(s, " address {}", q(mac))?;
                }
                if let Some(len) = set.txqueuelen {
                    write!(s, " txqueuelen {len}")?;
                }
                Ok(())
            }
            Op::LinkGroupDel { ns, group } => write!(s, "{}link del group {group}", n(ns)),
            Op::NetnsForget { name } => write!(
                s,
                "# netns {} was deleted and made again by someone else: the lab forgets it",
                q(name)
            ),
            Op::IptAppend { ns, table, chain, rule } | Op::IptDelete { ns, table, chain, rule } => {
                let flag = if matches!(self, Op::IptAppend { .. }) { "-A" } else { "-D" };
                if let Some(ns) = ns {
                    write!(s, "ip netns exec {} ", q(ns))?;
                }
                write!(s, "iptables -t {} {flag} {} {}", q(table), q(chain), shell_words(rule))
            }
        }
    }
}

/// `bridge`'s netns option (`-n NS `), empty where nslab runs.
fn bridge_n(ns: &Ns) -> String {
    ns.as_ref().map(|n| format!("-n {} ", q(n))).unwrap_or_default()
}

/// One word for a shell: as it is when it needs no quotes, else in single quotes.
pub(crate) fn q(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words `ip link add/set/del` parses as keywords; iproute2 accepts any prefix of most of
/// them (`matches()`), so a link named `a` reads as `address`, `up` as `up`, `he` as `help`.
const IP_LINK_KEYWORDS: &[&str] = &[
    "add",
    "address",
    "addrgenmode",
    "alias",
    "allmulticast",
    "alt",
    "altname",
    "arp",
    "brd",
    "broadcast",
    "carrier",
    "change",
    "del",
    "delete",
    "dev",
    "down",
    "dynamic",
    "gro_ipv4_max_size",
    "gro_max_size",
    "group",
    "gso_ipv4_max_size",
    "gso_max_segs",
    "gso_max_size",
    "help",
    "index",
    "link",
    "link-netns",
    "link-netnsid",
    "master",
    "mode",
    "mtu",
    "multicast",
    "name",
    "netns",
    "nomaster",
    "novrf",
    "numrxqueues",
    "numtxqueues",
    "parentdev",
    "promisc",
    "protodown",
    "protodown_reason",
    "qlen",
    "set",
    "state",
    "trailers",
    "tso_max_segs",
    "tso_max_size",
    "txqlen",
    "txqueuelen",
    "type",
    "up",
    "vf",
    "vrf",
    "xdp",
    "xdpdrv",
    "xdpgeneric",
    "xdpoffload",
];

/// A link name where `ip link` expects one: with its keyword (`name a`, `dev up`) when
/// `ip` would read the bare name as a keyword, else bare (as people type it).
fn link_arg(keyword: &str, name: &str) -> String {
    if IP_LINK_KEYWORDS.iter().any(|k| k.starts_with(name)) {
        format!("{keyword} {}", q(name))
    } else {
        q(name)
    }
}

/// Joins arguments for a shell, quoting only where needed.
pub(crate) fn shell_words(args: &[String]) -> String {
    args.iter().map(|a| if a == "!" { a.clone() } else { q(a) }).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_like_iproute2() {
        let op = Op::VethAdd {
            ns: None,
            name: "veth-red".into(),
            peer: "veth-red-br".into(),
            peer_ns: Some("red".into()),
        };
        assert_eq!(op.command(), "ip link add veth-red type veth peer name veth-red-br netns red");
        let op = Op::AddrAdd {
            ns: Some("red".into()),
            dev: "veth-red".into(),
            cidr: "192.168.24.10/24".parse().unwrap(),
        };
        assert_eq!(op.command(), "ip -n red addr add 192.168.24.10/24 dev veth-red");
        let op = Op::RouteAdd {
            ns: Some("red".into()),
            dest: None,
            via: Some("192.168.24.1".parse().unwrap()),
            dev: None,
            opts: Default::default(),
        };
        assert_eq!(op.command(), "ip -n red route add default via 192.168.24.1");
        let op = Op::IptAppend {
            ns: None,
            table: "nat".into(),
            chain: "POSTROUTING".into(),
            rule: vec![
                "-s".into(),
                "192.168.24.0/24".into(),
                "!".into(),
                "-d".into(),
                "192.168.24.0/24".into(),
                "-j".into(),
                "MASQUERADE".into(),
            ],
        };
        assert_eq!(
            op.command(),
            "iptables -t nat -A POSTROUTING -s 192.168.24.0/24 ! -d 192.168.24.0/24 -j MASQUERADE"
        );
        let op = Op::SysctlSet {
            ns: Some("r".into()),
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
            old: None,
        };
        assert_eq!(op.command(), "ip netns exec r sysctl -qw net.ipv4.ip_forward=1");
    }

    #[test]
    fn every_word_from_a_recipe_is_quoted() {
        let op = Op::BridgeAdd { ns: None, name: "b$(id>&2)".into() };
        assert_eq!(op.command(), "ip link add 'b$(id>&2)' type bridge");
        let op = Op::SysctlSet {
            ns: Some("r".into()),
            key: "net.ipv4.ping_group_range".into(),
            value: "0 2147483647".into(),
            old: None,
        };
        assert_eq!(
            op.command(),
            "ip netns exec r sysctl -qw 'net.ipv4.ping_group_range=0 2147483647'"
        );
        let op = Op::SysctlSet {
            ns: None,
            key: "net.ipv4.ip_forward".into(),
            value: "1;echo PWNED>&2".into(),
            old: None,
        };
        assert_eq!(op.command(), "sysctl -qw 'net.ipv4.ip_forward=1;echo PWNED>&2'");
        let op = Op::RouteAdd {
            ns: None,
            dest: None,
            via: Some("fe80::1".parse().unwrap()),
            dev: Some("e'x".into()),
            opts: Default::default(),
        };
        assert_eq!(op.command(), r"ip -6 route add default via fe80::1 dev 'e'\''x'");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_words(&["a b".into(), "it's".into(), "x".into()]), r"'a b' 'it'\''s' x");
    }
}
