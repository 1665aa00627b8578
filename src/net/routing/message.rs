//! The rtnetlink side of [`super`]: the RTM_NEWROUTE / RTM_DELROUTE a route is made and
//! deleted with, and what a dumped route says, in `ip route`'s words.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};

use super::*;
use crate::net::error::NetResult;
use crate::net::info::{NexthopInfo, RouteInfo};

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// The RTM_NEWROUTE / RTM_DELROUTE for a route. `index` resolves a link name in the route's
/// netns. `add` false makes the delete request, which leaves the scope open
/// (RT_SCOPE_NOWHERE), as `ip route del` does.
pub(crate) fn route_message(
    dest: Option<IpNet>,
    via: Option<IpAddr>,
    dev: Option<&str>,
    o: &RouteOpts,
    add: bool,
    index: &dyn Fn(&str) -> NetResult<u32>,
) -> NetResult<RouteMessage> {
    let v6 = family_v6(dest, via, o);
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    let table = o.table();
    h.table = if table < 256 { table as u8 } else { RouteHeader::RT_TABLE_UNSPEC };
    // `ip route add` marks routes proto boot; so do we, so that `ip route` shows the same
    // after `nslab run` as after the commands `nslab plan` prints. A route that outlives
    // the lab carries nslab's own mark (see PROTO_NSLAB), its delete too.
    h.protocol = o.protocol.map_or(RouteProtocol::Boot, RouteProtocol::from);
    h.kind = o.kind.rtn();
    h.scope = if !add {
        RouteScope::NoWhere
    } else if o.kind == RouteKind::Unicast && via.is_none() && o.nexthops.is_empty() {
        // Like `ip route add PREFIX dev DEV`: a directly connected route.
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    if o.onlink && o.nexthops.is_empty() {
        h.flags |= RouteFlags::Onlink;
    }
    let unspecified =
        if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let (addr, len) = match dest {
        Some(d) => (d.network(), d.prefix_len()),
        None => (unspecified, 0),
    };
    h.destination_prefix_length = len;
    if len > 0 {
        m.attributes.push(RouteAttribute::Destination(route_address(addr)));
    }
    m.attributes.push(RouteAttribute::Table(table));
    if let Some(g) = via {
        m.attributes.push(RouteAttribute::Gateway(route_address(g)));
    }
    if let Some(d) = dev {
        m.attributes.push(RouteAttribute::Oif(index(d)?));
    }
    if !o.nexthops.is_empty() {
        let mut hops = Vec::new();
        for n in &o.nexthops {
            let mut h = RouteNextHop::default();
            h.hops = (n.weight.clamp(1, 256) - 1) as u8;
            if let Some(d) = &n.dev {
                h.interface_index = index(d)?;
            }
            if o.onlink {
                h.flags |= RouteNextHopFlags::Onlink;
            }
            h.attributes.push(RouteAttribute::Gateway(route_address(n.via)));
            hops.push(h);
        }
        m.attributes.push(RouteAttribute::MultiPath(hops));
    }
    // A delete without a metric matches any (fib_nh_match and ip6_route_del skip 0), like
    // `ip route del`; teardown names the exact one (`Op::inverse`).
    if let Some(metric) = o.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(s) = o.src {
        m.attributes.push(RouteAttribute::PrefSource(route_address(s)));
    }
    Ok(m)
}

fn address_string(r: &RouteAddress) -> Option<String> {
    match r {
        RouteAddress::Inet(a) => Some(a.to_string()),
        RouteAddress::Inet6(a) => Some(a.to_string()),
        _ => None,
    }
}

/// Lower-case words for the kernel's numbers, as iproute2 prints them.
fn protocol_word(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::Unspec => "unspec".into(),
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Boot => "boot".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Ra => "ra".into(),
        RouteProtocol::Dhcp => "dhcp".into(),
        // As iproute2 prints a number it has no name for (nslab's 110).
        RouteProtocol::Other(n) => n.to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn type_word(t: RouteType) -> String {
    match t {
        RouteType::Unicast => "unicast".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Describes one dumped route; None for what is not a route of IPv4/IPv6 (or malformed).
/// `names` maps ifindex to link name in that netns.
pub(crate) fn route_detail(m: &RouteMessage, names: &HashMap<u32, String>) -> Option<RouteInfo> {
    let v6 = match m.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let (mut dest, mut via, mut dev, mut src, mut metric) = (None, None, None, None, None);
    let mut table = u32::from(m.header.table);
    let mut nexthops = Vec::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dest = address_string(d),
            RouteAttribute::Gateway(g) => via = address_string(g),
            RouteAttribute::Oif(i) => dev = names.get(i).cloned(),
            RouteAttribute::PrefSource(s) => src = address_string(s),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::MultiPath(hops) => {
                for h in hops {
                    let via = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => address_string(g),
                        _ => None,
                    });
                    nexthops.push(NexthopInfo {
                        via,
                        dev: names.get(&h.interface_index).cloned(),
                        weight: u16::from(h.hops) + 1,
                    });
                }
            }
            _ => {}
        }
    }
    let dest = match dest {
        Some(d) => format!("{d}/{}", m.header.destination_prefix_length),
        None if m.header.destination_prefix_length == 0 => "default".into(),
        None => return None,
    };
    Some(RouteInfo {
        dest,
        via,
        dev,
        family: if v6 { "inet6".into() } else { "inet".into() },
        proto: protocol_word(m.header.protocol),
        scope: match m.header.scope {
            RouteScope::Link => "link".into(),
            RouteScope::Universe => "global".into(),
            RouteScope::Host => "host".into(),
            s => format!("{s:?}").to_lowercase(),
        },
        table,
        metric,
        kind: type_word(m.header.kind),
        src,
        nexthops,
    })
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::{Emitable, Parseable};

    use super::super::tests::{hops, ip, net};
    use super::*;

    fn idx(name: &str) -> NetResult<u32> {
        match name {
            "eth0" => Ok(2),
            "eth1" => Ok(3),
            _ => Err(NetError::new(format!("no link {name}")).with_errno(libc::ENODEV)),
        }
    }

    fn names() -> HashMap<u32, String> {
        [(2, "eth0".to_string()), (3, "eth1".to_string())].into()
    }

    /// What the kernel would read back: emit, then parse the bytes.
    fn round_trip(m: &RouteMessage) -> RouteMessage {
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        RouteMessage::parse(&buf).unwrap()
    }

    #[test]
    fn multipath_encodes_weights_and_devices() {
        let o = RouteOpts {
            nexthops: hops(&[("10.1.0.1", None, 1), ("10.2.0.1", Some("eth1"), 3)]),
            table: Some(100),
            metric: Some(7),
            ..Default::default()
        };
        let m = route_message(None, None, None, &o, true, &idx).unwrap();
        let back = round_trip(&m);
        assert_eq!(back.header.table, 100);
        assert_eq!(back.header.scope, RouteScope::Universe);
        let d = route_detail(&back, &names()).unwrap();
        assert_eq!(d.dest, "default");
        assert_eq!(d.table, 100);
        assert_eq!(d.metric, Some(7));
        assert_eq!(
            d.nexthops,
            vec![
                NexthopInfo { via: Some("10.1.0.1".into()), dev: None, weight: 1 },
                NexthopInfo { via: Some("10.2.0.1".into()), dev: Some("eth1".into()), weight: 3 },
            ]
        );
        assert_eq!(
            route_words(None, None, None, &o),
            "default nexthop via 10.1.0.1 weight 1 nexthop via 10.2.0.1 dev eth1 weight 3 table 100 metric 7"
        );
    }

    #[test]
    fn blackhole_has_its_type_and_no_gateway() {
        let o = RouteOpts { kind: RouteKind::Blackhole, ..Default::default() };
        let dest = Some(net("10.9.0.0/16"));
        let m = round_trip(&route_message(dest, None, None, &o, true, &idx).unwrap());
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert_eq!(m.header.scope, RouteScope::Universe, "ip route add blackhole: scope global");
        let d = route_detail(&m, &names()).unwrap();
        assert_eq!((d.kind.as_str(), d.dest.as_str(), d.via), ("blackhole", "10.9.0.0/16", None));
        assert_eq!(route_words(dest, None, None, &o), "blackhole 10.9.0.0/16");
        let with_gw = check_route(dest, Some(ip("10.0.0.1")), &o).unwrap_err();
        assert_eq!(with_gw.message, "a blackhole route has no gateway");
    }

    #[test]
    fn delete_names_the_metric_only_when_given() {
        let dest = Some(net("fd00:9::/64"));
        let o = RouteOpts::default();
        let exact = RouteOpts { metric: Some(o.metric_for(true)), ..RouteOpts::default() };
        let m = route_message(dest, Some(ip("fd00::1")), None, &exact, false, &idx).unwrap();
        assert!(m.attributes.contains(&RouteAttribute::Priority(IPV6_DEFAULT_METRIC)));
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        let v4 =
            route_message(Some(net("10.0.0.0/8")), None, Some("eth0"), &o, false, &idx).unwrap();
        assert!(!v4.attributes.iter().any(|a| matches!(a, RouteAttribute::Priority(_))));
        assert!(v4.attributes.contains(&RouteAttribute::Oif(2)));
        // An add without a metric leaves the choice to the kernel.
        let add = route_message(dest, Some(ip("fd00::1")), None, &o, true, &idx).unwrap();
        assert!(!add.attributes.iter().any(|a| matches!(a, RouteAttribute::Priority(_))));
        assert_eq!(add.header.table, 254);
    }

    #[test]
    fn big_tables_go_in_the_attribute_only() {
        let o = RouteOpts {
            table: Some(1000),
            src: Some(ip("10.0.0.2")),
            onlink: true,
            ..Default::default()
        };
        let m = route_message(None, Some(ip("10.0.0.1")), Some("eth0"), &o, true, &idx).unwrap();
        assert_eq!(m.header.table, 0);
        assert!(m.header.flags.contains(RouteFlags::Onlink));
        let d = route_detail(&round_trip(&m), &names()).unwrap();
        assert_eq!((d.table, d.src.as_deref()), (1000, Some("10.0.0.2")));
        assert_eq!(
            route_words(None, Some(ip("10.0.0.1")), Some("eth0"), &o),
            "default via 10.0.0.1 dev eth0 table 1000 src 10.0.0.2 onlink"
        );
    }

    #[test]
    fn the_mark_goes_into_the_add_the_delete_and_the_words() {
        let marked = RouteOpts { protocol: Some(PROTO_NSLAB), ..Default::default() };
        let dest = Some(net("10.9.0.0/24"));
        for add in [true, false] {
            let m = route_message(dest, Some(ip("10.0.0.1")), None, &marked, add, &idx).unwrap();
            assert_eq!(m.header.protocol, RouteProtocol::Other(PROTO_NSLAB));
            assert_eq!(route_detail(&round_trip(&m), &names()).unwrap().proto, "110");
        }
        let plain = route_message(dest, None, Some("eth0"), &RouteOpts::default(), false, &idx);
        assert_eq!(plain.unwrap().header.protocol, RouteProtocol::Boot);
        assert_eq!(
            route_words(dest, Some(ip("10.0.0.1")), None, &marked),
            "10.9.0.0/24 via 10.0.0.1 proto 110"
        );
    }
}
