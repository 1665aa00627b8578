//! Every refusal sentence nslab says, in one place: the kernel executor maps the kernel's
//! errno to these, the plan executor says them where its model sees the same refusal, so a
//! recipe that fails at run time fails at plan time with the same words (a test in
//! `lab::plan` forbids hand-written refusal text there).

use std::net::IpAddr;

use ipnet::IpNet;

use super::error::{NetError, place};
use super::op::q;

/// `link::set_master` to a master that does not exist; suggests a bridge with a close name.
pub(crate) fn no_bridge<'a>(
    m: &str,
    ns: Option<&str>,
    bridges: impl IntoIterator<Item = &'a str>,
) -> NetError {
    // The bridge goes where the port is: `bridge::add("brx")` would make it on the host,
    // and the port in netns a could still not join it (issue 14).
    let add = match ns {
        Some(n) => format!("bridge::add({n:?}, {m:?})"),
        None => format!("bridge::add({m:?})"),
    };
    // A master may be a bond too: name both ways of making one.
    let bond = match ns {
        Some(n) => format!("link::add({n:?}, {m:?}, \"bond\")"),
        None => format!("link::add({m:?}, \"bond\")"),
    };
    let help = match super::error::closest(m, bridges) {
        Some(b) => format!("did you mean {b}? ({add} creates {m})"),
        None => format!(
            "create it first with {add} (or {bond} for a bond); a link and its master are in one netns"
        ),
    };
    NetError::new(format!("no bridge {m} in {}", place(ns)))
        .with_errno(libc::ENODEV)
        .with_help(help)
}

/// `link::set_master` to a link that is not a bridge (do_set_master: the master has no
/// ndo_add_slave, EOPNOTSUPP).
pub(crate) fn not_a_bridge(master: Option<&str>, dev: &str) -> NetError {
    NetError::new(format!("{} is not a bridge: cannot enslave {dev} to it", master.unwrap_or("?")))
        .with_errno(libc::EOPNOTSUPP)
        .with_help("a master is a bridge or a bond: create it with bridge::add or link::add(NAME, \"bond\")")
}

/// br_add_if refuses loopback and non-Ethernet links with a bare EINVAL.
pub(crate) fn cannot_join_bridge(dev: &str) -> NetError {
    NetError::new(format!(
        "{dev} cannot join a bridge: only Ethernet links can (not lo, not tunnels)"
    ))
    .with_errno(libc::EINVAL)
    .with_help(
        "plug a veth end into the bridge instead: veth::add(a, b) and link::set_master(a, bridge)",
    )
}

/// br_add_if: "Can not enslave a bridge to a bridge" (ELOOP).
pub(crate) fn bridges_do_not_nest(dev: &str, master: Option<&str>) -> NetError {
    NetError::new(format!(
        "cannot plug bridge {dev} into bridge {}: bridges do not nest",
        master.unwrap_or("?")
    ))
    .with_errno(libc::ELOOP)
    .with_help("join two bridges with a veth pair: one end on each (link::set_master)")
}

/// Bridges and `lo` carry NETIF_F_NETNS_LOCAL: the kernel refuses to move them (EINVAL,
/// "The interface netns is immutable").
pub(crate) fn pinned_to_netns(dev: &str, to: &str) -> NetError {
    NetError::new(format!(
        "cannot move {dev} to netns {to}: the kernel keeps bridges and lo in the netns they were made in"
    ))
    .with_errno(libc::EINVAL)
    .with_help(format!("make it there instead, e.g. bridge::add(\"{to}\", \"{dev}\")"))
}

/// `ip route add DEST dev DEV` while DEV is down (IPv4: ENETDOWN, "Device for nexthop is
/// not up").
pub(crate) fn route_dev_down(dest: &str, dev: &str, ns: Option<&str>) -> NetError {
    let up = match ns {
        Some(n) => format!("link::up(\"{n}\", \"{dev}\")"),
        None => format!("link::up(\"{dev}\")"),
    };
    NetError::new(format!("cannot add route {dest}: {dev} in {} is down", place(ns)))
        .with_errno(libc::ENETDOWN)
        .with_help(format!("bring the link up first: {up}"))
}

/// A gateway no link that is up can reach directly (ENETUNREACH).
pub(crate) fn gateway_unreachable(gw: &str, ns: Option<&str>) -> NetError {
    NetError::new(format!(
        "gateway {gw} is unreachable from {}: no up link has an address in its subnet",
        place(ns)
    ))
    .with_errno(libc::ENETUNREACH)
    .with_help("add an address in the gateway's subnet first (addr::add), and bring the link up")
}

