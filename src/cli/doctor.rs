//! `nslab doctor`: a preflight of this host — what would break a lab, and how to fix it.
//! Read-only: it lists, it never loads a module or creates an iptables table (it reads
//! `iptables-save`, which dumps only tables that exist, and `/proc/net/ip_tables_names`
//! before touching iptables-legacy).
//!
//! `nslab run` calls [`preflight_privileges`] and [`preflight_iptables`]: the checks that
//! would make a run fail, cheap enough for every run (a file read and a PATH lookup, no
//! process), before anything is touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Failed, fail};
use crate::lab::journal;
use crate::lab::teardown::{Owned, owner_tag};
use crate::net::{Kernel, NetError, netns};
use crate::script::recipe::Recipe;
use crate::script::stdlib;

#[derive(clap::Args, Debug)]
pub struct Args {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    level: Level,
    what: String,
    fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Check {
    Check { level: Level::Ok, what: what.into(), fix: None }
}

fn warn(what: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { level: Level::Warn, what: what.into(), fix: Some(fix.into()) }
}

fn bad(what: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { level: Level::Fail, what: what.into(), fix: Some(fix.into()) }
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capabilities of this process (`CapEff:` of /proc/self/status).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|h| h.trim().to_string()))
        })
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .unwrap_or(0)
}

/// Missing capabilities nslab needs to build a lab, by name.
fn missing_caps() -> Vec<&'static str> {
    let caps = effective_caps();
    let mut missing = Vec::new();
    if caps & (1 << CAP_NET_ADMIN) == 0 {
        missing.push("CAP_NET_ADMIN");
    }
    // Named namespaces are bind mounts (and --sandbox unshares a mount namespace).
    if caps & (1 << CAP_SYS_ADMIN) == 0 {
        missing.push("CAP_SYS_ADMIN");
    }
    missing
}

fn privileges_error(missing: &[&str]) -> NetError {
    NetError::new(format!("nslab needs root: this process lacks {}", missing.join(" and ")))
        .with_errno(libc::EPERM)
        .with_help("run it with sudo (links, routes and NAT need CAP_NET_ADMIN; named namespaces are mounts, CAP_SYS_ADMIN); `--sandbox` builds the lab in a throwaway sandbox without root where user namespaces are allowed; `nslab plan RECIPE` shows the commands without root")
}

/// The run-time check: root, or the two capabilities nslab needs.
pub fn preflight_privileges() -> Result<(), NetError> {
    let missing = missing_caps();
    if missing.is_empty() { Ok(()) } else { Err(privileges_error(&missing)) }
}

/// `name` found on PATH (what `Command::new(name)` would run).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn iptables_missing() -> NetError {
    NetError::new("this recipe sets up NAT, and the iptables command is not installed")
        .with_help("install it (Debian/Ubuntu: apt-get install iptables; Fedora: dnf install iptables-nft); nslab runs `iptables` for its nat:: and fw:: functions")
}

/// Does the recipe (or a module it imports) call `nat::` or `fw::` (iptables)? A textual look, cheap and on the
/// safe side: a mention in a comment counts too.
fn uses_nat(r: &Recipe) -> bool {
    let base = r.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut todo = vec![r.source.text.clone()];
    while let Some(text) = todo.pop() {
        if text.contains("nat::") || text.contains("fw::") {
            return true;
        }
        for name in imports(&text) {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some((_, _, t)) = stdlib::STDLIB.iter().find(|(path, _, _)| *path == name) {
                todo.push(t.to_string());
            } else {
                let p = base.join(&name);
                let p = if p.extension().is_none() { p.with_extension("rhai") } else { p };
                if let Ok(t) = std::fs::read_to_string(p) {
                    todo.push(t);
                }
            }
        }
    }
    false
}

