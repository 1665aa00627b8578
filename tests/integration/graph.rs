//! `nslab graph`: the tutorial's topology in every format, checked by independent readers:
//! Graphviz's `dot` parses the DOT, python's XML parser the SVG, headless Chromium the HTML.

use crate::common::{kernel_tests_possible, nslab, root, sandboxed, shq, snapshot};

/// Every netns, bridge and veth of the tutorial lab (in a sandbox).
const NAMES: [&str; 11] = [
    "netns red",
    "netns green",
    "netns blue",
    "linux-bridge",
    "veth-red",
    "veth-red-br",
    "veth-green",
    "veth-green-br",
    "veth-blue",
    "veth-blue-br",
    "uplink",
];

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|b| {
        std::process::Command::new("which").arg(b).output().is_ok_and(|o| o.status.success())
    })
}

#[test]
fn the_tutorial_graph_in_every_format() {
    if !kernel_tests_possible() {
        return;
    }
    let dir = root().join("target").join("test-graph");
    std::fs::create_dir_all(&dir).unwrap();
    let d = shq(&dir);
    let r = sandboxed(&format!(
        r#"
        nslab run scripts/tutorial.rhai > /dev/null
        nslab graph tutorial --format dot -o {d}/tutorial.dot
        dot -Tsvg {d}/tutorial.dot > /dev/null && echo "DOT PARSED"
        nslab graph tutorial --format svg > {d}/tutorial.svg
        nslab graph tutorial -o {d}/tutorial.html
        nslab graph tutorial --format mermaid > {d}/tutorial.mmd
        nslab graph -o {d}/all.svg
        python3 -c '
import sys, xml.etree.ElementTree as ET
for f in sys.argv[1:]:
    t = ET.parse(f)
    assert t.getroot().tag == "{{http://www.w3.org/2000/svg}}svg", f
    print("SVG TEXT", f.rsplit("/", 1)[1], "|".join(x.text or "" for x in t.iter("{{http://www.w3.org/2000/svg}}text")))
' {d}/tutorial.svg {d}/all.svg
        "#
    ));
    r.ok();
    assert!(r.stdout.contains("DOT PARSED"), "{}\n{}", r.stdout, r.stderr);
    let texts = |file: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("SVG TEXT {file} ")))
            .unwrap_or_else(|| panic!("{file} not parsed:\n{}", r.stdout))
            .to_string()
    };
    let lab = texts("tutorial.svg");
    for name in NAMES {
        assert!(lab.contains(name), "{name} missing from the SVG: {lab}");
    }
    assert!(lab.contains("MASQUERADE 192.168.24.0/24"), "{lab}");
    assert!(lab.contains("DNAT tcp :8080 → 192.168.24.10:80"), "{lab}");
    assert!(texts("all.svg").contains("netns internet"));
    let dot = std::fs::read_to_string(dir.join("tutorial.dot")).unwrap();
    assert!(dot.contains("subgraph cluster_") && dot.contains("veth-red-br"), "{dot}");
    let mmd = std::fs::read_to_string(dir.join("tutorial.mmd")).unwrap();
    snapshot("graph-tutorial.mmd", &mmd);

    // The HTML opens in a browser and shows the names (DOM and a screenshot).
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs chromium (apt-get install chromium)");
        eprintln!("NOT RUN HERE: no chromium for the HTML check (apt-get install chromium)");
        return;
    };
    let html = format!("file://{}", dir.join("tutorial.html").display());
    let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"];
    let dom = std::process::Command::new(browser)
        .args(flags)
        .args(["--dump-dom", &html])
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for name in NAMES {
        assert!(dom.contains(name), "{name} missing from the page Chromium loaded:\n{dom}");
    }
    let shot = dir.join("tutorial.png");
    let _ = std::fs::remove_file(&shot);
    let s = std::process::Command::new(browser)
        .args(flags)
        .args([&format!("--screenshot={}", shot.display()), "--window-size=1400,1000", &html])
        .output()
        .expect("chromium runs");
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&s.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "an empty screenshot");
}

