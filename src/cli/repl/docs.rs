//! The script functions' reference, read from the Rhai metadata of the script modules (the
//! same `///` comments `nslab doc` shows): what `:help` prints and what completion knows
//! about each function's parameters.

use std::sync::OnceLock;

/// One form (overload) of a script function.
#[derive(Debug, Clone, PartialEq)]
pub struct FnDoc {
    pub module: String,
    pub name: String,
    /// (name, type as a script writer reads it: string, int, bool, array, map, any).
    pub params: Vec<(String, String)>,
    /// "" when the function returns nothing.
    pub returns: String,
    /// The doc comment without its `///` markers.
    pub doc: String,
}

impl FnDoc {
    /// `link::up(ns: string, dev: string)`, `link::list(ns: string) -> array`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let mut s = format!("{}::{}({})", self.module, self.name, params.join(", "));
        if !self.returns.is_empty() {
            s.push_str(" -> ");
            s.push_str(&self.returns);
        }
        s
    }

    /// The doc's first sentence-ish line, for overviews.
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or("")
    }
}

/// Every form of every script function, in module order, then by name.
pub fn all() -> &'static [FnDoc] {
    static DOCS: OnceLock<Vec<FnDoc>> = OnceLock::new();
    DOCS.get_or_init(load)
}

/// Names of the script modules, in the order `modules::all()` lists them.
pub fn modules() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| crate::script::modules::all().into_iter().map(|(n, _)| n.to_string()).collect())
}

/// The distinct function names of `module`, sorted.
pub fn functions(module: &str) -> Vec<&'static str> {
    let mut v: Vec<&str> = all().iter().filter(|d| d.module == module).map(|d| d.name.as_str()).collect();
    v.sort();
    v.dedup();
    v
}

/// The forms of `module::name`.
pub fn forms(module: &str, name: &str) -> Vec<&'static FnDoc> {
    all().iter().filter(|d| d.module == module && d.name == name).collect()
}

fn load() -> Vec<FnDoc> {
    // The public way to the doc comments of native functions is the JSON metadata.
    let mut engine = rhai::Engine::new_raw();
    crate::script::modules::register(&mut engine);
    let json = engine.gen_fn_metadata_to_json(false).expect("metadata serialises");
    let v: serde_json::Value = serde_json::from_str(&json).expect("metadata is JSON");
    let mut out = Vec::new();
    for module in modules() {
        let Some(fns) = v["modules"][module.as_str()]["functions"].as_array() else { continue };
        let mut docs: Vec<FnDoc> = fns.iter().map(|f| parse_fn(module, f)).collect();
        docs.sort_by(|a, b| a.name.cmp(&b.name).then(a.params.len().cmp(&b.params.len())));
        out.extend(docs);
    }
    out
}

fn parse_fn(module: &str, f: &serde_json::Value) -> FnDoc {
    let params = f["params"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| (p["name"].as_str().unwrap_or("_").to_string(), script_type(p["type"].as_str().unwrap_or(""))))
                .collect()
        })
        .unwrap_or_default();
    let doc = f["docComments"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c.as_str()).map(strip_comment).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    FnDoc {
        module: module.to_string(),
        name: f["name"].as_str().unwrap_or("").to_string(),
        params,
        returns: script_type(f["returnType"].as_str().unwrap_or("")),
        doc,
    }
}

fn strip_comment(c: &str) -> String {
    c.lines()
        .map(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix("///").or_else(|| t.strip_prefix("//!")).unwrap_or(t);
            t.strip_prefix(' ').unwrap_or(t)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rust type names as Rhai's metadata spells them -> the names a script writer knows.
pub fn script_type(t: &str) -> String {
    let t = t.trim();
    let inner = t.strip_prefix("Result<").and_then(|r| r.strip_suffix(", Box<EvalAltResult>>")).unwrap_or(t);
    match inner {
        "()" | "" => "",
        "&str" | "String" | "ImmutableString" | "&mut String" => "string",
        "i64" | "INT" => "int",
        "f64" | "FLOAT" => "float",
        "bool" => "bool",
        "Array" | "rhai::Array" => "array",
        "Map" | "rhai::Map" => "map",
        "Dynamic" => "any",
        other => other,
    }
    .to_string()
}

/// `:help MODULE::FUNCTION` — every form with its doc; the doc's ```rhai blocks become an
/// indented example.
pub fn function_help(module: &str, name: &str) -> Option<String> {
    let forms = forms(module, name);
    if forms.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, d) in forms.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.signature());
        out.push('\n');
        let mut in_code = false;
        for l in d.doc.lines() {
            if l.trim_start().starts_with("```") {
                if !in_code {
                    out.push_str("  example:\n");
                }
                in_code = !in_code;
                continue;
            }
            if in_code {
                out.push_str("      ");
            } else if !l.is_empty() {
                out.push_str("  ");
            }
            out.push_str(l);
            out.push('\n');
        }
    }
    Some(out)
}

/// `:help MODULE` — its functions with their one-line summaries.
pub fn module_help(module: &str) -> Option<String> {
    if !modules().iter().any(|m| m == module) {
        return None;
    }
    let forms: Vec<&FnDoc> = all().iter().filter(|d| d.module == module).collect();
    let width = forms.iter().map(|d| d.signature().len()).max().unwrap_or(0);
    let mut out = String::new();
    for d in forms {
        out.push_str(&format!("  {:width$}  {}\n", d.signature(), d.summary()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_documented_functions() {
        for m in modules() {
            assert!(!functions(m).is_empty(), "module {m} has no functions");
        }
        assert_eq!(functions("netns"), ["add", "del", "exec", "exists", "list"]);
        let add = &forms("netns", "add")[0];
        assert_eq!(add.signature(), "netns::add(name: string)");
        assert!(add.doc.contains("netns::add(\"red\");"), "{}", add.doc);
    }

    #[test]
    fn help_shows_signature_doc_and_example() {
        let h = function_help("netns", "add").unwrap();
        assert!(h.starts_with("netns::add(name: string)\n  Creates a named network namespace"), "{h}");
        assert!(h.contains("  example:\n      netns::add(\"red\");\n"), "{h}");
        assert!(function_help("netns", "nope").is_none());
        let list = &forms("link", "list")[1];
        assert_eq!(list.signature(), "link::list(ns: string) -> array");
    }

    #[test]
    fn types_read_like_script_types() {
        assert_eq!(script_type("Result<(), Box<EvalAltResult>>"), "");
        assert_eq!(script_type("Result<Array, Box<EvalAltResult>>"), "array");
        assert_eq!(script_type("&str"), "string");
        assert_eq!(script_type("i64"), "int");
    }
}
