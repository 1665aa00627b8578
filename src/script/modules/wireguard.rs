use rhai::plugin::*;

#[export_module]
pub mod wireguard_mod {
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, check};

    /// A new WireGuard key pair, like `wg genkey` and `wg pubkey`: `#{private_key,
    /// public_key}`, both base64 (made here from the kernel's random numbers; no `wg`
    /// binary). The private key is for `wireguard::set`; nslab never prints it.
    ///
    /// ```rhai
    /// let keys = wireguard::keypair();
    /// print(keys.public_key);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn keypair(ctx: NativeCallContext) -> RhaiResultOf<rhai::Map> {
        let (private, public) = check(&ctx, crate::net::wireguard::keypair())?;
        let mut m = rhai::Map::new();
        m.insert("private_key".into(), private.into());
        m.insert("public_key".into(), public.into());
        Ok(m)
    }

    /// Configures a WireGuard link (made with `link::add(DEV, "wireguard")`), like `wg set`:
    /// `#{private_key, listen_port, peers: [#{public_key, endpoint, allowed_ips}]}`. Keys are
    /// base64 (`wireguard::keypair()`); `endpoint` is `"IP:PORT"`, `allowed_ips` prefixes (a
    /// string or an array). `peers` replaces the link's peers. The private key is never
    /// printed: `--explain`, `plan`, the journal, `ls` and `show` say `<private key>`; it is
    /// kept in a 0600 file beside the lab's journal.
    ///
    /// ```rhai
    /// let k = wireguard::keypair();
    /// link::add("wg0", "wireguard");
    /// wireguard::set("wg0", #{private_key: k.private_key, listen_port: 51820});
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set(ctx: NativeCallContext, dev: &str, opts: rhai::Map) -> RhaiResultOf<()> {
        super::wg_set(&ctx, None, dev, opts)
    }

    /// `wireguard::set` for a WireGuard link inside a netns.
    ///
    /// ```rhai
    /// wireguard::set("a", "wg0", #{private_key: ka.private_key, listen_port: 51820,
    ///     peers: [#{public_key: kb.public_key, endpoint: "192.168.60.2:51820",
    ///               allowed_ips: ["10.60.0.2/32"]}]});
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set_ns(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::wg_set(&ctx, ns, dev, opts)
    }
}

/// `wireguard::set` in both forms: the options checked (keys, endpoints, prefixes), then
/// one Op.
fn wg_set(
    ctx: &NativeCallContext,
    ns: Option<String>,
    dev: &str,
    opts: rhai::Map,
) -> crate::script::RhaiResultOf<()> {
    let dev = crate::script::modules::ifname(ctx, dev)?;
    let s = crate::script::check(ctx, crate::script::modules::link_opts::wg_set(&opts))?;
    crate::script::apply(
        ctx,
        crate::net::Op::WireguardSet {
            ns,
            dev,
            private_key: s.private_key,
            listen_port: s.listen_port,
            peers: s.peers,
        },
    )
}
