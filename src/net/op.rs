//! Every change nslab makes to the kernel is an [`Op`]. The kernel executor applies it, the
//! plan executor prints it as the equivalent command, the journal records it, and teardown
//! reads the journal backwards. Ops are plain data: no Rhai, no netlink.

use std::fmt::Write as _;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};
use super::link_kind::LinkKind;
use super::tc::Qdisc;
use super::wireguard::{Secret, WgPeer};

/// Where an Op acts: None is the namespace nslab runs in (the host or the sandbox).
pub type Ns = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    NetnsAdd {
        name: String,
    },
    NetnsDel {
        name: String,
    },
    BridgeAdd {
        ns: Ns,
        name: String,
    },
    /// A veth pair; with `peer_ns` the peer is created directly inside that netns.
    VethAdd {
        ns: Ns,
        name: String,
        peer: String,
        peer_ns: Ns,
    },
    LinkUp {
        ns: Ns,
        dev: String,
    },
    LinkDown {
        ns: Ns,
        dev: String,
    },
    /// `master: None` is `nomaster`.
    LinkSetMaster {
        ns: Ns,
        dev: String,
        master: Option<String>,
    },
    LinkSetNetns {
        ns: Ns,
        dev: String,
        to: String,
    },
    LinkDel {
        ns: Ns,
        dev: String,
    },
    AddrAdd {
        ns: Ns,
        dev: String,
        cidr: IpNet,
    },
    AddrDel {
        ns: Ns,
        dev: String,
        cidr: IpNet,
    },
    /// `dest: None` is the default route.
    RouteAdd {
        ns: Ns,
        dest: Option<IpNet>,
        via: Option<std::net::IpAddr>,
        dev: Option<String>,
    },
    RouteDel {
        ns: Ns,
        dest: Option<IpNet>,
        via: Option<std::net::IpAddr>,
        dev: Option<String>,
    },
    /// `old` is the value before the change, filled in by the executor before it applies.
    SysctlSet {
        ns: Ns,
        key: String,
        value: String,
        old: Option<String>,
    },
    /// One iptables rule, as the argument list after `-A CHAIN`, owner comment included.
    IptAppend {
        ns: Ns,
        table: String,
        chain: String,
        rule: Vec<String>,
    },
    IptDelete {
        ns: Ns,
        table: String,
        chain: String,
        rule: Vec<String>,
    },
    /// The root qdisc of `dev` becomes `qdisc` (`Qdisc::Default` removes the one there).
    /// `old` is the root qdisc before the change, filled in by the executor before it
    /// applies: the undo sets it back.
    TcSet {
        ns: Ns,
        dev: String,
        qdisc: Qdisc,
        old: Option<Qdisc>,
    },
    /// A link of another kind than bridge or veth (`ip link add NAME type KIND ...`).
    LinkAdd {
        ns: Ns,
        name: String,
        kind: LinkKind,
    },
    /// `ip link set NAME type bridge vlan_filtering 0|1 stp_state 0|1`, on the lab's own
    /// bridges only (they take the setting with them).
    BridgeSet {
        ns: Ns,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vlan_filtering: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stp: Option<bool>,
    },
    /// `bridge vlan add dev PORT vid VID [pvid] [untagged] [self]`; `on_bridge` is `self`
    /// (the port is the bridge itself).
    BridgeVlanAdd {
        ns: Ns,
        port: String,
        vid: u16,
        pvid: bool,
        untagged: bool,
        on_bridge: bool,
    },
    BridgeVlanDel {
        ns: Ns,
        port: String,
        vid: u16,
        on_bridge: bool,
    },
    /// `wg set DEV ...` on the lab's own WireGuard link. The private key is a
    /// [`Secret`]: it prints and journals as `<private key>`.
    WireguardSet {
        ns: Ns,
        dev: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listen_port: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peers: Option<Vec<WgPeer>>,
    },
}

impl Op {
    pub fn ns(&self) -> Option<&str> {
        match self {
            Op::NetnsAdd { .. } | Op::NetnsDel { .. } => None,
            Op::BridgeAdd { ns, .. }
            | Op::VethAdd { ns, .. }
            | Op::LinkUp { ns, .. }
            | Op::LinkDown { ns, .. }
            | Op::LinkSetMaster { ns, .. }
            | Op::LinkSetNetns { ns, .. }
            | Op::LinkDel { ns, .. }
            | Op::AddrAdd { ns, .. }
            | Op::AddrDel { ns, .. }
            | Op::RouteAdd { ns, .. }
            | Op::RouteDel { ns, .. }
            | Op::SysctlSet { ns, .. }
            | Op::IptAppend { ns, .. }
            | Op::IptDelete { ns, .. }
            | Op::TcSet { ns, .. }
            | Op::LinkAdd { ns, .. }
            | Op::BridgeSet { ns, .. }
            | Op::BridgeVlanAdd { ns, .. }
            | Op::BridgeVlanDel { ns, .. }
            | Op::WireguardSet { ns, .. } => ns.as_deref(),
        }
    }

