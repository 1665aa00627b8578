//! A command run inside a netns (`ip netns exec NAME CMD`).

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
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
    /// The command's process group, when something it started still runs in it after the
    /// command exited (`sh -c "server &"`): the lab stops it when it goes.
    pub background: Option<i32>,
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
/// `started` is called with the command's process group id as soon as it runs, before
/// nslab waits on it: the lab journals it there, so that a `kill -9` of nslab while the
/// command runs does not leave it behind for good (destroy stops it). An error from
/// `started` kills the command and is returned.
pub fn exec_watched(
    ns: Option<&str>,
    argv: Vec<String>,
    limits: ExecLimits,
    started: &mut dyn FnMut(i32) -> NetResult<()>,
) -> NetResult<ExecOutput> {
    let Some(prog) = argv.first().cloned() else {
        return Err(NetError::new("empty command")
            .with_help("pass a string like \"ip -br addr\" or an array of arguments"));
    };
    let where_ = place(ns);
    let view = ns.map(NetnsView::new);
    let child = netns::run_in(ns, move || {
        let mut cmd = Command::new(&argv[0]);
        if let Some(view) = view {
            // SAFETY: `NetnsView::enter` makes only system calls (no allocation, no lock),
            // which is what may run between fork and exec.
            unsafe { cmd.pre_exec(move || view.enter()) };
        }
        cmd.args(&argv[1..])
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
        let help = if e.kind() == std::io::ErrorKind::NotFound || ns.is_none() {
            "is the program installed and on PATH?"
        } else {
            "is the program installed and on PATH? (the command also gets a fresh /sys of the netns, like `ip netns exec`, which needs CAP_SYS_ADMIN)"
        };
        NetError::new(format!("cannot run {prog} in {where_}: {e}")).with_help(help)
    })?;
    // Drained on threads of their own: a command that fills one pipe while nslab waits
    // would otherwise never finish.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let pgid = child.id() as libc::pid_t;
    if let Err(e) = started(pgid) {
        kill(&mut child, pgid);
        return Err(e);
    }
    let started = Instant::now();
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    loop {
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(s)) => exited = Some((s, Instant::now())),
                Ok(None) => {}
                Err(e) => return Err(NetError::from(e)),
            }
        }
        if let Some((status, at)) = exited {
            // The command is done once its output is; something it left running in the
            // background (`sh -c "server &"`) may hold the pipes open for good: after a
            // moment its output so far is the answer, and it keeps running.
            if stdout.done() && stderr.done() || at.elapsed() >= LINGER {
                // SAFETY: signal 0 only asks whether the group has members; while it has,
                // its id cannot have been given to another group.
                let alive = unsafe { libc::kill(-pgid, 0) } == 0;
                return Ok(ExecOutput {
                    status: status.code().unwrap_or(-1),
                    stdout: stdout.take(),
                    stderr: stderr.take(),
                    background: alive.then_some(pgid),
                });
            }
            // Exited: the timeout is about the command, which made it in time.
            std::thread::sleep(POLL);
            continue;
        }
        if limits.stop.is_some_and(|stop| stop()) {
            kill(&mut child, pgid);
            return Err(NetError::new(format!("interrupted while {prog} ran in {where_}"))
                .with_errno(libc::EINTR)
                .with_help(format!("{prog} was killed; the run stops here")));
        }
        if let Some(t) = limits.timeout
            && started.elapsed() >= t
        {
            kill(&mut child, pgid);
            return Err(NetError::new(format!(
                "{prog} in {where_} did not finish within {} ms",
                t.as_millis()
            ))
            .with_errno(libc::ETIMEDOUT)
            .with_help("it was killed; raise timeout_ms, or catch the error with try/catch"));
        }
        std::thread::sleep(POLL);
    }
}

