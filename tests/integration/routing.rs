//! Routes beyond "prefix via gateway" and policy routing rules, checked with independent
//! eyes: `ip -j route show table all`, `ip -j rule`, and real sockets.

use serde_json::Value;

use crate::common::{json, kernel_tests_possible, nslab, recipe, sandboxed, snapshot};

/// Two namespaces `r` and `a` joined by veth r0 (10.0.0.1) / a0 (10.0.0.2), and a second
/// pair r1 (10.1.0.1) / b1 in netns `b` (10.1.0.2).
const TWO_LINKS: &str = r#"
netns::add("r"); netns::add("a"); netns::add("b");
veth::add("r0", "a0", "a"); link::set_netns("r0", "r");
veth::add("r1", "b1", "b"); link::set_netns("r1", "r");
addr::add("r", "r0", "10.0.0.1/24"); addr::add("a", "a0", "10.0.0.2/24");
addr::add("r", "r1", "10.1.0.1/24"); addr::add("b", "b1", "10.1.0.2/24");
for l in ["r0", "r1"] { link::up("r", l); }
link::up("a", "a0"); link::up("b", "b1");
"#;

fn routes(dump: &str) -> Vec<Value> {
    json(dump).as_array().unwrap().clone()
}

fn find<'a>(rs: &'a [Value], dst: &str, table: Option<&str>) -> Vec<&'a Value> {
    rs.iter().filter(|r| r["dst"] == dst && table.is_none_or(|t| r["table"] == t)).collect()
}

