//! Named network namespaces, compatible with iproute2: a netns NAME is a bind mount of a
//! namespace file on `/run/netns/NAME`, so `ip netns` sees ours and we see its.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::error::{NetError, NetResult};
use super::refusal::{netns_exists, no_netns};

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Which netns a name stands for, as far as can be told from outside it.
///
/// The inode of the netns file is the same from every mount namespace, but the kernel hands
/// inode numbers out again at once (`ip netns del red; sleep 1; ip netns add red` gave the
/// same number here). The unique id of the bind mount on /run/netns/NAME (statx
/// STATX_MNT_ID_UNIQUE, Linux 6.8+) is never reused, but it is another number in another
/// mount namespace (`unshare -m`, a systemd unit with PrivateTmp). So both are kept, with
/// the unique id of the mount namespace the mount id was read in (NS_GET_MNTNS_ID; mount
/// namespace inodes are reused too), and [`NetnsId::same`] uses what it can.
///
/// Those mount ids need Linux 6.8; on older kernels (Debian 12's 6.1) a netns deleted and
/// made again by hand often got the old inode, and destroy took it for the lab's. The netns
/// cookie (getsockopt SO_NETNS_COOKIE on a socket opened in the netns, Linux 5.14+) is a
/// 64-bit number the kernel gives each netns and never gives again while it is up, the
/// same from every mount namespace: when both sides have one, it alone decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetnsId {
    pub ino: u64,
    /// The unique mount id, when the kernel has it.
    pub mnt: Option<u64>,
    /// The unique id of the mount namespace `mnt` was read in, when the kernel has it.
    pub mntns: Option<u64>,
    /// The netns cookie, when the kernel has it (journals written before it lack it).
    #[serde(default)]
    pub cookie: Option<u64>,
}

impl NetnsId {
    /// False when `now` is certainly another netns than `self`; true when it is the same, or
    /// when it cannot be told (read from another mount namespace and the inode matches).
    pub fn same(&self, now: &NetnsId) -> bool {
        if let (Some(a), Some(b)) = (self.cookie, now.cookie) {
            return a == b;
        }
        if self.ino != now.ino {
            return false;
        }
        match (self.mnt, now.mnt, self.mntns, now.mntns) {
            (Some(a), Some(b), Some(x), Some(y)) if x == y => a == b,
            _ => true,
        }
    }

    /// For identities read by one process in one mount namespace (the socket cache). The
    /// inode suffices there: the cached socket keeps its netns alive, so no other netns
    /// can have that inode number meanwhile.
    pub fn same_here(&self, now: &NetnsId) -> bool {
        self.ino == now.ino && self.mnt == now.mnt
    }
}

/// The identity of named netns `name`; None when it does not exist.
pub fn identity(name: &str) -> Option<NetnsId> {
    identity_with(name, None)
}

/// [`identity`] with the cookie already known (read from a socket the caller holds in that
/// netns), which spares entering the netns to open one.
pub fn identity_with(name: &str, cookie_known: Option<u64>) -> Option<NetnsId> {
    let mut id = identity_here(name)?;
    id.mntns = mntns_id();
    id.cookie = cookie_known.or_else(|| cookie(name));
    Some(id)
}

/// True when `name` certainly still is the netns `made` was read from, told by one statx:
/// the same inode on the same mount, by its unique id (Linux 6.8+), which is never given to
/// another mount while the machine is up. False means "cannot tell this cheaply", not
/// "another one": the caller asks [`identity`] then. A session asks this before every op
/// that names a netns; the full identity opens a socket inside the netns (two `setns`, a
/// `socket`, two `open`s), which made lab(100)'s build cost 30-90 ms more CPU.
pub fn surely_same(made: &NetnsId, name: &str) -> bool {
    match (made.mnt, identity_here(name)) {
        (Some(m), Some(now)) => now.mnt == Some(m) && now.ino == made.ino,
        _ => false,
    }
}

/// The cookie of named netns `name` (see [`NetnsId`]); None when it does not exist or the
/// kernel is older than 5.14. Opens a socket in the netns from the calling thread, which
/// enters it for that moment and goes back as in [`add_with`].
pub fn cookie(name: &str) -> Option<u64> {
    let target = open(name).ok()?;
    let home = File::open("/proc/thread-self/ns/net").ok()?;
    let sock = {
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).ok()?;
        let _back = GoBack(home);
        // SAFETY: socket(2) returns a new fd or -1.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
    };
    socket_cookie(sock.as_raw_fd())
}

/// SO_NETNS_COOKIE of a socket: the cookie of the netns it was opened in.
pub fn socket_cookie(fd: std::os::fd::RawFd) -> Option<u64> {
    // From asm-generic/socket.h (Linux 5.14); the libc crate may not name it.
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, SO_NETNS_COOKIE, (&raw mut v).cast(), &mut len)
    };
    (r == 0 && len as usize == std::mem::size_of::<u64>()).then_some(v)
}

