//! `nslab doc`, `nslab info`, `nslab defs`: the reference comes from the Rhai metadata, and
//! README.md's API table is that metadata (a test fails when they drift apart).

use crate::common::{self, nslab, recipe, snapshot};

const START: &str = "<!-- api:start -->";
const END: &str = "<!-- api:end -->";

/// README.md's region between the API markers must be `nslab doc --markdown`.
/// `UPDATE_SNAPSHOTS=1` rewrites the region (and adds the markers at the end if absent).
#[test]
fn readme_api_table_matches_the_metadata() {
    let table = nslab(&["doc", "--markdown"]);
    table.ok();
    let path = common::root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let region = readme.find(START).zip(readme.find(END)).filter(|(s, e)| s < e);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let new = match region {
            Some((s, e)) => format!(
                "{}{START}\n{}{END}{}",
                &readme[..s],
                table.stdout,
                &readme[e + END.len()..]
            ),
            None => format!(
                "{}\n{START}\n{}{END}\n",
                readme.trim_end_matches('\n').to_string() + "\n",
                table.stdout
            ),
        };
        std::fs::write(&path, new).unwrap();
        return;
    }
    let (s, e) = region.unwrap_or_else(|| {
        panic!("README.md has no {START} ... {END} region (UPDATE_SNAPSHOTS=1 adds it)")
    });
    let current = readme[s + START.len()..e].trim();
    assert_eq!(
        current,
        table.stdout.trim(),
        "README.md's API table differs from `nslab doc --markdown` (UPDATE_SNAPSHOTS=1 rewrites it)"
    );
}

#[test]
fn doc_of_a_module_and_a_function() {
    let r = nslab(&["doc", "netns"]);
    r.ok();
    snapshot("doc-netns.txt", &r.stdout);
    let r = nslab(&["doc", "link::up"]);
    r.ok();
    snapshot("doc-link-up.txt", &r.stdout);
    assert!(r.stdout.contains("link::up(ns: string, dev: string)"), "{}", r.stdout);
    assert!(r.stdout.contains("```rhai"), "{}", r.stdout);
    let r = nslab(&["doc", "lab::attach"]);
    r.ok();
    assert!(
        r.stdout.starts_with("lab::attach(name, bridge, dev, port, cidr, gateway)"),
        "{}",
        r.stdout
    );
}

#[test]
fn doc_overview_lists_every_module() {
    let r = nslab(&["doc"]);
    r.ok();
    for m in [
        "netns", "bridge", "veth", "link", "addr", "route", "sysctl", "nat", "neigh", "probe",
        "sandbox", "cidr", "lab",
    ] {
        assert!(
            r.stdout.lines().any(|l| l.split_whitespace().next() == Some(m)),
            "module {m} missing:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("param NAME = DEFAULT;"));
}

#[test]
fn doc_of_unknown_names_says_what_exists() {
    let r = nslab(&["doc", "netnss"]);
    r.failed();
    assert!(r.stderr.contains("no script module `netnss`"), "{}", r.stderr);
    assert!(r.stderr.contains("modules: addr, bridge"), "{}", r.stderr);
    let r = nslab(&["doc", "link::upp"]);
    r.failed();
    assert!(r.stderr.contains("module `link` has no function `upp`"), "{}", r.stderr);
    let r = nslab(&["doc", "masquerade"]);
    r.failed();
    assert!(r.stderr.contains("did you mean nat::masquerade?"), "{}", r.stderr);
}

const INFO_RECIPE: &str = r#"//! A lab for the info snapshot.
//! Two lines of description.

// how many hosts
param hosts = 3;
param subnet = "10.0.0.0/24"; // the lab's subnet
param fast = true;
// not a literal: typed at run time
param names = ["a", "b"] + ["c"];

netns::add("never-run");
"#;

#[test]
fn info_shows_description_and_params_without_running() {
    let path = recipe("info-snap.rhai", INFO_RECIPE);
    let r = nslab(&["info", &path]);
    r.ok();
    snapshot("info-snap.txt", &r.stdout);
    let j = nslab(&["info", "--json", &path]);
    j.ok();
    let v = common::json(&j.stdout);
    assert_eq!(v["params"][0]["name"], "hosts");
    assert_eq!(v["params"][0]["type"], "int");
    assert_eq!(v["params"][1]["doc"], "the lab's subnet");
    assert_eq!(v["description"], "A lab for the info snapshot.\nTwo lines of description.");
}

#[test]
fn info_of_every_script() {
    for e in std::fs::read_dir(common::root().join("scripts")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rhai") {
            let rel = p.strip_prefix(common::root()).unwrap().display().to_string();
            let r = nslab(&["info", &rel]);
            r.ok();
            assert!(
                !r.stdout.contains("(no description"),
                "{rel} has no description:\n{}",
                r.stdout
            );
        }
    }
    let r = nslab(&["info", "scripts/tutorial.rhai"]);
    r.ok();
    snapshot("info-tutorial.txt", &r.stdout);
}

#[test]
fn defs_writes_definition_files() {
    let dir = common::root().join("target").join("test-defs");
    let _ = std::fs::remove_dir_all(&dir);
    let r = nslab(&["defs", dir.to_str().unwrap()]);
    r.ok();
    for f in
        ["__static__.d.rhai", "__builtin__.d.rhai", "netns.d.rhai", "link.d.rhai", "lab.d.rhai"]
    {
        assert!(dir.join(f).exists(), "{f} missing: {}", r.stdout);
    }
    let netns = std::fs::read_to_string(dir.join("netns.d.rhai")).unwrap();
    assert!(netns.starts_with("module netns;"), "{netns}");
    assert!(netns.contains("fn list() -> Array;"), "{netns}");
    assert!(netns.contains("/// Creates a named network namespace"), "{netns}");
}
