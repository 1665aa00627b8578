//! What `ip -d link` shows beyond the basics: the kind-specific settings of a link (VLAN
//! id, VXLAN id and ends, parent, mode), read from the IFLA_LINKINFO of an RTM_NEWLINK dump.

use std::collections::HashMap;
use std::net::IpAddr;

use rtnetlink::packet_route::link::{
    BondMode, InfoBond, InfoData, InfoIpVlan, InfoMacVlan, InfoVlan, InfoVxlan, IpVlanMode,
    LinkAttribute, LinkInfo as NlLinkInfo, LinkMessage, MacVlanMode,
};
use serde::{Deserialize, Serialize};

/// Kind-specific fields of a link; each is present only where it applies, so a link map in
/// a script has `vlan_id` only for a VLAN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDetail {
    /// The link this one sits on (VLAN, macvlan, ipvlan: IFLA_LINK; VXLAN: its `dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_id: Option<u32>,
    /// VXLAN: the unicast other end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// VXLAN: the multicast group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// VXLAN: the UDP destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// macvlan, ipvlan, bond: the mode as `ip -d link` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl LinkDetail {
    pub fn is_empty(&self) -> bool {
        *self == LinkDetail::default()
    }

    /// The settings in `ip -d link`'s words, for `nslab show`: `id 42 remote 10.0.0.2 dev
    /// eth0 dstport 4789`, `id 10 on eth0`, `mode bridge on eth0`.
    pub fn words(&self) -> String {
        let mut w = Vec::new();
        if let Some(i) = self.vxlan_id.map(u64::from).or(self.vlan_id.map(u64::from)) {
            w.push(format!("id {i}"));
        }
        for (k, v) in [("remote", &self.remote), ("group", &self.group), ("local", &self.local)] {
            if let Some(v) = v {
                w.push(format!("{k} {v}"));
            }
        }
        if let Some(m) = &self.mode {
            w.push(format!("mode {m}"));
        }
        if let Some(p) = &self.parent {
            w.push(if self.vxlan_id.is_some() { format!("dev {p}") } else { format!("on {p}") });
        }
        if let Some(p) = self.port {
            w.push(format!("dstport {p}"));
        }
        w.join(" ")
    }
}

fn mode_of_macvlan(m: &MacVlanMode) -> String {
    match m {
        MacVlanMode::Private => "private".into(),
        MacVlanMode::Vepa => "vepa".into(),
        MacVlanMode::Bridge => "bridge".into(),
        MacVlanMode::Passthrough => "passthru".into(),
        MacVlanMode::Source => "source".into(),
        MacVlanMode::Other(n) => n.to_string(),
        m => format!("{m:?}").to_lowercase(),
    }
}

fn mode_of_ipvlan(m: &IpVlanMode) -> String {
    match m {
        IpVlanMode::L2 => "l2".into(),
        IpVlanMode::L3 => "l3".into(),
        IpVlanMode::L3S => "l3s".into(),
        IpVlanMode::Other(n) => n.to_string(),
        m => format!("{m:?}").to_lowercase(),
    }
}

fn mode_of_bond(m: &BondMode) -> String {
    match m {
        BondMode::BalanceRr => "balance-rr".into(),
        BondMode::ActiveBackup => "active-backup".into(),
        BondMode::BalanceXor => "balance-xor".into(),
        BondMode::Broadcast => "broadcast".into(),
        BondMode::Ieee8023Ad => "802.3ad".into(),
        BondMode::BalanceTlb => "balance-tlb".into(),
        BondMode::BalanceAlb => "balance-alb".into(),
        BondMode::Other(n) => n.to_string(),
        m => format!("{m:?}").to_lowercase(),
    }
}

