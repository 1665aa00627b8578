//! `nslab run RECIPE`: build a lab; roll it back if anything fails.

use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::recipe_args::{Loaded, RecipeArgs};
use super::{Failed, fail, ops, report};
use crate::lab::{self, Session, journal};
use crate::net::NetError;
use crate::script::diagnostic::Diag;
use crate::script::set_backend;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Run in a throwaway private network + mount namespace with a simulated internet
    #[arg(long)]
    sandbox: bool,
    /// Keep what was built when the run fails (remove it later with `nslab destroy LAB`)
    #[arg(long)]
    keep_on_error: bool,
    /// Destroy the lab first if it is already up, then build it again
    #[arg(long)]
    replace: bool,
    /// Print the equivalent ip/iptables/sysctl command of each operation as it runs
    #[arg(long)]
    explain: bool,
    /// Then open the REPL with the recipe's variables in scope (like `python -i`); the lab
    /// is kept, also when the recipe fails
    #[arg(short, long)]
    interactive: bool,
    /// Turn IPv6 off in every netns the lab creates and on every link it creates elsewhere
    /// (no link-local addresses, no IPv6 at all there). For very large labs: IPv6 chatter on
    /// one bridge grows as the square of its ports
    #[arg(long)]
    no_ipv6: bool,
}

pub fn run(a: Args) -> Result<(), Failed> {
    // Before anything can start a thread: threads started earlier would stay on the host
    // (see `sandbox::enter`). Without root the sandbox makes a user namespace of its own, in
    // which nslab has the capabilities the check below asks for (or says why it cannot).
    if a.sandbox {
        lab::sandbox::enter().map_err(fail)?;
    }
    // What would make the run fail, said before anything is touched (cheap: no process).
    super::doctor::preflight_privileges().map_err(fail)?;
    let Loaded { lab, overrides, engine, recipe: r } = a.recipe.load()?;
    super::doctor::preflight_iptables(&r).map_err(fail)?;

    if a.replace && journal::exists(&lab) {
        let errors = lab::destroy(&lab);
        if !errors.is_empty() {
            for e in errors {
                report(Diag::plain(&e));
            }
            return Err(fail(NetError::new(format!(
                "could not remove the old lab {lab}; nothing new was built"
            ))));
        }
        say(format_args!("destroyed the old lab {lab} (--replace)"));
    }
    // Every parameter the lab was built with (`nslab ls`), as set or as declared.
    let params: Vec<(String, String)> = r
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                overrides.get(&p.name).cloned().unwrap_or_else(|| p.default_text.clone()),
            )
        })
        .collect();
    let session = Rc::new(
        // Absolute: `nslab ls` may run from anywhere.
        Session::start(
            &lab,
            Some(
                std::path::absolute(&r.path)
                    .unwrap_or_else(|_| r.path.clone())
                    .display()
                    .to_string(),
            ),
            params,
            a.explain,
        )
        .map_err(fail)?,
    );
    session.kernel().set_no_ipv6(a.no_ipv6);
    // veth::add + link::set_netns as one kernel request; not in the REPL, where a veth must
    // exist as soon as its line returns (Kernel::set_defer_veth).
    session.kernel().set_defer_veth(!a.interactive);
    set_backend(Some(session.clone()));
    lab::catch_signals();

    let mut scope = rhai::Scope::new();
    let result = r.run(&engine, &mut scope);
    // What is still held back is made now; if that fails, the run fails and rolls back (the
    // error shown at the call it belongs to).
    let result =
        result.and_then(|()| crate::lab::Backend::settle(&*session).map_err(|e| r.late_error(&e)));
    // A signal during the last Op (say iptables for the last nat rule) finds no next Op to
    // stop at: without this check the run said "lab is up" and exited 0 (issue 14).
    let result = result.and_then(|()| match lab::INTERRUPTED.load(Ordering::Relaxed) {
        true => Err(Diag::plain(
            &NetError::new("interrupted").with_errno(libc::EINTR).with_help(
                "a signal (Ctrl-C, SIGTERM, SIGHUP) came while the last operation ran: the lab is rolled back",
            ),
        )),
        false => Ok(()),
    });
    if a.interactive {
        let failed = result.is_err();
        if let Err(d) = result {
            report(d);
            warn(format_args!(
                "what lab {lab} built before the failure is kept for you to explore (`:destroy` removes it)"
            ));
        }
        super::repl::after_recipe(engine, scope, &r, session, a.sandbox, a.explain)?;
        // Exit code 0 means the recipe succeeded, also when a REPL came after it.
        return if failed { Err(Failed(1)) } else { Ok(()) };
    }
    set_backend(None);
    if a.sandbox {
        // The sandbox ends with nslab (whatever the result): so does what the lab left
        // running in the background, which would otherwise hold its namespaces.
        lab::stop_backgrounds(&lab);
    }
    match result {
        Ok(()) => {
            session.finish().map_err(fail)?;
            let n = session.applied();
            if n > 0 {
                if a.sandbox {
                    say(format_args!(
                        "lab {lab} is up ({}); the sandbox vanishes now that nslab exits",
                        ops(n)
                    ));
                } else {
                    say(format_args!(
                        "lab {lab} is up ({}); remove it with `nslab destroy {lab}`",
                        ops(n)
                    ));
                }
            }
            Ok(())
        }
        Err(d) => {
            report(d);
            let n = session.applied();
            if a.keep_on_error {
                warn(format_args!(
                    "kept {} of lab {lab} for debugging; remove them with `nslab destroy {lab}`",
                    ops(n)
                ));
            } else {
                let errors = session.rollback();
                if errors.is_empty() && n > 0 {
                    warn(format_args!(
                        "rolled back {} of lab {lab}: nothing is left behind",
                        ops(n)
                    ));
                } else if !errors.is_empty() {
                    for e in errors {
                        report(Diag::plain(&e));
                    }
                    warn(format_args!(
                        "rollback of lab {lab} was incomplete; `nslab destroy {lab}` retries it"
                    ));
                }
            }
            Err(Failed(1))
        }
    }
}

/// A line on stdout, whatever became of it: `nslab run r.rhai | head -0` closed the pipe, and
/// `println!` panicked (exit 101) after the lab was built (issue 14).
fn say(line: std::fmt::Arguments) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A line on stderr, whatever became of it (see [`say`]).
fn warn(line: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