/// `route::add` of a destination the table has already (EEXIST).
pub(crate) fn route_exists(ns: Option<&str>, dest: &str) -> NetError {
    NetError::new(format!("{} already has a route {dest}", place(ns)))
        .with_errno(libc::EEXIST)
        .with_help("route::list shows the routes; delete the old one first")
}

/// `route::del` of a route that is not there as described: which part did not match.
pub(crate) fn no_route(
    ns: Option<&str>,
    dest: &str,
    via: Option<IpAddr>,
    dev: Option<&str>,
) -> NetError {
    let mut what = format!("route {dest}");
    if let Some(v) = via {
        what += &format!(" via {v}");
    }
    if let Some(d) = dev {
        what += &format!(" dev {d}");
    }
    NetError::new(format!("{} has no {what}", place(ns)))
        .with_errno(libc::ESRCH)
        .with_help("route::list shows the routes there; the gateway and link must match too")
}

/// A link-local gateway without its link (EINVAL, "Egress device not specified").
pub(crate) fn gateway_needs_link(gw: IpAddr) -> NetError {
    NetError::new(format!("gateway {gw} is link-local: the route needs its link"))
        .with_errno(libc::EINVAL)
        .with_help(format!("name the link after a %: \"{gw}%eth0\""))
}

/// An IPv6 address on a link with `disable_ipv6` (the kernel's EACCES); `no_ipv6`: the run
/// has `--no-ipv6`.
pub(crate) fn ipv6_disabled(cidr: IpNet, dev: &str, ns: Option<&str>, no_ipv6: bool) -> NetError {
    let e = if no_ipv6 {
        NetError::new(format!("IPv6 is off in this lab: cannot add {cidr} to {dev}"))
            .with_help("this run has --no-ipv6; run without it to use IPv6 addresses")
    } else {
        NetError::new(format!("IPv6 is disabled on {dev} in {}", place(ns))).with_help(format!(
            "net.ipv6.conf.{dev}.disable_ipv6 is 1 there; set it to 0 first (sysctl::set)"
        ))
    };
    e.with_errno(libc::EACCES)
}

/// A sysctl value the kernel's parser refuses (EINVAL), e.g. a word for a number.
pub(crate) fn sysctl_rejected(key: &str, value: &str) -> NetError {
    NetError::new(format!("the kernel rejected the value {value:?} for {key}"))
        .with_errno(libc::EINVAL)
        .with_help(format!(
            "check what {key} takes: `sysctl {key}` shows its current value (numeric keys take integers, some only a range)"
        ))
}

/// A new link's name is taken. `owner` is the lab whose tag the existing link carries
/// (None: not made by nslab), `lab` the lab asking; the help says whose it is.
pub(crate) fn link_taken(
    dev: &str,
    ns: Option<&str>,
    owner: Option<&str>,
    lab: Option<&str>,
) -> NetError {
    let help = match owner {
        Some(o) if Some(o) == lab => {
            format!("this lab made {dev} already; pick another name for the new link")
        }
        Some(o) => {
            format!("lab {o} made it: pick another name, or remove that lab (`nslab destroy {o}`)")
        }
        None => format!(
            "nslab did not make it: pick another name, or remove it by hand if you mean it (`ip {}link del {}`)",
            ns.map(|n| format!("-n {} ", q(n))).unwrap_or_default(),
            q(dev)
        ),
    };
    NetError::new(format!("link {dev} already exists in {}", place(ns)))
        .with_errno(libc::EEXIST)
        .with_help(help)
}

/// A veth whose two ends would have the same name in one netns.
pub(crate) fn veth_same_names(name: &str) -> NetError {
    NetError::new(format!("a veth's two ends cannot both be named {name} in one netns"))
        .with_errno(libc::EEXIST)
        .with_help("give the peer its own name, or create it in another netns")
}

/// A link that is not there (ENODEV).
pub(crate) fn no_link(dev: &str, ns: Option<&str>) -> NetError {
    let list = match ns {
        Some(n) => format!("link::list(\"{n}\")"),
        None => "link::list()".into(),
    };
    NetError::new(format!("no link {dev} in {}", place(ns)))
        .with_errno(libc::ENODEV)
        .with_help(format!("{list} shows the links there; a link moved with set_netns is addressed by its new netns"))
}

