//! One file per script module; each is a documented `#[export_module]`.

pub mod addr;
pub mod bridge;
pub mod capture;
pub mod cidr;
pub mod fw;
pub mod host;
pub mod link;
pub mod link_opts;
pub mod nat;
pub mod neigh;
pub mod netns;
pub mod probe;
pub mod route;
pub mod route_args;
pub mod rule;
pub mod sandbox;
pub mod sysctl;
pub mod tc;
pub mod veth;
pub mod wireguard;

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use rhai::{Engine, NativeCallContext, exported_module};

use super::{RhaiResultOf, check, invalid};
use crate::net::op;

/// Every script module, by the name scripts use.
pub fn all() -> Vec<(&'static str, rhai::Module)> {
    vec![
        ("netns", exported_module!(netns::netns_mod)),
        ("bridge", exported_module!(bridge::bridge_mod)),
        ("veth", exported_module!(veth::veth_mod)),
        ("link", exported_module!(link::link_mod)),
        ("addr", exported_module!(addr::addr_mod)),
        ("route", exported_module!(route::route_mod)),
        ("rule", exported_module!(rule::rule_mod)),
        ("sysctl", exported_module!(sysctl::sysctl_mod)),
        ("nat", exported_module!(nat::nat_mod)),
        ("fw", exported_module!(fw::fw_mod)),
        ("tc", exported_module!(tc::tc_mod)),
        ("neigh", exported_module!(neigh::neigh_mod)),
        ("host", exported_module!(host::host_mod)),
        ("probe", exported_module!(probe::probe_mod)),
        ("capture", exported_module!(capture::capture_mod)),
        ("sandbox", exported_module!(sandbox::sandbox_mod)),
        ("cidr", exported_module!(cidr::cidr_mod)),
        ("wireguard", exported_module!(wireguard::wireguard_mod)),
    ]
}

pub fn register(engine: &mut Engine) {
    for (name, m) in all() {
        engine.register_static_module(name, m.into());
    }
    capture::register_type(engine);
}

pub fn ifname(ctx: &NativeCallContext, name: &str) -> RhaiResultOf<String> {
    check(ctx, op::check_ifname(name)).map(|_| name.to_string())
}

pub fn nsname(ctx: &NativeCallContext, name: &str) -> RhaiResultOf<Option<String>> {
    check(ctx, op::check_netns_name(name)).map(|_| Some(name.to_string()))
}

pub fn parse_cidr(ctx: &NativeCallContext, s: &str) -> RhaiResultOf<IpNet> {
    check(
        ctx,
        s.trim().parse::<IpNet>().map_err(|_| {
            let help = if s.parse::<IpAddr>().is_ok() {
                format!("add a prefix length, e.g. \"{s}/24\"")
            } else {
                "write an address with a prefix length, e.g. \"192.168.24.10/24\" or \"fd00::10/64\"".into()
            };
            invalid(format!("invalid CIDR {s:?}"), help)
        }),
    )
}

pub fn parse_ip(ctx: &NativeCallContext, s: &str) -> RhaiResultOf<IpAddr> {
    check(
        ctx,
        s.trim().parse::<IpAddr>().map_err(|_| {
            let help = match s.split_once('/') {
                Some((ip, _)) if ip.parse::<IpAddr>().is_ok() => {
                    format!("drop the prefix length: \"{ip}\" (cidr::addr does that)")
                }
                _ => "write a plain address, e.g. \"192.168.24.1\"".into(),
            };
            invalid(format!("invalid IP address {s:?}"), help)
        }),
    )
}

pub fn parse_target(ctx: &NativeCallContext, s: &str) -> RhaiResultOf<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let e = if let Ok(IpAddr::V6(_)) = s.parse::<IpAddr>() {
        // "fd00::2:80" is a valid address, so the port was most likely meant as its last
        // group: IPv6 needs the address in brackets before a port.
        let help = match s.rsplit_once(':') {
            Some((addr, p))
                if addr.parse::<std::net::Ipv6Addr>().is_ok()
                    && !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_digit()) =>
            {
                format!("an IPv6 address goes in brackets before its port: \"[{addr}]:{p}\"")
            }
            _ => format!("an IPv6 address goes in brackets before its port: \"[{s}]:80\""),
        };
        invalid(format!("target {s:?} has no port"), help)
    } else if s.parse::<IpAddr>().is_ok() {
        invalid(
            format!("target {s:?} has no port"),
            format!("write it as \"{s}:80\" (IPv6: \"[addr]:80\")"),
        )
    } else {
        invalid(
            format!("invalid target {s:?}"),
            "write it as \"IP:PORT\", e.g. \"192.168.24.10:80\"",
        )
    };
    Err(super::fail(ctx, e))
}

pub fn port(ctx: &NativeCallContext, p: rhai::INT) -> RhaiResultOf<u16> {
    check(
        ctx,
        u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!("port {p} is out of range"), "ports go from 1 to 65535")
        }),
    )
}

/// Refuses option-map keys a function does not know (a typo would otherwise be ignored).
pub fn check_opts(ctx: &NativeCallContext, opts: &rhai::Map, known: &[&str]) -> RhaiResultOf<()> {
    for k in opts.keys() {
        if !known.contains(&k.as_str()) {
            return Err(super::fail(
                ctx,
                invalid(
                    format!("unknown option `{k}`"),
                    format!("known options: {}", known.join(", ")),
                ),
            ));
        }
    }
    Ok(())
}
