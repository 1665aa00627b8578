//! `nslab doc [MODULE | MODULE::FUNCTION]`: the reference of every script function, read from
//! the Rhai metadata of the engine recipes run in (signature, doc comment, example), plus the
//! stdlib modules (`import "lab" as lab;`), from their `///` comments.
//! `nslab doc --markdown` prints the API table of README.md.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Failed, fail};
use crate::script::{engine, modules, stdlib};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A module (`netns`) or one function (`netns::add`); without it, an overview of all
    what: Option<String>,
    /// Print the API table of README.md (module | functions | summary) as Markdown
    #[arg(long, conflicts_with = "what")]
    markdown: bool,
}

/// One overload of a script function.
#[derive(Debug, Clone, PartialEq)]
pub struct FnDoc {
    pub module: String,
    pub name: String,
    /// (name, Rhai type); the type is "" for script-defined functions.
    pub params: Vec<(String, String)>,
    /// Rhai type of the result; "" when it returns nothing.
    pub ret: String,
    /// The doc comment without its `///` leaders.
    pub doc: String,
}

impl FnDoc {
    /// `add(ns: string, dev: string) -> bool`
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| if t.is_empty() { n.clone() } else { format!("{n}: {t}") })
            .collect();
        let ret = if self.ret.is_empty() { String::new() } else { format!(" -> {}", self.ret) };
        format!("{}({}){ret}", self.name, params.join(", "))
    }

    /// Parameter names; a `()` parameter (an explicit "none") as `()`.
    fn short_params(&self) -> Vec<String> {
        self.params
            .iter()
            .map(|(n, t)| if t == "()" { "()".to_string() } else { n.clone() })
            .collect()
    }

    fn ret_suffix(&self) -> String {
        if self.ret.is_empty() { String::new() } else { format!(" -> {}", self.ret) }
    }

    /// The first sentence of the doc comment, on one line.
    pub fn summary(&self) -> String {
        let para: Vec<&str> =
            self.doc.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
        let text = para.join(" ");
        // A sentence ends at ". " outside backticks (`ip link set DEV up`. is fine).
        let mut in_code = false;
        let chars: Vec<char> = text.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            match c {
                '`' => in_code = !in_code,
                '.' if !in_code && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) => {
                    return chars[..=i].iter().collect();
                }
                _ => {}
            }
        }
        text
    }

    /// The ```rhai examples of the doc comment.
    #[cfg(test)]
    pub fn examples(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<Vec<&str>> = None;
        for l in self.doc.lines() {
            let t = l.trim();
            match &mut cur {
                None if t == "```rhai" => cur = Some(Vec::new()),
                Some(lines) if t == "```" => {
                    out.push(lines.join("\n"));
                    cur = None;
                }
                Some(lines) => lines.push(l),
                None => {}
            }
        }
        out
    }
}

/// Rust parameter and return types as a script writer knows them.
fn rhai_type(t: &str) -> String {
    let t = t.trim().replace(' ', "");
    let t = t
        .strip_prefix("Result<")
        .and_then(|x| x.strip_suffix(",Box<EvalAltResult>>"))
        .unwrap_or(&t);
    let t = t.strip_prefix("rhai::").unwrap_or(t);
    match t {
        "" => String::new(),
        "()" => "()".into(),
        "&str" | "String" | "ImmutableString" | "&ImmutableString" => "string".into(),
        "i64" | "INT" => "int".into(),
        "f64" | "FLOAT" => "float".into(),
        "bool" => "bool".into(),
        "Array" => "array".into(),
        "Map" => "map".into(),
        "Dynamic" => "any".into(),
        other => other.to_lowercase(),
    }
}

fn strip_leaders(comments: &[&str]) -> String {
    let mut lines = Vec::new();
    for c in comments {
        for l in c.lines() {
            let l = l.trim_start();
            let l = l.strip_prefix("///").or_else(|| l.strip_prefix("/**")).unwrap_or(l);
            let l = l.strip_suffix("*/").unwrap_or(l);
            lines.push(l.strip_prefix(' ').unwrap_or(l).trim_end().to_string());
        }
    }
    lines.join("\n").trim().to_string()
}

