//! WireGuard without the `wg` binary: keys (x25519, base64 like `wg genkey`/`wg pubkey`)
//! and the device configuration (`wg set`) over generic netlink, with the message types of
//! netlink-packet-wireguard sent on the same blocking socket as everything else
//! ([`NlSocket`], protocol NETLINK_GENERIC). The genetlink crate is not used: it is built
//! on tokio's async connection, which the kernel layer avoids (see nl.rs).
//!
//! A private key is a [`Secret`]: its Debug and Serialize forms are `<private key>`, so it
//! never reaches the journal, `--explain`, `plan`, `ls` or `show`.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ipnet::IpNet;
use netlink_packet_generic::ctrl::GenlCtrl;
use netlink_packet_generic::ctrl::GenlCtrlCmd;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::{GenlFamily, GenlMessage};
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardDeviceFlags, WireguardMessage, WireguardPeer, WireguardPeerAttribute,
    WireguardPeerFlags,
};
use serde::{Deserialize, Serialize};

use super::error::{NetError, NetResult, errno_of, from_nl, place};
use super::nl::NlSocket;

/// What a private key prints as, everywhere.
pub const REDACTED: &str = "<private key>";

/// A private key. Only [`Secret::expose`] hands out its bytes; one read back from a journal
/// is empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Option<[u8; 32]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = String::deserialize(d)?;
        Ok(Secret(None))
    }
}

impl Secret {
    pub fn new(bytes: [u8; 32]) -> Secret {
        Secret(Some(bytes))
    }

    pub fn expose(&self) -> Option<&[u8; 32]> {
        self.0.as_ref()
    }

    /// The key in base64, for the 0600 key file beside the journal.
    pub fn to_base64(&self) -> Option<String> {
        self.0.map(|k| B64.encode(k))
    }

    /// The public key that goes with it (`wg pubkey`).
    pub fn public(&self) -> Option<String> {
        self.0.map(|k| public_of(&k))
    }
}

/// A peer of a WireGuard device, as `wg set DEV peer KEY endpoint E allowed-ips A`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgPeer {
    /// Base64, checked to be 32 bytes.
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SocketAddr>,
    #[serde(default)]
    pub allowed_ips: Vec<IpNet>,
}

