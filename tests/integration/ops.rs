//! Ops that are new or newly visible: `link::set`, and the temporary `promote_secondaries`
//! write around an address delete (printed by `--explain` and `plan`, undone by destroy when
//! a run is killed in between).

use crate::common::{json, kernel_tests_possible, nslab, recipe, sandboxed, unwrapped};

const LINK_SET: &str = r#"
veth::add("v-a", "v-b");
link::set("v-a", #{mtu: 9000, mac: "02:00:00:00:00:0a", txqueuelen: 500});
netns::add("red");
veth::add("v-red", "v-red-br", "red");
link::set("red", "v-red-br", #{mtu: 1400});
"#;

#[test]
fn link_set_changes_mtu_mac_and_queue_length() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe("ops-link-set.rhai", LINK_SET);
    let r = sandboxed(&format!(
        "nslab run --explain {p} | grep 'link set'\nip -j link show v-a\nip -n red -j link show v-red-br"
    ));
    r.ok();
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("+ ip link set v-a mtu 9000 address 02:00:00:00:00:0a txqueuelen 500")
    );
    assert_eq!(lines.next(), Some("+ ip -n red link set v-red-br mtu 1400"));
    let a = &json(lines.next().unwrap())[0];
    assert_eq!((a["mtu"].as_u64(), a["address"].as_str()), (Some(9000), Some("02:00:00:00:00:0a")));
    assert_eq!(a["txqlen"].as_u64(), Some(500));
    let red = &json(lines.next().unwrap())[0];
    assert_eq!(red["mtu"].as_u64(), Some(1400));
}

#[test]
fn link_set_is_planned_as_it_runs() {
    let p = recipe("ops-link-set-plan.rhai", LINK_SET);
    let r = nslab(&["plan", &p]);
    r.ok();
    assert!(
        r.stdout.contains("\nip link set v-a mtu 9000 address 02:00:00:00:00:0a txqueuelen 500\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nip -n red link set v-red-br mtu 1400\n"), "{}", r.stdout);
}

#[test]
fn link_set_refuses_a_foreign_link_and_bad_values() {
    if !kernel_tests_possible() {
        return;
    }
    let foreign = recipe("ops-link-set-foreign.rhai", "link::set(\"uplink\", #{mtu: 1400});\n");
    let r = sandboxed(&format!("nslab run {foreign} 2>&1 || true\nip -j link show uplink"));
    r.ok();
    assert!(r.stdout.contains("link uplink in the host was not created by lab"), "{}", r.stdout);
    let last = r.stdout.lines().last().unwrap();
    assert_eq!(json(last)[0]["mtu"].as_u64(), Some(1500), "the foreign link is unchanged");

    for (name, set, said) in [
        ("ops-mtu.rhai", "#{mtu: 20}", "v-a cannot take mtu 20"),
        ("ops-mac.rhai", "#{mac: \"01:00:5e:00:00:01\"}", "is a multicast address"),
        ("ops-key.rhai", "#{mtu: 1400, speed: 10}", "unknown option `speed`"),
        ("ops-none.rhai", "#{}", "link::set has nothing to set"),
    ] {
        let p =
            recipe(name, &format!("veth::add(\"v-a\", \"v-b\");\nlink::set(\"v-a\", {set});\n"));
        let plan = nslab(&["plan", &p]);
        plan.failed();
        assert!(plan.stderr.contains(said), "plan {name}: {}", plan.stderr);
        let run = nslab(&["run", "--sandbox", &p]);
        run.failed();
        assert!(run.stderr.contains(said), "run {name}: {}", run.stderr);
    }
}

/// Two addresses in one subnet on a link; deleting the first needs `promote_secondaries`.
const SECONDARIES: &str = r#"
bridge::add("br-p");
addr::add("br-p", "10.79.0.1/24");
addr::add("br-p", "10.79.0.2/24");
addr::del("br-p", "10.79.0.1/24");
"#;

