//! A qdisc a lab puts on a link it did not make is put back at teardown, from the journal's
//! `tc_set` line. The kernel keeps no mark of who set a qdisc (and none at all on the
//! default one it attaches by itself), so a line added to a journal by hand could make
//! destroy install its "old" qdisc on anyone's link (issue 14's rule: what outlives the lab
//! goes only on evidence beyond the journal). Each such change is therefore claimed first,
//! under `/run/nslab/.tc/`: the labs that changed that link's qdisc, and the link's ifindex
//! then. Teardown puts a qdisc back only for a lab the claim names, while the link is the one
//! it was; the claim goes with the lab's journal.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal;
use crate::net::NetResult;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    /// The link's ifindex when the labs changed its qdisc: a link deleted and made again
    /// under its name is another link.
    ifindex: u32,
    holders: Vec<String>,
}

fn dir() -> PathBuf {
    PathBuf::from(journal::STATE_DIR).join(".tc")
}

fn path(ns: Option<&str>, dev: &str) -> PathBuf {
    journal::claim_file(&dir(), ns, dev)
}

/// Holds the claims lock until dropped: two labs changing one link's qdisc at once keep
/// each other's names.
fn lock() -> NetResult<File> {
    journal::lock_dir(&dir())
}

fn load(ns: Option<&str>, dev: &str) -> Option<Claim> {
    load_file(&path(ns, dev))
}

fn load_file(p: &Path) -> Option<Claim> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Claims the qdisc of `dev` (ifindex `ifindex`) in `ns` for lab `lab`, before the lab
/// journals its change (a crash in between leaves a claim that names no line: harmless).
pub fn claim(lab: &str, ns: Option<&str>, dev: &str, ifindex: u32) -> NetResult<()> {
    let _lock = lock()?;
    let mut c = load(ns, dev).filter(|c| c.ifindex == ifindex).unwrap_or_default();
    c.ifindex = ifindex;
    c.holders.retain(|h| journal::exists(h));
    if !c.holders.iter().any(|h| h == lab) {
        c.holders.push(lab.to_string());
    }
    std::fs::write(path(ns, dev), serde_json::to_vec(&c).expect("claims serialise"))
        .map_err(|e| journal::claims_unusable(&dir(), e))
}

/// Whether lab `lab` claimed the qdisc of `dev` in `ns`, and `dev` is still that link
/// (`ifindex`: its index now).
pub fn vouches(lab: &str, ns: Option<&str>, dev: &str, ifindex: u32) -> bool {
    load(ns, dev).is_some_and(|c| c.ifindex == ifindex && c.holders.iter().any(|h| h == lab))
}

/// Drops lab `lab` from every claim (its journal is going): a later lab of the same name
/// inherits nothing.
pub fn forget(lab: &str) {
    journal::forget_holder(&dir(), lab);
}