    /// The sysctl writes `--no-ipv6` adds to this op, as `SysctlSet` ops (for `--explain` and
    /// the plan; the kernel layer makes them itself, see `Kernel::set_no_ipv6`): IPv6 off in
    /// a new netns before anything exists in it, and on each link the op creates in a netns
    /// for which `v6_off` is false. They need no undo: they die with their netns or link.
    pub fn no_ipv6_writes(&self, v6_off: impl Fn(Option<&str>) -> bool) -> Vec<Op> {
        let write = |ns: Option<&str>, key: String| Op::SysctlSet {
            ns: ns.map(str::to_string),
            key,
            value: "1".into(),
            old: None,
        };
        let link = |ns: Option<&str>, dev: &str| {
            (!v6_off(ns))
                .then(|| write(ns, format!("net.ipv6.conf.{}.disable_ipv6", sysctl_component(dev))))
        };
        match self {
            Op::NetnsAdd { name } => ["all", "default"]
                .iter()
                .map(|c| write(Some(name), format!("net.ipv6.conf.{c}.disable_ipv6")))
                .collect(),
            Op::BridgeAdd { ns, name } => link(ns.as_deref(), name).into_iter().collect(),
            Op::VethAdd { ns, name, peer, peer_ns } => {
                let peer_at = peer_ns.as_deref().or(ns.as_deref());
                link(ns.as_deref(), name).into_iter().chain(link(peer_at, peer)).collect()
            }
            Op::LinkAdd { ns, name, .. } => link(ns.as_deref(), name).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The equivalent iproute2 / sysctl / iptables command line, as a learner would type it.
    pub fn command(&self) -> String {
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
            Op::RouteAdd { ns, dest, via, dev } | Op::RouteDel { ns, dest, via, dev } => {
                let verb = if matches!(self, Op::RouteAdd { .. }) { "add" } else { "del" };
                let family = match (dest, via) {
                    (None, Some(std::net::IpAddr::V6(_))) => "-6 ",
                    _ => "",
                };
                write!(s, "{}{family}route {verb} ", n(ns))?;
                match dest {
                    Some(d) => write!(s, "{}", q(&d.to_string()))?,
                    None => write!(s, "default")?,
                }
                if let Some(v) = via {
                    write!(s, " via {}", q(&v.to_string()))?;
                }
                if let Some(d) = dev {
                    write!(s, " dev {}", q(d))?;
                }
                Ok(())
            }
            Op::SysctlSet { ns, key, value, .. } => {
                // One word: a value with a space (`ping_group_range`) must stay one.
                let kv = q(&format!("{key}={value}"));
                match ns {
                    Some(ns) => write!(s, "ip netns exec {} sysctl -qw {kv}", q(ns)),
                    None => write!(s, "sysctl -qw {kv}"),
                }
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
                let args = super::wireguard::command_args(
                    dev,
                    private_key.as_ref(),
                    *listen_port,
                    peers.as_deref(),
                );
                write!(s, "wg set {args}")
            }
            Op::IptAppend { ns, table, chain, rule } | Op::IptDelete { ns, table, chain, rule } => {
                let flag = if matches!(self, Op::IptAppend { .. }) { "-A" } else { "-D" };
                if let Some(ns) = ns {
                    write!(s, "ip netns exec {} ", q(ns))?;
                }
                write!(s, "iptables -t {} {flag} {} {}", q(table), q(chain), shell_words(rule))
            }
            Op::TcSet { ns, dev, qdisc, .. } => {
                write!(s, "{}", qdisc.command(ns.as_deref().map(q).as_deref(), &q(dev)))
            }
        }
    }
}

/// `bridge`'s netns option (`-n NS `), empty where nslab runs.
fn bridge_n(ns: &Ns) -> String {
    ns.as_ref().map(|n| format!("-n {} ", q(n))).unwrap_or_default()
}

/// One word for a shell: as it is when it needs no quotes, else in single quotes.
pub fn q(word: &str) -> String {
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

/// An IPv6 link-local address (fe80::/10): the same on every link, so meaningless without one.
pub fn is_link_local(a: std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V6(v) if v.is_unicast_link_local())
}

/// Joins arguments for a shell, quoting only where needed.
pub fn shell_words(args: &[String]) -> String {
    args.iter().map(|a| if a == "!" { a.clone() } else { q(a) }).collect::<Vec<_>>().join(" ")
}

/// Interface names: at most 15 bytes (IFNAMSIZ - 1), no `/`, no white space, not `.`/`..`.
pub fn check_ifname(name: &str) -> NetResult<()> {
    let bad = |why: &str| {
        Err(NetError::new(format!("invalid interface name {name:?}: {why}"))
            .with_errno(libc::EINVAL))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 15 {
        return Err(NetError::new(format!(
            "invalid interface name {name:?}: it is {} bytes long, the kernel allows at most 15",
            name.len()
        ))
        .with_errno(libc::EINVAL)
        .with_help("shorten it, e.g. use a short prefix like `v-` instead of `veth-`"));
    }
    if name == "all" || name == "default" {
        // The kernel refuses them (EINVAL): they would clash with net.*.conf.all/default.
        return bad("`all` and `default` are the names of the sysctl sets every link inherits");
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        // A NUL would end the name early in the kernel (which then acts on another link
        // than the journal records), and the rest are the kernel's own dev_valid_name rules.
        return bad("names may not contain `/`, `:`, white space or control characters");
    }
    Ok(())
}

/// Netns names become file names under /run/netns.
pub fn check_netns_name(name: &str) -> NetResult<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(NetError::new(format!("invalid netns name {name:?}"))
            .with_errno(libc::EINVAL)
            .with_help("use letters, digits, `-`, `_` and `.` (at most 64 characters)"));
    }
    Ok(())
}

