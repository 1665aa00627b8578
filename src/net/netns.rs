//! Named network namespaces, compatible with iproute2: a netns NAME is a bind mount of a
//! namespace file on `/run/netns/NAME`, so `ip netns` sees ours and we see its.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::error::{NetError, NetResult};

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so that the namespace
/// mounts we create there propagate to other mount namespaces (e.g. `ip netns exec`).
fn prepare_dir() -> NetResult<()> {
    static DONE: OnceLock<Result<(), NetError>> = OnceLock::new();
    DONE.get_or_init(|| {
        std::fs::create_dir_all(NETNS_DIR)
            .map_err(|e| NetError::from(e).with_help("nslab needs to write /run/netns: run as root"))?;
        let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        match mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>) {
            Ok(()) => Ok(()),
            // Not a mount point yet: bind it onto itself first, exactly like iproute2.
            Err(nix::errno::Errno::EINVAL) => {
                let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, bind, None::<&str>)
                    .and_then(|_| mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>))
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

/// `ip netns add NAME`.
pub fn add(name: &str) -> NetResult<()> {
    prepare_dir()?;
    let p = path(name);
    std::fs::OpenOptions::new().write(true).create_new(true).open(&p).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::EEXIST) => NetError::new(format!("netns {name} already exists"))
                .with_errno(libc::EEXIST)
                .with_help(format!(
                    "pick another name, or remove the old one (`nslab destroy LAB` if a lab made it, `ip netns del {name}` if not)"
                )),
            _ => NetError::from(e),
        }
    })?;
    // unshare() moves only the calling thread; doing it on a short-lived thread leaves every
    // other thread (and the netlink sockets they own) where they were.
    let target = p.clone();
    let r = std::thread::spawn(move || -> Result<(), nix::errno::Errno> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        // In a thread, /proc/self is the *main* thread: thread-self is the new namespace.
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join()
    .expect("netns thread panicked");
    if let Err(e) = r {
        let _ = std::fs::remove_file(&p);
        return Err(super::error::generic(e as i32, &format!("cannot create netns {name}")));
    }
    Ok(())
}

/// `ip netns del NAME`: unmounts and unlinks. The kernel frees the namespace once nothing
/// holds it any more, asynchronously.
pub fn del(name: &str) -> NetResult<()> {
    let p = path(name);
    if !p.exists() {
        return Err(missing(name));
    }
    let _ = umount2(&p, MntFlags::MNT_DETACH);
    std::fs::remove_file(&p).map_err(NetError::from)
}

pub fn missing(name: &str) -> NetError {
    NetError::new(format!("netns {name} does not exist"))
        .with_errno(libc::ENOENT)
        .with_help(format!("create it first with netns::add(\"{name}\"); netns::list() shows what exists"))
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

pub fn list() -> NetResult<Vec<String>> {
    let mut names = match std::fs::read_dir(NETNS_DIR) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    names.sort();
    Ok(names)
}

/// Opens the namespace file of NAME (for setns or IFLA_NET_NS_FD).
pub fn open(name: &str) -> NetResult<File> {
    File::open(path(name)).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => missing(name),
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
    std::thread::spawn(move || -> NetResult<T> {
        if let Some(file) = file {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| super::error::generic(e as i32, "cannot enter netns"))?;
        }
        Ok(f())
    })
    .join()
    .map_err(|_| NetError::new("a netns worker thread panicked"))?
}
