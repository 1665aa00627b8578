//! Sysctls outlive labs (the host's `ip_forward`), and several labs may rely on the value one
//! of them set. Each (netns, key) a lab sets gets a claim file under `/run/nslab/.sysctl/`
//! with the value from before *any* lab touched it and the labs that hold it; the original is
//! written back only when the last holder goes, and only if nobody changed it since.
//!
//! Claims are read-modify-written under an exclusive lock, so two nslab processes starting
//! or destroying labs at the same time do not lose each other's holders. A holder whose
//! journal is gone (its lab directory was removed by hand) no longer holds anything.

use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::net::kernel::sysctl_get;
use crate::net::{NetError, NetResult};

use super::journal;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub original: String,
    pub value: String,
    pub holders: Vec<String>,
    /// The netns the key lives in (`netns::identity`): a claim on a netns deleted and made
    /// again under the same name is about another netns, and void.
    #[serde(default)]
    pub netns_id: Option<crate::net::netns::NetnsId>,
}

impl Claim {
    /// The claim is about a netns that is gone or was made again under its name.
    fn void(&self, ns: Option<&str>) -> bool {
        let Some(n) = ns else { return false };
        match (self.netns_id, crate::net::netns::identity(n)) {
            (Some(made), Some(now)) => !made.same(&now),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

fn dir() -> PathBuf {
    PathBuf::from(journal::STATE_DIR).join(".sysctl")
}

fn path(ns: Option<&str>, key: &str) -> PathBuf {
    journal::claim_file(&dir(), ns, key)
}

/// Holds the claims lock until dropped.
fn lock() -> NetResult<File> {
    journal::lock_dir(&dir())
}

/// The claim file as it is (void or not: callers that write decide, under the lock).
fn load(ns: Option<&str>, key: &str) -> Option<Claim> {
    let mut c: Claim = serde_json::from_str(&std::fs::read_to_string(path(ns, key)).ok()?).ok()?;
    c.holders.retain(|h| journal::exists(h));
    Some(c)
}

fn save(ns: Option<&str>, key: &str, c: &Claim) -> NetResult<()> {
    std::fs::write(path(ns, key), serde_json::to_vec(c).expect("claims serialise"))
        .map_err(|e| journal::claims_unusable(&dir(), e))
}

/// Whether the claims back lab `lab`'s journal about `key` in `ns`: the lab holds the key
/// (every value a lab sets is claimed before it is journaled), or the claim is void (its
/// netns is gone: nothing to restore). No claim at all: the journal's line alone says the
/// lab set it (issue 14: such a line may have been added by hand).
pub fn vouches(lab: &str, ns: Option<&str>, key: &str) -> bool {
    load(ns, key).is_some_and(|c| c.void(ns) || c.holders.iter().any(|h| h == lab))
}

/// Every claim: (netns, key, claim); for `nslab show` and `nslab doctor`.
pub fn all() -> Vec<(Option<String>, String, Claim)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir()) else { return out };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (ns, key) = match name.split_once('@') {
            Some((n, k)) => (Some(n.to_string()), k.replace('%', "/")),
            None => (None, name.replace('%', "/")),
        };
        if let Some(c) = load(ns.as_deref(), &key).filter(|c| !c.void(ns.as_deref())) {
            out.push((ns, key, c));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// `value` as the kernel will store it, for the integer values it normalises: "01", "00001"
/// and " 1" are stored as 1, so a journal that kept "01" made destroy think someone changed
/// the value since, and leave it (issue 14). Integer lists have as many items as the key
/// holds now: the kernel keeps the first of "1 0" for ip_forward and drops the rest, so
/// that is refused. Other values are checked after the write (`Session::apply` reads back).
pub fn normalise(key: &str, value: &str, current: &str) -> NetResult<String> {
    let items: Vec<&str> = value.split_whitespace().collect();
    let ints: Option<Vec<i64>> = items.iter().map(|t| t.parse::<i64>().ok()).collect();
    let Some(ints) = ints.filter(|i| !i.is_empty()) else { return Ok(value.to_string()) };
    let now = current.split_whitespace().count();
    let now_ints = current.split_whitespace().all(|t| t.parse::<i64>().is_ok());
    if now_ints && now > 0 && ints.len() != now {
        let shape = if now == 1 { "one integer".to_string() } else { format!("{now} integers") };
        return Err(NetError::new(format!("{key} holds {shape}, not {value:?}"))
            .with_errno(libc::EINVAL)
            .with_help(format!(
                "it is {current:?} now; the kernel would keep part of {value:?} and drop the rest"
            )));
    }
    Ok(ints.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
}

/// The kernel reads some values back normalised ("0 2147483647" comes back tab-separated).
pub fn same(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Records that `lab` is about to set `key` to `value`, and returns the value before (what
/// the lab's journal keeps as `old`) and the claim as it was (for [`unclaim`]). Read under the
/// lock: another lab releasing the key between a read and the claim would otherwise make
/// its value look like the original.
///
/// Refused while other labs hold the key at another value: one of them relies on it.
pub fn claim(
    lab: &str,
    ns: Option<&str>,
    key: &str,
    value: &str,
) -> NetResult<(String, Option<Claim>)> {
    let _lock = lock()?;
    let current = sysctl_get(ns, key)?;
    let before = load(ns, key);
    // A claim about a netns that is gone or was made again is no claim at all.
    let mut c = match before.clone().filter(|c| !c.void(ns)) {
        Some(c) if c.holders.iter().any(|h| h != lab) => {
            if !same(&c.value, value) {
                let others: Vec<&str> =
                    c.holders.iter().filter(|h| *h != lab).map(String::as_str).collect();
                return Err(NetError::new(format!(
                    "{key} is {} for lab {}, which relies on it: lab {lab} cannot set it to {value}",
                    c.value,
                    others.join(", ")
                ))
                .with_errno(libc::EBUSY)
                .with_help(format!(
                    "destroy that lab first (`nslab destroy {}`), or leave {key} as it is",
                    others[0]
                )));
            }
            c
        }
        // Held by nobody alive: labs gone without releasing (a killed run, a directory removed
        // by hand). If their value is still in force the original from before them is still
        // the one to give back; if someone changed it since, that change is the new original.
        Some(c) if same(&current, &c.value) => c,
        _ => Claim {
            original: current.clone(),
            value: value.to_string(),
            holders: vec![],
            netns_id: ns.and_then(crate::net::netns::identity),
        },
    };
    c.value = value.to_string();
    if !c.holders.iter().any(|h| h == lab) {
        c.holders.push(lab.to_string());
    }
    save(ns, key, &c)?;
    Ok((current, before))
}

/// Takes back a claim whose write never happened (the kernel refused the value): the claim
/// file goes back to what [`claim`] found.
pub fn unclaim(ns: Option<&str>, key: &str, before: Option<&Claim>) -> NetResult<()> {
    let _lock = lock()?;
    match before {
        Some(c) => save(ns, key, c),
        None => {
            let _ = std::fs::remove_file(path(ns, key));
            Ok(())
        }
    }
}

/// `lab` gives up its hold on a key inside one of its own namespaces, which die with it:
/// nothing to restore.
pub fn drop_holder(lab: &str, ns: Option<&str>, key: &str) -> NetResult<()> {
    let _lock = lock()?;
    let Some(mut c) = load(ns, key) else { return Ok(()) };
    c.holders.retain(|h| h != lab);
    if c.holders.is_empty() || c.void(ns) {
        let _ = std::fs::remove_file(path(ns, key));
        return Ok(());
    }
    save(ns, key, &c)
}

/// `lab` no longer needs its value; restores the original when nobody else holds the key,
/// with `write(original, now)` (teardown makes it an Op for the kernel executor).
pub fn release(
    lab: &str,
    ns: Option<&str>,
    key: &str,
    value: &str,
    old: Option<&str>,
    write: impl FnOnce(&str, &str) -> NetResult<()>,
) -> NetResult<()> {
    let _lock = lock()?;
    let (restore_to, claimed) = match load(ns, key) {
        // About a netns that is gone or was made again: nothing to give back there.
        Some(c) if c.void(ns) => {
            let _ = std::fs::remove_file(path(ns, key));
            return Ok(());
        }
        Some(mut c) => {
            c.holders.retain(|h| h != lab);
            if !c.holders.is_empty() {
                return save(ns, key, &c);
            }
            (c.original, true)
        }
        // No claim file: released a moment ago for a newer line of the same key (teardown
        // asks `vouches` before the first): the journal's old value, on the host only. A
        // netns of that name may not be the one the lab changed.
        None => match old {
            Some(o) if ns.is_none() => (o.to_string(), false),
            _ => return Ok(()),
        },
    };
    let now = match sysctl_get(ns, key) {
        Ok(v) => v,
        // The netns or the key (a link's) is gone: nothing to give back, nor to keep.
        Err(e) if e.is_gone() || ns.is_some_and(|n| !crate::net::netns::exists(n)) => {
            let _ = std::fs::remove_file(path(ns, key));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    // Someone changed it after us: their value wins.
    if same(&now, value) && !same(&now, &restore_to) {
        write(&restore_to, &now)?;
    }
    // Only now: killed before the write, a second destroy still finds the original here.
    if claimed {
        let _ = std::fs::remove_file(path(ns, key));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_values_are_normalised_like_the_kernel_does() {
        let k = "net.ipv4.ip_forward";
        assert_eq!(normalise(k, "01", "0").unwrap(), "1");
        assert_eq!(normalise(k, "00001", "0").unwrap(), "1");
        assert_eq!(normalise(k, " 1\n", "0").unwrap(), "1");
        assert!(normalise(k, "1 0", "0").is_err());
        assert!(normalise(k, "1\n0", "0").is_err());
        let r = "net.ipv4.ping_group_range";
        assert_eq!(normalise(r, "00 010", "1\t0").unwrap(), "0 10");
        assert!(normalise(r, "5", "1\t0").is_err());
        assert_eq!(normalise("net.ipv4.tcp_congestion_control", "reno", "cubic").unwrap(), "reno");
    }
}
