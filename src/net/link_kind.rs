//! The link kinds `link::add` makes besides bridges and veths (`ip link add NAME type KIND`):
//! what each takes, how it is checked before anything is journaled, the `ip` line the plan
//! and `--explain` print, and the RTM_NEWLINK request built with netlink-packet-route's
//! InfoData (no `ip` process). Plain data: the kernel executor resolves parent names to
//! ifindexes and sends the message.

use std::net::IpAddr;

use rtnetlink::packet_route::link::{
    BondMode, IpVlanMode, LinkAttribute, LinkMessage, MacVlanMode,
};
use rtnetlink::{
    LinkBond, LinkDummy, LinkIfb, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkVlan, LinkVxlan,
    LinkWireguard,
};
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};
use super::op::q;

/// The IANA port for VXLAN. The Linux default without IFLA_VXLAN_PORT is 8472 (the port
/// used before IANA assigned one), which no other implementation speaks: `ip link add ...
/// type vxlan` without `dstport` warns about it. nslab always sends the port.
pub const VXLAN_PORT: u16 = 4789;

/// The highest VXLAN network identifier (24 bits; the kernel answers ERANGE above it).
pub const VXLAN_MAX_ID: u32 = (1 << 24) - 1;

/// A link kind with its settings, as `link::add` was given it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LinkKind {
    Dummy,
    Ifb,
    Tap,
    Wireguard,
    Vxlan {
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<IpAddr>,
        /// The underlay link (`dev`): where multicast joins and unicast leaves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dev: Option<String>,
        port: u16,
    },
    Macvlan {
        parent: String,
        mode: String,
    },
    Ipvlan {
        parent: String,
        mode: String,
    },
    Vlan {
        parent: String,
        id: u16,
    },
    Bond {
        mode: String,
    },
}

/// The kinds `link::add` knows, as scripts name them.
pub const KINDS: &[&str] =
    &["vxlan", "macvlan", "ipvlan", "vlan", "bond", "dummy", "tap", "ifb", "wireguard"];
pub const MACVLAN_MODES: &[&str] = &["bridge", "private", "vepa", "passthru", "source"];
pub const IPVLAN_MODES: &[&str] = &["l2", "l3", "l3s"];
pub const BOND_MODES: &[&str] = &[
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];

fn invalid(msg: String, help: String) -> NetError {
    NetError::new(msg).with_errno(libc::EINVAL).with_help(help)
}

fn one_of(what: &str, value: &str, known: &[&str]) -> NetResult<()> {
    if known.contains(&value) {
        return Ok(());
    }
    let mut help = format!("known {what}s: {}", known.join(", "));
    if let Some(c) = super::error::closest(value, known.iter().copied()) {
        help = format!("did you mean {c}? {help}");
    }
    Err(invalid(format!("unknown {what} {value:?}"), help))
}

