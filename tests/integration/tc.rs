//! `tc::` and impaired cables, in sandboxes, checked with `tc -j qdisc show`, pings and an
//! `iperf3` run over the shaped cable. netem is tested where the kernel has sch_netem (the
//! second kernel, DESIGN §7).

use crate::common::{json, kernel_has, kernel_tests_possible, nslab, recipe, sandboxed, snapshot};

/// The root qdisc of `dev` as `tc -j` reports it, from a `tc -j qdisc show dev DEV` line. A
/// link that is down and has none shows `[]`: the kernel's default, attached when it comes up.
fn root(line: &str) -> serde_json::Value {
    let all = json(line);
    all.as_array()
        .unwrap()
        .iter()
        .find(|q| q["root"] == true)
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"kind": "noqueue"}))
}

/// impaired-link.rhai: both ends of the far cable are tbf 8mbit (what `tc` sees), and
/// iperf3 across it measures about 8 Mbit/s; the qdiscs go with the lab.
#[test]
fn rate_is_a_tbf_that_tc_sees_and_iperf3_measures() {
    if !kernel_tests_possible() || !kernel_has("tbf") {
        return;
    }
    let r = sandboxed(
        r#"
        nslab run --lab slow scripts/impaired-link.rhai > /dev/null
        tc -j qdisc show dev v-far
        tc -n far -j qdisc show dev eth0
        tc -j qdisc show dev v-near
        ip netns exec far iperf3 -s -1 -B 10.50.0.20 > /dev/null 2>&1 &
        for i in $(seq 50); do ip netns exec far ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
        ip netns exec near iperf3 -c 10.50.0.20 -t 3 -J | grep -m1 -A8 '"sum_received"' | grep bits_per_second
        wait
        nslab destroy slow > /dev/null
        ip link show v-far 2>/dev/null || echo gone
        "#,
    );
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    for line in &lines[..2] {
        let q = root(line);
        assert_eq!(q["kind"], "tbf", "{line}");
        assert_eq!(q["options"]["rate"], 1_000_000, "8mbit is 10^6 bytes/s: {line}");
        assert_eq!(q["options"]["burst"], 16384, "{line}");
        assert_eq!(q["options"]["lat"], 50000, "{line}");
    }
    assert_eq!(root(lines[2])["kind"], "noqueue");
    let bps: f64 =
        lines[3].split(':').nth(1).unwrap().trim().trim_end_matches(',').parse().unwrap();
    println!("iperf3 over tc::rate 8mbit: {:.2} Mbit/s", bps / 1e6);
    assert!((6e6..=8.5e6).contains(&bps), "iperf3 measured {bps} bit/s over an 8mbit tbf");
    assert_eq!(lines[4], "gone");
}

/// On a link the lab did not make, the qdisc that was there comes back at destroy: the
/// kernel's default, or a tbf someone set by hand. A qdisc nslab could not rebuild (htb) is
/// refused before anything changes.
#[test]
fn foreign_links_get_their_qdisc_back() {
    if !kernel_tests_possible() || !kernel_has("tbf") {
        return;
    }
    let path = recipe(
        "tc-foreign.rhai",
        r#"
tc::rate("uplink", "8mbit");
tc::rate("uplink", "4mbit", #{burst: 20000, latency_ms: 20});
tc::rate("own", "2mbit");
tc::clear("own2");
let q = tc::list().filter(|q| q.dev == "uplink")[0];
assert(q.kind == "tbf" && q.rate == "4mbit" && q.burst == 20000, `${q}`);
try {
    tc::rate("foreign", "1mbit");
    throw "htb was replaced";
} catch (e) {
    print(e);
}
"#,
    );
    let r = sandboxed(&format!(
        r#"
        ip link add own type veth peer name own2
        tc qdisc add dev own root tbf rate 3mbit burst 10kb latency 70ms
        tc qdisc add dev own2 root tbf rate 5mbit burst 10kb latency 70ms
        ip link add foreign type veth peer name f2
        tc qdisc add dev foreign root handle 1: htb
        nslab run --lab tf {path}
        tc -j qdisc show dev own2
        nslab destroy tf > /dev/null
        for d in uplink own own2 foreign; do tc -j qdisc show dev $d; done
        "#
    ));
    r.ok();
    assert!(
        r.stdout.contains(
            "foreign in the host has a htb root qdisc, which nslab could not restore after the lab"
        ),
        "{}",
        r.stdout
    );
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(root(lines[0])["kind"], "noqueue", "tc::clear removed own2's tbf");
    assert_eq!(root(lines[1])["kind"], "noqueue", "uplink: {}", lines[1]);
    let own = root(lines[2]);
    assert_eq!(
        (&own["kind"], &own["options"]["rate"], &own["options"]["lat"]),
        (&"tbf".into(), &375_000.into(), &70000.into()),
        "own got its hand-made tbf back"
    );
    // The kernel keeps the bucket in time; tc prints it back in bytes, truncated.
    let burst = own["options"]["burst"].as_i64().unwrap();
    assert!((10239..=10240).contains(&burst), "{own}");
    let own2 = root(lines[3]);
    assert_eq!((&own2["kind"], &own2["options"]["rate"]), (&"tbf".into(), &625_000.into()));
    assert_eq!(root(lines[4])["kind"], "htb");
}

#[test]
fn bad_values_get_a_diagnostic_and_leave_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    for (name, text) in [
        ("tc-negative-delay", "tc::netem(\"uplink\", #{delay_ms: -5});\n"),
        ("tc-loss-over-100", "tc::netem(\"uplink\", #{loss_pct: 150});\n"),
        ("tc-bad-rate", "tc::rate(\"uplink\", \"10 megabits\");\n"),
        ("tc-reorder-no-delay", "tc::netem(\"uplink\", #{reorder_pct: 10});\n"),
        ("tc-unknown-option", "tc::netem(\"uplink\", #{delay: 5});\n"),
        ("tc-veth-bad-cable", "veth::add(\"va\", \"vb\", #{rate: \"fast\"});\n"),
    ] {
        let r = nslab(&["run", "--sandbox", &recipe(&format!("{name}.rhai"), text)]);
        r.failed();
        snapshot(&format!("{name}.txt"), &r.stderr);
    }
    // Nothing was made: the veth of a refused cable does not exist.
    let path = recipe("tc-veth-bad.rhai", "veth::add(\"va\", \"vb\", #{loss_pct: -1});\n");
    let r = sandboxed(&format!("! nslab run {path} 2>/dev/null; ip link show va 2>&1 || true"));
    r.ok();
    assert!(r.stdout.contains("does not exist"), "{}", r.stdout);
}

