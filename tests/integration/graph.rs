//! `nslab graph`: the tutorial's topology in every format, checked by independent readers:
//! Graphviz's `dot` parses the DOT, python's XML parser the SVG, headless Chromium the HTML.

use crate::common::{kernel_tests_possible, nslab, root, sandboxed, snapshot};

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
    let d = dir.display();
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
    let html = format!("file://{d}/tutorial.html");
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
