//! A command run inside a netns (`ip netns exec NAME CMD`).

use std::process::Command;

use super::error::{NetError, NetResult, place};
use super::netns;

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` to completion. The child is spawned from a thread inside the netns, and a
/// child process starts in the netns of the thread that spawns it.
pub fn exec(ns: Option<&str>, argv: Vec<String>) -> NetResult<ExecOutput> {
    let Some(prog) = argv.first().cloned() else {
        return Err(NetError::new("empty command")
            .with_help("pass a string like \"ip -br addr\" or an array of arguments"));
    };
    let where_ = place(ns);
    let out = netns::run_in(ns, move || Command::new(&argv[0]).args(&argv[1..]).output())?;
    let out = out.map_err(|e| {
        NetError::new(format!("cannot run {prog} in {where_}: {e}"))
            .with_help("is the program installed and on PATH?")
    })?;
    Ok(ExecOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
