//! `nslab plan` and `nslab run` agree on probes through firewall rules (issue 14: "never a
//! confident wrong answer"): the plan evaluates `fw::` rules on the path a probe takes, and
//! answers `()` where it cannot. Each case runs the same recipe both ways and compares the
//! probe lines.

use crate::common::{kernel_tests_possible, nslab, recipe, slowdown};

/// The probes' 700 ms timeouts, longer on a slower machine (the second kernel under TCG):
/// a probe that should pass must not time out there.
fn scaled(text: &str) -> String {
    let ms = 700 * slowdown();
    text.replace("timeout_ms: 700", &format!("timeout_ms: {ms}"))
        .replace("after 700 ms", &format!("after {ms} ms"))
        .replace("within 700 ms", &format!("within {ms} ms"))
}

/// Client `a` (10.1.0.2) and server `b` (10.2.0.2) on either side of router `r`, which
/// forwards; `b` serves TCP 7000 and 7001 and UDP 5353. Then `rules`, then the probes.
fn lab(rules: &str, probes: &str) -> String {
    format!(
        r#"netns::add("a"); netns::add("r"); netns::add("b");
veth::add("r", "ra", "a", "eth0");
veth::add("r", "rb", "b", "eth0");
addr::add("a", "eth0", "10.1.0.2/24"); addr::add("r", "ra", "10.1.0.1/24");
addr::add("b", "eth0", "10.2.0.2/24"); addr::add("r", "rb", "10.2.0.1/24");
for x in [["a","eth0"],["b","eth0"],["r","ra"],["r","rb"],["a","lo"],["b","lo"]] {{ link::up(x[0], x[1]); }}
route::add("a", "default", "10.1.0.1");
route::add("b", "default", "10.2.0.1");
sysctl::ip_forward("r", true);
probe::serve("b", 7000);
probe::serve("b", 7001);
probe::serve("b", 5353, #{{proto: "udp"}});
probe::serve("a", 8000);
// The lab is up: the first probes do not wait for links that just came up.
probe::ping("a", "10.2.0.2");
{rules}
fn show(name, r) {{
    if type_of(r) == "()" {{ print(`probe ${{name}} ()`); }}
    else if "error" in r && r.error != () {{ print(`probe ${{name}} ${{r.ok}} ${{r.error}}`); }}
    else {{ print(`probe ${{name}} ${{r.ok}}`); }}
}}
let quick = #{{timeout_ms: 700}};
let once = #{{count: 1, timeout_ms: 700}};
{probes}
"#
    )
}

const PROBES: &str = r#"show("ping a->b", probe::ping("a", "10.2.0.2", once));
show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));
show("tcp a->b:7001", probe::tcp("a", "10.2.0.2:7001", quick));
show("udp a->b:5353", probe::udp("a", "10.2.0.2:5353", quick));
show("tcp b->a:8000", probe::tcp("b", "10.1.0.2:8000", quick));
show("ping b->a", probe::ping("b", "10.1.0.2", once));
"#;

fn probe_lines(text: &str, prefix: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix(prefix)).map(|l| format!("probe {l}")).collect()
}

/// Plans the recipe at `path`, then (where the kernel allows) runs it in a sandbox: the
/// plan's probe lines must be `planned`, the run's `ran`.
fn plan_and_run(path: &str, planned: &[&str], ran: &[&str]) {
    let plan = nslab(&["plan", path]);
    plan.ok();
    assert_eq!(probe_lines(&plan.stdout, "# probe "), planned, "{}", plan.stdout);
    if kernel_tests_possible() {
        let run = nslab(&["run", "--sandbox", path]);
        run.ok();
        assert_eq!(probe_lines(&run.stdout, "probe "), ran, "{}", run.stdout);
    }
}

