//! Captured frames in words: who talks to whom over what, and a summary that reads like a
//! `tcpdump -n` line. Pure (decoding by `etherparse`), so it is tested on crafted frames.

use std::net::IpAddr;

use etherparse::{
    ArpOperation, Icmpv4Type, Icmpv6Type, LinkExtSlice, NetSlice, SlicedPacket, TransportSlice,
};

use super::info::mac_string;

/// One decoded frame. `src`/`dst` are IP addresses for IP and ARP (sender and target), MAC
/// addresses for anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// "arp", "icmp", "icmp6", "tcp", "udp", "ip", "ip6" or "ether".
    pub proto: &'static str,
    pub src: String,
    pub dst: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// What `tcpdump -n` prints after the timestamp.
    pub summary: String,
}

impl Decoded {
    /// The IP addresses involved (both ends), for the `host` filter.
    pub fn has_host(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical().to_string();
        self.src == ip || self.dst == ip
    }

    pub fn has_port(&self, port: u16) -> bool {
        self.sport == Some(port) || self.dport == Some(port)
    }
}

/// Decodes one frame: an Ethernet frame when `ethernet`, else a bare IP packet (tun, ipip).
/// `len` is the frame's length on the wire (the data may be cut short).
pub fn decode(data: &[u8], ethernet: bool, len: usize) -> Decoded {
    let sliced =
        if ethernet { SlicedPacket::from_ethernet(data) } else { SlicedPacket::from_ip(data) };
    let macs = if ethernet && data.len() >= 12 {
        (mac_string(&data[6..12]), mac_string(&data[0..6]))
    } else {
        (String::new(), String::new())
    };
    let Ok(p) = sliced else {
        return Decoded {
            proto: "ether",
            src: macs.0,
            dst: macs.1,
            sport: None,
            dport: None,
            summary: format!("[|truncated or malformed], length {len}"),
        };
    };
    let vlan: String = p
        .link_exts
        .iter()
        .filter_map(|e| match e {
            LinkExtSlice::Vlan(v) => Some(format!("vlan {}, ", v.vlan_identifier())),
            _ => None,
        })
        .collect();
    let mut d = match &p.net {
        Some(NetSlice::Arp(a)) => arp(a),
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let (src, dst) = (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()));
            let plen = usize::from(h.total_len()).saturating_sub(h.slice().len());
            transport("IP", src, dst, p.transport.as_ref(), plen, ip.payload_ip_number().0)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let (src, dst) = (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()));
            let plen = usize::from(h.payload_length());
            let next = ip.payload().ip_number.0;
            transport("IP6", src, dst, p.transport.as_ref(), plen, next)
        }
        None => {
            let et = p.payload_ether_type().map(|e| e.0).unwrap_or(0);
            Decoded {
                proto: "ether",
                src: macs.0,
                dst: macs.1,
                sport: None,
                dport: None,
                summary: format!("ethertype 0x{et:04x}, length {len}"),
            }
        }
    };
    d.summary = format!("{vlan}{}", d.summary);
    d
}

fn arp(a: &etherparse::ArpPacketSlice) -> Decoded {
    let ip = |b: &[u8]| match <[u8; 4]>::try_from(b) {
        Ok(v4) => std::net::Ipv4Addr::from(v4).to_string(),
        Err(_) => mac_string(b),
    };
    let (sender, target) = (ip(a.sender_protocol_addr()), ip(a.target_protocol_addr()));
    let len = a.slice().len();
    let summary = match a.operation() {
        ArpOperation::REQUEST => {
            format!("ARP, Request who-has {target} tell {sender}, length {len}")
        }
        ArpOperation::REPLY => {
            format!("ARP, Reply {sender} is-at {}, length {len}", mac_string(a.sender_hw_addr()))
        }
        op => format!("ARP, op {}, length {len}", op.0),
    };
    Decoded { proto: "arp", src: sender, dst: target, sport: None, dport: None, summary }
}