#[test]
fn route_types_tables_metrics_and_multipath_reach_the_kernel() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "routing-kinds.rhai",
        &format!(
            "{TWO_LINKS}
route::add(\"r\", \"10.9.0.0/16\", \"blackhole\");
route::add(\"r\", \"10.8.0.0/16\", \"unreachable\", #{{table: 100}});
route::add(\"r\", \"10.7.0.0/16\", \"prohibit\");
route::add(\"r\", \"default\", [\"10.0.0.2\", #{{via: \"10.1.0.2\", weight: 3}}]);
route::add(\"r\", \"10.6.0.0/16\", \"10.0.0.2\", #{{metric: 50, src: \"10.0.0.1\"}});
route::add(\"r\", \"10.6.0.0/16\", \"10.1.0.2\", #{{metric: 60}});
route::add(\"r\", \"default\", \"10.1.0.2\", #{{table: 1000}});
route::add(\"r\", \"10.5.0.0/16\", \"10.9.9.9%r0\", #{{onlink: true}});
let all = route::list(\"r\", #{{table: \"all\"}});
let mp = all.filter(|x| x.dest == \"default\" && x.table == 254)[0];
assert(mp.nexthops.len() == 2 && mp.nexthops[1].weight == 3, `multipath: ${{mp}}`);
let bh = all.filter(|x| x.type == \"blackhole\");
assert(bh.len() == 1 && bh[0].dest == \"10.9.0.0/16\", `blackhole: ${{bh}}`);
let six = all.filter(|x| x.dest == \"10.6.0.0/16\").map(|x| x.metric);
assert(six == [50, 60], `metrics: ${{six}}`);
assert(route::list(\"r\", #{{table: 1000}}).len() == 1, \"table 1000\");
assert(route::list(\"r\").filter(|x| x.dest == \"10.8.0.0/16\").len() == 0, \"main has no table-100 route\");
"
        ),
    );
    let r = sandboxed(&format!(
        "nslab run {path} >/dev/null; ip -n r -j -4 route show table all; echo '#'; nslab show | sed -n '/^netns r/,/^netns [^r]/p'"
    ));
    r.ok();
    let (dump, show) = r.stdout.split_once("\n#\n").unwrap();
    let rs = routes(dump);
    let bh = find(&rs, "10.9.0.0/16", None);
    assert_eq!(bh[0]["type"], "blackhole", "{dump}");
    assert_eq!(find(&rs, "10.8.0.0/16", Some("100"))[0]["type"], "unreachable");
    assert_eq!(find(&rs, "10.7.0.0/16", None)[0]["type"], "prohibit");
    let mp = find(&rs, "default", None).into_iter().find(|r| r["nexthops"].is_array()).unwrap();
    let hops = mp["nexthops"].as_array().unwrap();
    assert_eq!(
        (hops[0]["gateway"].as_str(), hops[0]["weight"].as_u64()),
        (Some("10.0.0.2"), Some(1))
    );
    assert_eq!(
        (hops[1]["gateway"].as_str(), hops[1]["weight"].as_u64()),
        (Some("10.1.0.2"), Some(3))
    );
    let six = find(&rs, "10.6.0.0/16", None);
    assert_eq!(six.len(), 2);
    assert_eq!(
        (six[0]["metric"].as_u64(), six[0]["prefsrc"].as_str()),
        (Some(50), Some("10.0.0.1"))
    );
    assert_eq!(find(&rs, "default", Some("1000"))[0]["gateway"], "10.1.0.2");
    let onlink = &find(&rs, "10.5.0.0/16", None)[0];
    assert!(onlink["flags"].as_array().unwrap().iter().any(|f| f == "onlink"), "{onlink}");
    // `nslab show`: the multipath default, the blackhole, and the two metrics tell apart.
    for want in [
        "default nexthop via 10.0.0.2 dev r0 weight 1 nexthop via 10.1.0.2 dev r1 weight 3",
        "blackhole 10.9.0.0/16",
        "unreachable 10.8.0.0/16 table 100",
        "10.6.0.0/16 via 10.0.0.2 dev r0 metric 50 src 10.0.0.1",
        "10.6.0.0/16 via 10.1.0.2 dev r1 metric 60",
    ] {
        assert!(show.contains(want), "show lacks {want:?}:\n{show}");
    }
}

/// Teardown deletes exactly the lab's route: an equal one with another metric (and in
/// another table) that someone added by hand survives destroy.
#[test]
fn destroy_leaves_a_foreign_route_with_the_same_destination() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "routing-exact.rhai",
        "route::add(\"10.77.0.0/16\", \"203.0.113.1\", #{metric: 100});\nroute::add(\"10.78.0.0/16\", \"blackhole\", #{table: 77});\nrule::add(#{from: \"10.77.1.0/24\", table: 77});\n",
    );
    let r = sandboxed(&format!(
        "ip route add 10.77.0.0/16 via 203.0.113.1 metric 50
ip route add blackhole 10.78.0.0/16 table 78
ip rule add from 10.77.1.0/24 table 77 priority 500
nslab run --lab x {path} >/dev/null
ip -j route show table all | grep -c 10.77.0.0 >/dev/null
nslab destroy x >/dev/null
ip -j route show table all; echo '#'; ip -j rule"
    ));
    r.ok();
    let (dump, rules) = r.stdout.split_once("\n#\n").unwrap();
    let rs = routes(dump);
    let left = find(&rs, "10.77.0.0/16", None);
    assert_eq!(left.len(), 1, "{dump}");
    assert_eq!(left[0]["metric"].as_u64(), Some(50), "the foreign route must survive");
    assert_eq!(find(&rs, "10.78.0.0/16", None).len(), 1, "only table 78's blackhole survives");
    let rules = json(rules);
    let ours: Vec<&Value> =
        rules.as_array().unwrap().iter().filter(|r| r["src"] == "10.77.1.0").collect();
    assert_eq!(ours.len(), 1, "only the hand-made rule survives: {rules}");
    assert_eq!(ours[0]["priority"].as_u64(), Some(500));
}

/// Rules: made as asked (the kernel's priority recorded), listed, deleted exactly, and the
/// lookup really follows them (a reply from 10.1.0.1 leaves by r1).
#[test]
fn rules_select_the_table_and_go_with_the_lab() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "routing-rules.rhai",
        &format!(
            "{TWO_LINKS}
route::add(\"r\", \"default\", \"10.0.0.2\");
route::add(\"r\", \"default\", \"10.1.0.2\", #{{table: 200}});
rule::add(\"r\", #{{from: \"10.1.0.1\", table: 200}});
rule::add(\"r\", #{{fwmark: \"0x10/0xff\", iif: \"r0\", table: 200, priority: 300}});
rule::add(\"r\", #{{to: \"fd00::/64\", table: 200}});
let l = rule::list(\"r\").filter(|x| x.table == 200);
assert(l.len() == 3, `rules: ${{l}}`);
rule::del(\"r\", #{{fwmark: \"0x10/0xff\", iif: \"r0\", table: 200}});
assert(rule::list(\"r\").filter(|x| x.table == 200).len() == 2, \"deleted\");
"
        ),
    );
    let r = sandboxed(&format!(
        "nslab run --lab rules {path} >/dev/null
ip -n r -j rule; echo '#'; ip -n r -6 -j rule; echo '#'
ip -n r route get 10.99.0.1 from 10.1.0.1 | head -1; echo '#'
nslab destroy rules >/dev/null; ip netns list | grep -v internet | wc -l"
    ));
    r.ok();
    let parts: Vec<&str> = r.stdout.split("\n#\n").collect();
    let v4 = json(parts[0]);
    let ours: Vec<&Value> = v4.as_array().unwrap().iter().filter(|x| x["table"] == "200").collect();
    assert_eq!(ours.len(), 1, "{v4}");
    assert_eq!(
        (ours[0]["src"].as_str(), ours[0]["priority"].as_u64()),
        (Some("10.1.0.1"), Some(32765))
    );
    let v6 = json(parts[1]);
    assert!(
        v6.as_array().unwrap().iter().any(|x| x["dst"] == "fd00::" && x["table"] == "200"),
        "{v6}"
    );
    assert!(parts[2].contains("via 10.1.0.2 dev r1"), "the rule picks table 200: {}", parts[2]);
    assert_eq!(parts[3].trim(), "0");
}

/// A rule on the host (outside the lab's namespaces) that the lab did not make cannot be
/// deleted by it; the lab's own one can, and only that one.
#[test]
fn a_foreign_rule_is_not_the_labs() {
    if !kernel_tests_possible() {
        return;
    }
    let path =
        recipe("routing-foreign-rule.rhai", "rule::del(#{from: \"10.66.0.0/16\", table: 66});\n");
    let r = sandboxed(&format!(
        "ip rule add from 10.66.0.0/16 table 66
nslab run {path} 2>&1 || true
ip rule | grep -c 10.66.0.0"
    ));
    assert!(r.stdout.contains("was not created by lab"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with('1'), "{}", r.stdout);
}

#[test]
fn bad_routes_and_rules_get_a_diagnostic_and_leave_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    let cases = [
        ("rule-no-selector", "netns::add(\"r\");\nrule::add(\"r\", #{table: 100});\n", 2),
        (
            "rule-table-0",
            "netns::add(\"r\");\nrule::add(\"r\", #{from: \"10.0.0.1\", table: 0});\n",
            2,
        ),
        (
            "route-table-0",
            "netns::add(\"r\");\nroute::add(\"r\", \"10.0.0.0/8\", \"blackhole\", #{table: 0});\n",
            2,
        ),
        (
            "multipath-one-hop",
            "netns::add(\"r\");\nroute::add(\"r\", \"default\", [#{via: \"10.0.0.1\", weight: 300}]);\n",
            2,
        ),
        (
            "multipath-single",
            "netns::add(\"r\");\nroute::add(\"r\", \"default\", [\"10.0.0.1\"]);\n",
            2,
        ),
        (
            "route-unknown-option",
            "netns::add(\"r\");\nroute::add(\"r\", \"default\", \"10.0.0.1\", #{tabel: 5});\n",
            2,
        ),
        (
            "route-bad-src",
            "netns::add(\"r\");\nroute::add(\"r\", \"fd00:9::/64\", \"blackhole\", #{src: \"fd00::1\"});\n",
            2,
        ),
    ];
    let mut all = String::new();
    for (name, text, line) in cases {
        let path = recipe(&format!("{name}.rhai"), text);
        let r = sandboxed(&format!(
            "nslab run {path} 2>&1 || true; ip netns list | grep -v internet | wc -l"
        ));
        assert!(
            r.stdout.contains(&format!("{path}:{line}:")),
            "{name}: no line {line}:\n{}",
            r.stdout
        );
        assert!(r.stdout.trim_end().ends_with('0'), "{name} left a netns behind:\n{}", r.stdout);
        all += &format!("## {name}\n{}\n", r.stdout.trim_end());
    }
    snapshot("routing-bad-input.txt", &all);
    // The plan refuses the same way, in the same words.
    for (name, text) in [
        ("plan-rule-table-0", "rule::add(#{iif: \"lo\", table: 0});\n"),
        (
            "plan-bad-src",
            "netns::add(\"r\");\nroute::add(\"r\", \"fd00:9::/64\", \"blackhole\", #{src: \"fd00::1\"});\n",
        ),
    ] {
        let path = recipe(&format!("{name}.rhai"), text);
        let p = nslab(&["plan", &path]);
        p.failed();
        assert!(
            p.stderr.contains("table cannot be 0")
                || p.stderr.contains("cannot be a route's source"),
            "{}",
            p.stderr
        );
    }
}
