//! `nslab repl` driven through a real pseudo-terminal: tmux runs `nslab repl --sandbox` (or
//! `nslab run -i --sandbox`) in a detached session on a private socket; the test types with
//! `send-keys` and reads the screen with `capture-pane`, polling with a deadline.
//!
//! Like a person, a test types the next entry once the prompt is back, so what an entry
//! printed is complete on the screen when the test reads it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{bin, kernel_tests_possible, recipe, root};

const WAIT: Duration = Duration::from_secs(20);
const MORE: &str = "...> ";

fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
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
    /// The socket file: tmux leaves it behind after kill-server.
    socket_path: Option<PathBuf>,
    state: PathBuf,
    prompt: String,
}

impl Term {
    /// Starts `nslab ARGS` in a 150x50 terminal with a private history directory, and waits
    /// for `prompt`.
    fn start(args: &[&str], prompt: &str) -> Term {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id =
            format!("nslab-repl-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let state = root().join("target").join("repl-state").join(&id);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let shell = format!(
            "cd '{}' && env NO_COLOR=1 XDG_STATE_HOME='{}' '{}' {}; echo \"[exited $?] [tty $(stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon')]\"; sleep 600",
            root().display(),
            state.display(),
            bin(),
            args.join(" ")
        );
        let mut t =
            Term { socket: id.clone(), socket_path: None, state, prompt: prompt.to_string() };
        let st = Command::new("tmux")
            .args(["-L", &id, "-f", "/dev/null", "new-session", "-d", "-s", &id])
            .args(["-x", "150", "-y", "50", &shell])
            .env_remove("NSLAB_SANDBOX")
            .env_remove("TMUX")
            .status()
            .expect("tmux runs");
        assert!(st.success(), "tmux new-session failed");
        let path = t.tmux(&["display-message", "-p", "#{socket_path}"]);
        t.socket_path = Some(PathBuf::from(path.trim())).filter(|p| p.is_absolute());
        t.wait(prompt);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out =
            Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("tmux runs");
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

    /// Presses `k` and waits until one more `marker` is on the screen.
    fn key_then(&self, k: &str, marker: &str) -> String {
        let n = self.screen().matches(marker).count();
        self.key(k);
        self.wait_n(marker, n + 1)
    }

    /// Types a complete entry, presses Enter, and waits for the next prompt (so any output
    /// of the entry is on the screen).
    fn entry(&self, text: &str) -> String {
        self.typed(text);
        self.key_then("Enter", &self.prompt.clone())
    }

    /// Types a line of an unfinished entry, presses Enter, and waits for the continuation
    /// prompt.
    fn more(&self, text: &str) -> String {
        self.typed(text);
        self.key_then("Enter", MORE)
    }

    /// The whole screen plus scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-1000", "-t", &self.socket])
    }

    /// Waits until `done(screen)`; panics with the screen after a while.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits until the screen holds `n` occurrences of `text`.
    fn wait_n(&self, text: &str, n: usize) -> String {
        self.wait_for(&format!("{text:?} (x{n})"), |s| s.matches(text).count() >= n)
    }

    /// Waits for a line listing exactly `words` (completion candidates).
    fn wait_words(&self, words: &[&str]) -> String {
        self.wait_for(&format!("a line {words:?}"), |s| {
            s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == words)
        })
    }

    fn wait(&self, text: &str) -> String {
        self.wait_n(text, 1)
    }

    /// The pid of nslab: the child of the pane's shell.
    fn nslab_pid(&self) -> i32 {
        let shell = self.tmux(&["display-message", "-p", "-t", &self.socket, "#{pane_pid}"]);
        let shell = shell.trim();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children.split_whitespace().next().expect("nslab runs").parse().unwrap()
    }

    fn history(&self) -> String {
        std::fs::read_to_string(self.state.join("nslab").join("history")).unwrap_or_default()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // Only this test's own server: its private socket.
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Whether a line of `screen` is exactly `line` (output, as opposed to echoed input).
fn has_line(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == line)
}

#[track_caller]
fn assert_line(screen: &str, line: &str) {
    assert!(has_line(screen, line), "no line {line:?} on the screen:\n{screen}");
}

fn repl() -> Term {
    Term::start(&["repl", "--sandbox"], "repl> ")
}

#[test]
fn statements_run_at_once_and_persist() {
    if !possible() {
        return;
    }
    let t = repl();
    t.entry("let x = 40;");
    assert_line(&t.entry("x + 2"), "42");
    t.entry("const NET = \"10.1.0.0/24\";");
    t.entry("fn double(v) { v * 2 }");
    assert_line(&t.entry("double(x)"), "80");
    assert_line(&t.entry("cidr::host(NET, 5)"), "\"10.1.0.5/24\"");
    t.entry("netns::add(\"red\");");
    assert_line(&t.entry("netns::list()"), "[\"internet\", \"red\"]");
    // A list of links prints as a table, not a debug dump.
    let s = t.entry("link::list(\"red\")");
    assert!(
        s.lines().any(|l| l.starts_with("name ") && l.contains("kind") && l.contains("state")),
        "{s}"
    );
    assert!(s.lines().any(|l| l.starts_with("lo ") && l.contains("loopback")), "{s}");
    // Statements are never re-run: red was added once (a second add would fail).
    assert!(!s.contains("already exists"), "{s}");
}

