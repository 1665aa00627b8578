//! The script language around the network functions: imports, caught errors, params.

use crate::common::{self, kernel_tests_possible, nslab, recipe, snapshot};

/// Runs `path` in a sandbox; it must fail without a panic or a crash, and roll back.
fn fails_and_rolls_back(path: &str) -> String {
    let r = nslab(&["run", "--sandbox", path]);
    r.failed();
    assert_eq!(r.status, 1, "a diagnostic, not a crash:\n{}", r.stderr);
    assert!(r.stderr.contains("nothing is left behind"), "{}", r.stderr);
    r.stderr.clone()
}

#[test]
fn a_cyclic_import_is_a_diagnostic_and_rolls_back() {
    if !kernel_tests_possible() {
        return;
    }
    recipe("cyc1.rhai", "import \"cyc2\" as c;\n");
    recipe("cyc2.rhai", "import \"cyc1\" as c;\n");
    let path = recipe(
        "imp-cycle.rhai",
        "netns::add(\"leak\");\nbridge::add(\"leakbr\");\nimport \"cyc2\" as c;\n",
    );
    let err = fails_and_rolls_back(&path);
    assert!(err.contains("import cycle: target/test-recipes/cyc2.rhai → target/"), "{err}");
    assert!(err.contains("rolled back 2 operations"), "{err}");
    snapshot("script-import-cycle.txt", &err);

    // A module importing itself, and one imported twice (no cycle: loaded once).
    recipe("self-imp.rhai", "import \"self-imp\" as me;\n");
    let path = recipe("imp-self.rhai", "netns::add(\"a\");\nimport \"self-imp\" as s;\n");
    let err = fails_and_rolls_back(&path);
    assert!(err.contains("import cycle:"), "{err}");
    recipe("twice-leaf.rhai", "fn f() { 1 }\n");
    recipe("twice-mid.rhai", "import \"twice-leaf\" as l;\nfn g() { l::f() }\n");
    let path = recipe(
        "imp-twice.rhai",
        "import \"twice-leaf\" as l;\nimport \"twice-mid\" as m;\nassert(l::f() + m::g() == 2);\n",
    );
    nslab(&["run", "--sandbox", &path]).ok();
}

#[test]
fn errors_inside_an_imported_file_point_into_it() {
    if !kernel_tests_possible() {
        return;
    }
    std::fs::create_dir_all(common::root().join("target/test-recipes/lib")).unwrap();
    recipe(
        "lib/helper.rhai",
        "fn mk(name) {\n    bridge::add(name);\n    bridge::add(name, \"this-name-is-too-long\");\n}\n",
    );
    let path = recipe(
        "imp-helper.rhai",
        "import \"lib/helper\" as h;\nnetns::add(\"x\");\nh::mk(\"x\");\n",
    );
    let err = fails_and_rolls_back(&path);
    assert!(err.contains("[target/test-recipes/lib/helper.rhai:3:5]"), "{err}");
    snapshot("script-import-error.txt", &err);

    recipe("lib/broken.rhai", "fn mk(name) {\n  let x = [1, 2;\n}\n");
    let path = recipe("imp-broken.rhai", "netns::add(\"x\");\nimport \"lib/broken\" as h;\n");
    let err = fails_and_rolls_back(&path);
    assert!(err.contains("[target/test-recipes/lib/broken.rhai:2:15]"), "{err}");
    snapshot("script-import-syntax.txt", &err);
}

#[test]
fn caught_errors_are_readable() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "catch.rhai",
        r#"try { netns::add("red"); netns::add("red"); } catch (e) {
    print(`caught: ${e}`);
    print(type_of(e));
    print(e.message);
    print(e.help);
    print(e.errno);
}
try { assert(false, "nope"); } catch (e) { print(`caught: ${e}`); print(type_of(e.help)); }
try { throw "plain"; } catch (e) { print(`caught: ${e}`); }
netns::add("red");
"#,
    );
    let r = nslab(&["run", "--sandbox", &path]);
    r.failed();
    let expected = "caught: netns red already exists\nerror\nnetns red already exists\npick another name, or remove the old one (`nslab destroy LAB` if a lab made it, `ip netns del red` if not)\n17\ncaught: assertion failed: nope\n()\ncaught: plain\n";
    assert_eq!(r.stdout, expected, "{}", r.stderr);
    // Uncaught, the same error is the usual diagnostic.
    assert!(r.stderr.contains("× netns red already exists"), "{}", r.stderr);
    assert!(r.stderr.contains("help: pick another name"), "{}", r.stderr);
}

