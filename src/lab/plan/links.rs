//! The model's side of the link kinds of `link::add`, bridge settings and VLANs, and
//! WireGuard: what each Op changes, with the kernel's refusals in its words, and the
//! kind-specific details `link::list` shows.

use super::model::{Link, Model, key};
use crate::net::bridge_vlan::VlanInfo;
use crate::net::error::NetResult;
use crate::net::link_detail::LinkDetail;
use crate::net::link_kind::LinkKind;
use crate::net::refusal::{
    bridge_set_not_bridge, no_parent, no_port_vlan, no_vlan_filtering, not_wireguard,
};
use crate::net::wireguard::{Secret, WgPeer};

/// What a model link carries beyond bridges and veths.
#[derive(Debug, Clone, Default)]
pub(super) struct LinkExt {
    /// The settings `link::add` made it with.
    pub(super) spec: Option<LinkKind>,
    /// The uid of the link it sits on (macvlan, ipvlan, vlan; a VXLAN's `dev`).
    pub(super) parent: Option<usize>,
    pub(super) vlan_filtering: bool,
    pub(super) stp: bool,
    /// Port (or bridge) VLANs, as `bridge vlan show` lists them.
    pub(super) vlans: Vec<VlanInfo>,
    /// WireGuard: the public key of the device's private key, its port and peers.
    pub(super) wg_public: Option<String>,
    pub(super) wg_port: Option<u16>,
    pub(super) wg_peers: Vec<WgPeer>,
}

/// The kernel's `info_kind` for a kind (a tap is a `tun` device).
fn kind_word(kind: &LinkKind) -> &'static str {
    match kind {
        LinkKind::Tap => "tun",
        k => k.name(),
    }
}

/// The MTU the kernel gives a new link: a VXLAN takes its encapsulation off its underlay's
/// (1500 - 50 over IPv4, - 70 over IPv6), links on a parent take the parent's, WireGuard
/// starts at 1420.
fn mtu_of(kind: &LinkKind, parent_mtu: Option<u32>) -> u32 {
    match kind {
        LinkKind::Vxlan { remote, group, local, .. } => {
            let v6 = remote.or(*group).or(*local).is_some_and(|a| a.is_ipv6());
            parent_mtu.unwrap_or(1500) - if v6 { 70 } else { 50 }
        }
        LinkKind::Wireguard => 1420,
        _ => parent_mtu.unwrap_or(1500),
    }
}

/// A bridge port's VLANs when it joins a bridge, or a new bridge's own: VLAN 1, PVID and
/// untagged (the bridge's `default_pvid`).
pub(super) fn default_vlans() -> Vec<VlanInfo> {
    vec![VlanInfo { vid: 1, pvid: true, untagged: true }]
}

impl Model {
    pub(super) fn link_add(
        &mut self,
        ns: Option<&str>,
        name: &str,
        kind: &LinkKind,
    ) -> NetResult<()> {
        self.space(ns)?;
        // Kernel::link_add's order: a tap's name first, then the parent, then the kernel.
        if matches!(kind, LinkKind::Tap) && self.find(ns, name).is_some() {
            return Err(self.taken(ns, name));
        }
        let parent = match kind.parent() {
            Some(p) => Some(self.find(ns, p).ok_or_else(|| no_parent(p, kind.name(), ns))?),
            None => None,
        };
        if self.find(ns, name).is_some() {
            return Err(self.taken(ns, name));
        }
        let parent_mtu = parent.map(|i| self.links[i].mtu);
        let parent_uid = parent.map(|i| self.links[i].uid);
        let parent_mac = parent.map(|i| self.links[i].mac.clone());
        let uid = self.new_link(key(ns), name, kind_word(kind), true);
        let i = self.pos_of(uid).expect("just made");
        self.links[i].mtu = mtu_of(kind, parent_mtu);
        // An ipvlan and a VLAN sub-interface take their parent's MAC (ipvlan's point: one
        // MAC on the wire); a macvlan gets its own.
        if let (LinkKind::Ipvlan { .. } | LinkKind::Vlan { .. }, Some(mac)) = (kind, parent_mac) {
            self.links[i].mac = mac;
        }
        self.links[i].ext.spec = Some(kind.clone());
        self.links[i].ext.parent = parent_uid;
        Ok(())
    }