/// Plans and runs `rules` + `probes`; the plan's probe lines must be `want` (a `()` there is
/// "not modelled"), and the run's the same except where the plan said `()`.
fn agree(name: &str, rules: &str, probes: &str, want: &[&str]) {
    let path = recipe(&format!("plan-fw-{name}.rhai"), &scaled(&lab(rules, probes)));
    let plan = nslab(&["plan", &path]);
    plan.ok();
    let planned = probe_lines(&plan.stdout, "# probe ");
    let want: Vec<String> = want.iter().map(|w| scaled(w)).collect();
    assert_eq!(planned, want, "plan of {name}:\n{}", plan.stdout);
    if !kernel_tests_possible() {
        return;
    }
    let run = nslab(&["run", "--sandbox", &path]);
    run.ok();
    let ran = probe_lines(&run.stdout, "probe ");
    assert_eq!(ran.len(), planned.len(), "run of {name}:\n{}", run.stdout);
    for (p, r) in planned.iter().zip(&ran) {
        if !p.ends_with(" ()") {
            assert_eq!(p, r, "{name}: the plan says {p:?}, the kernel {r:?}");
        }
    }
}

#[test]
fn a_ping_through_a_drop_in_forward_fails_in_the_plan_too() {
    agree(
        "drop-icmp",
        r#"fw::drop("r", "forward", #{proto: "icmp"});"#,
        PROBES,
        &[
            "probe ping a->b false",
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 true",
            "probe udp a->b:5353 true",
            "probe tcp b->a:8000 true",
            "probe ping b->a false",
        ],
    );
}

