//! `nslab destroy`: a lab undone from its journal, refused while another nslab process
//! builds or holds it.

use super::{journal, teardown};
use crate::net::NetError;

/// The refusal for touching lab `lab` while process `pid` runs it (EBUSY); each caller adds
/// the help that fits what was asked.
pub(crate) fn lab_busy(lab: &str, pid: u32) -> NetError {
    NetError::new(format!("lab {lab} is being run by process {pid}")).with_errno(libc::EBUSY)
}

/// Destroys lab `lab` from its journal. Returns every error met; the journal is removed only
/// when the teardown was complete. Refuses a lab that a live nslab process is still building
/// or holding (a REPL): it would go on adding to a lab that no longer exists.
pub(crate) fn destroy(lab: &str) -> Vec<crate::net::NetError> {
    destroy_with(lab, false)
}

/// [`destroy`]; with `force` even while another nslab process holds the lab.
pub(crate) fn destroy_with(lab: &str, force: bool) -> Vec<crate::net::NetError> {
    if !force && let Some(pid) = journal::running_pid(lab) {
        return vec![lab_busy(lab, pid).with_help(format!(
            "stop that run first (Ctrl-C rolls it back, `kill {pid}` too); `nslab destroy --force {lab}` removes the lab under it"
        ))];
    }
    // Held until the journal is gone: a REPL reattaching meanwhile would go on writing to a
    // journal about to be removed. (With --force the holder is ignored, as asked.)
    let _lock = journal::lock_for_destroy(lab);
    if _lock.is_some()
        && let Some(mut meta) = journal::read_meta(lab)
    {
        // While this destroy holds the lab, `ls` and a second destroy name this process,
        // not the run that ended long ago (whose pid may be someone else's by now).
        meta.pid = std::process::id();
        let _ = journal::write_meta(&meta);
    }
    if _lock.is_none() && !force && journal::exists(lab) {
        let pid = journal::running_pid(lab).unwrap_or(0);
        return vec![lab_busy(lab, pid).with_help(format!(
            "stop that run first; `nslab destroy --force {lab}` removes the lab under it"
        ))];
    }
    // A journal that cannot be read at all (a directory, no permission) is damage too: what
    // the lab made is then found by its marks alone.
    let (ops, damage) = match journal::read_all(lab) {
        Ok(c) => (c.ops, c.damage),
        Err(e) if journal::lab_dir(lab).exists() => (vec![], vec![e.message]),
        Err(e) => return vec![e],
    };
    let kernel = match crate::net::Kernel::new(None) {
        Ok(k) => k,
        Err(e) => return vec![e],
    };
    let mut errors = teardown::teardown(&kernel, lab, &ops);
    // What the journal lost (damaged lines, a journal cut short or emptied), found again by
    // the lab's marks; rules only when the journal says it lost something (one iptables
    // run per namespace).
    let swept = super::sweep::sweep(&kernel, lab, !damage.is_empty() || ops.is_empty());
    errors.extend(swept.errors);
    // Marks the journal did not name are damage too: a journal cut short (or emptied)
    // reads as intact.
    let incomplete = !damage.is_empty() || !swept.removed.is_empty();
    if errors.is_empty() && incomplete {
        errors.push(damaged(lab, &damage, &swept.removed));
    }
    if (errors.is_empty() || incomplete)
        && let Err(e) = journal::remove(lab)
    {
        errors.push(e);
    }
    errors
}

/// A destroy from a damaged journal is never reported as a plain success: what the damaged
/// lines described and carries no mark of the lab may still be there.
fn damaged(lab: &str, damage: &[String], removed: &[String]) -> NetError {
    let shown: Vec<&str> = damage.iter().take(3).map(String::as_str).collect();
    let more = match damage.len() {
        0 => "it reads as intact, but does not name everything the lab made: cut short?".into(),
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    let found = match removed.len() {
        0 => "nothing more was found by the lab's marks".to_string(),
        _ => format!("removed by the lab's marks: {}", removed.join(", ")),
    };
    NetError::new(format!(
        "the journal of lab {lab} was damaged ({}{more}); undid what its intact lines name, {found}",
        shown.join("; ")
    ))
    .with_errno(libc::EIO)
    .with_help("addresses, routes and sysctls the damaged lines described carry no mark and may remain: check `nslab show` and `nslab doctor`; the lab's journal is removed")
}

/// Stops what lab `lab`'s `netns::exec` commands left running in the background (see
/// `journal::Background`): at teardown, and when a sandbox ends, which those processes would
/// otherwise outlive (holding its network namespaces).
pub(crate) fn stop_backgrounds(lab: &str) {
    for bg in journal::backgrounds(lab) {
        crate::net::exec::kill_group_in(bg.pgid, &bg.members, bg.net_ino);
    }
}
