//! Step 3 of [`super::teardown`]: the lab's links outside its namespaces, found (asked
//! for by name or from one dump), their bridges brought down before the unmounts, and
//! deleted once the kernel has reaped the veth ends whose peers went with the namespaces.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Owned, OwnedLink};
use crate::net::info::LinkInfo;
use crate::net::{Kernel, NetError, Ns, Op};

/// How long the wait for the kernel's netns worker may see no veth end go before the group
/// delete takes the rest (a peer moved out of the lab's netns by hand never goes on its own).
const REAP_PATIENCE: Duration = Duration::from_secs(2);

/// Waits until the kernel has deleted `names` in `ns`, the veth ends whose peers were in the
/// namespaces step 2 unmounted, or until it stops making progress.
///
/// Why not delete them at once with the group: the kernel's netns worker deletes every
/// device of the dying namespaces in one batch and frees them on its own time, while an
/// RTM_DELLINK returns only after its devices are freed (`netdev_run_todo` waits for their
/// last references). Measured on lab(200), built by nslab and torn down in one run
/// (`benches/run.sh`, 4 reps each): the group delete right after the unmounts took 192 ms
/// until every `vI-br` was gone; unmount, delete `br0`, let the kernel reap the rest (the C
/// floor's teardown) 127 ms; deleting the bridge first, then the group, 219 ms.
fn wait_reaped(kernel: &Kernel, ns: Option<&str>, names: &[&str]) -> bool {
    let mut progress = Instant::now();
    let mut rest = names.to_vec();
    // One name at a time: the batch takes them all at once, so checking each name in every
    // round would cost N ioctls a millisecond for nothing.
    while let Some(name) = rest.last() {
        if kernel.link_index(ns, name).is_err() {
            rest.pop();
            progress = Instant::now();
        } else if progress.elapsed() > REAP_PATIENCE {
            return false;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    true
}

/// The lab's links in one netns outside its namespaces, as the kernel shows them.
pub(super) struct Deletion {
    /// Every link of the lab's group there is this lab's (see [`Owned::is_mine`]): one
    /// RTM_DELLINK for the whole group may go. None also when no dump was made.
    group: Option<u32>,
    /// The lab's links there (never a foreign link, even one that shares the group number).
    mine: Vec<String>,
    /// Whether `mine` came from a dump of the whole netns (else: asked one by one).
    dumped: bool,
    /// See [`super::Undone::stale`].
    pub(super) stale: bool,
    /// The bridges among `mine`: they go down before the lab's namespaces are unmounted.
    bridges: Vec<String>,
}

/// At most this many links the kernel will not reap are asked for one by one; more, and one
/// dump is cheaper. lab(N) has one (its bridge), and a dump of lab(1000)'s root netns took
/// 120 ms: the kernel renders each veth end with its peer's netns id, looked up in a list
/// of every netns it has given one (`idr_for_each` in `__peernet2id`).
const ASK_ONE_BY_ONE: usize = 8;

pub(super) fn lab_links(
    kernel: &Kernel,
    ns: Option<&str>,
    lab: &str,
    owned: &Owned,
    reaped: &HashSet<&str>,
) -> Result<Deletion, NetError> {
    let kept: Vec<&OwnedLink> = owned
        .links
        .iter()
        .filter(|l| l.ns.as_deref() == ns && !reaped.contains(l.name.as_str()))
        .collect();
    if kept.len() > ASK_ONE_BY_ONE {
        let mut d = dump_lab_links(kernel, ns, lab, owned)?;
        let mine: HashSet<&str> = d.mine.iter().map(String::as_str).collect();
        d.stale |= kept.iter().any(|l| !mine.contains(l.name.as_str()));
        return Ok(d);
    }
    let (mut mine, mut stale, mut bridges) = (Vec::new(), false, Vec::new());
    for l in kept {
        match kernel.link(ns, &l.name) {
            Ok(Some(info)) if owned.is_mine(ns, &info, lab) => {
                if !mine.contains(&l.name) {
                    mine.push(l.name.clone());
                    if info.kind == "bridge" {
                        bridges.push(l.name.clone());
                    }
                }
            }
            // Gone, renamed, or someone else's under its name: the journal's view is stale.
            Ok(_) => stale = true,
            Err(e) if e.is_gone() => stale = true,
            Err(e) => return Err(e),
        }
    }
    // The reaped ends are the lab's by the journal; should one outlive its netns (its peer
    // moved out of the lab), the fallback dumps before it deletes anything.
    mine.extend(reaped.iter().map(|n| n.to_string()));
    Ok(Deletion { group: None, mine, dumped: false, stale, bridges })
}

/// [`lab_links`] from one dump of `ns`.
fn dump_lab_links(
    kernel: &Kernel,
    ns: Option<&str>,
    lab: &str,
    owned: &Owned,
) -> Result<Deletion, NetError> {
    let group = crate::lab::journal::group_of(lab);
    let links = match kernel.links(ns) {
        Ok(l) => l,
        Err(e) if e.is_gone() => {
            return Ok(Deletion {
                group: None,
                mine: Vec::new(),
                dumped: true,
                stale: true,
                bridges: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let in_group: Vec<&LinkInfo> = links.iter().filter(|l| l.group == group).collect();
    let all_mine = in_group.iter().all(|l| owned.is_mine(ns, l, lab));
    let mine: Vec<&LinkInfo> =
        in_group.iter().copied().filter(|l| owned.is_mine(ns, l, lab)).collect();
    Ok(Deletion {
        stale: !all_mine,
        group: (all_mine && !in_group.is_empty()).then_some(group),
        bridges: mine.iter().filter(|l| l.kind == "bridge").map(|l| l.name.clone()).collect(),
        mine: mine.into_iter().map(|l| l.name.clone()).collect(),
        dumped: true,
    })
}

/// Deletes the lab's links in `ns` (see step 3 of [`super::teardown`]): those the kernel does not
/// reap one by one, then, once the reaped ones are gone or the kernel stops making
/// progress, whatever is left: by one group delete when a dump shows the whole group is the
/// lab's. True when such a dump showed the whole group as the lab's and it is gone.
pub(super) fn delete_links(
    kernel: &Kernel,
    ns: Option<&str>,
    lab: &str,
    owned: &Owned,
    d: Deletion,
    reaped: &HashSet<&str>,
) -> Result<bool, NetError> {
    let mut first_err = None;
    let mut del = |dev: &str| {
        if let Err(e) = kernel.apply(&Op::LinkDel { ns: ns.map(str::to_string), dev: dev.into() })
            && !e.is_gone()
        {
            first_err.get_or_insert(e);
        }
    };
    let group_del = |d: &Deletion| match kernel
        .apply(&Op::LinkGroupDel { ns: ns.map(str::to_string), group: d.group? })
    {
        Err(e) if e.is_gone() => Some(Ok(())),
        r => Some(r),
    };
    let waiting: Vec<&str> =
        d.mine.iter().map(String::as_str).filter(|n| reaped.contains(n)).collect();
    if waiting.is_empty()
        && let Some(r) = group_del(&d)
    {
        return r.map(|()| true);
    }
    d.mine.iter().filter(|n| !reaped.contains(n.as_str())).for_each(|n| del(n));
    let d = if wait_reaped(kernel, ns, &waiting) {
        d
    } else {
        // Asked one by one so far: whose links are still there is a dump's to say.
        let d = if d.dumped { d } else { dump_lab_links(kernel, ns, lab, owned)? };
        match group_del(&d) {
            Some(r) => r?,
            None => d.mine.iter().for_each(|n| del(n)),
        }
        d
    };
    first_err.map_or(Ok(d.group.is_some()), Err)
}

/// Brings the lab's bridges in `d` down (step 2b of [`super::teardown`]). Best effort: a
/// bridge that will not go down is still deleted in step 3, which reports what fails.
pub(super) fn bridges_down(kernel: &Kernel, ns: &Ns, d: &Deletion) {
    for dev in &d.bridges {
        let _ = kernel.apply(&Op::LinkDown { ns: ns.clone(), dev: dev.clone() });
    }
}