#[test]
fn graph_refuses_a_bad_lab_name_and_unknown_format() {
    let r = nslab(&["graph", "../etc"]);
    r.failed();
    let r = nslab(&["graph", "--format", "png"]);
    r.failed();
    assert!(r.stderr.contains("mermaid"), "{}", r.stderr);
}

/// `nslab plan RECIPE --graph` draws, without touching anything, the same picture as `nslab
/// graph` of the lab the run builds (both in a sandbox, so the uplink and `internet` are
/// there on both sides).
#[test]
fn the_plan_graph_is_the_live_graph() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        nslab plan scripts/tutorial.rhai --graph > $T/plan.mmd
        nslab plan scripts/tutorial.rhai --graph --format dot | dot -Tsvg > /dev/null && echo "PLAN DOT PARSED"
        nslab run scripts/tutorial.rhai > /dev/null
        nslab graph > $T/live.mmd
        diff $T/plan.mmd $T/live.mmd && echo SAME
        "#,
    );
    r.ok();
    assert!(r.stdout.contains("PLAN DOT PARSED") && r.stdout.contains("SAME"), "{}", r.stdout);
}

/// The plan's graph needs no root and no sandbox: NAT rules point at a stand-in uplink.
#[test]
fn plan_graph_needs_nothing() {
    let r = nslab(&["plan", "scripts/tutorial.rhai", "--graph", "--format", "mermaid"]);
    r.ok();
    assert!(r.stdout.contains("subgraph s3[\"netns red (lab tutorial)\"]"), "{}", r.stdout);
    assert!(r.stdout.contains("[\"(default route)<br/>uplink up\"]"), "{}", r.stdout);
    assert!(r.stdout.contains("-- \"MASQUERADE 192.168.24.0/24\" -->"), "{}", r.stdout);
    let r = nslab(&["plan", "scripts/tutorial.rhai", "--format", "svg"]);
    r.failed();
}

/// Completion scripts parse in their shell, and `destroy`/`show`/`graph` complete the labs
/// that are up.
#[test]
fn completions_parse_and_complete_lab_names() {
    if !kernel_tests_possible() {
        return;
    }
    for sh in ["bash", "zsh", "fish"] {
        let r = nslab(&["completions", sh]);
        r.ok();
        assert!(r.stdout.contains("completions --labs"), "{sh}");
    }
    let r = sandboxed(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        nslab completions bash > $T/c.bash
        bash -n $T/c.bash && echo "BASH PARSES"
        nslab run scripts/tutorial.rhai > /dev/null
        source $T/c.bash
        for cmd in destroy show graph; do
            COMP_WORDS=(nslab $cmd tu); COMP_CWORD=2; COMPREPLY=()
            _nslab_with_labs
            echo "$cmd -> ${COMPREPLY[*]}"
        done
        COMP_WORDS=(nslab ca); COMP_CWORD=1; COMP_LINE="nslab ca"; COMP_POINT=8; COMPREPLY=()
        _nslab_with_labs nslab ca nslab
        echo "subcommands -> ${COMPREPLY[*]}"
        "#,
    );
    r.ok();
    let o = &r.stdout;
    assert!(o.contains("BASH PARSES"), "{o}");
    for cmd in ["destroy", "show", "graph"] {
        assert!(o.contains(&format!("{cmd} -> tutorial\n")), "{o}");
    }
    assert!(o.contains("subcommands -> capture"), "{o}");
}

/// The REPL's `:graph` draws the lab being built, and writes a file when asked.
#[test]
fn repl_graph_draws_the_lab_being_built() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        printf 'netns::add("x");\nbridge::add("br9");\n:graph\n:graph svg %s/g.svg\n:quit\n' "$T" | nslab repl --lab rg
        grep -c 'data-name="br9"' $T/g.svg
        "#,
    );
    r.ok();
    assert!(r.stdout.contains("subgraph s1[\"netns x (lab rg)\"]"), "{}", r.stdout);
    assert!(r.stdout.contains("n0_0[[\"br9<br/>bridge down #91;nslab:rg#93;\"]]"), "{}", r.stdout);
    assert!(r.stdout.contains("wrote ") && r.stdout.trim_end().ends_with('1'), "{}", r.stdout);
}
