//! Names and keys from recipes, checked before they reach the kernel.

use crate::net::error::{NetError, NetResult};

/// An IPv6 link-local address (fe80::/10): the same on every link, so meaningless without one.
pub(crate) fn is_link_local(a: std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V6(v) if v.is_unicast_link_local())
}

/// Interface names: at most 15 bytes (IFNAMSIZ - 1), no `/`, no white space, not `.`/`..`.
pub(crate) fn check_ifname(name: &str) -> NetResult<()> {
    let bad = |why: &str| {
        Err(NetError::new(format!("invalid interface name {name:?}: {why}"))
            .with_errno(libc::EINVAL))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 15 {
        return Err(NetError::new(format!(
            "invalid interface name {name:?}: it is {} bytes long, the kernel allows at most 15",
            name.len()
        ))
        .with_errno(libc::EINVAL)
        .with_help("shorten it, e.g. use a short prefix like `v-` instead of `veth-`"));
    }
    if name == "all" || name == "default" {
        // The kernel refuses them (EINVAL): they would clash with net.*.conf.all/default.
        return bad("`all` and `default` are the names of the sysctl sets every link inherits");
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        // A NUL would end the name early in the kernel (which then acts on another link
        // than the journal records), and the rest are the kernel's own dev_valid_name rules.
        return bad("names may not contain `/`, `:`, white space or control characters");
    }
    Ok(())
}

/// Netns names become file names under /run/netns.
pub(crate) fn check_netns_name(name: &str) -> NetResult<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(NetError::new(format!("invalid netns name {name:?}"))
            .with_errno(libc::EINVAL)
            .with_help("use letters, digits, `-`, `_` and `.` (at most 64 characters)"));
    }
    Ok(())
}

/// The key's path under /proc/sys. As with sysctl(8), a `/` inside a dotted key stands for a
/// `.` in that component: `net.ipv4.conf.br/10.forwarding` is the file
/// `net/ipv4/conf/br.10/forwarding` (a link named `br.10`).
pub(crate) fn sysctl_path(key: &str) -> String {
    let parts: Vec<String> = key.split('.').map(|p| p.replace('/', ".")).collect();
    format!("/proc/sys/{}", parts.join("/"))
}

/// A link name as one component of a dotted sysctl key (see [`sysctl_path`]).
pub(crate) fn sysctl_component(dev: &str) -> String {
    dev.replace('.', "/")
}

/// `net.*` sysctl keys only, as dotted names; also guards the /proc/sys path built from it.
pub(crate) fn check_sysctl_key(key: &str) -> NetResult<()> {
    let ok = key.starts_with("net.")
        && key.split('.').map(|p| p.replace('/', ".")).all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
        });
    if !ok {
        return Err(NetError::new(format!("invalid sysctl key {key:?}"))
            .with_errno(libc::EINVAL)
            .with_help(
                "only per-network-namespace keys are allowed, e.g. \"net.ipv4.ip_forward\"",
            ));
    }
    Ok(())
}

/// A MAC address for `link::set`: six hex octets separated by `:`, unicast (the kernel
/// refuses a multicast address with EADDRNOTAVAIL). Returns its bytes.
pub(crate) fn parse_mac(mac: &str) -> NetResult<Vec<u8>> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|o| if o.len() == 2 { u8::from_str_radix(o, 16).ok() } else { None })
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() == 6)
        .ok_or_else(|| {
            NetError::new(format!("invalid MAC address {mac:?}"))
                .with_errno(libc::EINVAL)
                .with_help("write six hex octets separated by colons, e.g. \"02:00:00:00:00:01\"")
        })?;
    if bytes[0] & 1 == 1 {
        return Err(NetError::new(format!("{mac} is a multicast address: a link's own address must be unicast"))
            .with_errno(libc::EADDRNOTAVAIL)
            .with_help("clear the lowest bit of the first octet; 02:… is a locally administered unicast address"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_ifname("veth-red-br").is_ok());
        let e = check_ifname("veth-very-long-name").unwrap_err();
        assert_eq!(
            e.message,
            "invalid interface name \"veth-very-long-name\": it is 19 bytes long, the kernel allows at most 15"
        );
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("uplink\0").is_err(), "the kernel would read `uplink`");
        assert!(check_ifname("br\u{7}").is_err());
        assert!(check_netns_name("red").is_ok());
        assert!(check_netns_name("../etc").is_err());
        assert!(check_sysctl_key("net.ipv4.ip_forward").is_ok());
        assert!(check_sysctl_key("kernel.panic").is_err());
        assert!(check_sysctl_key("net.ipv4/../../x").is_err());
        assert!(check_sysctl_key("net.ipv4.conf.//.x").is_err(), "`//` would be `..`");
        assert!(check_sysctl_key("net.ipv4.conf.br/10.forwarding").is_ok());
        assert_eq!(
            sysctl_path("net.ipv4.conf.br/10.forwarding"),
            "/proc/sys/net/ipv4/conf/br.10/forwarding"
        );
        assert_eq!(sysctl_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("2:0:0:0:0:1").is_err());
        assert_eq!(parse_mac("01:00:5e:00:00:01").unwrap_err().errno, Some(libc::EADDRNOTAVAIL));
    }
}
