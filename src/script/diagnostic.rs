//! Turning errors into what a user reads: a miette diagnostic with the recipe line, the call
//! underlined, the error in words, a help line, and — for an error inside a stdlib
//! function — the call chain back to the recipe.

use std::fmt;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};
use rhai::{EvalAltResult, ParseError, Position};

use crate::net::NetError;

/// A source file a diagnostic can point into.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    /// Whether a diagnostic may show the lines around the one it points at: the recipe and
    /// the stdlib, not a file a recipe imported (it may be any file, through a symlink too:
    /// its content is echoed no further than the offending line).
    pub context: bool,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source { name: name.into(), text: text.into(), context: true }
    }
}

#[derive(Debug)]
pub struct Diag {
    pub message: String,
    pub help: Option<String>,
    pub src: Option<Box<Excerpt>>,
    pub span: Option<(usize, usize)>,
    pub label: Option<String>,
    pub related: Vec<Diag>,
    pub severity: Option<miette::Severity>,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn severity(&self) -> Option<miette::Severity> {
        self.severity
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.src.as_deref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (o, l) = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new(self.label.clone(), o, l))))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }
}

impl Diag {
    pub fn plain(e: &NetError) -> Diag {
        Diag {
            message: bounded(&e.message),
            help: e.help.as_deref().map(bounded),
            src: None,
            span: None,
            label: None,
            related: vec![],
            severity: None,
        }
    }

    pub fn at(
        message: String,
        help: Option<String>,
        source: &Source,
        pos: Position,
        label: Option<String>,
    ) -> Diag {
        let message = bounded(&message);
        let help = help.as_deref().map(bounded);
        let (src, span) = match offset(&source.text, pos).map(|o| qualified_start(&source.text, o))
        {
            Some(o) => {
                let (excerpt, span) = Excerpt::of(source, o, call_len(&source.text, o));
                (Some(Box::new(excerpt)), Some(span))
            }
            None => (None, None),
        };
        // Without a snippet, the location goes into the message itself.
        let message = match (&span, pos.line()) {
            (None, Some(l)) => format!("{message} (at {}:{l})", source.name),
            _ => message,
        };
        Diag { message, help, src, span, label, related: vec![], severity: None }
    }
}

