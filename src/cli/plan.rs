//! `nslab plan RECIPE`: the bash script of ip/iptables/sysctl commands that builds the same lab.
//! Runs the recipe against the plan executor (`lab::plan`): no kernel change, no root, no
//! journal.

use std::rc::Rc;

use super::recipe_args::{Loaded, RecipeArgs};
use super::{Failed, report};
use crate::lab::plan::Plan;
use crate::script::param::{Overrides, Param};
use crate::script::set_backend;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Plan what `nslab run --no-ipv6` does: IPv6 off in the lab's namespaces and on its
    /// host-side links
    #[arg(long)]
    no_ipv6: bool,
    /// Draw the topology the recipe would build instead of printing the script
    #[arg(long)]
    graph: bool,
    /// With --graph: mermaid, dot, svg or html (default: from -o's extension, else mermaid)
    #[arg(long, short = 'f', requires = "graph", value_parser = super::graph::FORMATS)]
    format: Option<String>,
    /// With --graph: write to FILE instead of stdout
    #[arg(long, short = 'o', value_name = "FILE", requires = "graph")]
    output: Option<std::path::PathBuf>,
}

pub fn run(a: Args) -> Result<(), Failed> {
    let Loaded { lab, overrides, mut engine, recipe: r } = a.recipe.load()?;

    // Inside `nslab sandbox` the host has the sandbox's uplink and `internet` netns, and
    // recipes take their sandbox-only branches: the plan knows them (without creating them).
    let sandboxed = crate::lab::sandbox::active();
    let plan = Rc::new(if sandboxed { Plan::new_sandboxed(&lab) } else { Plan::new(&lab) });
    plan.set_no_ipv6(a.no_ipv6);
    // What the recipe prints becomes comments: section titles read well between commands.
    let p = plan.clone();
    engine.on_print(move |s| p.comment(s));
    engine.on_debug(|s, src, pos| eprintln!("{} @ {pos:?}: {s}", src.unwrap_or("recipe")));

    set_backend(Some(plan.clone()));
    let result = r.run(&engine, &mut rhai::Scope::new());
    set_backend(None);
    if let Err(d) = result {
        report(d);
        if plan.ran_exec() {
            // A link `ip link add` made under netns::exec is real in a run, absent here.
            eprintln!(
                "nothing printed: the plan cannot see what `netns::exec` commands create (it runs none of them), so `nslab run` may not stop here"
            );
        } else if plan.answered_unknown() {
            // `().ok` fails here; the run's probe returns a map.
            eprintln!(
                "nothing printed: a probe the plan cannot answer returned `()` (not modelled), so `nslab run` may not stop here; check a probe's result for `()` before using it"
            );
        } else {
            eprintln!("nothing printed: `nslab run` would stop (and roll back) at this error too");
        }
        return Err(Failed(1));
    }
    if a.graph {
        let format = super::graph::pick_format(a.format.as_deref(), a.output.as_deref());
        let text = super::graph::render(&plan.topology(), &format);
        return super::graph::write(&text, a.output.as_deref()).map_err(super::fail);
    }
    super::doc::emit(&render(
        &r.path.display().to_string(),
        &lab,
        &r.params,
        &overrides,
        Host { sandboxed, no_ipv6: a.no_ipv6 },
        &plan.lines(),
    ));
    Ok(())
}

/// Where the plan is for, and how the run it stands for was asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    /// Inside `nslab sandbox`: the uplink and netns `internet` exist.
    pub sandboxed: bool,
    /// `--no-ipv6`.
    pub no_ipv6: bool,
}

/// The script: shebang, `set -e`, what it is, the params, then the plan's lines.
pub fn render(
    recipe: &str,
    lab: &str,
    params: &[Param],
    overrides: &Overrides,
    host: Host,
    lines: &[String],
) -> String {
    let mut out = String::from("#!/usr/bin/env bash\nset -e\n");
    let run = if host.no_ipv6 { "`nslab run --no-ipv6`" } else { "`nslab run`" };
    let place =
        if host.sandboxed { "this sandbox (uplink, netns internet)" } else { "a fresh host" };
    out += &comment(&format!(
        "nslab plan {recipe}: lab {lab} as {run} builds it, for {place}; run as root"
    ));
    if params.is_empty() {
        out += "# params: none\n";
    } else {
        out += "# params:\n";
        for p in params {
            out += &comment(&match overrides.get(&p.name) {
                Some(v) => format!("  {} = {v}  (--set)", p.name),
                None => format!("  {} = {}", p.name, p.default_text),
            });
        }
    }
    for l in lines {
        out += l;
        out.push('\n');
    }
    out
}

/// `text` as comment lines: a newline in a value (`--set`, a multi-line default, a file
/// name) continues the comment instead of starting a command.
fn comment(text: &str) -> String {
    text.split('\n').map(|l| format!("# {}\n", l.trim_end())).collect()
}
