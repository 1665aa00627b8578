//! `nslab sandbox [-- CMD...]`: a throwaway host to experiment in, and what tests use to
//! look at a lab with independent tools (`ip -j`, `iptables -S`) while it exists.

use std::process::Command;

use super::{Failed, fail};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The command to run inside the sandbox (default: $SHELL)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(a: Args) -> Result<(), Failed> {
    crate::lab::sandbox::enter().map_err(fail)?;
    let argv = if a.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        a.command
    };
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|e| fail(crate::net::NetError::new(format!("cannot run {}: {e}", argv[0]))))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err(Failed(c.clamp(1, 255) as u8)),
        None => Err(Failed(1)),
    }
}