#[test]
fn explain_and_plan_show_the_promote_secondaries_write() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe("ops-promote.rhai", SECONDARIES);
    let expected = [
        "sysctl -qw net.ipv4.conf.br-p.promote_secondaries=1",
        "ip addr del 10.79.0.1/24 dev br-p",
        "sysctl -qw net.ipv4.conf.br-p.promote_secondaries=0",
    ];
    let plan = nslab(&["plan", &p]);
    plan.ok();
    let lines: Vec<&str> = plan.stdout.lines().collect();
    let at = lines.iter().position(|l| *l == expected[0]).expect(&plan.stdout);
    assert_eq!(&lines[at..at + 3], expected);
    let r = sandboxed(&format!(
        "nslab run --explain {p}\nip -4 -o addr show dev br-p | awk '{{print $4}}'"
    ));
    r.ok();
    let explained: Vec<&str> = r.stdout.lines().filter_map(|l| l.strip_prefix("+ ")).collect();
    let at = explained.iter().position(|l| *l == expected[0]).expect(&r.stdout);
    assert_eq!(&explained[at..at + 3], expected);
    assert!(r.stdout.ends_with("10.79.0.2/24\n"), "the secondary stays: {}", r.stdout);
}

/// `kill -9` right after the `promote_secondaries` write on a foreign link: destroy puts the
/// link's setting back, and keeps its owner's address.
#[test]
fn a_kill_after_the_promote_write_is_undone_by_destroy() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-promote-kill.rhai",
        "addr::add(\"uplink\", \"10.78.0.1/24\");\naddr::del(\"uplink\", \"10.78.0.1/24\");\n",
    );
    let r = sandboxed(&format!(
        r#"
        ip addr add 10.78.0.2/24 dev uplink
        # Op 1 adds the address, op 2 is the promote_secondaries write: killed right after it.
        NSLAB_FAULT=kill:2 nslab run {p} > /dev/null 2>&1 && exit 9 || true
        cat /proc/sys/net/ipv4/conf/uplink/promote_secondaries
        nslab destroy ops-promote-kill > /dev/null
        cat /proc/sys/net/ipv4/conf/uplink/promote_secondaries
        ip -4 -o addr show dev uplink | awk '{{print $4}}'
        "#
    ));
    r.ok();
    assert_eq!(r.stdout, "1\n0\n203.0.113.2/24\n10.78.0.2/24\n");
}

/// A veth's next operations merge into its creation request in a run (`set_master` onto a
/// bridge the run made, `up` of either end, `set_netns`): the links end up exactly as the
/// recipe says, tagged as the lab's, and the plan prints the recipe's operations.
const MERGED: &str = r#"bridge::add("mb");
netns::add("m1");
veth::add("mv", "e0", "m1");
link::set_master("mv", "mb");
link::up("mv");
veth::add("mw", "mw-peer");
link::set_netns("mw", "m1");
link::up("m1", "mw");
link::up("mw-peer");
veth::add("mx", "mx-peer");
link::up("mx");
link::set_netns("mx", "m1");
"#;

#[test]
fn merged_veth_requests_end_as_the_recipe_says() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe("ops-merged.rhai", MERGED);
    let r = sandboxed(&format!(
        "nslab run --explain {p} | grep '^+ ip'\nip -d -j link show mv\nip -n m1 -d -j link show mw\nip -d -j link show mw-peer\nip -n m1 -d -j link show mx"
    ));
    r.ok();
    let mut lines = r.stdout.lines();
    for want in [
        "+ ip link add mb type bridge",
        "+ ip netns add m1",
        "+ ip link add mv type veth peer name e0 netns m1",
        "+ ip link set mv master mb",
        "+ ip link set mv up",
        "+ ip link add mw type veth peer name mw-peer",
        "+ ip link set mw netns m1",
        "+ ip -n m1 link set mw up",
        "+ ip link set mw-peer up",
        "+ ip link add mx type veth peer name mx-peer",
        "+ ip link set mx up",
        "+ ip link set mx netns m1",
    ] {
        assert_eq!(lines.next(), Some(want));
    }
    let up = |l: &serde_json::Value| l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
    let mv = &json(lines.next().unwrap())[0];
    assert_eq!(mv["master"].as_str(), Some("mb"));
    assert!(up(mv), "{mv}");
    assert_eq!(mv["ifalias"].as_str(), Some("nslab:ops-merged"));
    let mw = &json(lines.next().unwrap())[0];
    assert!(up(mw) && mw["ifalias"].as_str() == Some("nslab:ops-merged"), "{mw}");
    let peer = &json(lines.next().unwrap())[0];
    assert!(up(peer), "{peer}");
    // Moving a link brings it down: `up` then `set_netns` leaves mx down in m1.
    let mx = &json(lines.next().unwrap())[0];
    assert!(!up(mx), "{mx}");
}

