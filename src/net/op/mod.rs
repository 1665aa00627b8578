//! Every change nslab makes to the kernel is an [`Op`]. The kernel executor applies it, the
//! plan executor prints it as the equivalent command, the journal records it, and teardown
//! reads the journal backwards. Ops are plain data: no Rhai, no netlink.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::link_kind::LinkKind;
use super::routing::{self, RouteOpts};
use super::rule::RuleSpec;
use super::tc::Qdisc;
use super::wireguard::{Secret, WgPeer};

pub(crate) use command::{q, shell_words};
pub(crate) use names::{
    check_ifname, check_netns_name, check_sysctl_key, is_link_local, parse_mac, sysctl_component,
    sysctl_path,
};

mod command;
mod names;

/// Where an Op acts: None is the namespace nslab runs in (the host or the sandbox).
pub(crate) type Ns = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
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
    /// `dest: None` is the default route. `opts` holds the rest (type, multipath, table,
    /// metric, source, onlink); absent from the journal when plain.
    RouteAdd {
        ns: Ns,
        dest: Option<IpNet>,
        via: Option<std::net::IpAddr>,
        dev: Option<String>,
        #[serde(default, skip_serializing_if = "RouteOpts::is_plain")]
        opts: RouteOpts,
    },
    RouteDel {
        ns: Ns,
        dest: Option<IpNet>,
        via: Option<std::net::IpAddr>,
        dev: Option<String>,
        #[serde(default, skip_serializing_if = "RouteOpts::is_plain")]
        opts: RouteOpts,
    },
    /// A policy routing rule (`ip rule add`); the executor fills in the priority the kernel
    /// would pick when the recipe gave none, so that the journal names exactly this rule.
    RuleAdd {
        ns: Ns,
        rule: RuleSpec,
    },
    RuleDel {
        ns: Ns,
        rule: RuleSpec,
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
    /// `ip link set DEV mtu N address MAC txqueuelen N` (only what `set` names). `old` is
    /// what those attributes were before, filled in by the executor before it applies.
    LinkSet {
        ns: Ns,
        dev: String,
        set: LinkAttrs,
        old: Option<LinkAttrs>,
    },
    /// A sysctl an executor changes for the span of one other Op and puts back itself right
    /// after (`promote_secondaries` around an address delete on a foreign link). Journaled
    /// with `old` like any Op, so destroy puts it back when a crash fell in between; unlike
    /// [`Op::SysctlSet`] no lab relies on the value, so it takes no claim.
    SysctlTemp {
        ns: Ns,
        key: String,
        value: String,
        old: String,
    },
    /// Every link of link group `group` in `ns`, in one request (`ip link del group N`):
    /// teardown's way to delete a lab's links.
    LinkGroupDel {
        ns: Ns,
        group: u32,
    },
    /// Not a kernel change: the lab's netns `name` was deleted and made again by someone
    /// else, so from here on it is not the lab's (journaled so that destroy leaves it alone).
    NetnsForget {
        name: String,
    },
}

/// The link attributes `link::set` changes; None leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkAttrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) txqueuelen: Option<u32>,
}

/// Applies `op` with `apply`, bracketed by the temporary write `temp` (see
/// [`Op::promote_write`]) and its inverse when there is one: the write is put back whether
/// `op` worked or not. One sequence for the kernel executor, the plan and teardown.
pub(crate) fn bracketed(
    temp: Option<Op>,
    op: Op,
    mut apply: impl FnMut(Op) -> super::NetResult<()>,
) -> super::NetResult<()> {
    let Some(temp) = temp else { return apply(op) };
    let back = temp.inverse().expect("a temporary write knows its old value");
    apply(temp)?;
    let r = apply(op);
    r.and(apply(back))
}

/// `--no-ipv6` in a new netns: `all` (every link there now) and `default` (every link made
/// there later).
pub(crate) fn v6_off_netns(name: &str) -> [Op; 2] {
    ["all", "default"].map(|c| Op::SysctlSet {
        ns: Some(name.to_string()),
        key: format!("net.ipv6.conf.{c}.disable_ipv6"),
        value: "1".into(),
        old: None,
    })
}

