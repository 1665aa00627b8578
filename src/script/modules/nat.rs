use rhai::plugin::*;

use crate::net::Op;
use crate::script::modules::{check_opts, ifname, parse_cidr, parse_target, port};
use crate::script::{RhaiResultOf, apply, backend, fail, invalid};

pub fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|s| s.to_string()).collect()
}

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

pub fn masq(
    ctx: &NativeCallContext,
    ns: Option<String>,
    source: &str,
    opts: rhai::Map,
) -> RhaiResultOf<()> {
    check_opts(ctx, &opts, &["out"])?;
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
    let net = net.to_string();
    // `! -d SUBNET`: bridged packets traverse iptables on this kernel (br_netfilter), so a
    // bare `-s SUBNET -j MASQUERADE` would make green see red's packets come from the
    // gateway. Traffic that stays inside the subnet keeps its source address.
    let mut rule = words(&["-s", &net, "!", "-d", &net]);
    if let Some(out) = opt_str(ctx, &opts, "out")? {
        rule.extend(words(&["-o", &ifname(ctx, &out)?]));
    }
    let comment = format!("nslab:{}", backend(ctx)?.lab());
    rule.extend(words(&["-m", "comment", "--comment", &comment, "-j", "MASQUERADE"]));
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
    let proto = opt_str(ctx, &opts, "proto")?.unwrap_or_else(|| "tcp".into());
    if proto != "tcp" && proto != "udp" {
        return Err(fail(
            ctx,
            invalid(format!("unknown protocol {proto:?}"), "use \"tcp\" or \"udp\""),
        ));
    }
    let mut rule = words(&["-p", &proto]);
    match opt_str(ctx, &opts, "iface")? {
        Some(i) => rule.extend(words(&["-i", &ifname(ctx, &i)?])),
        // Only connections addressed to this host itself: without it the rule would also
        // rewrite bridged traffic between two lab hosts that happens to use this port.
        None => rule.extend(words(&["-m", "addrtype", "--dst-type", "LOCAL"])),
    }
    let comment = format!("nslab:{}", backend(ctx)?.lab());
    rule.extend(words(&["--dport", &p.to_string(), "-m", "comment", "--comment", &comment]));
    rule.extend(words(&["-j", "DNAT", "--to-destination", &t.to_string()]));
    apply(ctx, Op::IptAppend { ns, table: "nat".into(), chain: "PREROUTING".into(), rule })
}

#[export_module]
pub mod nat_mod {

    use super::{forward, masq};
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
        masq(&ctx, None, source_cidr, rhai::Map::new())
    }

    /// Masquerade with options: `#{out: "uplink"}` limits it to one outgoing interface.
    ///
    /// ```rhai
    /// nat::masquerade("192.168.24.0/24", #{out: "uplink"});
    /// ```
    #[rhai_fn(name = "masquerade", return_raw)]
    pub fn masquerade_opts(
        ctx: NativeCallContext,
        source_cidr: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        masq(&ctx, None, source_cidr, opts)
    }

    /// Masquerade inside a netns (a router netns doing NAT).
    ///
    /// ```rhai
    /// nat::masquerade("router", "10.0.0.0/24");
    /// ```
    #[rhai_fn(name = "masquerade", return_raw)]
    pub fn masquerade_ns(ctx: NativeCallContext, ns: &str, source_cidr: &str) -> RhaiResultOf<()> {
        masq(&ctx, nsname(&ctx, ns)?, source_cidr, rhai::Map::new())
    }

    /// Forwards TCP port `port` of this host to `"ip:port"` (DNAT), like
    /// `iptables -t nat -A PREROUTING -p tcp --dport PORT -j DNAT --to-destination IP:PORT`,
    /// for connections addressed to the host itself.
    ///
    /// ```rhai
    /// nat::port_forward(8080, "192.168.24.10:80");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn port_forward(ctx: NativeCallContext, port: rhai::INT, target: &str) -> RhaiResultOf<()> {
        forward(&ctx, None, port, target, rhai::Map::new())
    }

    /// Port forward with options: `#{proto: "udp"}`, `#{iface: "uplink"}` (only traffic arriving
    /// on that interface).
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
