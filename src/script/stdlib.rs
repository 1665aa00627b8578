//! `import "lab" as lab;` — the .rhai modules embedded in the binary, so recipes work from any
//! directory; other paths resolve as files next to the recipe.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rhai::{Dynamic, Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::net::NetError;

type SharedModule = Shared<Module>;

/// (import path, file name shown in diagnostics, source).
pub const STDLIB: &[(&str, &str, &str)] =
    &[("lab", "stdlib/lab.rhai", include_str!("../../stdlib/lab.rhai"))];

/// Imports nest at most this deep. Each level evaluates a module on the Rust stack, and
/// a chain of distinct files is not a cycle, so without a limit it could still overflow.
const MAX_IMPORT_DEPTH: usize = 32;

pub fn source_of(name: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(_, file, _)| *file == name).map(|(_, _, src)| *src)
}

/// Resolves the stdlib and `.rhai` files. Rhai's own FileModuleResolver names a module's
/// source after the import path ("lib/helper"), which is no file a diagnostic can read, and
/// recurses forever on a cyclic import; this one names sources by their file path and
/// refuses a cycle with the chain of files.
pub struct Resolver {
    base: Option<PathBuf>,
    cache: RefCell<HashMap<String, SharedModule>>,
    /// The files being evaluated right now, outermost first.
    loading: RefCell<Vec<String>>,
}

impl Resolver {
    pub fn new(base: Option<PathBuf>) -> Resolver {
        Resolver { base, cache: RefCell::new(HashMap::new()), loading: RefCell::new(Vec::new()) }
    }

    /// The file an import path names: relative to the recipe's directory, else (REPL)
    /// relative to the importing file, with the extension forced to `.rhai` as Rhai does.
    fn file_of(&self, source: Option<&str>, path: &str) -> PathBuf {
        let p = Path::new(path);
        let mut file = if p.is_relative() {
            let dir = match &self.base {
                Some(b) => b.clone(),
                None => source
                    .and_then(|s| Path::new(s).parent())
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            dir.join(p)
        } else {
            p.to_path_buf()
        };
        file.set_extension("rhai");
        file
    }

    /// Compiles and evaluates a module once; `key` caches it (the stdlib's keys are no paths,
    /// so a file `stdlib/lab.rhai` next to a recipe stays a file of its own).
    fn load(
        &self,
        engine: &Engine,
        key: &str,
        name: &str,
        text: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if let Some(m) = self.cache.borrow().get(key) {
            return Ok(m.clone());
        }
        let in_module = |e: Box<EvalAltResult>| {
            Box::new(EvalAltResult::ErrorInModule(name.to_string(), e, pos))
        };
        {
            let loading = self.loading.borrow();
            if let Some(i) = loading.iter().position(|l| l == name) {
                let chain: Vec<&str> =
                    loading[i..].iter().map(String::as_str).chain([name]).collect();
                let e = NetError::new(format!("import cycle: {}", chain.join(" → ")))
                    .with_help("a module cannot import itself, directly or through others: move what both need into a third file that imports neither");
                return Err(Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(e), pos)));
            }
            if loading.len() >= MAX_IMPORT_DEPTH {
                let e = NetError::new(format!(
                    "imports nest more than {MAX_IMPORT_DEPTH} deep (at {name})"
                ))
                .with_help("flatten the chain of imports");
                return Err(Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(e), pos)));
            }
        }
        let mut ast = engine.compile(text).map_err(|e| in_module(e.into()))?;
        ast.set_source(name);
        self.loading.borrow_mut().push(name.to_string());
        let m = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.loading.borrow_mut().pop();
        let mut m = m.map_err(in_module)?;
        // Errors inside the module's functions name this id as their source.
        m.set_id(name);
        let m: SharedModule = m.into();
        self.cache.borrow_mut().insert(key.to_string(), m.clone());
        Ok(m)
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if let Some((_, file, text)) = STDLIB.iter().find(|(p, _, _)| *p == path) {
            return self.load(engine, &format!("<stdlib>/{path}"), file, text, pos);
        }
        let file = self.file_of(source, path);
        let name = file.display().to_string();
        if let Some(m) = self.cache.borrow().get(&name) {
            return Ok(m.clone());
        }
        let text = super::recipe::read_source(&file).map_err(|e| {
            Box::new(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)
                }
                _ => EvalAltResult::ErrorRuntime(
                    Dynamic::from(
                        NetError::new(format!("cannot read module {name}: {e}"))
                            .with_help("import a regular .rhai file you can read (check the path and its permissions)"),
                    ),
                    pos,
                ),
            })
        })?;
        self.load(engine, &name, &name, &text, pos)
    }
}
