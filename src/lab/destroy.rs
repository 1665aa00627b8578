//! `nslab destroy`: a lab undone from its journal, refused while another nslab process
//! builds or holds it.

use super::{journal, teardown};
use crate::net::NetError;

/// The refusal for touching lab `lab` while process `pid` runs it (EBUSY); each caller adds
/// the help that fits what was asked.
pub fn lab_busy(lab: &str, pid: u32) -> NetError {
    NetError::new(format!("lab {lab} is being run by process {pid}")).with_errno(libc::EBUSY)
}

/// Destroys lab `lab` from its journal. Returns every error met; the journal is removed only
/// when the teardown was complete. Refuses a lab that a live nslab process is still building
/// or holding (a REPL): it would go on adding to a lab that no longer exists.
pub fn destroy(lab: &str) -> Vec<crate::net::NetError> {
    destroy_with(lab, false)
}

/// [`destroy`]; with `force` even while another nslab process holds the lab.
pub fn destroy_with(lab: &str, force: bool) -> Vec<crate::net::NetError> {
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
    let ops = match journal::read(lab) {
        Ok(ops) => ops,
        Err(e) => return vec![e],
    };
    let kernel = match crate::net::Kernel::new(None) {
        Ok(k) => k,
        Err(e) => return vec![e],
    };
    let mut errors = teardown::teardown(&kernel, lab, &ops);
    if errors.is_empty()
        && let Err(e) = journal::remove(lab)
    {
        errors.push(e);
    }
    errors
}

/// Stops what lab `lab`'s `netns::exec` commands left running in the background (see
/// `journal::Background`): at teardown, and when a sandbox ends, which those processes would
/// otherwise outlive (holding its network namespaces).
pub fn stop_backgrounds(lab: &str) {
    for bg in journal::backgrounds(lab) {
        crate::net::exec::kill_group_in(bg.pgid, &bg.members, bg.net_ino);
    }
}
