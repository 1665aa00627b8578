//! Probe tracing: a packet followed hop by hop through the model (routes, veth peers,
//! bridges, `ip_forward`, the nat table's DNAT, MASQUERADE and SNAT rules), noting each
//! filter chain it meets on the way (plan/filter.rs evaluates them).

use std::net::IpAddr;

use super::model::{Link, Model, key};
use crate::net::info::{FdbEntry, NeighInfo};
use crate::net::link_kind::LinkKind;
use crate::net::nat_syntax::{Packet, dnat_target, rule_matches};
use crate::net::op::Ns;

/// Where a traced packet ended up.
pub(super) struct Trace {
    /// The netns that answered (after any DNAT).
    pub(super) server: Ns,
    /// The source address the answering netns saw (after any MASQUERADE).
    pub(super) seen: IpAddr,
    /// The client's own source address.
    pub(super) local: IpAddr,
    /// Destination after any DNAT.
    pub(super) dst: IpAddr,
    pub(super) port: Option<u16>,
    /// Where the request meets the filter table on its way (plan/filter.rs).
    pub(super) checks: Vec<Check>,
    /// The path crosses what the model does not follow for filtering: a VXLAN underlay, a
    /// VLAN-tagged frame through a bridge.
    pub(super) vague: bool,
}

/// Why a trace found no path, as far as the client can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Why {
    /// Something the model does not put in the kernel's words.
    #[default]
    Other,
    /// No route at all where the probe starts: the kernel says ENETUNREACH at once.
    NoRouteHere,
    /// A router without forwarding: it drops the packet and says nothing.
    Silent,
    /// A router (forwarding) without a route: it answers ICMP net unreachable.
    NoRouteThere,
    /// No neighbour with the next hop's address: ARP fails (after ~3 s).
    NoNeighbour,
    /// The path goes where the model does not follow (a VLAN on a VLAN): it cannot tell.
    Untraced,
}

/// A trace that found no path: the chains the request met until then, and why it stopped.
#[derive(Debug, Default)]
pub(super) struct Miss {
    pub(super) checks: Vec<Check>,
    pub(super) vague: bool,
    pub(super) why: Why,
    /// For [`Why::NoRouteThere`]: where the router met the packet (its error goes back
    /// from there, as a REJECT's would from a FORWARD chain).
    pub(super) router: Option<Check>,
}

impl Miss {
    /// The part of the path the request did travel, to evaluate the filter rules on.
    pub(super) fn partial(&self, dst: IpAddr) -> Trace {
        Trace {
            server: None,
            seen: dst,
            local: dst,
            dst,
            port: None,
            checks: self.checks.clone(),
            vague: self.vague,
        }
    }
}

/// One filter chain a probe's request passes, as the chain sees the packet.
#[derive(Debug, Clone)]
pub(super) struct Check {
    pub(super) ns: Ns,
    /// INPUT, FORWARD or OUTPUT.
    pub(super) chain: &'static str,
    pub(super) iif: Option<String>,
    pub(super) oif: Option<String>,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) dport: Option<u16>,
    /// A source NAT rewrote the packet before this point (its source port may have changed).
    pub(super) snat_before: bool,
    /// A destination NAT rewrote it before this point.
    pub(super) dnat_before: bool,
    /// A bridge forwarding a frame from port to port (br_netfilter), not a routed hop.
    pub(super) bridged: bool,
}

/// One L3 neighbour reachable from a link at layer 2, and the bridge ports on the way.
#[derive(Clone, Copy)]
pub(super) struct Hop {
    pub(super) target: usize,
    pub(super) bridge: Option<usize>,
    /// The bridge port the sender's frames enter by (None when the sender is the bridge).
    pub(super) in_port: Option<usize>,
    /// The bridge port towards the target (None when the target is the bridge).
    pub(super) out_port: Option<usize>,
}

impl Model {
    pub(super) fn is_local(&self, ns: Option<&str>, ip: IpAddr) -> bool {
        let Ok(space) = self.space(ns) else { return false };
        space
            .addrs
            .iter()
            .any(|(dev, a)| a.addr() == ip || (ip.is_loopback() && dev == "lo" && a.contains(&ip)))
    }