/// `--no-ipv6` on link `dev` of `ns`, before it can come up.
pub(crate) fn v6_off_link(ns: &Ns, dev: &str) -> Op {
    Op::SysctlSet {
        ns: ns.clone(),
        key: format!("net.ipv6.conf.{}.disable_ipv6", sysctl_component(dev)),
        value: "1".into(),
        old: None,
    }
}

/// `earlier` is an `AddrAdd` for which `f(ns, dev, cidr)` holds.
fn matches_addr_add(earlier: &Op, f: impl Fn(&Ns, &String, &IpNet) -> bool) -> bool {
    let Op::AddrAdd { ns, dev, cidr } = earlier else { return false };
    f(ns, dev, cidr)
}

impl Op {
    pub(crate) fn ns(&self) -> Option<&str> {
        match self {
            Op::NetnsAdd { .. } | Op::NetnsDel { .. } | Op::NetnsForget { .. } => None,
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
            | Op::RuleAdd { ns, .. }
            | Op::RuleDel { ns, .. }
            | Op::SysctlSet { ns, .. }
            | Op::IptAppend { ns, .. }
            | Op::IptDelete { ns, .. }
            | Op::LinkSet { ns, .. }
            | Op::SysctlTemp { ns, .. }
            | Op::LinkGroupDel { ns, .. }
            | Op::TcSet { ns, .. }
            | Op::LinkAdd { ns, .. }
            | Op::BridgeSet { ns, .. }
            | Op::BridgeVlanAdd { ns, .. }
            | Op::BridgeVlanDel { ns, .. }
            | Op::WireguardSet { ns, .. } => ns.as_deref(),
        }
    }

    /// Whether applying this Op runs the `iptables` binary (a process that can outlive a
    /// killed nslab).
    pub(crate) fn runs_iptables(&self) -> bool {
        matches!(self, Op::IptAppend { .. } | Op::IptDelete { .. })
    }

