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

use crate::net::kernel::{sysctl_get, sysctl_set};
use crate::net::{NetError, NetResult};

use super::journal;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub original: String,
    pub value: String,
    pub holders: Vec<String>,
}

fn dir() -> PathBuf {
    PathBuf::from(journal::STATE_DIR).join(".sysctl")
}

/// `KEY` for the namespace nslab runs in, `NETNS@KEY` for a named netns (`@` is in neither a
/// netns name nor a key, so the two never collide).
fn path(ns: Option<&str>, key: &str) -> PathBuf {
    dir().join(match ns {
        None => key.to_string(),
        Some(n) => format!("{n}@{key}"),
    })
}

/// Holds the claims lock until dropped.
fn lock() -> NetResult<File> {
    std::fs::create_dir_all(dir())?;
    let f = File::create(dir().join(".lock"))?;
    f.lock()?;
    Ok(f)
}

fn load(ns: Option<&str>, key: &str) -> Option<Claim> {
    let mut c: Claim = serde_json::from_str(&std::fs::read_to_string(path(ns, key)).ok()?).ok()?;
    c.holders.retain(|h| journal::exists(h));
    Some(c)
}

fn save(ns: Option<&str>, key: &str, c: &Claim) -> NetResult<()> {
    std::fs::write(path(ns, key), serde_json::to_vec(c).expect("claims serialise"))
        .map_err(NetError::from)
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
            Some((n, k)) => (Some(n.to_string()), k.to_string()),
            None => (None, name),
        };
        if let Some(c) = load(ns.as_deref(), &key) {
            out.push((ns, key, c));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// Records that `lab` sets `key` to `value`; `current` is the value before this lab's change.
pub fn claim(lab: &str, ns: Option<&str>, key: &str, value: &str, current: &str) -> NetResult<()> {
    let _lock = lock()?;
    // A claim left by labs that are gone (their directories removed by hand) still knows
    // the value from before any lab: keep it.
    let mut c = load(ns, key).unwrap_or(Claim {
        original: current.to_string(),
        value: value.to_string(),
        holders: vec![],
    });
    c.value = value.to_string();
    if !c.holders.iter().any(|h| h == lab) {
        c.holders.push(lab.to_string());
    }
    save(ns, key, &c)
}

/// `lab` no longer needs its value; restores the original when nobody else holds the key.
pub fn release(
    lab: &str,
    ns: Option<&str>,
    key: &str,
    value: &str,
    old: Option<&str>,
) -> NetResult<()> {
    let _lock = lock()?;
    let restore_to = match load(ns, key) {
        Some(mut c) => {
            c.holders.retain(|h| h != lab);
            if !c.holders.is_empty() {
                return save(ns, key, &c);
            }
            let _ = std::fs::remove_file(path(ns, key));
            c.original
        }
        None => match old {
            Some(o) => o.to_string(),
            None => return Ok(()),
        },
    };
    let now = sysctl_get(ns, key)?;
    // Someone changed it after us: their value wins.
    if now == value && now != restore_to {
        sysctl_set(ns, key, &restore_to)?;
    }
    Ok(())
}