/// Longest message or help a diagnostic prints, in bytes: a 4 MB name in a recipe made a
/// 22 MB diagnostic (issue 14).
const MAX_WORDS: usize = 1000;
/// Longest source line a diagnostic shows, in bytes; a longer one is cut around the span.
const MAX_LINE: usize = 160;

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s`, cut to [`MAX_WORDS`] bytes with a note of how much was cut.
pub fn bounded(s: &str) -> String {
    if s.len() <= MAX_WORDS {
        return s.to_string();
    }
    let end = floor_char(s, MAX_WORDS);
    format!("{}… ({} more bytes not shown)", &s[..end], s.len() - end)
}

/// The lines of a source a diagnostic shows, with their real line numbers: the offending
/// line (cut to [`MAX_LINE`] around the span) and, where the source allows context, one line
/// on each side (cut too).
#[derive(Debug)]
pub struct Excerpt {
    name: String,
    text: String,
    /// 0-based number of `text`'s first line in the source.
    first_line: usize,
}

impl Excerpt {
    /// The excerpt of `source` for a span at byte `o` of length `len`, and the span within it.
    fn of(source: &Source, o: usize, len: usize) -> (Excerpt, (usize, usize)) {
        let text = &source.text;
        let line_start = text[..o].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[o..].find('\n').map_or(text.len(), |i| o + i);
        let line_no = text[..line_start].matches('\n').count();
        // The window of the offending line: from a little before the span.
        let mut from = line_start;
        if line_end - line_start > MAX_LINE && o - line_start > MAX_LINE / 4 {
            from = floor_char(text, o - MAX_LINE / 4);
        }
        let to = floor_char(text, line_end.min(from + MAX_LINE));
        let mut out = String::new();
        let mut first_line = line_no;
        if source.context && line_start > 0 {
            let prev_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
            out.push_str(cut_line(&text[prev_start..line_start - 1]));
            out.push('\n');
            first_line -= 1;
        }
        if from > line_start {
            out.push('…');
        }
        let span_start = out.len() + (o - from);
        out.push_str(&text[from..to]);
        let span_len = len.min(to.saturating_sub(o)).max(1);
        if to < line_end {
            out.push('…');
        }
        if source.context && line_end < text.len() {
            let rest = &text[line_end + 1..];
            let next = &rest[..rest.find('\n').unwrap_or(rest.len())];
            out.push('\n');
            out.push_str(cut_line(next));
        }
        (Excerpt { name: source.name.clone(), text: out, first_line }, (span_start, span_len))
    }
}

fn cut_line(l: &str) -> &str {
    &l[..floor_char(l, l.len().min(MAX_LINE))]
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self.text.read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            *c.span(),
            c.line() + self.first_line,
            c.column(),
            c.line_count(),
        )))
    }
}

impl From<NetError> for Diag {
    fn from(e: NetError) -> Diag {
        Diag::plain(&e)
    }
}

/// Byte offset of a Rhai position (1-based line, 1-based column in characters).
pub fn offset(text: &str, pos: Position) -> Option<usize> {
    let line = pos.line()?;
    let col = pos.position().unwrap_or(1);
    let start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    let l = text.split_inclusive('\n').nth(line - 1)?;
    let within: usize = l.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum();
    Some(start + within)
}

/// Rhai points a qualified call (`netns::add(..)`) at the function name: underline from
/// the start of the module path instead.
pub fn qualified_start(text: &str, mut o: usize) -> usize {
    while o > 0 {
        let prev = text[..o].chars().next_back().expect("o > 0");
        if prev.is_alphanumeric() || prev == '_' || prev == ':' {
            o -= prev.len_utf8();
        } else {
            break;
        }
    }
    o
}

/// Length of the call expression starting at `o`: `a::b(...)` up to its closing parenthesis
/// (strings and nesting respected), else the word there; never past the line's end.
pub fn call_len(text: &str, o: usize) -> usize {
    let rest = &text[o..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let line = &rest[..line_end];
    let word =
        line.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let after = &line[word..];
    if !after.starts_with('(') {
        return word.max(1).min(line.len().max(1));
    }
    let mut depth = 0;
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (i, c) in after.char_indices() {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => in_str = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return word + i + 1;
                }
            }
            _ => {}
        }
    }
    line.len().max(1)
}

/// The message and help of a Rhai error, without its position.
pub(crate) fn words(err: &EvalAltResult) -> (String, Option<String>) {
    match err {
        EvalAltResult::ErrorRuntime(v, _) => match v.clone().try_cast::<NetError>() {
            Some(e) => (e.message, e.help),
            None => (format!("runtime error: {v}"), None),
        },
        EvalAltResult::ErrorFunctionNotFound(sig, _) => unknown_function(sig),
        EvalAltResult::ErrorVariableNotFound(name, _) => (
            format!("unknown variable `{name}`"),
            Some(
                "declare it with `let` (or `param` for a value users may --set) before using it"
                    .into(),
            ),
        ),
        EvalAltResult::ErrorModuleNotFound(name, _) => (
            format!("no module {name:?} to import"),
            Some("the stdlib has \"lab\"; other paths are .rhai files next to the recipe".into()),
        ),
        EvalAltResult::ErrorTerminated(..) => ("interrupted".into(), None),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            use crate::script::engine::{MAX_ITEMS, MAX_STRING};
            let (what, limit) = match what.as_str() {
                w if w.contains("string") => ("a string", format!("{} MiB", MAX_STRING >> 20)),
                w if w.contains("map") => ("a map", format!("{MAX_ITEMS} entries")),
                _ => ("an array", format!("{MAX_ITEMS} items")),
            };
            (
                format!("{what} grew past the limit a recipe may use ({limit})"),
                Some("a recipe's memory is bounded (nested values count too): build smaller values, or write big data to a file with netns::exec".into()),
            )
        }
        EvalAltResult::ErrorStackOverflow(_) => (
            format!("function calls nest too deep (more than {})", rhai::Engine::new().max_call_levels()),
            Some("a function that calls itself needs a case that stops; use a loop for long repetitions".into()),
        ),
        EvalAltResult::ErrorTooManyOperations(_) => (
            "the recipe ran too many operations".into(),
            Some("look for a loop that never ends".into()),
        ),
        EvalAltResult::ErrorParsing(p, _) => (format!("syntax error: {p}"), None),
        other => (without_position(&other.to_string()), None),
    }
}

/// `nets::add(..)`: Rhai takes an unknown module in a call for a module to import. When the
/// source there is such a call, say which script module was meant instead.
fn mistyped_module(err: &EvalAltResult, source: &Source) -> Option<(String, Option<String>)> {
    let EvalAltResult::ErrorModuleNotFound(name, pos) = err else { return None };
    let o = offset(&source.text, *pos)?;
    let rest = source.text[o..].strip_prefix(name.as_str())?.strip_prefix("::")?;
    let func: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if crate::script::stdlib::STDLIB.iter().any(|(p, ..)| p == name) {
        let help = format!("`{name}` is in the stdlib: add `import \"{name}\" as {name};` first");
        return Some((format!("module `{name}` is not imported"), Some(help)));
    }
    let message = format!("no script module `{name}`");
    let modules = crate::script::modules::all();
    let names: Vec<&str> = modules.iter().map(|(n, _)| *n).collect();
    let list = format!("modules: {}", names.join(", "));
    let has = |m: &rhai::Module| {
        m.gen_fn_signatures_with_mapper(Into::into)
            .any(|s| s.split('(').next() == Some(func.as_str()))
    };
    let close = modules
        .iter()
        .filter(|(n, _)| crate::net::error::distance(n, name) <= 2)
        .min_by_key(|(n, m)| (!has(m), crate::net::error::distance(n, name)));
    let help = match close {
        Some((m, module)) if has(module) => format!("did you mean {m}::{func}? {list}"),
        Some((m, _)) => format!("did you mean {m}? {list}"),
        None => list,
    };
    Some((message, Some(help)))
}

