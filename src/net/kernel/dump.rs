//! Queries: links, addresses, routes, neighbours, a bridge's forwarding database and ports.

use std::collections::HashMap;

use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteMessage, RouteType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Kernel;
use crate::net::error::{NetResult, from_nl, place};
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo, RouteInfo, mac_string};
use crate::net::op::LinkAttrs;
use crate::net::refusal::{no_link, not_a_bridge_kind};
use crate::net::routing::route_detail;

impl Kernel {
    /// What `link::set` may change on `dev`, as it is now (the Op's `old`).
    pub(crate) fn link_attrs(&self, ns: Option<&str>, dev: &str) -> NetResult<LinkAttrs> {
        let m = self.link_message(ns, dev)?.ok_or_else(|| no_link(dev, ns))?;
        let mut out = LinkAttrs::default();
        for a in &m.attributes {
            match a {
                LinkAttribute::Mtu(v) => out.mtu = Some(*v),
                LinkAttribute::Address(a) => out.mac = Some(mac_string(a)),
                LinkAttribute::TxQueueLen(v) => out.txqueuelen = Some(*v),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Link `dev` as [`Kernel::links`] shows it (its master by index: no names are asked),
    /// or None when there is none: one RTM_GETLINK where a dump renders every link of the
    /// netns (lab(1000)'s root: 120 ms).
    pub(crate) fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>> {
        Ok(self.link_message(ns, dev)?.map(|m| link_info(&m, &HashMap::new())))
    }

    fn link_message(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkMessage>> {
        self.flush_tags()?;
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::IfName(dev.to_string()));
        req.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self.sock(ns)?.request(RouteNetlinkMessage::GetLink(req), 0) {
            Ok(msgs) => Ok(msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(m) => Some(m),
                _ => None,
            })),
            Err(e) => {
                let e = from_nl(e, &format!("cannot read {dev} in {}", place(ns)), |_| None);
                if e.errno == Some(libc::ENODEV) { Ok(None) } else { Err(e) }
            }
        }
    }

    pub(crate) fn links(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.timed("(links)", || self.links_inner(ns))
    }

    fn links_inner(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        // Aliases are part of what a dump shows (whose link is it?).
        self.flush_tags()?;
        // Without the statistics (`ip` asks the same way unless -s): a third of the bytes
        // per link for the kernel to render and for us to parse.
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let msgs: Vec<LinkMessage> = self
            .sock(ns)?
            .dump(RouteNetlinkMessage::GetLink(req))
            .map_err(|e| from_nl(e, &format!("cannot list links in {}", place(ns)), |_| None))?
            .into_iter()
            .filter_map(|m| if let RouteNetlinkMessage::NewLink(m) = m { Some(m) } else { None })
            .collect();
        let names: HashMap<u32, String> = msgs
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((m.header.index, n.clone())),
                    _ => None,
                })
            })
            .collect();
        Ok(msgs.iter().map(|m| link_info(m, &names)).collect())
    }

    pub(crate) fn addrs(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
        let names = self.link_names(ns)?;
        let msgs: Vec<AddressMessage> = self
            .sock(ns)?
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .map_err(|e| from_nl(e, &format!("cannot list addresses in {}", place(ns)), |_| None))?
            .into_iter()
            .filter_map(|m| if let RouteNetlinkMessage::NewAddress(m) = m { Some(m) } else { None })
            .collect();
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let ip = m
                    .attributes
                    .iter()
                    .find_map(
                        |a| if let AddressAttribute::Local(ip) = a { Some(*ip) } else { None },
                    )
                    .or_else(|| {
                        m.attributes.iter().find_map(|a| {
                            if let AddressAttribute::Address(ip) = a { Some(*ip) } else { None }
                        })
                    })?;
                Some(AddrInfo {
                    dev: names.get(&m.header.index).cloned().unwrap_or_default(),
                    cidr: format!("{ip}/{}", m.header.prefix_len),
                    family: if ip.is_ipv4() { "inet".into() } else { "inet6".into() },
                    scope: match m.header.scope {
                        AddressScope::Universe => "global".into(),
                        s => format!("{s:?}").to_lowercase(),
                    },
                })
            })
            .collect())
    }

    pub(super) fn link_names(&self, ns: Option<&str>) -> NetResult<HashMap<u32, String>> {
        Ok(self.links(ns)?.into_iter().map(|l| (l.index, l.name)).collect())
    }

    /// Routes of table `table` (254: what `ip route` and `ip -6 route` show), or of every
    /// table but `local` (None: `ip route show table all` without the kernel's own
    /// local/broadcast routes). Only the route types a recipe can make (and the kernel's
    /// connected unicast routes) are listed.
    pub(crate) fn routes(&self, ns: Option<&str>, table: Option<u32>) -> NetResult<Vec<RouteInfo>> {
        let names = self.link_names(ns)?;
        let sock = self.sock(ns)?;
        let mut out = Vec::new();
        for fam in [
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ] {
            let msgs: Vec<RouteMessage> = sock
                .dump(RouteNetlinkMessage::GetRoute(fam))
                .map_err(|e| from_nl(e, &format!("cannot list routes in {}", place(ns)), |_| None))?
                .into_iter()
                .filter_map(
                    |m| if let RouteNetlinkMessage::NewRoute(m) = m { Some(m) } else { None },
                )
                .collect();
            for m in msgs {
                let listed = matches!(
                    m.header.kind,
                    RouteType::Unicast
                        | RouteType::BlackHole
                        | RouteType::Unreachable
                        | RouteType::Prohibit
                );
                let Some(r) = route_detail(&m, &names) else { continue };
                let wanted = match table {
                    Some(t) => r.table == t,
                    None => r.table != crate::net::routing::TABLE_LOCAL,
                };
                if listed && wanted {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The ARP / NDP table (`ip neigh`, `arp -n`).
    pub(crate) fn neighbours(&self, ns: Option<&str>) -> NetResult<Vec<NeighInfo>> {
        let names = self.link_names(ns)?;
        let msgs = self.neighbour_dump(
            ns,
            AddressFamily::Unspec,
            &format!("cannot list neighbours in {}", place(ns)),
        )?;
        Ok(msgs
            .iter()
            .filter(|m| matches!(m.header.family, AddressFamily::Inet | AddressFamily::Inet6))
            .filter_map(|m| {
                let mut ip = None;
                let mut mac = None;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                            ip = Some(a.to_string())
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                            ip = Some(a.to_string())
                        }
                        NeighbourAttribute::LinkLayerAddress(l) => mac = Some(mac_string(l)),
                        _ => {}
                    }
                }
                if m.header.state == NeighbourState::Noarp {
                    return None; // multicast/broadcast entries the kernel keeps for itself
                }
                Some(NeighInfo {
                    ip: ip?,
                    mac,
                    dev: names.get(&m.header.ifindex).cloned().unwrap_or_default(),
                    state: format!("{:?}", m.header.state).to_lowercase(),
                })
            })
            .collect())
    }

    /// The bridge's forwarding database (`bridge fdb show br BR`, `brctl showmacs BR`).
    pub(crate) fn fdb(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<FdbEntry>> {
        let links = self.links(ns)?;
        let br = links.iter().find(|l| l.name == bridge).ok_or_else(|| no_link(bridge, ns))?;
        if br.kind != "bridge" {
            return Err(not_a_bridge_kind(bridge, &br.kind));
        }
        let names: HashMap<u32, &str> = links.iter().map(|l| (l.index, l.name.as_str())).collect();
        let msgs = self.neighbour_dump(
            ns,
            AddressFamily::Bridge,
            &format!("cannot read the fdb of {bridge}"),
        )?;
        // USER_HZ ticks, as `bridge fdb` reads them.
        let hz = 100.0;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let mut mac = None;
                let mut master = None;
                let mut updated = 0u32;
                let mut vlan = false;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::LinkLayerAddress(l) => mac = Some(mac_string(l)),
                        NeighbourAttribute::Controller(c) => master = Some(*c),
                        NeighbourAttribute::CacheInfo(c) => updated = c.updated,
                        NeighbourAttribute::Vlan(_) => vlan = true,
                        _ => {}
                    }
                }
                let port_is_bridge = m.header.ifindex == br.index;
                if master != Some(br.index) && !port_is_bridge {
                    return None;
                }
                let mac = mac?;
                // Multicast entries (33:33:..., 01:00:5e:...) are not learnt addresses.
                if mac.starts_with("33:33") || mac.starts_with("01:00:5e") || vlan && port_is_bridge
                {
                    return None;
                }
                Some(FdbEntry {
                    mac,
                    port: names.get(&m.header.ifindex).map(|s| s.to_string()).unwrap_or_default(),
                    local: m.header.state == NeighbourState::Permanent,
                    ageing: if m.header.state == NeighbourState::Permanent {
                        0.0
                    } else {
                        updated as f64 / hz
                    },
                })
            })
            .collect())
    }

    fn neighbour_dump(
        &self,
        ns: Option<&str>,
        family: AddressFamily,
        what: &str,
    ) -> NetResult<Vec<NeighbourMessage>> {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        Ok(self
            .sock(ns)?
            .dump(RouteNetlinkMessage::GetNeighbour(m))
            .map_err(|e| from_nl(e, what, |_| None))?
            .into_iter()
            .filter_map(
                |m| if let RouteNetlinkMessage::NewNeighbour(m) = m { Some(m) } else { None },
            )
            .collect())
    }

    /// Links enslaved to `bridge` (`brctl show`, `bridge link`).
    pub(crate) fn bridge_ports(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<LinkInfo>> {
        let links = self.links(ns)?;
        let br = links.iter().find(|l| l.name == bridge).ok_or_else(|| no_link(bridge, ns))?;
        if br.kind != "bridge" {
            return Err(not_a_bridge_kind(bridge, &br.kind));
        }
        Ok(links.iter().filter(|l| l.master.as_deref() == Some(bridge)).cloned().collect())
    }
}

