//! Does a netns hold any iptables rule at all? Asked before `iptables -S` runs there:
//! listing through the `iptables` process costs 5–20 ms per netns on these machines (100
//! `ip netns exec hN iptables -t nat -S` took 2.3 s), while the answer here is one netlink
//! dump on a socket opened inside the netns (well under a millisecond). `nslab show` and
//! `nslab graph` of a lab of 500 namespaces, most of them without a single rule, need it.
//!
//! Hand-written rather than through a crate: the rust-netlink crates have no nftables
//! messages, and only the message count is read (no attribute is decoded).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;

/// False only when both backends are certainly empty in `ns`: no nftables rule (what
/// iptables-nft writes) and no legacy iptables table. Any doubt (an error, a kernel
/// without nftables) says true, and the caller lists as before.
pub fn may_have_rules(ns: Option<&str>) -> bool {
    super::netns::run_in(ns, || nft_rules_here().is_none_or(|n| n > 0) || legacy_tables_here())
        .unwrap_or(true)
}

fn legacy_tables_here() -> bool {
    // /proc/net is the *process's* netns; thread-self is this thread's, inside `ns`.
    ["ip_tables_names", "ip6_tables_names"].iter().any(|f| {
        std::fs::read_to_string(format!("/proc/thread-self/net/{f}"))
            .is_ok_and(|s| !s.trim().is_empty())
    })
}

/// The number of nftables rules in this thread's netns, None when it cannot be told.
fn nft_rules_here() -> Option<usize> {
    count_rules().ok()
}

fn count_rules() -> io::Result<usize> {
    // SAFETY: plain socket calls on an fd we own and buffers we own.
    let fd = unsafe {
        let fd =
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_NETFILTER);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    // nlmsghdr (16) + nfgenmsg (4): a dump of every rule of every family.
    let mut req = [0u8; 20];
    req[0..4].copy_from_slice(&20u32.to_ne_bytes());
    req[4..6].copy_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE).to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC (all), version 0, res_id 0.
    let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut rules = 0;
    loop {
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut off = 0usize;
        let n = n as usize;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
            if len < 16 {
                return Err(io::Error::other("bad netlink message"));
            }
            match ty {
                x if x == libc::NLMSG_DONE as u16 => return Ok(rules),
                x if x == libc::NLMSG_ERROR as u16 => {
                    let errno = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                x if x == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE => rules += 1,
                _ => {}
            }
            off += (len + 3) & !3;
        }
        if n == 0 {
            return Ok(rules);
        }
    }
}
