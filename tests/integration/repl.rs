//! `nslab repl` driven through a real pseudo-terminal: tmux runs `nslab repl --sandbox` (or
//! `nslab run -i --sandbox`) in a detached session on a private socket; the test types with
//! `send-keys` and reads the screen with `capture-pane`, polling with a deadline.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{bin, kernel_tests_possible, recipe, root};

const WAIT: Duration = Duration::from_secs(20);

fn tmux_available() -> bool {
    let ok = Command::new("tmux").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have tmux for the REPL tests");
        eprintln!("skipping: the REPL tests need tmux (apt-get install tmux)");
    }
    ok
}

fn possible() -> bool {
    kernel_tests_possible() && tmux_available()
}

/// One nslab REPL in its own tmux server (socket `-L`), killed on drop.
struct Term {
    socket: String,
    state: PathBuf,
}

impl Term {
    /// Starts `nslab ARGS` in a 150x50 terminal, with a private history directory.
    fn start(args: &[&str]) -> Term {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!("nslab-repl-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let state = root().join("target").join("repl-state").join(&id);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let shell = format!(
            "cd '{}' && env NO_COLOR=1 XDG_STATE_HOME='{}' '{}' {}; echo \"[exited $?]\"; sleep 600",
            root().display(),
            state.display(),
            bin(),
            args.join(" ")
        );
        let t = Term { socket: id.clone(), state };
        let st = Command::new("tmux")
            .args(["-L", &id, "-f", "/dev/null", "new-session", "-d", "-s", &id, "-x", "150", "-y", "50", &shell])
            .env_remove("NSLAB_SANDBOX")
            .env_remove("TMUX")
            .status()
            .expect("tmux runs");
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (a trailing `;` would end the tmux command: escape it).
    fn typed(&self, text: &str) -> &Self {
        let arg = match text.strip_suffix(';') {
            Some(t) => format!("{t}\\;"),
            None => text.to_string(),
        };
        self.tmux(&["send-keys", "-t", &self.socket, "-l", "--", &arg]);
        self
    }

    /// Presses keys by tmux name: Enter, Tab, C-c, C-d.
    fn key(&self, k: &str) -> &Self {
        self.tmux(&["send-keys", "-t", &self.socket, k]);
        self
    }

    /// Types a line and presses Enter.
    fn line(&self, text: &str) -> &Self {
        self.typed(text).key("Enter")
    }

    /// The whole screen plus scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-1000", "-t", &self.socket])
    }

