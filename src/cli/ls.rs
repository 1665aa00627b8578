//! `nslab ls [--json]`: the labs that are up, from their journals and meta.json — what each
//! owns (counted from the journal, without asking the kernel), its recipe, parameters and
//! age, and whether a process is running it right now.

use serde::Serialize;

use super::{Failed, fail};
use crate::lab::journal;
use crate::lab::session::now_secs;
use crate::lab::teardown::{Counts, Owned};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
pub struct LabRow {
    pub lab: String,
    /// "up", "damaged (N bad lines)" or "unreadable" (its journal: `nslab destroy` cleans
    /// up from its tags), or "running" while a process (a run, a REPL) still holds it.
    pub state: String,
    pub pid: Option<u32>,
    pub recipe: Option<String>,
    pub params: Vec<(String, String)>,
    /// Seconds since the epoch; null when meta.json is missing.
    pub created: Option<u64>,
    pub age_secs: Option<u64>,
    pub objects: Counts,
}

pub fn rows() -> Result<Vec<LabRow>, crate::net::NetError> {
    let now = now_secs();
    let mut rows = Vec::new();
    for lab in journal::labs() {
        let meta = journal::read_meta(&lab);
        // Shorter than the run that wrote it said when it ended (`Meta::ended`).
        let ended = meta.as_ref().and_then(|m| m.ended);
        // One lab's damaged or unreadable journal is that lab's row, not every lab's error.
        let (ops, state) = match journal::read_all(&lab) {
            Ok(c) if !c.damage.is_empty() => {
                (c.ops, format!("damaged ({} bad lines)", c.damage.len()))
            }
            Ok(c) if ended.is_some_and(|e| e > c.last_seq) => (c.ops, "damaged (cut short)".into()),
            Ok(c) => (c.ops, "up".to_string()),
            Err(_) => (vec![], "unreadable".to_string()),
        };
        let pid = journal::running_pid(&lab);
        rows.push(LabRow {
            state,
            pid,
            recipe: meta.as_ref().and_then(|m| m.recipe.as_deref()).map(shown_path),
            params: meta.as_ref().map(|m| m.params.clone()).unwrap_or_default(),
            created: meta.as_ref().map(|m| m.created),
            age_secs: meta.as_ref().map(|m| now.saturating_sub(m.created)),
            objects: Owned::from_ops(&ops).counts(),
            lab,
        });
    }
    Ok(rows)
}

/// "42s", "5m", "3h", "2d".
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

pub fn render(rows: &[LabRow]) -> String {
    if rows.is_empty() {
        return "no labs are up\n".into();
    }
    let header = [
        "LAB", "STATE", "AGE", "NETNS", "LINKS", "ADDRS", "ROUTES", "RULES", "SYSCTLS", "RECIPE",
        "PARAMS",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let o = &r.objects;
        table.push(vec![
            r.lab.clone(),
            match r.pid {
                Some(p) => format!("running ({p})"),
                None => r.state.clone(),
            },
            r.age_secs.map(age).unwrap_or_else(|| "?".into()),
            o.netns.to_string(),
            o.links.to_string(),
            o.addrs.to_string(),
            o.routes.to_string(),
            o.rules.to_string(),
            o.sysctls.to_string(),
            r.recipe.clone().unwrap_or_else(|| "-".into()),
            r.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for row in &table {
        let line: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:w$}")).collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

pub fn run(a: Args) -> Result<(), Failed> {
    let rows = rows().map_err(fail)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("rows serialise"));
    } else {
        print!("{}", render(&rows));
    }
    Ok(())
}

/// A recipe's path as `run` recorded it (absolute), shown relative to the current directory
/// when it lies below it.
fn shown_path(recorded: &str) -> String {
    let p = std::path::Path::new(recorded);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| recorded.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_short() {
        assert_eq!(super::age(5), "5s");
        assert_eq!(super::age(125), "2m");
        assert_eq!(super::age(7300), "2h");
        assert_eq!(super::age(200000), "2d");
    }
}
