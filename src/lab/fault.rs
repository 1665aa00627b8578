//! Fault injection for tests: `NSLAB_FAULT=SIGNAL:N` raises SIGNAL (`kill`, `int`, `term`) in
//! nslab itself right after the lab's Nth operation (1-based) was journaled and applied, so
//! that a test can crash or interrupt a run at every point of a small lab, deterministically.
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
