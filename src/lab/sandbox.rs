//! `--sandbox`: a private network + mount namespace that looks like a host with an internet
//! uplink, so labs (and tests) never touch the real host and vanish at exit.
//!
//!   sandbox root: lo, `uplink` 203.0.113.2/24, default via 203.0.113.1
//!   netns `internet`: lo, `eth0` 203.0.113.1/24 (a documentation range: no path leaves)

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::net::{Kernel, NetError, NetResult, Op};

pub const UPLINK: &str = "uplink";
pub const UPLINK_CIDR: &str = "203.0.113.2/24";
pub const INTERNET_NS: &str = "internet";
pub const INTERNET_ADDR: &str = "203.0.113.1";
const ENV: &str = "NSLAB_SANDBOX";

/// True inside a sandbox made by this process or an ancestor (`nslab sandbox -- CMD`).
pub fn active() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

/// Enters a fresh sandbox. Must run on the main thread before any other thread exists:
/// threads started later inherit the sandbox, threads started earlier stay on the host —
/// and a netlink socket opened on one of those would rewire the host.
pub fn enter() -> NetResult<()> {
    let fail = |what: &str, e: nix::errno::Errno| {
        NetError::new(format!("cannot create the sandbox: {what}: {}", e.desc()))
            .with_errno(e as i32)
            .with_help("the sandbox needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run with sudo")
    };
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(|e| fail("unshare", e))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| fail("make / private", e))?;
    for dir in [crate::net::netns::NETNS_DIR, super::journal::STATE_DIR] {
        std::fs::create_dir_all(dir)?;
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )
        .map_err(|e| fail(&format!("mount tmpfs on {dir}"), e))?;
    }
    // SAFETY: no other thread exists yet (see above), so nothing reads the environment
    // concurrently.
    unsafe { std::env::set_var(ENV, "1") };
    build_uplink()
        .map_err(|e| NetError::new(format!("cannot build the sandbox's simulated internet: {e}")))
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
