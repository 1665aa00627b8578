//! The benchmark's workload stays runnable: `benches/lab.rhai` (and its walk-through-style
//! twin) builds lab(3) in a sandbox with the state the `ip` scripts of `benches/` build,
//! and `nslab destroy` leaves nothing. No timings are checked here: `bash benches/run.sh`
//! measures, CI does not.

use crate::common::{kernel_tests_possible, root, sandboxed};

/// What lab(3) must look like, checked with iproute2 (the same checks as
/// benches/lib/verify.sh), then destroyed.
const CHECK: &str = r#"
    test "$(ip -o -4 addr show dev br0 | grep -c ' 10.0.0.1/16 ')" = 1
    test "$(ip -o link show master br0 | grep -c 'state UP')" = 3
    for i in 1 2 3; do
        a="10.0.0.$((i + 2))"
        ip -n h$i -o -4 addr show dev v$i | grep -q "inet $a/16 "
        ip -n h$i -o link show dev v$i | grep -q ',UP'
        ip -n h$i -o link show dev lo | grep -q ',UP'
        ip -n h$i route show default | grep -q '^default via 10.0.0.1 dev v'$i
        ip -n h$i -d link show dev v$i | grep -q 'alias nslab:lab'
    done
    echo "BUILT"
    nslab destroy lab > /dev/null
    test -z "$(ip netns list | grep '^h')"
    test -z "$(ip -o link | grep -e ' br0' -e '-br@')"
    test ! -e /run/nslab/lab
    echo "DESTROYED"
"#;

#[test]
fn the_bench_recipe_builds_and_destroys_lab3() {
    if !kernel_tests_possible() {
        return;
    }
    for recipe in ["benches/lab.rhai", "benches/lab_move.rhai", "benches/lab_phased.rhai"] {
        let r =
            sandboxed(&format!("nslab run --lab lab {recipe} --set hosts=3 > /dev/null\n{CHECK}"));
        r.ok();
        assert!(
            r.stdout.contains("BUILT") && r.stdout.contains("DESTROYED"),
            "{recipe}:\n{}",
            r.stdout
        );
    }
}

/// `--no-ipv6`: no IPv6 address anywhere in the lab's namespaces nor on its links on the
/// host side, while IPv4 works as before; links nslab did not create keep IPv6.
#[test]
fn no_ipv6_turns_ipv6_off_in_the_lab_only() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(&format!(
        r#"
        nslab run --no-ipv6 --lab lab benches/lab.rhai --set hosts=3 > /dev/null
        for i in 1 2 3; do test -z "$(ip -n h$i -6 addr show)"; done
        test "$(cat /proc/sys/net/ipv6/conf/br0/disable_ipv6)" = 1
        test "$(cat /proc/sys/net/ipv6/conf/v1-br/disable_ipv6)" = 1
        test "$(cat /proc/sys/net/ipv6/conf/uplink/disable_ipv6)" = 0
        {CHECK}"#
    ));
    r.ok();
    assert!(r.stdout.contains("DESTROYED"), "{}", r.stdout);
}

/// Link names with a dot: their sysctl keys write the dot as `/` (sysctl(8)'s convention),
/// so `--no-ipv6` and `sysctl::set` reach the right file, and nothing leaks when they do.
#[test]
fn dotted_link_names_get_their_sysctls() {
    if !kernel_tests_possible() {
        return;
    }
    let path = crate::common::recipe(
        "dotted.rhai",
        "bridge::add(\"br.10\");\nsysctl::set(\"net.ipv4.conf.br/10.forwarding\", 1);\n\
         netns::add(\"x\");\nveth::add(\"v.1\", \"v.2\", \"x\");\n",
    );
    let r = sandboxed(&format!(
        r#"
        nslab run --no-ipv6 {path} > /dev/null
        cat /proc/sys/net/ipv6/conf/br.10/disable_ipv6 /proc/sys/net/ipv6/conf/v.1/disable_ipv6
        cat /proc/sys/net/ipv4/conf/br.10/forwarding
        nslab destroy dotted > /dev/null
        ip -o link | grep -c '\.' || true
        "#
    ));
    r.ok();
    assert_eq!(r.stdout, "1\n1\n1\n0\n");
}

