use rhai::plugin::*;

#[export_module]
pub mod host_mod {
    use crate::script::RhaiResultOf;
    use crate::script::modules::netns::run;

    /// Runs a command where nslab runs — the host, or the sandbox's root namespace under
    /// `--sandbox` — and waits for it, like `netns::exec` does inside a netns (same timeout,
    /// output limits and background handling). `cmd` is split on white space. Returns
    /// `#{status, stdout, stderr}`.
    ///
    /// ```rhai
    /// let r = host::exec("ip -br link");
    /// print(r.stdout);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn exec(ctx: NativeCallContext, cmd: &str) -> RhaiResultOf<rhai::Map> {
        let argv = cmd.split_whitespace().map(str::to_string).collect();
        run(&ctx, None, argv, None)
    }

    /// Runs a command where nslab runs, with options: `timeout_ms` kills it after that many
    /// milliseconds and fails the call.
    ///
    /// ```rhai
    /// let r = host::exec("sleep 1", #{timeout_ms: 5000});
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_opts(
        ctx: NativeCallContext,
        cmd: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::Map> {
        let argv = cmd.split_whitespace().map(str::to_string).collect();
        run(&ctx, None, argv, Some(opts))
    }

    /// Runs a command given as an array of arguments (not split) where nslab runs.
    ///
    /// ```rhai
    /// let r = host::exec(["sh", "-c", "echo hello from the host"]);
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_array(ctx: NativeCallContext, args: rhai::Array) -> RhaiResultOf<rhai::Map> {
        let argv = args.into_iter().map(|a| a.to_string()).collect();
        run(&ctx, None, argv, None)
    }

    /// Runs an array of arguments where nslab runs, with options (`timeout_ms`).
    ///
    /// ```rhai
    /// let r = host::exec(["sh", "-c", "sleep 1"], #{timeout_ms: 5000});
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_array_opts(
        ctx: NativeCallContext,
        args: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::Map> {
        let argv = args.into_iter().map(|a| a.to_string()).collect();
        run(&ctx, None, argv, Some(opts))
    }
}
