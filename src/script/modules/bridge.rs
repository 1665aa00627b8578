use rhai::plugin::*;

#[export_module]
pub mod bridge_mod {
    use crate::net::Op;
    use crate::script::modules::{ifname, nsname};
    use crate::script::{RhaiResultOf, apply, query, to_dyn};

    /// Creates a bridge (a virtual switch), like `ip link add NAME type bridge`. It starts
    /// down, as with `ip`: bring it up with `link::up`.
    ///
    /// ```rhai
    /// bridge::add("linux-bridge");
    /// link::up("linux-bridge");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, name: &str) -> RhaiResultOf<()> {
        let name = ifname(&ctx, name)?;
        apply(&ctx, Op::BridgeAdd { ns: None, name })
    }

    /// Creates a bridge inside a netns, like `ip -n NS link add NAME type bridge`.
    ///
    /// ```rhai
    /// bridge::add("red", "br-in-red");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, name: &str) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        let name = ifname(&ctx, name)?;
        apply(&ctx, Op::BridgeAdd { ns, name })
    }

    /// The links enslaved to a bridge (`brctl show`), as link maps.
    ///
    /// ```rhai
    /// for p in bridge::ports("linux-bridge") { print(p.name); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn ports(ctx: NativeCallContext, name: &str) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.bridge_ports(None, name)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The ports of a bridge inside a netns.
    ///
    /// ```rhai
    /// let p = bridge::ports("red", "br-in-red");
    /// ```
    #[rhai_fn(name = "ports", return_raw)]
    pub fn ports_ns(ctx: NativeCallContext, ns: &str, name: &str) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.bridge_ports(Some(ns), name)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The bridge's forwarding table (`brctl showmacs`): `#{mac, port, local, ageing}` each;
    /// `local` marks the bridge's own addresses, `ageing` is seconds since last seen.
    ///
    /// ```rhai
    /// for e in bridge::fdb("linux-bridge") { print(`${e.mac} on ${e.port}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fdb(ctx: NativeCallContext, name: &str) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.fdb(None, name)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The forwarding table of a bridge inside a netns.
    ///
    /// ```rhai
    /// let t = bridge::fdb("red", "br-in-red");
    /// ```
    #[rhai_fn(name = "fdb", return_raw)]
    pub fn fdb_ns(ctx: NativeCallContext, ns: &str, name: &str) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.fdb(Some(ns), name)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// Changes a bridge's settings, like `ip link set NAME type bridge vlan_filtering 1
    /// stp_state 1`: `#{vlan_filtering, stp}` (true or false; what is left out stays). On
    /// the lab's own bridges.
    ///
    /// ```rhai
    /// bridge::add("br0");
    /// bridge::set("br0", #{stp: true});
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set(ctx: NativeCallContext, name: &str, opts: rhai::Map) -> RhaiResultOf<()> {
        super::bridge_set(&ctx, None, name, opts)
    }

    /// `bridge::set` for a bridge inside a netns.
    ///
    /// ```rhai
    /// bridge::set("red", "br-in-red", #{vlan_filtering: true});
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set_ns(
        ctx: NativeCallContext,
        ns: &str,
        name: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::bridge_set(&ctx, ns, name, opts)
    }

    /// Adds VLAN `vid` (1-4094) to a bridge port, like `bridge vlan add dev PORT vid VID`.
    /// With VLAN filtering on (`bridge::set`), the port then carries that VLAN tagged.
    /// Given the bridge itself, it is the bridge's own port towards the host (`self`).
    ///
    /// ```rhai
    /// bridge::vlan_add("veth-red-br", 10);
    /// ```
    #[rhai_fn(name = "vlan_add", return_raw)]
    pub fn vlan_add(ctx: NativeCallContext, port: &str, vid: rhai::INT) -> RhaiResultOf<()> {
        super::vlan(&ctx, None, port, vid, Some(rhai::Map::new()))
    }

    /// `bridge::vlan_add` with `#{pvid, untagged}`: `pvid` makes untagged frames that arrive
    /// on the port members of the VLAN, `untagged` sends its frames out without a tag (an
    /// access port has both).
    ///
    /// ```rhai
    /// bridge::vlan_add("veth-red-br", 10, #{pvid: true, untagged: true});
    /// ```
    #[rhai_fn(name = "vlan_add", return_raw)]
    pub fn vlan_add_opts(
        ctx: NativeCallContext,
        port: &str,
        vid: rhai::INT,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        super::vlan(&ctx, None, port, vid, Some(opts))
    }

    /// `bridge::vlan_add` for a port inside a netns.
    ///
    /// ```rhai
    /// bridge::vlan_add("red", "eth1", 10);
    /// ```
    #[rhai_fn(name = "vlan_add", return_raw)]
    pub fn vlan_add_ns(
        ctx: NativeCallContext,
        ns: &str,
        port: &str,
        vid: rhai::INT,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::vlan(&ctx, ns, port, vid, Some(rhai::Map::new()))
    }

    /// `bridge::vlan_add` for a port inside a netns, with `#{pvid, untagged}`.
    ///
    /// ```rhai
    /// bridge::vlan_add("red", "eth1", 10, #{pvid: true, untagged: true});
    /// ```
    #[rhai_fn(name = "vlan_add", return_raw)]
    pub fn vlan_add_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        port: &str,
        vid: rhai::INT,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::vlan(&ctx, ns, port, vid, Some(opts))
    }

    /// Removes VLAN `vid` from a bridge port, like `bridge vlan del dev PORT vid VID`.
    ///
    /// ```rhai
    /// bridge::vlan_del("veth-red-br", 10);
    /// ```
    #[rhai_fn(name = "vlan_del", return_raw)]
    pub fn vlan_del(ctx: NativeCallContext, port: &str, vid: rhai::INT) -> RhaiResultOf<()> {
        super::vlan(&ctx, None, port, vid, None)
    }

    /// `bridge::vlan_del` for a port inside a netns.
    ///
    /// ```rhai
    /// bridge::vlan_del("red", "eth1", 10);
    /// ```
    #[rhai_fn(name = "vlan_del", return_raw)]
    pub fn vlan_del_ns(
        ctx: NativeCallContext,
        ns: &str,
        port: &str,
        vid: rhai::INT,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::vlan(&ctx, ns, port, vid, None)
    }

    /// The VLANs of a bridge port, like `bridge vlan show dev PORT`: `#{vid, pvid,
    /// untagged}` each.
    ///
    /// ```rhai
    /// for v in bridge::vlans("veth-red-br") { print(`${v.vid} pvid=${v.pvid}`); }
    /// ```
    #[rhai_fn(name = "vlans", return_raw)]
    pub fn vlans(ctx: NativeCallContext, port: &str) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.bridge_vlans(None, port)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The VLANs of a bridge port inside a netns.
    ///
    /// ```rhai
    /// let v = bridge::vlans("red", "eth1");
    /// ```
    #[rhai_fn(name = "vlans", return_raw)]
    pub fn vlans_ns(ctx: NativeCallContext, ns: &str, port: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.bridge_vlans(ns.as_deref(), port)).map(|v| v.iter().map(to_dyn).collect())
    }
}