/// The details of one link from its RTM_NEWLINK message; `names` maps ifindexes of the
/// same netns to names (a parent in another netns shows as its index).
pub fn link_detail(m: &LinkMessage, names: &HashMap<u32, String>) -> LinkDetail {
    let name = |i: u32| names.get(&i).cloned().unwrap_or_else(|| i.to_string());
    let mut d = LinkDetail::default();
    let mut link = None;
    let mut data = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::Link(i) => link = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                data = infos.iter().find_map(|i| match i {
                    NlLinkInfo::Data(d) => Some(d),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    match data {
        Some(InfoData::Vlan(v)) => {
            d.parent = link.map(name);
            d.vlan_id =
                v.iter().find_map(|x| if let InfoVlan::Id(i) = x { Some(*i) } else { None });
        }
        Some(InfoData::MacVlan(v)) => {
            d.parent = link.map(name);
            d.mode = v.iter().find_map(|x| match x {
                InfoMacVlan::Mode(m) => Some(mode_of_macvlan(m)),
                _ => None,
            });
        }
        Some(InfoData::IpVlan(v)) => {
            d.parent = link.map(name);
            d.mode = v.iter().find_map(|x| match x {
                InfoIpVlan::Mode(m) => Some(mode_of_ipvlan(m)),
                _ => None,
            });
        }
        Some(InfoData::Bond(v)) => {
            d.mode = v.iter().find_map(|x| match x {
                InfoBond::Mode(m) => Some(mode_of_bond(m)),
                _ => None,
            });
        }
        Some(InfoData::Vxlan(v)) => {
            for x in v {
                match x {
                    InfoVxlan::Id(i) => d.vxlan_id = Some(*i),
                    InfoVxlan::Link(i) if *i != 0 => d.parent = Some(name(*i)),
                    InfoVxlan::Port(p) => d.port = Some(*p),
                    InfoVxlan::Group(a) => set_peer(&mut d, IpAddr::V4(*a)),
                    InfoVxlan::Group6(a) => set_peer(&mut d, IpAddr::V6(*a)),
                    InfoVxlan::Local(a) if !a.is_unspecified() => d.local = Some(a.to_string()),
                    InfoVxlan::Local6(a) if !a.is_unspecified() => d.local = Some(a.to_string()),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    d
}

/// IFLA_VXLAN_GROUP holds the unicast remote as well as a multicast group.
fn set_peer(d: &mut LinkDetail, a: IpAddr) {
    if a.is_unspecified() {
        return;
    }
    if a.is_multicast() {
        d.group = Some(a.to_string());
    } else {
        d.remote = Some(a.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::link_kind::LinkKind;

    #[test]
    fn details_read_back_what_link_kind_writes() {
        let names: HashMap<u32, String> = [(3, "eth0".to_string())].into();
        let vx = LinkKind::Vxlan {
            id: 42,
            remote: Some("10.0.0.2".parse().unwrap()),
            group: None,
            local: Some("10.0.0.1".parse().unwrap()),
            dev: Some("eth0".into()),
            port: 4789,
        };
        let d = link_detail(&vx.message("vx0", Some(3)), &names);
        assert_eq!(d.vxlan_id, Some(42));
        assert_eq!(d.remote.as_deref(), Some("10.0.0.2"));
        assert_eq!(d.group, None);
        assert_eq!(d.local.as_deref(), Some("10.0.0.1"));
        assert_eq!(d.parent.as_deref(), Some("eth0"));
        assert_eq!(d.port, Some(4789));
        let v = LinkKind::Vlan { parent: "eth0".into(), id: 10 };
        let d = link_detail(&v.message("v", Some(3)), &names);
        assert_eq!((d.vlan_id, d.parent.as_deref()), (Some(10), Some("eth0")));
        let m = LinkKind::Macvlan { parent: "eth0".into(), mode: "passthru".into() };
        let d = link_detail(&m.message("m", Some(9)), &names);
        assert_eq!((d.mode.as_deref(), d.parent.as_deref()), (Some("passthru"), Some("9")));
        let b = LinkKind::Bond { mode: "802.3ad".into() };
        assert_eq!(link_detail(&b.message("b", None), &names).mode.as_deref(), Some("802.3ad"));
        assert!(link_detail(&LinkKind::Dummy.message("d", None), &names).is_empty());
        let d = link_detail(&vx.message("vx0", Some(3)), &names);
        assert_eq!(d.words(), "id 42 remote 10.0.0.2 local 10.0.0.1 dev eth0 dstport 4789");
        let d = link_detail(&v.message("v", Some(3)), &names);
        assert_eq!(d.words(), "id 10 on eth0");
    }

    #[test]
    fn absent_fields_are_absent_in_json() {
        let d = LinkDetail { vlan_id: Some(10), ..Default::default() };
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"vlan_id":10}"#);
    }
}