    /// Waits until the screen holds `n` occurrences of `text`; panics with the screen.
    fn wait_n(&self, text: &str, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if s.matches(text).count() >= n {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {text:?} (x{n}); the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait(&self, text: &str) -> String {
        self.wait_n(text, 1)
    }

    /// Waits for a line that is exactly `line` (output, as opposed to the echoed input).
    fn wait_line(&self, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if s.lines().any(|l| l.trim_end() == line) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for the line {line:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn history(&self) -> String {
        std::fs::read_to_string(self.state.join("nslab").join("history")).unwrap_or_default()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // Only this test's own server: its private socket.
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn repl() -> Term {
    let t = Term::start(&["repl", "--sandbox"]);
    t.wait("repl> ");
    t
}

#[test]
fn statements_run_at_once_and_persist() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line("let x = 40;").line("x + 2");
    t.wait_line("42");
    t.line("const NET = \"10.1.0.0/24\";").line("fn double(v) { v * 2 }");
    t.line("double(x)");
    t.wait_line("80");
    t.line("cidr::host(NET, 5)");
    t.wait_line("\"10.1.0.5/24\"");
    t.line("netns::add(\"red\");").line("netns::list()");
    t.wait_line("[\"internet\", \"red\"]");
    // A list of links prints as a table, not a debug dump.
    t.line("link::list(\"red\")");
    let s = t.wait("loopback");
    assert!(s.lines().any(|l| l.starts_with("name ") && l.contains("kind") && l.contains("state")), "{s}");
    // Statements are never re-run: red was added once (a second add would fail).
    assert!(!s.contains("already exists"), "{s}");
}

#[test]
fn a_multi_line_loop_continues_under_a_continuation_prompt() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line("for i in 0..3 {");
    t.wait("...> ");
    t.line("print(`n${i}`);");
    t.wait_n("...> ", 2);
    t.line("}");
    let s = t.wait_line("n2");
    assert!(s.contains("n0\nn1\nn2"), "{s}");
    // One history entry for the whole loop.
    t.line("1");
    t.wait_line("1");
    let h = t.history();
    assert!(h.lines().any(|l| l.starts_with("for i in 0..3 {\\n") && l.ends_with('}')), "history:\n{h}");
}

#[test]
fn an_error_is_a_diagnostic_and_the_session_goes_on() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line("netns::ad(\"red\");");
    let s = t.wait("did you mean netns::add?");
    assert!(s.contains("<repl:1>"), "the diagnostic names the entry:\n{s}");
    t.line("let = 5;");
    t.wait("syntax error");
    t.line("netns::add(\"blue\");").line("netns::exists(\"blue\")");
    t.wait_line("true");
    // An error inside a function defined in an earlier entry points into that entry.
    t.line("fn boom() {").line("netns::del(\"nope\");").line("}");
    t.line("boom()");
    let s = t.wait("inside `boom`");
    assert!(s.contains("<repl:") && s.contains("netns::del(\"nope\")"), "{s}");
    t.line("21 * 2");
    t.wait_line("42");
}

#[test]
fn tab_completes_functions_and_live_names() {
    if !possible() {
        return;
    }
    let t = repl();
    t.typed("netns::exi").key("Tab");
    t.wait("netns::exists(");
    // The sandbox's netns `internet` is live: completed inside the string argument.
    t.typed("\"inter").key("Tab");
    t.wait("netns::exists(\"internet\"");
    t.typed(")").key("Enter");
    t.wait_line("true");
    // Every function of a module.
    t.typed("netns::").key("Tab").key("Tab");
    let s = t.wait("exists");
    assert!(s.lines().any(|l| ["add", "del", "exec", "exists", "list"].iter().all(|f| l.split_whitespace().any(|w| w == *f))), "{s}");
    t.key("C-c");
    // Links inside the netns named by the first argument.
    t.line("netns::add(\"red\");");
    t.typed("link::up(\"red\", \"l").key("Tab");
    t.wait("link::up(\"red\", \"lo\"");
    t.typed(")").key("Enter");
    t.line("link::list(\"red\")[0].state");
    t.wait_line("\"up\"");
}

#[test]
fn help_shows_the_overview_and_a_functions_doc() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line(":help");
    let s = t.wait(":destroy");
    assert!(s.contains("netns    add del exec exists list"), "{s}");
    t.line(":help netns::add");
    let s = t.wait("Creates a named network namespace");
    assert!(s.contains("netns::add(name: string)") && s.contains("example:"), "{s}");
}

#[test]
fn ctrl_c_stops_a_long_loop_and_cancels_a_line_without_leaving() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line("let n = 0;").line("loop { n += 1; }");
    std::thread::sleep(Duration::from_millis(500));
    t.key("C-c");
    t.wait("stopped here");
    t.line("n > 1000");
    t.wait_line("true");
    // Ctrl-C at the prompt drops the line being typed.
    t.typed("netns::add(\"zzz\")").key("C-c");
    t.line("netns::exists(\"zzz\")");
    t.wait_line("false");
}

#[test]
fn ctrl_d_leaves() {
    if !possible() {
        return;
    }
    let t = repl();
    t.line("netns::add(\"red\");").line("netns::exists(\"red\")");
    t.wait_line("true");
    t.key("C-d");
    let s = t.wait("[exited 0]");
    assert!(s.contains("lab repl (1 operations) vanishes with the sandbox"), "{s}");
}

#[test]
fn load_show_and_destroy() {
    if !possible() {
        return;
    }
    let file = recipe(
        "repl-load.rhai",
        "param hosts = [\"red\", \"green\"];\nlet loaded = true;\nfor h in hosts { netns::add(h); }\n",
    );
    let t = repl();
    t.line(&format!(":load {file}"));
    t.wait(&format!("loaded {file}: 2 new operations"));
    t.line("loaded && hosts.len() == 2");
    t.wait_line("true");
    t.line(":show");
    let s = t.wait("netns red");
    assert!(s.contains("netns green") && s.contains("lab repl: 2 operations"), "{s}");
    t.line(":destroy");
    t.wait("removed lab repl: 2 operations undone");
    t.line("netns::list()");
    t.wait_line("[\"internet\"]");
}

#[test]
fn run_interactive_opens_the_repl_with_the_recipes_variables() {
    if !possible() {
        return;
    }
    let file = recipe(
        "repl-run-i.rhai",
        "import \"lab\" as lab;\nparam hosts = [\"red\"];\nlet greeting = \"hi\";\nfn twice(v) { v + v }\nnetns::add(hosts[0]);\n",
    );
    let t = Term::start(&["run", "-i", "--sandbox", &file]);
    t.wait("repl-run-i> ");
    t.line("twice(greeting)");
    t.wait_line("\"hihi\"");
    t.line("netns::list()");
    t.wait_line("[\"internet\", \"red\"]");
    // The recipe's imports stay usable.
    t.typed("lab::").key("Tab").key("Tab");
    t.wait("attach");
    t.key("C-c").key("C-d");
    let s = t.wait("[exited 0]");
    assert!(s.contains("lab repl-run-i (1 operations) vanishes with the sandbox"), "{s}");
}

/// Without a terminal (input piped in) the REPL reads entries the same way: useful for
/// scripting, and a check that needs no tmux.
#[test]
fn piped_input_runs_entry_by_entry() {
    if !kernel_tests_possible() {
        return;
    }
    let state = root().join("target").join("repl-state").join(format!("piped-{}", std::process::id()));
    let mut child = Command::new(bin())
        .args(["repl", "--sandbox"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", &state)
        .env_remove("NSLAB_SANDBOX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let hosts = [\"red\",\n  \"green\"];\nfor h in hosts {\n  netns::add(h);\n}\nnetns::ad(\"x\");\nnetns::list()\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&state);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("[\"green\", \"internet\", \"red\"]"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("did you mean netns::add?"), "{stderr}");
}