use crate::script::modules::link_opts::{only, opt_bool};
use crate::script::{RhaiResultOf, apply, check, query};

/// `bridge::set` in both forms.
fn bridge_set(
    ctx: &NativeCallContext,
    ns: Option<String>,
    name: &str,
    opts: rhai::Map,
) -> RhaiResultOf<()> {
    let name = crate::script::modules::ifname(ctx, name)?;
    check(ctx, only("bridge::set", &opts, &["vlan_filtering", "stp"]))?;
    let vlan_filtering = check(ctx, opt_bool(&opts, "vlan_filtering"))?;
    let stp = check(ctx, opt_bool(&opts, "stp"))?;
    apply(ctx, crate::net::Op::BridgeSet { ns, name, vlan_filtering, stp })
}

/// `bridge::vlan_add` (`opts` Some) and `bridge::vlan_del` (None). A VLAN on the bridge
/// itself is `self` in `bridge vlan`.
fn vlan(
    ctx: &NativeCallContext,
    ns: Option<String>,
    port: &str,
    vid: rhai::INT,
    opts: Option<rhai::Map>,
) -> RhaiResultOf<()> {
    let port = crate::script::modules::ifname(ctx, port)?;
    let vid = check(ctx, crate::net::bridge_vlan::check_vid(vid))?;
    let on_bridge = query(ctx, |b| b.links(ns.as_deref()))?
        .iter()
        .any(|l| l.name == port && l.kind == "bridge");
    let op = match opts {
        Some(o) => {
            check(ctx, only("bridge::vlan_add", &o, &["pvid", "untagged"]))?;
            let pvid = check(ctx, opt_bool(&o, "pvid"))?.unwrap_or(false);
            let untagged = check(ctx, opt_bool(&o, "untagged"))?.unwrap_or(false);
            crate::net::Op::BridgeVlanAdd { ns, port, vid, pvid, untagged, on_bridge }
        }
        None => crate::net::Op::BridgeVlanDel { ns, port, vid, on_bridge },
    };
    apply(ctx, op)
}
