//! Tab completion: commands, module names, `module::` functions (from the Rhai metadata),
//! variables and functions of the session, and — inside a string argument — the live names
//! the parameter wants, asked from the current backend: netns names, the links inside the
//! netns named by an earlier argument, bridges.

use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer as _, FilenameCompleter, Pair};

use super::docs;
use crate::lab::Backend;

/// What the session knows that completion needs; the REPL updates it after each entry.
#[derive(Default)]
pub struct Names {
    pub vars: Vec<String>,
    pub fns: Vec<String>,
    /// Imported modules: (alias, function names).
    pub imports: Vec<(String, Vec<String>)>,
    pub backend: Option<Rc<dyn Backend>>,
}

pub const COMMANDS: &[&str] = &[":help", ":load", ":show", ":graph", ":destroy", ":quit"];

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "switch", "import", "as", "true", "false",
    "param",
];

const BUILTINS: &[&str] =
    &["print", "debug", "assert", "type_of", "range", "parse_int", "to_string"];

/// Where the cursor is, as far as completion cares.
#[derive(Debug, PartialEq)]
pub enum Spot {
    /// `:he`
    Command {
        prefix: String,
    },
    /// `:help net`
    HelpTopic {
        prefix: String,
    },
    /// `:load scr`
    File,
    /// `netns::ad`
    Path {
        module: String,
        prefix: String,
    },
    /// `ho` (a variable, module, function or keyword)
    Word {
        prefix: String,
    },
    /// Inside a string literal that is argument `index` of `call`; `args` holds the earlier
    /// arguments that are plain string literals.
    Arg {
        call: String,
        index: usize,
        args: Vec<Option<String>>,
        prefix: String,
        quote: char,
    },
    Nothing,
}

/// A live name as it must be typed inside a string opened with `quote` (the kernel allows
/// `"` and `\\` in link names).
fn escape(name: &str, quote: char) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' if quote != '`' => out.push_str("\\\\"),
            c if c == quote && quote != '`' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `quote` of a [`Spot::Arg`] whose string is not opened yet.
pub const UNQUOTED: char = '\0';

struct Frame {
    call: Option<String>,
    index: usize,
    args: Vec<Option<String>>,
    /// Tokens seen in the current argument (a literal only counts when it is alone).
    tokens: usize,
}

