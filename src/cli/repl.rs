//! `nslab repl`: explore and build a lab live. Every entry runs at once against the kernel
//! and what it creates belongs to the REPL's lab; variables, constants, functions and
//! imports persist between entries, but no statement ever runs twice.
//!
//! Persistence without re-running: the session keeps a Scope (variables, constants) and an
//! AST holding only function definitions. Each entry is compiled alone, merged onto that
//! AST (its functions replace older ones of the same name and arity), and the merged AST —
//! old functions plus the entry's statements — runs in the kept Scope; then its statements
//! are cleared again. Imports live in Rhai's per-run state, so after an entry imports a
//! module, the module is registered as a static module of the engine.

mod complete;
mod docs;
mod input;
mod print;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Expr, Scope, Stmt};
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{ColorMode, CompletionType, Editor, EventHandler, KeyCode, KeyEvent, Modifiers};

use super::{Failed, fail, report};
use crate::lab::teardown::Owned;
use crate::lab::{self, INTERRUPTED, Session, journal};
use crate::net::{Kernel, NetError};
use crate::script::diagnostic::{self, Diag, Source};
use crate::script::param::Overrides;
use crate::script::recipe::{self, Recipe};
use crate::script::{engine, set_backend};
use complete::Names;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run in a throwaway private network + mount namespace with a simulated internet
    #[arg(long)]
    sandbox: bool,
    /// The lab the REPL builds; a lab of that name that is already up is continued
    #[arg(long, default_value = "repl")]
    lab: String,
    /// Print the equivalent ip/iptables/sysctl command of each operation as it runs
    #[arg(long)]
    explain: bool,
}

pub fn run(a: Args) -> Result<(), Failed> {
    // Before anything can start a thread: threads started earlier would stay on the host
    // (see `sandbox::enter`).
    if a.sandbox {
        lab::sandbox::enter().map_err(fail)?;
    }
    super::doctor::preflight_privileges().map_err(fail)?;
    journal::check_lab_name(&a.lab).map_err(fail)?;
    let resumed = journal::exists(&a.lab);
    let session = Rc::new(Session::resume_or_start(&a.lab, a.explain).map_err(fail)?);
    if resumed {
        println!("continuing lab {} ({} so far)", a.lab, super::ops(session.applied()));
        // Two processes extending one lab each know only their own objects in memory.
        if let Some(pid) = journal::running_pid(&a.lab) {
            eprintln!("note: nslab process {pid} that started lab {} is still running", a.lab);
        }
    }
    let engine = engine::build(Overrides::new(), None);
    Repl::new(engine, Scope::new(), AST::empty(), session, a.sandbox, a.explain).interact()
}

/// `nslab run -i RECIPE`: after the recipe ran (or failed), explore its lab with the
/// recipe's variables, functions and imports in scope.
pub fn after_recipe(
    engine: Engine,
    scope: Scope<'static>,
    recipe: &Recipe,
    session: Rc<Session>,
    sandbox: bool,
    explain: bool,
) -> Result<(), Failed> {
    let mut fns = recipe.ast.clone();
    fns.clear_statements();
    let mut repl = Repl::new(engine, scope, fns, session, sandbox, explain);
    for f in recipe.ast.iter_functions() {
        repl.fn_origin.insert(f.name.to_string(), recipe.source.name.clone());
    }
    repl.sources.insert(recipe.source.name.clone(), recipe.source.clone());
    repl.keep_imports(&recipe.ast, &recipe.source.name, None);
    repl.interact()
}

enum Flow {
    Continue,
    Quit,
}

