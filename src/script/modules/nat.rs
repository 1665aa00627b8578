use rhai::plugin::*;

use ipnet::IpNet;

use crate::net::{Op, fw};
use crate::script::modules::{check_opts, parse_cidr, parse_ip, parse_target, port};
use crate::script::{RhaiResultOf, apply, backend, check, fail, invalid};

pub fn opt_str(
    ctx: &NativeCallContext,
    opts: &rhai::Map,
    key: &str,
) -> RhaiResultOf<Option<String>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => match v.clone().into_string() {
            Ok(s) => Ok(Some(s)),
            Err(t) => Err(fail(
                ctx,
                invalid(
                    format!("option `{key}` must be a string, not {t}"),
                    "e.g. #{proto: \"udp\"}",
                ),
            )),
        },
    }
}

/// An optional CIDR option (`exclude`).
fn opt_net(ctx: &NativeCallContext, opts: &rhai::Map, key: &str) -> RhaiResultOf<Option<IpNet>> {
    opt_str(ctx, opts, key)?.map(|s| parse_cidr(ctx, &s)).transpose()
}

/// MASQUERADE (`to: None`) or SNAT of `source` in POSTROUTING.
pub fn source_nat(
    ctx: &NativeCallContext,
    ns: Option<String>,
    source: &str,
    to: Option<&str>,
    opts: rhai::Map,
) -> RhaiResultOf<()> {
    check_opts(ctx, &opts, &["out", "exclude"])?;
    let net = parse_cidr(ctx, source)?.trunc();
    if net.addr().is_ipv6() {
        // `iptables` is IPv4 only: it would refuse the rule with a bare exit code.
        return Err(fail(
            ctx,
            invalid(
                format!("masquerading IPv6 subnets ({net}) is not supported"),
                "masquerade an IPv4 subnet; IPv6 labs route their addresses without NAT",
            ),
        ));
    }
    let to = to.map(|a| parse_ip(ctx, a)).transpose()?;
    let exclude = opt_net(ctx, &opts, "exclude")?;
    let out = opt_str(ctx, &opts, "out")?;
    let lab = backend(ctx)?.lab().to_string();
    let rule = check(ctx, fw::snat_rule(net, exclude, out.as_deref(), to, &lab))?;
    apply(ctx, Op::IptAppend { ns, table: "nat".into(), chain: "POSTROUTING".into(), rule })
}

pub fn forward(
    ctx: &NativeCallContext,
    ns: Option<String>,
    p: rhai::INT,
    target: &str,
    opts: rhai::Map,
) -> RhaiResultOf<()> {
    check_opts(ctx, &opts, &["proto", "iface"])?;
    let p = port(ctx, p)?;
    let t = dnat_target(ctx, target)?;
    let proto = opt_str(ctx, &opts, "proto")?.unwrap_or_else(|| "tcp".into());
    if proto != "tcp" && proto != "udp" {
        return Err(fail(
            ctx,
            invalid(format!("unknown protocol {proto:?}"), "use \"tcp\" or \"udp\""),
        ));
    }
    let iface = opt_str(ctx, &opts, "iface")?;
    let lab = backend(ctx)?.lab().to_string();
    let rules = check(ctx, fw::port_forward_rules(&proto, p, iface.as_deref(), t, &lab))?;
    for (chain, rule) in rules {
        apply(
            ctx,
            Op::IptAppend { ns: ns.clone(), table: "nat".into(), chain: chain.into(), rule },
        )?;
    }
    Ok(())
}

/// `"ip:port"` for a DNAT: IPv4, port not 0.
fn dnat_target(ctx: &NativeCallContext, target: &str) -> RhaiResultOf<std::net::SocketAddr> {
    let t = parse_target(ctx, target)?;
    if t.port() == 0 {
        return Err(fail(
            ctx,
            invalid(format!("target {target:?} has port 0"), "ports go from 1 to 65535"),
        ));
    }
    if t.is_ipv6() {
        return Err(fail(
            ctx,
            invalid(
                "port forwards to IPv6 targets are not supported",
                "forward to an IPv4 address",
            ),
        ));
    }
    Ok(t)
}

