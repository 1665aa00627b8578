//! The option maps of `link::add` and `wireguard::set`, turned into the kernel layer's
//! plain data. Pure: every refusal is a [`NetError`] the caller reports at the recipe line,
//! before anything is journaled.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use rhai::{Dynamic, Map};

use crate::net::NetResult;
use crate::net::link_kind::{KINDS, LinkKind, VXLAN_PORT};
use crate::net::wireguard::{Secret, WgPeer, parse_key};
use crate::script::invalid;

/// Refuses keys of `opts` that `known` does not list; `what` names the map ("vxlan").
pub fn only(what: &str, opts: &Map, known: &[&str]) -> NetResult<()> {
    for k in opts.keys() {
        if !known.contains(&k.as_str()) {
            let help = if known.is_empty() {
                format!("{what} takes no options")
            } else {
                let mut h = format!("known options of {what}: {}", known.join(", "));
                if let Some(c) = crate::net::error::closest(k, known.iter().copied()) {
                    h = format!("did you mean {c}? {h}");
                }
                h
            };
            return Err(invalid(format!("unknown option `{k}` for {what}"), help));
        }
    }
    Ok(())
}

fn present<'a>(opts: &'a Map, key: &str) -> Option<&'a Dynamic> {
    opts.get(key).filter(|v| !v.is_unit())
}

pub fn opt_string(opts: &Map, key: &str, example: &str) -> NetResult<Option<String>> {
    match present(opts, key) {
        None => Ok(None),
        Some(v) => v.clone().into_string().map(Some).map_err(|t| {
            invalid(format!("option `{key}` must be a string, not {t}"), format!("e.g. {example}"))
        }),
    }
}

pub fn opt_int(opts: &Map, key: &str, example: &str) -> NetResult<Option<i64>> {
    match present(opts, key) {
        None => Ok(None),
        Some(v) => v.as_int().map(Some).map_err(|t| {
            invalid(
                format!("option `{key}` must be an integer, not {t}"),
                format!("e.g. {example}"),
            )
        }),
    }
}

pub fn opt_bool(opts: &Map, key: &str) -> NetResult<Option<bool>> {
    match present(opts, key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).map_err(|t| {
            invalid(
                format!("option `{key}` must be true or false, not {t}"),
                format!("e.g. #{{{key}: true}}"),
            )
        }),
    }
}

fn opt_ip(opts: &Map, key: &str) -> NetResult<Option<IpAddr>> {
    let Some(s) = opt_string(opts, key, &format!("#{{{key}: \"10.0.0.2\"}}"))? else {
        return Ok(None);
    };
    s.trim().parse().map(Some).map_err(|_| {
        invalid(
            format!("option `{key}`: invalid IP address {s:?}"),
            "write a plain address, e.g. \"10.0.0.2\"",
        )
    })
}

fn required<T>(v: Option<T>, kind: &str, key: &str, example: &str) -> NetResult<T> {
    v.ok_or_else(|| {
        invalid(
            format!("a {kind} needs `{key}`"),
            format!("e.g. link::add(\"x\", \"{kind}\", {example})"),
        )
    })
}