impl LinkKind {
    /// The word after `type` in `ip link add`.
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::Dummy => "dummy",
            LinkKind::Ifb => "ifb",
            LinkKind::Tap => "tap",
            LinkKind::Wireguard => "wireguard",
            LinkKind::Vxlan { .. } => "vxlan",
            LinkKind::Macvlan { .. } => "macvlan",
            LinkKind::Ipvlan { .. } => "ipvlan",
            LinkKind::Vlan { .. } => "vlan",
            LinkKind::Bond { .. } => "bond",
        }
    }

    /// The link this one sits on, in the same netns (None for kinds without one).
    pub fn parent(&self) -> Option<&str> {
        match self {
            LinkKind::Macvlan { parent, .. }
            | LinkKind::Ipvlan { parent, .. }
            | LinkKind::Vlan { parent, .. } => Some(parent),
            LinkKind::Vxlan { dev, .. } => dev.as_deref(),
            _ => None,
        }
    }

    /// Refuses what the kernel would refuse, and what it would accept but not as meant,
    /// before anything is journaled: a bad input leaves nothing behind.
    pub fn check(&self) -> NetResult<()> {
        if let Some(p) = self.parent() {
            super::op::check_ifname(p)?;
        }
        match self {
            LinkKind::Vxlan { id, remote, group, local, port, dev } => {
                if *id > VXLAN_MAX_ID {
                    return Err(invalid(
                        format!("VXLAN id {id} is out of range"),
                        format!("a VXLAN network identifier (VNI) goes from 0 to {VXLAN_MAX_ID}"),
                    ));
                }
                if *port == 0 {
                    return Err(invalid(
                        "VXLAN port 0 is not a port".into(),
                        format!("leave it out for the IANA port {VXLAN_PORT}"),
                    ));
                }
                if remote.is_some() && group.is_some() {
                    return Err(invalid(
                        "a VXLAN takes either `remote` or `group`, not both".into(),
                        "`remote` is the one other end (unicast); `group` a multicast group all ends join".into(),
                    ));
                }
                if let Some(r) = remote
                    && r.is_multicast()
                {
                    return Err(invalid(
                        format!("VXLAN remote {r} is a multicast address"),
                        format!("use group: \"{r}\" (with dev) for a multicast group"),
                    ));
                }
                if let Some(g) = group {
                    if !g.is_multicast() {
                        return Err(invalid(
                            format!("VXLAN group {g} is not a multicast address"),
                            format!("use remote: \"{g}\" for one other end"),
                        ));
                    }
                    if dev.is_none() {
                        // The kernel's own refusal (EINVAL), said up front.
                        return Err(invalid(
                            format!("a VXLAN with multicast group {g} needs the underlay link"),
                            "add dev: \"eth0\" (the link the group is joined on)".into(),
                        ));
                    }
                }
                let peer = remote.or(*group);
                if let (Some(l), Some(p)) = (local, peer)
                    && l.is_ipv4() != p.is_ipv4()
                {
                    return Err(invalid(
                        format!("VXLAN local {l} and {p} are not of one address family"),
                        "use IPv4 or IPv6 for both".into(),
                    ));
                }
                Ok(())
            }
            LinkKind::Vlan { id, .. } => {
                if !(1..=4094).contains(id) {
                    return Err(invalid(
                        format!("VLAN id {id} is out of range"),
                        "a VLAN id goes from 1 to 4094 (12 bits; 0 and 4095 are reserved)".into(),
                    ));
                }
                Ok(())
            }
            LinkKind::Macvlan { mode, .. } => one_of("macvlan mode", mode, MACVLAN_MODES),
            LinkKind::Ipvlan { mode, .. } => one_of("ipvlan mode", mode, IPVLAN_MODES),
            LinkKind::Bond { mode } => one_of("bond mode", mode, BOND_MODES),
            LinkKind::Dummy | LinkKind::Ifb | LinkKind::Tap | LinkKind::Wireguard => Ok(()),
        }
    }

    /// The `ip` command that makes this link (after `ip [-n NS] `), e.g. `link add vx0 type
    /// vxlan id 42 remote 10.0.0.2 dstport 4789`. `name` is already shell-quoted.
    pub fn command(&self, name: &str) -> String {
        let mut s = match self.parent() {
            // The parent goes before `type` for kinds that sit on one, as ip's usage shows.
            Some(p) if !matches!(self, LinkKind::Vxlan { .. }) => {
                format!("link add link {} {name} type {}", q(p), self.name())
            }
            _ => format!("link add {name} type {}", self.name()),
        };
        match self {
            LinkKind::Tap => return format!("tuntap add dev {name} mode tap"),
            LinkKind::Vxlan { id, remote, group, local, dev, port } => {
                s += &format!(" id {id}");
                if let Some(r) = remote {
                    s += &format!(" remote {r}");
                }
                if let Some(g) = group {
                    s += &format!(" group {g}");
                }
                if let Some(l) = local {
                    s += &format!(" local {l}");
                }
                if let Some(d) = dev {
                    s += &format!(" dev {}", q(d));
                }
                s += &format!(" dstport {port}");
            }
            LinkKind::Macvlan { mode, .. } | LinkKind::Ipvlan { mode, .. } => {
                s += &format!(" mode {}", q(mode))
            }
            LinkKind::Vlan { id, .. } => s += &format!(" id {id}"),
            LinkKind::Bond { mode } => s += &format!(" mode {}", q(mode)),
            LinkKind::Dummy | LinkKind::Ifb | LinkKind::Wireguard => {}
        }
        s
    }

    /// The kernel module that provides this kind (`modprobe` name) and its config option.
    pub fn module(&self) -> (&'static str, &'static str) {
        match self {
            LinkKind::Dummy => ("dummy", "CONFIG_DUMMY"),
            LinkKind::Ifb => ("ifb", "CONFIG_IFB"),
            LinkKind::Tap => ("tun", "CONFIG_TUN"),
            LinkKind::Wireguard => ("wireguard", "CONFIG_WIREGUARD"),
            LinkKind::Vxlan { .. } => ("vxlan", "CONFIG_VXLAN"),
            LinkKind::Macvlan { .. } => ("macvlan", "CONFIG_MACVLAN"),
            LinkKind::Ipvlan { .. } => ("ipvlan", "CONFIG_IPVLAN"),
            LinkKind::Vlan { .. } => ("8021q", "CONFIG_VLAN_8021Q"),
            LinkKind::Bond { .. } => ("bonding", "CONFIG_BONDING"),
        }
    }

    /// The RTM_NEWLINK request for this link (not for a tap: the kernel makes those only
    /// through /dev/net/tun, see [`super::tap`]). `parent` is the ifindex of
    /// [`LinkKind::parent`], resolved in the link's netns.
    pub fn message(&self, name: &str, parent: Option<u32>) -> LinkMessage {
        fn with_parent<T>(b: LinkMessageBuilder<T>, parent: Option<u32>) -> LinkMessageBuilder<T> {
            match parent {
                Some(p) => b.link(p),
                None => b,
            }
        }
        match self {
            LinkKind::Dummy => LinkDummy::new(name).build(),
            LinkKind::Ifb => LinkIfb::new(name).build(),
            LinkKind::Wireguard => LinkWireguard::new(name).build(),
            LinkKind::Tap => LinkMessageBuilder::<rtnetlink::LinkTun>::new(name).build(),
            LinkKind::Vxlan { id, remote, group, local, port, .. } => {
                let mut b = LinkVxlan::new(name, *id).port(*port);
                // IFLA_VXLAN_GROUP carries the unicast remote as well; the kernel tells
                // them apart by the address (ip's vxlan_parse_opt does the same).
                match remote.or(*group) {
                    Some(IpAddr::V4(a)) => b = b.group(a),
                    Some(IpAddr::V6(a)) => b = b.group6(a),
                    None => {}
                }
                match local {
                    Some(IpAddr::V4(a)) => b = b.local(*a),
                    Some(IpAddr::V6(a)) => b = b.local6(*a),
                    None => {}
                }
                if let Some(p) = parent {
                    b = b.dev(p);
                }
                b.build()
            }
            LinkKind::Macvlan { mode, .. } => with_parent(
                LinkMessageBuilder::<LinkMacVlan>::new(name).mode(macvlan_mode(mode)),
                parent,
            )
            .build(),
            LinkKind::Ipvlan { mode, .. } => with_parent(
                LinkMessageBuilder::<LinkIpVlan>::new(name).mode(ipvlan_mode(mode)),
                parent,
            )
            .build(),
            LinkKind::Vlan { id, .. } => {
                with_parent(LinkMessageBuilder::<LinkVlan>::new(name).id(*id), parent).build()
            }
            LinkKind::Bond { mode } => LinkBond::new(name).mode(bond_mode(mode)).build(),
        }
    }
}

