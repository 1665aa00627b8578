//! Fault injection for tests: `NSLAB_FAULT=SIGNAL:N` raises SIGNAL (`kill`, `int`, `term`) in
//! nslab itself right after the lab's Nth operation (1-based) was journaled and applied, so
//! that a test can crash or interrupt a run at every point of a small lab, deterministically.
//! `NSLAB_FAULT=netns:K:STEP:ACTION` strikes inside the background thread that makes a run's
//! netns (`net::netns_background`), at the Kth netns it makes: STEP `recorded` (its identity
//! is on record, the bind mount not made yet) or `mounted` (mounted, the identity with the
//! mount not recorded yet); ACTION `kill` (SIGKILL) or `fail` (the netns cannot be made).
//! Unset (always, outside tests) it costs one environment lookup per process.

use std::sync::OnceLock;

fn plan() -> Option<(libc::c_int, usize)> {
    static PLAN: OnceLock<Option<(libc::c_int, usize)>> = OnceLock::new();
    *PLAN.get_or_init(|| {
        let v = std::env::var("NSLAB_FAULT").ok()?;
        let (sig, n) = v.split_once(':')?;
        let sig = match sig {
            "kill" => libc::SIGKILL,
            "int" => libc::SIGINT,
            "term" => libc::SIGTERM,
            _ => return None,
        };
        Some((sig, n.parse().ok()?))
    })
}

/// Called after the lab's `n`th operation (1-based).
pub fn after_op(n: usize) {
    if let Some((sig, at)) = plan()
        && at == n
    {
        // SAFETY: raise(3) on this process, as asked by the test that set NSLAB_FAULT.
        unsafe {
            libc::raise(sig);
        }
    }
}

/// Where, inside the making of one netns, a `netns:` fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsStep {
    /// Its identity is on record, the bind mount is not made yet.
    Recorded,
    /// It is mounted, its identity with the mount is not on record yet.
    Mounted,
}

/// `netns:K:STEP:ACTION`: (K, STEP, kill?).
fn parse_netns(v: &str) -> Option<(usize, NetnsStep, bool)> {
    let mut parts = v.strip_prefix("netns:")?.split(':');
    let k = parts.next()?.parse().ok()?;
    let step = match parts.next()? {
        "recorded" => NetnsStep::Recorded,
        "mounted" => NetnsStep::Mounted,
        _ => return None,
    };
    let kill = match parts.next()? {
        "kill" => true,
        "fail" => false,
        _ => return None,
    };
    parts.next().is_none().then_some((k, step, kill))
}

/// Called on the netns thread at `step` of the `k`th netns it makes (1-based).
pub fn in_netns(k: usize, step: NetnsStep) -> std::io::Result<()> {
    static PLAN: OnceLock<Option<(usize, NetnsStep, bool)>> = OnceLock::new();
    let plan = PLAN.get_or_init(|| parse_netns(&std::env::var("NSLAB_FAULT").ok()?));
    match *plan {
        Some((at, s, kill)) if at == k && s == step => {
            if kill {
                // SAFETY: raise(3) on this process, as asked by the test that set NSLAB_FAULT.
                unsafe {
                    libc::raise(libc::SIGKILL);
                }
            }
            Err(std::io::Error::other(format!("NSLAB_FAULT made it fail ({step:?})")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_faults_parse_whole_or_not_at_all() {
        assert_eq!(parse_netns("netns:3:mounted:kill"), Some((3, NetnsStep::Mounted, true)));
        assert_eq!(parse_netns("netns:1:recorded:fail"), Some((1, NetnsStep::Recorded, false)));
        assert_eq!(parse_netns("netns:1:recorded:fail:x"), None);
        assert_eq!(parse_netns("netns:x:recorded:fail"), None);
        assert_eq!(parse_netns("netns:1:later:kill"), None);
        assert_eq!(parse_netns("kill:3"), None);
    }
}
