//! Lab lifecycle: the journal, sessions, rollback and destroy, and the sandbox.

pub mod backend;
pub mod destroy;
mod fault;
pub mod journal;
pub mod owned;
pub mod owner;
pub mod plan;
mod route_claims;
pub mod sandbox;
pub mod session;
pub mod sweep;
pub mod sysctl_claims;
mod tc_claims;
pub mod teardown;

use std::sync::atomic::AtomicBool;

pub use backend::Backend;
pub(crate) use destroy::{destroy, destroy_with, stop_backgrounds};
pub(crate) use session::Session;

/// Set by SIGINT/SIGTERM: the running recipe stops at its next operation and rolls back.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// SIGINT, SIGTERM and SIGHUP (the terminal closed) stop the running recipe at its next
/// operation (which then rolls back) instead of killing nslab half-way.
pub fn catch_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action =
        SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}
