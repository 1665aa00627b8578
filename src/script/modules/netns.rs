use rhai::plugin::*;

use crate::script::modules::check_opts;
use crate::script::{RhaiResultOf, fail, invalid, query, to_dyn};

/// `netns::exec` and `host::exec`: `ns` None runs where nslab runs.
pub fn run(
    ctx: &NativeCallContext,
    ns: Option<String>,
    argv: Vec<String>,
    opts: Option<rhai::Map>,
) -> RhaiResultOf<rhai::Map> {
    if argv.is_empty() {
        return Err(fail(
            ctx,
            invalid("empty command", "pass a string like \"ip -br addr\" or an array of arguments"),
        ));
    }
    let mut timeout = None;
    if let Some(opts) = opts {
        check_opts(ctx, &opts, &["timeout_ms"])?;
        if let Some(t) = opts.get("timeout_ms") {
            let ms = t.as_int().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                fail(
                    ctx,
                    invalid(
                        format!("timeout_ms must be a positive integer, not {t}"),
                        "e.g. #{timeout_ms: 5000} for five seconds",
                    ),
                )
            })?;
            timeout = Some(std::time::Duration::from_millis(ms as u64));
        }
    }
    let out = query(ctx, |b| b.exec(ns.as_deref(), argv, timeout))?;
    let mut m = rhai::Map::new();
    m.insert("status".into(), to_dyn(&(out.status as rhai::INT)));
    m.insert("stdout".into(), out.stdout.into());
    m.insert("stderr".into(), out.stderr.into());
    Ok(m)
}

#[export_module]
pub mod netns_mod {
    use super::run;
    use crate::net::Op;
    use crate::script::modules::nsname;
    use crate::script::{RhaiResultOf, apply, query};

    /// Creates a named network namespace, like `ip netns add NAME`. `ip netns` sees it.
    ///
    /// ```rhai
    /// netns::add("red");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn add(ctx: NativeCallContext, name: &str) -> RhaiResultOf<()> {
        let name = nsname(&ctx, name)?.unwrap_or_default();
        apply(&ctx, Op::NetnsAdd { name })
    }

    /// Deletes a network namespace this lab created, like `ip netns del NAME`.
    ///
    /// ```rhai
    /// netns::del("red");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, name: &str) -> RhaiResultOf<()> {
        let name = nsname(&ctx, name)?.unwrap_or_default();
        apply(&ctx, Op::NetnsDel { name })
    }

    /// The names of all named network namespaces, like `ip netns ls`.
    ///
    /// ```rhai
    /// for ns in netns::list() { print(ns); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.netns_list()).map(|v| v.into_iter().map(Dynamic::from).collect())
    }

    /// Whether a named network namespace exists.
    ///
    /// ```rhai
    /// if !netns::exists("red") { netns::add("red"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn exists(ctx: NativeCallContext, name: &str) -> RhaiResultOf<bool> {
        query(&ctx, |b| b.netns_exists(name))
    }

    /// Runs a command inside a netns, like `ip netns exec NAME CMD`, and waits for it.
    /// `cmd` is a string split on white space (`args`: an array of arguments, not split).
    /// Returns `#{status, stdout, stderr}`. Ctrl-C or SIGTERM kills the command and stops
    /// the run. Something the command leaves running in the background (`sh -c "srv &"`)
    /// keeps running until the lab is rolled back or destroyed; the call returns when the
    /// command exits (with the output so far if the background process holds it open).
    /// As under `ip netns exec`, the command sees the netns's own sysfs
    /// (`/sys/class/net` lists its links) and the files of `/etc/netns/NAME/` over `/etc`.
    ///
    /// ```rhai
    /// let r = netns::exec("red", "ip -br addr");
    /// print(r.stdout);
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_str(ctx: NativeCallContext, name: &str, cmd: &str) -> RhaiResultOf<rhai::Map> {
        let argv = cmd.split_whitespace().map(str::to_string).collect();
        run(&ctx, nsname(&ctx, name)?, argv, None)
    }

    /// Runs a command inside a netns, with options.
    /// `timeout_ms` kills it after that many milliseconds and fails the call (catch it with
    /// `try`/`catch`).
    ///
    /// ```rhai
    /// let r = netns::exec("red", "ping -c 1 10.0.0.1", #{timeout_ms: 2000});
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_str_opts(
        ctx: NativeCallContext,
        name: &str,
        cmd: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::Map> {
        let argv = cmd.split_whitespace().map(str::to_string).collect();
        run(&ctx, nsname(&ctx, name)?, argv, Some(opts))
    }

    /// Runs a command given as an array of arguments inside a netns.
    ///
    /// ```rhai
    /// let r = netns::exec("red", ["sh", "-c", "echo hi"]);
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_array(
        ctx: NativeCallContext,
        name: &str,
        args: rhai::Array,
    ) -> RhaiResultOf<rhai::Map> {
        let argv = args.into_iter().map(|a| a.to_string()).collect();
        run(&ctx, nsname(&ctx, name)?, argv, None)
    }

    /// Runs an array of arguments inside a netns, with options (`timeout_ms`).
    ///
    /// ```rhai
    /// let r = netns::exec("red", ["sh", "-c", "sleep 1"], #{timeout_ms: 5000});
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_array_opts(
        ctx: NativeCallContext,
        name: &str,
        args: rhai::Array,
        opts: rhai::Map,
    ) -> RhaiResultOf<rhai::Map> {
        let argv = args.into_iter().map(|a| a.to_string()).collect();
        run(&ctx, nsname(&ctx, name)?, argv, Some(opts))
    }
}
