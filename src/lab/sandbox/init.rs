//! The sandbox's PID namespace. `unshare(CLONE_NEWPID)` puts only the caller's *children*
//! in the new namespace, so [`fork_init`] forks: the child becomes its PID 1 and goes on as
//! nslab; the parent stays outside, relays signals to it and exits with its status. When
//! PID 1 exits, the kernel kills every other process in the namespace (pid_namespaces(7)):
//! nothing started in a sandbox outlives it, `setsid` or not.
//!
//! PID 1 is special: a signal whose action is the default is dropped unless it is SIGKILL
//! or SIGSTOP from an ancestor namespace (kernel/signal.c, `sig_task_ignored`). So the
//! child installs [`end_on_signal`] until the command installs its own handlers, and code
//! that ends itself by re-raising a signal must `_exit` when it is PID 1.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::net::{NetError, NetResult};

/// The child the parent waits for, for its signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// The signals that end (or, for a run, stop and roll back) nslab.
const RELAYED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

extern "C" fn relay(sig: libc::c_int) {
    let child = CHILD.load(Ordering::Relaxed);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe; the child is ours and not yet reaped.
        unsafe { libc::kill(child, sig) };
    }
}

extern "C" fn end(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// Ends the process on SIGINT, SIGTERM and SIGHUP as their default would for any process
/// but PID 1 (exit status 128 + the signal).
fn end_on_signal() {
    let a = SigAction::new(SigHandler::Handler(end), SaFlags::empty(), SigSet::empty());
    for sig in RELAYED {
        // SAFETY: the handler only calls _exit.
        unsafe {
            let _ = sigaction(sig, &a);
        }
    }
}

/// Forks after `unshare(CLONE_NEWPID)`. Returns in the child (PID 1 of the new namespace);
/// the parent never returns: it waits for the child and exits as it did. Must be called
/// while the process has a single thread.
pub(crate) fn fork_init() -> NetResult<()> {
    // The child must not outlive the parent (`kill -9` of the nslab the user started): it
    // asks for SIGKILL when the parent dies, and this pipe tells it whether the parent died
    // before it asked (the write end closes with the parent).
    let (read, write) = nix::unistd::pipe()
        .map_err(|e| NetError::new(format!("cannot create the sandbox: pipe: {}", e.desc())))?;
    // SAFETY: single-threaded (see above), so the child may do anything after fork.
    match unsafe { fork() } {
        Err(e) => Err(NetError::new(format!("cannot create the sandbox: fork: {}", e.desc()))
            .with_errno(e as i32)),
        Ok(ForkResult::Child) => {
            drop(write);
            end_on_signal();
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
            let mut fds = [libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&read),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: one valid pollfd; timeout 0 only looks.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
            if n > 0 && fds[0].revents & libc::POLLHUP != 0 {
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(1) };
            }
            drop(read);
            Ok(())
        }
        Ok(ForkResult::Parent { child }) => {
            drop(read);
            wait_and_exit(child, write)
        }
    }
}

fn wait_and_exit(child: Pid, _alive: std::os::fd::OwnedFd) -> ! {
    CHILD.store(child.as_raw(), Ordering::Relaxed);
    let a = SigAction::new(SigHandler::Handler(relay), SaFlags::SA_RESTART, SigSet::empty());
    for sig in RELAYED {
        // SAFETY: the handler only calls kill(2) with a pid read from an atomic.
        unsafe {
            let _ = sigaction(sig, &a);
        }
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                // Die the same way, so the caller sees what happened to the sandbox.
                // SAFETY: plain signal(2)/raise(3) on this process.
                unsafe {
                    libc::signal(sig as libc::c_int, libc::SIG_DFL);
                    libc::raise(sig as libc::c_int);
                }
                std::process::exit(128 + sig as i32);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(1),
        }
    }
}
