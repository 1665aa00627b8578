//! What the kernel reports back: plain, serialisable snapshots used by `list()` functions,
//! `nslab show` and the plan model.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub name: String,
    pub index: u32,
    /// "veth", "bridge", "loopback", "device", ...
    pub kind: String,
    /// "up" when administratively up, else "down".
    pub state: String,
    /// Operational state as the kernel reports it ("up", "down", "lowerlayerdown", "unknown").
    pub oper: String,
    pub mac: String,
    pub mtu: u32,
    pub master: Option<String>,
    pub alias: Option<String>,
    pub group: u32,
    /// For a veth, the ifindex of its peer (which may live in another netns).
    pub peer_index: Option<u32>,
    /// Kind-specific fields (`vlan_id`, `vxlan_id`, `parent`, `mode`, ...), like `ip -d link`.
    #[serde(flatten)]
    pub detail: super::link_detail::LinkDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrInfo {
    pub dev: String,
    /// "192.168.24.10/24"
    pub cidr: String,
    pub family: String,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// "default" or a prefix.
    pub dest: String,
    pub via: Option<String>,
    pub dev: Option<String>,
    pub family: String,
    pub proto: String,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighInfo {
    pub ip: String,
    pub mac: Option<String>,
    pub dev: String,
    /// "reachable", "stale", "permanent", "failed", ...
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdbEntry {
    pub mac: String,
    pub port: String,
    /// The bridge's own address on that port (`brctl showmacs` "is local? yes").
    pub local: bool,
    /// Seconds since the entry was last refreshed (`brctl showmacs` "ageing timer").
    pub ageing: f64,
}

pub fn mac_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}