/// `netns::add` of a name that exists (EEXIST).
pub(crate) fn netns_exists(name: &str) -> NetError {
    NetError::new(format!("netns {name} already exists")).with_errno(libc::EEXIST).with_help(
        format!(
            "pick another name, or remove the old one (`nslab destroy LAB` if a lab made it, `ip netns del {}` if not)",
            q(name)
        ),
    )
}

/// A netns that is not there (ENOENT).
pub(crate) fn no_netns(name: &str) -> NetError {
    NetError::new(format!("netns {name} does not exist")).with_errno(libc::ENOENT).with_help(
        format!("create it first with netns::add(\"{name}\"); netns::list() shows what exists"),
    )
}

/// `link::set_netns` where the target netns has a link of that name (EEXIST).
pub(crate) fn netns_has_link(to: &str, dev: &str) -> NetError {
    NetError::new(format!("netns {to} already has a link named {dev}"))
        .with_errno(libc::EEXIST)
        .with_help("rename one of them")
}

/// A bridge query (`bridge::fdb`, `bridge::ports`) on a link of another kind.
pub(crate) fn not_a_bridge_kind(bridge: &str, kind: &str) -> NetError {
    NetError::new(format!("{bridge} is a {kind} link, not a bridge"))
}

/// `addr::add` of an address the link has (EEXIST).
pub(crate) fn addr_exists(dev: &str, ns: Option<&str>, cidr: &IpNet) -> NetError {
    NetError::new(format!("{dev} in {} already has address {cidr}", place(ns)))
        .with_errno(libc::EEXIST)
        .with_help("addr::list shows the addresses; delete it first or pick another")
}

/// `addr::del` of an address the link does not have (EADDRNOTAVAIL).
pub(crate) fn no_addr(dev: &str, ns: Option<&str>, cidr: &IpNet) -> NetError {
    NetError::new(format!("{dev} in {} has no address {cidr}", place(ns)))
        .with_errno(libc::EADDRNOTAVAIL)
}

/// A sysctl key that does not exist there (ENOENT).
pub(crate) fn no_sysctl(key: &str, ns: Option<&str>) -> NetError {
    NetError::new(format!("no sysctl {key} in {}", place(ns))).with_errno(libc::ENOENT).with_help(
        "check the key with `sysctl -a | grep KEY`; per-link keys need the link to exist",
    )
}

/// `probe::serve` on a port something listens on already (EADDRINUSE).
pub(crate) fn port_in_use(port: u16, ns: Option<&str>) -> NetError {
    let (where_, hint) = match ns {
        Some(n) => (format!("in netns {n}"), format!(" (`ip netns exec {n} ss -ltnp` shows it)")),
        None => ("on the host".to_string(), " (`ss -ltnp` shows it)".to_string()),
    };
    NetError::new(format!("port {port} is already in use {where_}"))
        .with_errno(libc::EADDRINUSE)
        .with_help(format!(
            "pick another port (0 picks a free one), or stop what listens there{hint}"
        ))
}

/// `probe::serve(…, #{proto: "udp"})` on a UDP port something is bound to already.
pub fn udp_port_in_use(port: u16, ns: Option<&str>) -> NetError {
    let (where_, hint) = match ns {
        Some(n) => (format!("in netns {n}"), format!(" (`ip netns exec {n} ss -lunp` shows it)")),
        None => ("on the host".to_string(), " (`ss -lunp` shows it)".to_string()),
    };
    NetError::new(format!("udp port {port} is already in use {where_}"))
        .with_errno(libc::EADDRINUSE)
        .with_help(format!(
            "pick another port (0 picks a free one), or stop what listens there{hint}"
        ))
}

/// The same iptables rule twice: the kernel would keep both (and every packet would pass
/// both), so a second `nat::masquerade` of one subnet, easy to type again in a REPL, is
/// refused.
pub(crate) fn rule_exists(ns: Option<&str>, table: &str, chain: &str) -> NetError {
    NetError::new(format!("the {table} table in {} already has this rule in {chain}", place(ns)))
        .with_errno(libc::EEXIST)
        .with_help("nat::list() shows the rules there; each is needed once")
}

/// A new link's name is taken, when the caller cannot tell whose the link is (EEXIST).
pub(crate) fn link_exists(dev: &str, ns: Option<&str>) -> NetError {
    NetError::new(format!("link {dev} already exists in {}", place(ns))).with_help(
        "pick another name, or remove the old link (`nslab destroy LAB` if a lab made it)",
    )
}

