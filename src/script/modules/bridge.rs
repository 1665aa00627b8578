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
}
