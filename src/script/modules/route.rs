use rhai::plugin::*;

use crate::net::Op;
use crate::script::modules::route_args;
use crate::script::{RhaiResultOf, check, query, to_dyn};

/// The Op for `route::add/del(…)` as the recipe wrote it.
pub(crate) fn build(
    ctx: &NativeCallContext,
    ns: Option<String>,
    dest: &str,
    via: Dynamic,
    opts: Option<rhai::Map>,
    add: bool,
) -> RhaiResultOf<Op> {
    let r = check(ctx, route_args::route(dest, &via, opts.as_ref()))?;
    let (dest, via, dev, opts) = (r.dest, r.via, r.dev, r.opts);
    Ok(if add {
        Op::RouteAdd { ns, dest, via, dev, opts }
    } else {
        Op::RouteDel { ns, dest, via, dev, opts }
    })
}

/// `route::list([ns] [, #{table}])`: `table` is a number, a name (`main`, `local`,
/// `default`) or `"all"` (every table but local); main without it.
pub(crate) fn list(
    ctx: &NativeCallContext,
    ns: Option<String>,
    opts: Option<rhai::Map>,
) -> RhaiResultOf<rhai::Array> {
    let mut table = Some(crate::net::routing::TABLE_MAIN);
    if let Some(o) = opts {
        crate::script::modules::check_opts(ctx, &o, &["table"])?;
        if let Some(t) = o.get("table") {
            let word = if t.is_int() {
                t.to_string()
            } else {
                t.clone().into_string().unwrap_or_default()
            };
            table = if word == "all" {
                None
            } else {
                Some(check(ctx, crate::net::routing::parse_table(&word))?)
            };
        }
    }
    query(ctx, |b| b.routes(ns.as_deref(), table)).map(|v| v.iter().map(to_dyn).collect())
}

#[export_module]
pub mod route_mod {