fn link_info(m: &LinkMessage, names: &HashMap<u32, String>) -> LinkInfo {
    let mut l = LinkInfo {
        name: String::new(),
        index: m.header.index,
        kind: "device".into(),
        state: if m.header.flags.contains(LinkFlags::Up) { "up".into() } else { "down".into() },
        oper: "unknown".into(),
        mac: String::new(),
        mtu: 0,
        master: None,
        alias: None,
        group: 0,
        peer_index: None,
        peer_netnsid: None,
        detail: crate::net::link_detail::link_detail(m, names),
    };
    if m.header.flags.contains(LinkFlags::Loopback) {
        l.kind = "loopback".into();
    }
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(a) => l.mac = mac_string(a),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Controller(i) => {
                l.master = Some(names.get(i).cloned().unwrap_or_else(|| i.to_string()))
            }
            LinkAttribute::IfAlias(s) => l.alias = Some(s.clone()),
            LinkAttribute::Group(g) => l.group = *g,
            LinkAttribute::Link(p) => l.peer_index = Some(*p),
            LinkAttribute::LinkNetNsId(i) => l.peer_netnsid = Some(*i),
            LinkAttribute::OperState(s) => l.oper = format!("{s:?}").to_lowercase(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let NlLinkInfo::Kind(k) = i {
                        l.kind = match k {
                            InfoKind::Other(s) => s.clone(),
                            k => k.to_string(),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    if l.kind != "veth" {
        l.peer_index = None;
        l.peer_netnsid = None;
    }
    l
}
