//! The kernel layer's error: what failed in words, plus the advice a user needs.

use std::fmt;

/// An error from the kernel layer. `message` says what failed in words ("netns red already
/// exists"); `help` says what to do about it. `errno` is kept so callers can branch on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetError {
    pub message: String,
    pub help: Option<String>,
    pub errno: Option<i32>,
    /// Where the recipe asked for what failed, when that was held back and failed later (a
    /// call site the script layer numbered: `Backend::set_site`, `script::site`).
    pub site: Option<u64>,
}

pub type NetResult<T> = Result<T, NetError>;

impl NetError {
    pub fn new(message: impl Into<String>) -> Self {
        NetError { message: message.into(), help: None, errno: None, site: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_errno(mut self, errno: i32) -> Self {
        self.errno = Some(errno);
        self
    }

    /// True when the object an operation wanted to remove is already gone; teardown treats
    /// these as success (like CNI's DEL).
    pub fn is_gone(&self) -> bool {
        matches!(self.errno, Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL))
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NetError {}

/// The errno inside an rtnetlink error, as a positive number.
pub fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// The kernel's own words for an errno ("File exists").
pub fn strerror(errno: i32) -> String {
    nix::errno::Errno::from_raw(errno).desc().to_string()
}

/// Where an operation acts, for messages: "the host" or "netns red".
pub fn place(ns: Option<&str>) -> String {
    match ns {
        None => "the host".to_string(),
        Some(n) => format!("netns {n}"),
    }
}

/// The generic advice for an errno when the call site knows nothing better.
pub fn generic(errno: i32, what: &str) -> NetError {
    let e = NetError::new(format!("{what}: {}", strerror(errno))).with_errno(errno);
    match errno {
        libc::EPERM | libc::EACCES => {
            e.with_help("this needs root or CAP_NET_ADMIN: run with sudo, or try --sandbox")
        }
        _ => e,
    }
}

/// Converts an rtnetlink error, letting the call site map errnos it understands.
pub fn from_nl(
    e: rtnetlink::Error,
    what: &str,
    advise: impl FnOnce(i32) -> Option<NetError>,
) -> NetError {
    match errno_of(&e) {
        Some(errno) => advise(errno).map(|n| n.with_errno(errno)).unwrap_or_else(|| {
            match super::nl::kernel_message(&e) {
                // The kernel's sentence says more than its errno ("Egress device not
                // specified" vs "Invalid argument").
                Some(said) => {
                    let g = generic(errno, what);
                    NetError { message: format!("{what}: {said}"), ..g }
                }
                None => generic(errno, what),
            }
        }),
        None => NetError::new(format!("{what}: {e}")),
    }
}

impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        let errno = e.raw_os_error();
        let mut n = NetError::new(e.to_string());
        n.errno = errno;
        n
    }
}

/// Edit distance (Levenshtein), for "did you mean" suggestions.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is a likely typo of it (at most 2 edits away).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(c, name), c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}
