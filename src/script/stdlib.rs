//! `import "lab" as lab;` — the .rhai modules embedded in the binary, so recipes work from any
//! directory; other paths resolve as files next to the recipe.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

type SharedModule = Shared<Module>;

/// (import path, file name shown in diagnostics, source).
pub const STDLIB: &[(&str, &str, &str)] =
    &[("lab", "stdlib/lab.rhai", include_str!("../../stdlib/lab.rhai"))];

pub fn source_of(name: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(_, file, _)| *file == name).map(|(_, _, src)| *src)
}

pub struct Resolver {
    files: FileModuleResolver,
    cache: RefCell<HashMap<String, SharedModule>>,
}

impl Resolver {
    pub fn new(base: Option<PathBuf>) -> Resolver {
        let files = match base {
            Some(b) => FileModuleResolver::new_with_path(b),
            None => FileModuleResolver::new(),
        };
        Resolver { files, cache: RefCell::new(HashMap::new()) }
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
        let Some((_, file, text)) = STDLIB.iter().find(|(p, _, _)| *p == path) else {
            return self.files.resolve(engine, source, path, pos);
        };
        if let Some(m) = self.cache.borrow().get(path) {
            return Ok(m.clone());
        }
        let mut ast = engine
            .compile(*text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(file.to_string(), e.into(), pos)))?;
        ast.set_source(*file);
        let mut m = Module::eval_ast_as_new(Scope::new(), &ast, engine)?;
        m.set_id(*file);
        let m: SharedModule = m.into();
        self.cache.borrow_mut().insert(path.to_string(), m.clone());
        Ok(m)
    }
}