#[test]
fn thrown_values_are_labelled_as_thrown() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("thrown.rhai", "netns::add(\"a\");\nthrow \"boom\";\n");
    let err = fails_and_rolls_back(&path);
    assert!(err.contains("╰── thrown here"), "{err}");
}

#[test]
fn array_params_are_checked_item_by_item() {
    let text = "param ports = [1, 2];\nparam hosts = [\"a\", \"b\"];\nparam mixed = [1, \"a\"];\n";
    let path = recipe("param-arrays.rhai", text);
    for (set, wanted) in [
        ("ports=[1,\"x\"]", "expected an array of integers, like the default (\"x\" is not one)"),
        ("ports=1,x", "expected an array of integers, like the default (\"x\" is not one)"),
        ("hosts=[1,2]", "expected an array of strings, like the default (1 is not one)"),
    ] {
        let r = nslab(&["plan", &path, "--set", set]);
        r.failed();
        assert!(r.stderr.contains(wanted), "--set {set}:\n{}", r.stderr);
    }
    let r = nslab(&["plan", &path, "--set", "ports=x"]);
    r.failed();
    assert!(r.stderr.contains("param ports defaults to [1, 2]"), "{}", r.stderr);
    for set in ["ports=3,4", "ports=[5]", "hosts=x,y", "hosts=[\"z\"]", "mixed=[2, true]", "ports="]
    {
        nslab(&["plan", &path, "--set", set]).ok();
    }
}

#[test]
fn multi_line_defaults_show_whole_and_params_are_declared_once() {
    let text = "//! Params.\n\n// the hosts\nparam hosts = [\n    \"a\", // first\n    \"b\",\n];\nparam n = 1;\n";
    let path = recipe("param-multiline.rhai", text);
    let r = nslab(&["info", &path]);
    r.ok();
    assert!(r.stdout.contains("hosts  array  = [\"a\", \"b\"]\n"), "{}", r.stdout);
    let j = nslab(&["info", "--json", &path]);
    j.ok();
    assert_eq!(common::json(&j.stdout)["params"][0]["default"], "[\"a\", \"b\"]");

    let path = recipe("param-twice.rhai", "param n = 1;\nnetns::add(\"x\");\nparam n = 2;\n");
    for cmd in ["info", "plan"] {
        let r = nslab(&[cmd, &path]);
        r.failed();
        assert!(r.stderr.contains("param `n` is declared twice"), "{}", r.stderr);
        assert!(r.stderr.contains(&format!("[{path}:3:1]")), "{}", r.stderr);
    }
    snapshot("script-param-twice.txt", &nslab(&["info", &path]).stderr);
}

#[test]
fn a_signal_kills_a_running_exec_and_rolls_back() {
    if !kernel_tests_possible() {
        return;
    }
    // Relative to the project root, where nslab and its commands run (the root's path may
    // hold spaces).
    let pidrel = "target/test-recipes/exec-child.pid";
    let pidfile = common::root().join(pidrel);
    let _ = std::fs::remove_file(&pidfile);
    let path = recipe(
        "exec-signal.rhai",
        &format!(
            "netns::add(\"a\");\nnetns::exec(\"a\", [\"sh\", \"-c\", \"echo $$ > {}; sleep 30; true\"]);\nnetns::add(\"b\");\n",
            pidrel
        ),
    );
    for sig in ["INT", "TERM"] {
        let r = common::sandboxed(&format!(
            r#"
            rm -f {pid}
            nslab run {path} 2> err &
            nslab=$!
            for i in $(seq 250); do [ -s {pid} ] && break; sleep 0.02; done
            [ -s {pid} ] || {{ echo "the command never started"; exit 1; }}
            start=$(date +%s%N)
            kill -{sig} $nslab
            if wait $nslab; then echo "exit 0 after SIG{sig}"; exit 1; fi
            echo "took $(( ($(date +%s%N) - start) / 1000000 )) ms"
            if kill -0 $(cat {pid}) 2>/dev/null; then echo "the child survived"; exit 1; fi
            ip netns list
            cat err
            rm -f err
            "#,
            pid = pidrel
        ));
        r.ok();
        let ms: u64 = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("took ")?.strip_suffix(" ms")?.parse().ok())
            .unwrap_or_else(|| panic!("{}", r.stdout));
        assert!(ms < 5000, "SIG{sig} took {ms} ms to stop the run:\n{}", r.stdout);
        assert!(r.stdout.contains("interrupted while sh ran in netns a"), "{}", r.stdout);
        // The diagnostic points at the exec call, not the statement after it.
        assert!(r.stdout.contains(&format!("[{path}:2:1]")), "{}", r.stdout);
        assert!(r.stdout.contains("rolled back 1 operation"), "{}", r.stdout);
        assert!(!r.stdout.lines().any(|l| l == "a" || l.starts_with("a ")), "{}", r.stdout);
    }
}