/// What a merged operation would meet is checked at its own line: a `set_master` onto a
/// bridge the run did not make goes the usual way, so its error is that line's.
#[test]
fn a_set_master_that_cannot_merge_fails_at_its_own_line() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-merge-err.rhai",
        "veth::add(\"ma\", \"mb\");\nlink::set_master(\"ma\", \"nobridge\");\nnetns::add(\"later\");\n",
    );
    let r = sandboxed(&format!("nslab run {p}"));
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("ops-merge-err.rhai:2"), "{}", r.stderr);
    assert!(r.stderr.contains("nobridge"), "{}", r.stderr);
    assert!(!r.stderr.contains("held back"), "{}", r.stderr);
}

/// lab(N)'s shape: each host finished before the next. A run holds the hosts' `up`s and
/// their default routes back and brings them up together at the end (the kernel layer's
/// `deferred`); the end state is the recipe's.
const HELD: &str = r#"
bridge::add("hb");
link::up("hb");
addr::add("hb", "10.77.0.1/24");
for i in 1..=3 {
    let h = `hh${i}`;
    netns::add(h);
    veth::add(`hv${i}-br`, `hv${i}`, h);
    link::set_master(`hv${i}-br`, "hb");
    link::up(`hv${i}-br`);
    addr::add(h, `hv${i}`, `10.77.0.${i + 1}/24`);
    link::up(h, `hv${i}`);
    link::up(h, "lo");
    route::add(h, "default", "10.77.0.1");
}
"#;

#[test]
fn held_back_ups_and_routes_end_as_the_recipe_says() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe("ops-held.rhai", HELD);
    let mut script = format!(
        "NSLAB_TIMING=1 nslab run {p} 2>&1 >/dev/null | awk '/[(]held[)]/ {{print $2, $3, $4}}'\n"
    );
    for i in 1..=3 {
        script += &format!(
            "ip -n hh{i} -j link show hv{i}\nip -n hh{i} -j link show lo\nip -n hh{i} -j route show default\n"
        );
    }
    script += "ip netns exec hh1 ping -c1 -W5 10.77.0.4 >/dev/null && echo pinged\n";
    let r = sandboxed(&script);
    r.ok();
    let mut lines = r.stdout.lines();
    // The mechanism is in use: 6 ups and 3 routes went at the end.
    assert_eq!(lines.next(), Some("LinkUp (held) 6"), "{}", r.stdout);
    assert_eq!(lines.next(), Some("RouteAdd (held) 3"), "{}", r.stdout);
    let up = |l: &serde_json::Value| l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
    for i in 1..=3 {
        let dev = &json(lines.next().unwrap())[0];
        assert!(up(dev), "{dev}");
        assert_eq!(dev["ifalias"].as_str(), Some("nslab:ops-held"), "the tag rode along: {dev}");
        let lo = &json(lines.next().unwrap())[0];
        assert!(up(lo), "{lo}");
        let route = &json(lines.next().unwrap())[0];
        assert_eq!(route["gateway"].as_str(), Some("10.77.0.1"), "{route}");
        assert_eq!(route["dev"].as_str(), Some(format!("hv{i}").as_str()), "{route}");
    }
    assert_eq!(lines.next(), Some("pinged"));
}