    pub(super) fn ports_of(&self, bridge: &Link) -> Vec<&Link> {
        self.links
            .iter()
            .filter(|p| {
                p.ns == bridge.ns && p.master.as_deref() == Some(bridge.name.as_str()) && p.up
            })
            .collect()
    }

    /// The interfaces a frame sent on link `uid` reaches at layer 2.
    pub(super) fn segment(&self, uid: usize) -> Vec<Hop> {
        self.segment_tagged(uid, None)
    }

    /// The interfaces a frame sent on link `uid` with 802.1Q tag `tag` (None: untagged)
    /// reaches at layer 2: where it arrives tagged, the VLAN links of that id on the far end.
    fn segment_tagged(&self, uid: usize, tag: Option<u16>) -> Vec<Hop> {
        let Some(l) = self.by_uid(uid) else { return vec![] };
        if !l.up {
            return vec![];
        }
        let mut out = Vec::new();
        match l.kind {
            "bridge" => self.bridge_hops(l, None, tag, 0, &mut out),
            "veth" | "vxlan" => {
                let Some(q) = self.far_end(l).filter(|q| q.up) else {
                    return out;
                };
                let bridge = q
                    .master
                    .as_deref()
                    .and_then(|m| self.find(q.ns.as_deref(), m))
                    .map(|i| &self.links[i]);
                match bridge {
                    Some(b) if b.up => self.bridge_hops(b, Some(q.uid), tag, 0, &mut out),
                    Some(_) => {}
                    None => {
                        let h = Hop { target: q.uid, bridge: None, in_port: None, out_port: None };
                        out.extend(self.deliver(q, tag, h));
                    }
                }
            }
            "macvlan" | "ipvlan" => {
                // Siblings on the same parent talk directly (bridge mode); the rest leaves
                // through the parent, which itself never hears its macvlans.
                let Some(p) = l.ext.parent.and_then(|p| self.by_uid(p)).filter(|p| p.up) else {
                    return out;
                };
                for c in self.upper(p.uid, |c| c.uid != l.uid) {
                    out.push(Hop { target: c, bridge: None, in_port: None, out_port: None });
                }
                out.extend(self.segment_tagged(p.uid, tag));
                return out;
            }
            "wireguard" => {
                for target in self.wg_far_ends(l) {
                    out.push(Hop { target, bridge: None, in_port: None, out_port: None });
                }
                return out;
            }
            "vlan" => {
                // Leaves by the parent, tagged with its id. A frame already tagged (a VLAN
                // on a VLAN: QinQ, or 802.1ad) is not followed: where it goes is unknown.
                let Some(LinkKind::Vlan { id, .. }) = l.ext.spec else { return out };
                let Some(p) = l.ext.parent else { return out };
                if tag.is_some() {
                    self.untraced.set(true);
                    return out;
                }
                return self.segment_tagged(p, Some(id));
            }
            _ => {}
        }
        // Frames for a macvlan's or ipvlan's address that reach its parent are its.
        let mut more = Vec::new();
        for h in out.iter().filter(|_| tag.is_none()) {
            for c in self.upper(h.target, |c| matches!(c.kind, "macvlan" | "ipvlan")) {
                more.push(Hop { target: c, ..*h });
            }
        }
        out.extend(more);
        out
    }

    /// The WireGuard links at the other end of `l`'s peers: the one with the peer's public
    /// key listening on its endpoint's port where the endpoint's address is local, that
    /// knows `l`'s public key in turn (else it drops the handshake), with a route to the
    /// endpoint from `l`'s netns (the underlay itself is taken to work, as for a VXLAN).
    fn wg_far_ends(&self, l: &Link) -> Vec<usize> {
        let Some(me) = l.ext.wg_public.as_ref() else { return vec![] };
        let mut out = Vec::new();
        for p in &l.ext.wg_peers {
            let Some(e) = p.endpoint else { continue };
            if self.route_lookup(l.ns.as_deref(), e.ip()).is_none() {
                continue;
            }
            out.extend(
                self.links
                    .iter()
                    .filter(|w| {
                        w.uid != l.uid
                            && w.kind == "wireguard"
                            && w.up
                            && w.ext.wg_public.as_ref() == Some(&p.public_key)
                            && w.ext.wg_port == Some(e.port())
                            && self.is_local(w.ns.as_deref(), e.ip())
                            && w.ext.wg_peers.iter().any(|q| &q.public_key == me)
                    })
                    .map(|w| w.uid),
            );
        }
        out
    }