/// The key's path under /proc/sys. As with sysctl(8), a `/` inside a dotted key stands for a
/// `.` in that component: `net.ipv4.conf.br/10.forwarding` is the file
/// `net/ipv4/conf/br.10/forwarding` (a link named `br.10`).
pub fn sysctl_path(key: &str) -> String {
    let parts: Vec<String> = key.split('.').map(|p| p.replace('/', ".")).collect();
    format!("/proc/sys/{}", parts.join("/"))
}

/// A link name as one component of a dotted sysctl key (see [`sysctl_path`]).
pub fn sysctl_component(dev: &str) -> String {
    dev.replace('.', "/")
}

/// `net.*` sysctl keys only, as dotted names; also guards the /proc/sys path built from it.
pub fn check_sysctl_key(key: &str) -> NetResult<()> {
    let ok = key.starts_with("net.")
        && key.split('.').map(|p| p.replace('/', ".")).all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
        });
    if !ok {
        return Err(NetError::new(format!("invalid sysctl key {key:?}"))
            .with_errno(libc::EINVAL)
            .with_help(
                "only per-network-namespace keys are allowed, e.g. \"net.ipv4.ip_forward\"",
            ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ipv6_turns_v6_off_in_new_netns_and_on_links_outside_them() {
        let cmds = |op: Op| -> Vec<String> {
            op.no_ipv6_writes(|ns| ns == Some("red")).iter().map(Op::command).collect()
        };
        assert_eq!(
            cmds(Op::NetnsAdd { name: "red".into() }),
            [
                "ip netns exec red sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                "ip netns exec red sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
            ]
        );
        // The end created in red needs nothing: red was made with IPv6 off.
        let veth = Op::VethAdd {
            ns: None,
            name: "v-br".into(),
            peer: "v".into(),
            peer_ns: Some("red".into()),
        };
        assert_eq!(cmds(veth), ["sysctl -qw net.ipv6.conf.v-br.disable_ipv6=1"]);
        let bridge = Op::BridgeAdd { ns: Some("red".into()), name: "br".into() };
        assert!(cmds(bridge).is_empty());
        assert!(cmds(Op::LinkUp { ns: None, dev: "v-br".into() }).is_empty());
    }

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
        };
        assert_eq!(op.command(), r"ip -6 route add default via fe80::1 dev 'e'\''x'");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_words(&["a b".into(), "it's".into(), "x".into()]), r"'a b' 'it'\''s' x");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_ifname("veth-red-br").is_ok());
        let e = check_ifname("veth-very-long-name").unwrap_err();
        assert_eq!(
            e.message,
            "invalid interface name \"veth-very-long-name\": it is 19 bytes long, the kernel allows at most 15"
        );
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("uplink\0").is_err(), "the kernel would read `uplink`");
        assert!(check_ifname("br\u{7}").is_err());
        assert!(check_netns_name("red").is_ok());
        assert!(check_netns_name("../etc").is_err());
        assert!(check_sysctl_key("net.ipv4.ip_forward").is_ok());
        assert!(check_sysctl_key("kernel.panic").is_err());
        assert!(check_sysctl_key("net.ipv4/../../x").is_err());
        assert!(check_sysctl_key("net.ipv4.conf.//.x").is_err(), "`//` would be `..`");
        assert!(check_sysctl_key("net.ipv4.conf.br/10.forwarding").is_ok());
        assert_eq!(
            sysctl_path("net.ipv4.conf.br/10.forwarding"),
            "/proc/sys/net/ipv4/conf/br.10/forwarding"
        );
        assert_eq!(sysctl_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
    }

    #[test]
    fn ops_round_trip_through_json() {
        let op = Op::RouteAdd {
            ns: None,
            dest: Some("10.0.0.0/8".parse().unwrap()),
            via: None,
            dev: Some("br0".into()),
        };
        let j = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&j).unwrap(), op);
    }
}