/// EBUSY on a link.
pub(crate) fn link_busy(dev: &str, ns: Option<&str>) -> NetError {
    NetError::new(format!("link {dev} in {} is busy", place(ns)))
        .with_help("it may be enslaved to another master or in use; check `nslab show`")
}

/// `link::set_master` on a link that has a master already (EBUSY).
pub(crate) fn already_enslaved(dev: &str) -> NetError {
    NetError::new(format!("{dev} is already enslaved or busy"))
        .with_help("release it first with link::set_master(dev, ())")
}

/// `probe::ping` of a link-local IPv6 address without its link (the kernel refuses fe80::
/// without a scope id: which link would it leave by?).
pub(crate) fn ping_needs_link(a: std::net::Ipv6Addr) -> NetError {
    NetError::new(format!("cannot ping link-local address {a} without its link"))
        .with_errno(libc::EINVAL)
        .with_help(format!("name the link after a %: \"{a}%eth0\""))
}

/// `rule::add` of a rule that is there already, at the same priority (EEXIST).
pub fn ip_rule_exists(ns: Option<&str>, r: &crate::net::rule::RuleSpec) -> NetError {
    NetError::new(format!(
        "{} already has the rule `{}`",
        place(ns),
        crate::net::rule::rule_words(r)
    ))
    .with_errno(libc::EEXIST)
    .with_help("rule::list shows the rules; give this one another priority, or delete the old one")
}

/// `rule::del` of a rule that is not there as described (ENOENT).
pub fn no_ip_rule(ns: Option<&str>, r: &crate::net::rule::RuleSpec) -> NetError {
    NetError::new(format!("{} has no rule `{}`", place(ns), crate::net::rule::rule_words(r)))
        .with_errno(libc::ENOENT)
        .with_help("rule::list shows the rules there; every selector, the table and the priority must match")
}

/// A route's `src` that is not an address of the netns (EINVAL, "Invalid prefsrc address").
pub fn bad_route_src(src: IpAddr, ns: Option<&str>) -> NetError {
    NetError::new(format!(
        "{src} is not an address of {}, so it cannot be a route's source",
        place(ns)
    ))
    .with_errno(libc::EINVAL)
    .with_help(
        "`src` names one of this netns's own addresses (addr::list shows them); add it first",
    )
}

/// `onlink` without the link it is on (EINVAL, "Nexthop device required for onlink").
pub fn onlink_needs_dev() -> NetError {
    NetError::new("an onlink gateway needs its link")
        .with_errno(libc::EINVAL)
        .with_help("name it after a %: \"10.9.9.1%eth0\" (or #{via: \"10.9.9.1\", dev: \"eth0\"} in a multipath route)")
}

/// `link::set` with an MTU the link does not take (EINVAL; 68 to 65535 for veth and bridge).
pub(crate) fn mtu_out_of_range(dev: &str, mtu: u32) -> NetError {
    NetError::new(format!("{dev} cannot take mtu {mtu}")).with_errno(libc::EINVAL).with_help(
        "an Ethernet link takes an mtu from 68 to its maximum (65535 for veth and bridge)",
    )
}

/// `ip link del lo`: the kernel keeps a netns's loopback (EOPNOTSUPP).
pub(crate) fn loopback_stays(dev: &str, ns: Option<&str>) -> NetError {
    super::error::generic(libc::EOPNOTSUPP, &format!("cannot delete link {dev} in {}", place(ns)))
}

/// A route with neither a gateway nor a link (EINVAL).
pub(crate) fn route_needs_way(dest: &str) -> NetError {
    super::error::generic(libc::EINVAL, &format!("cannot add route {dest}"))
}

/// The 1024th port of a bridge: br_add_if answers EXFULL ("Exchange full").
pub(crate) fn bridge_full(dev: &str, bridge: &str) -> NetError {
    NetError::new(format!("cannot plug {dev} into bridge {bridge}: the bridge is full"))
        .with_errno(libc::EXFULL)
        .with_help(
            "a bridge holds at most 1023 ports: spread hosts over several bridges joined by a veth, or route between them",
        )
}

/// `bridge::vlan_add` on a bridge without VLAN filtering, or a kernel without it
/// (CONFIG_BRIDGE_VLAN_FILTERING): the kernel answers EOPNOTSUPP.
pub(crate) fn no_vlan_filtering(port: &str) -> NetError {
    NetError::new(format!("cannot add a VLAN on {port}: no bridge VLAN filtering here"))
        .with_errno(libc::EOPNOTSUPP)
        .with_help("the port must be on a bridge, and this kernel needs CONFIG_BRIDGE_VLAN_FILTERING (bridge::set(br, #{vlan_filtering: true}) turns it on per bridge)")
}

