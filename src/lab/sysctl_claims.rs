//! Sysctls outlive labs (the host's `ip_forward`), and several labs may rely on the value one
//! of them set. Each (netns, key) a lab sets gets a claim file under `/run/nslab/.sysctl/`
//! with the value from before *any* lab touched it and the labs that hold it; the original is
//! written back only when the last holder goes, and only if nobody changed it since.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::net::kernel::{sysctl_get, sysctl_set};
use crate::net::{NetError, NetResult};

#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    original: String,
    value: String,
    holders: Vec<String>,
}

fn path(ns: Option<&str>, key: &str) -> PathBuf {
    PathBuf::from(super::journal::STATE_DIR).join(".sysctl").join(format!("{}@{key}", ns.unwrap_or("-")))
}

fn load(ns: Option<&str>, key: &str) -> Option<Claim> {
    serde_json::from_str(&std::fs::read_to_string(path(ns, key)).ok()?).ok()
}

fn save(ns: Option<&str>, key: &str, c: &Claim) -> NetResult<()> {
    let p = path(ns, key);
    std::fs::create_dir_all(p.parent().expect("claim path has a parent"))?;
    std::fs::write(p, serde_json::to_vec(c).expect("claims serialise")).map_err(NetError::from)
}

/// Records that `lab` sets `key` to `value`; `current` is the value before this lab's change.
pub fn claim(lab: &str, ns: Option<&str>, key: &str, value: &str, current: &str) -> NetResult<()> {
    let mut c = load(ns, key).unwrap_or(Claim { original: current.to_string(), value: value.to_string(), holders: vec![] });
    c.value = value.to_string();
    if !c.holders.iter().any(|h| h == lab) {
        c.holders.push(lab.to_string());
    }
    save(ns, key, &c)
}

/// `lab` no longer needs its value; restores the original when nobody else holds the key.
pub fn release(lab: &str, ns: Option<&str>, key: &str, value: &str, old: Option<&str>) -> NetResult<()> {
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
