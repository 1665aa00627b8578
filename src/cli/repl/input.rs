//! Reading an entry: whether it is complete (the Rhai parser decides), the Enter key, the
//! continuation prompt, and hints from history.
//!
//! An entry is one rustyline buffer, also when it spans lines: it is edited as a whole and
//! stored as one history entry. rustyline draws no prompt in front of a buffer's second and
//! later lines, so Enter on an incomplete entry inserts a newline plus an indent as wide as
//! the prompt, and the highlighter paints that indent as the continuation prompt (`...> `).
//! The buffer itself only ever holds whitespace there, so what runs is what was typed.

use std::borrow::Cow;
use std::rc::Rc;

use rhai::{Engine, LexError, ParseErrorType};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Cmd, ConditionalEventHandler, Event, EventContext, RepeatCount};

use crate::script::diagnostic::offset;
use crate::script::param;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Runs as it is (or fails with a syntax error that more lines cannot fix).
    Complete,
    /// The parser ran out of input: an open `{ ( [`, an operator without its right side, or
    /// a string that goes on (a backtick string, or a `"` string whose line ends in `\`).
    Open { in_string: bool },
}

thread_local! {
    // Only parses; `param` must be known or `param x = [1,` would look like a typo.
    static CHECKER: Engine = {
        let mut e = Engine::new_raw();
        param::register(&mut e, Rc::new(param::Overrides::new()));
        e
    };
}

/// Asks the Rhai parser whether `src` is a complete entry.
pub fn status(src: &str) -> Status {
    // Rhai accepts a `/*` comment that runs to the end of the input, so the parser cannot
    // tell us that one is open.
    if in_block_comment(src) {
        return Status::Open { in_string: false };
    }
    let Err(e) = CHECKER.with(|engine| engine.compile(src)) else {
        return Status::Complete;
    };
    let at = offset(src, e.position());
    match e.err_type() {
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            // A `"` string cannot hold a newline, so more lines only help after a `\`.
            let quote = at.and_then(|o| src[o..].chars().next());
            if quote == Some('`') || src.trim_end_matches([' ', '\t']).ends_with('\\') {
                Status::Open { in_string: true }
            } else {
                Status::Complete
            }
        }
        ParseErrorType::UnexpectedEOF | ParseErrorType::MissingToken(..) => {
            // Only when nothing follows the error: `(1))` is a typo, not a wish for more.
            let at_end = at.is_none_or(|o| src[o.min(src.len())..].trim().is_empty());
            if at_end { Status::Open { in_string: false } } else { Status::Complete }
        }
        _ => Status::Complete,
    }
}

/// True if `src` ends inside a `/* */` comment (Rhai's nest). Strings, character literals and
/// `//` comments are skipped so that a `/*` inside them does not count.
fn in_block_comment(src: &str) -> bool {
    let b = src.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        let two = &b[i..b.len().min(i + 2)];
        if depth > 0 {
            match two {
                b"/*" => (depth, i) = (depth + 1, i + 2),
                b"*/" => (depth, i) = (depth - 1, i + 2),
                _ => i += 1,
            }
            continue;
        }
        match b[i] {
            b'/' if two == b"/*" => (depth, i) = (1, i + 2),
            b'/' if two == b"//" => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    depth > 0
}

/// Enter: run a complete entry (wherever the cursor is), else continue it on a new line
/// under the continuation prompt.
pub struct EnterKey {
    pub indent: String,
}

impl ConditionalEventHandler for EnterKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        Some(match status(ctx.line()) {
            Status::Complete => Cmd::AcceptOrInsertLine { accept_in_the_middle: true },
            // Whitespace inside a string is content: no indent there.
            Status::Open { in_string: true } => Cmd::Insert(1, "\n".into()),
            Status::Open { in_string: false } => Cmd::Insert(1, format!("\n{}", self.indent)),
        })
    }
}

/// What continuation lines show in front.
const MARKER: &str = "...> ";

/// The prompt, the continuation prompt painted over the indent, and dim hints.
pub struct Look {
    pub indent: String,
    pub color: bool,
}

impl Look {
    /// `prompt` is what the first line shows; continuation lines show `...> ` right-aligned
    /// under it.
    pub fn new(prompt: &str, color: bool) -> Look {
        let width = prompt.chars().count().max(5);
        Look { indent: " ".repeat(width), color }
    }