/// What the span of the innermost error marks.
fn label(err: &EvalAltResult) -> &'static str {
    match err {
        EvalAltResult::ErrorParsing(..) => "here",
        // `throw` of a value of the script's own: no call failed.
        EvalAltResult::ErrorRuntime(v, _) if !v.is::<NetError>() => "thrown here",
        _ => "this call failed",
    }
}

/// Rhai appends " (line N, position M)" to its messages; the diagnostic shows that already.
fn without_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// `netns::ad (&str | ImmutableString | String, i64)` -> `netns::ad(string, int)`.
fn readable_signature(sig: &str) -> String {
    let Some((name, args)) = sig.split_once(' ') else { return sig.to_string() };
    // Strip exactly one pair of parentheses: `()` is also a type (`netns::add (())`).
    let args = args.trim();
    let args = args.strip_prefix('(').and_then(|a| a.strip_suffix(')')).unwrap_or(args);
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in args.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    let ty = |t: &str| -> String {
        let t = t.trim();
        if t.contains("String") || t.contains("&str") {
            "string".into()
        } else if t == "i64" || t == "i32" {
            "int".into()
        } else if t == "f64" {
            "float".into()
        } else if t.ends_with("Map") {
            "map".into()
        } else if t.ends_with("Array") || t.starts_with("Vec<") {
            "array".into()
        } else {
            t.to_string()
        }
    };
    format!("{name}({})", out.iter().map(|a| ty(a)).collect::<Vec<_>>().join(", "))
}