/// The run holds every new pair back, and the addresses put on its ends, so that lab(N)'s
/// netns are all made first, as in the C floor; a pair or address is made when something
/// needs it. What the kernel would refuse is still refused at its own line: a name a held
/// pair has, the same address twice on a held end. An end moved to another netns loses the
/// addresses held for it, as a moved link does.
#[test]
fn held_back_pairs_and_addresses_end_as_the_recipe_says() {
    if !kernel_tests_possible() {
        return;
    }
    let held = recipe(
        "ops-held-pairs.rhai",
        r#"for i in 1..=3 {
    netns::add(`ph${i}`);
    veth::add(`pv${i}-br`, `pv${i}`, `ph${i}`);
    link::up(`pv${i}-br`);
    addr::add(`ph${i}`, `pv${i}`, `10.81.0.${i}/24`);
    addr::add(`ph${i}`, `pv${i}`, `10.82.0.${i}/24`);
    link::up(`ph${i}`, `pv${i}`);
}
veth::add("pm", "pm-peer");
addr::add("pm", "10.83.0.1/24");
link::set_netns("pm", "ph1");
"#,
    );
    let name = recipe(
        "ops-held-name.rhai",
        "netns::add(\"pn\");\nveth::add(\"pa\", \"pb\", \"pn\");\nveth::add(\"pc\", \"pa\");\n",
    );
    let twice = recipe(
        "ops-held-twice.rhai",
        "netns::add(\"pt\");\nveth::add(\"pd\", \"pe\", \"pt\");\naddr::add(\"pt\", \"pe\", \"10.84.0.1/24\");\naddr::add(\"pt\", \"pe\", \"10.84.0.1/24\");\n",
    );
    let r = sandboxed(&format!(
        "NSLAB_TIMING=1 nslab run {held} 2>&1 >/dev/null | awk '/held back|background/ {{print $2, $3, $4, $5}}'
for i in 1 2 3; do ip -n ph$i -4 -o addr show dev pv$i | awk '{{print $2, $4}}'; done
ip -n ph1 -4 -o addr show dev pm | wc -l
nslab run {name} 2>&1 | tr -s ' \\n' ' '; echo
nslab run {twice} 2>&1 | tr -s ' \\n' ' '; echo
ip netns list | cut -d' ' -f1 | sort | tr '\\n' ' '"
    ));
    r.ok();
    let mut lines = r.stdout.lines();
    // The mechanism is in use: every pair and address went after the last netns, which
    // were made in the background.
    assert_eq!(lines.next(), Some("(address held back) 7"), "{}", r.stdout);
    assert_eq!(lines.next(), Some("(netns in background) 3"), "{}", r.stdout);
    assert_eq!(lines.next(), Some("(veth held back) 4"), "{}", r.stdout);
    for i in 1..=3 {
        assert_eq!(lines.next(), Some(format!("pv{i} 10.81.0.{i}/24").as_str()), "{}", r.stdout);
        assert_eq!(lines.next(), Some(format!("pv{i} 10.82.0.{i}/24").as_str()), "{}", r.stdout);
    }
    assert_eq!(lines.next(), Some("0"), "moved, pm lost its address: {}", r.stdout);
    let name_err = lines.next().unwrap();
    assert!(name_err.contains("ops-held-name.rhai:3"), "{name_err}");
    assert!(name_err.contains("pa already exists in the host"), "{name_err}");
    assert!(!name_err.contains("held back"), "{name_err}");
    let twice_err = lines.next().unwrap();
    assert!(twice_err.contains("ops-held-twice.rhai:4"), "{twice_err}");
    assert!(twice_err.contains("pe in netns pt already has address 10.84.0.1/24"), "{twice_err}");
    assert!(!twice_err.contains("held back"), "{twice_err}");
    assert_eq!(lines.next(), Some("internet ph1 ph2 ph3 "), "the failed runs left nothing");
}

/// A netns the background thread cannot make (here: its identity cannot be recorded, as
/// the lab's `netns` file is a directory) fails the run at a later line, pointing back at
/// its `netns::add`, and the rollback leaves nothing: neither that netns nor the others.
/// (The pair goes into no netns: one into bf2 would fail at its own line whenever the
/// thread is done with bf2 before the recipe gets there.)
#[test]
fn a_netns_the_background_cannot_make_fails_at_its_call() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-bg-fail.rhai",
        "netns::add(\"bf1\");\nnetns::add(\"bf2\");\nveth::add(\"bfa\", \"bfb\");\nlink::up(\"bfa\");\nprint(link::list(\"bf2\").len());\n",
    );
    let r = sandboxed(&format!(
        "mkdir -p /run/nslab/bgfail/netns
T=$(mktemp -d)
if nslab run --lab bgfail {p} > $T/out 2>&1; then echo \"the run succeeded\"; fi
ls /run/netns | tr '\\n' ' '; echo
ip -o link show | grep -c bfa || true
cat $T/out"
    ));
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("internet "), "{}", r.stdout);
    assert_eq!(lines.next(), Some("0"), "{}", r.stdout);
    let err = unwrapped(&lines.collect::<Vec<_>>().join("\n"));
    assert!(err.contains("ip netns add bf1 could not be done: cannot create netns bf1"), "{err}");
    assert!(err.contains("made in the background while the recipe went on"), "{err}");
    // Surfaced by the query at line 5, and pointing back at line 1.
    assert!(err.contains("ops-bg-fail.rhai:5"), "{err}");
    assert!(err.contains("netns::add(\"bf1\")"), "{err}");
    assert!(err.contains("nothing is left behind"), "{err}");

    // A pair into the second one waits for that netns only, yet the error still names the
    // first that could not be made (at the pair's line or at the query's, as the thread's
    // speed has it).
    let p = recipe(
        "ops-bg-fail2.rhai",
        "netns::add(\"bg1\");\nnetns::add(\"bg2\");\nveth::add(\"bga\", \"bgb\", \"bg2\");\nprint(link::list(\"bg2\").len());\n",
    );
    let r = sandboxed(&format!(
        "mkdir -p /run/nslab/bgfail2/netns
if nslab run --lab bgfail2 {p} 2>&1; then echo \"the run succeeded\"; fi
ls /run/netns | tr '\\n' ' '; echo"
    ));
    let err = unwrapped(&r.stdout);
    assert!(err.contains("ip netns add bg1 could not be done: cannot create netns bg1"), "{err}");
    assert!(!err.contains("ip netns add bg2 could not be done"), "{err}");
    assert!(err.contains("nothing is left behind"), "{err}");
    assert!(r.stdout.ends_with("internet \n"), "{}", r.stdout);
}

