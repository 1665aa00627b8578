//! The running kernel's version, and the oldest one nslab supports.

/// The oldest kernel nslab supports: 5.14 gives every netns a cookie (SO_NETNS_COOKIE) by
/// which destroy tells the netns a lab made from one made again by hand under its name.
/// nslab is tested on 6.1 (Debian 12) and 6.18.
pub const OLDEST: (u32, u32) = (5, 14);

/// The running kernel's release, as `uname -r` prints it.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (major, minor) of a release such as "6.1.0-57-amd64" or "6.18.44-fc-v857".
pub fn parse(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether `release` is `want` or newer; an unreadable release counts as new enough.
pub fn at_least(release: &str, want: (u32, u32)) -> bool {
    parse(release).is_none_or(|v| v >= want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_compare_by_major_and_minor() {
        assert_eq!(parse("6.1.0-57-amd64"), Some((6, 1)));
        assert_eq!(parse("6.18.44-fc-v857"), Some((6, 18)));
        assert!(at_least("6.1.0-57-amd64", OLDEST));
        assert!(at_least("5.14.0", OLDEST));
        assert!(!at_least("5.10.0-28-amd64", OLDEST));
        assert!(!at_least("4.19.0", OLDEST));
        assert!(at_least("weird", OLDEST));
    }
}