    /// Whether a packet from `src` to `dst` crosses the tunnel from `out` to `far`: `out`
    /// sends it to the peer whose allowed IPs hold `dst` (none: ENOKEY), and `far` takes it
    /// only from a peer whose allowed IPs hold `src` (cryptokey routing).
    fn wg_allows(&self, out: &Link, far: &Link, src: IpAddr, dst: IpAddr) -> bool {
        let entry = |on: &Link, key: &Option<String>, ip: IpAddr| {
            on.ext.wg_peers.iter().any(|p| {
                Some(&p.public_key) == key.as_ref() && p.allowed_ips.iter().any(|n| n.contains(&ip))
            })
        };
        entry(out, &far.ext.wg_public, dst) && entry(far, &out.ext.wg_public, src)
    }

    /// Where a frame with tag `tag` that reached link `t` ends up: `t` itself when untagged,
    /// else its VLAN links of that id (none: the kernel drops a tag nobody listens for).
    fn deliver(&self, t: &Link, tag: Option<u16>, h: Hop) -> Vec<Hop> {
        let Some(id) = tag else { return vec![Hop { target: t.uid, ..h }] };
        let of_id = |c: &Link| {
            c.kind == "vlan" && matches!(c.ext.spec, Some(LinkKind::Vlan { id: i, .. }) if i == id)
        };
        self.upper(t.uid, of_id).into_iter().map(|c| Hop { target: c, ..h }).collect()
    }

    /// What a frame with tag `tag` entering bridge `b` by `in_port` (None: sent by the
    /// bridge itself) reaches: the bridge (when it came in by a port), each port's veth
    /// peer, and through a VXLAN port the far VXLAN, or the ports of the bridge that VXLAN
    /// sits on (an overlay joining two pod bridges). With VLAN filtering the frame belongs
    /// to one VLAN (its tag, or the ingress port's PVID; dropped when the port is not a
    /// member) and leaves only by members of it, tagged unless the port sends it untagged.
    fn bridge_hops(
        &self,
        b: &Link,
        in_port: Option<usize>,
        tag: Option<u16>,
        depth: u8,
        out: &mut Vec<Hop>,
    ) {
        let vid = if b.ext.vlan_filtering {
            let ingress = match in_port.and_then(|p| self.by_uid(p)) {
                Some(p) => &p.ext.vlans,
                None => &b.ext.vlans,
            };
            let vid = match tag {
                Some(t) => ingress.iter().any(|v| v.vid == t).then_some(t),
                None => ingress.iter().find(|v| v.pvid).map(|v| v.vid),
            };
            let Some(vid) = vid else { return };
            Some(vid)
        } else {
            None
        };
        // The tag a frame leaves by a port (or the bridge) with these VLANs; None: not at all.
        let egress = |vlans: &[crate::net::bridge_vlan::VlanInfo]| match vid {
            None => Some(tag),
            Some(vid) => vlans
                .iter()
                .find(|v| v.vid == vid)
                .map(|v| if v.untagged { None } else { Some(vid) }),
        };
        if in_port.is_some()
            && let Some(t) = egress(&b.ext.vlans)
        {
            let h = Hop { target: b.uid, bridge: Some(b.uid), in_port, out_port: None };
            out.extend(self.deliver(b, t, h));
        }
        for p in self.ports_of(b) {
            if Some(p.uid) == in_port {
                continue;
            }
            let Some(t) = egress(&p.ext.vlans) else { continue };
            if p.kind != "vxlan" {
                if let Some(q) = p.peer.and_then(|q| self.by_uid(q)).filter(|q| q.up) {
                    let h =
                        Hop { target: q.uid, bridge: Some(b.uid), in_port, out_port: Some(p.uid) };
                    out.extend(self.deliver(q, t, h));
                }
                continue;
            }
            let Some(q) = self.far_end(p).filter(|q| q.up) else { continue };
            let far_bridge = q
                .master
                .as_deref()
                .and_then(|m| self.find(q.ns.as_deref(), m))
                .map(|i| &self.links[i]);
            match far_bridge {
                Some(fb) if fb.up && depth < 4 => {
                    self.bridge_hops(fb, Some(q.uid), t, depth + 1, out)
                }
                Some(_) => {}
                None => {
                    let h =
                        Hop { target: q.uid, bridge: Some(b.uid), in_port, out_port: Some(p.uid) };
                    out.extend(self.deliver(q, t, h));
                }
            }
        }
    }