/// [`identity`] without the mount namespace (one statx): for comparisons within a process.
pub fn identity_here(name: &str) -> Option<NetnsId> {
    super::netns_background::wait_for(name);
    identity_now(name)
}

/// [`identity_here`] without waiting for the background thread: that thread's own read.
pub(super) fn identity_now(name: &str) -> Option<NetnsId> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path(name).as_os_str().as_bytes()).ok()?;
    // SAFETY: statx fills the zeroed buffer; the path is a valid C string.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            p.as_ptr(),
            0,
            libc::STATX_INO | libc::STATX_MNT_ID_UNIQUE,
            &mut st,
        )
    };
    if r != 0 {
        return None;
    }
    let mnt = (st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0).then_some(st.stx_mnt_id);
    Some(NetnsId { ino: st.stx_ino, mnt, mntns: None, cookie: None })
}

/// The unique id of nslab's mount namespace (ioctl NS_GET_MNTNS_ID, Linux 6.8+). Read once:
/// the process changes mount namespace only when `--sandbox` sets up, before any lab work,
/// and `identity` is asked for every op that names a netns.
pub(super) fn mntns_id() -> Option<u64> {
    static ID: OnceLock<Option<u64>> = OnceLock::new();
    *ID.get_or_init(|| {
        // _IOR(NSIO = 0xb7, 0x5, __u64), from linux/nsfs.h.
        const NS_GET_MNTNS_ID: libc::c_ulong = 0x8008_b705;
        let f = File::open("/proc/thread-self/ns/mnt").ok()?;
        let mut id: u64 = 0;
        // SAFETY: the ioctl writes one u64 into `id`; the fd is open for the call.
        let r =
            unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&f), NS_GET_MNTNS_ID, &mut id) };
        (r == 0).then_some(id)
    })
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so that the namespace
/// mounts we create there propagate to other mount namespaces (e.g. `ip netns exec`).
fn prepare_dir() -> NetResult<()> {
    static DONE: OnceLock<Result<(), NetError>> = OnceLock::new();
    DONE.get_or_init(|| {
        std::fs::create_dir_all(NETNS_DIR).map_err(|e| {
            NetError::from(e).with_help("nslab needs to write /run/netns: run as root")
        })?;
        let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        match mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>) {
            Ok(()) => Ok(()),
            // Not a mount point yet: bind it onto itself first, exactly like iproute2.
            Err(nix::errno::Errno::EINVAL) => {
                let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, bind, None::<&str>)
                    .and_then(|_| {
                        mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>)
                    })
                    .map_err(|e| mount_error(e as i32))
            }
            Err(e) => Err(mount_error(e as i32)),
        }
    })
    .clone()
}

fn mount_error(errno: i32) -> NetError {
    super::error::generic(errno, "cannot prepare /run/netns")
}

/// `ip netns add NAME`, then runs `inside` while still inside the new netns (to open its
/// netlink socket, or set its sysctls) and returns what it returned.
///
/// This runs on the calling thread, which enters the new netns and goes back to where it
/// was before returning, like `ip netns add` does. It used to run on a fresh thread: under
/// load (2 shared vCPUs, another build running) waking that thread and joining it cost
/// ~0.3 ms per netns on top of the ~0.5 ms the kernel needs to make one (lab(200): 318 ms
/// of futex waits in `perf sched`). The thread cannot stay in the wrong netns: `unshare`
/// is the first step, and from then on a guard sets the thread back on every path out,
/// panics included, and aborts the process if even that fails (nothing else may run in a
/// netns it did not mean to be in). `setns`/`unshare` act on the calling thread only, so
/// no other thread ever sees the detour.
pub fn add_with<T>(name: &str, inside: impl FnOnce() -> T) -> NetResult<T> {
    create_file(name)?;
    let p = path(name);
    let r = (|| -> Result<T, nix::errno::Errno> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        unshare(CloneFlags::CLONE_NEWNET)?;
        let _back = GoBack(home);
        // /proc/thread-self, not /proc/self: on any thread but the main one /proc/self is
        // the main thread, which may sit elsewhere.
        mount(Some("/proc/thread-self/ns/net"), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
        Ok(inside())
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&p);
        super::error::generic(e as i32, &format!("cannot create netns {name}"))
    })
}

/// The file a netns NAME is bound onto, made empty (a name that is taken is refused here).
pub(super) fn create_file(name: &str) -> NetResult<()> {
    prepare_dir()?;
    std::fs::OpenOptions::new().write(true).create_new(true).open(path(name)).map_err(
        |e| match e.raw_os_error() {
            Some(libc::EEXIST) => netns_exists(name),
            _ => NetError::from(e),
        },
    )?;
    Ok(())
}