/// Every script function: the native modules in the order scripts meet them, then the stdlib.
pub fn collect() -> Vec<FnDoc> {
    let engine = engine::build(Default::default(), None);
    let json = engine.gen_fn_metadata_to_json(false).expect("metadata serialises");
    let meta: Value = serde_json::from_str(&json).expect("metadata is JSON");
    let mut out = Vec::new();
    for (module, _) in modules::all() {
        let fns = meta["modules"][module]["functions"].as_array().cloned().unwrap_or_default();
        for f in fns {
            let params = f["params"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap_or("_").to_string(),
                                rhai_type(p["type"].as_str().unwrap_or("")),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let comments: Vec<&str> = f["docComments"]
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push(FnDoc {
                module: module.to_string(),
                name: f["name"].as_str().unwrap_or_default().to_string(),
                params,
                ret: Some(rhai_type(f["returnType"].as_str().unwrap_or("")))
                    .filter(|t| t != "()")
                    .unwrap_or_default(),
                doc: strip_leaders(&comments),
            });
        }
        // Rhai lists overloads of one arity in hash order: sort them so the output is the
        // same from build to build.
        let start = out.iter().position(|d| d.module == module).unwrap_or(out.len());
        // (A `()` argument, an explicit "none", sorts after the named forms.)
        let key = |d: &FnDoc| {
            let ps: Vec<(bool, String, String)> =
                d.params.iter().map(|(n, t)| (t == "()", n.clone(), t.clone())).collect();
            (d.name.clone(), d.params.len(), ps)
        };
        out[start..].sort_by_key(key);
    }
    for (module, _, source) in stdlib::STDLIB {
        let Ok(ast) = engine.compile(*source) else { continue };
        let mut fns: Vec<FnDoc> = ast
            .iter_functions()
            .filter(|f| f.access != rhai::FnAccess::Private)
            .map(|f| FnDoc {
                module: module.to_string(),
                name: f.name.to_string(),
                params: f.params.iter().map(|p| (p.to_string(), String::new())).collect(),
                ret: String::new(),
                doc: strip_leaders(&f.comments),
            })
            .collect();
        fns.sort_by(|a, b| (&a.name, a.params.len()).cmp(&(&b.name, b.params.len())));
        out.extend(fns);
    }
    out
}

/// The module names, in order, with their functions.
fn by_module(docs: &[FnDoc]) -> Vec<(String, Vec<&FnDoc>)> {
    let mut out: Vec<(String, Vec<&FnDoc>)> = Vec::new();
    for d in docs {
        match out.iter_mut().find(|(m, _)| *m == d.module) {
            Some((_, v)) => v.push(d),
            None => out.push((d.module.clone(), vec![d])),
        }
    }
    out
}

fn is_stdlib(module: &str) -> bool {
    stdlib::STDLIB.iter().any(|(m, ..)| *m == module)
}

const SYNTAX: &str = "\
syntax (always available)
  param NAME = DEFAULT;      a recipe parameter; `--set NAME=VALUE` overrides it (typed like the default)
  assert(cond)               stops the recipe (and rolls the lab back) when cond is false
  assert(cond, message)      ... with a message
";

/// `nslab doc`: every function, one line each.
pub fn overview(docs: &[FnDoc]) -> String {
    let mut out = String::new();
    for (module, fns) in by_module(docs) {
        if is_stdlib(&module) {
            out += &format!("{module}   (import \"{module}\" as {module};)\n");
        } else {
            out += &format!("{module}\n");
        }
        let w = fns.iter().map(|f| f.signature().len()).max().unwrap_or(0);
        for f in fns {
            out += &format!("  {:w$}   {}\n", f.signature(), f.summary());
        }
        out.push('\n');
    }
    out += SYNTAX;
    out +=
        "\n`nslab doc MODULE` or `nslab doc MODULE::FUNCTION` shows the full text with examples.\n";
    out
}

/// The full entries of some functions.
pub fn full(fns: &[&FnDoc]) -> String {
    let mut out = String::new();
    for (i, f) in fns.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out += &format!("{}::{}\n", f.module, f.signature());
        for l in f.doc.lines() {
            out += format!("    {l}").trim_end();
            out.push('\n');
        }
    }
    out
}