pub fn dnat(
    ctx: &NativeCallContext,
    ns: Option<String>,
    pattern: rhai::Map,
    target: &str,
) -> RhaiResultOf<()> {
    let m = crate::script::modules::fw::parse_match(
        ctx,
        &pattern,
        &["src", "dst", "proto", "dport", "sport", "iif", "state"],
    )?;
    let t = dnat_target(ctx, target)?;
    let lab = backend(ctx)?.lab().to_string();
    let rule = check(ctx, fw::dnat_rule(&m, t, &lab))?;
    apply(ctx, Op::IptAppend { ns, table: "nat".into(), chain: "PREROUTING".into(), rule })
}

#[export_module]
pub mod nat_mod {

    use super::{dnat as dnat_rule, forward, source_nat};
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, query};

    /// Masquerades traffic from `source_cidr` leaving the subnet (egress NAT), like
    /// `iptables -t nat -A POSTROUTING -s SUBNET ! -d SUBNET -j MASQUERADE`. Traffic between
    /// hosts of the subnet keeps its own source address. IPv4 subnets only (iptables).
    ///
    /// ```rhai
    /// nat::masquerade("192.168.24.0/24");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn masquerade(ctx: NativeCallContext, source_cidr: &str) -> RhaiResultOf<()> {
        source_nat(&ctx, None, source_cidr, None, rhai::Map::new())
    }

    /// Masquerade with options. `#{out: "uplink"}` limits it to one outgoing interface;
    /// `#{exclude: "10.200.0.0/16"}` leaves traffic to that range alone (default: the subnet
    /// itself), such as pod-to-pod traffic between the nodes of a cluster.
    ///
    /// ```rhai
    /// nat::masquerade("192.168.24.0/24", #{out: "uplink"});
    /// nat::masquerade("10.200.1.0/24", #{exclude: "10.200.0.0/16"});
    /// ```
    #[rhai_fn(name = "masquerade", return_raw)]
    pub fn masquerade_opts(
        ctx: NativeCallContext,
        source_cidr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        source_nat(&ctx, None, source_cidr, None, opts)
    }

    /// Masquerade inside a netns (a router netns doing NAT).
    ///
    /// ```rhai
    /// nat::masquerade("router", "10.0.0.0/24");
    /// ```
    #[rhai_fn(name = "masquerade", return_raw)]
    pub fn masquerade_ns(ctx: NativeCallContext, ns: &str, source_cidr: &str) -> RhaiResultOf<()> {
        source_nat(&ctx, nsname(&ctx, ns)?, source_cidr, None, rhai::Map::new())
    }

    /// Masquerade inside a netns, with options (`out`, `exclude`).
    ///
    /// ```rhai
    /// nat::masquerade("node1", "10.200.1.0/24", #{exclude: "10.200.0.0/16"});
    /// ```
    #[rhai_fn(name = "masquerade", return_raw)]
    pub fn masquerade_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        source_cidr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        source_nat(&ctx, nsname(&ctx, ns)?, source_cidr, None, opts)
    }

    /// Source NAT to a fixed address: traffic from `source_cidr` leaving the subnet gets
    /// source address `to_addr`, like `iptables -t nat -A POSTROUTING -s SUBNET ! -d SUBNET
    /// -j SNAT --to-source ADDR`. Options as for `masquerade` (`out`, `exclude`).
    ///
    /// ```rhai
    /// nat::snat("192.168.24.0/24", "203.0.113.2");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn snat(ctx: NativeCallContext, source_cidr: &str, to_addr: &str) -> RhaiResultOf<()> {
        source_nat(&ctx, None, source_cidr, Some(to_addr), rhai::Map::new())
    }

    /// Source NAT with options.
    ///
    /// ```rhai
    /// nat::snat("192.168.24.0/24", "203.0.113.2", #{out: "uplink"});
    /// ```
    #[rhai_fn(name = "snat", return_raw)]
    pub fn snat_opts(
        ctx: NativeCallContext,
        source_cidr: &str,
        to_addr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        source_nat(&ctx, None, source_cidr, Some(to_addr), opts)
    }

    /// Source NAT inside a netns.
    ///
    /// ```rhai
    /// nat::snat("router", "10.0.0.0/24", "198.51.100.1");
    /// ```
    #[rhai_fn(name = "snat", return_raw)]
    pub fn snat_ns(
        ctx: NativeCallContext,
        ns: &str,
        source_cidr: &str,
        to_addr: &str,
    ) -> RhaiResultOf<()> {
        source_nat(&ctx, nsname(&ctx, ns)?, source_cidr, Some(to_addr), rhai::Map::new())
    }

    /// Source NAT inside a netns, with options.
    ///
    /// ```rhai
    /// nat::snat("router", "10.0.0.0/24", "198.51.100.1", #{out: "wan"});
    /// ```
    #[rhai_fn(name = "snat", return_raw)]
    pub fn snat_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        source_cidr: &str,
        to_addr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        source_nat(&ctx, nsname(&ctx, ns)?, source_cidr, Some(to_addr), opts)
    }

    /// Destination NAT of what `match` matches (as `fw::allow` matches, without `oif`) to
    /// `"ip:port"`, like `iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT
    /// --to-destination IP:PORT`. For packets arriving from elsewhere; `nat::port_forward`
    /// is the short form that also answers the host itself.
    ///
    /// ```rhai
    /// nat::dnat(#{iif: "uplink", proto: "tcp", dport: 8443}, "192.168.24.10:443");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn dnat(ctx: NativeCallContext, pattern: rhai::Map, target: &str) -> RhaiResultOf<()> {
        dnat_rule(&ctx, None, pattern, target)
    }

    /// Destination NAT inside a netns.
    ///
    /// ```rhai
    /// nat::dnat("router", #{proto: "udp", dport: 53}, "10.0.0.53:53");
    /// ```
    #[rhai_fn(name = "dnat", return_raw)]
    pub fn dnat_ns(
        ctx: NativeCallContext,
        ns: &str,
        pattern: rhai::Map,
        target: &str,
    ) -> RhaiResultOf<()> {
        dnat_rule(&ctx, nsname(&ctx, ns)?, pattern, target)
    }

    /// Forwards TCP port `port` of this host to `"ip:port"` (DNAT), like
    /// `iptables -t nat -A PREROUTING -p tcp --dport PORT -j DNAT --to-destination IP:PORT`,
    /// for connections addressed to the host itself; a second rule in `OUTPUT` (as Docker
    /// adds) answers clients on the host too, so `curl HOST_IP:PORT` works from here
    /// (not `127.0.0.1:PORT`: loopback is left alone, as Docker does without its proxy).
    ///
    /// ```rhai
    /// nat::port_forward(8080, "192.168.24.10:80");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn port_forward(ctx: NativeCallContext, port: rhai::INT, target: &str) -> RhaiResultOf<()> {
        forward(&ctx, None, port, target, rhai::Map::new())
    }

    /// Port forward with options: `#{proto: "udp"}`, `#{iface: "uplink"}` (only traffic arriving
    /// on that interface; then there is no `OUTPUT` rule: the host's own connections arrive on
    /// no interface).
    ///
    /// ```rhai
    /// nat::port_forward(5353, "192.168.24.10:53", #{proto: "udp"});
    /// ```
    #[rhai_fn(name = "port_forward", return_raw)]
    pub fn port_forward_opts(
        ctx: NativeCallContext,
        port: rhai::INT,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        forward(&ctx, None, port, target, opts)
    }

    /// Port forward inside a netns.
    ///
    /// ```rhai
    /// nat::port_forward("router", 8080, "10.0.0.10:80");
    /// ```
    #[rhai_fn(name = "port_forward", return_raw)]
    pub fn port_forward_ns(
        ctx: NativeCallContext,
        ns: &str,
        port: rhai::INT,
        target: &str,
    ) -> RhaiResultOf<()> {
        forward(&ctx, nsname(&ctx, ns)?, port, target, rhai::Map::new())
    }

    /// Port forward inside a netns, with options.
    ///
    /// ```rhai
    /// nat::port_forward("router", 8080, "10.0.0.10:80", #{proto: "tcp"});
    /// ```
    #[rhai_fn(name = "port_forward", return_raw)]
    pub fn port_forward_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        port: rhai::INT,
        target: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        forward(&ctx, nsname(&ctx, ns)?, port, target, opts)
    }

    /// The nat table's rules here, as `iptables -t nat -S` prints them.
    ///
    /// ```rhai
    /// for r in nat::list() { print(r); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.nat_list(None)).map(|v| v.into_iter().map(Dynamic::from).collect())
    }

    /// The nat table's rules inside a netns.
    ///
    /// ```rhai
    /// let rules = nat::list("router");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.nat_list(ns.as_deref()))
            .map(|v| v.into_iter().map(Dynamic::from).collect())
    }
}