/// The paths of `import "PATH"` statements.
fn imports(text: &str) -> Vec<String> {
    text.match_indices("import")
        .filter_map(|(i, _)| {
            let rest = text[i + "import".len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// The run-time check: a recipe that sets up NAT needs the iptables command.
pub fn preflight_iptables(r: &Recipe) -> Result<(), NetError> {
    if which("iptables").is_none() && uses_nat(r) { Err(iptables_missing()) } else { Ok(()) }
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Rules (`-A` lines) and non-ACCEPT built-in policies in an iptables-save dump.
fn count_rules(save: &str) -> usize {
    save.lines()
        .filter(|l| {
            l.starts_with("-A ")
                || (l.starts_with(':')
                    && l.split_whitespace().nth(1).is_some_and(|p| p == "DROP" || p == "REJECT"))
        })
        .count()
}

fn check_privileges() -> Check {
    let missing = missing_caps();
    if missing.is_empty() {
        let who = if nix::unistd::geteuid().is_root() { "root" } else { "not root, but" };
        ok(format!("privileges: {who} with CAP_NET_ADMIN and CAP_SYS_ADMIN"))
    } else {
        let e = privileges_error(&missing);
        bad(e.message, e.help.unwrap_or_default())
    }
}

/// The running kernel, against the oldest nslab supports.
fn check_kernel() -> Check {
    use crate::net::kernel_version::{OLDEST, at_least, release};
    let r = release();
    if at_least(&r, OLDEST) {
        ok(format!("kernel: {r}"))
    } else {
        warn(
            format!(
                "kernel {r} is older than {}.{}, the oldest nslab supports: without netns cookies (SO_NETNS_COOKIE), destroy may take a netns made again by hand under a lab's name for the lab's",
                OLDEST.0, OLDEST.1
            ),
            format!("use a kernel {}.{} or newer", OLDEST.0, OLDEST.1),
        )
    }
}

/// Without root: whether the kernel lets `--sandbox` make a user namespace of its own.
fn check_rootless() -> Option<Check> {
    if missing_caps().is_empty() {
        return None;
    }
    let forbidding = crate::lab::sandbox::forbidding_settings();
    Some(if forbidding.is_empty() {
        ok(
            "rootless sandbox: user namespaces are allowed, so `nslab run --sandbox`, `nslab repl --sandbox` and `nslab sandbox` work without root",
        )
    } else {
        warn(
            format!(
                "rootless sandbox: this kernel forbids unprivileged user namespaces ({})",
                forbidding.join(", ")
            ),
            "use sudo for --sandbox too",
        )
    })
}

/// The iptables command, and which backend it drives ("nf_tables" or "legacy").
fn check_iptables(checks: &mut Vec<Check>) -> Option<String> {
    let Some(path) = which("iptables") else {
        checks.push(warn(
            "iptables: the command is not installed; recipes that call nat:: or fw:: cannot run",
            "install it (Debian/Ubuntu: apt-get install iptables; Fedora: dnf install iptables-nft)",
        ));
        return None;
    };
    let version = output("iptables", &["--version"]).unwrap_or_default();
    let backend = if version.contains("nf_tables") { "nf_tables" } else { "legacy" };
    checks.push(ok(format!("iptables: {} ({})", path.display(), version.trim())));

    // Both backends can hold rules at once, and a packet passes both: a DROP in the one
    // nslab does not use still drops lab traffic, and `iptables -S` never shows it.
    let other = if backend == "nf_tables" {
        // Listing legacy tables would load their modules; only look when some exist.
        let names = std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
        if names.trim().is_empty() {
            None
        } else {
            output("iptables-legacy-save", &[]).map(|s| ("iptables-legacy", s))
        }
    } else {
        output("iptables-nft-save", &[]).map(|s| ("iptables-nft", s))
    };
    if let Some((other, save)) = other {
        let n = count_rules(&save);
        if n > 0 {
            checks.push(warn(
                format!("{other} has {n} rule(s) or DROP policies beside the {backend} ones nslab uses: packets pass both, and `iptables -S` does not show them"),
                format!("inspect them with `{other}-save`; move them to one backend (e.g. `{other}-save > rules; iptables-restore < rules`, then flush {other}), or switch nslab's iptables with `update-alternatives --config iptables`"),
            ));
        }
    }
    Some(backend.to_string())
}

fn check_br_netfilter() -> Check {
    match std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables") {
        Ok(v) if v.trim() == "1" => warn(
            "br_netfilter is on: bridged traffic passes iptables, so FORWARD rules and broad NAT rules also hit traffic between hosts on one lab bridge (nslab's masquerade leaves the subnet's own traffic alone)",
            "if nothing here needs it: `sysctl -w net.bridge.bridge-nf-call-iptables=0` (or `modprobe -r br_netfilter`); otherwise keep FORWARD open for lab subnets (next check)",
        ),
        Ok(_) => ok("br_netfilter: loaded, bridged traffic does not pass iptables"),
        Err(_) => ok("br_netfilter: not loaded, bridged traffic does not pass iptables"),
    }
}

fn check_forward_policy() -> Option<Check> {
    let save = output("iptables-save", &[])?;
    let mut table = "";
    for l in save.lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = if t == "filter" { "filter" } else { "" };
        }
        if table == "filter" && l.starts_with(":FORWARD ") {
            let policy = l.split_whitespace().nth(1).unwrap_or("");
            if policy == "DROP" || policy == "REJECT" {
                let docker = save.contains(":DOCKER-USER");
                let fix = if docker {
                    "Docker set it; allow a lab's subnet in DOCKER-USER: `iptables -I DOCKER-USER -s 192.168.24.0/24 -j ACCEPT` and `iptables -I DOCKER-USER -d 192.168.24.0/24 -j ACCEPT`"
                } else {
                    "`iptables -P FORWARD ACCEPT`, or allow just a lab's subnet: `iptables -I FORWARD -s 192.168.24.0/24 -j ACCEPT` and `iptables -I FORWARD -d 192.168.24.0/24 -j ACCEPT`"
                };
                return Some(warn(
                    format!(
                        "the FORWARD policy is {policy}{}: traffic from labs to the outside is dropped, and with br_netfilter also traffic between hosts on a lab bridge",
                        if docker { " (as Docker sets it)" } else { "" }
                    ),
                    fix,
                ));
            }
        }
    }
    Some(ok("FORWARD policy: ACCEPT"))
}

fn check_ip_forward() -> Check {
    match crate::net::kernel::sysctl_get(None, "net.ipv4.ip_forward") {
        Ok(v) if v == "1" => ok("ip_forward: on"),
        Ok(_) => ok(
            "ip_forward: off (a lab that routes turns it on with sysctl::ip_forward and gives the old value back when it goes)",
        ),
        Err(e) => {
            warn(format!("ip_forward: cannot read it: {e}"), "check that /proc/sys is mounted")
        }
    }
}

/// Labs whose journals point at objects that are gone, and objects tagged `nslab:LAB` that no
/// journal knows.
fn check_leftovers(kernel: &Kernel, checks: &mut Vec<Check>, have_iptables: bool) {
    let labs = journal::labs();
    let mut owned: Vec<(String, Owned)> = Vec::new();
    for lab in &labs {
        match journal::read(lab) {
            Ok(ops) => owned.push((lab.clone(), Owned::from_ops(&ops))),
            Err(e) => checks.push(warn(
                format!("lab {lab}: cannot read its journal: {e}"),
                format!("`nslab destroy {lab}`"),
            )),
        }
    }
    // /run/netns files with no netns mounted on them (a kill inside `ip netns del`).
    for name in netns::list().unwrap_or_default().into_iter().filter(|n| netns::is_dead(n)) {
        let by = owned.iter().find(|(_, o)| o.netns.contains(&name)).map(|(l, _)| l);
        checks.push(warn(
            format!("/run/netns/{name} holds no netns (a dead mount point: `ip netns exec {name}` fails, and so does making it again)"),
            match by {
                Some(lab) => format!("`nslab destroy {lab}` removes it"),
                None => format!("`rm /run/netns/{name}` (nothing is mounted there)"),
            },
        ));
    }
    let mut spaces: Vec<Option<String>> = vec![None];
    spaces.extend(
        netns::list().unwrap_or_default().into_iter().filter(|n| !netns::is_dead(n)).map(Some),
    );
    let mut links = Vec::new();
    for ns in &spaces {
        if let Ok(ls) = kernel.links(ns.as_deref()) {
            links.push((ns.clone(), ls));
        }
        if let Some(n) = ns {
            kernel.forget(n);
        }
    }
    // Labs: what is left of each.
    for (lab, o) in &owned {
        if journal::running_pid(lab).is_some() {
            continue;
        }
        let total = o.netns.len() + o.links.len();
        let present_ns = o.netns.iter().filter(|n| netns::exists(n)).count();
        let present_links = o
            .links
            .iter()
            .filter(|l| {
                links.iter().any(|(ns, ls)| {
                    ns == &l.ns
                        && ls.iter().any(|x| x.name == l.name && o.is_mine(ns.as_deref(), x, lab))
                })
            })
            .count();
        let present = present_ns + present_links;
        if total > 0 && present == 0 {
            checks.push(warn(
                format!(
                    "lab {lab}: its journal points at {} netns and {} links that are all gone",
                    o.netns.len(),
                    o.links.len()
                ),
                format!(
                    "`nslab destroy {lab}` removes the journal (and any rules or sysctls left)"
                ),
            ));
        } else if present < total {
            checks.push(warn(
                format!(
                    "lab {lab}: {} of its {total} namespaces and links are gone",
                    total - present
                ),
                format!("`nslab destroy {lab}` removes the rest"),
            ));
        }
    }
    // Tagged links no journal knows.
    let known = |lab: &str, ns: Option<&str>, l: &crate::net::info::LinkInfo| {
        owned.iter().any(|(name, o)| name == lab && o.is_mine(ns, l, lab))
    };
    let mut orphans = Vec::new();
    for (ns, ls) in &links {
        for l in ls {
            if let Some(lab) = l.alias.as_deref().and_then(|a| a.strip_prefix("nslab:"))
                && !known(lab, ns.as_deref(), l)
            {
                // Quoted: a link name may hold what a shell would run.
                let at = crate::net::Op::LinkDel { ns: ns.clone(), dev: l.name.clone() }.command();
                orphans.push((
                    format!(
                        "link {} in {} (nslab:{lab})",
                        l.name,
                        crate::net::error::place(ns.as_deref())
                    ),
                    at,
                ));
            }
        }
    }
    if have_iptables {
        for table in ["nat", "filter"] {
            let lists = super::show::ipt_lists(&spaces, table);
            for (listed, ns) in lists.into_iter().zip(spaces.iter().cloned()) {
                let Ok(rules) = listed else { continue };
                for r in rules {
                    let Some(c) = super::show::rule_comment(&r) else { continue };
                    let Some(lab) = c.strip_prefix("nslab:") else { continue };
                    let in_journal = owned.iter().any(|(name, o)| {
                        name == lab
                            && o.has_change(|op| {
                                matches!(op, crate::net::Op::IptAppend { ns: n, table: t, .. } if n == &ns && t == table)
                            })
                    });
                    if !in_journal {
                        let del = r.replacen("-A ", "-D ", 1);
                        let cmd = match &ns {
                            Some(n) => format!("ip netns exec {n} iptables -t {table} {del}"),
                            None => format!("iptables -t {table} {del}"),
                        };
                        orphans.push((
                            format!(
                                "{table} rule in {} tagged {}",
                                crate::net::error::place(ns.as_deref()),
                                owner_tag(lab)
                            ),
                            cmd,
                        ));
                    }
                }
            }
        }
    }
    if orphans.is_empty() {
        checks.push(ok(match labs.len() {
            0 => "labs: none up, and no object tagged nslab: is left behind".to_string(),
            n => format!("labs: {n} up; every object tagged nslab: belongs to one of them"),
        }));
    } else {
        let what = orphans.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>().join("; ");
        let fix = orphans.iter().map(|(_, c)| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        checks.push(warn(
            format!("{} object(s) tagged nslab: that no lab's journal knows (a journal removed by hand?): {what}", orphans.len()),
            format!("remove them by hand if nothing needs them: {fix}"),
        ));
    }
}

pub fn run(_: Args) -> Result<(), Failed> {
    let mut checks = vec![check_privileges()];
    checks.extend(check_rootless());
    checks.push(check_kernel());
    let backend = check_iptables(&mut checks);
    checks.push(check_br_netfilter());
    if backend.is_some()
        && let Some(c) = check_forward_policy()
    {
        checks.push(c);
    }
    checks.push(check_ip_forward());
    // Without root the namespaces cannot be entered: an all-clear would be a guess.
    match Kernel::new(None) {
        Ok(k) if missing_caps().is_empty() => check_leftovers(&k, &mut checks, backend.is_some()),
        Ok(_) => checks.push(warn(
            "leftover labs: cannot look inside the namespaces without root",
            "run `sudo nslab doctor`",
        )),
        Err(e) => checks.push(warn(format!("cannot look for leftover labs: {e}"), "run as root")),
    }
    let mut warnings = 0;
    let mut problems = 0;
    for c in &checks {
        let tag = match c.level {
            Level::Ok => "ok  ",
            Level::Warn => {
                warnings += 1;
                "warn"
            }
            Level::Fail => {
                problems += 1;
                "FAIL"
            }
        };
        println!("{tag}  {}", c.what);
        if let Some(f) = &c.fix {
            println!("      fix: {f}");
        }
    }
    println!("{problems} problem(s), {warnings} warning(s)");
    if problems > 0 {
        return Err(fail(NetError::new(
            "this host cannot run labs until the problems above are fixed",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn imports_are_found() {
        let t = "import \"lab\" as lab;\n// import nothing\nimport   \"lib/walkthrough\" as w;";
        assert_eq!(super::imports(t), vec!["lab".to_string(), "lib/walkthrough".to_string()]);
    }

    #[test]
    fn rules_and_drop_policies_count() {
        let save =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";
        assert_eq!(super::count_rules(save), 2);
    }
}