/// The overloads of one function in the notation of README's API table: an optional leading netns
/// (`[ns,]`) and optional trailing options (`[, opts]`) folded into one form where the
/// overloads cover both choices; other overloads listed apart.
pub fn compact_signatures(overloads: &[&FnDoc]) -> Vec<String> {
    const LEAD: [&str; 2] = ["ns", "from"];
    // (lead, core, has_opts) of each distinct parameter list.
    let mut forms: Vec<(Option<String>, Vec<String>, bool, String)> = Vec::new();
    for f in overloads {
        let mut ps = f.short_params();
        // `list(ns)` next to `list()` is the netns form too.
        let lone_ns =
            ps.len() == 1 && ps[0] == "ns" && overloads.iter().any(|o| o.params.is_empty());
        let lead = if (ps.len() > 1 || lone_ns) && LEAD.contains(&ps[0].as_str()) {
            Some(ps.remove(0))
        } else {
            None
        };
        let opts = ps.last().is_some_and(|p| p == "opts");
        if opts {
            ps.pop();
        }
        let form = (lead, ps, opts, f.ret_suffix());
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    // Group by (core, opts, ret): which leads exist.
    type Group = (Vec<String>, bool, String, Vec<Option<String>>);
    let mut groups: Vec<Group> = Vec::new();
    for (lead, core, opts, ret) in forms {
        match groups.iter_mut().find(|g| g.0 == core && g.1 == opts && g.2 == ret) {
            Some(g) => g.3.push(lead),
            None => groups.push((core, opts, ret, vec![lead])),
        }
    }
    let lead_text = |leads: &[Option<String>]| -> String {
        let named: Vec<&String> = leads.iter().flatten().collect();
        match (leads.iter().any(Option::is_none), named.first()) {
            (true, Some(n)) => format!("[{n},] "),
            (false, Some(n)) => format!("{n}, "),
            _ => String::new(),
        }
    };
    let with_core = |lead: String, core: &[String]| -> String {
        if core.is_empty() {
            lead.replace(",] ", "]").trim_end_matches(", ").to_string()
        } else {
            lead + core.join(", ").as_str()
        }
    };
    let name = &overloads[0].name;
    let mut out = Vec::new();
    let mut used = vec![false; groups.len()];
    for i in 0..groups.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let (core, opts, ret, leads) = &groups[i];
        // The same form with and without options: `[, opts]`.
        let twin = (0..groups.len()).find(|&k| {
            !used[k] && groups[k].0 == *core && groups[k].1 != *opts && groups[k].2 == *ret && {
                let (mut a, mut b) = (leads.clone(), groups[k].3.clone());
                a.sort();
                b.sort();
                a == b
            }
        });
        let head = with_core(lead_text(leads), core);
        let opt_text = match (twin, opts) {
            (Some(k), _) => {
                used[k] = true;
                if head.is_empty() { "[opts]".to_string() } else { " [, opts]".to_string() }
            }
            (None, true) => {
                if head.is_empty() {
                    "opts".to_string()
                } else {
                    ", opts".to_string()
                }
            }
            (None, false) => String::new(),
        };
        out.push(format!("{name}({head}{opt_text}){ret}"));
    }
    out
}

/// The README API table: one row per function name, its forms, and the first sentence of its
/// most descriptive overload.
pub fn markdown(docs: &[FnDoc]) -> String {
    let mut out = String::from("| module | function | summary |\n|---|---|---|\n");
    for (module, fns) in by_module(docs) {
        let mut names: Vec<&str> = Vec::new();
        for f in &fns {
            if !names.contains(&f.name.as_str()) {
                names.push(&f.name);
            }
        }
        for name in names {
            let overloads: Vec<&FnDoc> = fns.iter().copied().filter(|f| f.name == name).collect();
            let sigs: Vec<String> =
                compact_signatures(&overloads).iter().map(|s| format!("`{s}`")).collect();
            let summary =
                overloads.iter().map(|f| f.summary()).max_by_key(|s| s.len()).unwrap_or_default();
            out += &format!(
                "| `{module}` | {} | {} |\n",
                sigs.join("<br>"),
                summary.replace('|', "\\|")
            );
        }
    }
    out
}

/// Writes to stdout; a reader that went away (`nslab doc | head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn unknown(what: String, help: String) -> Failed {
    fail(crate::net::NetError::new(what).with_help(help))
}