/// What `ip netns exec NAME` gives a command besides the netns: a mount namespace of its
/// own (a slave of nslab's, so nothing it mounts is seen outside) with a sysfs of the netns
/// on /sys (`/sys/class/net` lists the netns's links, not the host's) and the files of
/// `/etc/netns/NAME/` bind-mounted over those of `/etc`. Everything that allocates is done
/// here, before the fork; [`NetnsView::enter`] only makes system calls.
struct NetnsView {
    /// The netns's name, which sysfs shows as the mount's source (`ip netns exec` does so).
    name: CString,
    sys_flags: libc::c_ulong,
    /// (source, target) of each `/etc/netns/NAME/FILE` → `/etc/FILE` bind mount.
    etc: Vec<(CString, CString)>,
}

impl NetnsView {
    fn new(name: &str) -> NetnsView {
        let ro = nix::sys::statvfs::statvfs("/sys")
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        let mut sys_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if ro {
            sys_flags |= libc::MS_RDONLY;
        }
        let cstr = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).ok();
        let etc = std::fs::read_dir(std::path::Path::new("/etc/netns").join(name))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        Some((
                            cstr(&e.path())?,
                            cstr(&std::path::Path::new("/etc").join(e.file_name()))?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        NetnsView { name: CString::new(name).unwrap_or_default(), sys_flags, etc }
    }

    /// In the child, between fork and exec.
    fn enter(&self) -> std::io::Result<()> {
        let check =
            |r: libc::c_int| if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY: plain system calls on valid C strings that live as long as `self`.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            // Unlike `ip netns exec` (which makes every mount a slave), only the mounts
            // this covers stop passing mounts back: `/run/netns` stays shared, so a
            // command that runs `ip netns add` (a recipe replacing a netns by hand) makes
            // a netns nslab sees. `/` and `/etc` hold the /etc/netns binds; /sys the sysfs.
            let slave = |path: &std::ffi::CStr, flags: libc::c_ulong| {
                libc::mount(null, path.as_ptr(), null, libc::MS_SLAVE | flags, null.cast())
            };
            check(slave(c"/", 0))?;
            slave(c"/sys", libc::MS_REC);
            // Mounted over the /sys there is (a user namespace may not unmount what it
            // inherited): sysfs shows the netns of the process that mounts it.
            check(libc::mount(
                self.name.as_ptr(),
                c"/sys".as_ptr(),
                c"sysfs".as_ptr(),
                self.sys_flags,
                null.cast(),
            ))?;
            if !self.etc.is_empty() {
                slave(c"/etc", 0);
            }
            for (src, dst) in &self.etc {
                // Like `ip netns exec`: a file /etc lacks is skipped. A file that is a
                // mount of its own (a container's /etc/resolv.conf) must not pass it on.
                slave(dst, 0);
                libc::mount(src.as_ptr(), dst.as_ptr(), null, libc::MS_BIND, null.cast());
            }
        }
        Ok(())
    }
}

/// How long the output may stay open after the command itself has exited.
const LINGER: Duration = Duration::from_millis(500);

/// Kills the command's process group (its id is the PID of the child nslab started, and
/// stays taken while any member lives) and reaps the child if it is still there.
fn kill(child: &mut Child, pgid: libc::pid_t) {
    // SAFETY: kill(2) on the process group this module created for its child.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Most bytes of each output stream (stdout, stderr) a command hands back: the last ones,
/// after a line saying how much was cut. `head -c 3000000000 /dev/zero` grew nslab to
/// gigabytes (issue 14); a recipe's strings are bounded too (`engine::MAX_STRING`).
pub const MAX_OUTPUT: usize = 1 << 20;

/// What a pipe gave so far: its last [`MAX_OUTPUT`] bytes, and how many came before them.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    cut: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trimmed at twice the cap, so that a long stream costs amortised O(1) per byte.
        if self.bytes.len() > 2 * MAX_OUTPUT {
            let extra = self.bytes.len() - MAX_OUTPUT;
            self.bytes.drain(..extra);
            self.cut += extra as u64;
        }
    }

    fn into_string(mut self) -> String {
        if self.bytes.len() > MAX_OUTPUT {
            let extra = self.bytes.len() - MAX_OUTPUT;
            self.bytes.drain(..extra);
            self.cut += extra as u64;
        }
        let text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.cut == 0 {
            return text;
        }
        format!(
            "[nslab: output cut: the first {} bytes are not kept, only the last {}]\n{text}",
            self.cut,
            self.bytes.len()
        )
    }
}