struct Repl {
    engine: Engine,
    scope: Scope<'static>,
    /// Every function defined so far; never any statements.
    fns: AST,
    /// Function name -> the source (`<repl:N>`, a recipe path) of its latest definition.
    fn_origin: HashMap<String, String>,
    /// Texts of earlier entries, for diagnostics inside functions they defined.
    sources: HashMap<String, Source>,
    entries: usize,
    session: Rc<Session>,
    sandbox: bool,
    explain: bool,
    names: Rc<RefCell<Names>>,
    color: bool,
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// The terminal's settings before rustyline made it raw, for the SIGTERM handler.
static COOKED: OnceLock<libc::termios> = OnceLock::new();

/// SIGTERM and SIGHUP end the REPL as their default would, but first give the terminal its
/// settings back: killed at the prompt, rustyline leaves it raw (no echo, no line editing)
/// for the shell that follows.
extern "C" fn on_term(sig: libc::c_int) {
    // SAFETY: tcsetattr, signal and raise are async-signal-safe (signal-safety(7));
    // OnceLock::get is an atomic load.
    unsafe {
        if let Some(t) = COOKED.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
        // Still here: nslab is PID 1 of its sandbox, which a signal's default action
        // does not end (see lab::sandbox's init).
        libc::_exit(128 + sig);
    }
}

/// Ctrl-C while a statement runs stops it at its next step (the engine's progress hook and
/// `Session::apply` both look at INTERRUPTED) instead of ending nslab. At the prompt the
/// terminal is in raw mode, so Ctrl-C arrives as a key and only cancels the line.
/// SIGTERM and SIGHUP end nslab as by default (`nslab run` catches them to roll back): a
/// REPL's lab is meant to outlive the process anyway.
fn catch_signals(tty: bool) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    if tty {
        // SAFETY: a zeroed termios is a valid buffer for tcgetattr to fill.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid termios to write to.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } == 0 {
            let _ = COOKED.set(t);
        }
    }
    let on = SigAction::new(SigHandler::Handler(on_sigint), SaFlags::SA_RESTART, SigSet::empty());
    let end = SigAction::new(SigHandler::Handler(on_term), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handlers only store to an atomic, or restore the terminal and re-raise.
    unsafe {
        let _ = sigaction(Signal::SIGINT, &on);
        let _ = sigaction(Signal::SIGTERM, &end);
        let _ = sigaction(Signal::SIGHUP, &end);
    }
}

/// `$XDG_STATE_HOME/nslab/history`, else `~/.local/state/nslab/history`.
pub fn history_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|s| !s.is_empty() && Path::new(s).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(state.join("nslab").join("history"))
}

/// Points frames of REPL-defined functions at the entry that defined them: Rhai names the
/// running AST (the current entry) as their source, since merged functions carry none.
fn relocate(e: &mut EvalAltResult, origin: &HashMap<String, String>, here: &str) {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, src, inner, _) => {
            if (src.is_empty() || src == here)
                && let Some(o) = origin.get(name.as_str())
            {
                *src = o.clone();
            }
            relocate(inner, origin, here);
        }
        EvalAltResult::ErrorInModule(_, inner, _) => relocate(inner, origin, here),
        _ => {}
    }
}

/// Stopped by Ctrl-C: by the progress hook, or by `Session::apply` refusing (EINTR).
fn interrupted(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorTerminated(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => interrupted(inner),
        EvalAltResult::ErrorRuntime(v, _) => {
            v.clone().try_cast::<NetError>().is_some_and(|n| n.errno == Some(libc::EINTR))
        }
        _ => false,
    }
}

impl Repl {
    fn new(
        engine: Engine,
        scope: Scope<'static>,
        fns: AST,
        session: Rc<Session>,
        sandbox: bool,
        explain: bool,
    ) -> Repl {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let names = Rc::new(RefCell::new(Names::default()));
        let mut repl = Repl {
            engine,
            scope,
            fns,
            fn_origin: HashMap::new(),
            sources: HashMap::new(),
            entries: 0,
            session,
            sandbox,
            explain,
            names,
            color,
        };
        repl.use_session(repl.session.clone());
        repl.refresh_names();
        repl
    }

    fn lab(&self) -> String {
        lab::Backend::lab(&*self.session).to_string()
    }

    fn use_session(&mut self, s: Rc<Session>) {
        set_backend(Some(s.clone()));
        self.names.borrow_mut().backend = Some(s.clone());
        self.session = s;
    }

    fn refresh_names(&mut self) {
        let mut n = self.names.borrow_mut();
        n.vars = self.scope.iter().map(|(name, _, _)| name.to_string()).collect();
        n.fns = self.fns.iter_functions().map(|f| f.name.to_string()).collect();
    }

