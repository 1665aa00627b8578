//! A recipe file: loaded, parsed (syntax errors are found before anything runs), its params
//! listed, and run with errors turned into diagnostics.

use std::path::{Path, PathBuf};

use rhai::{AST, Engine, Scope};

use super::diagnostic::{self, Diag, Source};
use super::param::{self, Overrides, Param};
use super::{engine, stdlib};
use crate::net::NetError;

pub struct Recipe {
    pub path: PathBuf,
    pub source: Source,
    pub ast: AST,
    pub params: Vec<Param>,
}

/// Reads and compiles `path` with `engine`.
pub fn load(engine: &Engine, path: &Path) -> Result<Recipe, Diag> {
    let text = read_source(path).map_err(|e| {
        Diag::plain(
            &NetError::new(format!("cannot read recipe {}: {e}", path.display()))
                .with_help("check the path; recipes are .rhai files, e.g. scripts/tutorial.rhai"),
        )
    })?;
    compile(engine, path, text)
}

pub fn compile(engine: &Engine, path: &Path, text: String) -> Result<Recipe, Diag> {
    let source = Source::new(path.display().to_string(), text);
    let mut ast = engine.compile(&source.text).map_err(|e| diagnostic::parse_error(&e, &source))?;
    ast.set_source(source.name.clone());
    let params = param::declared(&ast, &source.text);
    // `--set n=...` would set both, and `nslab info` would list two defaults: a second
    // declaration is a mistake (a copy-paste), refused before anything runs.
    for (i, p) in params.iter().enumerate() {
        if let Some(first) = params[..i].iter().find(|q| q.name == p.name) {
            let line = first.position.line().unwrap_or(0);
            return Err(Diag::at(
                format!("param `{}` is declared twice", p.name),
                Some(format!(
                    "line {line} declares it first; remove one declaration, or give this one another name"
                )),
                &source,
                p.position,
                Some("declared again here".into()),
            ));
        }
    }
    Ok(Recipe { path: path.to_path_buf(), source, ast, params })
}

/// An engine for running `path` with `--set` values.
pub fn engine_for(path: &Path, overrides: Overrides) -> Engine {
    engine::build(overrides, path.parent())
}

/// Finds the text of a source named in an error (stdlib modules and imported files).
pub fn lookup(name: &str) -> Option<Source> {
    if let Some(t) = stdlib::source_of(name) {
        return Some(Source::new(name, t));
    }
    // An imported file: a diagnostic shows its offending line only (see Source::context).
    read_source(Path::new(name))
        .ok()
        .map(|text| Source { context: false, ..Source::new(name, text) })
}

/// The text of a recipe or module file. Only a regular file (after symlinks): opening a FIFO
/// named `x.rhai` blocked nslab for good, deaf to Ctrl-C (issue 14); a directory, a device or
/// a socket is no recipe either. Opened without blocking, then checked, then read.
pub fn read_source(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let kind = f.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "a device"
            }
        };
        return Err(std::io::Error::other(format!("it is {what}, not a regular file")));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(text)
}

impl Recipe {
    /// The recipe's description: its leading `//!` (or `//`) comment block.
    pub fn description(&self) -> String {
        let mut out = Vec::new();
        for l in self.source.text.lines() {
            let t = l.trim();
            if let Some(c) = t.strip_prefix("//!").or_else(|| t.strip_prefix("//")) {
                out.push(c.strip_prefix(' ').unwrap_or(c).to_string());
            } else if t.is_empty() && out.is_empty() {
                continue;
            } else {
                break;
            }
        }
        out.join("\n")
    }

    /// Runs the recipe in `scope`.
    pub fn run(&self, engine: &Engine, scope: &mut Scope) -> Result<(), Diag> {
        engine
            .run_ast_with_scope(scope, &self.ast)
            .map_err(|e| diagnostic::eval_error(&e, &self.source, &lookup))
    }

    /// An error that surfaced after the recipe's last line, at the call it belongs to.
    pub fn late_error(&self, e: &crate::net::NetError) -> Diag {
        diagnostic::late_error(e, &self.source, &lookup)
    }
}
