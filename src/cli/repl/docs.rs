//! The script functions' reference, from `nslab doc`'s reader of the Rhai metadata (so
//! `:help X` prints exactly what `nslab doc X` prints), cached for completion, which asks it
//! for each function's parameter names.

use std::sync::OnceLock;

use crate::cli::doc::{self, FnDoc};

/// Every form of every script function: native modules, then the stdlib.
pub fn all() -> &'static [FnDoc] {
    static DOCS: OnceLock<Vec<FnDoc>> = OnceLock::new();
    DOCS.get_or_init(doc::collect)
}

/// Names of the native script modules, in the order `modules::all()` lists them.
pub fn modules() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        crate::script::modules::all().into_iter().map(|(n, _)| n.to_string()).collect()
    })
}

/// The distinct function names of `module`, sorted.
pub fn functions(module: &str) -> Vec<&'static str> {
    let mut v: Vec<&str> =
        all().iter().filter(|d| d.module == module).map(|d| d.name.as_str()).collect();
    v.sort();
    v.dedup();
    v
}

/// The forms of `module::name`.
pub fn forms(module: &str, name: &str) -> Vec<&'static FnDoc> {
    all().iter().filter(|d| d.module == module && d.name == name).collect()
}

/// `:help MODULE::FUNCTION` or `:help MODULE`: the full entries, as `nslab doc` shows them.
pub fn help(topic: &str) -> Option<String> {
    let fns: Vec<&FnDoc> = match topic.split_once("::") {
        Some((m, f)) => forms(m, f),
        None => all().iter().filter(|d| d.module == topic).collect(),
    };
    (!fns.is_empty()).then(|| doc::full(&fns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_functions() {
        for m in modules() {
            assert!(!functions(m).is_empty(), "module {m} has no functions");
        }
        assert_eq!(functions("netns"), ["add", "del", "exec", "exists", "list"]);
        assert_eq!(forms("link", "up").len(), 2);
    }

    #[test]
    fn help_shows_signature_doc_and_example() {
        let h = help("netns::add").unwrap();
        assert!(h.starts_with("netns::add(name: string)\n"), "{h}");
        assert!(
            h.contains("Creates a named network namespace") && h.contains("netns::add(\"red\");"),
            "{h}"
        );
        assert!(help("netns::nope").is_none());
        assert!(help("link").unwrap().contains("link::set_master("));
        assert!(help("lab::attach").is_some(), "the stdlib is documented too");
    }
}