    /// The neighbour entries a VXLAN's first packet leaves on its underlay: its remote
    /// resolved by its netns, and the sender as seen from the remote's side.
    fn learn_underlay(&mut self, uid: usize) {
        let Some(l) = self.by_uid(uid).cloned() else { return };
        let Some(LinkKind::Vxlan { remote: Some(r), .. }) = l.ext.spec else { return };
        let Some((dev, gw)) = self.route_lookup(l.ns.as_deref(), r) else { return };
        let nh = gw.unwrap_or(r);
        let Some(i) = self.find(l.ns.as_deref(), &dev) else { return };
        let out = self.links[i].clone();
        let Some(src) = self.source_for(l.ns.as_deref(), &dev, nh) else { return };
        let Some(h) = self.segment(out.uid).into_iter().find(|h| self.has_addr(h.target, nh))
        else {
            return;
        };
        let Some(t) = self.by_uid(h.target).cloned() else { return };
        self.learn_neigh(&l.ns, nh, &t.mac, &out.name, "reachable");
        self.learn_neigh(&t.ns, src, &out.mac, &t.name, "stale");
    }

    /// The up links that sit on link `uid` and pass `f`.
    fn upper(&self, uid: usize, f: impl Fn(&Link) -> bool) -> Vec<usize> {
        self.links
            .iter()
            .filter(|c| c.ext.parent == Some(uid) && c.up && f(c))
            .map(|c| c.uid)
            .collect()
    }

    /// The other end of a cable at layer 2: a veth's peer, or for a VXLAN the VXLAN of the
    /// same id and port that lives where its `remote` points (and, if it names a remote
    /// itself, points back). The underlay between them is taken to work.
    fn far_end(&self, l: &Link) -> Option<&Link> {
        match &l.ext.spec {
            Some(LinkKind::Vxlan { id, remote: Some(r), port, .. }) => self.links.iter().find(|v| {
                v.uid != l.uid
                    && self.is_local(v.ns.as_deref(), *r)
                    && matches!(&v.ext.spec, Some(LinkKind::Vxlan { id: i, port: p, remote: back, .. })
                        if i == id && p == port
                            && back.is_none_or(|b| self.is_local(l.ns.as_deref(), b)))
            }),
            Some(_) => None,
            None => l.peer.and_then(|q| self.by_uid(q)),
        }
    }

    pub(super) fn has_addr(&self, uid: usize, ip: IpAddr) -> bool {
        let Some(l) = self.by_uid(uid) else { return false };
        self.space(l.ns.as_deref())
            .is_ok_and(|s| s.addrs.iter().any(|(d, a)| d == &l.name && a.addr() == ip))
    }

    pub(super) fn learn_neigh(&mut self, ns: &Ns, ip: IpAddr, mac: &str, dev: &str, state: &str) {
        if let Some(space) = self.spaces.get_mut(ns) {
            space.neigh.retain(|n| !(n.ip == ip.to_string() && n.dev == dev));
            space.neigh.push(NeighInfo {
                ip: ip.to_string(),
                mac: Some(mac.to_string()),
                dev: dev.to_string(),
                state: state.into(),
            });
        }
    }

    pub(super) fn learn_fdb(&mut self, bridge: usize, port: Option<usize>, mac: &str) {
        let (Some(b), Some(p)) = (self.by_uid(bridge), port.and_then(|p| self.by_uid(p))) else {
            return;
        };
        let (ns, bname, pname) = (b.ns.clone(), b.name.clone(), p.name.clone());
        if let Some(space) = self.spaces.get_mut(&ns) {
            space.fdb.retain(|(bn, e)| !(bn == &bname && e.mac == mac));
            space.fdb.push((
                bname,
                FdbEntry { mac: mac.to_string(), port: pname, local: false, ageing: 0.0 },
            ));
        }
    }