/// The held veth pairs go into each netns as soon as it is made: when a later netns cannot
/// be made (at either step of the background thread), pairs into the earlier ones are
/// already there. The run fails naming that netns's call, and the rollback leaves nothing.
/// (No pair goes into l3 itself: when the thread fails before the recipe reaches such a
/// pair, that `veth::add` fails at once, which is the second half's case.)
#[test]
fn a_netns_failing_after_pairs_went_into_the_earlier_ones_rolls_all_back() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-bg-late.rhai",
        "bridge::add(\"lbr\");\nfor i in 1..=3 {\n    netns::add(`l${i}`);\n    if i == 3 { continue; }\n    veth::add(`l${i}-br`, `l${i}`, `l${i}`);\n    link::set_master(`l${i}-br`, \"lbr\");\n    link::up(`l${i}-br`);\n}\nprint(link::list().len());\n",
    );
    for step in ["recorded", "mounted"] {
        let r = sandboxed(&format!(
            "T=$(mktemp -d)
if NSLAB_TIMING=1 NSLAB_FAULT=netns:3:{step}:fail nslab run --lab bglate {p} > $T/out 2>&1; then echo \"the run succeeded\"; fi
ls /run/netns | tr '\\n' ' '; echo
ip -o link show | grep -c 'l[0-9]' || true
ls /run/nslab | tr '\\n' ' '; echo
cat $T/out"
        ));
        let mut lines = r.stdout.lines();
        assert_eq!(lines.next(), Some("internet "), "{step}: {}", r.stdout);
        assert_eq!(lines.next(), Some("0"), "{step}: {}", r.stdout);
        assert_eq!(lines.next(), Some(""), "{step}: the lab's journal is left: {}", r.stdout);
        let err = unwrapped(&lines.collect::<Vec<_>>().join("\n"));
        assert!(
            err.contains("ip netns add l3 could not be done: cannot create netns l3"),
            "{step}: {err}"
        );
        assert!(err.contains("made in the background while the recipe went on"), "{step}: {err}");
        assert!(err.contains("netns::add(`l${i}`)"), "{step}: {err}");
        assert!(err.contains("nothing is left behind"), "{step}: {err}");
        // l1's and l2's pairs were made before l3 failed (and rolled back with the rest).
        let held = err.lines().find(|l| l.contains("(veth held back)")).unwrap_or_default();
        assert_eq!(held.split_whitespace().nth(4), Some("2"), "{step}: {err}");
    }
    // The thread fails before the recipe reaches the `veth::add` into that netns (the Rhai
    // loop stands in for a slow machine): the same error, not "netns m1 does not exist".
    let slow = recipe(
        "ops-bg-slow.rhai",
        "netns::add(\"m1\");\nlet n = 0;\nfor x in 0..200000 { n += x; }\nveth::add(\"m1-br\", \"m1\", \"m1\");\n",
    );
    let r = sandboxed(&format!(
        "if NSLAB_FAULT=netns:1:recorded:fail nslab run --lab bgslow {slow} 2>&1; then echo \"the run succeeded\"; fi
ls /run/netns | tr '\\n' ' '; echo"
    ));
    let err = unwrapped(&r.stdout);
    assert!(err.contains("ip netns add m1 could not be done: cannot create netns m1"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
    assert!(err.contains("ops-bg-slow.rhai:4"), "{err}");
    assert!(err.contains("nothing is left behind"), "{err}");
    assert!(r.stdout.ends_with("internet \n"), "{}", r.stdout);
}

/// Whatever looks sees what the lines before it did: a query, an `exec`.
#[test]
fn what_is_held_back_is_there_before_anything_looks() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-held-look.rhai",
        r#"
netns::add("q1");
veth::add("qa", "qb", "q1");
link::up("qa");
addr::add("q1", "qb", "10.78.0.2/24");
link::up("q1", "qb");
let qb = link::list("q1").filter(|l| l.name == "qb")[0];
assert(qb.state == "up", `qb is ${qb.state}`);
route::add("q1", "default", "10.78.0.1");
let r = netns::exec("q1", "ip -o route show default");
assert(r.stdout.contains("via 10.78.0.1 dev qb"), r.stdout);
netns::add("q2");
veth::add("qc", "qd", "q2");
addr::add("q2", "qd", "10.79.0.2/24");
link::up("q2", "qd");
route::add("q2", "default", "10.79.0.1");
let r = host::exec("ip -n q2 -o route show default");
assert(r.stdout.contains("via 10.79.0.1 dev qd"), r.stdout);
"#,
    );
    sandboxed(&format!("nslab run {p}")).ok();
}

