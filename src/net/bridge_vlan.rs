//! Bridge settings and VLANs over netlink, as `ip link set BR type bridge vlan_filtering 1`
//! and `bridge vlan add/del/show` do it: bridge options are IFLA_INFO_DATA of an ordinary
//! RTM_NEWLINK; port VLANs are AF_BRIDGE link messages with an IFLA_AF_SPEC of
//! `struct bridge_vlan_info` (RTM_SETLINK adds, RTM_DELLINK removes, an RTM_GETLINK dump
//! with RTEXT_FILTER_BRVLAN lists them).

use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{
    AfSpecBridge, BridgeFlag, BridgeStpState, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge,
    InfoData, InfoKind, LinkAttribute, LinkExtentMask, LinkInfo as NlLinkInfo, LinkMessage,
};
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult};

/// One VLAN on a bridge port, as `bridge vlan show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanInfo {
    pub vid: u16,
    /// Untagged frames arriving on the port belong to this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

/// VLAN ids a bridge accepts: 1-4094.
pub fn check_vid(vid: i64) -> NetResult<u16> {
    u16::try_from(vid).ok().filter(|v| (1..=4094).contains(v)).ok_or_else(|| {
        NetError::new(format!("VLAN id {vid} is out of range"))
            .with_errno(libc::EINVAL)
            .with_help("a VLAN id goes from 1 to 4094 (12 bits; 0 and 4095 are reserved)")
    })
}

/// `ip link set NAME type bridge [vlan_filtering 0|1] [stp_state 0|1]` as RTM_NEWLINK
/// (without NLM_F_CREATE: a change of an existing bridge).
pub fn bridge_set_message(
    index: u32,
    vlan_filtering: Option<bool>,
    stp: Option<bool>,
) -> LinkMessage {
    let mut data = Vec::new();
    if let Some(v) = vlan_filtering {
        data.push(InfoBridge::VlanFiltering(v));
    }
    if let Some(s) = stp {
        data.push(InfoBridge::StpState(if s {
            BridgeStpState::KernelStp
        } else {
            BridgeStpState::Disabled
        }));
    }
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        NlLinkInfo::Kind(InfoKind::Bridge),
        NlLinkInfo::Data(InfoData::Bridge(data)),
    ]));
    m
}

/// The AF_BRIDGE message for `bridge vlan add|del dev PORT vid VID [pvid] [untagged]
/// [self]`: RTM_SETLINK adds it, RTM_DELLINK removes it. `on_bridge` is `self`: the VLAN of
/// the bridge device itself (its port towards the host), not of a port.
pub fn vlan_message(
    port: u32,
    vid: u16,
    pvid: bool,
    untagged: bool,
    on_bridge: bool,
) -> LinkMessage {
    let mut flags = BridgeVlanInfoFlags::empty();
    if pvid {
        flags |= BridgeVlanInfoFlags::Pvid;
    }
    if untagged {
        flags |= BridgeVlanInfoFlags::Untagged;
    }
    let mut spec = Vec::new();
    if on_bridge {
        spec.push(AfSpecBridge::Flags(BridgeFlag::LowerDev));
    }
    spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid }));
    let mut m = LinkMessage::default();
    m.header.interface_family = AddressFamily::Bridge;
    m.header.index = port;
    m.attributes.push(LinkAttribute::AfSpecBridge(spec));
    m
}

/// The dump request of `bridge vlan show`: AF_BRIDGE links with their VLAN lists.
pub fn vlan_dump_request() -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.interface_family = AddressFamily::Bridge;
    m.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
    m
}

/// The VLANs of link `index` in the answers to [`vlan_dump_request`]. Ranges (RANGE_BEGIN
/// ... RANGE_END, as the kernel sends them with the compressed filter) are spread out.
pub fn vlans_of(answers: &[LinkMessage], index: u32) -> Vec<VlanInfo> {
    let mut out = Vec::new();
    let mut begin: Option<u16> = None;
    for m in answers.iter().filter(|m| m.header.index == index) {
        for a in &m.attributes {
            let LinkAttribute::AfSpecBridge(spec) = a else { continue };
            for s in spec {
                let AfSpecBridge::VlanInfo(v) = s else { continue };
                let info = |vid| VlanInfo {
                    vid,
                    pvid: v.flags.contains(BridgeVlanInfoFlags::Pvid),
                    untagged: v.flags.contains(BridgeVlanInfoFlags::Untagged),
                };
                if v.flags.contains(BridgeVlanInfoFlags::RangeBegin) {
                    begin = Some(v.vid);
                } else if v.flags.contains(BridgeVlanInfoFlags::RangeEnd) {
                    let from = begin.take().unwrap_or(v.vid);
                    out.extend((from..=v.vid).map(info));
                } else {
                    out.push(info(v.vid));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::Emitable;

    #[test]
    fn vlan_add_encodes_like_bridge_vlan_add() {
        let m = vlan_message(7, 10, true, true, false);
        assert_eq!(m.header.interface_family, AddressFamily::Bridge);
        assert_eq!(m.header.index, 7);
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        // After the 16-byte ifinfomsg: IFLA_AF_SPEC (26), nested IFLA_BRIDGE_VLAN_INFO (2)
        // holding flags PVID|UNTAGGED (6) and vid 10.
        assert_eq!(&buf[16..], &[12, 0, 26, 0, 8, 0, 2, 0, 6, 0, 10, 0]);
        let m = vlan_message(7, 10, false, false, true);
        let LinkAttribute::AfSpecBridge(spec) = &m.attributes[0] else { panic!() };
        assert_eq!(spec[0], AfSpecBridge::Flags(BridgeFlag::LowerDev));
    }

    #[test]
    fn vlan_lists_spread_ranges() {
        let mut m = LinkMessage::default();
        m.header.index = 4;
        let vi = |flags, vid| AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid });
        m.attributes.push(LinkAttribute::AfSpecBridge(vec![
            vi(BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged, 1),
            vi(BridgeVlanInfoFlags::RangeBegin, 20),
            vi(BridgeVlanInfoFlags::RangeEnd, 22),
        ]));
        let mut other = m.clone();
        other.header.index = 5;
        let v = vlans_of(&[other, m], 4);
        let vids: Vec<u16> = v.iter().map(|x| x.vid).collect();
        assert_eq!(vids, [1, 20, 21, 22]);
        assert!(v[0].pvid && v[0].untagged && !v[1].pvid);
    }

    #[test]
    fn vids_are_checked() {
        assert_eq!(check_vid(10).unwrap(), 10);
        assert_eq!(check_vid(5000).unwrap_err().message, "VLAN id 5000 is out of range");
        assert!(check_vid(0).is_err());
        assert!(check_vid(-1).is_err());
    }

    #[test]
    fn bridge_set_carries_only_what_was_asked() {
        let m = bridge_set_message(3, Some(true), None);
        let LinkAttribute::LinkInfo(i) = &m.attributes[0] else { panic!() };
        assert_eq!(i[1], NlLinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(true)])));
    }
}