impl Frame {
    fn token(&mut self, literal: Option<String>) {
        if self.args.len() <= self.index {
            self.args.resize(self.index + 1, None);
        }
        self.args[self.index] = if self.tokens == 0 { literal } else { None };
        self.tokens += 1;
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':'
}

/// The identifier path ending at byte `end` (whitespace before `end` skipped).
fn callee(text: &str, end: usize) -> Option<String> {
    let t = text[..end].trim_end();
    let start = t
        .rfind(|c: char| !is_word(c))
        .map(|i| i + t[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let name = &t[start..];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then(|| name.to_string())
}

/// Finds the spot for completing at the end of `text` (the entry up to the cursor).
pub fn spot(text: &str) -> Spot {
    let trimmed = text.trim_start();
    if trimmed.starts_with(':') {
        return match trimmed.split_once(char::is_whitespace) {
            None => Spot::Command { prefix: trimmed.to_string() },
            Some((":help" | ":h", rest)) => {
                Spot::HelpTopic { prefix: rest.trim_start().to_string() }
            }
            Some((":load" | ":graph", _)) => Spot::File,
            Some(_) => Spot::Nothing,
        };
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '/' if it.peek().map(|p| p.1) == Some('/') => {
                if !it.any(|(_, c)| c == '\n') {
                    return Spot::Nothing;
                }
            }
            '/' if it.peek().map(|p| p.1) == Some('*') => {
                it.next();
                let mut prev = ' ';
                let closed = it.any(|(_, c)| {
                    let end = prev == '*' && c == '/';
                    prev = c;
                    end
                });
                if !closed {
                    return Spot::Nothing;
                }
            }
            '"' | '`' | '\'' => {
                let start = i + 1;
                let mut escaped = false;
                let mut end = None;
                for (j, d) in it.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        end = Some(j);
                        break;
                    }
                }
                match end {
                    Some(e) => {
                        if let Some(f) = stack.last_mut() {
                            f.token(Some(text[start..e].to_string()));
                        }
                    }
                    None => {
                        let prefix = text[start..].to_string();
                        return match stack.pop() {
                            Some(Frame { call: Some(call), index, args, tokens: 0 })
                                if c != '\'' =>
                            {
                                Spot::Arg { call, index, args, prefix, quote: c }
                            }
                            _ => Spot::Nothing,
                        };
                    }
                }
            }
            '(' | '[' | '{' => {
                let call = if c == '(' { callee(text, i) } else { None };
                if let Some(f) = stack.last_mut() {
                    f.token(None);
                }
                stack.push(Frame { call, index: 0, args: Vec::new(), tokens: 0 });
            }
            ')' | ']' | '}' => {
                stack.pop();
            }
            ',' => {
                if let Some(f) = stack.last_mut() {
                    f.index += 1;
                    f.tokens = 0;
                }
            }
            c if c.is_whitespace() => {}
            _ => {
                if let Some(f) = stack.last_mut() {
                    f.token(None);
                }
            }
        }
    }
    let start = text
        .rfind(|c: char| !is_word(c))
        .map(|i| i + text[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let word = &text[start..];
    // Right after `(` or `,` of a call: the argument is still to be typed. If it wants live
    // names they are offered with their quotes (`probe::ping(` Tab → `"red"`).
    if word.is_empty()
        && let Some(Frame { call: Some(call), index, args, tokens: 0 }) = stack.pop()
    {
        return Spot::Arg { call, index, args, prefix: String::new(), quote: UNQUOTED };
    }
    // After a `.` comes a method or a map field, never a keyword, module or variable.
    if word.starts_with(|c: char| c.is_ascii_digit()) || text[..start].ends_with('.') {
        return Spot::Nothing;
    }
    match word.rsplit_once("::") {
        Some((module, prefix)) => {
            Spot::Path { module: module.to_string(), prefix: prefix.to_string() }
        }
        None => Spot::Word { prefix: word.to_string() },
    }
}

/// Which live names a parameter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Netns,
    /// Links; inside the netns named by argument N when the form has one.
    Link(Option<usize>),
    Bridge(Option<usize>),
}

/// What argument `index` of `module::func` wants, over all forms of the function; told by
/// the parameter names in the metadata (`ns`, `dev`, `bridge`, ...).
pub fn wants(module: &str, func: &str, index: usize) -> Vec<Want> {
    let mut out = Vec::new();
    // Stdlib functions name their parameters freely (`dev` may be a name to create).
    if !docs::modules().iter().any(|m| m == module) {
        return out;
    }
    for form in docs::forms(module, func) {
        let Some((param, _)) = form.params.get(index) else { continue };
        let ns_arg = form.params[..index].iter().position(|(n, _)| n == "ns" || n == "from");
        let want = match (param.as_str(), module) {
            ("ns" | "peer_netns" | "from", _) => Want::Netns,
            ("name", "netns") if func != "add" => Want::Netns,
            ("name", "bridge") if func != "add" => Want::Bridge(ns_arg),
            ("dev", _) => Want::Link(ns_arg),
            ("bridge", _) => Want::Bridge(ns_arg),
            _ => continue,
        };
        if !out.contains(&want) {
            out.push(want);
        }
    }
    out
}

/// The live names for `wants`, from the backend. Errors (a netns that does not exist, ...)
/// just mean no names.
pub fn live_names(b: &dyn Backend, wants: &[Want], args: &[Option<String>]) -> Vec<String> {
    let ns_of = |i: Option<usize>| -> Option<Option<String>> {
        match i {
            None => Some(None),
            Some(i) => {
                let ns = args.get(i).cloned().flatten()?;
                b.netns_exists(&ns).ok()?.then_some(Some(ns))
            }
        }
    };
    let mut out = Vec::new();
    for w in wants {
        match *w {
            Want::Netns => out.extend(b.netns_list().unwrap_or_default()),
            Want::Link(i) | Want::Bridge(i) => {
                let Some(ns) = ns_of(i) else { continue };
                let links = b.links(ns.as_deref()).unwrap_or_default();
                let bridges_only = matches!(w, Want::Bridge(_));
                out.extend(
                    links
                        .into_iter()
                        .filter(|l| !bridges_only || l.kind == "bridge")
                        .map(|l| l.name),
                );
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

pub struct Completer {
    pub names: Rc<RefCell<Names>>,
    files: FilenameCompleter,
}

impl Completer {
    pub fn new(names: Rc<RefCell<Names>>) -> Completer {
        Completer { names, files: FilenameCompleter::new() }
    }

    pub fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let after = &line[pos..];
        let pairs = |prefix: &str, items: Vec<String>, suffix: &str| -> (usize, Vec<Pair>) {
            let mut items: Vec<String> =
                items.into_iter().filter(|s| s.starts_with(prefix)).collect();
            items.sort();
            items.dedup();
            let v = items
                .into_iter()
                .map(|s| {
                    let replacement =
                        if after.starts_with(suffix) { s.clone() } else { format!("{s}{suffix}") };
                    Pair { display: s, replacement }
                })
                .collect();
            (pos - prefix.len(), v)
        };
        let names = self.names.borrow();
        // A variable, module, function or keyword.
        let words = |prefix: &str| {
            let mut items: Vec<String> = docs::modules().iter().map(|m| format!("{m}::")).collect();
            items.extend(names.imports.iter().map(|(a, _)| format!("{a}::")));
            items.extend(names.vars.iter().cloned());
            items.extend(KEYWORDS.iter().map(|s| s.to_string()));
            let (start, mut v) = pairs(prefix, items, "");
            let mut fns: Vec<String> = names.fns.clone();
            fns.extend(BUILTINS.iter().map(|s| s.to_string()));
            v.extend(pairs(prefix, fns, "(").1);
            v.sort_by(|a, b| a.display.cmp(&b.display));
            (start, v)
        };
        Ok(match spot(&line[..pos]) {
            Spot::Command { prefix } => {
                pairs(&prefix, COMMANDS.iter().map(|s| s.to_string()).collect(), "")
            }
            Spot::HelpTopic { prefix } => {
                let mut topics: Vec<String> = docs::modules().to_vec();
                topics.extend(docs::all().iter().map(|d| format!("{}::{}", d.module, d.name)));
                pairs(&prefix, topics, "")
            }
            Spot::File => return self.files.complete(line, pos, ctx),
            Spot::Path { module, prefix } => {
                let fns: Vec<String> = if docs::modules().contains(&module) {
                    docs::functions(&module).into_iter().map(str::to_string).collect()
                } else {
                    names
                        .imports
                        .iter()
                        .find(|(a, _)| *a == module)
                        .map(|(_, f)| f.clone())
                        .unwrap_or_default()
                };
                pairs(&prefix, fns, "(")
            }
            Spot::Arg { call, index, args, quote: UNQUOTED, .. } => {
                let found = match (call.rsplit_once("::"), names.backend.as_ref()) {
                    (Some((module, func)), Some(b)) => {
                        live_names(&**b, &wants(module, func, index), &args)
                    }
                    _ => vec![],
                };
                if found.is_empty() {
                    words("")
                } else {
                    let quoted = found.iter().map(|n| format!("\"{}\"", escape(n, '"'))).collect();
                    pairs("", quoted, "")
                }
            }
            Spot::Word { prefix } => words(&prefix),
            Spot::Arg { call, index, args, prefix, quote } => {
                let Some((module, func)) = call.rsplit_once("::") else { return Ok((pos, vec![])) };
                let Some(b) = names.backend.as_ref() else { return Ok((pos, vec![])) };
                let found = live_names(&**b, &wants(module, func, index), &args);
                let found = found.iter().map(|n| escape(n, quote)).collect();
                pairs(&prefix, found, &quote.to_string())
            }
            Spot::Nothing => (pos, vec![]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(call: &str, index: usize, args: &[Option<&str>], prefix: &str) -> Spot {
        Spot::Arg {
            call: call.into(),
            index,
            args: args.iter().map(|a| a.map(str::to_string)).collect(),
            prefix: prefix.into(),
            quote: '"',
        }
    }

    #[test]
    fn spots() {
        assert_eq!(spot("netns::ad"), Spot::Path { module: "netns".into(), prefix: "ad".into() });
        assert_eq!(spot("let x = net"), Spot::Word { prefix: "net".into() });
        assert_eq!(spot("link::up(\"re"), arg("link::up", 0, &[], "re"));
        assert_eq!(spot("link::up(\"red\", \"ve"), arg("link::up", 1, &[Some("red")], "ve"));
        assert_eq!(spot("link::up(ns, \""), arg("link::up", 1, &[None], ""));
        assert_eq!(spot("link::up(\"a\" + x, \""), arg("link::up", 1, &[None], ""));
        assert_eq!(spot("for n in [1] {\n  netns::del(\"r"), arg("netns::del", 0, &[], "r"));
        assert_eq!(spot("f(\"a\", [\"x"), Spot::Nothing, "inside an array, not an argument");
        assert_eq!(spot("print(\"done\"); ne"), Spot::Word { prefix: "ne".into() });
        assert_eq!(spot("// netns::"), Spot::Nothing);
        assert_eq!(spot(":he"), Spot::Command { prefix: ":he".into() });
        assert_eq!(spot(":help netns::a"), Spot::HelpTopic { prefix: "netns::a".into() });
        assert_eq!(spot(":load scr"), Spot::File);
        assert_eq!(spot("x = 12"), Spot::Nothing);
        assert_eq!(spot("p.re"), Spot::Nothing, "not `p.return`");
        assert_eq!(spot("hosts.le"), Spot::Nothing);
        let open = |call: &str, index, args: &[Option<&str>]| Spot::Arg {
            call: call.into(),
            index,
            args: args.iter().map(|a| a.map(str::to_string)).collect(),
            prefix: String::new(),
            quote: UNQUOTED,
        };
        assert_eq!(spot("probe::ping("), open("probe::ping", 0, &[]));
        assert_eq!(escape("x\"y", '"'), "x\\\"y");
        assert_eq!(escape("c\\d", '"'), "c\\\\d");
        assert_eq!(spot("link::up(\"red\", "), open("link::up", 1, &[Some("red")]));
    }

    #[test]
    fn parameters_tell_what_they_want() {
        assert_eq!(wants("netns", "del", 0), [Want::Netns]);
        assert_eq!(wants("netns", "add", 0), []);
        assert_eq!(wants("link", "up", 0), [Want::Link(None), Want::Netns]);
        assert_eq!(wants("link", "up", 1), [Want::Link(Some(0))]);
        assert_eq!(wants("link", "set_master", 1), [Want::Bridge(None), Want::Link(Some(0))]);
        assert_eq!(wants("bridge", "ports", 0), [Want::Bridge(None), Want::Netns]);
        assert_eq!(wants("veth", "add", 2), [Want::Netns]);
        assert_eq!(wants("lab", "attach", 2), []);
    }
}
