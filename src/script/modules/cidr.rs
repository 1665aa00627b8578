//! CIDR arithmetic for recipes. Pure functions: nothing here touches the kernel.

use std::net::IpAddr;

use ipnet::IpNet;
use rhai::plugin::*;

use crate::net::NetError;

/// The `n`th address of `cidr`'s network, keeping the prefix length.
pub fn nth_host(net: IpNet, n: i64) -> Result<IpNet, NetError> {
    let base = net.network();
    let bits = net.max_prefix_len() - net.prefix_len();
    let size: u128 = if bits >= 128 { u128::MAX } else { 1u128 << bits };
    if n < 0 || (n as u128) >= size {
        return Err(NetError::new(format!(
            "host {n} is outside {} ({} addresses)",
            net.trunc(),
            size
        ))
        .with_errno(libc::EINVAL)
        .with_help("pick a host number from 1 to the size of the subnet minus 2"));
    }
    let ip = match base {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + n as u32).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + n as u128).into()),
    };
    Ok(IpNet::new(ip, net.prefix_len()).expect("prefix length unchanged"))
}

#[export_module]
pub mod cidr_mod {
    use super::nth_host;
    use crate::script::modules::{parse_cidr, parse_ip};
    use crate::script::{RhaiResultOf, check};

    /// The `n`th address of a subnet with its prefix length: host("192.168.24.0/24", 10) is
    /// "192.168.24.10/24".
    ///
    /// ```rhai
    /// addr::add("red", "veth-red", cidr::host("192.168.24.0/24", 10));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn host(ctx: NativeCallContext, cidr: &str, n: rhai::INT) -> RhaiResultOf<String> {
        let net = parse_cidr(&ctx, cidr)?;
        check(&ctx, nth_host(net, n)).map(|h| h.to_string())
    }

    /// The address without its prefix length: addr("192.168.24.1/24") is "192.168.24.1".
    ///
    /// ```rhai
    /// route::add("red", "default", cidr::addr(cidr::host("192.168.24.0/24", 1)));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn addr(ctx: NativeCallContext, cidr: &str) -> RhaiResultOf<String> {
        parse_cidr(&ctx, cidr).map(|n| n.addr().to_string())
    }

    /// The network of a CIDR: network("192.168.24.10/24") is "192.168.24.0/24".
    ///
    /// ```rhai
    /// nat::masquerade(cidr::network("192.168.24.1/24"));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn network(ctx: NativeCallContext, cidr: &str) -> RhaiResultOf<String> {
        parse_cidr(&ctx, cidr).map(|n| n.trunc().to_string())
    }

    /// The prefix length: prefix("192.168.24.0/24") is 24.
    ///
    /// ```rhai
    /// let bits = cidr::prefix("10.0.0.0/16");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prefix(ctx: NativeCallContext, cidr: &str) -> RhaiResultOf<rhai::INT> {
        parse_cidr(&ctx, cidr).map(|n| n.prefix_len() as rhai::INT)
    }

    /// Whether the subnet contains an address (plain, or with a prefix length).
    ///
    /// ```rhai
    /// assert(cidr::contains("192.168.24.0/24", "192.168.24.10"), "in subnet");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn contains(ctx: NativeCallContext, cidr: &str, ip: &str) -> RhaiResultOf<bool> {
        let net = parse_cidr(&ctx, cidr)?;
        let ip = match ip.split_once('/') {
            Some(_) => parse_cidr(&ctx, ip)?.addr(),
            None => parse_ip(&ctx, ip)?,
        };
        Ok(net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_the_prefix() {
        let net: IpNet = "192.168.24.0/24".parse().unwrap();
        assert_eq!(nth_host(net, 10).unwrap().to_string(), "192.168.24.10/24");
        // The base is the network, even when given a host address.
        let net: IpNet = "192.168.24.7/24".parse().unwrap();
        assert_eq!(nth_host(net, 1).unwrap().to_string(), "192.168.24.1/24");
        let net: IpNet = "10.0.0.0/16".parse().unwrap();
        assert_eq!(nth_host(net, 300).unwrap().to_string(), "10.0.1.44/16");
        let net: IpNet = "fd00::/64".parse().unwrap();
        assert_eq!(nth_host(net, 16).unwrap().to_string(), "fd00::10/64");
    }

    #[test]
    fn hosts_outside_the_subnet_are_errors() {
        let net: IpNet = "192.168.24.0/30".parse().unwrap();
        assert!(nth_host(net, 4).is_err());
        assert!(nth_host(net, -1).is_err());
        assert!(nth_host(net, 3).is_ok());
    }
}
