//! Sysctls in the model: reads answered as a fresh host would, and `disable_ipv6` writes
//! that take IPv6 off links.

use super::model::{Model, key};
use crate::net::NetResult;
use crate::net::refusal::no_sysctl;

impl Model {
    /// `disable_ipv6` on a link changes: off drops its IPv6 addresses and routes; on again
    /// gives an up lo back its ::1.
    pub(super) fn set_v6_off(&mut self, ns: Option<&str>, i: usize, off: bool) {
        let was = std::mem::replace(&mut self.links[i].v6_off, off);
        let (dev, up, lo) =
            (self.links[i].name.clone(), self.links[i].up, self.links[i].kind == "loopback");
        let Some(space) = self.spaces.get_mut(&key(ns)) else { return };
        if off {
            space.addrs.retain(|(d, a)| d != &dev || a.addr().is_ipv4());
            space.routes.retain(|r| r.dev != dev || !r.v6);
        } else if was && up && lo {
            self.set_up(ns, &dev, true);
        }
    }

    /// A write of `net.ipv6.conf.{all,default,DEV}.disable_ipv6`: `all` also sets `default`
    /// and every link of the netns (addrconf_disable_ipv6), DEV only that link.
    pub(super) fn disable_ipv6_write(&mut self, ns: Option<&str>, sysctl: &str, value: &str) {
        let Some(conf) =
            sysctl.strip_prefix("net.ipv6.conf.").and_then(|k| k.strip_suffix(".disable_ipv6"))
        else {
            return;
        };
        let off = value.trim().parse::<i64>().is_ok_and(|v| v != 0);
        let targets: Vec<usize> = match conf {
            "default" => vec![],
            "all" => (0..self.links.len()).filter(|&i| self.links[i].ns.as_deref() == ns).collect(),
            dev => self.find(ns, &dev.replace('/', ".")).into_iter().collect(),
        };
        if conf == "all"
            && let Some(space) = self.spaces.get_mut(&key(ns))
        {
            space.sysctls.insert("net.ipv6.conf.default.disable_ipv6".into(), value.to_string());
        }
        for i in targets {
            self.set_v6_off(ns, i, off);
        }
    }

    pub(super) fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String> {
        let space = self.space(ns)?;
        // IPv6 on and off per link is the model's (`--no-ipv6`, writes to `all`).
        if let Some(conf) =
            key.strip_prefix("net.ipv6.conf.").and_then(|k| k.strip_suffix(".disable_ipv6"))
            && conf != "all"
            && conf != "default"
            // A dotted link name is written with `/` in a key (op::sysctl_path).
            && let Some(i) = self.find(ns, &conf.replace('/', "."))
        {
            return Ok(if self.links[i].v6_off { "1" } else { "0" }.into());
        }
        if let Some(v) = space.sysctls.get(key) {
            return Ok(v.clone());
        }
        if key.starts_with("net.ipv6.conf.") && key.ends_with(".disable_ipv6") {
            return Ok("0".into());
        }
        let no_such = || no_sysctl(key, ns);
        // Per-link keys exist only for links of that netns (and `all` / `default`).
        let parts: Vec<&str> = key.split('.').collect();
        let mut probe_key = key.to_string();
        if parts.len() >= 5 && matches!(parts[2], "conf" | "neigh") {
            let dev = parts[3];
            if dev != "all" && dev != "default" {
                if self.find(ns, &dev.replace('/', ".")).is_none() {
                    return Err(no_such());
                }
                probe_key = key.replacen(&format!(".{dev}."), ".default.", 1);
            }
        }
        // A fresh netns forwards nothing, whatever the machine running the plan does.
        if matches!(
            key,
            "net.ipv4.ip_forward" | "net.ipv6.conf.all.forwarding" | "net.ipv4.conf.all.forwarding"
        ) {
            return Ok("0".into());
        }
        // Anything else: this machine's value (a read of our own netns, nothing changes) as
        // the plausible answer for a fresh host.
        match std::fs::read_to_string(format!("/proc/sys/{}", probe_key.replace('.', "/"))) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such()),
            Err(_) => Ok("0".into()),
        }
    }

    // -----------------------------------------------------------------------------------
    // Probe tracing
    // -----------------------------------------------------------------------------------
}

/// Whitespace-separated decimal integers, as the kernel's proc_dointvec parses them (`-1`,
/// not `+1`).
pub(super) fn integers(s: &str) -> bool {
    let mut words = s.split_whitespace().peekable();
    words.peek().is_some()
        && words.all(|w| {
            let d = w.strip_prefix('-').unwrap_or(w);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        })
}
