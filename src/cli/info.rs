//! `nslab info RECIPE`: what a recipe is for and what it takes, without running it.

use std::path::PathBuf;

use super::{Failed, fail};
use crate::script::param::Param;
use crate::script::recipe;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The recipe (.rhai)
    recipe: PathBuf,
    /// Print JSON: {recipe, description, params: [{name, type, default, doc}]}
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<(), Failed> {
    // Compiling parses the recipe (and reports syntax errors) but runs nothing: no import is
    // resolved and no script function is called.
    let engine = recipe::engine_for(&a.recipe, Default::default());
    let r = recipe::load(&engine, &a.recipe).map_err(fail)?;
    let name = r.path.display().to_string();
    if a.json {
        let params: Vec<serde_json::Value> = r
            .params
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "type": p.type_name(), "default": p.default_text, "doc": p.doc}))
            .collect();
        let v =
            serde_json::json!({"recipe": name, "description": r.description(), "params": params});
        super::doc::emit(&(serde_json::to_string_pretty(&v).expect("plain JSON") + "\n"));
    } else {
        super::doc::emit(&render(&name, &r.description(), &r.params));
    }
    Ok(())
}

pub fn render(recipe: &str, description: &str, params: &[Param]) -> String {
    let mut out = format!("{recipe}\n\n");
    if description.trim().is_empty() {
        out += "  (no description: start the recipe with a `//!` comment block)\n";
    } else {
        for l in description.lines() {
            out += format!("  {l}").trim_end();
            out.push('\n');
        }
    }
    out.push('\n');
    if params.is_empty() {
        out += "params: none\n";
    } else {
        out += "params (override with --set NAME=VALUE):\n";
        let w = params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let tw = params.iter().map(|p| p.type_name().len()).max().unwrap_or(0);
        for p in params {
            out += &format!("  {:w$}  {:tw$}  = {}\n", p.name, p.type_name(), p.default_text);
            if !p.doc.is_empty() {
                out += &format!("  {:w$}  {:tw$}    {}\n", "", "", p.doc);
            }
        }
        let example = &params[0];
        out += &format!(
            "\nplan it: nslab plan {recipe} --set {}=...\nrun it:  nslab run {recipe}\n",
            example.name
        );
    }
    out
}
