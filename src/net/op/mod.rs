//! Every change nslab makes to the kernel is an [`Op`]. The kernel executor applies it, the
//! plan executor prints it as the equivalent command, the journal records it, and teardown
//! reads the journal backwards. Ops are plain data: no Rhai, no netlink.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use command::{q, shell_words};
pub use names::{
    check_ifname, check_netns_name, check_sysctl_key, is_link_local, sysctl_component,
    sysctl_path,
};

mod command;
mod names;

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
            | Op::IptDelete { ns, .. } => ns.as_deref(),
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
            _ => Vec::new(),
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
        };
        let j = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&j).unwrap(), op);
    }
}
