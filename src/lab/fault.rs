//! A fault-injection hook for tests: `NSLAB_TEST_KILL_AFTER=N` makes nslab SIGKILL itself
//! right after the Nth Op it journaled and applied (counted per process), to test that
//! `nslab destroy` undoes what a killed run left half-done. Unset (always, outside tests), it
//! reads one environment variable once and does nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
static APPLIED: AtomicU64 = AtomicU64::new(0);

/// Called after every Op a session applied.
pub(crate) fn after_op() {
    let limit = LIMIT
        .get_or_init(|| std::env::var("NSLAB_TEST_KILL_AFTER").ok().and_then(|v| v.parse().ok()));
    let Some(limit) = limit else { return };
    if APPLIED.fetch_add(1, Ordering::Relaxed) + 1 == *limit {
        // SAFETY: kill(2) on our own pid has no memory effects.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}
