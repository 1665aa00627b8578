use rhai::plugin::*;

#[export_module]
pub mod neigh_mod {
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, query, to_dyn};

    /// The neighbour (ARP/NDP) table here, like `ip neigh` or `arp -n`:
    /// `#{ip, mac, dev, state}` each.
    ///
    /// ```rhai
    /// for n in neigh::list() { print(`${n.ip} is at ${n.mac}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.neighbours(None)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The neighbour table inside a netns, like `ip netns exec NS arp -n`.
    ///
    /// ```rhai
    /// let arp = neigh::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.neighbours(ns.as_deref())).map(|v| v.iter().map(to_dyn).collect())
    }
}
