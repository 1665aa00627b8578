//! Rootless sandboxes: without CAP_SYS_ADMIN and CAP_NET_ADMIN, the sandbox starts with a
//! user namespace of its own in which the caller's uid and gid are 0 (what `unshare -Urnm`
//! does). The network, mount and PID namespaces made with it belong to it, so nslab holds
//! every capability over them and none over the host (verified to work that way on these
//! kernels: netns, bridge, veth, addresses, ping, iptables-nft, ip_forward).

use nix::sched::{CloneFlags, unshare};

use crate::net::{NetError, NetResult};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// True when this process holds CAP_NET_ADMIN and CAP_SYS_ADMIN (root, or granted): the
/// sandbox then needs no user namespace, and behaves as it always has.
pub(crate) fn privileged() -> bool {
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|h| h.trim().to_string()))
        })
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .unwrap_or(0);
    let need = (1u64 << CAP_NET_ADMIN) | (1u64 << CAP_SYS_ADMIN);
    caps & need == need
}

/// Unshares `flags` together with a new user namespace and maps the caller's uid and gid to
/// 0 in it. The caller must be single-threaded (a kernel rule for CLONE_NEWUSER).
pub(crate) fn unshare_rootless(flags: CloneFlags) -> NetResult<()> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    unshare(flags | CloneFlags::CLONE_NEWUSER).map_err(|e| refused("unshare", e as i32))?;
    // An unprivileged process may map only its own ids, and its gid only once setgroups(2)
    // is off for the namespace (user_namespaces(7)).
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| {
            refused(&format!("write /proc/self/{file}"), e.raw_os_error().unwrap_or(0))
        })
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// The kernel settings that forbid unprivileged user namespaces, as (sysctl, value) where
/// the value forbids them.
const SETTINGS: [(&str, &str); 3] = [
    ("kernel.unprivileged_userns_clone", "0"),
    ("kernel.apparmor_restrict_unprivileged_userns", "1"),
    ("user.max_user_namespaces", "0"),
];

/// The settings of this machine that forbid a rootless sandbox, as `name = value`.
pub(crate) fn forbidding_settings() -> Vec<String> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
            .ok()
            .map(|s| s.trim().to_string())
    };
    forbidding(&|name| read(name))
}

fn forbidding(read: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    SETTINGS
        .iter()
        .filter(|(name, bad)| read(name).as_deref() == Some(*bad))
        .map(|(name, bad)| format!("{name} = {bad}"))
        .collect()
}

/// The error for a user namespace the kernel refused: names the setting when one is to
/// blame, and says to use sudo.
fn refused(step: &str, errno: i32) -> NetError {
    error_for(step, errno, &forbidding_settings())
}

fn error_for(step: &str, errno: i32, settings: &[String]) -> NetError {
    let why = nix::errno::Errno::from_raw(errno).desc();
    let e = if settings.is_empty() {
        NetError::new(format!(
            "cannot create a sandbox without root: the kernel refused a user namespace ({step}: {why})"
        ))
    } else {
        NetError::new(format!(
            "cannot create a sandbox without root: this kernel forbids unprivileged user namespaces ({})",
            settings.join(", ")
        ))
    };
    let allow = settings
        .iter()
        .filter_map(|s| {
            let (name, _) = s.split_once(" = ")?;
            let ok = match name {
                "kernel.unprivileged_userns_clone" => "1",
                "kernel.apparmor_restrict_unprivileged_userns" => "0",
                _ => "10000",
            };
            Some(format!("sudo sysctl -w {name}={ok}"))
        })
        .collect::<Vec<_>>();
    let help = if allow.is_empty() {
        "run it with sudo (the sandbox then needs no user namespace)".to_string()
    } else {
        format!(
            "run it with sudo (the sandbox then needs no user namespace), or allow them: {}",
            allow.join("; ")
        )
    };
    e.with_errno(errno).with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_setting_that_forbids_user_namespaces() {
        let read = |name: &str| match name {
            "kernel.apparmor_restrict_unprivileged_userns" => Some("1".to_string()),
            "kernel.unprivileged_userns_clone" => Some("1".to_string()),
            _ => None,
        };
        let s = forbidding(&read);
        assert_eq!(s, ["kernel.apparmor_restrict_unprivileged_userns = 1"]);
        let e = error_for("write /proc/self/uid_map", libc::EPERM, &s);
        assert!(e.message.contains("forbids unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)"), "{}", e.message);
        let help = e.help.unwrap();
        assert!(help.starts_with("run it with sudo"), "{help}");
        assert!(
            help.contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
            "{help}"
        );
    }

    #[test]
    fn without_a_known_setting_the_kernel_words_are_given() {
        let read = |name: &str| (name == "user.max_user_namespaces").then(|| "15000".to_string());
        assert!(forbidding(&read).is_empty());
        let e = error_for("unshare", libc::ENOSPC, &[]);
        assert!(e.message.contains("(unshare: No space left on device)"), "{}", e.message);
        assert_eq!(
            e.help.as_deref(),
            Some("run it with sudo (the sandbox then needs no user namespace)")
        );
        let s = forbidding(&|n: &str| (n == "user.max_user_namespaces").then(|| "0".to_string()));
        assert_eq!(s, ["user.max_user_namespaces = 0"]);
    }
}
