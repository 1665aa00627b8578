use rhai::plugin::*;

#[export_module]
pub mod veth_mod {
    use crate::net::Op;
    use crate::script::modules::{ifname, nsname};
    use crate::script::{RhaiResultOf, apply};

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
