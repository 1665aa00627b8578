//! `--sandbox`: private network, mount and PID namespaces (and a user namespace without
//! root) that look like a host with an internet uplink, so labs (and tests) never touch the
//! real host's network and vanish at exit, with everything started in them.
//!
//!   sandbox root: lo, `uplink` 203.0.113.2/24, default via 203.0.113.1
//!   netns `internet`: lo, `eth0` 203.0.113.1/24 (a documentation range: no path leaves)

use nix::sched::{CloneFlags, unshare};

use crate::net::{Kernel, NetError, NetResult, Op};

mod init;
mod mounts;
mod userns;

pub(crate) use userns::{forbidding_settings, privileged};

pub const UPLINK: &str = "uplink";
pub const UPLINK_CIDR: &str = "203.0.113.2/24";
pub const INTERNET_NS: &str = "internet";
pub const INTERNET_ADDR: &str = "203.0.113.1";
const ENV: &str = "NSLAB_SANDBOX";

/// True inside a sandbox made by this process or an ancestor (`nslab sandbox -- CMD`).
pub fn active() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

/// Enters a fresh sandbox: network, mount and PID namespaces of its own (and a user
/// namespace when nslab runs without root, see `userns`), a fresh /proc, /sys and /run,
/// its own /etc/resolv.conf and /etc/hosts (see `mounts`), and the simulated internet.
///
/// Must run on the main thread before any other thread exists: threads started later
/// inherit the sandbox, threads started earlier stay on the host — and a netlink socket
/// opened on one of those would rewire the host. It forks (see `init`): what returns is
/// PID 1 of the sandbox; the process that called it waits outside and exits with it.
pub fn enter() -> NetResult<()> {
    let flags = CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    if privileged() {
        unshare(flags).map_err(|e| {
            NetError::new(format!("cannot create the sandbox: unshare: {}", e.desc()))
                .with_errno(e as i32)
                .with_help("the sandbox needs CAP_SYS_ADMIN and CAP_NET_ADMIN, or user namespaces (run as an ordinary user)")
        })?;
    } else {
        userns::unshare_rootless(flags)?;
    }
    mounts::make_private()?;
    init::fork_init()?;
    mounts::mount_all(INTERNET_ADDR, UPLINK_CIDR.split('/').next().unwrap_or_default())?;
    // SAFETY: no other thread exists yet (see above), so nothing reads the environment
    // concurrently.
    unsafe {
        std::env::set_var(ENV, "1");
        // Root inside: root's tools (`iptables`, `ip`) must be found, also when an ordinary
        // user's PATH lacks the sbin directories (Debian's does).
        std::env::set_var("PATH", with_sbin(&std::env::var("PATH").unwrap_or_default()));
    }
    build_uplink()
        .map_err(|e| NetError::new(format!("cannot build the sandbox's simulated internet: {e}")))
}

/// `path` with the sbin directories it lacks appended.
fn with_sbin(path: &str) -> String {
    let mut dirs: Vec<&str> = path.split(':').filter(|d| !d.is_empty()).collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.join(":")
}

/// What the sandbox's simulated internet is made of, as Ops: applied to the kernel by
/// [`enter`], and to the plan's model when `nslab plan` runs inside a sandbox.
pub fn uplink_ops() -> Vec<Op> {
    let ns = Some(INTERNET_NS.to_string());
    vec![
        Op::LinkUp { ns: None, dev: "lo".into() },
        Op::NetnsAdd { name: INTERNET_NS.into() },
        Op::VethAdd { ns: None, name: UPLINK.into(), peer: "eth0".into(), peer_ns: ns.clone() },
        Op::AddrAdd {
            ns: None,
            dev: UPLINK.into(),
            cidr: UPLINK_CIDR.parse().expect("valid cidr"),
        },
        Op::LinkUp { ns: None, dev: UPLINK.into() },
        Op::LinkUp { ns: ns.clone(), dev: "lo".into() },
        Op::AddrAdd {
            ns: ns.clone(),
            dev: "eth0".into(),
            cidr: format!("{INTERNET_ADDR}/24").parse().expect("valid cidr"),
        },
        Op::LinkUp { ns: ns.clone(), dev: "eth0".into() },
        Op::RouteAdd {
            ns: None,
            dest: None,
            via: Some(INTERNET_ADDR.parse().expect("valid ip")),
            dev: None,
            opts: Default::default(),
        },
    ]
}

fn build_uplink() -> NetResult<()> {
    let k = Kernel::new(None)?;
    let ops = uplink_ops();
    for op in &ops {
        k.apply(op)?;
    }
    k.forget(INTERNET_NS);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sbin_directories_are_appended_once() {
        assert_eq!(
            super::with_sbin("/usr/bin:/bin:/usr/sbin"),
            "/usr/bin:/bin:/usr/sbin:/usr/local/sbin:/sbin"
        );
        assert_eq!(super::with_sbin(""), "/usr/local/sbin:/usr/sbin:/sbin");
    }
}