    pub(super) fn bridge_set(
        &mut self,
        ns: Option<&str>,
        name: &str,
        vlan_filtering: Option<bool>,
        stp: Option<bool>,
    ) -> NetResult<()> {
        let i = self.lookup(ns, name)?;
        if self.links[i].kind != "bridge" {
            return Err(bridge_set_not_bridge(name, ns, libc::EOPNOTSUPP));
        }
        let ext = &mut self.links[i].ext;
        ext.vlan_filtering = vlan_filtering.unwrap_or(ext.vlan_filtering);
        ext.stp = stp.unwrap_or(ext.stp);
        Ok(())
    }

    /// `bridge vlan add` (`flags` Some) or `del` (None) on a port or, `on_bridge`, the bridge.
    pub(super) fn bridge_vlan(
        &mut self,
        ns: Option<&str>,
        port: &str,
        vid: u16,
        flags: Option<(bool, bool)>,
        on_bridge: bool,
    ) -> NetResult<()> {
        let i = self.lookup(ns, port)?;
        let l = &self.links[i];
        let on_a_bridge = if on_bridge {
            l.kind == "bridge"
        } else {
            l.master
                .as_deref()
                .and_then(|m| self.find(ns, m))
                .is_some_and(|b| self.links[b].kind == "bridge")
        };
        if !on_a_bridge {
            return Err(no_vlan_filtering(port));
        }
        let vlans = &mut self.links[i].ext.vlans;
        match flags {
            Some((pvid, untagged)) => {
                if pvid {
                    vlans.iter_mut().for_each(|v| v.pvid = false);
                }
                match vlans.iter_mut().find(|v| v.vid == vid) {
                    Some(v) => *v = VlanInfo { vid, pvid, untagged },
                    None => vlans.push(VlanInfo { vid, pvid, untagged }),
                }
                vlans.sort_by_key(|v| v.vid);
            }
            None => {
                let before = vlans.len();
                vlans.retain(|v| v.vid != vid);
                if vlans.len() == before {
                    return Err(no_port_vlan(port, ns, vid));
                }
            }
        }
        Ok(())
    }

    pub(super) fn wireguard_set(
        &mut self,
        ns: Option<&str>,
        dev: &str,
        key: Option<&Secret>,
        port: Option<u16>,
        peers: Option<&[WgPeer]>,
    ) -> NetResult<()> {
        let i = self.lookup(ns, dev)?;
        if self.links[i].kind != "wireguard" {
            return Err(not_wireguard(dev, ns));
        }
        let ext = &mut self.links[i].ext;
        if let Some(k) = key {
            ext.wg_public = k.public();
        }
        ext.wg_port = port.or(ext.wg_port);
        if let Some(p) = peers {
            ext.wg_peers = p.to_vec();
        }
        Ok(())
    }

    /// Links that sit on `uid` (macvlans, VLANs, VXLANs with it as `dev`): the kernel
    /// deletes them with it.
    pub(super) fn children(&self, uid: usize) -> Vec<usize> {
        self.links.iter().filter(|l| l.ext.parent == Some(uid)).map(|l| l.uid).collect()
    }

    /// What `ip -d link` would show for `l`.
    pub(super) fn detail(&self, l: &Link) -> LinkDetail {
        let parent = l
            .ext
            .parent
            .and_then(|p| self.by_uid(p))
            .map(|p| if p.ns == l.ns { p.name.clone() } else { p.index.to_string() });
        let mut d = LinkDetail::default();
        match &l.ext.spec {
            Some(LinkKind::Vxlan { id, remote, group, local, port, .. }) => {
                d.vxlan_id = Some(*id);
                d.remote = remote.map(|a| a.to_string());
                d.group = group.map(|a| a.to_string());
                d.local = local.map(|a| a.to_string());
                d.port = Some(*port);
                d.parent = parent;
            }
            Some(LinkKind::Vlan { id, .. }) => {
                d.vlan_id = Some(*id);
                d.parent = parent;
            }
            Some(LinkKind::Macvlan { mode, .. } | LinkKind::Ipvlan { mode, .. }) => {
                d.mode = Some(mode.clone());
                d.parent = parent;
            }
            Some(LinkKind::Bond { mode }) => d.mode = Some(mode.clone()),
            _ => {}
        }
        d
    }

    /// `bridge vlan show dev PORT`.
    pub(super) fn vlans_of(&self, ns: Option<&str>, port: &str) -> NetResult<Vec<VlanInfo>> {
        Ok(self.links[self.lookup(ns, port)?].ext.vlans.clone())
    }
}