    /// First rule of `chain` in `ns`'s nat table that matches, by its words.
    pub(super) fn nat_match(&self, ns: &Ns, chain: &str, pkt: &Packet) -> Option<Vec<String>> {
        let space = self.spaces.get(ns)?;
        space
            .rules
            .iter()
            .filter(|(t, c, _)| t == "nat" && c == chain)
            .find(|(_, _, r)| rule_matches(r, pkt, |ip| self.is_local(ns.as_deref(), ip)))
            .map(|(_, _, r)| r.clone())
    }

    /// Follows a packet from `from` to `dst` hop by hop; learns neighbours and bridge
    /// entries on the way. A [`Miss`] when the model sees no path.
    pub(super) fn trace(
        &mut self,
        from: Option<&str>,
        dst: IpAddr,
        port: Option<(&str, u16)>,
    ) -> Result<Trace, Miss> {
        let mut miss = Miss::default();
        self.untraced.set(false);
        match self.trace_path(from, dst, port, &mut miss) {
            Some(t) => Ok(t),
            None if self.untraced.get() => Err(Miss { why: Why::Untraced, ..miss }),
            None => Err(miss),
        }
    }

    fn trace_path(
        &mut self,
        from: Option<&str>,
        dst: IpAddr,
        port: Option<(&str, u16)>,
        miss: &mut Miss,
    ) -> Option<Trace> {
        let mut cur: Ns = key(from);
        let mut pkt = Packet {
            src: None,
            dst,
            proto: port.map(|p| p.0.to_string()),
            dport: port.map(|p| p.1),
            in_dev: None,
            out_dev: None,
        };
        let mut local = None;
        let (mut snat, mut dnat) = (false, false);
        let check = |ns: &Ns,
                     chain,
                     iif: Option<String>,
                     oif: Option<String>,
                     pkt: &Packet,
                     nat: (bool, bool)| Check {
            ns: ns.clone(),
            chain,
            iif,
            oif,
            src: pkt.src.unwrap_or(pkt.dst),
            dst: pkt.dst,
            dport: pkt.dport,
            snat_before: nat.0,
            dnat_before: nat.1,
            bridged: false,
        };
        // OUTPUT on the way out of the asking netns: a port forward also answers the host
        // itself (nat::port_forward's second rule). The kernel picked the source for the
        // original, local destination: that address is what the server sees.
        if let Some(rule) = self.nat_match(&cur, "OUTPUT", &pkt)
            && let Some((ip, p)) = dnat_target(&rule)
        {
            pkt.src = Some(pkt.dst);
            local = Some(pkt.dst);
            pkt.dst = ip;
            pkt.dport = p.or(pkt.dport);
            dnat = true;
        }
        for hop in 0..16 {
            if hop > 0 {
                // PREROUTING on arrival: a port forward may rewrite the destination.
                if let Some(rule) = self.nat_match(&cur, "PREROUTING", &pkt)
                    && let Some((ip, p)) = dnat_target(&rule)
                {
                    pkt.dst = ip;
                    pkt.dport = p.or(pkt.dport);
                    dnat = true;
                }
            }
            if self.is_local(cur.as_deref(), pkt.dst) {
                if hop == 0 {
                    // To this netns itself: out through lo and back in.
                    let lo = Some("lo".to_string());
                    miss.checks.push(check(&cur, "OUTPUT", None, lo.clone(), &pkt, (snat, dnat)));
                    miss.checks.push(check(&cur, "INPUT", lo, None, &pkt, (snat, dnat)));
                } else {
                    let iif = pkt.in_dev.clone();
                    miss.checks.push(check(&cur, "INPUT", iif, None, &pkt, (snat, dnat)));
                }
                let seen = pkt.src.unwrap_or(pkt.dst);
                return Some(Trace {
                    server: cur,
                    seen,
                    local: local.unwrap_or(seen),
                    dst: pkt.dst,
                    port: pkt.dport,
                    checks: std::mem::take(&mut miss.checks),
                    vague: miss.vague,
                });
            }
            if hop > 0
                && self.spaces.get(&cur)?.sysctls.get("net.ipv4.ip_forward").map(String::as_str)
                    != Some("1")
            {
                miss.why = Why::Silent;
                return None;
            }
            let route = self.policy_route(
                cur.as_deref(),
                pkt.dst,
                pkt.src.filter(|_| hop > 0),
                pkt.in_dev.as_deref(),
            );
            let Some(Some((dev, gw))) = route else {
                if route.is_none() && hop == 0 {
                    miss.why = Why::NoRouteHere;
                } else if route.is_none() {
                    miss.why = Why::NoRouteThere;
                    let iif = pkt.in_dev.clone();
                    miss.router = Some(check(&cur, "FORWARD", iif, None, &pkt, (snat, dnat)));
                }
                return None;
            };
            let nh = gw.unwrap_or(pkt.dst);
            let hop_src = self.source_for(cur.as_deref(), &dev, nh)?;
            if pkt.src.is_none() {
                pkt.src = Some(hop_src);
                local = Some(hop_src);
            }
            pkt.out_dev = Some(dev.clone());
            // The filter table sees the packet before POSTROUTING's source NAT.
            let (chain, iif) =
                if hop == 0 { ("OUTPUT", None) } else { ("FORWARD", pkt.in_dev.clone()) };
            miss.checks.push(check(&cur, chain, iif, Some(dev.clone()), &pkt, (snat, dnat)));
            // POSTROUTING: MASQUERADE takes the outgoing link's address, SNAT the one named.
            if let Some(rule) = self.nat_match(&cur, "POSTROUTING", &pkt) {
                let to = rule.iter().position(|w| w == "--to-source");
                if rule.iter().any(|w| w == "MASQUERADE") {
                    pkt.src = Some(hop_src);
                    snat = true;
                } else if let Some(ip) =
                    to.and_then(|i| rule.get(i + 1)).and_then(|a| a.parse::<IpAddr>().ok())
                {
                    pkt.src = Some(ip);
                    snat = true;
                }
            }
            let out = self.links[self.find(cur.as_deref(), &dev)?].clone();
            let Some(h) = self.segment(out.uid).into_iter().find(|h| self.has_addr(h.target, nh))
            else {
                // A wireguard link has no neighbours: its peers' allowed IPs decide.
                if out.kind != "wireguard" {
                    miss.why = Why::NoNeighbour;
                }
                return None;
            };
            let target = self.by_uid(h.target)?.clone();
            miss.vague |= self.hop_is_vague(&out, &h);
            if out.kind == "wireguard" {
                if !self.wg_allows(&out, &target, pkt.src?, pkt.dst) {
                    return None;
                }
                // Layer 3 only: no neighbours, no bridges.
                cur = target.ns.clone();
                pkt.in_dev = Some(target.name.clone());
                pkt.out_dev = None;
                continue;
            }
            // br_netfilter: a frame one bridge forwards from port to port passes that
            // netns's FORWARD chain, with the bridge as both interfaces.
            if let (Some(b), Some(_), Some(_)) = (h.bridge, h.in_port, h.out_port)
                && let Some(b) = self.by_uid(b)
            {
                let name = Some(b.name.clone());
                let c = check(&b.ns, "FORWARD", name.clone(), name, &pkt, (snat, dnat));
                miss.checks.push(Check { bridged: true, ..c });
            }
            // A VXLAN on the way (the link itself or the bridge port the frame leaves by)
            // first resolves its remote on the underlay.
            for v in [Some(out.uid), h.out_port].into_iter().flatten() {
                self.learn_underlay(v);
            }
            // ARP both ways, and the bridge learns both ends' addresses on their ports.
            self.learn_neigh(&cur, nh, &target.mac, &out.name, "reachable");
            self.learn_neigh(&target.ns, hop_src, &out.mac, &target.name, "stale");
            if let Some(b) = h.bridge {
                self.learn_fdb(b, h.in_port, &out.mac);
                self.learn_fdb(b, h.out_port, &target.mac);
            }
            cur = target.ns.clone();
            pkt.in_dev = Some(target.name.clone());
            pkt.out_dev = None;
        }
        None
    }
}