#[test]
fn a_port_rejected_in_input_is_refused_in_the_plan_too() {
    agree(
        "reject-input",
        r#"fw::reject("b", "input", #{proto: "tcp", dport: 7000});
fw::reject("b", "input", #{proto: "udp", dport: 5353});"#,
        PROBES,
        &[
            "probe ping a->b true",
            "probe tcp a->b:7000 false connection refused",
            "probe tcp a->b:7001 true",
            "probe udp a->b:5353 false connection refused (port unreachable)",
            "probe tcp b->a:8000 true",
            "probe ping b->a true",
        ],
    );
}

/// Rules decide in order: an allow before a catch-all drop lets its port through, the same
/// allow after it does not. Replies pass only by the ESTABLISHED rule.
#[test]
fn an_allow_before_a_drop_wins_and_after_it_loses() {
    agree(
        "allow-first",
        r#"fw::allow("r", "forward", #{state: "established,related"});
fw::allow("r", "forward", #{iif: "ra", proto: "tcp", dst: "10.2.0.2", dport: 7000});
fw::drop("r", "forward", #{});"#,
        PROBES,
        &[
            "probe ping a->b false",
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 false timed out after 700 ms",
            "probe udp a->b:5353 false no reply within 700 ms",
            "probe tcp b->a:8000 false timed out after 700 ms",
            "probe ping b->a false",
        ],
    );
    agree(
        "allow-late",
        r#"fw::drop("r", "forward", #{});
fw::allow("r", "forward", #{proto: "tcp", dport: 7000});"#,
        r#"show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));"#,
        &["probe tcp a->b:7000 false timed out after 700 ms"],
    );
    // Without the ESTABLISHED rule the SYN passes and the SYN-ACK is dropped.
    agree(
        "no-replies",
        r#"fw::allow("r", "forward", #{proto: "tcp", dport: 7000});
fw::drop("r", "forward", #{});"#,
        r#"show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));"#,
        &["probe tcp a->b:7000 false timed out after 700 ms"],
    );
}

/// Only the rule for the probe's port and address decides.
#[test]
fn a_rule_for_another_port_does_not_match() {
    agree(
        "other-port",
        r#"fw::drop("r", "forward", #{proto: "tcp", dport: 9999});
fw::reject("b", "input", #{proto: "udp", dport: "1:5000"});
fw::drop("a", "output", #{proto: "tcp", dport: 7000, dst: "10.9.0.0/16"});
fw::drop("r", "forward", #{proto: "tcp", dport: "7001:7002"});"#,
        PROBES,
        &[
            "probe ping a->b true",
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 false timed out after 700 ms",
            "probe udp a->b:5353 true",
            "probe tcp b->a:8000 true",
            "probe ping b->a true",
        ],
    );
}

/// A client's source port is one of the kernel's ephemeral ports: a rule on one of them
/// may or may not match, so the plan says `()` rather than guess. A rule that covers all
/// of them, or none, is answered.
#[test]
fn a_rule_the_model_cannot_evaluate_gives_unit() {
    agree(
        "sport",
        r#"fw::drop("r", "forward", #{proto: "tcp", sport: 40000});
fw::drop("r", "forward", #{proto: "udp", sport: "1:1023"});
fw::reject("r", "forward", #{proto: "tcp", sport: "1024:65535", dport: 7001});"#,
        r#"show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));
show("udp a->b:5353", probe::udp("a", "10.2.0.2:5353", quick));
show("ping a->b", probe::ping("a", "10.2.0.2", once));"#,
        &["probe tcp a->b:7000 ()", "probe udp a->b:5353 true", "probe ping a->b true"],
    );
}

/// OUTPUT in the client, INPUT in the server, both directions: a host that accepts only
/// answers to its own connections reaches out but is not reached.
#[test]
fn input_and_output_chains_and_conntrack_replies() {
    agree(
        "stateful-host",
        r#"fw::allow("a", "input", #{state: "established,related"});
fw::drop("a", "input", #{});
fw::reject("a", "output", #{proto: "udp"});"#,
        PROBES,
        &[
            "probe ping a->b true",
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 true",
            "probe udp a->b:5353 false connection refused (port unreachable)",
            "probe tcp b->a:8000 false timed out after 700 ms",
            "probe ping b->a false",
        ],
    );
    // A REJECT in the router answers from the router; a DROP of the client's own packets.
    agree(
        "router-reject",
        r#"fw::reject("r", "forward", #{proto: "tcp", dport: 7001});
fw::drop("a", "output", #{proto: "icmp"});"#,
        PROBES,
        &[
            "probe ping a->b false",
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 false connection refused",
            "probe udp a->b:5353 true",
            "probe tcp b->a:8000 true",
            "probe ping b->a false",
        ],
    );
}

/// br_netfilter: a frame a bridge forwards between two of its ports passes that netns's
/// FORWARD chain, with the bridge as both interfaces — where br_netfilter is loaded and
/// `bridge-nf-call-iptables` is on (a fresh netns's default), not where a recipe turns it off.
#[test]
fn bridged_frames_meet_the_bridge_netns_forward_chain() {
    let text = |off: bool| {
        format!(
            r#"netns::add("sw"); netns::add("h1"); netns::add("h2");
bridge::add("sw", "br0"); link::up("sw", "br0");
for h in ["h1", "h2"] {{
    veth::add("sw", `v${{h}}`, h, "eth0");
    link::set_master("sw", `v${{h}}`, "br0");
    link::up("sw", `v${{h}}`); link::up(h, "eth0");
}}
addr::add("h1", "eth0", "10.0.0.1/24"); addr::add("h2", "eth0", "10.0.0.2/24");
probe::serve("h2", 7000);
probe::serve("h2", 7001);
probe::ping("h1", "10.0.0.2");
if {off} {{ sysctl::set("sw", "net.bridge.bridge-nf-call-iptables", "0"); }}
fw::drop("sw", "forward", #{{iif: "br0", oif: "br0", proto: "tcp", dport: 7001}});
fw::drop("sw", "forward", #{{iif: "vh1"}});
let quick = #{{timeout_ms: 700}};
for p in [7000, 7001] {{
    let r = probe::tcp("h1", `10.0.0.2:${{p}}`, quick);
    print(`probe tcp ${{p}} ${{r.ok}}`);
}}
print(`probe ping ${{probe::ping("h1", "10.0.0.2", #{{count: 1, timeout_ms: 700}}).ok}}`);
"#
        )
    };
    // Debian's kernel has br_netfilter as a module nothing here loads: bridges filter nothing.
    let loaded = std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
    let cases: &[bool] = if loaded { &[false, true] } else { &[false] };
    for &off in cases {
        let path = recipe(&format!("plan-fw-bridged-{off}.rhai"), &scaled(&text(off)));
        let filtered = loaded && !off;
        let tcp = format!("probe tcp 7001 {}", !filtered);
        let want = ["probe tcp 7000 true", &tcp, "probe ping true"];
        plan_and_run(&path, &want, &want);
    }
}

/// A `netns::exec` that may write rules leaves the plan unable to tell; a port nobody
/// serves is refused (the plan used to say ok).
#[test]
fn exec_of_iptables_gives_unit_and_an_unserved_port_is_refused() {
    agree(
        "exec-ipt",
        r#"netns::exec("r", ["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "7001", "-j", "DROP"]);"#,
        r#"show("tcp a->b:7001", probe::tcp("a", "10.2.0.2:7001", quick));
show("ping a->b", probe::ping("a", "10.2.0.2", once));"#,
        &["probe tcp a->b:7001 ()", "probe ping a->b ()"],
    );
    agree(
        "unserved",
        "",
        r#"show("tcp a->b:7999", probe::tcp("a", "10.2.0.2:7999", quick));
show("udp a->b:7999", probe::udp("a", "10.2.0.2:7999", quick));"#,
        &[
            "probe tcp a->b:7999 false connection refused",
            "probe udp a->b:7999 false connection refused (port unreachable)",
        ],
    );
}

/// A host connecting to its own forwarded port: locally generated traffic meets the nat
/// table's OUTPUT chain, never PREROUTING. `nat::port_forward` adds an OUTPUT rule (as
/// Docker does) unless it is limited to an incoming interface; then nothing answers.
#[test]
fn a_host_reaches_its_own_forwarded_port_only_through_output() {
    let text = r#"netns::add("gw"); netns::add("srv");
veth::add("gw", "eth1", "srv", "eth0");
addr::add("gw", "eth1", "10.0.0.1/24"); addr::add("srv", "eth0", "10.0.0.10/24");
for x in [["gw","eth1"],["srv","eth0"],["gw","lo"],["srv","lo"]] { link::up(x[0], x[1]); }
route::add("srv", "default", "10.0.0.1");
probe::serve("srv", 80);
probe::ping("gw", "10.0.0.10");
nat::port_forward("gw", 8080, "10.0.0.10:80");
nat::port_forward("gw", 8081, "10.0.0.10:80", #{iface: "eth1"});
let quick = #{timeout_ms: 700};
for p in [8080, 8081] {
    let r = probe::tcp("gw", `10.0.0.1:${p}`, quick);
    print(`probe ${p} ${r.ok} seen=${r.seen} error=${r.error}`);
}
"#;
    let path = recipe("plan-fw-own-forward.rhai", &scaled(text));
    let want =
        ["probe 8080 true seen=10.0.0.1 error=", "probe 8081 false seen= error=connection refused"];
    plan_and_run(&path, &want, &want);
}

/// The filter table sees a packet after PREROUTING's DNAT and before POSTROUTING's SNAT:
/// FORWARD matches the forwarded port's target and the client's own address, the server
/// sees the masquerading router.
#[test]
fn filters_see_packets_after_dnat_and_before_snat() {
    agree(
        "nat",
        r#"nat::masquerade("r", "10.1.0.0/24", #{out: "rb"});
nat::dnat("r", #{iif: "ra", proto: "tcp", dport: 8080}, "10.2.0.2:7000");
nat::dnat("r", #{iif: "ra", proto: "tcp", dport: 8081}, "10.2.0.2:7001");
fw::drop("r", "forward", #{proto: "tcp", dport: 8080});
fw::drop("r", "forward", #{src: "10.2.0.1"});
fw::drop("r", "forward", #{proto: "tcp", dport: 7001, src: "10.1.0.2"});
fw::drop("b", "input", #{src: "10.1.0.0/24"});"#,
        r#"let r = probe::tcp("a", "10.1.0.1:8080", quick);
print(`probe 8080 ${r.ok} seen=${r.seen}`);
show("tcp a->r:8081", probe::tcp("a", "10.1.0.1:8081", quick));
show("ping a->b", probe::ping("a", "10.2.0.2", once));"#,
        &[
            "probe 8080 true seen=10.2.0.1",
            "probe tcp a->r:8081 false timed out after 700 ms",
            "probe ping a->b true",
        ],
    );
}

/// A REJECT's ICMP error is RELATED: a client that drops it hears nothing (a timeout, not
/// "refused"). Echoes after the first answer are ESTABLISHED: a rule dropping those lets
/// one of three through.
#[test]
fn related_errors_and_established_echoes() {
    agree(
        "related",
        r#"fw::reject("r", "forward", #{proto: "tcp", dport: 7001});
fw::allow("a", "input", #{state: "established"});
fw::drop("a", "input", #{});
fw::drop("r", "forward", #{iif: "ra", proto: "icmp", state: "established"});"#,
        r#"show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));
show("tcp a->b:7001", probe::tcp("a", "10.2.0.2:7001", quick));
let p = probe::ping("a", "10.2.0.2", #{count: 3, timeout_ms: 700});
print(`probe ping ${p.ok} ${p.received}/${p.sent}`);"#,
        &[
            "probe tcp a->b:7000 true",
            "probe tcp a->b:7001 false timed out after 700 ms",
            "probe ping true 1/3",
        ],
    );
}

/// The model does not walk a VXLAN's underlay: with a filter rule in the lab, a probe over
/// the overlay is `()` (here the rule drops the underlay's UDP, and the kernel's ping fails).
#[test]
fn a_probe_over_a_vxlan_with_filter_rules_is_not_modelled() {
    let text = |rule: &str| {
        format!(
            r#"netns::add("n1"); netns::add("n2");
veth::add("n1", "eth0", "n2", "eth0");
addr::add("n1", "eth0", "192.168.50.1/24"); addr::add("n2", "eth0", "192.168.50.2/24");
link::up("n1", "eth0"); link::up("n2", "eth0");
link::add("n1", "vx0", "vxlan", #{{id: 42, remote: "192.168.50.2", local: "192.168.50.1", dev: "eth0"}});
link::add("n2", "vx0", "vxlan", #{{id: 42, remote: "192.168.50.1", local: "192.168.50.2", dev: "eth0"}});
addr::add("n1", "vx0", "10.244.0.1/24"); addr::add("n2", "vx0", "10.244.0.2/24");
link::up("n1", "vx0"); link::up("n2", "vx0");
probe::ping("n1", "192.168.50.2");
{rule}
let r = probe::ping("n1", "10.244.0.2", #{{count: 2, timeout_ms: 700}});
print(if type_of(r) == "()" {{ "probe ()" }} else {{ `probe ${{r.ok}}` }});
"#
        )
    };
    for (name, rule, want) in [
        ("plan-fw-vxlan-open.rhai", "", "probe true"),
        (
            "plan-fw-vxlan-drop.rhai",
            r#"fw::drop("n2", "input", #{proto: "udp", dport: 4789});"#,
            "probe ()",
        ),
    ] {
        let path = recipe(name, &scaled(&text(rule)));
        let ran = if rule.is_empty() { "probe true" } else { "probe false" };
        plan_and_run(&path, &[want], &[ran]);
    }
}

/// A recipe that uses a `()` answer as a map fails in the plan; the plan says that the run
/// (whose probe returns a map) may not stop there, not that it would.
#[test]
fn a_recipe_failing_on_a_unit_answer_is_not_said_to_fail_in_the_run() {
    let path = recipe(
        "plan-fw-unit-assert.rhai",
        &lab(
            r#"fw::drop("r", "forward", #{proto: "tcp", sport: 40000});"#,
            r#"assert(probe::tcp("a", "10.2.0.2:7000", quick).ok, "no connection");"#,
        ),
    );
    let r = nslab(&["plan", &path]);
    r.failed();
    assert!(
        r.stderr.contains("a probe the plan cannot answer returned `()` (not modelled)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("would stop (and roll back) at this error too"), "{}", r.stderr);
}

/// The client's own OUTPUT chain: a DROP there is a timeout, a REJECT an ICMP error the
/// client sends itself (refused), for TCP and UDP alike.
#[test]
fn the_clients_own_output_chain() {
    agree(
        "client-output",
        r#"fw::drop("a", "output", #{proto: "tcp", dport: 7000});
fw::reject("a", "output", #{proto: "tcp", dport: 7001});
fw::drop("a", "output", #{proto: "udp"});"#,
        PROBES,
        &[
            "probe ping a->b true",
            "probe tcp a->b:7000 false timed out after 700 ms",
            "probe tcp a->b:7001 false connection refused",
            "probe udp a->b:5353 false no reply within 700 ms",
            "probe tcp b->a:8000 true",
            "probe ping b->a true",
        ],
    );
}

/// Without a path the probe fails in the plan as in the run, in the run's words: no route
/// here is "network unreachable" at once, a forwarding router without a route answers
/// "net unreachable" (TCP gives up, nslab's UDP probe waits on), a router that does not
/// forward and a missing neighbour say nothing.
#[test]
fn a_probe_without_a_path_fails_in_the_kernels_words() {
    let probes = r#"show("tcp a->10.9.0.2", probe::tcp("a", "10.9.0.2:7000", quick));
show("udp a->10.9.0.2", probe::udp("a", "10.9.0.2:7000", quick));
show("tcp r->10.9.0.2", probe::tcp("r", "10.9.0.2:7000", quick));
show("udp r->10.9.0.2", probe::udp("r", "10.9.0.2:7000", quick));
// Not scaled: ARP gives up after 3 s, and a TCP client then hears "host unreachable".
show("tcp a->10.2.0.77", probe::tcp("a", "10.2.0.77:7000", #{timeout_ms: 699}));
show("udp a->10.2.0.77", probe::udp("a", "10.2.0.77:7000", #{timeout_ms: 699}));"#;
    agree(
        "no-path",
        "",
        probes,
        &[
            "probe tcp a->10.9.0.2 false network unreachable",
            "probe udp a->10.9.0.2 false no reply within 700 ms",
            "probe tcp r->10.9.0.2 false network unreachable",
            "probe udp r->10.9.0.2 false network unreachable",
            "probe tcp a->10.2.0.77 false timed out after 699 ms",
            "probe udp a->10.2.0.77 false no reply within 699 ms",
        ],
    );
    // The router's error meets a's INPUT chain: dropped there, the client times out.
    agree(
        "no-path-filtered",
        r#"fw::drop("a", "input", #{proto: "icmp"});"#,
        r#"show("tcp a->10.9.0.2", probe::tcp("a", "10.9.0.2:7000", quick));"#,
        &["probe tcp a->10.9.0.2 false timed out after 700 ms"],
    );
    agree(
        "no-forwarding",
        r#"sysctl::ip_forward("r", false);"#,
        r#"show("tcp a->b:7000", probe::tcp("a", "10.2.0.2:7000", quick));
show("udp a->b:5353", probe::udp("a", "10.2.0.2:5353", quick));
show("ping a->b", probe::ping("a", "10.2.0.2", once));"#,
        &[
            "probe tcp a->b:7000 false timed out after 700 ms",
            "probe udp a->b:5353 false no reply within 700 ms",
            "probe ping a->b false",
        ],
    );
}
