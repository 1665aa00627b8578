//! A route or `ip rule` a lab adds where it outlives the lab carries nslab's protocol
//! (`proto 110`), and teardown's delete names it, so no route or rule of anyone else's can go.
//! But the mark says "nslab", not which lab: lab A's route deleted by hand and added again by
//! lab B carried the same mark, and A's destroy took B's route. And a line added to a journal
//! by hand, marked, made destroy delete any lab's route it named. So each such route or rule
//! is claimed too, under `/run/nslab/.route/`: the labs that may hold it, narrowed to the one
//! whose add the kernel took (it refuses an add of a route that is there). Teardown deletes
//! one only for a lab the claim names; the claim goes with the lab's journal.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal;
use crate::net::{NetResult, Op};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    /// The delete that names the route or rule exactly (`ip route del … proto 110`): the
    /// file name is a hash of it.
    key: String,
    holders: Vec<String>,
}

fn dir() -> PathBuf {
    PathBuf::from(journal::STATE_DIR).join(".route")
}

/// The claim's key and file for a marked route or rule add (None for any other Op).
fn key_of(op: &Op) -> Option<(String, PathBuf)> {
    let ns = if let Op::RouteAdd { ns, .. } | Op::RuleAdd { ns, .. } = op {
        ns.as_deref()
    } else {
        return None;
    };
    let key = op.inverse()?.command();
    // FNV-1a: stable across builds, unlike std's hasher.
    let h = key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let file = journal::claim_file(&dir(), ns, &format!("{h:016x}"));
    Some((key, file))
}

fn lock() -> NetResult<File> {
    journal::lock_dir(&dir())
}

/// The claim on `key`, if `file` holds that one (not another key with the same hash).
fn load(key: &str, file: &Path) -> Option<Claim> {
    serde_json::from_str::<Claim>(&std::fs::read_to_string(file).ok()?)
        .ok()
        .filter(|c| c.key == key)
}

fn save(file: &Path, c: &Claim) -> NetResult<()> {
    std::fs::write(file, serde_json::to_vec(c).expect("claims serialise"))
        .map_err(|e| journal::claims_unusable(&dir(), e))
}

/// Best effort: a claim nobody holds goes.
fn drop_or_save(file: &Path, c: &Claim) {
    if c.holders.is_empty() {
        let _ = std::fs::remove_file(file);
    } else {
        let _ = save(file, c);
    }
}

/// Names lab `lab` among those that may hold the route or rule `op` adds, before the lab
/// journals it (a crash in between leaves a name that no line backs: harmless).
pub fn claim(lab: &str, op: &Op) -> NetResult<()> {
    let Some((key, file)) = key_of(op) else { return Ok(()) };
    let _lock = lock()?;
    let mut c = load(&key, &file).unwrap_or(Claim { key, holders: Vec::new() });
    if c.holders.iter().any(|h| h == lab) {
        return Ok(());
    }
    c.holders.push(lab.to_string());
    save(&file, &c)
}

/// After the kernel answered `op`: taken, the route or rule is lab `lab`'s alone (whoever
/// held an equal one before lost it, or the add would have been refused); refused, `lab`
/// holds nothing by it. Best effort: a claim left wider errs towards what it was before.
pub fn settle(lab: &str, op: &Op, taken: bool) {
    let Some((key, file)) = key_of(op) else { return };
    let Ok(_lock) = lock() else { return };
    let Some(mut c) = load(&key, &file) else { return };
    if taken {
        c.holders = vec![lab.to_string()];
    } else {
        c.holders.retain(|h| h != lab);
    }
    drop_or_save(&file, &c);
}

/// Whether lab `lab` holds the route or rule `op` added.
pub fn vouches(lab: &str, op: &Op) -> bool {
    let Some((key, file)) = key_of(op) else { return false };
    load(&key, &file).is_some_and(|c| c.holders.iter().any(|h| h == lab))
}

/// Drops lab `lab` from every claim (its journal is going).
pub fn forget(lab: &str) {
    journal::forget_holder(&dir(), lab);
}