#[test]
fn a_multi_line_loop_continues_under_a_continuation_prompt() {
    if !possible() {
        return;
    }
    let t = repl();
    t.more("for i in 0..3 {");
    t.more("print(`n${i}`);");
    let s = t.entry("}");
    assert!(
        s.contains("repl> for i in 0..3 {\n ...> print(`n${i}`);\n ...> }\nn0\nn1\nn2\n"),
        "{s}"
    );
    // One history entry for the whole loop.
    let h = t.history();
    assert!(
        h.lines().any(|l| l.starts_with("for i in 0..3 {\\n") && l.ends_with('}')),
        "history:\n{h}"
    );
}

#[test]
fn an_error_is_a_diagnostic_and_the_session_goes_on() {
    if !possible() {
        return;
    }
    let t = repl();
    let s = t.entry("netns::ad(\"red\");");
    assert!(s.contains("did you mean netns::add?") && s.contains("<repl:1>"), "{s}");
    assert!(t.entry("let = 5;").contains("syntax error"));
    t.entry("netns::add(\"blue\");");
    assert_line(&t.entry("netns::exists(\"blue\")"), "true");
    // An error inside a function defined in an earlier entry points into that entry.
    t.more("fn boom() {");
    t.more("netns::del(\"nope\");");
    t.entry("}");
    let s = t.entry("boom()");
    assert!(s.contains("inside `boom`") && s.contains("netns::del(\"nope\")"), "{s}");
    assert!(s.contains("<repl:6>") && s.contains("<repl:5>"), "{s}");
    assert_line(&t.entry("21 * 2"), "42");
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
    assert_line(&t.entry(")"), "true");
    // Every function of a module: a second Tab lists them.
    t.typed("netns::").key("Tab").key("Tab");
    t.wait_words(&["add", "del", "exec", "exists", "list"]);
    t.key_then("C-c", "repl> ");
    // Variables in scope.
    t.entry("let greeting = \"hi\";");
    t.typed("gree").key("Tab");
    t.wait("repl> greeting");
    t.key_then("C-c", "repl> ");
    // Bridges where a bridge is wanted.
    t.entry("bridge::add(\"br0\");");
    t.typed("bridge::ports(\"b").key("Tab");
    t.wait("bridge::ports(\"br0\"");
    t.key_then("C-c", "repl> ");
    // Links inside the netns named by the first argument.
    t.entry("netns::add(\"red\");");
    t.typed("link::up(\"red\", \"l").key("Tab");
    t.wait("link::up(\"red\", \"lo\"");
    t.entry(")");
    assert_line(&t.entry("link::list(\"red\")[0].state"), "\"up\"");
    // An argument not begun yet: the names come with their quotes.
    t.typed("bridge::ports(").key("Tab");
    t.wait("bridge::ports(\"br0\"");
    t.key_then("C-c", "repl> ");
}

#[test]
fn help_shows_the_overview_and_a_functions_doc() {
    if !possible() {
        return;
    }
    let t = repl();
    let s = t.entry(":help");
    assert!(s.contains(":destroy") && s.contains("netns    add del exec exists list"), "{s}");
    let s = t.entry(":help netns::add");
    assert!(s.contains("netns::add(name: string)"), "{s}");
    assert!(s.contains("Creates a named network namespace") && s.contains("netns::add(\"red\");"));
}

#[test]
fn ctrl_c_stops_a_long_loop_and_cancels_a_line_without_leaving() {
    if !possible() {
        return;
    }
    let t = repl();
    t.entry("let n = 0;");
    t.typed("loop { n += 1; }").key("Enter");
    std::thread::sleep(Duration::from_millis(500));
    let s = t.key_then("C-c", "repl> ");
    assert!(s.contains("interrupted") && s.contains("stopped here"), "{s}");
    assert_line(&t.entry("n > 1000"), "true");
    // Ctrl-C at the prompt drops the line being typed.
    t.typed("netns::add(\"zzz\")");
    t.key_then("C-c", "repl> ");
    assert_line(&t.entry("netns::exists(\"zzz\")"), "false");
}

#[test]
fn ctrl_d_leaves() {
    if !possible() {
        return;
    }
    let t = repl();
    t.entry("netns::add(\"red\");");
    t.key("C-d");
    let s = t.wait("[exited 0]");
    assert!(s.contains("lab repl (1 operation) vanishes with the sandbox"), "{s}");
}

#[test]
fn sigterm_at_the_prompt_gives_the_terminal_back() {
    if !possible() {
        return;
    }
    let t = repl();
    t.entry("let x = 1;");
    // Our own child, by pid.
    let pid = t.nslab_pid();
    assert!(std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().contains("repl"));
    // SAFETY: kill(2) on a pid we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let s = t.wait("[exited 143]");
    assert!(s.contains("[tty icanon]"), "the terminal is left raw:\n{s}");
}

