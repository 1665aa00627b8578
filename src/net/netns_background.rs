//! Named netns made on a background thread while the recipe goes on (`nslab run` only, see
//! `Kernel::set_defer_veth`).
//!
//! Making a netns is ~0.4 ms of kernel work (lab(200): 74 ms of a 229 ms build), and in
//! lab(N) the caller has nothing to wait for: what comes next in the recipe is held back
//! anyway (the veth into it, its address, its ups). So [`add`] makes the netns file at once
//! (a name that is taken fails at its call, as before) and leaves the rest to one long-lived
//! thread, which takes the requests in order: enter a new netns, open its netlink socket,
//! record its identity, bind it onto the file, record its identity again with the mount,
//! come back. Meanwhile the calling thread evaluates the recipe, writes the journal and
//! checks the next calls, work the C floor does not have. Measured: lab(200) in 228 ms
//! against 234 (10 interleaved builds of each binary, medians).
//!
//! Everything that opens a netns file waits here first ([`wait_for`]: `netns::open`,
//! `run_in`, `del`, the identity reads), so no caller ever sees a file without its netns.
//! What the thread made, or why it could not, is collected by [`finished`] (the kernel
//! executor, before anything else reaches the kernel), or one netns at a time by [`take`]:
//! the held-back veth pairs go into each netns as soon as it is there, while the thread
//! makes the next ones. The two threads contend for RTNL, so the overlap mostly hides
//! nslab's own work between requests: in an A/B of 6 interleaved lab(200) builds each,
//! nslab went from 226 to 195 ms, the C floor doing the same overlap (`floor-pipe`) from
//! 198 to 197 (7 reps in `benches/reference-run-pipe.txt`: 189 → 178 ms at N=200, 89 → 75
//! at N=100, nothing at N=1000; `benches/README.md`).
//!
//! Killed at any point, nothing is left that destroy cannot prove to be the lab's: before
//! the bind mount the file is an empty file (a dead mount point, the lab's to remove); the
//! identity is recorded before the mount (inode and cookie, read inside), so a netns that is
//! mounted always has one.

use std::collections::HashSet;
use std::fs::File;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use super::error::{NetError, NetResult};
use super::netns::{GoBack, NetnsId, create_file, identity_now, mntns_id, path};
use super::nl::NlSocket;

/// Writes a netns's identity where destroy finds it (the lab's journal); called on the
/// background thread, twice per netns (before and after the mount).
pub type Recorder = Arc<dyn Fn(&str, &NetnsId) -> std::io::Result<()> + Send + Sync>;

/// What the background thread did with one netns.
pub struct Made {
    pub name: String,
    /// Its netlink socket (opened inside) and identity, or why it is not there.
    pub result: Result<(NlSocket, NetnsId), NetError>,
    /// How long the kernel work took.
    pub took: Duration,
    /// Its place among the netns asked for (the thread makes them in that order).
    pub seq: u64,
}

#[derive(Default)]
struct State {
    /// Asked for, not finished yet.
    pending: HashSet<String>,
    /// Finished, not collected yet.
    done: Vec<Made>,
    /// How many were asked for.
    asked: u64,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(Mutex::default);
static CHANGED: Condvar = Condvar::new();
type Request = (String, u64, Recorder);
static QUEUE: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();

fn state() -> MutexGuard<'static, State> {
    // A panic on the background thread is caught there; the lock is never poisoned by it.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ip netns add NAME`, finished on the background thread. The file is made here, so a name
/// that is taken is refused now.
pub fn add(name: &str, record: Recorder) -> NetResult<()> {
    create_file(name)?;
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        // A thread that cannot start drops `rx`: every send then fails, and the netns is
        // made on the calling thread below.
        let _ = std::thread::Builder::new().name("nslab-netns".into()).spawn(move || {
            for (name, seq, record) in rx {
                let t = Instant::now();
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(&name, &record)))
                        .unwrap_or_else(|_| Err(NetError::new("the netns thread panicked")));
                finish(name, seq, result, t);
            }
        });
        Mutex::new(tx)
    });
    let seq = {
        let mut s = state();
        s.pending.insert(name.to_string());
        s.asked += 1;
        s.asked
    };
    let sent =
        queue.lock().unwrap_or_else(|p| p.into_inner()).send((name.to_string(), seq, record));
    if let Err(mpsc::SendError((name, seq, record))) = sent {
        let t = Instant::now();
        let result = make(&name, &record);
        finish(name, seq, result, t);
    }
    Ok(())
}

/// Hands `name`'s outcome to [`finished`] and wakes whoever waits for it.
fn finish(name: String, seq: u64, result: Result<(NlSocket, NetnsId), NetError>, started: Instant) {
    let mut s = state();
    s.pending.remove(&name);
    s.done.push(Made { name, result, took: started.elapsed(), seq });
    CHANGED.notify_all();
}

/// Waits until netns `name` is not being made any more.
pub fn wait_for(name: &str) {
    drop(settled(|s| s.pending.contains(name)));
}

/// Waits until netns `name` is not being made any more, then hands over what was made of
/// it, unless a call already took it.
pub fn take(name: &str) -> Option<Made> {
    let mut s = settled(|s| s.pending.contains(name));
    let i = s.done.iter().position(|m| m.name == name)?;
    Some(s.done.remove(i))
}

/// Waits until nothing is being made, then hands over what was made since the last call.
pub fn finished() -> Vec<Made> {
    std::mem::take(&mut settled(|s| !s.pending.is_empty()).done)
}

/// The state, once `busy` no longer holds of it.
fn settled(busy: impl FnMut(&mut State) -> bool) -> MutexGuard<'static, State> {
    CHANGED.wait_while(state(), busy).unwrap_or_else(|p| p.into_inner())
}

/// The background thread's part of [`add`]. Whatever fails, the file goes again.
fn make(name: &str, record: &Recorder) -> Result<(NlSocket, NetnsId), NetError> {
    let p = path(name);
    let mut mounted = false;
    let r = (|| -> Result<(NlSocket, NetnsId), NetError> {
        let home = File::open("/proc/thread-self/ns/net")?;
        unshare(CloneFlags::CLONE_NEWNET).map_err(errno)?;
        let _back = GoBack(home);
        let sock = NlSocket::open()?;
        let cookie = sock.netns_cookie();
        // Recorded before the mount: a netns that is mounted has an identity on record.
        let ino = std::fs::metadata("/proc/thread-self/ns/net").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        })?;
        record(name, &NetnsId { ino, mnt: None, mntns: mntns_id(), cookie })?;
        mount(Some("/proc/thread-self/ns/net"), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(errno)?;
        mounted = true;
        // Now with the mount's id, which lets destroy tell it with one statx.
        let id = NetnsId {
            mntns: mntns_id(),
            cookie,
            ..identity_now(name).ok_or_else(|| NetError::new("its file went at once"))?
        };
        record(name, &id)?;
        Ok((sock, id))
    })();
    if r.is_err() {
        if mounted {
            let _ = umount2(&p, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_file(&p);
    }
    // Worded as the calling thread's `netns::add_with` words it.
    r.map_err(|e| match e.errno {
        Some(n) => super::error::generic(n, &format!("cannot create netns {name}")),
        None => NetError::new(format!("cannot create netns {name}: {}", e.message)),
    })
}

fn errno(e: nix::errno::Errno) -> NetError {
    std::io::Error::from_raw_os_error(e as i32).into()
}
