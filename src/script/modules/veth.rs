use rhai::plugin::*;

use crate::net::Op;
use crate::script::modules::{ifname, nsname};
use crate::script::{RhaiResultOf, apply};

/// A veth pair, impaired at both ends when `opts` asks (each direction once).
fn add_impaired(
    ctx: &NativeCallContext,
    name: &str,
    peer: &str,
    peer_ns: Option<&str>,
    opts: rhai::Map,
) -> RhaiResultOf<()> {
    let (name, peer) = (ifname(ctx, name)?, ifname(ctx, peer)?);
    let peer_ns = peer_ns.map(|n| nsname(ctx, n)).transpose()?.flatten();
    // Checked before anything is made: bad options leave nothing behind.
    let qdisc = super::tc::link_qdisc(ctx, &opts)?;
    apply(
        ctx,
        Op::VethAdd { ns: None, name: name.clone(), peer: peer.clone(), peer_ns: peer_ns.clone() },
    )?;
    if let Some(q) = qdisc {
        super::tc::set(ctx, None, &name, q.clone())?;
        super::tc::set(ctx, peer_ns, &peer, q)?;
    }
    Ok(())
}

#[export_module]
pub mod veth_mod {
    use super::add_impaired;
    use crate::net::Op;
    use crate::script::modules::{ifname, nsname};
    use crate::script::{RhaiResultOf, apply};

    /// A veth pair with delay, loss or a rate limit (Mininet's `TCLink`). `#{delay_ms,
    /// jitter_ms, loss_pct, rate}` impair both ends, so each direction is delayed once (a
    /// ping's round trip grows by twice `delay_ms`) and limited to `rate`. A rate alone is a
    /// tbf qdisc; delay or loss is netem (needs sch_netem). A link moved to another netns
    /// afterwards loses its qdisc (the kernel resets it): make the peer in its netns with the
    /// four-argument form instead.
    ///
    /// ```rhai
    /// veth::add("v-a", "v-b", #{delay_ms: 10, loss_pct: 1, rate: "100mbit"});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_opts(
        ctx: NativeCallContext,
        name: &str,
        peer: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        add_impaired(&ctx, name, peer, None, opts)
    }

    /// A veth pair with its peer made inside `peer_netns`, impaired at both ends.
    ///
    /// ```rhai
    /// veth::add("v-red", "eth0", "red", #{rate: "8mbit"});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_peer_ns_opts(
        ctx: NativeCallContext,
        name: &str,
        peer: &str,
        peer_netns: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        add_impaired(&ctx, name, peer, Some(peer_netns), opts)
    }

    /// Creates a veth pair (a virtual cable), like `ip link add NAME type veth peer name PEER`.
    ///
    /// ```rhai
    /// veth::add("veth-red", "veth-red-br");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, name: &str, peer: &str) -> RhaiResultOf<()> {
        let (name, peer) = (ifname(&ctx, name)?, ifname(&ctx, peer)?);
        apply(&ctx, Op::VethAdd { ns: None, name, peer, peer_ns: None })
    }

    /// Creates a veth pair whose `peer` end is made directly inside `peer_netns`, like
    /// `ip link add NAME type veth peer name PEER netns NS`. Much faster than creating it
    /// here and moving it with `link::set_netns` (the kernel takes ~20 ms per move).
    ///
    /// ```rhai
    /// veth::add("veth-red-br", "veth-red", "red");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_peer_ns(
        ctx: NativeCallContext,
        name: &str,
        peer: &str,
        peer_netns: &str,
    ) -> RhaiResultOf<()> {
        let (name, peer) = (ifname(&ctx, name)?, ifname(&ctx, peer)?);
        let peer_ns = nsname(&ctx, peer_netns)?;
        apply(&ctx, Op::VethAdd { ns: None, name, peer, peer_ns })
    }

    /// Creates a veth pair with each end made directly inside its own netns, in one kernel
    /// request, like `ip -n NS_A link add NAME type veth peer name PEER netns NS_B`: the
    /// cable between two namespaces, with nothing moved and nothing left on the host.
    ///
    /// ```rhai
    /// netns::add("node1");
    /// netns::add("node2");
    /// veth::add("node1", "eth0", "node2", "eth0");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_both_ns(
        ctx: NativeCallContext,
        ns_a: &str,
        name: &str,
        ns_b: &str,
        peer: &str,
    ) -> RhaiResultOf<()> {
        let (name, peer) = (ifname(&ctx, name)?, ifname(&ctx, peer)?);
        let (ns, peer_ns) = (nsname(&ctx, ns_a)?, nsname(&ctx, ns_b)?);
        apply(&ctx, Op::VethAdd { ns, name, peer, peer_ns })
    }
}