pub fn run(a: Args) -> Result<(), Failed> {
    let docs = collect();
    if a.markdown {
        emit(&markdown(&docs));
        return Ok(());
    }
    let Some(what) = a.what else {
        emit(&overview(&docs));
        return Ok(());
    };
    let modules: BTreeMap<String, ()> = docs.iter().map(|d| (d.module.clone(), ())).collect();
    let list = modules.keys().cloned().collect::<Vec<_>>().join(", ");
    let (module, name) = match what.split_once("::") {
        Some((m, n)) => (m.to_string(), Some(n.to_string())),
        None => (what.clone(), None),
    };
    let in_module: Vec<&FnDoc> = docs.iter().filter(|d| d.module == module).collect();
    if in_module.is_empty() {
        // `nslab doc add` most likely means a function: say which modules have one.
        let owners: Vec<String> = docs
            .iter()
            .filter(|d| d.name == what)
            .map(|d| format!("{}::{}", d.module, d.name))
            .collect();
        let mut owners_dedup = owners.clone();
        owners_dedup.dedup();
        let help = if owners_dedup.is_empty() {
            format!("modules: {list}")
        } else {
            format!("did you mean {}? modules: {list}", owners_dedup.join(", "))
        };
        return Err(unknown(format!("no script module `{module}`"), help));
    }
    let chosen: Vec<&FnDoc> = match &name {
        None => in_module,
        Some(n) => {
            let v: Vec<&FnDoc> = in_module.iter().copied().filter(|d| &d.name == n).collect();
            if v.is_empty() {
                let mut names: Vec<&str> = in_module.iter().map(|d| d.name.as_str()).collect();
                names.dedup();
                return Err(unknown(
                    format!("module `{module}` has no function `{n}`"),
                    format!("{module} has: {}", names.join(", ")),
                ));
            }
            v
        }
    };
    if name.is_none() && is_stdlib(&module) {
        emit(&format!("import \"{module}\" as {module};\n\n"));
    }
    emit(&full(&chosen));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_function_has_a_doc_comment_and_an_example() {
        let docs = collect();
        assert!(docs.len() > 40, "the metadata lists too few functions: {}", docs.len());
        let mut missing = Vec::new();
        for d in &docs {
            if d.summary().is_empty() {
                missing.push(format!("{}::{} has no doc comment", d.module, d.signature()));
            } else if d.examples().is_empty() {
                missing.push(format!("{}::{} has no ```rhai example", d.module, d.signature()));
            }
        }
        assert!(missing.is_empty(), "undocumented script functions:\n  {}", missing.join("\n  "));
    }

    #[test]
    fn every_example_parses_and_calls_its_own_function() {
        let engine = engine::build(Default::default(), None);
        let mut bad = Vec::new();
        for d in collect() {
            for ex in d.examples() {
                if let Err(e) = engine.compile(&ex) {
                    bad.push(format!("{}::{}: {e}\n{ex}", d.module, d.name));
                } else if !ex.contains(&format!("{}::{}", d.module, d.name))
                    && !ex.contains(&format!(".{}(", d.name))
                {
                    bad.push(format!(
                        "{}::{}: the example does not call it\n{ex}",
                        d.module, d.name
                    ));
                }
            }
        }
        assert!(bad.is_empty(), "bad examples:\n{}", bad.join("\n\n"));
    }

    #[test]
    fn signatures_and_summaries_read_like_rhai() {
        let docs = collect();
        let up = docs
            .iter()
            .find(|d| d.module == "link" && d.name == "up" && d.params.len() == 2)
            .unwrap();
        assert_eq!(up.signature(), "up(ns: string, dev: string)");
        let list = docs.iter().find(|d| d.module == "netns" && d.name == "list").unwrap();
        assert_eq!(list.signature(), "list() -> array");
        let f = FnDoc {
            module: "m".into(),
            name: "f".into(),
            params: vec![],
            ret: String::new(),
            doc: "Brings it up, like `ip link set DEV up`. More text.\n\n```rhai\nm::f();\n```"
                .into(),
        };
        assert_eq!(f.summary(), "Brings it up, like `ip link set DEV up`.");
        assert_eq!(f.examples(), ["m::f();"]);
        assert_eq!(rhai_type("Result<Array, Box<EvalAltResult>>"), "array");
        let of = |m: &str, n: &str| -> Vec<String> {
            let v: Vec<&FnDoc> = docs.iter().filter(|d| d.module == m && d.name == n).collect();
            compact_signatures(&v)
        };
        assert_eq!(of("link", "up"), ["up([ns,] dev)"]);
        assert_eq!(of("link", "list"), ["list([ns]) -> array"]);
        assert_eq!(of("route", "list"), ["list([ns] [, opts]) -> array"]);
        assert_eq!(of("link", "set_netns"), ["set_netns([from,] dev, ns)"]);
        assert_eq!(
            of("netns", "exec"),
            ["exec(name, args [, opts]) -> map", "exec(name, cmd [, opts]) -> map"]
        );
        assert_eq!(of("probe", "ping"), ["ping([ns,] addr [, opts]) -> any"]);
        assert_eq!(of("nat", "port_forward"), ["port_forward([ns,] port, target [, opts])"]);
    }
}