    pub fn continuation(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len() + 16);
        for (i, l) in line.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
                // Our indent, or a narrower one: an entry recalled from the history of a
                // REPL whose prompt had another width (`repl> ` vs `tutorial> `). The marker
                // takes exactly the width it covers, so cursor arithmetic stays right.
                let spaces = l.len() - l.trim_start_matches(' ').len();
                let width = spaces.min(self.indent.len());
                if width >= MARKER.len() {
                    let marker = format!("{MARKER:>width$}");
                    if self.color {
                        out.push_str(&format!("\x1b[2m{marker}\x1b[0m"));
                    } else {
                        out.push_str(&marker);
                    }
                    out.push_str(&l[width..]);
                    continue;
                }
            }
            out.push_str(l);
        }
        out
    }
}

/// Hints from history, cut at the first newline of a multi-line entry.
pub struct Hints {
    history: HistoryHinter,
}

impl Hints {
    pub fn new() -> Hints {
        Hints { history: HistoryHinter::new() }
    }
}

impl Hinter for Hints {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &rustyline::Context<'_>) -> Option<String> {
        let h = self.history.hint(line, pos, ctx)?;
        let h = h.split('\n').next().unwrap_or("").to_string();
        (!h.is_empty()).then_some(h)
    }
}

/// Validation for what rustyline accepts without our Enter key (e.g. lines piped in).
pub struct Complete;

impl Validator for Complete {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match status(ctx.input()) {
            Status::Complete => ValidationResult::Valid(None),
            Status::Open { .. } => ValidationResult::Incomplete,
        })
    }
}

/// rustyline's Helper: completion, hints, the look and validation together.
pub struct Helper {
    pub completer: super::complete::Completer,
    pub hints: Hints,
    pub look: Look,
    pub validator: Complete,
}

impl rustyline::Helper for Helper {}

impl rustyline::completion::Completer for Helper {
    type Candidate = rustyline::completion::Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Self::Candidate>)> {
        self.completer.complete(line, pos, ctx)
    }
}

impl Hinter for Helper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &rustyline::Context<'_>) -> Option<String> {
        self.hints.hint(line, pos, ctx)
    }
}

impl Validator for Helper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        self.validator.validate(ctx)
    }
}

impl Highlighter for Helper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if line.contains('\n') {
            Cow::Owned(self.look.continuation(line))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.look.color {
            Cow::Owned(format!("\x1b[1m{prompt}\x1b[0m"))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.look.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(s: &str) -> bool {
        matches!(status(s), Status::Open { .. })
    }

    #[test]
    fn open_brackets_and_strings_continue() {
        assert!(open("for i in 0..3 {"));
        assert!(open("link::list("));
        assert!(open("let a = [1,"));
        assert!(open("let m = #{a: 1,"));
        assert!(open("let x = 1 +"));
        assert!(open("fn f(x) {\n  x +"));
        assert_eq!(status("let s = `two\nlines"), Status::Open { in_string: true });
        assert!(open("/* a note"));
        assert!(open("let x = 1; /* outer /* inner */"), "Rhai's block comments nest");
        assert_eq!(status("let s = \"abc\\"), Status::Open { in_string: true });
        assert!(open("param hosts = [\"red\","));
    }

    #[test]
    fn complete_entries_and_typos_run() {
        assert_eq!(status(""), Status::Complete);
        assert_eq!(status("netns::add(\"red\");"), Status::Complete);
        assert_eq!(status("/* a */ let x = 1; // /* not a comment opener"), Status::Complete);
        assert_eq!(status("let s = \"/*\"; let c = '/';"), Status::Complete);
        assert_eq!(status("for i in 0..3 {\n  print(i);\n}"), Status::Complete);
        assert_eq!(
            status("let x = (1));"),
            Status::Complete,
            "a stray ) is an error, not more input"
        );
        assert_eq!(
            status("let s = \"abc"),
            Status::Complete,
            "a \" string cannot continue without \\"
        );
        assert_eq!(status("x = 1; }"), Status::Complete);
        assert_eq!(status("param hosts = 3;"), Status::Complete);
    }

    #[test]
    fn the_indent_is_painted_as_the_continuation_prompt() {
        let look = Look::new("repl> ", false);
        assert_eq!(look.indent, "      ");
        let shown = look.continuation("for i in 0..3 {\n      print(i);\n      }");
        assert_eq!(shown, "for i in 0..3 {\n ...> print(i);\n ...> }");
        // Recalled from a REPL with a narrower prompt: still marked, still as wide.
        let narrow = Look::new("tutorial> ", false);
        assert_eq!(narrow.continuation("for x in y {\n      f(x);"), "for x in y {\n ...> f(x);");
        // Same width, so rustyline's cursor arithmetic on the raw buffer stays right.
        for (a, b) in shown.lines().zip("for i in 0..3 {\n      print(i);\n      }".lines()) {
            assert_eq!(a.len(), b.len());
        }
    }
}