/// `link::add`'s kind and options as a [`LinkKind`], checked.
pub fn link_kind(kind: &str, opts: &Map) -> NetResult<LinkKind> {
    let parent = |ex: &str| -> NetResult<String> {
        let p = opt_string(opts, "parent", "#{parent: \"eth0\"}")?;
        required(p, kind, "parent", ex)
    };
    let k = match kind {
        "dummy" | "ifb" | "tap" | "wireguard" => {
            only(kind, opts, &[])?;
            match kind {
                "dummy" => LinkKind::Dummy,
                "ifb" => LinkKind::Ifb,
                "tap" => LinkKind::Tap,
                _ => LinkKind::Wireguard,
            }
        }
        "vxlan" => {
            only(kind, opts, &["id", "remote", "group", "local", "dev", "port"])?;
            let ex = "#{id: 42, remote: \"10.0.0.2\"}";
            let id = required(opt_int(opts, "id", ex)?, kind, "id", ex)?;
            let id = u32::try_from(id).map_err(|_| {
                invalid(
                    format!("VXLAN id {id} is out of range"),
                    "a VXLAN network identifier (VNI) goes from 0 to 16777215",
                )
            })?;
            let port = match opt_int(opts, "port", "#{port: 4789}")? {
                None => VXLAN_PORT,
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                    invalid(format!("port {p} is out of range"), "ports go from 1 to 65535")
                })?,
            };
            let dev = opt_string(opts, "dev", "#{dev: \"eth0\"}")?;
            LinkKind::Vxlan {
                id,
                remote: opt_ip(opts, "remote")?,
                group: opt_ip(opts, "group")?,
                local: opt_ip(opts, "local")?,
                dev,
                port,
            }
        }
        "macvlan" | "ipvlan" => {
            only(kind, opts, &["parent", "mode"])?;
            let parent = parent("#{parent: \"eth0\", mode: \"bridge\"}")?;
            let default = if kind == "macvlan" { "bridge" } else { "l2" };
            let mode = opt_string(opts, "mode", &format!("#{{mode: \"{default}\"}}"))?
                .unwrap_or_else(|| default.into());
            if kind == "macvlan" {
                LinkKind::Macvlan { parent, mode }
            } else {
                LinkKind::Ipvlan { parent, mode }
            }
        }
        "vlan" => {
            only(kind, opts, &["parent", "id"])?;
            let ex = "#{parent: \"eth0\", id: 10}";
            let parent = parent(ex)?;
            let id = required(opt_int(opts, "id", ex)?, kind, "id", ex)?;
            let id = u16::try_from(id).map_err(|_| {
                invalid(
                    format!("VLAN id {id} is out of range"),
                    "a VLAN id goes from 1 to 4094 (12 bits; 0 and 4095 are reserved)",
                )
            })?;
            LinkKind::Vlan { parent, id }
        }
        "bond" => {
            only(kind, opts, &["mode"])?;
            let mode = opt_string(opts, "mode", "#{mode: \"active-backup\"}")?
                .unwrap_or_else(|| "balance-rr".into());
            LinkKind::Bond { mode }
        }
        "bridge" => {
            return Err(invalid(
                "bridges are made with bridge::add".to_string(),
                "bridge::add(\"br0\") (and bridge::set for vlan_filtering or stp)",
            ));
        }
        "veth" => {
            return Err(invalid(
                "veth pairs are made with veth::add".to_string(),
                "veth::add(\"a\", \"b\"), or veth::add(\"ns_a\", \"a\", \"ns_b\", \"b\")",
            ));
        }
        other => {
            let mut help = format!("known kinds: {}", KINDS.join(", "));
            if let Some(c) = crate::net::error::closest(other, KINDS.iter().copied()) {
                help = format!("did you mean {c}? {help}");
            }
            return Err(invalid(format!("unknown link kind {other:?}"), help));
        }
    };
    k.check()?;
    Ok(k)
}

/// What `wireguard::set` was given.
#[derive(Debug, PartialEq)]
pub struct WgSet {
    pub private_key: Option<Secret>,
    pub listen_port: Option<u16>,
    pub peers: Option<Vec<WgPeer>>,
}

/// `wireguard::set`'s options, checked: keys must be base64 for 32 bytes, endpoints
/// `ip:port`, allowed IPs prefixes.
pub fn wg_set(opts: &Map) -> NetResult<WgSet> {
    only("wireguard::set", opts, &["private_key", "listen_port", "peers"])?;
    let private_key = opt_string(opts, "private_key", "#{private_key: keys.private_key}")?
        .map(|k| parse_key("private_key", &k).map(Secret::new))
        .transpose()?;
    let listen_port = opt_int(opts, "listen_port", "#{listen_port: 51820}")?
        .map(|p| {
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                invalid(format!("listen_port {p} is out of range"), "ports go from 1 to 65535")
            })
        })
        .transpose()?;
    let peers = match present(opts, "peers") {
        None => None,
        Some(v) => {
            let arr = v.clone().into_array().map_err(|t| {
                invalid(
                    format!("option `peers` must be an array of maps, not {t}"),
                    "e.g. peers: [#{public_key: k, allowed_ips: [\"10.9.0.2/32\"]}]",
                )
            })?;
            Some(arr.iter().map(wg_peer).collect::<NetResult<Vec<_>>>()?)
        }
    };
    Ok(WgSet { private_key, listen_port, peers })
}

