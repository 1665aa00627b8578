//! The arguments `run` and `plan` share: a recipe, its `--set` values and the lab's name, and
//! loading them the same way (parse, list params, refuse unknown or mistyped `--set` keys).

use std::path::PathBuf;

use rhai::Engine;

use super::{Failed, fail};
use crate::lab::journal;
use crate::net::NetError;
use crate::script::param::{self, Overrides};
use crate::script::recipe::{self, Recipe};

#[derive(clap::Args, Debug)]
pub struct RecipeArgs {
    /// The recipe (.rhai)
    pub recipe: PathBuf,
    /// Override a `param NAME = DEFAULT;` of the recipe (typed like the default)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Name of the lab, also in the `nslab:LAB` tags (default: the recipe's file stem)
    #[arg(long)]
    pub lab: Option<String>,
}

/// A recipe ready to run: compiled, its `--set` values checked against its params.
pub struct Loaded {
    pub lab: String,
    pub overrides: Overrides,
    pub engine: Engine,
    pub recipe: Recipe,
}

impl RecipeArgs {
    pub fn lab_name(&self) -> String {
        self.lab.clone().unwrap_or_else(|| {
            self.recipe
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "lab".into())
        })
    }

    pub fn load(&self) -> Result<Loaded, Failed> {
        let lab = self.lab_name();
        journal::check_lab_name(&lab).map_err(|e| {
            fail(match &self.lab {
                Some(_) => e,
                // The name came from the file: say so, and how to pick one.
                None => NetError::new(format!(
                    "the recipe's file name makes an invalid lab name: {}",
                    e.message
                ))
                .with_help("name the lab with --lab NAME (letters, digits, `-`, `_`, `.`; not starting with `.`)"),
            })
        })?;
        let overrides = param::parse_sets(&self.sets).map_err(fail)?;
        let engine = recipe::engine_for(&self.recipe, overrides.clone());
        let recipe = recipe::load(&engine, &self.recipe).map_err(fail)?;
        param::validate(&engine, &recipe.params, &overrides).map_err(fail)?;
        Ok(Loaded { lab, overrides, engine, recipe })
    }
}
