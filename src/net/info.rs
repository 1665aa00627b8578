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
    /// For a veth whose peer lives in another netns: that netns's id as this one numbers it
    /// (IFLA_LINK_NETNSID). Ifindexes repeat across namespaces, so this tells peers apart.
    #[serde(skip)]
    pub peer_netnsid: Option<i32>,
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
    /// 254 is main.
    #[serde(default = "main_table")]
    pub table: u32,
    /// None when the kernel reports none (IPv4 metric 0).
    #[serde(default)]
    pub metric: Option<u32>,
    /// "unicast", "blackhole", "unreachable", "prohibit", "local", "broadcast", ...
    #[serde(rename = "type", default = "unicast")]
    pub kind: String,
    #[serde(default)]
    pub src: Option<String>,
    /// The gateways of a multipath route (then `via` and `dev` are None).
    #[serde(default)]
    pub nexthops: Vec<NexthopInfo>,
}

fn main_table() -> u32 {
    254
}

fn unicast() -> String {
    "unicast".into()
}

/// The kernel's own identity of an address: the index of its link and its creation stamp
/// (IFA_CACHEINFO `cstamp`, hundredths of a second since boot, set once when the kernel makes
/// the address: `ip addr del` and `add` again give it a new one, unless both fall within
/// 10 ms). Recorded for an address a lab puts on a link it did not make, so that destroy
/// deletes that address and not an equal one someone else made (issue 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrId {
    pub ifindex: u32,
    pub cstamp: u32,
}

/// One gateway of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NexthopInfo {
    pub via: Option<String>,
    pub dev: Option<String>,
    pub weight: u16,
}

impl RouteInfo {
    /// A plain route of the main table (the plan's connected routes and the like).
    pub fn main(dest: String, via: Option<String>, dev: Option<String>, family: &str) -> RouteInfo {
        RouteInfo {
            dest,
            via,
            dev,
            family: family.into(),
            proto: "boot".into(),
            scope: "global".into(),
            table: 254,
            metric: None,
            kind: "unicast".into(),
            src: None,
            nexthops: vec![],
        }
    }

    /// The route as `ip route` prints it after the destination: type, gateways, table,
    /// metric, source.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        if self.kind != "unicast" {
            let _ = write!(s, "{} ", self.kind);
        }
        s.push_str(&self.dest);
        if let Some(v) = &self.via {
            let _ = write!(s, " via {v}");
        }
        if let Some(d) = &self.dev {
            let _ = write!(s, " dev {d}");
        }
        for h in &self.nexthops {
            s.push_str(" nexthop");
            if let Some(v) = &h.via {
                let _ = write!(s, " via {v}");
            }
            if let Some(d) = &h.dev {
                let _ = write!(s, " dev {d}");
            }
            let _ = write!(s, " weight {}", h.weight);
        }
        if self.table != 254 {
            let _ = write!(s, " table {}", crate::net::routing::table_name(self.table));
        }
        if let Some(m) = self.metric {
            let _ = write!(s, " metric {m}");
        }
        if let Some(src) = &self.src {
            let _ = write!(s, " src {src}");
        }
        s
    }
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