    fn interact(mut self) -> Result<(), Failed> {
        let lab = self.lab();
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        catch_signals(tty);
        crate::script::diagnostic::set_in_repl(true);
        INTERRUPTED.store(false, Ordering::Relaxed);

        let prompt = format!("{lab}> ");
        let look = input::Look::new(&prompt, self.color);
        let indent = look.indent.clone();
        // Forced, not Enabled: rustyline turns its highlighter off under NO_COLOR, and the
        // highlighter draws the continuation prompt (it emits no escapes under NO_COLOR).
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .max_history_size(1000)
            .and_then(|c| c.history_ignore_dups(true))
            .map(|c| {
                c.history_ignore_space(true)
                    .auto_add_history(false)
                    .color_mode(ColorMode::Forced)
                    .build()
            })
            .map_err(|e| fail(NetError::new(format!("cannot set up the line editor: {e}"))))?;
        let mut rl: Editor<input::Helper, FileHistory> = Editor::with_config(config)
            .map_err(|e| fail(NetError::new(format!("cannot set up the line editor: {e}"))))?;
        rl.set_helper(Some(input::Helper {
            completer: complete::Completer::new(self.names.clone()),
            hints: input::Hints::new(),
            look,
            validator: input::Complete,
        }));
        rl.bind_sequence(
            KeyEvent(KeyCode::Enter, Modifiers::NONE),
            EventHandler::Conditional(Box::new(input::EnterKey { indent })),
        );
        let history = history_path();
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.load_history(h);
        }
        if tty {
            let place = if self.sandbox { " in a sandbox" } else { "" };
            println!(
                "nslab repl{place}: lab {lab}. :help shows the commands, Tab completes, Ctrl-D leaves."
            );
        }