    use super::build;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, apply};

    /// Adds a route, like `ip route add DEST via GATEWAY`, `ip route add DEST dev NAME`, `ip
    /// route add blackhole DEST` or `ip route add DEST nexthop via A nexthop via B`, with
    /// `table`, `metric`, `src` and `onlink` as options. `dest` is a prefix or `"default"`.
    /// `via` is one of:
    /// - a gateway address, or `"ADDR%DEV"` for a gateway reached out of link DEV (a
    ///   link-local IPv6 gateway needs it: `"fe80::1%eth0"`);
    /// - `"dev:NAME"` for a route straight out of a link (`"default"` with `"dev:NAME"` is
    ///   the IPv4 default route, as with `ip route add default dev NAME`);
    /// - `"blackhole"`, `"unreachable"` or `"prohibit"`: packets are dropped, silently or
    ///   with an ICMP error (`ip route add blackhole DEST`);
    /// - an array of two or more gateways, each `"ADDR"` or `#{via, weight, dev}`: a
    ///   multipath route (`nexthop via A weight 1 nexthop via B weight 2`).
    ///
    /// A gateway has its destination's family.
    ///
    /// ```rhai
    /// route::add("10.1.0.0/16", "192.168.24.254");
    /// route::add("10.2.0.0/16", "dev:linux-bridge");
    /// route::add("10.9.0.0/16", "blackhole");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), None, true)?;
        apply(&ctx, op)
    }

    /// Adds a multipath route here: traffic is spread over the gateways by flow, in
    /// proportion to their weights (1 to 256, default 1).
    ///
    /// ```rhai
    /// route::add("default", ["10.1.0.1", #{via: "10.2.0.1", weight: 2}]);
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_multi(ctx: NativeCallContext, dest: &str, via: rhai::Array) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), None, true)?;
        apply(&ctx, op)
    }

    /// Adds a route with options. Like `ip route add DEST via GW table T metric M src S
    /// onlink`: `table` (a number from 1, or `"main"`), `metric`, `src` (the source address
    /// the route gives packets sent from here) and `onlink` (the gateway is on the link even
    /// if no subnet says so).
    ///
    /// ```rhai
    /// route::add("default", "10.2.0.1", #{table: 102});
    /// route::add("10.8.0.0/16", "192.168.24.254", #{metric: 50});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_opts(
        ctx: NativeCallContext,
        dest: &str,
        via: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), Some(opts), true)?;
        apply(&ctx, op)
    }

    /// Adds a multipath route with options.
    ///
    /// ```rhai
    /// route::add("default", ["10.1.0.1", "10.2.0.1"], #{table: 100});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_multi_opts(
        ctx: NativeCallContext,
        dest: &str,
        via: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), Some(opts), true)?;
        apply(&ctx, op)
    }

    /// Adds a route inside a netns, like `ip -n NS route add default via GATEWAY`.
    ///
    /// ```rhai
    /// route::add("red", "default", "192.168.24.1");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), None, true)?;
        apply(&ctx, op)
    }

    /// Adds a multipath route inside a netns.
    ///
    /// ```rhai
    /// route::add("r", "default", ["10.1.0.1", "10.2.0.1"]);
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns_multi(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: rhai::Array,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), None, true)?;
        apply(&ctx, op)
    }

    /// Adds a route inside a netns, with options (`table`, `metric`, `src`, `onlink`).
    ///
    /// ```rhai
    /// route::add("r", "default", "10.2.0.1", #{table: 102});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), Some(opts), true)?;
        apply(&ctx, op)
    }

    /// Adds a multipath route inside a netns, with options.
    ///
    /// ```rhai
    /// route::add("r", "default", ["10.1.0.1", "10.2.0.1"], #{metric: 10});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns_multi_opts(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), Some(opts), true)?;
        apply(&ctx, op)
    }

    /// Deletes a route, like `ip route del DEST via GATEWAY`, with `via` and the options in
    /// the forms of `route::add`. A route this lab added is deleted exactly (its metric and table too),
    /// so an equal route someone else added survives.
    ///
    /// ```rhai
    /// route::del("10.1.0.0/16", "192.168.24.254");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), None, false)?;
        apply(&ctx, op)
    }

    /// Deletes a multipath route.
    ///
    /// ```rhai
    /// route::del("default", ["10.1.0.1", "10.2.0.1"]);
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_multi(ctx: NativeCallContext, dest: &str, via: rhai::Array) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), None, false)?;
        apply(&ctx, op)
    }

    /// Deletes a route with options (`table`, `metric`, `src`).
    ///
    /// ```rhai
    /// route::del("default", "10.2.0.1", #{table: 102});
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_opts(
        ctx: NativeCallContext,
        dest: &str,
        via: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), Some(opts), false)?;
        apply(&ctx, op)
    }

    /// Deletes a multipath route with options.
    ///
    /// ```rhai
    /// route::del("default", ["10.1.0.1", "10.2.0.1"], #{table: 100});
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_multi_opts(
        ctx: NativeCallContext,
        dest: &str,
        via: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, None, dest, via.into(), Some(opts), false)?;
        apply(&ctx, op)
    }

    /// Deletes a route inside a netns.
    ///
    /// ```rhai
    /// route::del("red", "default", "192.168.24.1");
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns(ctx: NativeCallContext, ns: &str, dest: &str, via: &str) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), None, false)?;
        apply(&ctx, op)
    }

    /// Deletes a multipath route inside a netns.
    ///
    /// ```rhai
    /// route::del("r", "default", ["10.1.0.1", "10.2.0.1"]);
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns_multi(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: rhai::Array,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), None, false)?;
        apply(&ctx, op)
    }

    /// Deletes a route inside a netns, with options.
    ///
    /// ```rhai
    /// route::del("r", "default", "10.2.0.1", #{table: 102});
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), Some(opts), false)?;
        apply(&ctx, op)
    }

    /// Deletes a multipath route inside a netns, with options.
    ///
    /// ```rhai
    /// route::del("r", "default", ["10.1.0.1", "10.2.0.1"], #{metric: 10});
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns_multi_opts(
        ctx: NativeCallContext,
        ns: &str,
        dest: &str,
        via: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let op = build(&ctx, nsname(&ctx, ns)?, dest, via.into(), Some(opts), false)?;
        apply(&ctx, op)
    }

    /// The main routing table here (IPv4 and IPv6), like `ip route`, or another one with
    /// `#{table: T}` (`"all"`: every table but local): maps `#{dest, via, dev, family, proto,
    /// scope, table, metric, type, src, nexthops}` (`nexthops`: the gateways of a multipath
    /// route, each `#{via, dev, weight}`).
    ///
    /// ```rhai
    /// for r in route::list() { print(`${r.dest} via ${r.via} metric ${r.metric}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        super::list(&ctx, None, None)
    }

    /// The main routing table inside a netns, like `ip -n NS route`.
    ///
    /// ```rhai
    /// let r = route::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        super::list(&ctx, nsname(&ctx, ns)?, None)
    }

    /// Routes of another table here: `#{table: 100}`, `#{table: "all"}` (every table but
    /// `local`), like `ip route show table T`.
    ///
    /// ```rhai
    /// let all = route::list(#{table: "all"});
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_opts(ctx: NativeCallContext, opts: rhai::Map) -> RhaiResultOf<rhai::Array> {
        super::list(&ctx, None, Some(opts))
    }

    /// Routes of another table inside a netns, like `ip -n NS route show table T`.
    ///
    /// ```rhai
    /// let t = route::list("r", #{table: 102});
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::Array> {
        super::list(&ctx, nsname(&ctx, ns)?, Some(opts))
    }
}