#[test]
fn load_show_and_destroy() {
    if !possible() {
        return;
    }
    let file = recipe(
        "repl-load.rhai",
        "param hosts = [\"red\", \"green\"];\nlet loaded = true;\nfor h in hosts { netns::add(h); }\n\
         probe::serve(\"internet\", 8081);\n",
    );
    let t = repl();
    assert!(
        t.entry(&format!(":load {file}")).contains(&format!("loaded {file}: 2 new operations"))
    );
    assert_line(&t.entry("loaded && hosts.len() == 2"), "true");
    let s = t.entry(":show");
    assert!(s.contains("netns red") && s.contains("netns green"), "{s}");
    assert!(t.entry(":destroy").contains("removed lab repl: 2 operations undone"));
    assert_line(&t.entry("netns::list()"), "[\"internet\"]");
    // The lab's server in `internet` went with it: the port is free for the rebuilt lab.
    assert_line(&t.entry("probe::serve(\"internet\", 8081)"), "8081");
}

#[test]
fn run_interactive_opens_the_repl_with_the_recipes_variables() {
    if !possible() {
        return;
    }
    let file = recipe(
        "repl-run-i.rhai",
        "import \"lab\" as lab;\nparam hosts = [\"red\"];\nlet greeting = \"hi\";\n\
         fn twice(v) { v + v }\nnetns::add(hosts[0]);\n",
    );
    let t = Term::start(&["run", "-i", "--sandbox", &file], "repl-run-i> ");
    assert_line(&t.entry("twice(greeting)"), "\"hihi\"");
    assert_line(&t.entry("netns::list()"), "[\"internet\", \"red\"]");
    // The recipe's imports stay usable.
    t.typed("lab::").key("Tab").key("Tab");
    t.wait_words(&["attach", "fabric", "gateway"]);
    t.key_then("C-c", "repl-run-i> ");
    t.key("C-d");
    let s = t.wait("[exited 0]");
    assert!(s.contains("lab repl-run-i (1 operation) vanishes with the sandbox"), "{s}");
}

/// Without a terminal (input piped in) the REPL reads entries the same way: useful for
/// scripting, and a check that needs no tmux.
#[test]
fn piped_input_runs_entry_by_entry() {
    if !kernel_tests_possible() {
        return;
    }
    let state =
        root().join("target").join("repl-state").join(format!("piped-{}", std::process::id()));
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
        .write_all(
            b"let hosts = [\"red\",\n  \"green\"];\nfor h in hosts {\n  netns::add(h);\n}\n\
              netns::ad(\"x\");\nnetns::list()\nnetns::add(1, 2, 3)\n:help\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&state);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("[\"green\", \"internet\", \"red\"]"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("did you mean netns::add?"), "{stderr}");
    // Help points at the REPL's own command, and tells what leaving does here.
    assert!(stderr.contains("`:help netns::add` shows its forms"), "{stderr}");
    assert!(
        stdout.contains(":quit  ") && stdout.contains("leave (the lab vanishes with the sandbox)")
    );
}

/// `run -i` of a failing recipe opens the REPL on what was built, and still exits non-zero:
/// exit code 0 means the recipe worked.
#[test]
fn run_interactive_exit_code_tells_whether_the_recipe_worked() {
    if !kernel_tests_possible() {
        return;
    }
    let bad = recipe("repl-run-i-bad.rhai", "netns::add(\"red\");\nassert(false, \"broken\");\n");
    let good = recipe("repl-run-i-good.rhai", "netns::add(\"red\");\n");
    for (file, code) in [(bad, 1), (good, 0)] {
        let state = root()
            .join("target")
            .join("repl-state")
            .join(format!("run-i-{}-{code}", std::process::id()));
        let out = Command::new(bin())
            .args(["run", "-i", "--sandbox", &file])
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("XDG_STATE_HOME", &state)
            .env_remove("NSLAB_SANDBOX")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&state);
        assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Outside `--sandbox` the REPL's lab outlives the REPL: the next `nslab repl` continues it,
/// and `:destroy` removes it. (Run inside `nslab sandbox`, which stands for the host.)
#[test]
fn the_lab_outlives_the_repl_and_the_next_repl_continues_it() {
    if !kernel_tests_possible() {
        return;
    }
    let r = crate::common::sandboxed(
        r#"export XDG_STATE_HOME=$(mktemp -d)
printf 'let a = 1;\nnetns::add("red");\n' | nslab repl
test -e /run/netns/red
printf 'netns::list()\n:destroy\nnetns::list()\n' | nslab repl
test ! -e /run/netns/red
test ! -e /run/nslab/repl
rm -rf "$XDG_STATE_HOME""#,
    );
    r.ok();
    assert!(
        r.stdout.contains("lab repl stays up (1 operation): `nslab repl` continues it, `nslab destroy repl` removes it"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("continuing lab repl (1 operation so far)"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "[\"internet\", \"red\"]\nremoved lab repl: 1 operation undone\n[\"internet\"]"
        ),
        "{}",
        r.stdout
    );
}