/// Where the kernel has no netem (this machine), the refusal names the module.
#[test]
fn netem_without_the_module_says_so() {
    if !kernel_tests_possible() || kernel_has("netem") {
        return;
    }
    let path = recipe("tc-no-netem.rhai", "tc::netem(\"uplink\", #{delay_ms: 50});\n");
    let r = nslab(&["run", "--sandbox", &path]);
    r.failed();
    assert!(r.stderr.contains("this kernel has no netem qdisc (module sch_netem)"), "{}", r.stderr);
}

/// netem, on the second kernel: the options `tc` reads back, and the delay a ping sees.
#[test]
fn netem_delays_and_tc_reads_it_back() {
    if !kernel_tests_possible() || !kernel_has("netem") {
        return;
    }
    let r = sandboxed(
        r#"
        nslab run --lab nm --set delay_ms=50 --set loss_pct=0 scripts/impaired-link.rhai
        tc -j qdisc show dev v-far
        nslab destroy nm > /dev/null
        "#,
    );
    r.ok();
    assert!(r.stdout.contains("ok: the round trip takes at least 2 x 50 ms"), "{}", r.stdout);
    let line = r.stdout.lines().find(|l| l.starts_with('[')).unwrap();
    let q = root(line);
    assert_eq!(q["kind"], "netem", "{line}");
    assert_eq!(q["options"]["delay"]["delay"], 0.05, "{line}");

    let path = recipe(
        "tc-netem-all.rhai",
        r#"
tc::netem("uplink", #{delay_ms: 20, jitter_ms: 5, loss_pct: 1.5, duplicate_pct: 2, reorder_pct: 25, corrupt_pct: 0.5, rate: "100mbit"});
let q = tc::list().filter(|q| q.dev == "uplink")[0];
assert(q.kind == "netem" && q.delay_ms == 20.0 && q.jitter_ms == 5.0 && q.loss_pct == 1.5, `${q}`);
assert(q.reorder_pct == 25.0 && q.corrupt_pct == 0.5 && q.rate == "100mbit", `${q}`);
"#,
    );
    let r = sandboxed(&format!(
        "nslab run --lab na {path}; tc qdisc show dev uplink; nslab destroy na; tc qdisc show dev uplink"
    ));
    r.ok();
    assert!(
        r.stdout.contains(
            "delay 20ms  5ms loss 1.5% duplicate 2% reorder 25% corrupt 0.5% rate 100Mbit"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.trim_end().ends_with("qdisc noqueue 0: root refcnt 2"), "{}", r.stdout);
}

/// A claim nslab cannot write fails the call before anything changes, and says where and
/// what to do: a directory where the claim file of `uplink` goes, then a file where the
/// claims directory goes (which once said only "File exists (os error 17)").
#[test]
fn a_claim_that_cannot_be_written_changes_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("tc-claim.rhai", "netns::add(\"tcc\");\ntc::rate(\"uplink\", \"8mbit\");\n");
    let r = sandboxed(&format!(
        r#"
        mkdir -p /run/nslab/.tc/uplink
        nslab run {path} 2>&1 | tr -s ' \n' ' '; echo
        rm -r /run/nslab/.tc && touch /run/nslab/.tc
        nslab run {path} 2>&1 | tr -s ' \n' ' '; echo
        tc -j qdisc show dev uplink
        ip netns list | cut -d' ' -f1 | tr '\n' ' '
        "#
    ));
    r.ok();
    let mut lines = r.stdout.lines();
    for (i, why) in ["Is a directory (os error 21)", "File exists (os error 17)"].iter().enumerate()
    {
        let l = lines.next().unwrap();
        assert!(
            l.contains(&format!("cannot record the lab's claim in /run/nslab/.tc: {why}")),
            "{i}: {l}"
        );
        assert!(l.contains("tc-claim.rhai:2"), "{i}: {l}");
        assert!(l.contains("must be a directory nslab can write"), "{i}: {l}");
        assert!(l.contains("nothing is left behind"), "{i}: {l}");
    }
    let q = &json(lines.next().unwrap())[0];
    assert_eq!(q["kind"].as_str(), Some("noqueue"), "uplink's qdisc is untouched: {q}");
    assert_eq!(lines.next(), Some("internet "), "the runs left no netns");
}
