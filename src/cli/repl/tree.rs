//! `:show`: the live tree of the REPL's lab, asked from the kernel — the host's links the lab
//! made, then each netns the lab made (or put links into) with its links, addresses and
//! routes, then the lab's NAT rules.

use crate::lab::{Backend, journal};
use crate::net::Op;
use crate::net::info::{AddrInfo, LinkInfo};

fn link_line(l: &LinkInfo, addrs: &[AddrInfo]) -> String {
    let mut s = format!("{:<15} {:<8} {:<4}", l.name, l.kind, l.state);
    let a: Vec<&str> = addrs
        .iter()
        .filter(|a| a.dev == l.name && a.scope != "link")
        .map(|a| a.cidr.as_str())
        .collect();
    if !a.is_empty() {
        s.push_str(&format!(" {}", a.join(" ")));
    }
    if let Some(m) = &l.master {
        s.push_str(&format!(" master {m}"));
    }
    s.trim_end().to_string()
}

/// The tree as text.
pub fn render(b: &dyn Backend) -> String {
    let lab = b.lab();
    let tag = format!("nslab:{lab}");
    let ops = journal::read(lab).unwrap_or_default();
    let mut made: Vec<String> = Vec::new();
    for op in &ops {
        match op {
            Op::NetnsAdd { name } if !made.contains(name) => made.push(name.clone()),
            Op::NetnsDel { name } => made.retain(|n| n != name),
            _ => {}
        }
    }
    let mut out = vec![format!("lab {lab}: {} operations", ops.len())];
    let place = |title: String, ns: Option<&str>, all: bool, out: &mut Vec<String>| {
        let links = b.links(ns).unwrap_or_default();
        let addrs = b.addrs(ns).unwrap_or_default();
        let mine: Vec<&LinkInfo> =
            links.iter().filter(|l| all || l.alias.as_deref() == Some(tag.as_str())).collect();
        if mine.is_empty() && !all {
            return;
        }
        out.push(title);
        for l in mine {
            out.push(format!("  {}", link_line(l, &addrs)));
        }
        if all {
            for r in b.routes(ns).unwrap_or_default().iter().filter(|r| r.via.is_some()) {
                out.push(format!("  route {} via {}", r.dest, r.via.as_deref().unwrap_or("")));
            }
        }
        let rules: Vec<String> =
            b.nat_list(ns).unwrap_or_default().into_iter().filter(|r| r.contains(&tag)).collect();
        for r in rules {
            out.push(format!("  nat {r}"));
        }
    };
    place("host".into(), None, false, &mut out);
    for ns in b.netns_list().unwrap_or_default() {
        let all = made.contains(&ns);
        place(format!("netns {ns}"), Some(&ns), all, &mut out);
    }
    if out.len() == 1 {
        out.push("  (nothing yet)".into());
    }
    out.join("\n")
}