thread_local! {
    static IN_REPL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Inside the REPL, help points at `:help` rather than at another command to type.
pub fn set_in_repl(on: bool) {
    IN_REPL.with(|c| c.set(on));
}

/// How to read the reference of `topic` ("" for all of it), where the user is.
fn doc_cmd(topic: &str) -> String {
    match (IN_REPL.with(|c| c.get()), topic) {
        (true, "") => "`:help`".into(),
        (true, t) => format!("`:help {t}`"),
        (false, "") => "`nslab doc`".into(),
        (false, t) => format!("`nslab doc {t}`"),
    }
}

fn unknown_function(sig: &str) -> (String, Option<String>) {
    let name = sig.split(' ').next().unwrap_or(sig);
    let msg = format!("unknown function {}", readable_signature(sig));
    let Some((module, func)) = name.rsplit_once("::") else {
        return (
            msg,
            Some(format!(
                "check the name and the number and types of the arguments; {} lists every function",
                doc_cmd("")
            )),
        );
    };
    let Some((_, m)) = crate::script::modules::all().into_iter().find(|(n, _)| *n == module) else {
        return (
            msg,
            Some(format!("there is no module `{module}`; {} lists the modules", doc_cmd(""))),
        );
    };
    let mut names: Vec<String> = m
        .gen_fn_signatures_with_mapper(Into::into)
        .filter_map(|s| s.split('(').next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    if names.iter().any(|n| n == func) {
        return (
            msg,
            Some(format!(
                "{module}::{func} exists, but not for these argument types; {} shows its forms",
                doc_cmd(&format!("{module}::{func}"))
            )),
        );
    }
    let close = names
        .iter()
        .min_by_key(|n| crate::net::error::distance(n, func))
        .filter(|n| crate::net::error::distance(n, func) <= 2);
    let help = match close {
        Some(c) => format!("did you mean {module}::{c}? {module}:: has {}", names.join(", ")),
        None => format!("{module}:: has {}", names.join(", ")),
    };
    (msg, Some(help))
}

/// A Rhai parse error in `source`.
pub fn parse_error(e: &ParseError, source: &Source) -> Diag {
    Diag::at(
        format!("syntax error: {}", e.err_type()),
        None,
        source,
        e.position(),
        Some("here".into()),
    )
}

/// A Rhai runtime error from a script whose main file is `main`; `lookup` finds other
/// sources (stdlib modules, imported files) by name.
/// Where a held-back call was made, for an error of it that surfaced at a later call.
fn held_from(
    e: &EvalAltResult,
    main: &Source,
    lookup: &dyn Fn(&str) -> Option<Source>,
) -> Option<Diag> {
    let EvalAltResult::ErrorRuntime(v, _) = e else { return None };
    let e = v.clone().try_cast::<NetError>()?;
    let (source, pos) = site_source(&e, main, lookup)?;
    let mut d = Diag::at(
        "held back from here".into(),
        None,
        &source,
        pos,
        Some("the call it belongs to".into()),
    );
    d.severity = Some(miette::Severity::Advice);
    Some(d)
}

/// The source and position of the call a held-back error belongs to.
fn site_source(
    e: &NetError,
    main: &Source,
    lookup: &dyn Fn(&str) -> Option<Source>,
) -> Option<(Source, Position)> {
    let (src, pos) = crate::script::site(e.site?)?;
    let source = match src {
        Some(s) if s != main.name => lookup(&s)?,
        _ => main.clone(),
    };
    Some((source, pos))
}

/// An error that surfaced after the recipe's last line (what was held back until the end
/// of the run): shown at the call it belongs to when that is known.
pub fn late_error(e: &NetError, main: &Source, lookup: &dyn Fn(&str) -> Option<Source>) -> Diag {
    match site_source(e, main, lookup) {
        Some((source, pos)) => Diag::at(
            e.message.clone(),
            e.help.clone(),
            &source,
            pos,
            Some("held back from here".into()),
        ),
        None => Diag::plain(e),
    }
}

pub fn eval_error(
    err: &EvalAltResult,
    main: &Source,
    lookup: &dyn Fn(&str) -> Option<Source>,
) -> Diag {
    // Unwrap the frames of script-defined functions: the outermost frame is the call in
    // the recipe, the innermost error is where it failed.
    let mut frames: Vec<(String, Option<String>, Position)> = Vec::new();
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                frames.push((name.clone(), (!src.is_empty()).then(|| src.clone()), *pos));
                e = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                frames.push((format!("import {name:?}"), Some(name.clone()), *pos));
                e = inner;
            }
            _ => break,
        }
    }
    let (message, help) = words(e);
    let inner_pos = e.position();
    let held = held_from(e, main, lookup);
    if frames.is_empty() {
        let (message, help) = mistyped_module(e, main).unwrap_or((message, help));
        let mut d = Diag::at(message, help, main, inner_pos, Some(label(e).into()));
        d.related.extend(held);
        return d;
    }
    // The source each frame's position is in: the recipe for the first, then the source of
    // the function called by the frame before.
    let mut here = main.clone();
    let mut chain = Vec::new();
    let mut related = Vec::new();
    for (i, (name, src, pos)) in frames.iter().enumerate() {
        if i > 0 {
            let mut d = Diag::at(
                format!("called from here, inside `{}`", frames[i - 1].0),
                None,
                &here,
                *pos,
                Some(format!("calls `{name}`")),
            );
            d.severity = Some(miette::Severity::Advice);
            related.push(d);
        }
        chain.push(name.clone());
        match src.as_deref() {
            Some(s) if s == main.name => here = main.clone(),
            Some(s) => {
                if let Some(s) = lookup(s) {
                    here = s;
                }
            }
            None => {}
        }
    }
    let (message, help) = mistyped_module(e, &here).unwrap_or((message, help));
    let last = frames.last().map(|f| f.0.clone()).unwrap_or_default();
    let mut d = Diag::at(
        format!("failed here, inside `{last}`"),
        None,
        &here,
        inner_pos,
        Some(label(e).into()),
    );
    d.severity = Some(miette::Severity::Advice);
    related.push(d);
    related.extend(held);
    let (_, _, first_pos) = &frames[0];
    let mut d = Diag::at(
        message,
        help,
        main,
        *first_pos,
        Some(format!("error inside `{}`", chain.join("` → `"))),
    );
    d.related = related;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_spans_cover_the_whole_call() {
        let t = "let x = 1;\nnetns::add(\"red)\", f(1));\n";
        let o = offset(t, Position::new(2, 1)).unwrap();
        assert_eq!(&t[o..o + call_len(t, o)], "netns::add(\"red)\", f(1))");
        let t = "foo + 1";
        assert_eq!(call_len(t, 0), 3);
    }

    #[test]
    fn offsets_count_characters() {
        let t = "// é\nab";
        assert_eq!(offset(t, Position::new(2, 2)), Some(t.len() - 1));
    }

    #[test]
    fn unknown_functions_get_suggestions() {
        let (m, h) = unknown_function("netns::ad (&str | ImmutableString | String)");
        assert_eq!(m, "unknown function netns::ad(string)");
        assert_eq!(readable_signature("f (i64, rhai::Map, bool)"), "f(int, map, bool)");
        let sig = "link::set_master (&str | ImmutableString | String, &str | ImmutableString | String, ())";
        assert_eq!(readable_signature(sig), "link::set_master(string, string, ())");
        assert_eq!(readable_signature("netns::add (())"), "netns::add(())");
        assert_eq!(readable_signature("sandbox::active ()"), "sandbox::active()");
        assert_eq!(h.unwrap(), "did you mean netns::add? netns:: has add, del, exec, exists, list");
    }
}
