//! Links of other kinds than bridge and veth (`ip link add NAME type KIND`), bridge
//! settings and port VLANs (AF_BRIDGE), and WireGuard configuration. The messages are
//! built in link_kind.rs, bridge_vlan.rs and wireguard.rs; this file sends them through the
//! netns's socket and turns the kernel's answers into advice.

use rtnetlink::LinkUnspec;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;

use super::Kernel;
use super::link::link_error;
use crate::net::bridge_vlan::{self, VlanInfo};
use crate::net::error::{NetError, NetResult, errno_of, from_nl, place};
use crate::net::link_kind::{LinkKind, kind_missing, with_group};
use crate::net::nl::kernel_message;
use crate::net::refusal::{
    bridge_set_not_bridge, no_bridge_vlan_filtering, no_link, no_parent, no_port_vlan,
    no_vlan_filtering,
};
use crate::net::wireguard::{Secret, WgPeer};
use crate::net::{netns, tap, wireguard};

impl Kernel {
    /// `ip link add NAME type KIND ...` (`ip tuntap add dev NAME mode tap` for a tap).
    pub(super) fn link_add(&self, ns: Option<&str>, name: &str, kind: &LinkKind) -> NetResult<()> {
        let sock = self.sock(ns)?;
        if let LinkKind::Tap = kind {
            if sock.index_of(name).is_ok() {
                return Err(self.taken(ns, name));
            }
            let n = name.to_string();
            netns::run_in(ns, move || tap::create_here(&n))??;
            // A tap is made without netlink: its group comes with the tag request.
            let b = self.tagged(LinkUnspec::new_with_name(name));
            sock.ack(RouteNetlinkMessage::SetLink(b.build()), 0)
                .map_err(|e| link_error(e, name, ns, "tag"))
                .and_then(|()| self.link_v6_off(ns, name))
                .inspect_err(|_| self.undo_link(ns, name))?;
            return Ok(());
        }
        let parent = match kind.parent() {
            Some(p) => Some(sock.index_of(p).map_err(|_| no_parent(p, kind.name(), ns))?),
            None => None,
        };
        let msg = with_group(kind.message(name, parent), self.tag.as_ref().map(|t| t.group));
        sock.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map_err(|e| {
            let words = kernel_message(&e);
            match errno_of(&e) {
                // "A VXLAN device with the specified VNI already exists": the name is free.
                Some(libc::EEXIST) if sock.index_of(name).is_err() => {
                    let what = format!("cannot create {} {name}", kind.name());
                    from_nl(e, &what, |_| {
                        Some(NetError::new(format!(
                            "{what}: {}",
                            words.clone().unwrap_or_else(|| "its settings clash with another link".into())
                        ))
                        .with_help("a VXLAN's id, port and local address must differ from every other VXLAN in the netns"))
                    })
                }
                Some(libc::EEXIST) => self.taken(ns, name),
                Some(libc::EOPNOTSUPP)
                    if words.as_deref().is_none_or(|w| w.starts_with("Unknown device type")) =>
                {
                    kind_missing(kind)
                }
                _ => link_error(e, name, ns, &format!("create {}", kind.name())),
            }
        })?;
        self.set_alias(ns, name)
            .and_then(|()| self.link_v6_off(ns, name))
            .inspect_err(|_| self.undo_link(ns, name))
    }

    /// `ip link set NAME type bridge vlan_filtering 0|1 stp_state 0|1`.
    pub(super) fn bridge_set(
        &self,
        ns: Option<&str>,
        name: &str,
        vlan_filtering: Option<bool>,
        stp: Option<bool>,
    ) -> NetResult<()> {
        let idx = self.link_index(ns, name)?;
        let msg = bridge_vlan::bridge_set_message(idx, vlan_filtering, stp);
        self.sock(ns)?.ack(RouteNetlinkMessage::NewLink(msg), 0).map_err(|e| {
            from_nl(e, &format!("cannot set bridge options of {name}"), |errno| match errno {
                libc::ENODEV => Some(no_link(name, ns)),
                libc::EOPNOTSUPP if vlan_filtering.is_some() => {
                    Some(no_bridge_vlan_filtering(name))
                }
                libc::EOPNOTSUPP | libc::EINVAL => Some(bridge_set_not_bridge(name, ns, errno)),
                _ => None,
            })
        })
    }

    /// `bridge vlan add|del dev PORT vid VID [pvid] [untagged] [self]`.
    pub(super) fn bridge_vlan(
        &self,
        ns: Option<&str>,
        port: &str,
        vid: u16,
        flags: Option<(bool, bool)>,
        on_bridge: bool,
    ) -> NetResult<()> {
        let idx = self.link_index(ns, port)?;
        let (pvid, untagged) = flags.unwrap_or_default();
        let msg = bridge_vlan::vlan_message(idx, vid, pvid, untagged, on_bridge);
        let (m, verb) = match flags {
            Some(_) => (RouteNetlinkMessage::SetLink(msg), "add"),
            None => (RouteNetlinkMessage::DelLink(msg), "delete"),
        };
        self.sock(ns)?.ack(m, 0).map_err(|e| {
            from_nl(e, &format!("cannot {verb} VLAN {vid} on {port}"), |errno| match errno {
                libc::EOPNOTSUPP => Some(no_vlan_filtering(port)),
                libc::ENOENT if flags.is_none() => Some(no_port_vlan(port, ns, vid)),
                _ => None,
            })
        })
    }

    /// The VLANs of a bridge port (`bridge vlan show dev PORT`).
    pub fn bridge_vlans(&self, ns: Option<&str>, port: &str) -> NetResult<Vec<VlanInfo>> {
        let idx = self.link_index(ns, port)?;
        let answers: Vec<LinkMessage> = self
            .sock(ns)?
            .dump(RouteNetlinkMessage::GetLink(bridge_vlan::vlan_dump_request()))
            .map_err(|e| from_nl(e, &format!("cannot list VLANs in {}", place(ns)), |_| None))?
            .into_iter()
            .filter_map(|m| if let RouteNetlinkMessage::NewLink(m) = m { Some(m) } else { None })
            .collect();
        Ok(bridge_vlan::vlans_of(&answers, idx))
    }

    /// `wg set DEV private-key K listen-port N peer ...`.
    pub(super) fn wireguard_set(
        &self,
        ns: Option<&str>,
        dev: &str,
        key: Option<&Secret>,
        listen_port: Option<u16>,
        peers: Option<&[WgPeer]>,
    ) -> NetResult<()> {
        wireguard::set_device(ns, dev, key, listen_port, peers)
    }
}