/// Sets the calling thread back into the netns `0` when dropped (see [`add_with`]).
pub(super) struct GoBack(pub(super) File);

impl Drop for GoBack {
    fn drop(&mut self) {
        if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!("nslab: cannot return to its own network namespace ({e}); stopping here");
            std::process::abort();
        }
    }
}

/// `ip netns del NAME`: unmounts and unlinks. The kernel frees the namespace once nothing
/// holds it any more, asynchronously.
pub fn del(name: &str) -> NetResult<()> {
    super::netns_background::wait_for(name);
    let p = path(name);
    if !p.exists() {
        return Err(no_netns(name));
    }
    let _ = umount2(&p, MntFlags::MNT_DETACH);
    std::fs::remove_file(&p).map_err(NetError::from)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// A /run/netns/NAME that holds no netns: an empty file no namespace is mounted on (nslab
/// or `ip netns` killed between unmounting and unlinking it, or between creating and
/// mounting it). `ip netns exec` says "Invalid argument" there and a new netns of that
/// name "already exists"; nothing can be in it, so removing it changes nothing (issue 14).
pub fn is_dead(name: &str) -> bool {
    let p = path(name);
    match (std::fs::symlink_metadata(&p), nix::sys::statfs::statfs(&p)) {
        (Ok(m), Ok(fs)) => {
            m.is_file() && m.len() == 0 && fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC
        }
        _ => false,
    }
}

pub fn list() -> NetResult<Vec<String>> {
    let mut names = match std::fs::read_dir(NETNS_DIR) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    names.sort();
    Ok(names)
}

/// Opens the namespace file of NAME (for setns or IFLA_NET_NS_FD).
pub fn open(name: &str) -> NetResult<File> {
    // A netns still being made is not bound onto its file yet.
    super::netns_background::wait_for(name);
    File::open(path(name)).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => no_netns(name),
        _ => NetError::from(e),
    })
}

/// Runs `f` on a fresh thread that has entered netns `ns` (or on a fresh thread in the
/// current namespace when `ns` is None). `setns` affects only the calling thread, so this is
/// the one safe way to act inside a namespace: sockets created by `f` stay bound to it, and
/// child processes spawned by `f` start in it.
pub fn run_in<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> T + Send + 'static,
) -> NetResult<T> {
    let file = match ns {
        Some(n) => Some(open(n)?),
        None => None,
    };
    // Builder, not thread::spawn: out of threads (a pids limit) is an error, not a panic.
    std::thread::Builder::new()
        .spawn(move || -> NetResult<T> {
            if let Some(file) = file {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| super::error::generic(e as i32, "cannot enter netns"))?;
            }
            Ok(f())
        })
        .map_err(|e| {
            NetError::new(format!("cannot start a thread: {e}"))
                .with_errno(e.raw_os_error().unwrap_or(libc::EAGAIN))
                .with_help("the process limit (ulimit -u, a cgroup's pids.max) is reached: start fewer servers or commands")
        })?
        .join()
    .map_err(|_| NetError::new("a netns worker thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ino: u64, mnt: Option<u64>, mntns: Option<u64>, cookie: Option<u64>) -> NetnsId {
        NetnsId { ino, mnt, mntns, cookie }
    }

    #[test]
    fn the_cookie_decides_when_both_sides_have_one() {
        // An inode given again (6.1, no mount ids): only the cookie tells them apart.
        assert!(!id(7, None, None, Some(1)).same(&id(7, None, None, Some(2))));
        assert!(id(7, None, None, Some(1)).same(&id(7, None, None, Some(1))));
        // Read from another mount namespace: other mount ids, the same netns.
        assert!(id(7, Some(3), Some(1), Some(5)).same(&id(7, Some(9), Some(2), Some(5))));
        // A journal from before cookies: the old rules.
        assert!(id(7, None, None, None).same(&id(7, None, None, Some(2))));
        assert!(!id(7, Some(3), Some(1), None).same(&id(7, Some(4), Some(1), Some(2))));
        assert!(!id(7, None, None, None).same(&id(8, None, None, None)));
    }

    #[test]
    fn old_journals_without_a_cookie_still_read() {
        let old: NetnsId = serde_json::from_str(r#"{"ino":4026532,"mnt":12,"mntns":3}"#).unwrap();
        assert_eq!(old, id(4026532, Some(12), Some(3), None));
    }

    #[test]
    fn a_socket_tells_the_cookie_of_its_netns() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let release = crate::net::kernel_version::release();
        match socket_cookie(s.as_raw_fd()) {
            Some(c) => assert_eq!(Some(c), socket_cookie(t.as_raw_fd())),
            None => assert!(
                !crate::net::kernel_version::at_least(&release, (5, 14)),
                "kernel {release} should have SO_NETNS_COOKIE"
            ),
        }
    }
}
