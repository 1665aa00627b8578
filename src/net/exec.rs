//! A command run inside a netns (`ip netns exec NAME CMD`).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{NetError, NetResult, place};
use super::netns;

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How long a command may run, and what stops it early.
#[derive(Clone, Copy, Default)]
pub struct ExecLimits {
    /// Kill the command after this long and fail (ETIMEDOUT).
    pub timeout: Option<Duration>,
    /// Polled while the command runs; true kills it and fails (EINTR). The kernel layer
    /// knows nothing of signals: the lab layer passes its interruption flag in here.
    pub stop: Option<fn() -> bool>,
}

/// How often a running command is checked on. A signal handler only sets a flag, so the
/// flag is polled; 20 ms is unnoticeable against a command's start-up and costs nothing.
const POLL: Duration = Duration::from_millis(20);

/// Runs `argv` to completion, or until `limits` stop it. The child is spawned from a thread
/// inside the netns, and a child process starts in the netns of the thread that spawns it.
pub fn exec(ns: Option<&str>, argv: Vec<String>, limits: ExecLimits) -> NetResult<ExecOutput> {
    let Some(prog) = argv.first().cloned() else {
        return Err(NetError::new("empty command")
            .with_help("pass a string like \"ip -br addr\" or an array of arguments"));
    };
    let where_ = place(ns);
    let child = netns::run_in(ns, move || {
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it also stops what it started
            // (`sh -c "sleep 30"`): killing only the shell would leave `sleep` holding the
            // output pipes open.
            .process_group(0)
            .spawn()
    })?;
    let mut child = child.map_err(|e| {
        NetError::new(format!("cannot run {prog} in {where_}: {e}"))
            .with_help("is the program installed and on PATH?")
    })?;
    // Drained on threads of their own: a command that fills one pipe while nslab waits
    // would otherwise never finish.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(NetError::from(e)),
        }
        if limits.stop.is_some_and(|stop| stop()) {
            kill(&mut child);
            return Err(NetError::new(format!("interrupted while {prog} ran in {where_}"))
                .with_errno(libc::EINTR)
                .with_help(format!("{prog} was killed; the run stops here")));
        }
        if let Some(t) = limits.timeout
            && started.elapsed() >= t
        {
            kill(&mut child);
            return Err(NetError::new(format!(
                "{prog} in {where_} did not finish within {} ms",
                t.as_millis()
            ))
            .with_errno(libc::ETIMEDOUT)
            .with_help("it was killed; raise timeout_ms, or catch the error with try/catch"));
        }
        std::thread::sleep(POLL);
    };
    Ok(ExecOutput {
        status: status.code().unwrap_or(-1),
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Kills the command's process group (its id is the PID of the child nslab started) and
/// reaps the child. The output threads are left to end when the pipes close.
fn kill(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the process group this function's caller created for its child,
    // which is not reaped yet, so its id cannot have been reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    let mut r = r?;
    Some(std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    }))
}

fn collect(h: Option<JoinHandle<Vec<u8>>>) -> String {
    let bytes = h.and_then(|h| h.join().ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