    /// Every netns this Op names: where it acts, and the netns it deletes, moves a link to or
    /// makes a veth end in.
    pub(crate) fn netns_named(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.ns().into_iter().collect();
        match self {
            Op::NetnsDel { name } => names.push(name),
            Op::LinkSetNetns { to, .. } => names.push(to),
            Op::VethAdd { peer_ns: Some(p), .. } => names.push(p),
            Op::VethAdd { peer_ns: None, .. }
            | Op::TcSet { .. }
            | Op::LinkAdd { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::BridgeVlanDel { .. }
            | Op::WireguardSet { .. }
            | Op::NetnsAdd { .. }
            | Op::NetnsForget { .. }
            | Op::BridgeAdd { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::LinkDel { .. }
            | Op::LinkSet { .. }
            | Op::LinkGroupDel { .. }
            | Op::AddrAdd { .. }
            | Op::AddrDel { .. }
            | Op::RouteAdd { .. }
            | Op::RouteDel { .. }
            | Op::RuleAdd { .. }
            | Op::RuleDel { .. }
            | Op::SysctlSet { .. }
            | Op::SysctlTemp { .. }
            | Op::IptAppend { .. }
            | Op::IptDelete { .. } => {}
        }
        names
    }

    /// The Op that undoes this one, when there is one to apply: None for what cannot be
    /// undone by an Op (a deleted link or netns is gone), for what is undone otherwise (a
    /// link moved into a lab netns dies with it), and for a change whose old value is not
    /// known yet (filled in by the executor).
    pub(crate) fn inverse(&self) -> Option<Op> {
        Some(match self {
            Op::NetnsAdd { name } => Op::NetnsDel { name: name.clone() },
            Op::BridgeAdd { ns, name } | Op::LinkAdd { ns, name, .. } => {
                Op::LinkDel { ns: ns.clone(), dev: name.clone() }
            }
            Op::BridgeVlanAdd { ns, port, vid, on_bridge, .. } => Op::BridgeVlanDel {
                ns: ns.clone(),
                port: port.clone(),
                vid: *vid,
                on_bridge: *on_bridge,
            },
            // Deleting one end of a veth deletes both.
            Op::VethAdd { ns, name, .. } => Op::LinkDel { ns: ns.clone(), dev: name.clone() },
            Op::LinkUp { ns, dev } => Op::LinkDown { ns: ns.clone(), dev: dev.clone() },
            Op::LinkDown { ns, dev } => Op::LinkUp { ns: ns.clone(), dev: dev.clone() },
            Op::LinkSetNetns { ns: Some(from), dev, to } => {
                Op::LinkSetNetns { ns: Some(to.clone()), dev: dev.clone(), to: from.clone() }
            }
            Op::AddrAdd { ns, dev, cidr } => {
                Op::AddrDel { ns: ns.clone(), dev: dev.clone(), cidr: *cidr }
            }
            Op::AddrDel { ns, dev, cidr } => {
                Op::AddrAdd { ns: ns.clone(), dev: dev.clone(), cidr: *cidr }
            }
            // Exactly the lab's route: its metric named (the kernel's when the recipe gave
            // none), so an equal route with another metric survives.
            Op::RouteAdd { ns, dest, via, dev, opts } => {
                let mut opts = opts.clone();
                opts.metric = Some(opts.metric_for(routing::family_v6(*dest, *via, &opts)));
                Op::RouteDel { ns: ns.clone(), dest: *dest, via: *via, dev: dev.clone(), opts }
            }
            Op::RouteDel { ns, dest, via, dev, opts } => Op::RouteAdd {
                ns: ns.clone(),
                dest: *dest,
                via: *via,
                dev: dev.clone(),
                opts: opts.clone(),
            },
            // The executor recorded the rule with its priority: exactly that one.
            Op::RuleAdd { ns, rule } => Op::RuleDel { ns: ns.clone(), rule: rule.clone() },
            Op::RuleDel { ns, rule } => Op::RuleAdd { ns: ns.clone(), rule: rule.clone() },
            Op::SysctlSet { ns, key, value, old: Some(old) } => Op::SysctlSet {
                ns: ns.clone(),
                key: key.clone(),
                value: old.clone(),
                old: Some(value.clone()),
            },
            Op::SysctlTemp { ns, key, value, old } => Op::SysctlTemp {
                ns: ns.clone(),
                key: key.clone(),
                value: old.clone(),
                old: value.clone(),
            },
            Op::IptAppend { ns, table, chain, rule } => Op::IptDelete {
                ns: ns.clone(),
                table: table.clone(),
                chain: chain.clone(),
                rule: rule.clone(),
            },
            Op::IptDelete { ns, table, chain, rule } => Op::IptAppend {
                ns: ns.clone(),
                table: table.clone(),
                chain: chain.clone(),
                rule: rule.clone(),
            },
            Op::TcSet { ns, dev, qdisc, old: Some(old) } => Op::TcSet {
                ns: ns.clone(),
                dev: dev.clone(),
                qdisc: old.clone(),
                old: Some(qdisc.clone()),
            },
            Op::LinkSet { ns, dev, set, old: Some(old) } => Op::LinkSet {
                ns: ns.clone(),
                dev: dev.clone(),
                set: old.clone(),
                old: Some(set.clone()),
            },
            // Settings of the lab's own links: they go with the link.
            Op::BridgeSet { .. } | Op::WireguardSet { .. } | Op::BridgeVlanDel { .. } => {
                return None;
            }
            Op::LinkSetNetns { ns: None, .. }
            | Op::TcSet { old: None, .. }
            | Op::SysctlSet { old: None, .. }
            | Op::LinkSet { old: None, .. }
            | Op::LinkSetMaster { .. }
            | Op::NetnsDel { .. }
            | Op::LinkDel { .. }
            | Op::LinkGroupDel { .. }
            | Op::NetnsForget { .. } => return None,
        })
    }

    /// True when this Op takes back `earlier` (the lab undoing its own change, so teardown
    /// has nothing left to undo for it): a delete of what `earlier` added, or a temporary
    /// write putting back what `earlier` changed. A route delete may leave out the gateway
    /// and the link, as `ip route del` may.
    pub(crate) fn cancels(&self, earlier: &Op) -> bool {
        match self {
            Op::AddrDel { ns, dev, cidr } => {
                matches_addr_add(earlier, |n, d, c| n == ns && d == dev && c == cidr)
            }
            Op::RouteDel { ns, dest, via, dev, opts } => {
                let Op::RouteAdd { ns: n, dest: de, via: v, dev: d, opts: o } = earlier else {
                    return false;
                };
                // What the recipe left out matches anything, as with `ip route del`.
                n == ns
                    && de == dest
                    && (via.is_none() || v == via)
                    && (dev.is_none() || d == dev)
                    && opts.kind == o.kind
                    && opts.table() == o.table()
                    && (opts.metric.is_none()
                        || opts.metric == Some(o.metric_for(routing::family_v6(*de, *v, o))))
                    && (opts.src.is_none() || opts.src == o.src)
                    && (opts.nexthops.is_empty() || opts.nexthops == o.nexthops)
                    && (opts.protocol.is_none() || opts.protocol == o.protocol)
            }
            Op::RuleDel { ns, rule } => {
                matches!(earlier, Op::RuleAdd { ns: n, rule: r } if n == ns && r.matches(rule))
            }
            Op::IptDelete { ns, table, chain, rule } => {
                let Op::IptAppend { ns: n, table: t, chain: c, rule: r } = earlier else {
                    return false;
                };
                n == ns && t == table && c == chain && r == rule
            }
            Op::SysctlTemp { ns, key, value, .. } => {
                let Op::SysctlTemp { ns: n, key: k, old, .. } = earlier else { return false };
                n == ns && k == key && old == value
            }
            Op::BridgeVlanDel { ns, port, vid, on_bridge } => {
                let Op::BridgeVlanAdd { ns: n, port: p, vid: v, on_bridge: o, .. } = earlier else {
                    return false;
                };
                n == ns && p == port && v == vid && o == on_bridge
            }
            Op::NetnsAdd { .. }
            | Op::NetnsDel { .. }
            | Op::NetnsForget { .. }
            | Op::BridgeAdd { .. }
            | Op::VethAdd { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::LinkSetNetns { .. }
            | Op::LinkDel { .. }
            | Op::LinkSet { .. }
            | Op::LinkGroupDel { .. }
            | Op::TcSet { .. }
            | Op::LinkAdd { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::WireguardSet { .. }
            | Op::AddrAdd { .. }
            | Op::RouteAdd { .. }
            | Op::RuleAdd { .. }
            | Op::SysctlSet { .. }
            | Op::IptAppend { .. } => false,
        }
    }

    /// The temporary write an address delete needs: deleting an IPv4 address deletes the
    /// secondaries of its subnet with it (other addresses in the same prefix added after
    /// it) unless the link promotes them, so a lab address on a foreign link would take the
    /// owner's own address along (seen with `promote_secondaries` 0, the default). When the
    /// link (`on_link`: its addresses now) has such addresses, `promote_secondaries` is
    /// turned on around the delete; `current` reads its value. None for every other Op.
    pub(crate) fn promote_write(
        &self,
        on_link: &[IpNet],
        current: impl FnOnce(&str) -> super::NetResult<String>,
    ) -> super::NetResult<Option<Op>> {
        let Op::AddrDel { ns, dev, cidr: IpNet::V4(net) } = self else { return Ok(None) };
        let others = on_link.iter().any(|a| {
            let IpNet::V4(o) = a else { return false };
            o != net && o.prefix_len() == net.prefix_len() && o.network() == net.network()
        });
        if !others {
            return Ok(None);
        }
        let key = format!("net.ipv4.conf.{}.promote_secondaries", sysctl_component(dev));
        let old = current(&key)?;
        if old == "1" {
            return Ok(None);
        }
        Ok(Some(Op::SysctlTemp { ns: ns.clone(), key, value: "1".into(), old }))
    }

    /// The sysctl writes `--no-ipv6` adds to this op: IPv6 off in a new netns before anything
    /// exists in it, and on each link the op creates in a netns for which `v6_off` is false.
    /// The one source of these writes: `--explain` and the plan print them, the kernel
    /// executor makes them (`Kernel::set_no_ipv6`). They need no undo: they die with their
    /// netns or link, so they are not journaled.
    pub(crate) fn no_ipv6_writes(&self, v6_off: impl Fn(Option<&str>) -> bool) -> Vec<Op> {
        let link = |ns: &Ns, dev: &str| (!v6_off(ns.as_deref())).then(|| v6_off_link(ns, dev));
        match self {
            Op::NetnsAdd { name } => v6_off_netns(name).to_vec(),
            Op::BridgeAdd { ns, name } | Op::LinkAdd { ns, name, .. } => {
                link(ns, name).into_iter().collect()
            }
            Op::VethAdd { ns, name, peer, peer_ns } => {
                let peer_at = peer_ns.as_ref().or(ns.as_ref()).cloned();
                link(ns, name).into_iter().chain(link(&peer_at, peer)).collect()
            }
            Op::NetnsDel { .. }
            | Op::NetnsForget { .. }
            | Op::TcSet { .. }
            | Op::BridgeSet { .. }
            | Op::BridgeVlanAdd { .. }
            | Op::BridgeVlanDel { .. }
            | Op::WireguardSet { .. }
            | Op::LinkUp { .. }
            | Op::LinkDown { .. }
            | Op::LinkSetMaster { .. }
            | Op::LinkSetNetns { .. }
            | Op::LinkDel { .. }
            | Op::LinkSet { .. }
            | Op::LinkGroupDel { .. }
            | Op::AddrAdd { .. }
            | Op::AddrDel { .. }
            | Op::RouteAdd { .. }
            | Op::RouteDel { .. }
            | Op::RuleAdd { .. }
            | Op::RuleDel { .. }
            | Op::SysctlSet { .. }
            | Op::SysctlTemp { .. }
            | Op::IptAppend { .. }
            | Op::IptDelete { .. } => Vec::new(),
        }
    }
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
    fn ops_round_trip_through_json() {
        let op = Op::RouteAdd {
            ns: None,
            dest: Some("10.0.0.0/8".parse().unwrap()),
            via: None,
            dev: Some("br0".into()),
            opts: Default::default(),
        };
        let j = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&j).unwrap(), op);
    }

    #[test]
    fn inverses_undo_and_deletes_cancel() {
        let add =
            Op::AddrAdd { ns: None, dev: "eth0".into(), cidr: "10.0.0.2/24".parse().unwrap() };
        let del = add.inverse().unwrap();
        assert_eq!(del.command(), "ip addr del 10.0.0.2/24 dev eth0");
        assert!(del.cancels(&add));
        assert_eq!(del.inverse().unwrap(), add);
        let route = Op::RouteAdd {
            ns: None,
            dest: None,
            via: Some("10.0.0.1".parse().unwrap()),
            dev: Some("eth0".into()),
            opts: Default::default(),
        };
        // `ip route del default` takes any gateway and link.
        assert!(
            Op::RouteDel { ns: None, dest: None, via: None, dev: None, opts: Default::default() }
                .cancels(&route)
        );
        assert!(!del.cancels(&route));
        let set = Op::LinkSet {
            ns: None,
            dev: "veth1".into(),
            set: LinkAttrs { mtu: Some(9000), ..LinkAttrs::default() },
            old: Some(LinkAttrs { mtu: Some(1500), ..LinkAttrs::default() }),
        };
        assert_eq!(set.command(), "ip link set veth1 mtu 9000");
        assert_eq!(set.inverse().unwrap().command(), "ip link set veth1 mtu 1500");
        let unknown = Op::SysctlSet { ns: None, key: "k".into(), value: "1".into(), old: None };
        assert_eq!(unknown.inverse(), None, "the old value is not known yet");
        assert_eq!(Op::LinkDel { ns: None, dev: "v".into() }.inverse(), None);
    }

    #[test]
    fn an_address_delete_keeps_the_secondaries_of_its_subnet() {
        let del =
            Op::AddrDel { ns: None, dev: "eth0".into(), cidr: "10.0.0.2/24".parse().unwrap() };
        let on_link = ["10.0.0.1/24".parse().unwrap(), "10.0.0.2/24".parse().unwrap()];
        let temp = del.promote_write(&on_link, |_| Ok("0".into())).unwrap().unwrap();
        assert_eq!(temp.command(), "sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1");
        let back = temp.inverse().unwrap();
        assert_eq!(back.command(), "sysctl -qw net.ipv4.conf.eth0.promote_secondaries=0");
        assert!(back.cancels(&temp));
        // Alone in its subnet, or promoting already: nothing to write.
        assert_eq!(del.promote_write(&on_link[1..], |_| Ok("0".into())).unwrap(), None);
        assert_eq!(del.promote_write(&on_link, |_| Ok("1".into())).unwrap(), None);
    }
}
