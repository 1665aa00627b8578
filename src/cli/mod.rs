//! The command line: one file per subcommand.

mod capture;
mod completions;
mod defs;
mod destroy;
mod doc;
mod doctor;
mod graph;
mod info;
mod ls;
mod plan;
mod recipe_args;
pub(crate) mod repl;
mod run;
mod sandbox;
mod show;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::script::diagnostic::Diag;

#[derive(Parser, Debug)]
#[command(
    name = "nslab",
    version,
    about = "Programmable Linux network labs: Rhai recipes drive netns, bridges, veths, routes and NAT"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a recipe: build its lab (rolled back if anything fails)
    Run(run::Args),
    /// Remove a lab: exactly what its recipe created, even after a crash
    Destroy(destroy::Args),
    /// List the labs that are up: objects, recipe, parameters, age
    Ls(ls::Args),
    /// Show the live kernel state as a tree (or JSON): namespaces, links, addresses,
    /// bridges, routes, NAT; with LAB only what that lab owns
    Show(show::Args),
    /// Check this host for what would break a lab, and say how to fix it
    Doctor(doctor::Args),
    /// Run a command in a fresh sandbox (private network + mount namespace with a simulated
    /// internet); without a command, a shell
    Sandbox(sandbox::Args),
    /// Explore and build a lab live: statements run at once, with completion and history
    Repl(repl::Args),
    /// Print the bash script of ip/iptables/sysctl commands a recipe stands for (changes
    /// nothing, needs no root)
    Plan(plan::Args),
    /// Show a recipe's description and parameters without running it
    Info(info::Args),
    /// The reference of the script functions: all, a module, or MODULE::FUNCTION
    Doc(doc::Args),
    /// Write .d.rhai definition files of the script API for editors
    Defs(defs::Args),
    /// Draw the live topology (namespaces, links, bridges, veth pairs, NAT) as Mermaid, DOT,
    /// SVG or a self-contained HTML page; with LAB only what that lab owns
    Graph(graph::Args),
    /// Print the packets on a link as they pass, like `tcpdump -n -i DEV`, until Ctrl-C
    Capture(capture::Args),
    /// Print a shell completion script: `source <(nslab completions bash)`
    Completions(completions::Args),
}

/// A failure already shown to the user as a diagnostic; carries the exit code.
pub struct Failed(pub u8);

pub fn main() -> ExitCode {
    install_report_hook();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Destroy(a) => destroy::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Show(a) => show::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Sandbox(a) => sandbox::run(a),
        Command::Repl(a) => repl::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Info(a) => info::run(a),
        Command::Doc(a) => doc::run(a),
        Command::Defs(a) => defs::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Capture(a) => capture::run(a),
        Command::Completions(a) => completions::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(code)) => ExitCode::from(code),
    }
}

fn install_report_hook() {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(true)
                .terminal_links(false)
                .width(100)
                .break_words(false)
                .build(),
        )
    }));
}

/// Prints a diagnostic to stderr.
pub fn report(d: Diag) {
    use std::io::Write;
    // Not eprintln!: a closed stderr (`2>&1 | head -0`) must not panic mid-rollback.
    let _ = writeln!(std::io::stderr(), "{:?}", miette::Report::new(d));
}

/// Prints a diagnostic and fails with exit code 1.
pub fn fail(d: impl Into<Diag>) -> Failed {
    report(d.into());
    Failed(1)
}

/// "1 operation", "2 operations".
pub fn ops(n: usize) -> String {
    if n == 1 { "1 operation".into() } else { format!("{n} operations") }
}
