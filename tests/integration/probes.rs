//! Probes that measure and the servers they talk to, checked with real clients (`curl`, a
//! bash /dev/udp socket) and against what `nslab plan` answers.

use crate::common::{kernel_tests_possible, nslab, recipe, sandboxed};

/// `a` (10.0.0.1) and `b` (10.0.0.2) on one veth pair.
const PAIR: &str = r#"
netns::add("a"); netns::add("b");
veth::add("va", "vb", "b"); link::set_netns("va", "a");
addr::add("a", "va", "10.0.0.1/24"); addr::add("b", "vb", "10.0.0.2/24");
link::up("a", "va"); link::up("b", "vb");
"#;

#[test]
fn udp_http_and_throughput_probes_answer() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "probes-measure.rhai",
        &format!(
            "{PAIR}
probe::serve(\"b\", 53, #{{proto: \"udp\"}});
probe::serve(\"b\", 80, #{{http: true}});
probe::serve(\"b\", 5201);
let u = probe::udp(\"a\", \"10.0.0.2:53\");
assert(u.ok && u.seen == \"10.0.0.1\" && u.reply.contains(\"ns=b\"), `udp: ${{u}}`);
let closed = probe::udp(\"a\", \"10.0.0.2:54\", #{{timeout_ms: 1500}});
assert(!closed.ok && closed.error.contains(\"refused\"), `closed udp port: ${{closed}}`);
let t = probe::throughput(\"a\", \"10.0.0.2:5201\", #{{seconds: 0.5}});
assert(t.ok && t.bytes > 1000000 && t.mbit_s > 10.0 && t.seconds >= 0.5, `throughput: ${{t}}`);
let bad = probe::throughput(\"a\", \"10.0.0.2:80\", #{{seconds: 0.2}});
assert(!bad.ok && bad.error.contains(\"not a probe::serve\"), `http is no sink: ${{bad}}`);
let p = probe::ping(\"a\", \"10.0.0.2\", #{{count: 4, timeout_ms: 500}});
assert(p.loss_pct == 0.0 && p.rtt_min_ms <= p.rtt_avg_ms && p.rtt_avg_ms <= p.rtt_max_ms, `ping: ${{p}}`);
assert(p.rtt_mdev_ms >= 0.0, `mdev: ${{p}}`);
let lost = probe::ping(\"a\", \"10.0.0.9\", #{{count: 2, timeout_ms: 300}});
assert(lost.loss_pct == 100.0 && lost.rtt_avg_ms == (), `lost: ${{lost}}`);
// Independent eyes, while the servers run (they end with nslab): curl against the HTTP
// server, bash's /dev/udp against the UDP one.
print(\"#\");
print(netns::exec(\"a\", \"curl -s -m 5 -D - http://10.0.0.2/some/path\").stdout);
print(\"#\");
print(netns::exec(\"a\", [\"bash\", \"-c\", \"exec 3<>/dev/udp/10.0.0.2/53; echo hi >&3; timeout 2 dd bs=2048 count=1 status=none <&3\"]).stdout);
print(\"#\");
print(netns::exec(\"a\", \"curl -s -m 5 -I http://10.0.0.2/\").stdout);
print(\"PROBES OK\");
"
        ),
    );
    let r = sandboxed(&format!("nslab run --lab p {path}"));
    r.ok();
    assert!(r.stdout.contains("PROBES OK"), "{}\n{}", r.stdout, r.stderr);
    let parts: Vec<&str> = r.stdout.split("#\n").skip(1).collect();
    let http = parts[0];
    assert!(http.contains("HTTP/1.0 200 OK"), "{http}");
    assert!(http.contains("nslab-serve ns=b seen=10.0.0.1:"), "{http}");
    assert!(parts[1].starts_with("nslab-serve ns=b seen=10.0.0.1:"), "{}", parts[1]);
    assert!(parts[1].contains("local=10.0.0.2:53"), "{}", parts[1]);
    assert!(parts[2].starts_with("HTTP/1.0 200 OK"), "HEAD: {}", parts[2]);
}

/// Every probe takes `(target, opts)` without a netns: here from the sandbox's root to the
/// simulated internet.
#[test]
fn probes_run_from_where_nslab_runs() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "probes-here.rhai",
        r#"
probe::serve("internet", 7000);
probe::serve("internet", 7001, #{proto: "udp"});
let i = sandbox::internet();
assert(probe::ping(i, #{count: 2}).received == 2, "ping");
assert(probe::tcp(`${i}:7000`, #{timeout_ms: 1000}).seen == "203.0.113.2", "tcp");
assert(probe::udp(`${i}:7001`).seen == "203.0.113.2", "udp");
assert(probe::udp(`${i}:7001`, #{payload: "x"}).ok, "udp with options");
assert(probe::throughput(`${i}:7000`, #{seconds: 0.3}).ok, "throughput");
probe::serve(7002, #{http: true});
let twice = false;
try { probe::serve("internet", 7001, #{proto: "udp"}); } catch (e) { twice = `${e}`.contains("udp port 7001 is already in use"); }
assert(twice, "a second UDP server on one port must be refused");
let r = host::exec("curl -s -m 3 http://127.0.0.1:7002/");
assert(r.status == 0 && r.stdout.contains("seen=127.0.0.1"), `host::exec curl: ${r}`);
print("HERE OK");
"#,
    );
    let r = nslab(&["run", "--sandbox", &path]);
    r.ok();
    assert!(r.stdout.contains("HERE OK"), "{}", r.stdout);
}

/// The plan answers what it can know and `()` for what it cannot: never a made-up number.
#[test]
fn the_plan_answers_probes_soundly() {
    let path = recipe(
        "probes-plan.rhai",
        &format!(
            "{PAIR}
probe::serve(\"b\", 53, #{{proto: \"udp\"}});
probe::serve(\"b\", 5201);
let u = probe::udp(\"a\", \"10.0.0.2:53\");
print(`udp ${{type_of(u)}} ${{u.seen}}`);
let c = probe::udp(\"a\", \"10.0.0.2:54\");
print(`closed ${{c.ok}} ${{c.error}}`);
print(`throughput ${{type_of(probe::throughput(\"a\", \"10.0.0.2:5201\"))}}`);
let p = probe::ping(\"a\", \"10.0.0.2\", #{{count: 3}});
print(`ping ${{p.loss_pct}} ${{type_of(p.rtt_avg_ms)}}`);
"
        ),
    );
    let r = nslab(&["plan", &path]);
    r.ok();
    for want in [
        "# udp map 10.0.0.1",
        // Nobody serves that port in a lab netns: the kernel refuses, and so does the plan.
        "# closed false connection refused (port unreachable)",
        "# throughput ()",
        "# ping 0.0 ()",
        "iperf3 -c 10.0.0.2 -p 5201",
    ] {
        assert!(r.stdout.contains(want), "plan lacks {want:?}:\n{}", r.stdout);
    }
}

#[test]
fn bad_probe_options_are_refused() {
    if !kernel_tests_possible() {
        return;
    }
    for (text, want) in [
        (
            "probe::throughput(\"10.0.0.1:1\", #{seconds: 0});",
            "option `seconds` must be a number of seconds from 0.1 to 60",
        ),
        ("probe::throughput(\"10.0.0.1:1\", #{secs: 1});", "unknown option `secs`"),
        ("probe::serve(80, #{proto: \"udp\", http: true});", "HTTP runs over TCP"),
        ("probe::serve(80, #{proto: \"sctp\"});", "unknown protocol \"sctp\""),
        (
            "probe::udp(\"10.0.0.1:1\", #{payload: \"\"});",
            "option `payload` must be a string of 1 to 1400 bytes",
        ),
    ] {
        let path = recipe("probe-bad.rhai", &format!("{text}\n"));
        let r = nslab(&["run", "--sandbox", &path]);
        r.failed();
        assert!(r.stderr.contains(want), "{text}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("{path}:1:")), "{}", r.stderr);
    }
}

/// A ping across a lossy cable (netem loss), or one whose delays may outlast ping's wait, is
/// a matter of chance: the plan answers `()`, not "every echo came back" (issue 14's "never a
/// confident wrong answer"). Without impairment it answers as before.
#[test]
fn the_plan_does_not_guess_a_ping_across_an_impaired_cable() {
    let path = crate::common::recipe(
        "probes-lossy.rhai",
        r#"netns::add("a");
netns::add("b");
veth::add("a", "eth0", "b", "eth0");
addr::add("a", "eth0", "10.9.9.1/24");
addr::add("b", "eth0", "10.9.9.2/24");
link::up("a", "eth0");
link::up("b", "eth0");
print(`CLEAN ${type_of(probe::ping("a", "10.9.9.2"))}`);
tc::netem("b", "eth0", #{loss_pct: 1});
print(`LOSSY ${type_of(probe::ping("a", "10.9.9.2"))}`);
tc::netem("b", "eth0", #{delay_ms: 600});
print(`SLOW ${type_of(probe::ping("a", "10.9.9.2", #{count: 1, timeout_ms: 1000}))}`);
print(`PATIENT ${type_of(probe::ping("a", "10.9.9.2", #{count: 1, timeout_ms: 3000}))}`);
"#,
    );
    let plan = nslab(&["plan", &path]);
    plan.ok();
    for want in ["# CLEAN map", "# LOSSY ()", "# SLOW ()", "# PATIENT map"] {
        assert!(plan.stdout.contains(want), "{want}:\n{}", plan.stdout);
    }
}
