//! `nslab destroy LAB | --all`: undo labs from their journals.

use super::{Failed, fail, report};
use crate::lab::journal;
use crate::script::diagnostic::Diag;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lab to remove (see `nslab ls`)
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    lab: Option<String>,
    /// Remove every lab
    #[arg(long)]
    all: bool,
    /// Also while another nslab process (a run, a REPL) still holds the lab
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<(), Failed> {
    let labs = match a.lab {
        Some(l) => {
            journal::check_lab_name(&l).map_err(fail)?;
            vec![l]
        }
        None => journal::labs(),
    };
    if labs.is_empty() {
        println!("no labs are up: nothing to destroy");
    }
    let mut failed = false;
    for lab in labs {
        let errors = crate::lab::destroy_with(&lab, a.force);
        if errors.is_empty() {
            println!("destroyed lab {lab}");
            continue;
        }
        failed = true;
        for e in errors {
            let mut d = Diag::plain(&e);
            d.message = format!("destroy {lab}: {}", d.message);
            report(d);
        }
    }
    if failed { Err(Failed(1)) } else { Ok(()) }
}
