use rhai::plugin::*;

#[export_module]
pub mod addr_mod {
    use crate::net::Op;
    use crate::script::modules::{ifname, nsname, parse_cidr};
    use crate::script::{RhaiResultOf, apply, query, to_dyn};

    /// Adds an IPv4 or IPv6 address to a link, like `ip addr add CIDR dev DEV`.
    ///
    /// ```rhai
    /// addr::add("linux-bridge", "192.168.24.1/24");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, dev: &str, cidr: &str) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::AddrAdd { ns: None, dev: ifname(&ctx, dev)?, cidr: parse_cidr(&ctx, cidr)? },
        )
    }

    /// Adds an address to a link inside a netns, like `ip -n NS addr add CIDR dev DEV`.
    ///
    /// ```rhai
    /// addr::add("red", "veth-red", "192.168.24.10/24");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, dev: &str, cidr: &str) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::AddrAdd {
                ns: nsname(&ctx, ns)?,
                dev: ifname(&ctx, dev)?,
                cidr: parse_cidr(&ctx, cidr)?,
            },
        )
    }

    /// Removes an address from a link, like `ip addr del CIDR dev DEV`.
    ///
    /// ```rhai
    /// addr::del("linux-bridge", "192.168.24.1/24");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, dev: &str, cidr: &str) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::AddrDel { ns: None, dev: ifname(&ctx, dev)?, cidr: parse_cidr(&ctx, cidr)? },
        )
    }

    /// Removes an address from a link inside a netns.
    ///
    /// ```rhai
    /// addr::del("red", "veth-red", "192.168.24.10/24");
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns(ctx: NativeCallContext, ns: &str, dev: &str, cidr: &str) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::AddrDel {
                ns: nsname(&ctx, ns)?,
                dev: ifname(&ctx, dev)?,
                cidr: parse_cidr(&ctx, cidr)?,
            },
        )
    }

    /// The addresses here, like `ip addr`: `#{dev, cidr, family, scope}` each.
    ///
    /// ```rhai
    /// for a in addr::list() { print(`${a.dev} ${a.cidr}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.addrs(None)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The addresses inside a netns, like `ip -n NS addr`.
    ///
    /// ```rhai
    /// let a = addr::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.addrs(ns.as_deref())).map(|v| v.iter().map(to_dyn).collect())
    }
}
