//! `nslab destroy`: a lab undone from its journal, refused while another nslab process
//! builds or holds it.

use super::{journal, teardown};
use crate::net::NetError;
use crate::net::op::Op;

/// The refusal for touching lab `lab` while process `pid` runs it (EBUSY); each caller adds
/// the help that fits what was asked.
pub(crate) fn lab_busy(lab: &str, pid: u32) -> NetError {
    let who = match pid {
        0 => "another nslab process".to_string(),
        p => format!("process {p}"),
    };
    if journal::being_destroyed(lab) {
        // The pid is the destroy's: `kill PID` would not roll back any run (issue 14).
        return NetError::new(format!("lab {lab} is being destroyed by {who}"))
            .with_errno(libc::EBUSY)
            .with_help("wait for that destroy to end, then try again");
    }
    NetError::new(format!("lab {lab} is being run by {who}")).with_errno(libc::EBUSY)
}

/// [`lab_busy`] with `help` for a lab being run (a destroy in progress brings its own).
pub(crate) fn lab_busy_help(lab: &str, pid: u32, help: String) -> NetError {
    let e = lab_busy(lab, pid);
    if e.help.is_some() { e } else { e.with_help(help) }
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
        return vec![lab_busy_help(
            lab,
            pid,
            format!(
                "stop that run first (Ctrl-C rolls it back, `kill {pid}` too); `nslab destroy --force {lab}` removes the lab under it"
            ),
        )];
    }
    if force
        && let Some(pid) = journal::running_pid(lab)
        && pid != 0
        && !journal::being_destroyed(lab)
    {
        // A run going on under a forced destroy kept writing a journal that no longer
        // existed, said "lab is up" and leaked netns, links and a rule (issue 14): it is
        // stopped first, and rolls its lab back itself.
        stop_holder(lab, pid);
        if !journal::exists(lab) {
            return vec![];
        }
    }
    // Held until the journal is gone: a REPL reattaching meanwhile would go on writing to a
    // journal about to be removed. (With --force the holder is ignored, as asked.)
    let _lock = journal::lock_for_destroy(lab);
    let mut ended = None;
    if _lock.is_some()
        && let Some(mut meta) = journal::read_meta(lab)
    {
        ended = meta.ended;
        // While this destroy holds the lab, `ls` and a second destroy name this process,
        // not the run that ended long ago (whose pid may be someone else's by now).
        meta.pid = std::process::id();
        meta.destroying = true;
        let _ = journal::write_meta(&meta);
    }
    if _lock.is_none() && !force && journal::exists(lab) {
        let pid = journal::running_pid(lab).unwrap_or(0);
        return vec![lab_busy_help(
            lab,
            pid,
            format!("stop that run first; `nslab destroy --force {lab}` removes the lab under it"),
        )];
    }
    // A journal that cannot be read at all (a directory, no permission) is damage too: what
    // the lab made is then found by its marks alone.
    let (ops, mut damage, last_seq) = match journal::read_all(lab) {
        Ok(c) => (c.ops, c.damage, c.last_seq),
        Err(e) if journal::lab_dir(lab).exists() => (vec![], vec![e.message], 0),
        Err(e) => return vec![e],
    };
    let kernel = match crate::net::Kernel::new(None) {
        Ok(k) => k,
        Err(e) => return vec![e],
    };
    // Only a journal that names an iptables Op (written before iptables runs), or one that
    // lost lines, can have left an orphan: the scan of every process's command line cost
    // lab(100)'s destroy 0.6 of its 3.7 ms before the first unmount (`strace`).
    let cut_short = ended.is_some_and(|e| e > last_seq);
    if !damage.is_empty() || ops.is_empty() || cut_short || ops.iter().any(Op::runs_iptables) {
        wait_for_orphans(lab);
    }
    let undone = teardown::teardown(&kernel, lab, &ops);
    let mut errors = undone.errors;
    // What the journal lost (damaged lines, a journal cut short or emptied), found again by
    // the lab's marks; rules only when the journal says it lost something (one iptables
    // run per namespace), links unless the journal ends where the process that wrote it
    // said it ended (a dump after the teardown waits for the kernel's netns worker:
    // 40-60 ms in lab(200) and lab(1000)).
    if let Some(e) = ended.filter(|&e| e > last_seq) {
        damage.push(format!(
            "it ends at operation {last_seq}, but the process that wrote it ended at {e}"
        ));
    }
    let lost = !damage.is_empty() || ops.is_empty();
    // Longer than the mark says: written on by a process that was killed (a REPL
    // reattached), so no damage, but nothing vouches for its end.
    let whole = !lost && ended == Some(last_seq) && !undone.stale;
    let swept = super::sweep::sweep(&kernel, lab, lost, !whole, &undone.cleared);
    errors.extend(swept.errors);
    // Marks the journal did not name are damage too: a journal cut short (or emptied)
    // reads as intact.
    let incomplete = !damage.is_empty() || !swept.removed.is_empty();
    let clean = errors.is_empty();
    if clean && incomplete {
        errors.push(damaged(lab, &damage, &swept.removed));
    }
    // What the journal names but the kernel does not show as the lab's was left on
    // purpose: said, never "destroyed"; the journal goes (another destroy would only leave
    // it again), as with a damaged one.
    if !undone.left.is_empty() {
        errors.push(teardown::left_behind(lab, &undone.left));
    }
    if (clean || incomplete)
        && let Err(e) = journal::remove(lab)
    {
        errors.push(e);
    }
    errors
}

/// Stops process `pid`, which holds lab `lab`'s journal lock: SIGTERM (a run rolls back, a
/// REPL leaves), then SIGKILL if it still holds the lab after 10 s; returns once the lock
/// is free (or after 2 s more).
fn stop_holder(lab: &str, pid: u32) {
    use std::time::{Duration, Instant};
    let wait = |limit: Duration| {
        let end = Instant::now() + limit;
        while journal::running_pid(lab) == Some(pid) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        journal::running_pid(lab) != Some(pid)
    };
    // SAFETY: kill(2) on the process that holds the lab's journal lock (the lock is held, so
    // that process lives and its pid is not someone else's).
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    if !wait(Duration::from_secs(10)) {
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        wait(Duration::from_secs(2));
    }
}

/// Waits (at most 5 s) for `iptables` processes still adding or deleting one of lab `lab`'s
/// rules: a run killed (-9) while iptables ran leaves it an orphan, which added its rule
/// after destroy had finished (issue 14). Found by their arguments: the lab's rules carry
/// the comment `nslab:LAB`.
fn wait_for_orphans(lab: &str) {
    let tag = super::teardown::owner_tag(lab);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !iptables_with(&tag).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Pids of processes running `iptables` (any spelling: a path, `ip6tables`, `-nft`, a
/// wrapper script) with `tag` as one of their arguments.
fn iptables_with(tag: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let is_ipt = args.iter().take(2).any(|a| {
                let base = a.rsplit(|b| *b == b'/').next().unwrap_or(a);
                base.starts_with(b"iptables") || base.starts_with(b"ip6tables")
            });
            is_ipt && args.contains(&tag.as_bytes())
        })
        .collect()
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