fn wg_peer(v: &Dynamic) -> NetResult<WgPeer> {
    let ex = "#{public_key: k, endpoint: \"10.0.0.2:51820\", allowed_ips: [\"10.9.0.2/32\"]}";
    let Some(m) = v.clone().try_cast::<Map>() else {
        return Err(invalid(
            format!("a peer must be a map, not {}", v.type_name()),
            format!("e.g. {ex}"),
        ));
    };
    only("a wireguard peer", &m, &["public_key", "endpoint", "allowed_ips"])?;
    let key = opt_string(&m, "public_key", ex)?
        .ok_or_else(|| invalid("a wireguard peer needs `public_key`", format!("e.g. {ex}")))?;
    parse_key("public_key", &key)?;
    let endpoint = opt_string(&m, "endpoint", ex)?
        .map(|e| {
            e.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    format!("endpoint {e:?} is not IP:PORT"),
                    "e.g. \"10.0.0.2:51820\" (IPv6: \"[fd00::2]:51820\")",
                )
            })
        })
        .transpose()?;
    let allowed_ips = match present(&m, "allowed_ips") {
        None => Vec::new(),
        Some(a) => {
            // One prefix as a string, or an array of them.
            let items = match a.clone().into_array() {
                Ok(arr) => arr,
                Err(_) => vec![a.clone()],
            };
            items
                .iter()
                .map(|x| {
                    let s = x.clone().into_string().map_err(|t| {
                        invalid(
                            format!("allowed_ips must hold strings, not {t}"),
                            "e.g. [\"10.9.0.0/24\"]",
                        )
                    })?;
                    s.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
                        invalid(
                            format!("allowed_ips: invalid prefix {s:?}"),
                            "e.g. \"10.9.0.2/32\" or \"0.0.0.0/0\"",
                        )
                    })
                })
                .collect::<NetResult<Vec<_>>>()?
        }
    };
    Ok(WgPeer { public_key: key.trim().to_string(), endpoint, allowed_ips })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn vxlan_gets_the_iana_port_and_needs_an_id() {
        let k =
            link_kind("vxlan", &map(&[("id", 42.into()), ("remote", "10.0.0.2".into())])).unwrap();
        let LinkKind::Vxlan { port, id, .. } = k else { panic!() };
        assert_eq!((id, port), (42, 4789));
        let e = link_kind("vxlan", &map(&[("remote", "10.0.0.2".into())])).unwrap_err();
        assert_eq!(e.message, "a vxlan needs `id`");
        let e = link_kind("vxlan", &map(&[("id", (-1).into())])).unwrap_err();
        assert_eq!(e.message, "VXLAN id -1 is out of range");
    }

    #[test]
    fn unknown_kinds_and_options_name_the_known_ones() {
        let e = link_kind("vlna", &Map::new()).unwrap_err();
        assert_eq!(e.message, "unknown link kind \"vlna\"");
        assert!(e.help.unwrap().contains("known kinds: vxlan, macvlan"));
        let e = link_kind("dummy", &map(&[("mode", "x".into())])).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("dummy takes no options"));
        let e = link_kind("macvlan", &map(&[("parnet", "eth0".into())])).unwrap_err();
        assert_eq!(e.message, "unknown option `parnet` for macvlan");
        assert!(e.help.unwrap().starts_with("did you mean parent?"));
        assert!(link_kind("bridge", &Map::new()).unwrap_err().message.contains("bridge::add"));
    }

    #[test]
    fn vlan_ids_are_checked() {
        let opts = |id: i64| map(&[("parent", "eth0".into()), ("id", id.into())]);
        assert_eq!(
            link_kind("vlan", &opts(5000)).unwrap_err().message,
            "VLAN id 5000 is out of range"
        );
        assert_eq!(
            link_kind("vlan", &opts(70000)).unwrap_err().message,
            "VLAN id 70000 is out of range"
        );
        assert!(link_kind("vlan", &opts(10)).is_ok());
        let e = link_kind("vlan", &map(&[("id", 10.into())])).unwrap_err();
        assert_eq!(e.message, "a vlan needs `parent`");
    }

    #[test]
    fn macvlan_defaults_to_bridge_mode() {
        let k = link_kind("macvlan", &map(&[("parent", "eth0".into())])).unwrap();
        assert_eq!(k, LinkKind::Macvlan { parent: "eth0".into(), mode: "bridge".into() });
    }

    #[test]
    fn wireguard_options_are_checked() {
        let (private, public) = crate::net::wireguard::keypair().unwrap();
        let peer: Map = map(&[
            ("public_key", public.clone().into()),
            ("endpoint", "10.0.0.2:51820".into()),
            ("allowed_ips", "10.9.0.0/24".into()),
        ]);
        let s = wg_set(&map(&[
            ("private_key", private.into()),
            ("listen_port", 51820.into()),
            ("peers", Dynamic::from_array(vec![Dynamic::from_map(peer)])),
        ]))
        .unwrap();
        assert_eq!(s.listen_port, Some(51820));
        let peers = s.peers.unwrap();
        assert_eq!(peers[0].allowed_ips, vec!["10.9.0.0/24".parse::<IpNet>().unwrap()]);
        let e = wg_set(&map(&[("private_key", "c2hvcnQ=".into())])).unwrap_err();
        assert_eq!(e.message, "private_key is not a WireGuard key: 5 bytes, not 32");
        let bad_peer = map(&[("public_key", public.into()), ("endpoint", "10.0.0.2".into())]);
        let e = wg_set(&map(&[("peers", Dynamic::from_array(vec![Dynamic::from_map(bad_peer)]))]))
            .unwrap_err();
        assert_eq!(e.message, "endpoint \"10.0.0.2\" is not IP:PORT");
    }
}