/// Decodes a base64 key of 32 bytes; `what` names it in the refusal ("private_key").
pub fn parse_key(what: &str, s: &str) -> NetResult<[u8; 32]> {
    let bad = |why: String| {
        NetError::new(format!("{what} is not a WireGuard key: {why}"))
            .with_errno(libc::EINVAL)
            .with_help("a key is 32 bytes in base64 (44 characters ending in `=`), as wireguard::keypair() or `wg genkey` makes it")
    };
    let bytes = B64.decode(s.trim()).map_err(|e| bad(format!("not base64 ({e})")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad(format!("{} bytes, not 32", bytes.len())))
}

fn public_of(private: &[u8; 32]) -> String {
    let secret = x25519_dalek::StaticSecret::from(*private);
    B64.encode(x25519_dalek::PublicKey::from(&secret).as_bytes())
}

/// A new key pair (`wg genkey | tee priv | wg pubkey`): 32 random bytes from the kernel,
/// clamped as Curve25519 wants them (what `wg genkey` prints), and their public key.
pub fn keypair() -> NetResult<(String, String)> {
    let mut k = [0u8; 32];
    let mut filled = 0;
    while filled < k.len() {
        // SAFETY: the pointer and length describe the unfilled part of `k`.
        let r = unsafe { libc::getrandom(k[filled..].as_mut_ptr().cast(), k.len() - filled, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(NetError::from(e));
        }
        filled += r as usize;
    }
    k[0] &= 248;
    k[31] = (k[31] & 127) | 64;
    Ok((B64.encode(k), public_of(&k)))
}

/// The `wg set` line for `--explain` and `plan`, without `wg set`: `DEV private-key '<private
/// key>' listen-port N peer KEY endpoint E allowed-ips A,B`.
pub fn command_args(
    dev: &str,
    key: Option<&Secret>,
    listen_port: Option<u16>,
    peers: Option<&[WgPeer]>,
) -> String {
    use super::op::q;
    let mut s = q(dev);
    if key.is_some() {
        s += &format!(" private-key {}", q(REDACTED));
    }
    if let Some(p) = listen_port {
        s += &format!(" listen-port {p}");
    }
    for p in peers.unwrap_or_default() {
        s += &format!(" peer {}", q(&p.public_key));
        if let Some(e) = p.endpoint {
            s += &format!(" endpoint {}", q(&e.to_string()));
        }
        if !p.allowed_ips.is_empty() {
            let ips: Vec<String> = p.allowed_ips.iter().map(|n| n.to_string()).collect();
            s += &format!(" allowed-ips {}", q(&ips.join(",")));
        }
    }
    s
}

/// The WG_CMD_SET_DEVICE request. `peers` given replaces the device's peers (and each
/// peer's allowed IPs): the recipe says what the device is, not what to add to it.
pub fn set_device_message(
    dev: &str,
    key: Option<&Secret>,
    listen_port: Option<u16>,
    peers: Option<&[WgPeer]>,
) -> NetResult<WireguardMessage> {
    let mut attrs = vec![WireguardAttribute::IfName(dev.to_string())];
    if let Some(k) = key {
        let bytes = k.expose().ok_or_else(|| {
            NetError::new("the private key is not kept in the journal; set it again")
        })?;
        attrs.push(WireguardAttribute::PrivateKey(*bytes));
    }
    if let Some(p) = listen_port {
        attrs.push(WireguardAttribute::ListenPort(p));
    }
    if let Some(peers) = peers {
        attrs.push(WireguardAttribute::Flags(WireguardDeviceFlags::ReplacePeers));
        let mut list = Vec::new();
        for p in peers {
            let mut a = vec![
                WireguardPeerAttribute::PublicKey(parse_key("public_key", &p.public_key)?),
                WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
            ];
            if let Some(e) = p.endpoint {
                a.push(WireguardPeerAttribute::Endpoint(e));
            }
            let ips = p
                .allowed_ips
                .iter()
                .map(|n| {
                    let family = if n.addr().is_ipv4() {
                        WireguardAddressFamily::Ipv4
                    } else {
                        WireguardAddressFamily::Ipv6
                    };
                    WireguardAllowedIp(vec![
                        WireguardAllowedIpAttr::Family(family),
                        WireguardAllowedIpAttr::IpAddr(n.network()),
                        WireguardAllowedIpAttr::Cidr(n.prefix_len()),
                    ])
                })
                .collect();
            a.push(WireguardPeerAttribute::AllowedIps(ips));
            list.push(WireguardPeer(a));
        }
        attrs.push(WireguardAttribute::Peers(list));
    }
    Ok(WireguardMessage { cmd: WireguardCmd::SetDevice, attributes: attrs })
}

/// Configures WireGuard device `dev` in `ns` (`wg set`): resolves the `wireguard` generic
/// netlink family, then sends the request, on a NETLINK_GENERIC socket opened in `ns`.
pub fn set_device(
    ns: Option<&str>,
    dev: &str,
    key: Option<&Secret>,
    listen_port: Option<u16>,
    peers: Option<&[WgPeer]>,
) -> NetResult<()> {
    let msg = set_device_message(dev, key, listen_port, peers)?;
    let sock = super::netns::run_in(ns, || NlSocket::open_protocol(libc::NETLINK_GENERIC))?
        .map_err(|e| {
            NetError::new(format!("cannot open a generic netlink socket in {}: {e}", place(ns)))
        })?;
    let family = family_id(&sock, WireguardMessage::family_name())?;
    let mut m = GenlMessage::from_payload(msg);
    m.set_resolved_family_id(family);
    sock.ack_any(m, 0).map_err(|e| {
        from_nl(e, &format!("cannot configure WireGuard on {dev} in {}", place(ns)), |errno| {
            match errno {
                libc::ENODEV => Some(super::refusal::no_link(dev, ns)),
                // The device exists but is not a WireGuard link.
                libc::EOPNOTSUPP => Some(super::refusal::not_wireguard(dev, ns)),
                libc::EADDRINUSE => {
                    Some(super::refusal::wg_port_taken(listen_port.unwrap_or(0), ns))
                }
                _ => None,
            }
        })
    })
}

/// The id of generic netlink family `name` (CTRL_CMD_GETFAMILY). A kernel without the
/// family answers ENOENT.
fn family_id(sock: &NlSocket, name: &str) -> NetResult<u16> {
    let req = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    let answers = sock.request(req, 0).map_err(|e| {
        if errno_of(&e) == Some(libc::ENOENT) {
            super::link_kind::kind_missing(&super::link_kind::LinkKind::Wireguard)
        } else {
            from_nl(e, &format!("cannot look up the {name} netlink family"), |_| None)
        }
    })?;
    answers
        .iter()
        .flat_map(|m| m.payload.nlas.iter())
        .find_map(|a| if let GenlCtrlAttrs::FamilyId(id) = a { Some(*id) } else { None })
        .ok_or_else(|| NetError::new(format!("the kernel did not say the id of family {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_wg_compatible() {
        // RFC 7748 section 6.1: Alice's private and public key.
        let private = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
        let k = parse_key("private_key", private).unwrap();
        assert_eq!(public_of(&k), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
        let (private, public) = keypair().unwrap();
        let k = parse_key("private_key", &private).unwrap();
        assert_eq!(k[0] & 7, 0, "clamped like wg genkey");
        assert_eq!(public_of(&k), public);
    }

    #[test]
    fn bad_keys_are_refused() {
        let e = parse_key("private_key", "not a key").unwrap_err();
        assert!(e.message.starts_with("private_key is not a WireGuard key: not base64"));
        let e = parse_key("public_key", "AAAA").unwrap_err();
        assert_eq!(e.message, "public_key is not a WireGuard key: 3 bytes, not 32");
    }

    #[test]
    fn the_private_key_never_prints() {
        let s = Secret::new([7; 32]);
        assert_eq!(format!("{s:?}"), REDACTED);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"<private key>\"");
        let back: Secret = serde_json::from_str(&j).unwrap();
        assert_eq!(back.expose(), None);
        let line = command_args("wg0", Some(&s), Some(51820), None);
        assert_eq!(line, "wg0 private-key '<private key>' listen-port 51820");
        assert!(!line.contains(&B64.encode([7u8; 32])));
    }

    #[test]
    fn set_device_carries_peers_and_replaces_them() {
        let peer = WgPeer {
            public_key: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=".into(),
            endpoint: Some("10.0.0.2:51820".parse().unwrap()),
            allowed_ips: vec!["10.9.0.0/24".parse().unwrap()],
        };
        let m = set_device_message("wg0", Some(&Secret::new([1; 32])), Some(51820), Some(&[peer]))
            .unwrap();
        assert!(m.attributes.contains(&WireguardAttribute::ListenPort(51820)));
        assert!(
            m.attributes.contains(&WireguardAttribute::Flags(WireguardDeviceFlags::ReplacePeers))
        );
        let Some(WireguardAttribute::Peers(p)) = m.attributes.last() else { panic!() };
        assert!(
            p[0].0.contains(&WireguardPeerAttribute::Endpoint("10.0.0.2:51820".parse().unwrap()))
        );
        let redacted: Secret = serde_json::from_str("\"<private key>\"").unwrap();
        assert!(set_device_message("wg0", Some(&redacted), None, None).is_err());
    }
}