/// The benchmark scripts at least parse (they only run as root, by hand).
#[test]
fn the_bench_scripts_parse() {
    let dir = root().join("benches");
    let mut scripts = vec![];
    for d in [dir.clone(), dir.join("lib")] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "sh") {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 6, "benches/*.sh missing: {scripts:?}");
    for s in scripts {
        let out = std::process::Command::new("bash").arg("-n").arg(&s).output().unwrap();
        assert!(out.status.success(), "{}: {}", s.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// Past one bridge: `lab::fabric` (benches/lab_fabric.rhai) spreads 5 hosts over 3 bridges
/// of at most 2 hosts joined by veth trunks, one subnet: the last host on the last bridge
/// answers the first host's ping, the state is what benches/lib/verify.sh wants (the same
/// check the `ip -batch` adapter's fabric passes), and destroy leaves nothing.
#[test]
fn the_fabric_spans_bridges_and_destroys_cleanly() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        nslab run --lab lab benches/lab_fabric.rhai --set hosts=5 --set per_bridge=2 > /dev/null
        test "$(ip -o link show master br0 | grep -c ': v[0-9]*-br@')" = 2
        test "$(ip -o link show master br2 | grep -c ': v[0-9]*-br@')" = 1
        ip -o link show master br0 | grep -q ': t2-a@'
        ip -n h5 -o -4 addr show dev v5 | grep -q 'inet 10.0.0.6/16 '
        ip netns exec h1 ping -c 1 -W 2 10.0.0.6 > /dev/null
        echo "BUILT"
        nslab destroy lab > /dev/null
        test -z "$(ip netns list | grep '^h')"
        test -z "$(ip -o link | grep -e ': br[0-9]' -e '-br@' -e ': t[0-9]')"
        echo "DESTROYED"
        "#,
    );
    r.ok();
    assert!(r.stdout.contains("BUILT") && r.stdout.contains("DESTROYED"), "{}", r.stdout);
}

/// `lab::fabric`'s options are checked: a bridge holds at most 1023 ports.
#[test]
fn the_fabric_refuses_a_bridge_too_big() {
    if !kernel_tests_possible() {
        return;
    }
    let path = crate::common::recipe(
        "fabric-big.rhai",
        "import \"lab\" as lab;\nlab::fabric(3, \"10.0.0.0/16\", #{per_bridge: 2000});\n",
    );
    let r = crate::common::nslab(&["run", "--sandbox", &path]);
    r.failed();
    assert!(
        r.stderr.contains("per_bridge must be 1..1000 (a bridge holds at most 1023 ports"),
        "{}",
        r.stderr
    );
}

/// A run sends a new link's owner tag with its next `up` or `master` (one request instead of
/// two): when the kernel refuses that change, the link still gets its tag, the error is
/// the change's own, and a query in between sees the tag already.
#[test]
fn a_refused_change_still_tags_the_new_link() {
    if !kernel_tests_possible() {
        return;
    }
    let path = crate::common::recipe(
        "tag-merge.rhai",
        "veth::add(\"ta\", \"tb\");\nlet l = link::list().filter(|l| l.name == \"tb\");\n\
         print(`alias ${l[0].alias}`);\nlink::set_master(\"ta\", \"tb\");\n",
    );
    let r = sandboxed(&format!(
        r#"
        T=$(mktemp -d)
        ! nslab run --keep-on-error --lab tm {path} > "$T/out" 2> "$T/err" || exit 1
        cat "$T/out"
        grep -o "tb is not a bridge" "$T/err" | head -1
        ip -d -o link show ta | grep -o 'alias nslab:tm'
        nslab destroy tm > /dev/null
        test -z "$(ip -o link | grep -e ': ta@' -e ': tb@')"
        "#
    ));
    r.ok();
    assert_eq!(r.stdout, "alias nslab:tm\ntb is not a bridge\nalias nslab:tm\n", "{}", r.stderr);
}