        loop {
            match rl.readline(&prompt) {
                Ok(entry) => {
                    if entry.trim().is_empty() {
                        continue;
                    }
                    let _ = rl.add_history_entry(entry.as_str());
                    if let Some(h) = &history {
                        let _ = rl.append_history(h);
                    }
                    if let Flow::Quit = self.entry(&entry) {
                        break;
                    }
                }
                // Ctrl-C at the prompt: the line is dropped, the session goes on.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    report(Diag::plain(&NetError::new(format!("cannot read input: {e}"))));
                    break;
                }
            }
        }
        self.leave();
        Ok(())
    }

    fn leave(&self) {
        set_backend(None);
        let lab = self.lab();
        if self.sandbox {
            // The sandbox ends with nslab: so does what the lab left running in it.
            lab::stop_backgrounds(&lab);
        }
        let n = self.session.applied();
        // Nothing built: no empty lab is left behind; else the journal is marked whole.
        let _ = self.session.finish();
        if n == 0 {
            return;
        }
        if self.sandbox {
            println!("lab {lab} ({}) vanishes with the sandbox", super::ops(n));
        } else {
            let again = if lab == "repl" {
                "`nslab repl`".to_string()
            } else {
                format!("`nslab repl --lab {lab}`")
            };
            println!(
                "lab {lab} stays up ({}): {again} continues it, `nslab destroy {lab}` removes it",
                super::ops(n)
            );
        }
    }

    fn entry(&mut self, text: &str) -> Flow {
        let t = text.trim();
        if t.starts_with(':') {
            return self.command(t);
        }
        self.entries += 1;
        let src = Source::new(format!("<repl:{}>", self.entries), text);
        match self.eval(&src, None) {
            Ok(v) => {
                let shown = print::render(&v, &print::Style { color: self.color });
                if !shown.is_empty() {
                    println!("{shown}");
                }
            }
            Err(d) => report(d),
        }
        Flow::Continue
    }

    /// Compiles and runs `src` in the session: its functions join the session's, its
    /// statements run once. `with` is the engine for a `:load`ed file (imports relative to it).
    fn eval(&mut self, src: &Source, with: Option<&Engine>) -> Result<Dynamic, Diag> {
        let engine = with.unwrap_or(&self.engine);
        let mut ast = engine.compile(&src.text).map_err(|e| diagnostic::parse_error(&e, src))?;
        ast.set_source(src.name.clone());
        for f in ast.iter_functions() {
            self.fn_origin.insert(f.name.to_string(), src.name.clone());
        }
        self.sources.insert(src.name.clone(), src.clone());
        let mut run = self.fns.merge(&ast);
        run.set_source(src.name.clone());

        INTERRUPTED.store(false, Ordering::Relaxed);
        let result = engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &run);
        INTERRUPTED.store(false, Ordering::Relaxed);

        run.clear_statements();
        self.fns = run;
        let imports = Self::imports(engine, &ast, &src.name);
        self.register(imports);
        self.refresh_names();
        result.map_err(|mut e| {
            relocate(&mut e, &self.fn_origin, &src.name);
            let sources = &self.sources;
            let mut d = diagnostic::eval_error(&e, src, &|name| {
                sources.get(name).cloned().or_else(|| recipe::lookup(name))
            });
            if interrupted(&e) {
                // The terminal echoed ^C on the current line.
                eprintln!();
                d.label = Some("stopped here".into());
                d.help = Some("what ran before this point stays; the session goes on".into());
            }
            d
        })
    }

    /// The modules `ast` imports at its top level under an alias, resolved again (the
    /// resolvers cache them, so nothing runs twice).
    fn imports(
        engine: &Engine,
        ast: &AST,
        source: &str,
    ) -> Vec<(String, rhai::Shared<rhai::Module>)> {
        let mut out = Vec::new();
        for stmt in ast.statements() {
            let Stmt::Import(x, _) = stmt else { continue };
            let (path, alias) = &**x;
            let Expr::StringConstant(path, pos) = path else { continue };
            if alias.name.is_empty() {
                continue;
            }
            if let Ok(m) = engine.module_resolver().resolve(engine, Some(source), path, *pos) {
                out.push((alias.name.to_string(), m));
            }
        }
        out
    }

    fn keep_imports(&mut self, ast: &AST, source: &str, with: Option<&Engine>) {
        let imports = Self::imports(with.unwrap_or(&self.engine), ast, source);
        self.register(imports);
    }

    fn register(&mut self, imports: Vec<(String, rhai::Shared<rhai::Module>)>) {
        for (alias, m) in imports {
            let mut fns: Vec<String> = m
                .gen_fn_signatures_with_mapper(Into::into)
                .filter_map(|s| s.split('(').next().map(str::to_string))
                .collect();
            fns.sort();
            fns.dedup();
            {
                let mut n = self.names.borrow_mut();
                n.imports.retain(|(a, _)| *a != alias);
                n.imports.push((alias.clone(), fns));
            }
            self.engine.register_static_module(alias, m);
        }
    }

    fn command(&mut self, t: &str) -> Flow {
        let (cmd, arg) =
            t.split_once(char::is_whitespace).map(|(c, a)| (c, a.trim())).unwrap_or((t, ""));
        match cmd {
            ":help" | ":h" | ":?" => self.help(arg),
            ":load" | ":l" => self.load(arg),
            ":show" | ":s" => self.show(),
            ":graph" | ":g" => self.graph(arg),
            ":destroy" => self.destroy(),
            ":quit" | ":q" | ":exit" => return Flow::Quit,
            _ => report(Diag::plain(
                &NetError::new(format!("unknown command {cmd}"))
                    .with_help(format!("commands: {}", complete::COMMANDS.join(" "))),
            )),
        }
        Flow::Continue
    }

    fn help(&self, topic: &str) {
        if topic.is_empty() {
            println!("{}", self.overview());
            return;
        }
        match docs::help(topic) {
            Some(t) => print!("{t}"),
            None => {
                let imported = self
                    .names
                    .borrow()
                    .imports
                    .iter()
                    .find(|(a, _)| a == topic)
                    .map(|(_, f)| f.join(" "));
                match imported {
                    Some(fns) => println!("{topic}:: (imported) has {fns}"),
                    None => report(Diag::plain(
                        &NetError::new(format!("no help for {topic}")).with_help(format!(
                            "try a module ({}) or MODULE::FUNCTION, e.g. `:help netns::add`",
                            docs::modules().join(", ")
                        )),
                    )),
                }
            }
        }
    }

    fn overview(&self) -> String {
        let lab = self.lab();
        let stays = if self.sandbox {
            "the lab vanishes with the sandbox".to_string()
        } else {
            format!("the lab stays up until `nslab destroy {lab}`")
        };
        let mut s = format!(
            "Statements run at once; what they create belongs to lab {lab}.\n\
             \x20 Enter runs a complete entry; an open ( [ {{ or string continues it on the next line.\n\
             \x20 Tab completes modules, functions, variables, and netns, link and bridge names in strings.\n\
             \x20 Ctrl-C cancels the line or stops a running statement; Ctrl-D or :quit leaves.\n\n\
             commands\n\
             \x20 :help [MODULE | MODULE::FUNCTION]  this overview, or a module's or function's reference\n\
             \x20 :load FILE                         run a recipe in this session (its variables stay)\n\
             \x20 :show                              the live tree of lab {lab}\n\
             \x20 :graph [FORMAT] [FILE]             draw lab {lab}: mermaid (default), dot, svg or html\n\
             \x20 :destroy                           remove everything lab {lab} made\n\
             \x20 :quit                              leave ({stays})\n\n\
             modules\n"
        );
        for m in docs::modules() {
            s.push_str(&format!("  {m:<8} {}\n", docs::functions(m).join(" ")));
        }
        for (m, ..) in crate::script::stdlib::STDLIB {
            s.push_str(&format!(
                "  {m:<8} {}   (import \"{m}\" as {m};)\n",
                docs::functions(m).join(" ")
            ));
        }
        for (alias, fns) in &self.names.borrow().imports {
            if !crate::script::stdlib::STDLIB.iter().any(|(m, ..)| m == alias) {
                s.push_str(&format!("  {alias:<8} {}   (imported)\n", fns.join(" ")));
            }
        }
        s.trim_end().to_string()
    }

    fn load(&mut self, arg: &str) {
        if arg.is_empty() {
            report(Diag::plain(
                &NetError::new("which file?").with_help("`:load scripts/tutorial.rhai`"),
            ));
            return;
        }
        // `:load "my lab.rhai"` as well as `:load my-lab.rhai`.
        let arg = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')).unwrap_or(arg);
        let path = PathBuf::from(arg);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                report(Diag::plain(
                    &NetError::new(format!("cannot read {arg}: {e}"))
                        .with_help("check the path; recipes are .rhai files"),
                ));
                return;
            }
        };
        let engine = recipe::engine_for(&path, Overrides::new());
        let src = Source::new(path.display().to_string(), text);
        let before = self.session.applied();
        match self.eval(&src, Some(&engine)) {
            Ok(_) => {
                let n = self.session.applied().saturating_sub(before);
                println!("loaded {arg}: {n} new operation{}", if n == 1 { "" } else { "s" })
            }
            Err(d) => report(d),
        }
    }

    /// `:show`: `nslab show LAB`'s tree of what the lab owns, live from the kernel.
    fn show(&self) {
        let lab = self.lab();
        let state = journal::read(&lab).and_then(|ops| {
            let owned = Owned::from_ops(&ops);
            super::show::collect(&Kernel::new(None)?, Some((&lab, &owned)))
        });
        match state {
            Ok(s) if s.namespaces.is_empty() => println!("lab {lab} has nothing yet"),
            Ok(s) => print!("{}", super::show::render(&s)),
            Err(e) => report(Diag::plain(&e)),
        }
    }

    /// `:graph [FORMAT] [FILE]`: the lab's topology, printed or written to FILE.
    fn graph(&self, arg: &str) {
        let mut words = arg.split_whitespace();
        let (mut format, mut file) = (None, None);
        for w in words.by_ref() {
            if super::graph::FORMATS.contains(&w) && format.is_none() {
                format = Some(w.to_string());
            } else if file.is_none() {
                file = Some(PathBuf::from(w));
            } else {
                report(Diag::plain(&NetError::new(format!("what is {w}?")).with_help(
                    "`:graph`, `:graph svg lab.svg`, `:graph lab.html` (the format from the extension)",
                )));
                return;
            }
        }
        let format = super::graph::pick_format(format.as_deref(), file.as_deref());
        let lab = self.lab();
        let r = super::graph::topology(Some(&lab))
            .and_then(|t| super::graph::write(&super::graph::render(&t, &format), file.as_deref()));
        match r {
            Ok(()) => {
                if let Some(f) = file {
                    println!("wrote {}", f.display());
                }
            }
            Err(e) => report(Diag::plain(&e)),
        }
    }

    fn destroy(&mut self) {
        let lab = self.lab();
        let n = self.session.applied();
        let errors = self.session.rollback();
        if errors.is_empty() {
            println!("removed lab {lab}: {} undone", super::ops(n));
        } else {
            for e in errors {
                report(Diag::plain(&e));
            }
            eprintln!(
                "lab {lab} was not removed completely; `:destroy` or `nslab destroy {lab}` retries"
            );
        }
        // A fresh session (a new journal) for whatever comes next.
        match Session::resume_or_start(&lab, self.explain) {
            Ok(s) => self.use_session(Rc::new(s)),
            Err(e) => report(Diag::plain(&e)),
        }
    }
}
