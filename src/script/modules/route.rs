use rhai::plugin::*;

use crate::net::Op;
use crate::script::modules::{ifname, parse_cidr, parse_ip};
use crate::script::{RhaiResultOf, fail, invalid};

pub fn build(
    ctx: &NativeCallContext,
    ns: Option<String>,
    dest: &str,
    via: &str,
    add: bool,
) -> RhaiResultOf<Op> {
    let dest = if dest == "default" { None } else { Some(parse_cidr(ctx, dest)?.trunc()) };
    // `via` is a gateway address, `ADDR%DEV` for a gateway out of a given link (what a
    // link-local IPv6 gateway needs), or `dev:NAME` for a route straight out of a link.
    let (via, dev) = match (via.strip_prefix("dev:"), via.split_once('%')) {
        (Some(d), _) => (None, Some(ifname(ctx, d)?)),
        (None, Some((gw, d))) => (Some(parse_ip(ctx, gw)?), Some(ifname(ctx, d)?)),
        (None, None) => (Some(parse_ip(ctx, via)?), None),
    };
    // The kernel would answer a gateway of the other family with a bare "No route to host".
    if let (Some(d), Some(gw)) = (dest, via)
        && d.addr().is_ipv6() != gw.is_ipv6()
    {
        let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        return Err(fail(
            ctx,
            invalid(
                format!(
                    "gateway {gw} is {} but the destination {d} is {}",
                    fam(gw.is_ipv6()),
                    fam(d.addr().is_ipv6())
                ),
                format!(
                    "a route's gateway has its destination's family: an {} gateway for {d}",
                    fam(d.addr().is_ipv6())
                ),
            ),
        ));
    }
    Ok(if add { Op::RouteAdd { ns, dest, via, dev } } else { Op::RouteDel { ns, dest, via, dev } })
}

#[export_module]
pub mod route_mod {

    use super::build;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, apply, query, to_dyn};

    /// Adds a route, like `ip route add DEST via GATEWAY`. `dest` is a prefix or `"default"`;
    /// `via` is the gateway address, `"ADDR%DEV"` for a gateway reached out of link DEV (a
    /// link-local IPv6 gateway needs it: `"fe80::1%eth0"`), or `"dev:NAME"` for a route
    /// straight out of a link (`"default"` with `"dev:NAME"` is the IPv4 default route, as
    /// with `ip route add default dev NAME`). A gateway has its destination's family.
    ///
    /// ```rhai
    /// route::add("10.1.0.0/16", "192.168.24.254");
    /// route::add("10.2.0.0/16", "dev:linux-bridge");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via, true)?;
        apply(&ctx, op)
    }

    /// Adds a route inside a netns, like `ip -n NS route add default via GATEWAY`.
    ///
    /// ```rhai
    /// route::add("red", "default", "192.168.24.1");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via, true)?;
        apply(&ctx, op)
    }

    /// Deletes a route, like `ip route del DEST via GATEWAY`.
    ///
    /// ```rhai
    /// route::del("10.1.0.0/16", "192.168.24.254");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via, false)?;
        apply(&ctx, op)
    }

    /// Deletes a route inside a netns.
    ///
    /// ```rhai
    /// route::del("red", "default", "192.168.24.1");
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns(ctx: NativeCallContext, ns: &str, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via, false)?;
        apply(&ctx, op)
    }

    /// The main routing table here (IPv4 and IPv6): `#{dest, via, dev, family, proto, scope}`.
    ///
    /// ```rhai
    /// for r in route::list() { print(`${r.dest} via ${r.via}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.routes(None)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The main routing table inside a netns, like `ip -n NS route`.
    ///
    /// ```rhai
    /// let r = route::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.routes(ns.as_deref())).map(|v| v.iter().map(to_dyn).collect())
    }
}