/// Ctrl-C during a long ping stops it within a moment, at the ping's line.
#[test]
fn a_signal_stops_a_long_ping() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "ping-signal.rhai",
        "netns::add(\"a\");\nprint(\"pinging\");\nprobe::ping(\"a\", \"10.9.9.9\", #{count: 30});\n",
    );
    let r = common::sandboxed(&format!(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        nslab run {path} > $T/out 2> $T/err &
        nslab=$!
        for i in $(seq 250); do grep -q pinging $T/out && break; sleep 0.02; done
        sleep 0.3
        start=$(date +%s%N)
        kill -INT $nslab
        if wait $nslab; then echo "exit 0 after SIGINT"; exit 1; fi
        echo "took $(( ($(date +%s%N) - start) / 1000000 )) ms"
        cat $T/err
        "#
    ));
    r.ok();
    let ms: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("took ")?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(ms < 2000, "SIGINT took {ms} ms to stop the ping:\n{}", r.stdout);
    assert!(r.stdout.contains("interrupted while pinging 10.9.9.9 from netns a"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("[{path}:3:1]")), "{}", r.stdout);
}

/// What `netns::exec` leaves running in the background stops with the lab: at a rollback,
/// and at a later destroy.
#[test]
fn background_processes_stop_with_the_lab() {
    if !kernel_tests_possible() {
        return;
    }
    let pidrel = "target/test-recipes/bg.pid";
    let recipe_text = |fail: bool| {
        format!(
            "netns::add(\"bgx\");\nbridge::add(\"bgx\", \"br-lab\");\n\
             netns::exec(\"bgx\", [\"sh\", \"-c\", \"sleep 31 > /dev/null 2>&1 & echo $! > {}\"]);\n{}",
            pidrel,
            if fail { "assert(false, \"boom\");\n" } else { "" }
        )
    };
    let failing = recipe("bg-fail.rhai", &recipe_text(true));
    let good = recipe("bg-good.rhai", &recipe_text(false));
    let r = common::sandboxed(&format!(
        r#"
        # A killed process stays a zombie until its new parent (init) reaps it.
        alive() {{ p=$(cat {pid}); grep -qv ') Z' /proc/$p/stat 2>/dev/null && echo alive || echo gone; }}
        nslab run {failing} > /dev/null 2>&1 || true; echo "after rollback: $(alive)"
        nslab run {good} > /dev/null; echo "while up: $(alive)"
        nslab destroy bg-good > /dev/null; echo "after destroy: $(alive)"
        "#,
        pid = pidrel
    ));
    r.ok();
    assert_eq!(r.stdout, "after rollback: gone\nwhile up: alive\nafter destroy: gone\n");
    // A run that made nothing but left a process running in a netns it does not own stays
    // up, so destroy can stop it; a sandbox stops it when it ends.
    let only = recipe(
        "bg-only.rhai",
        &format!(
            "netns::exec(\"internet\", [\"sh\", \"-c\", \"sleep 32 > /dev/null 2>&1 & echo $! > {}\"]);\n",
            pidrel
        ),
    );
    let r = common::sandboxed(&format!(
        r#"
        alive() {{ p=$(cat {pid}); grep -qv ') Z' /proc/$p/stat 2>/dev/null && echo alive || echo gone; }}
        nslab run {only} > /dev/null; echo "$(nslab ls | tail -1 | cut -d' ' -f1) $(alive)"
        nslab destroy bg-only > /dev/null; echo "after destroy: $(alive)"
        nslab run --sandbox {only} > /dev/null; echo "after a sandbox: $(alive)"
        "#,
        pid = pidrel
    ));
    r.ok();
    assert_eq!(r.stdout, "bg-only alive\nafter destroy: gone\nafter a sandbox: gone\n");
}

