use rhai::plugin::*;

#[export_module]
pub mod wireguard_mod {
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
}
