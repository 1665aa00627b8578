use rhai::plugin::*;

#[export_module]
pub mod sandbox_mod {
    /// Whether nslab runs in a sandbox (`--sandbox`, `nslab sandbox`).
    ///
    /// ```rhai
    /// if sandbox::active() { print("safe to experiment"); }
    /// ```
    pub fn active() -> bool {
        crate::lab::sandbox::active()
    }

    /// The simulated internet's address (203.0.113.1) in a sandbox, `()` elsewhere. Recipes
    /// probe the outside world only through it.
    ///
    /// ```rhai
    /// let up = sandbox::internet();
    /// if up != () { print(probe::ping("red", up).ok); }
    /// ```
    pub fn internet() -> Dynamic {
        if crate::lab::sandbox::active() {
            crate::lab::sandbox::INTERNET_ADDR.into()
        } else {
            Dynamic::UNIT
        }
    }
}
