//! iptables rules, through the `iptables` crate (it runs the `iptables` binary).
//!
//! A child process starts in the netns of the *thread* that spawns it, so every call runs on
//! a thread inside the target netns. The crate's error type is not `Send`: it is turned into
//! words on that thread.

use super::error::{NetError, NetResult};
use super::netns;
pub(crate) use super::refusal::rule_exists;

fn ipt() -> iptables::IPTables {
    // Built by hand: `iptables::new()` spawns `iptables --version` first, one process more
    // per call for an answer that is the same on every machine we support (1.8.x).
    iptables::IPTables { cmd: "iptables", has_check: true, has_wait: true, is_numeric: false }
}

/// The rule as the crate wants it: one string it splits itself, with double quotes
/// grouping words. Our rule words never contain quotes (names are validated).
fn rule_text(rule: &[String]) -> String {
    rule.iter()
        .map(|w| if w.contains(' ') { format!("\"{w}\"") } else { w.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

fn missing_binary(e: &str) -> NetError {
    NetError::new(format!("cannot run iptables: {e}"))
        .with_help("install the iptables command (Debian/Ubuntu: apt-get install iptables)")
}

pub fn append(ns: Option<&str>, table: &str, chain: &str, rule: &[String]) -> NetResult<()> {
    super::fw::check_words(rule)?;
    let (t, c, r) = (table.to_string(), chain.to_string(), rule_text(rule));
    let place = super::error::place(ns);
    let r = netns::run_in(ns, move || ipt().append_unique(&t, &c, &r).map_err(|e| e.to_string()))?;
    r.map_err(|e| {
        if e.contains("the rule exists") {
            rule_exists(ns, table, chain)
        } else if e.contains("No such file") {
            missing_binary(&e)
        } else {
            NetError::new(format!("iptables rejected the rule in {place}: {}", e.trim()))
                .with_help("`nslab plan` shows the iptables command line this rule corresponds to")
        }
    })
}

pub fn delete(ns: Option<&str>, table: &str, chain: &str, rule: &[String]) -> NetResult<()> {
    let (t, c, r) = (table.to_string(), chain.to_string(), rule_text(rule));
    netns::run_in(ns, move || match ipt().delete(&t, &c, &r) {
        Ok(()) => Ok(()),
        // A rule (or its chain) that is already gone is fine for teardown. Told apart by
        // iptables' words: `-C` first answered "no" to any failure alike, so a rule that
        // could not even be checked (another backend, say) looked deleted.
        Err(e) if gone(&e.to_string()) => Ok(()),
        Err(e) => Err(e.to_string()),
    })?
    .map_err(|e| NetError::new(format!("cannot delete iptables rule: {}", e.trim())))
}

/// iptables' answers for "no such rule" (1.8, nft and legacy backends).
fn gone(msg: &str) -> bool {
    msg.contains("does a matching rule exist") || msg.contains("No chain/target/match by that name")
}

/// `iptables -t TABLE -S` lines (rules only, no policies).
pub fn list(ns: Option<&str>, table: &str) -> NetResult<Vec<String>> {
    let t = table.to_string();
    netns::run_in(ns, move || ipt().list_table(&t).map_err(|e| e.to_string()))?
        .map(|lines| lines.into_iter().filter(|l| l.starts_with("-A ")).collect())
        .map_err(|e| if e.contains("No such file") { missing_binary(&e) } else { NetError::new(e) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_text_groups_spaces() {
        let r = ["-m", "comment", "--comment", "a b"].map(String::from);
        assert_eq!(super::rule_text(&r), "-m comment --comment \"a b\"");
    }
}
