use rhai::plugin::*;

use crate::net::{Op, op::check_sysctl_key};
use crate::script::{RhaiResultOf, apply, check};

pub fn set_in(
    ctx: &NativeCallContext,
    ns: Option<String>,
    key: &str,
    value: String,
) -> RhaiResultOf<()> {
    check(ctx, check_sysctl_key(key))?;
    apply(ctx, Op::SysctlSet { ns, key: key.to_string(), value, old: None })
}

#[export_module]
pub mod sysctl_mod {
    use super::set_in;
    use crate::net::op::check_sysctl_key;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, check, query};

    /// Turns IPv4 forwarding on or off (`sysctl -w net.ipv4.ip_forward=1`): the host becomes
    /// a router for its labs. Restored when the lab is destroyed.
    ///
    /// ```rhai
    /// sysctl::ip_forward(true);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn ip_forward(ctx: NativeCallContext, on: bool) -> RhaiResultOf<()> {
        set_in(&ctx, None, "net.ipv4.ip_forward", if on { "1" } else { "0" }.into())
    }

    /// Turns IPv4 forwarding on or off inside a netns (each netns has its own).
    ///
    /// ```rhai
    /// sysctl::ip_forward("router", true);
    /// ```
    #[rhai_fn(name = "ip_forward", return_raw)]
    pub fn ip_forward_ns(ctx: NativeCallContext, ns: &str, on: bool) -> RhaiResultOf<()> {
        set_in(&ctx, nsname(&ctx, ns)?, "net.ipv4.ip_forward", if on { "1" } else { "0" }.into())
    }

    /// Reads a `net.*` sysctl here.
    ///
    /// ```rhai
    /// print(sysctl::get("net.ipv4.ip_forward"));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn get(ctx: NativeCallContext, key: &str) -> RhaiResultOf<String> {
        check(&ctx, check_sysctl_key(key))?;
        query(&ctx, |b| b.sysctl_get(None, key))
    }

    /// Reads a `net.*` sysctl inside a netns.
    ///
    /// ```rhai
    /// let f = sysctl::get("red", "net.ipv4.ip_forward");
    /// ```
    #[rhai_fn(name = "get", return_raw)]
    pub fn get_ns(ctx: NativeCallContext, ns: &str, key: &str) -> RhaiResultOf<String> {
        check(&ctx, check_sysctl_key(key))?;
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.sysctl_get(ns.as_deref(), key))
    }

    /// Sets a `net.*` sysctl here (the old value comes back when the lab is destroyed, unless
    /// someone changed it since; another lab relying on a different value makes it an error).
    /// As with sysctl(8), a link name with a dot is written with `/` in the key:
    /// `net.ipv4.conf.br/10.forwarding` for link `br.10`.
    ///
    /// ```rhai
    /// sysctl::set("net.ipv4.conf.all.rp_filter", 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set(ctx: NativeCallContext, key: &str, value: Dynamic) -> RhaiResultOf<()> {
        set_in(&ctx, None, key, value.to_string())
    }

    /// Sets a `net.*` sysctl inside a netns.
    ///
    /// ```rhai
    /// sysctl::set("red", "net.ipv6.conf.all.disable_ipv6", 1);
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set_ns(ctx: NativeCallContext, ns: &str, key: &str, value: Dynamic) -> RhaiResultOf<()> {
        set_in(&ctx, nsname(&ctx, ns)?, key, value.to_string())
    }
}