#[test]
fn exec_timeout_kills_the_command() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "exec-timeout.rhai",
        r#"netns::add("a");
try { netns::exec("a", "sleep 20", #{timeout_ms: 200}); } catch (e) { print(`${e.errno} ${e}`); }
let r = netns::exec("a", ["sh", "-c", "echo hi"], #{timeout_ms: 5000});
print(r.stdout);
// Something left running in the background keeps the output open: the command's answer
// comes all the same, and the timeout does not fire on it.
let t = timestamp();
let r = netns::exec("a", ["sh", "-c", "sleep 2 & echo started"], #{timeout_ms: 200});
let out = r.stdout;
out.trim();
print(`${r.status} ${out} ${t.elapsed < 3.0}`);
netns::exec("a", "sleep 1", #{timeout: 5});
"#,
    );
    let start = std::time::Instant::now();
    let r = nslab(&["run", "--sandbox", &path]);
    r.failed();
    assert!(start.elapsed().as_secs() < 10, "the timeout did not stop sleep 20");
    assert_eq!(
        r.stdout, "110 sleep in netns a did not finish within 200 ms\nhi\n\n0 started true\n",
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown option `timeout`"), "{}", r.stderr);
}

#[test]
fn a_link_inside_a_netns_can_leave_its_bridge() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "nomaster-ns.rhai",
        "netns::add(\"r\");\nbridge::add(\"r\", \"br\");\nveth::add(\"x0\", \"x1\", \"r\");\nlink::set_master(\"r\", \"x1\", \"br\");\nassert(link::list(\"r\").filter(|l| l.name == \"x1\")[0].master == \"br\");\nlink::set_master(\"r\", \"x1\", ());\n",
    );
    let r = common::sandboxed(&format!(
        "nslab run {path}\nip -n r -j link show x1\nnslab plan {path} | grep nomaster"
    ));
    r.ok();
    let json_line = r.stdout.lines().find(|l| l.starts_with('[')).expect("ip -j output");
    let link = &common::json(json_line)[0];
    assert_eq!(link["ifname"], "x1");
    assert!(link.get("master").is_none(), "x1 still has a master: {link}");
    assert!(r.stdout.contains("ip -n r link set x1 nomaster"), "{}", r.stdout);
}

#[test]
fn unknown_function_signatures_keep_their_parentheses() {
    let path = recipe("sig-unit.rhai", "netns::add(());\n");
    let r = nslab(&["plan", &path]);
    r.failed();
    assert!(r.stderr.contains("unknown function netns::add(())\n"), "{}", r.stderr);
    let path = recipe("sig-three.rhai", "link::set_master(\"r\", \"x1\", 5);\n");
    let r = nslab(&["plan", &path]);
    r.failed();
    assert!(
        r.stderr.contains("unknown function link::set_master(string, string, int)\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_ipv6_target_without_brackets_gets_bracketed_advice() {
    let path = recipe("tcp-v6.rhai", "netns::add(\"a\");\nprobe::tcp(\"a\", \"fd00::2:80\");\n");
    let r = nslab(&["plan", &path]);
    r.failed();
    assert!(r.stderr.contains("target \"fd00::2:80\" has no port"), "{}", r.stderr);
    assert!(r.stderr.contains("\"[fd00::2]:80\""), "{}", r.stderr);
    assert!(!r.stderr.contains("fd00::2:80:80"), "{}", r.stderr);
}

#[test]
fn a_mistyped_module_gets_the_closest_one() {
    for (text, message, help) in [
        ("let x = 1;\nnets::add(\"a\");\n", "no script module `nets`", "did you mean netns::add?"),
        ("lnk::up(\"a\");\n", "no script module `lnk`", "did you mean link::up?"),
        (
            "lab::attach(\"a\");\n",
            "module `lab` is not imported",
            "add `import \"lab\" as lab;` first",
        ),
    ] {
        let path = recipe("typo-module.rhai", text);
        let r = nslab(&["plan", &path]);
        r.failed();
        assert!(r.stderr.contains(message) && r.stderr.contains(help), "{text}:\n{}", r.stderr);
    }
    // A real import of a missing file keeps its own message.
    let path = recipe("missing-import.rhai", "import \"lib/nope\" as x;\n");
    let r = nslab(&["plan", &path]);
    r.failed();
    assert!(r.stderr.contains("no module \"lib/nope\" to import"), "{}", r.stderr);
}
