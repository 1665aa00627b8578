//! net.* sysctls, read and written through /proc/sys on a thread inside the netns.

use crate::net::error::{NetError, NetResult};
use crate::net::netns;
use crate::net::refusal::{no_sysctl, sysctl_rejected};

pub(super) fn sysctl_path(key: &str) -> String {
    crate::net::op::sysctl_path(key)
}

/// Reads a net.* sysctl. /proc/sys/net resolves against the netns of the thread that opens
/// the file, so it is opened on a thread inside `ns`.
pub(crate) fn sysctl_get(ns: Option<&str>, key: &str) -> NetResult<String> {
    let (p, k) = (sysctl_path(key), key.to_string());
    let nsn = ns.map(str::to_string);
    netns::run_in(ns, move || std::fs::read_to_string(&p))?.map(|s| s.trim().to_string()).map_err(
        |e| match e.raw_os_error() {
            Some(libc::ENOENT) => no_sysctl(&k, nsn.as_deref()),
            _ => NetError::from(e),
        },
    )
}

pub(crate) fn sysctl_set(ns: Option<&str>, key: &str, value: &str) -> NetResult<()> {
    let (p, v, k) = (sysctl_path(key), value.to_string(), key.to_string());
    let nsn = ns.map(str::to_string);
    netns::run_in(ns, move || std::fs::write(&p, v.as_bytes()))?.map_err(|e| {
        match e.raw_os_error() {
            // The same refusal, without the advice about the key's name.
            Some(libc::ENOENT) => NetError { help: None, ..no_sysctl(&k, nsn.as_deref()) },
            Some(libc::EINVAL) => sysctl_rejected(&k, value),
            Some(libc::EACCES | libc::EPERM) => {
                NetError::new(format!("cannot write {k}: permission denied"))
                    .with_help("this needs root; run with sudo, or try --sandbox")
            }
            _ => NetError::from(e),
        }
    })
}
