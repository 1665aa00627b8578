//! `nslab sandbox [-- CMD...]`: a throwaway host to experiment in, and what tests use to
//! look at a lab with independent tools (`ip -j`, `iptables -S`) while it exists.

use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use super::{Failed, fail};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The command to run inside the sandbox (default: $SHELL)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The command, for the signal handler.
static COMMAND: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(sig: libc::c_int) {
    let pid = COMMAND.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; the pid is our child's, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    }
}

extern "C" fn ignore(_: libc::c_int) {}

pub fn run(a: Args) -> Result<(), Failed> {
    crate::lab::sandbox::enter().map_err(fail)?;
    let argv = if a.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        a.command
    };
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
        .map_err(|e| fail(crate::net::NetError::new(format!("cannot run {}: {e}", argv[0]))))?;
    let pid = child.id() as i32;
    COMMAND.store(pid, Ordering::Relaxed);
    // nslab is PID 1 of the sandbox: it passes SIGTERM and SIGHUP on to the command (as
    // init it would not even die of them). Ctrl-C reaches the command from the terminal
    // already, and is nslab's to ignore, as a shell ignores it while a command runs.
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let pass = SigAction::new(SigHandler::Handler(pass_on), SaFlags::SA_RESTART, SigSet::empty());
    let none = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handlers call kill(2) with a pid read from an atomic, or nothing.
    unsafe {
        let _ = sigaction(Signal::SIGTERM, &pass);
        let _ = sigaction(Signal::SIGHUP, &pass);
        let _ = sigaction(Signal::SIGINT, &none);
    }
    // As PID 1, nslab also inherits every orphan in the sandbox: reap them all until the
    // command itself ends. Then the kernel kills whatever still runs in the sandbox.
    loop {
        let mut status = 0;
        // SAFETY: waitpid(-1) fills `status`.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            return match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => Ok(()),
                (true, c) => Err(Failed(c.clamp(1, 255) as u8)),
                (false, _) => Err(Failed((128 + libc::WTERMSIG(status)).clamp(1, 255) as u8)),
            };
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(Failed(1));
        }
    }
}