/// `benches/summarize.py` decides a target only when the whole 90% bootstrap interval does:
/// a ratio whose reps straddle the bound is WITHIN NOISE, not MET or MISSED on its median.
/// The reps are made up, so each verdict is known.
#[test]
fn the_summary_decides_a_target_only_outside_the_noise() {
    let rows = |tool: &str, n: u32, build: &[f64], td: &[f64], settle: f64| -> String {
        let mut s = String::new();
        for (i, (b, t)) in build.iter().zip(td).enumerate() {
            s += &format!(
                "RESULT rep={} tool={tool} n={n} build_ms={b} build_cpu_ms=10 teardown_ms={t} settle_ms={settle} ok=1\n",
                i + 1
            );
        }
        s
    };
    let steady = |x: f64| [x, x * 1.01, x * 0.99, x * 1.02, x * 0.98, x, x * 1.01];
    let spread = |x: f64| [x * 0.6, x * 0.8, x, x * 1.2, x * 1.4, x * 0.7, x * 1.3];
    let text = [
        // build: nslab 0.9x the floor at N=1000 and 200; its cost per host grows 2x.
        rows("nslab", 100, &steady(100.0), &steady(90.0), 0.0),
        rows("nslab", 200, &steady(180.0), &steady(100.0), 0.0),
        rows("nslab", 1000, &steady(2000.0), &steady(1000.0), 0.0),
        // teardown: at N=100 the floor's reps straddle nslab's; at N=1000 it is 2x faster.
        rows("floor", 100, &steady(100.0), &spread(60.0), 30.0),
        rows("floor", 200, &steady(200.0), &steady(100.0), 0.0),
        rows("floor", 1000, &steady(2222.0), &steady(500.0), 0.0),
    ]
    .concat();
    let dir = tempfile_dir("summary");
    let file = dir.join("run.txt");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new("python3")
        .arg(root().join("benches/summarize.py"))
        .arg(&file)
        .output()
        .expect("python3 runs benches/summarize.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let verdict = |what: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("- {what}:")))
            .unwrap_or_else(|| panic!("no line for {what} in:\n{stdout}"));
        line.rsplit(") ").next().unwrap().to_string()
    };
    assert_eq!(verdict("lab(1000) build nslab / C floor"), "MET");
    assert_eq!(verdict("lab(200) build nslab / C floor"), "MET");
    assert_eq!(verdict("nslab build ms/host N=1000 vs N=100"), "MISSED");
    assert_eq!(verdict("lab(100) teardown + settle nslab / C floor"), "WITHIN NOISE");
    assert_eq!(verdict("lab(1000) teardown + settle nslab / C floor"), "MISSED");
    assert!(stdout.contains("(90% interval "), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The nslab tools of `benches/` run nslab straight from the measuring shell, as the floor
/// is run: a bash in between cost every nslab build and teardown 1.9 ms the floor did not pay.
#[test]
fn the_bench_runs_nslab_without_a_wrapper_shell() {
    let script = format!(
        r#"source {root}/benches/lib/tools.sh
        printf '#!/bin/sh\necho "$*" > "$OUT"\n' > "$FAKE"; chmod +x "$FAKE"
        for t in nslab nslab-noipv6; do
            lab_tool_cmd "$t" {root}/benches
            f=${{REPLY%% *}}
            test "$(type -t "$f")" = function || {{ echo "$t: $f is no shell function"; exit 1; }}
            NSLAB=$FAKE $REPLY build 7
            echo "$t: $(cat "$OUT")"
        done
        LAB_TOOL_EXEC=1 lab_tool_cmd nslab-noipv6 {root}/benches
        echo "exec: ${{REPLY#env }}""#,
        root = root().display()
    );
    let dir = tempfile_dir("tools");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("OUT", dir.join("argv"))
        .env("FAKE", dir.join("nslab"))
        .output()
        .unwrap();
    let stdout =
        String::from_utf8_lossy(&out.stdout).replace(&root().display().to_string(), "ROOT");
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout,
        "nslab: run --lab lab ROOT/benches/lab.rhai --set hosts=7\n\
         nslab-noipv6: run --lab lab --no-ipv6 ROOT/benches/lab.rhai --set hosts=7\n\
         exec: NSLAB_RECIPE=ROOT/benches/lab.rhai NSLAB_ARGS=--no-ipv6 bash ROOT/benches/lab_nslab.sh\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir(what: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nslab-bench-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