/// The request with the lab's link group, so the lab's group delete takes the link along.
pub fn with_group(mut m: LinkMessage, group: Option<u32>) -> LinkMessage {
    if let Some(g) = group {
        m.attributes.push(LinkAttribute::Group(g));
    }
    m
}

pub fn macvlan_mode(m: &str) -> MacVlanMode {
    match m {
        "private" => MacVlanMode::Private,
        "vepa" => MacVlanMode::Vepa,
        "passthru" => MacVlanMode::Passthrough,
        "source" => MacVlanMode::Source,
        _ => MacVlanMode::Bridge,
    }
}

pub fn ipvlan_mode(m: &str) -> IpVlanMode {
    match m {
        "l3" => IpVlanMode::L3,
        "l3s" => IpVlanMode::L3S,
        _ => IpVlanMode::L2,
    }
}

pub fn bond_mode(m: &str) -> BondMode {
    match m {
        "active-backup" => BondMode::ActiveBackup,
        "balance-xor" => BondMode::BalanceXor,
        "broadcast" => BondMode::Broadcast,
        "802.3ad" => BondMode::Ieee8023Ad,
        "balance-tlb" => BondMode::BalanceTlb,
        "balance-alb" => BondMode::BalanceAlb,
        _ => BondMode::BalanceRr,
    }
}

/// The kernel answered EOPNOTSUPP ("Unknown device type") to a new link: it has no driver
/// for the kind and could not load one. Says whether a module exists to load.
pub fn kind_missing(kind: &LinkKind) -> NetError {
    let (module, config) = kind.module();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let has_module = std::fs::read_to_string(format!("/lib/modules/{release}/modules.dep"))
        .is_ok_and(|dep| module_listed(&dep, module));
    let help = if has_module {
        format!(
            "load its module on the host: `modprobe {module}` (in a sandbox too: modules are the host's)"
        )
    } else {
        format!(
            "this kernel ({release}) has no {} links: it was built without {config} and has no module {module}; use a kernel that has it",
            kind.name()
        )
    };
    NetError::new(format!("this kernel cannot make {} links", kind.name()))
        .with_errno(libc::EOPNOTSUPP)
        .with_help(help)
}

