//! `nslab defs DIR`: `.d.rhai` definition files of the script API, for editors and language
//! servers (Rhai's definitions API), plus one for each stdlib module.

use std::path::PathBuf;

use super::doc::collect;
use super::{Failed, fail};
use crate::net::NetError;
use crate::script::{engine, stdlib};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write the .d.rhai files into (created if needed)
    dir: PathBuf,
    /// Leave out Rhai's own standard library (__builtin__*.d.rhai)
    #[arg(long)]
    no_std: bool,
}

/// Rhai prints some return types half-expanded (`Array >` for `RhaiResultOf<rhai::Array>`,
/// `EvalAltResult>>` for a native `Result<(), _>`): put them back together.
pub fn fix_return_types(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let fixed = match (
            line.starts_with("fn ") || line.contains(" fn "),
            line.rfind(") -> "),
            line.strip_suffix(';'),
        ) {
            (true, Some(i), Some(body)) if i + 5 <= body.len() => {
                let ty = body[i + 5..].trim();
                let ty = if ty.ends_with("EvalAltResult>>") {
                    "()".to_string()
                } else {
                    let mut t = ty.to_string();
                    while t.matches('>').count() > t.matches('<').count() && t.ends_with('>') {
                        t.pop();
                        t = t.trim_end().to_string();
                    }
                    t
                };
                format!("{}) -> {ty};", &body[..i])
            }
            _ => line.to_string(),
        };
        out += &fixed;
        out.push('\n');
    }
    out
}

/// The definition file of a stdlib module, from its doc comments.
fn stdlib_defs(module: &str) -> String {
    let mut out = format!("module {module};\n");
    for f in collect().into_iter().filter(|f| f.module == module) {
        out.push('\n');
        for l in f.doc.lines() {
            out += format!("/// {l}").trim_end();
            out.push('\n');
        }
        let params: Vec<String> = f.params.iter().map(|(n, _)| format!("{n}: ?")).collect();
        out += &format!("fn {}({}) -> ?;\n", f.name, params.join(", "));
    }
    out
}

pub fn run(a: Args) -> Result<(), Failed> {
    let engine = engine::build(Default::default(), None);
    let defs = engine.definitions().include_standard_packages(!a.no_std);
    let mut files: Vec<(String, String)> =
        defs.iter_files().map(|(n, t)| (n, fix_return_types(&t))).collect();
    for (module, ..) in stdlib::STDLIB {
        files.push((format!("{module}.d.rhai"), stdlib_defs(module)));
    }
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&a.dir)?;
        for (name, text) in &files {
            std::fs::write(a.dir.join(name), text)?;
        }
        Ok(())
    };
    write().map_err(|e| {
        fail(
            NetError::new(format!("cannot write definitions to {}: {e}", a.dir.display()))
                .with_help("pick a directory you can write to"),
        )
    })?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    println!("wrote {} definition files to {}: {}", files.len(), a.dir.display(), names.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_types_are_whole() {
        let t = "fn list() -> Array >;\nfn assert(_: bool) -> EvalAltResult>>;\nfn f(x: Map) -> Map;\nfn g() -> ();\n";
        assert_eq!(
            fix_return_types(t),
            "fn list() -> Array;\nfn assert(_: bool) -> ();\nfn f(x: Map) -> Map;\nfn g() -> ();\n"
        );
    }

    #[test]
    fn generated_definitions_have_no_mangled_types() {
        let engine = engine::build(Default::default(), None);
        for (name, text) in engine.definitions().include_standard_packages(false).iter_files() {
            let fixed = fix_return_types(&text);
            for l in fixed.lines().filter(|l| l.starts_with("fn ")) {
                let ret = l.rsplit(") -> ").next().unwrap();
                assert!(!ret.contains('>') && !ret.contains("EvalAltResult"), "{name}: {l}");
            }
        }
        assert!(
            stdlib_defs("lab").contains(
                "fn attach(name: ?, bridge: ?, dev: ?, port: ?, cidr: ?, gateway: ?) -> ?;"
            )
        );
    }
}
