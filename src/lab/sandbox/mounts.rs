//! What the sandbox mounts in its own mount namespace, so that what runs inside sees the
//! sandbox and not the host (a sandbox sees the host through /sys and /etc unless it
//! remounts them):
//!
//! - a tmpfs on `/run`: the sandbox's `/run/netns`, `/run/nslab`, `/run/xtables.lock`; the
//!   host's sockets there (systemd-resolved, docker, dbus) are out of reach;
//! - a fresh `/proc` of the sandbox's PID namespace, and a fresh sysfs of its network
//!   namespace on `/sys` (the host's `/sys/class/net` is neither visible nor writable);
//! - its own `/etc/resolv.conf` (no server: a lookup fails at once instead of vanishing into
//!   the simulated internet for 10 s) and `/etc/hosts` (`internet`, `uplink`, this host's
//!   name).
//!
//! `/` is made private first: nothing mounted here is seen outside.

use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};

use crate::net::{NetError, NetResult};

const RUN: &str = "/run";
/// Where the sandbox keeps the files it bind-mounts over /etc.
const ETC_DIR: &str = "/run/nslab-sandbox";

fn failed(what: &str, e: nix::errno::Errno) -> NetError {
    NetError::new(format!("cannot create the sandbox: {what}: {}", e.desc())).with_errno(e as i32)
}

/// `mount --make-rprivate /`, before anything else is mounted.
pub(crate) fn make_private() -> NetResult<()> {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| failed("make / private", e))
}

/// Every mount of the sandbox but `make_private`. Runs in PID 1 of the sandbox (a fresh
/// /proc shows the PID namespace of whoever mounts it), in the sandbox's netns (so does
/// sysfs).
pub(crate) fn mount_all(internet: &str, uplink: &str) -> NetResult<()> {
    // Where /etc/resolv.conf and /etc/hosts lead, read before /run is covered: on systemd
    // hosts resolv.conf is a link into /run/systemd/resolve.
    let resolv = etc_target("/etc/resolv.conf");
    let hosts = etc_target("/etc/hosts");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), RUN, Some("tmpfs"), flags, Some("mode=0755"))
        .map_err(|e| failed("mount a tmpfs on /run", e))?;
    for dir in [crate::net::netns::NETNS_DIR, super::super::journal::STATE_DIR, ETC_DIR] {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::new(format!("cannot create the sandbox: {dir}: {e}")))?;
    }
    mount(Some("proc"), "/proc", Some("proc"), flags | MsFlags::MS_NOEXEC, None::<&str>)
        .map_err(|e| failed("mount a fresh /proc", e))?;
    mount_sysfs("sandbox").map_err(|e| failed("mount a fresh sysfs on /sys", e))?;
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok());
    cover(resolv, "resolv.conf", RESOLV_CONF)?;
    cover(hosts, "hosts", &hosts_file(internet, uplink, host.as_deref()))?;
    Ok(())
}

/// Mounts a sysfs of the calling thread's netns on /sys, read-only if the /sys it covers
/// is (as `ip netns exec` does).
fn mount_sysfs(name: &str) -> Result<(), nix::errno::Errno> {
    let ro = nix::sys::statvfs::statvfs("/sys")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if ro {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(Some(name), "/sys", Some("sysfs"), flags, None::<&str>)
}

const RESOLV_CONF: &str = "\
# Written by nslab for this sandbox. There is no DNS server here: a lookup of a name that
# /etc/hosts does not know fails at once (nothing answers on 127.0.0.1:53 unless you
# start a server there).
nameserver 127.0.0.1
options timeout:1 attempts:1
";

fn hosts_file(internet: &str, uplink: &str, host: Option<&str>) -> String {
    let mut s = String::from(
        "# Written by nslab for this sandbox.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    if let Some(h) = host.filter(|h| !h.is_empty() && *h != "localhost") {
        // Like Debian's installer: a host's own name resolves without DNS.
        s.push_str(&format!("127.0.1.1\t{h}\n"));
    }
    s.push_str(&format!("{internet}\tinternet\n{uplink}\tuplink\n"));
    s
}

/// Where `/etc/NAME` leads: the file itself, or what its symbolic links point at (which
/// may not exist yet when it lies in /run).
fn etc_target(path: &str) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let mut p = PathBuf::from(path);
    for _ in 0..8 {
        let Ok(next) = std::fs::read_link(&p) else { break };
        p = normalise(&p.parent().unwrap_or(Path::new("/")).join(next));
    }
    p.starts_with(RUN).then_some(p)
}

/// `a/b/../c` → `a/c`, without looking at the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Gives `target` the content `text`: written in place when it lies in the sandbox's own
/// /run, bind-mounted over it from a file in /run otherwise. No target (an /etc without
/// the file): nothing to cover, since nothing can read the host's.
fn cover(target: Option<PathBuf>, name: &str, text: &str) -> NetResult<()> {
    let Some(target) = target else { return Ok(()) };
    let io = |e: std::io::Error| NetError::new(format!("cannot create the sandbox: {name}: {e}"));
    if target.starts_with(RUN) {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        return std::fs::write(&target, text).map_err(io);
    }
    let src = Path::new(ETC_DIR).join(name);
    std::fs::write(&src, text).map_err(io)?;
    mount(Some(&src), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| failed(&format!("bind-mount its own {}", target.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_the_internet_and_this_host() {
        let h = hosts_file("203.0.113.1", "203.0.113.2", Some("box"));
        assert!(h.contains("\n203.0.113.1\tinternet\n"), "{h}");
        assert!(h.contains("\n127.0.1.1\tbox\n"), "{h}");
        assert!(h.contains("\n127.0.0.1\tlocalhost\n"), "{h}");
        assert!(!hosts_file("a", "b", Some("localhost")).contains("127.0.1.1"));
    }

    #[test]
    fn links_are_followed_without_the_file_system() {
        assert_eq!(
            normalise(Path::new("/etc/../run/systemd/resolve/stub-resolv.conf")),
            PathBuf::from("/run/systemd/resolve/stub-resolv.conf")
        );
        assert_eq!(normalise(Path::new("/a/./b/../../c")), PathBuf::from("/c"));
    }
}