/// True when modules.dep lists `module` (`kernel/net/8021q/8021q.ko.xz: ...`).
fn module_listed(dep: &str, module: &str) -> bool {
    dep.lines().filter_map(|l| l.split(':').next()).any(|path| {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = file.split(".ko").next().unwrap_or(file);
        stem.replace('-', "_") == module.replace('-', "_")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkInfo};

    fn vx(id: u32) -> LinkKind {
        LinkKind::Vxlan {
            id,
            remote: Some("10.0.0.2".parse().unwrap()),
            group: None,
            local: Some("10.0.0.1".parse().unwrap()),
            dev: Some("eth0".into()),
            port: VXLAN_PORT,
        }
    }

    #[test]
    fn commands_read_like_ip_link_add() {
        assert_eq!(
            vx(42).command("vx0"),
            "link add vx0 type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dev eth0 dstport 4789"
        );
        let m = LinkKind::Macvlan { parent: "eth0".into(), mode: "bridge".into() };
        assert_eq!(m.command("mv0"), "link add link eth0 mv0 type macvlan mode bridge");
        let v = LinkKind::Vlan { parent: "eth0".into(), id: 10 };
        assert_eq!(v.command("eth0.10"), "link add link eth0 eth0.10 type vlan id 10");
        assert_eq!(LinkKind::Tap.command("tap0"), "tuntap add dev tap0 mode tap");
        assert_eq!(LinkKind::Dummy.command("d0"), "link add d0 type dummy");
        let b = LinkKind::Bond { mode: "802.3ad".into() };
        assert_eq!(b.command("bond0"), "link add bond0 type bond mode 802.3ad");
    }

    #[test]
    fn bad_settings_are_refused_with_the_range() {
        let e = LinkKind::Vlan { parent: "eth0".into(), id: 5000 }.check().unwrap_err();
        assert_eq!(e.message, "VLAN id 5000 is out of range");
        assert!(LinkKind::Vlan { parent: "eth0".into(), id: 4094 }.check().is_ok());
        let e = vx(1 << 24).check().unwrap_err();
        assert_eq!(e.message, "VXLAN id 16777216 is out of range");
        assert!(vx(VXLAN_MAX_ID).check().is_ok());
        let e =
            LinkKind::Macvlan { parent: "eth0".into(), mode: "brige".into() }.check().unwrap_err();
        assert_eq!(e.message, "unknown macvlan mode \"brige\"");
        assert!(e.help.unwrap().starts_with("did you mean bridge?"));
        let mut g = vx(1);
        if let LinkKind::Vxlan { remote, group, dev, .. } = &mut g {
            *remote = None;
            *group = Some("239.1.1.1".parse().unwrap());
            *dev = None;
        }
        assert!(g.check().unwrap_err().message.contains("needs the underlay link"));
        let e = LinkKind::Macvlan { parent: "a/b".into(), mode: "bridge".into() }.check();
        assert!(e.is_err(), "the parent's name is checked like any link name");
    }

    #[test]
    fn vxlan_message_always_carries_the_iana_port() {
        let m = vx(42).message("vx0", Some(7));
        let data = m
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap();
        assert!(data.contains(&LinkInfo::Kind(InfoKind::Vxlan)));
        let Some(LinkInfo::Data(InfoData::Vxlan(v))) =
            data.iter().find(|i| matches!(i, LinkInfo::Data(_)))
        else {
            panic!("no vxlan data")
        };
        assert!(v.contains(&InfoVxlan::Id(42)));
        assert!(v.contains(&InfoVxlan::Port(4789)));
        assert!(v.contains(&InfoVxlan::Link(7)));
        assert!(v.contains(&InfoVxlan::Group("10.0.0.2".parse().unwrap())));
        let m = with_group(LinkKind::Dummy.message("d0", None), Some(9));
        assert!(m.attributes.contains(&LinkAttribute::Group(9)));
        let m = LinkKind::Vlan { parent: "eth0".into(), id: 10 }.message("v", Some(3));
        assert!(m.attributes.contains(&LinkAttribute::Link(3)));
    }

    #[test]
    fn modules_dep_lookup() {
        let dep = "kernel/net/8021q/8021q.ko.xz: kernel/net/802/garp.ko.xz\nkernel/drivers/net/dummy.ko:\n";
        assert!(module_listed(dep, "8021q"));
        assert!(module_listed(dep, "dummy"));
        assert!(!module_listed(dep, "bonding"));
    }

    #[test]
    fn kinds_round_trip_through_json() {
        let k = vx(5);
        let j = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<LinkKind>(&j).unwrap(), k);
    }
}
