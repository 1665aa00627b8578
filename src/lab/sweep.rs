//! The journal is evidence, not gospel (issue 14): after a teardown from the journal, destroy
//! looks for what the lab marked as its own and is still there — a journal damaged, cut
//! short or emptied lost those lines, and "destroyed lab" must not be said while they stay.
//!
//! The marks: the netns the lab made, recorded with their kernel identity beside the journal
//! (`journal::netns_ids`: deleted only while the name still means that netns); links with
//! the lab's alias *and* link group (`nslab:LAB`); iptables rules with the comment
//! `nslab:LAB`; sysctl claims the lab holds. What carries no mark (an address or a route the
//! lab put on a link it did not make) cannot be found this way: destroy says so.

use super::{journal, sysctl_claims, teardown::owner_tag};
use crate::net::{Kernel, NetError, Op, nat, netns};

/// What a sweep removed (for the report) and the errors it met.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<String>,
    pub errors: Vec<NetError>,
}

/// Removes what lab `lab` marked as its own; iptables rules too when `rules` (that costs an
/// `iptables` run per namespace: done when the journal is damaged), links when `links`.
/// Links are not looked for in `cleared`, where the teardown saw the whole link group as the
/// lab's and deleted it (a dump right after the unmounts waits for the kernel's netns
/// worker: 50-60 ms in lab(200)).
pub fn sweep(
    kernel: &Kernel,
    lab: &str,
    rules: bool,
    links: bool,
    cleared: &[Option<String>],
) -> Swept {
    let mut s = Swept::default();
    let tag = owner_tag(lab);
    let group = journal::group_of(lab);
    for (name, id) in journal::netns_ids(lab) {
        if netns::identity(&name).is_some_and(|now| id.same(&now)) {
            kernel.forget(&name);
            match kernel.apply(&Op::NetnsDel { name: name.clone() }) {
                Ok(()) => s.removed.push(format!("netns {name}")),
                Err(e) => s.errors.push(e),
            }
        }
    }
    let mut spaces: Vec<Option<String>> = vec![None];
    spaces.extend(netns::list().unwrap_or_default().into_iter().map(Some));
    for ns in spaces.iter().filter(|ns| links && !cleared.contains(ns)) {
        let Ok(links) = kernel.links(ns.as_deref()) else { continue };
        for l in links {
            if l.alias.as_deref() != Some(tag.as_str()) || l.group != group {
                continue;
            }
            let del = Op::LinkDel { ns: ns.clone(), dev: l.name.clone() };
            match kernel.apply(&del) {
                Ok(()) => s.removed.push(format!("link {} in {}", l.name, place(ns))),
                // Its veth peer, deleted with the other end a moment ago.
                Err(e) if e.errno == Some(libc::ENODEV) => {}
                Err(e) => s.errors.push(e),
            }
        }
    }
    if rules {
        for ns in &spaces {
            for table in ["nat", "filter"] {
                let Ok(lines) = nat::list(ns.as_deref(), table) else { continue };
                for line in lines {
                    let mut words = line.split_whitespace();
                    if !words.any(|w| w == "--comment")
                        || words.next().map(|w| w.trim_matches('"')) != Some(tag.as_str())
                    {
                        continue;
                    }
                    let Some((chain, rule)) = rule_words(&line) else {
                        s.errors.push(NetError::new(format!(
                            "a rule tagged {tag} in {} is too unusual to delete: {line}",
                            place(ns)
                        )));
                        continue;
                    };
                    let op =
                        Op::IptDelete { ns: ns.clone(), table: table.to_string(), chain, rule };
                    match kernel.apply(&op) {
                        Ok(()) => s.removed.push(format!("{table} rule in {}: {line}", place(ns))),
                        Err(e) => s.errors.push(e),
                    }
                }
            }
        }
    }
    for (ns, key, claim) in sysctl_claims::all() {
        if claim.holders.iter().any(|h| h == lab) {
            let restore = |to: &str, now: &str| {
                kernel.apply(&Op::SysctlSet {
                    ns: ns.clone(),
                    key: key.clone(),
                    value: to.to_string(),
                    old: Some(now.to_string()),
                })
            };
            match sysctl_claims::release(lab, ns.as_deref(), &key, &claim.value, None, restore) {
                Ok(()) => s.removed.push(format!("its hold on {key} in {}", place(&ns))),
                Err(e) => s.errors.push(e),
            }
        }
    }
    s
}

fn place(ns: &Option<String>) -> String {
    crate::net::error::place(ns.as_deref())
}

/// `-A CHAIN WORD...` from `iptables -S` as (chain, words), a quoted word without spaces
/// unquoted (`"nslab:LAB"`); None when a quoted word holds spaces (the lab's own rules never
/// do: lab names hold none).
fn rule_words(line: &str) -> Option<(String, Vec<String>)> {
    let mut w = line.split_whitespace();
    if w.next()? != "-A" {
        return None;
    }
    let chain = w.next()?.to_string();
    let rule: Vec<String> = w
        .map(|x| match x.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
            Some(inner) => inner.to_string(),
            None => x.to_string(),
        })
        .collect();
    if rule.iter().any(|x| x.contains('"') || x.contains('\'')) {
        return None;
    }
    Some((chain, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_split_back_into_words() {
        let (c, r) =
            rule_words("-A POSTROUTING -s 10.7.0.0/24 -m comment --comment nslab:x -j MASQUERADE")
                .unwrap();
        assert_eq!(c, "POSTROUTING");
        assert_eq!(r[0], "-s");
        assert_eq!(r.last().unwrap(), "MASQUERADE");
        assert!(rule_words("-A X -m comment --comment \"a b\" -j ACCEPT").is_none());
        let (_, r) = rule_words("-A X -m comment --comment \"nslab:x\" -j ACCEPT").unwrap();
        assert_eq!(r[3], "nslab:x");
    }
}