/// `link::add` of a kind that sits on a parent link that is not there.
pub(crate) fn no_parent(parent: &str, kind: &str, ns: Option<&str>) -> NetError {
    let help = no_link(parent, ns).help.unwrap_or_default();
    NetError::new(format!("no link {parent} in {} for the {kind} to sit on", place(ns)))
        .with_errno(libc::ENODEV)
        .with_help(help)
}

/// `bridge::set` on a link that is not a bridge.
pub(crate) fn bridge_set_not_bridge(name: &str, ns: Option<&str>, errno: i32) -> NetError {
    NetError::new(format!("{name} in {} is not a bridge", place(ns)))
        .with_errno(errno)
        .with_help("bridge::set works on bridges made with bridge::add")
}

/// `bridge::set(br, #{vlan_filtering: true})` on a kernel without
/// CONFIG_BRIDGE_VLAN_FILTERING (EOPNOTSUPP).
pub(crate) fn no_bridge_vlan_filtering(name: &str) -> NetError {
    NetError::new(format!("cannot turn VLAN filtering on {name}: this kernel's bridge has none"))
        .with_errno(libc::EOPNOTSUPP)
        .with_help("it needs a kernel built with CONFIG_BRIDGE_VLAN_FILTERING")
}

/// `bridge::vlan_del` of a VLAN the port does not have (ENOENT).
pub(crate) fn no_port_vlan(port: &str, ns: Option<&str>, vid: u16) -> NetError {
    NetError::new(format!("{port} in {} has no VLAN {vid}", place(ns)))
        .with_errno(libc::ENOENT)
        .with_help("bridge::vlans shows the port's VLANs")
}

/// `wireguard::set` on a link of another kind (the family answers EOPNOTSUPP).
pub(crate) fn not_wireguard(dev: &str, ns: Option<&str>) -> NetError {
    NetError::new(format!("{dev} in {} is not a WireGuard link", place(ns)))
        .with_errno(libc::EOPNOTSUPP)
        .with_help(format!("make it with link::add(\"{dev}\", \"wireguard\")"))
}

/// Two WireGuard devices of one netns on one listen port (EADDRINUSE).
pub(crate) fn wg_port_taken(port: u16, ns: Option<&str>) -> NetError {
    NetError::new(format!("listen port {port} is taken in {}", place(ns)))
        .with_errno(libc::EADDRINUSE)
        .with_help("pick another listen_port: each WireGuard device in a netns needs its own")
}

/// A qdisc kind the kernel does not know: its module is missing (netem on this machine's
/// kernel). The kernel says "Specified qdisc kind is unknown" (ENOENT).
pub(crate) fn qdisc_kind_missing(kind: &str) -> NetError {
    NetError::new(format!("this kernel has no {kind} qdisc (module sch_{kind})"))
        .with_errno(libc::ENOENT)
        .with_help(format!(
            "load it (`modprobe sch_{kind}`) or use a kernel that has it; tc::rate needs only sch_tbf"
        ))
}

/// A root qdisc nslab did not make and could not put back after the lab.
pub(crate) fn qdisc_not_restorable(dev: &str, ns: Option<&str>, kind: &str) -> NetError {
    let n = ns.map(|n| format!("-n {} ", q(n))).unwrap_or_default();
    NetError::new(format!(
        "{dev} in {} has a {kind} root qdisc, which nslab could not restore after the lab",
        place(ns)
    ))
    .with_errno(libc::EBUSY)
    .with_help(format!(
        "nslab replaces only the default qdisc, netem or tbf; remove it by hand first if you mean it: `tc {n}qdisc del dev {} root`",
        q(dev)
    ))
}

#[cfg(test)]
mod master_help_tests {
    /// A missing master may be meant as a bond: the help names both ways of making one.
    #[test]
    fn a_missing_master_is_a_bridge_or_a_bond() {
        let e = super::no_bridge("bond0", Some("a"), []);
        assert_eq!(e.message, "no bridge bond0 in netns a");
        assert_eq!(
            e.help.as_deref(),
            Some(
                "create it first with bridge::add(\"a\", \"bond0\") (or link::add(\"a\", \"bond0\", \"bond\") for a bond); a link and its master are in one netns"
            )
        );
    }
}