/// One output pipe, read to its end on a thread of its own into a shared buffer.
struct Drain {
    /// None once taken: what a background process writes afterwards is read and dropped
    /// (it must not fill nslab's memory, nor get SIGPIPE for writing).
    buf: std::sync::Arc<std::sync::Mutex<Option<Tail>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    fn done(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// What was read so far (all of it once `done`, up to [`MAX_OUTPUT`]); later output is
    /// dropped.
    fn take(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        buf.into_string()
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Drain {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Some(Tail::default())));
    let thread = r.map(|mut r| {
        let buf = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Some(b) = buf.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                            b.push(&chunk[..n]);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
    });
    Drain { buf, thread }
}

/// (pid, pgrp, start time) of every process, from /proc.
fn processes() -> Vec<(i32, i32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name (which may hold spaces): state ppid pgrp ... and the
            // start time, field 22 of the whole line, 20th after the name.
            let rest: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            Some((pid, rest.get(2)?.parse().ok()?, rest.get(19)?.parse().ok()?))
        })
        .collect()
}

/// The members of process group `pgid` now, as (pid, start time): what tells them apart
/// from processes that get the same numbers later.
pub fn group_members(pgid: i32) -> Vec<(i32, u64)> {
    processes().into_iter().filter(|p| p.1 == pgid).map(|(pid, _, start)| (pid, start)).collect()
}

/// Whether a recorded process group is still alive: one of its `members` (pid, start time)
/// still lives.
pub fn group_lives(members: &[(i32, u64)]) -> bool {
    processes().iter().any(|(pid, _, start)| members.contains(&(*pid, *start)))
}

/// Kills process group `pgid` (see [`ExecOutput::background`]) if it is still the one
/// recorded: one of `members` (pid, start time) still lives. Only its members in the netns
/// with inode `net_ino` are killed. Returns how many.
pub fn kill_group_in(pgid: i32, members: &[(i32, u64)], net_ino: u64) -> usize {
    use std::os::unix::fs::MetadataExt;
    let now = processes();
    // While one member lives the group id cannot have gone to another group.
    let still_ours = now.iter().any(|(pid, _, start)| members.contains(&(*pid, *start)));
    if !still_ours {
        return 0;
    }
    let mut killed = Vec::new();
    for (pid, pgrp, start) in now {
        if pgrp != pgid {
            continue;
        }
        let in_ns =
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == net_ino);
        // SAFETY: kill(2) on a member of the recorded group, in the netns it ran in.
        if in_ns && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed.push((pid, start));
        }
    }
    // kill(2) only queues the signal: on a busy machine the process may still run a moment
    // later. Wait (briefly) until each one is dead — a zombie or gone — so that destroy is
    // done when it returns.
    let deadline = Instant::now() + Duration::from_secs(1);
    while killed.iter().any(|&(pid, start)| running(pid, start)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.len()
}

/// Whether process `pid`, started at `start`, still runs (is not a zombie).
fn running(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some((_, rest)) = stat.rsplit_once(") ") else { return false };
    let fields: Vec<&str> = rest.split(' ').collect();
    fields.first().is_some_and(|s| *s != "Z" && *s != "X")
        && fields.get(19).and_then(|t| t.parse::<u64>().ok()) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_its_tail_and_says_it_was_cut() {
        let mut t = Tail::default();
        for i in 0..(3 * MAX_OUTPUT / 1000) {
            t.push(format!("{:0999}\n", i).as_bytes());
        }
        let total = (3 * MAX_OUTPUT / 1000) * 1000;
        let s = t.into_string();
        let (note, rest) = s.split_once('\n').unwrap();
        assert_eq!(rest.len(), MAX_OUTPUT);
        assert_eq!(
            note,
            format!(
                "[nslab: output cut: the first {} bytes are not kept, only the last {MAX_OUTPUT}]",
                total - MAX_OUTPUT
            )
        );
        assert!(rest.ends_with(&format!("{:0999}\n", 3 * MAX_OUTPUT / 1000 - 1)));
        let mut t = Tail::default();
        t.push(b"hi");
        assert_eq!(t.into_string(), "hi");
    }
}
