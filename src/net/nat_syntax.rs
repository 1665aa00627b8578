//! The syntax of the iptables rules nslab writes: how `iptables -S` prints one, and which
//! packets one matches (for the plan's probe tracing).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// What the nat rules of a hop look at.
pub(crate) struct Packet {
    pub(crate) src: Option<IpAddr>,
    pub(crate) dst: IpAddr,
    pub(crate) proto: Option<String>,
    pub(crate) dport: Option<u16>,
    pub(crate) in_dev: Option<String>,
    pub(crate) out_dev: Option<String>,
}

/// Whether iptables rule words (as `nat::` builds them) match `pkt`. Matches the model does
/// not know are taken as matching.
pub(crate) fn rule_matches(
    rule: &[String],
    pkt: &Packet,
    is_local: impl Fn(IpAddr) -> bool,
) -> bool {
    let net =
        |s: &str| s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from));
    let mut neg = false;
    let mut i = 0;
    while i < rule.len() {
        let w = rule[i].as_str();
        let arg = rule.get(i + 1).map(String::as_str).unwrap_or("");
        let test = match w {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-s" => Some(pkt.src.is_some_and(|s| net(arg).is_some_and(|n| n.contains(&s)))),
            "-d" => Some(net(arg).is_some_and(|n| n.contains(&pkt.dst))),
            "-i" => Some(pkt.in_dev.as_deref() == Some(arg)),
            "-o" => Some(pkt.out_dev.as_deref() == Some(arg)),
            "-p" => Some(pkt.proto.as_deref() == Some(arg)),
            "--dport" => Some(pkt.dport.map(|p| p.to_string()).as_deref() == Some(arg)),
            "--dst-type" => Some(arg != "LOCAL" || is_local(pkt.dst)),
            _ => None,
        };
        match test {
            Some(t) => {
                if t == neg {
                    return false;
                }
                neg = false;
                i += 2;
            }
            None => i += 1,
        }
    }
    true
}

pub(crate) fn dnat_target(rule: &[String]) -> Option<(IpAddr, Option<u16>)> {
    if !rule.iter().any(|w| w == "DNAT") {
        return None;
    }
    let i = rule.iter().position(|w| w == "--to-destination")?;
    let t = rule.get(i + 1)?;
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    t.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// A rule as `iptables -t TABLE -S` prints it: the basic matches first (`-s -d -i -o -p`),
/// the protocol's own match module before `--dport`, the comment quoted.
pub(crate) fn save_line(chain: &str, rule: &[String]) -> String {
    let mut basic: Vec<(usize, Vec<String>)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let order = ["-s", "-d", "-i", "-o", "-p"];
    let mut proto = None;
    let mut i = 0;
    while i < rule.len() {
        let neg = rule[i] == "!" && rule.get(i + 1).is_some_and(|w| order.contains(&w.as_str()));
        let j = if neg { i + 1 } else { i };
        if let Some(rank) = order.iter().position(|o| *o == rule[j]) {
            let mut words = if neg { vec!["!".to_string()] } else { vec![] };
            words.push(rule[j].clone());
            if let Some(a) = rule.get(j + 1) {
                words.push(a.clone());
                if rule[j] == "-p" {
                    proto = Some(a.clone());
                }
            }
            basic.push((rank, words));
            i = j + 2;
            continue;
        }
        rest.push(rule[i].clone());
        i += 1;
    }
    basic.sort_by_key(|(r, _)| *r);
    let mut out = vec!["-A".to_string(), chain.to_string()];
    out.extend(basic.into_iter().flat_map(|(_, w)| w));
    let mut k = 0;
    let mut proto_match_done = false;
    while k < rest.len() {
        let w = &rest[k];
        if w == "-m" && proto.as_deref() == rest.get(k + 1).map(String::as_str) {
            proto_match_done = true;
        }
        if (w == "--dport" || w == "--sport") && !proto_match_done {
            if let Some(p) = &proto {
                out.extend(["-m".to_string(), p.clone()]);
            }
            proto_match_done = true;
        }
        if w == "--comment" {
            out.push(w.clone());
            if let Some(c) = rest.get(k + 1) {
                out.push(format!("\"{c}\""));
            }
            k += 2;
            continue;
        }
        out.push(w.clone());
        k += 1;
    }
    // iptables names REJECT's default answer.
    if out.last().is_some_and(|w| w == "REJECT") {
        out.extend(["--reject-with".to_string(), "icmp-port-unreachable".to_string()]);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_lines_look_like_iptables_s() {
        let r: Vec<String> =
            "-s 10.0.0.0/24 ! -d 10.0.0.0/24 -o uplink -m comment --comment nslab:x -j MASQUERADE"
                .split(' ')
                .map(String::from)
                .collect();
        assert_eq!(
            save_line("POSTROUTING", &r),
            "-A POSTROUTING -s 10.0.0.0/24 ! -d 10.0.0.0/24 -o uplink -m comment --comment \"nslab:x\" -j MASQUERADE"
        );
        let r: Vec<String> = "-p udp -i uplink --dport 53 -j DNAT --to-destination 10.0.0.1:53"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(
            save_line("PREROUTING", &r),
            "-A PREROUTING -i uplink -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.0.1:53"
        );
        let r: Vec<String> = "-p udp --dport 5000:5010 -m comment --comment nslab:x -j REJECT"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(
            save_line("INPUT", &r),
            "-A INPUT -p udp -m udp --dport 5000:5010 -m comment --comment \"nslab:x\" -j REJECT --reject-with icmp-port-unreachable"
        );
    }
}