fn transport(
    fam: &str,
    src: IpAddr,
    dst: IpAddr,
    t: Option<&TransportSlice>,
    plen: usize,
    ip_proto: u8,
) -> Decoded {
    let (proto, sport, dport, what): (&'static str, _, _, String) = match t {
        Some(TransportSlice::Tcp(t)) => {
            let flags: String = [
                (t.fin(), 'F'),
                (t.syn(), 'S'),
                (t.rst(), 'R'),
                (t.psh(), 'P'),
                (t.ack(), '.'),
                (t.urg(), 'U'),
                (t.ece(), 'E'),
                (t.cwr(), 'W'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            let data = plen.saturating_sub(usize::from(t.data_offset()) * 4);
            let mut w = format!("Flags [{flags}], seq {}", t.sequence_number());
            if t.ack() {
                w += &format!(", ack {}", t.acknowledgment_number());
            }
            w += &format!(", win {}, length {data}", t.window_size());
            ("tcp", Some(t.source_port()), Some(t.destination_port()), w)
        }
        Some(TransportSlice::Udp(u)) => {
            let data = plen.saturating_sub(8);
            let h = u.to_header();
            ("udp", Some(h.source_port), Some(h.destination_port), format!("UDP, length {data}"))
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let what = match i.icmp_type() {
                Icmpv4Type::EchoRequest(e) => {
                    format!("echo request, id {}, seq {}", e.id, e.seq)
                }
                Icmpv4Type::EchoReply(e) => format!("echo reply, id {}, seq {}", e.id, e.seq),
                Icmpv4Type::DestinationUnreachable(_) => "destination unreachable".into(),
                Icmpv4Type::TimeExceeded(_) => "time exceeded in-transit".into(),
                Icmpv4Type::Redirect(_) => "redirect".into(),
                other => format!("type {}", icmp4_type_u8(&other)),
            };
            ("icmp", None, None, format!("ICMP {what}, length {plen}"))
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let what = match i.icmp_type() {
                Icmpv6Type::EchoRequest(e) => format!("echo request, id {}, seq {}", e.id, e.seq),
                Icmpv6Type::EchoReply(e) => format!("echo reply, id {}, seq {}", e.id, e.seq),
                Icmpv6Type::RouterSolicitation => "router solicitation".into(),
                Icmpv6Type::RouterAdvertisement(_) => "router advertisement".into(),
                Icmpv6Type::NeighborSolicitation => match nd_target(i.payload()) {
                    Some(t) => format!("neighbor solicitation, who has {t}"),
                    None => "neighbor solicitation".into(),
                },
                Icmpv6Type::NeighborAdvertisement(_) => match nd_target(i.payload()) {
                    Some(t) => format!("neighbor advertisement, tgt is {t}"),
                    None => "neighbor advertisement".into(),
                },
                Icmpv6Type::DestinationUnreachable(_) => "destination unreachable".into(),
                Icmpv6Type::PacketTooBig { mtu } => format!("packet too big, mtu {mtu}"),
                Icmpv6Type::TimeExceeded(_) => "time exceeded in-transit".into(),
                _ => match i.slice().first().copied().unwrap_or(0) {
                    130 => "multicast listener query".into(),
                    143 => "multicast listener report v2".into(),
                    t => format!("type {t}"),
                },
            };
            ("icmp6", None, None, format!("ICMP6, {what}, length {plen}"))
        }
        _ => {
            let proto = if fam == "IP" { "ip" } else { "ip6" };
            (proto, None, None, format!("ip-proto-{ip_proto} {plen}"))
        }
    };
    let end = |ip: IpAddr, port: Option<u16>| match port {
        Some(p) => format!("{ip}.{p}"),
        None => ip.to_string(),
    };
    let summary = match proto {
        "icmp" => format!("{fam} {src} > {dst}: {what}"),
        _ => format!("{fam} {} > {}: {what}", end(src, sport), end(dst, dport)),
    };
    Decoded { proto, src: src.to_string(), dst: dst.to_string(), sport, dport, summary }
}

fn icmp4_type_u8(t: &Icmpv4Type) -> u8 {
    match t {
        Icmpv4Type::Unknown { type_u8, .. } => *type_u8,
        Icmpv4Type::ParameterProblem(_) => 12,
        Icmpv4Type::TimestampRequest(_) => 13,
        Icmpv4Type::TimestampReply(_) => 14,
        _ => 0,
    }
}

/// The target address of a neighbour solicitation/advertisement (after 4 reserved bytes).
fn nd_target(payload: &[u8]) -> Option<std::net::Ipv6Addr> {
    let b: [u8; 16] = payload.get(0..16)?.try_into().ok()?;
    Some(b.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn icmp_echo_reads_like_tcpdump() {
        let b = PacketBuilder::ethernet2(A, B).ipv4([192, 168, 24, 10], [203, 0, 113, 1], 64);
        let b = b.icmpv4_echo_request(17, 1);
        let mut f = Vec::new();
        b.write(&mut f, &[0u8; 56]).unwrap();
        let d = decode(&f, true, f.len());
        assert_eq!(d.proto, "icmp");
        assert_eq!(d.src, "192.168.24.10");
        assert_eq!(d.dst, "203.0.113.1");
        assert_eq!(
            d.summary,
            "IP 192.168.24.10 > 203.0.113.1: ICMP echo request, id 17, seq 1, length 64"
        );
        assert!(d.has_host("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn tcp_syn_ack_flags_and_ports() {
        let b = PacketBuilder::ethernet2(A, B)
            .ipv4([203, 0, 113, 1], [203, 0, 113, 2], 64)
            .tcp(8080, 40000, 100, 64240)
            .syn()
            .ack(7);
        let mut f = Vec::new();
        b.write(&mut f, &[]).unwrap();
        let d = decode(&f, true, f.len());
        assert_eq!((d.proto, d.sport, d.dport), ("tcp", Some(8080), Some(40000)));
        assert_eq!(
            d.summary,
            "IP 203.0.113.1.8080 > 203.0.113.2.40000: Flags [S.], seq 100, ack 7, win 64240, length 0"
        );
        assert!(d.has_port(40000) && !d.has_port(80));
    }

    #[test]
    fn udp_over_ipv6() {
        let b = PacketBuilder::ethernet2(A, B)
            .ipv6(
                [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"hello").unwrap();
        let d = decode(&f, true, f.len());
        assert_eq!(d.summary, "IP6 fd00::1.5353 > fd00::2.53: UDP, length 5");
        assert_eq!(d.proto, "udp");
    }

    #[test]
    fn arp_request_and_reply() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&A);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&A);
        f.extend_from_slice(&[192, 168, 24, 10]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[192, 168, 24, 1]);
        let d = decode(&f, true, 42);
        assert_eq!(d.summary, "ARP, Request who-has 192.168.24.1 tell 192.168.24.10, length 28");
        assert_eq!(
            (d.src.as_str(), d.dst.as_str(), d.proto),
            ("192.168.24.10", "192.168.24.1", "arp")
        );
        f[21] = 2;
        let d = decode(&f, true, 42);
        assert_eq!(d.summary, "ARP, Reply 192.168.24.10 is-at 02:00:00:00:00:01, length 28");
    }

    #[test]
    fn vlan_tag_is_shown() {
        let b = PacketBuilder::ethernet2(A, B)
            .single_vlan(10.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2);
        let mut f = Vec::new();
        b.write(&mut f, &[]).unwrap();
        assert_eq!(
            decode(&f, true, f.len()).summary,
            "vlan 10, IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 0"
        );
    }

    #[test]
    fn bare_ip_and_garbage() {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).icmpv4_echo_reply(1, 2);
        let mut f = Vec::new();
        b.write(&mut f, &[]).unwrap();
        assert_eq!(
            decode(&f, false, f.len()).summary,
            "IP 10.0.0.1 > 10.0.0.2: ICMP echo reply, id 1, seq 2, length 8"
        );
        let d = decode(&[1, 2, 3], true, 3);
        assert_eq!(d.proto, "ether");
        assert!(d.summary.contains("length 3"));
    }
}