/// Only what cannot fail is held back: a route the kernel refuses fails at its own line, in
/// a `try` around it too, and a second default route meets the first one there.
#[test]
fn a_route_the_kernel_refuses_fails_at_its_own_line() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-held-err.rhai",
        r#"netns::add("r1");
veth::add("ra", "rb", "r1");
addr::add("r1", "rb", "10.79.0.2/24");
link::up("r1", "rb");
let caught = false;
try { route::add("r1", "default", "10.80.0.1"); } catch { caught = true; }
assert(caught, "an unreachable gateway is refused in the try");
route::add("r1", "default", "10.79.0.1");
netns::add("r2");
route::add("r1", "default", "10.79.0.9");
"#,
    );
    let r = sandboxed(&format!("nslab run {p}"));
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("ops-held-err.rhai:10"), "{}", r.stderr);
    assert!(r.stderr.contains("netns r1 already has a route default"), "{}", r.stderr);
    assert!(!r.stderr.contains("held back"), "{}", r.stderr);
}

/// Should the kernel refuse a held-back `up` after all (here the link is deleted behind the
/// run's back), the error names the call and says it was held back, and the run rolls back.
#[test]
fn a_held_back_up_the_kernel_refuses_names_its_call_and_rolls_back() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-held-late.rhai",
        r#"netns::add("l1");
veth::add("la", "lb", "l1");
netns::exec("l1", ["sh", "-c", "(sleep 0.3; ip link del lb) &"]);
link::up("l1", "lb");
let t = timestamp();
while t.elapsed < 2.0 {}
"#,
    );
    let r = sandboxed(&format!(
        "nslab run {p} || echo status=$?\nip netns list | cut -d' ' -f1 | tr '\\n' ' '\nip -o link show | grep -c la || true"
    ));
    // (miette wraps the line after "to bring".)
    assert!(
        r.stderr.contains(
            "link::up(\"l1\", \"lb\") could not be done: no link lb in netns l1 (held back until now, to bring"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("the lab's hosts up together)"), "{}", r.stderr);
    // It surfaced after the last line: shown at the call it belongs to.
    assert!(r.stderr.contains("[target/test-recipes/ops-held-late.rhai:4:1]"), "{}", r.stderr);
    assert!(r.stderr.contains("╰── held back from here"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing is left behind"), "{}", r.stderr);
    assert_eq!(r.stdout, "status=1\ninternet 0\n", "nothing of the lab is left");
}

/// A held-back call's error that surfaces at a later line (here a query) is reported at
/// that line, and points back at the call it belongs to.
#[test]
fn a_late_error_points_back_at_the_call_it_belongs_to() {
    if !kernel_tests_possible() {
        return;
    }
    let p = recipe(
        "ops-held-late-query.rhai",
        r#"netns::add("l1");
veth::add("la", "lb", "l1");
netns::exec("l1", ["sh", "-c", "(sleep 0.3; ip link del lb) &"]);
link::up("l1", "lb");
let t = timestamp();
while t.elapsed < 1.0 {}
let n = link::list("l1").len();
"#,
    );
    let r = sandboxed(&format!("nslab run {p}"));
    assert_ne!(r.status, 0);
    let at = |line: &str| r.stderr.find(line).unwrap_or_else(|| panic!("{line}: {}", r.stderr));
    let here = at("[target/test-recipes/ops-held-late-query.rhai:7:9]");
    let failed = at("╰── this call failed");
    let advice = at("☞ held back from here");
    let back = at("[target/test-recipes/ops-held-late-query.rhai:4:1]");
    let belongs = at("╰── the call it belongs to");
    assert!(here < failed && failed < advice && advice < back && back < belongs, "{}", r.stderr);
}
