//! `nslab plan` and `nslab run --explain`: the printed commands build the same lab as `nslab
//! run` does. Proof: for every recipe in scripts/, the planned bash script runs in one fresh
//! sandbox and `nslab run` in another, and the kernel state of both (seen with `ip -j` and
//! `iptables -S`, normalised) must be the same.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::{self, kernel_tests_possible, nslab, recipe, sandboxed, snapshot};

/// Dumps the network state of the sandbox root and every named netns, section by section.
/// `$EXTRA_KEYS` adds sysctls to read. Used on both sides of the comparison.
const STATE_DUMP: &str = r####"
dump_state() {
    local ns
    for ns in "" $(ip netns list | awk '{print $1}' | sort); do
        local n=() x=()
        if [ -n "$ns" ]; then n=(-n "$ns"); x=(ip netns exec "$ns"); fi
        echo "### ns ${ns:-host}"
        echo "## link";   ip "${n[@]}" -d -j link show
        echo "## addr";   ip "${n[@]}" -j addr show
        echo "## route4"; ip "${n[@]}" -j -4 route show table all
        echo "## route6"; ip "${n[@]}" -j -6 route show table all
        echo "## rule4";  ip "${n[@]}" -j -4 rule
        echo "## rule6";  ip "${n[@]}" -j -6 rule
        echo "## sysctl"; "${x[@]}" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding $EXTRA_KEYS 2>/dev/null || true
        echo "## nat";    "${x[@]}" iptables -t nat -S
        echo "## filter"; "${x[@]}" iptables -t filter -S
        echo "## tc";     tc "${n[@]}" -j qdisc show
    done
}
"####;

fn scripts() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(common::root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| p.strip_prefix(common::root()).unwrap().display().to_string())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no recipes in scripts/");
    v
}

/// Every recipe this kernel can run (`common::kernel_runs`) as it is, and the tutorial with
/// `--no-ipv6` (its sysctl writes are printed too). The flag (or "") is an argument of both
/// `plan` and `run`.
fn cases() -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &str)> =
        scripts().into_iter().filter(|s| common::kernel_runs(s)).map(|s| (s, "")).collect();
    v.push(("scripts/tutorial.rhai".into(), "--no-ipv6"));
    v
}

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().filter(|a| !a.is_empty()).collect()
}

fn str_of(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One line per link: what a recipe sets, none of what the kernel picks (ifindex, MAC,
/// carrier timing) nor the owner tags a plan does not render (alias, group).
fn norm_links(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
            // The settings of the link kinds `link::add` makes (`ip -d link`).
            let data = &l["linkinfo"]["info_data"];
            let detail: String = ["id", "port", "remote", "local", "group", "mode"]
                .iter()
                .filter(|k| !data[**k].is_null())
                .map(|k| format!(" {k}={}", str_of(data, k)))
                .collect();
            format!(
                "{} kind={} up={up} mtu={} master={} peer={}{detail}",
                str_of(l, "ifname"),
                l["linkinfo"]["info_kind"].as_str().unwrap_or("-"),
                str_of(l, "mtu"),
                str_of(l, "master"),
                str_of(l, "link"),
            )
        })
        .collect();
    v.sort();
    v
}

/// Addresses without the link-local IPv6 ones the kernel invents.
fn norm_addrs(j: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for l in j.as_array().unwrap() {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            if a["scope"] == "link" && str_of(a, "local").starts_with("fe80:") {
                continue;
            }
            v.push(format!(
                "{} {} {}/{} brd={} scope={}",
                str_of(l, "ifname"),
                str_of(a, "family"),
                str_of(a, "local"),
                str_of(a, "prefixlen"),
                str_of(a, "broadcast"),
                str_of(a, "scope")
            ));
        }
    }
    v.sort();
    v
}

fn norm_routes(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !str_of(r, "dst").starts_with("fe80::") && !str_of(r, "dst").starts_with("ff00::")
        })
        .map(|r| {
            format!(
                "{} {} table={} via={} dev={} proto={} scope={} src={} metric={} nexthops={}",
                str_of(r, "type"),
                str_of(r, "dst"),
                str_of(r, "table"),
                str_of(r, "gateway"),
                str_of(r, "dev"),
                str_of(r, "protocol"),
                str_of(r, "scope"),
                str_of(r, "prefsrc"),
                str_of(r, "metric"),
                str_of(r, "nexthops"),
            )
        })
        .collect();
    v.sort();
    v
}

/// Qdiscs without what the kernel picks (handle numbers, reference counts).
fn norm_qdiscs(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            format!(
                "{} {} root={} {}",
                str_of(q, "dev"),
                str_of(q, "kind"),
                str_of(q, "root"),
                q["options"]
            )
        })
        .collect();
    v.sort();
    v
}

/// The dump as `ns -> section -> normalised lines`, rendered for a readable diff.
fn normalise(dump: &str) -> String {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut ns = String::new();
    let mut section = String::new();
    let mut body: Vec<&str> = Vec::new();
    let mut flush = |ns: &str, section: &str, body: &mut Vec<&str>| {
        if section.is_empty() {
            return;
        }
        let text = body.join("\n");
        let lines = match section {
            "link" => norm_links(&common::json(&text)),
            "addr" => norm_addrs(&common::json(&text)),
            "route4" | "route6" => norm_routes(&common::json(&text)),
            "rule4" | "rule6" => common::json(&text)
                .as_array()
                .unwrap()
                .iter()
                .map(|r| serde_json::to_string(r).unwrap())
                .collect(),
            "tc" => norm_qdiscs(&common::json(&text)),
            _ => body.iter().map(|s| s.to_string()).collect(),
        };
        out.entry(ns.to_string()).or_default().insert(section.to_string(), lines);
        body.clear();
    };
    for line in dump.lines() {
        if let Some(n) = line.strip_prefix("### ns ") {
            flush(&ns, &section, &mut body);
            ns = n.to_string();
            section.clear();
        } else if let Some(s) = line.strip_prefix("## ") {
            flush(&ns, &section, &mut body);
            section = s.to_string();
        } else {
            body.push(line);
        }
    }
    flush(&ns, &section, &mut body);
    let mut s = String::new();
    for (ns, sections) in out {
        for (sec, lines) in sections {
            for l in lines {
                s += &format!("{ns} {sec}: {l}\n");
            }
        }
    }
    s
}

/// Sysctl keys a plan sets (`sysctl -qw KEY=VALUE`), so both sides read them back.
fn sysctl_keys(plan: &str) -> String {
    let mut keys: Vec<&str> = plan
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "-qw")
        .filter_map(|w| w[1].split_once('=').map(|(k, _)| k))
        .collect();
    keys.sort();
    keys.dedup();
    keys.join(" ")
}

fn plan_file(name: &str, text: &str) -> PathBuf {
    let dir = common::root().join("target").join("test-plans");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Issue 5's "done when", for every recipe: the planned script, run by bash on a fresh
/// (sandboxed) host, builds the same lab as `nslab run`.
#[test]
fn every_plan_builds_what_run_builds() {
    if !kernel_tests_possible() {
        return;
    }
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = cases()
            .into_iter()
            .map(|(script, flag)| {
                s.spawn(move || {
                    let plan = nslab(&args(&["plan", flag, &script]));
                    plan.ok();
                    let stem = std::path::Path::new(&script).file_stem().unwrap().to_string_lossy().to_string();
                    // A plan never prints a private key (`'<private key>'`); the replay takes a
                    // fresh one. The tunnel then has other keys, which the state dump omits.
                    let replay = plan.stdout.replace("'<private key>'", "<(wg genkey)");
                    let file = plan_file(&format!("{stem}{flag}.sh"), &replay);
                    let keys = sysctl_keys(&plan.stdout);
                    let by_bash = sandboxed(&format!(
                        "{STATE_DUMP}\nEXTRA_KEYS='{keys}'\nbash {} >&2\ndump_state",
                        common::shq(&file)
                    ));
                    if by_bash.status != 0 {
                        return Err(format!(
                            "{script}: the planned script failed in a sandbox\n{}\n--- stderr:\n{}",
                            plan.stdout, by_bash.stderr
                        ));
                    }
                    let by_run = sandboxed(&format!("{STATE_DUMP}\nEXTRA_KEYS='{keys}'\nnslab run {flag} {script} >&2\ndump_state"));
                    if by_run.status != 0 {
                        return Err(format!("{script}: nslab run failed\n{}", by_run.stderr));
                    }
                    let (a, b) = (normalise(&by_bash.stdout), normalise(&by_run.stdout));
                    if !a.contains("host link: lo ") || !a.contains("host nat:") || a.lines().count() < 10 {
                        return Err(format!("{script}: the state dump looks empty:\n{a}"));
                    }
                    if a != b {
                        let only_plan: Vec<&str> = a.lines().filter(|l| !b.lines().any(|x| x == *l)).collect();
                        let only_run: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
                        return Err(format!(
                            "{script} {flag}: the planned script and nslab run built different labs\nonly from the plan:\n  {}\nonly from run:\n  {}",
                            only_plan.join("\n  "),
                            only_run.join("\n  ")
                        ));
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

/// Every recipe plans to the end with its asserts holding in the model, whatever this
/// kernel has: a plan needs no kernel, and `run::every_script_passes_in_a_sandbox` proves the
/// same asserts hold in the kernel (here, or on the second kernel for what this one lacks).
#[test]
fn every_recipe_plans_with_its_asserts_holding() {
    for script in scripts() {
        let plan = nslab(&["plan", &script]);
        plan.ok();
        assert!(plan.stdout.contains("# ok: "), "{script} verified nothing:\n{}", plan.stdout);
    }
}

/// The commands `--explain` prints as a lab is built are the plan's commands, in order.
#[test]
fn explain_prints_the_plans_commands_as_they_run() {
    if !kernel_tests_possible() {
        return;
    }
    for (script, flag) in cases() {
        let plan = nslab(&args(&["plan", flag, &script]));
        plan.ok();
        let run = nslab(&args(&["run", "--sandbox", "--explain", flag, &script]));
        run.ok();
        // A recipe that makes keys (wireguard::keypair) gets new ones each time: a public
        // key (44 characters of base64) reads as <key> on both sides.
        let keyless = |l: &str| -> String {
            l.split(' ')
                .map(|w| if w.len() == 44 && w.ends_with('=') { "<key>" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let explained: Vec<String> =
            run.stdout.lines().filter_map(|l| l.strip_prefix("+ ")).map(keyless).collect();
        // The plan also prints probes: pings as commands, the rest as comments.
        let planned: Vec<String> = plan
            .stdout
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains("ping -c") && *l != "set -e")
            .map(keyless)
            .collect();
        assert_eq!(explained, planned, "{script} {flag}: --explain and plan disagree");
        assert!(!explained.is_empty());
    }
}

/// A plan needs no root and changes nothing: run as `nobody` inside a sandbox, it leaves the
/// sandbox exactly as it was, and no journal.
#[test]
fn plan_needs_no_root_and_touches_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    // Without any capability (as uid 65534 when the tests run as root; in a rootless
    // sandbox, uid 0 of its user namespace with every capability dropped), from a copy
    // anyone can read: the checkout may be in a directory 65534 cannot enter.
    let public = crate::common::public_copy().display().to_string();
    let drop = if crate::common::is_root() {
        "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all"
    } else {
        "setpriv --inh-caps=-all --bounding-set=-all"
    };
    let r = sandboxed(&format!(
        r#"{STATE_DUMP}
        dump_state
        echo "@@@@"
        P=$(mktemp); trap 'rm -f $P' EXIT; chmod 666 $P
        (cd '{public}' && {drop} -- env -u NSLAB_SANDBOX ./nslab plan scripts/tutorial.rhai > $P)
        dump_state
        echo "@@@@"
        ls -A /run/nslab /run/netns
        echo "@@@@"
        head -2 $P
        "#
    ));
    r.ok();
    let parts: Vec<&str> = r.stdout.split("@@@@\n").collect();
    assert_eq!(parts.len(), 4, "{}", r.stdout);
    assert_eq!(normalise(parts[0]), normalise(parts[1]), "the plan changed the sandbox");
    assert_eq!(parts[2], "/run/netns:\ninternet\n\n/run/nslab:\n", "the plan left files behind");
    assert_eq!(parts[3], "#!/usr/bin/env bash\nset -e\n");
}

const PLAN_RECIPE: &str = r#"//! A small lab for the plan snapshot: every kind of Op, a probe of each kind, an exec.

// the hosts
param hosts = ["a", "b"];
// their subnet
param subnet = "10.7.0.0/24";

print("== switch");
bridge::add("br7");
link::up("br7");
addr::add("br7", cidr::host(subnet, 1));
for (h, i) in hosts {
    netns::add(h);
    veth::add(`v-${h}`, "eth0", h);
    link::set_master(`v-${h}`, "br7");
    link::up(`v-${h}`);
    link::up(h, "eth0");
    addr::add(h, "eth0", cidr::host(subnet, 10 + i));
    addr::add(h, "eth0", `fd07::${10 + i}/64`);
    route::add(h, "default", cidr::addr(cidr::host(subnet, 1)));
}
sysctl::ip_forward(true);
sysctl::set(hosts[0], "net.ipv4.conf.all.rp_filter", 0);
nat::masquerade(subnet, #{out: "uplink"});
nat::port_forward(8080, "10.7.0.10:80");
print("== checks");
assert(probe::ping(hosts[0], "10.7.0.11").ok);
assert(probe::ping(hosts[0], "10.7.0.1", #{count: 2}).ok);
probe::serve(hosts[1], 80);
let r = probe::tcp(hosts[0], "10.7.0.11:80");
assert(r.seen == "10.7.0.10", `seen ${r.seen}`);
netns::exec(hosts[0], "ip -br addr");
assert(bridge::ports("br7").len() == 2);
assert(neigh::list(hosts[0]).len() > 0);
assert(nat::list().len() == 3);
assert(sysctl::get("net.ipv4.ip_forward") == "1");
assert(link::list(hosts[0]).len() == 2);
link::del("v-b");
assert(link::list("b").len() == 1, "the peer went with it");
"#;

#[test]
fn plan_output_snapshot() {
    let path = recipe("plan-snap.rhai", PLAN_RECIPE);
    let r = nslab(&["plan", &path, "--set", "subnet=10.7.0.0/24"]);
    r.ok();
    snapshot("plan-snap.sh", &r.stdout);
    // Nothing of the recipe's prints leaks outside comments; the script parses.
    let check = std::process::Command::new("bash").args(["-n", "-c", &r.stdout]).status().unwrap();
    assert!(check.success());
}

/// Recipes the kernel refuses, and the words it refuses them with (`nslab run`'s).
const REFUSED: &[(&str, &str)] = &[
    ("netns::add(\"red\");\nnetns::add(\"red\");", "netns red already exists"),
    ("netns::add(\"red\");\nlink::up(\"red\", \"eth9\");", "no link eth9 in netns red"),
    ("link::up(\"nope\", \"lo\");", "netns nope does not exist"),
    ("veth::add(\"a\", \"b\");\nlink::set_master(\"a\", \"br0\");", "no bridge br0 in the host"),
    ("veth::add(\"a\", \"b\");\nveth::add(\"a\", \"c\");", "link a already exists in the host"),
    ("veth::add(\"a\", \"b\");\nlink::set_master(\"a\", \"b\");", "b is not a bridge"),
    (
        "netns::add(\"red\");\nbridge::add(\"br0\");\nlink::set_netns(\"br0\", \"red\");",
        "cannot move br0 to netns red: the kernel keeps bridges and lo in the netns",
    ),
    ("link::del(\"lo\");", "link lo in the host was not created by lab"),
    ("netns::add(\"red\");\naddr::del(\"red\", \"lo\", \"10.0.0.1/24\");", "has no address"),
    (
        "netns::add(\"r\");\naddr::add(\"r\", \"lo\", \"10.0.0.1/8\");\naddr::add(\"r\", \"lo\", \"10.0.0.1/8\");",
        "already has address",
    ),
    (
        "netns::add(\"red\");\nroute::add(\"red\", \"default\", \"10.0.0.1\");",
        "gateway 10.0.0.1 is unreachable",
    ),
    (
        "netns::add(\"red\");\nroute::add(\"red\", \"10.1.0.0/16\", \"dev:lo\");",
        "lo in netns red is down",
    ),
    (
        "netns::add(\"red\");\nroute::del(\"red\", \"default\", \"10.0.0.1\");",
        "netns red has no route default",
    ),
    (
        "sysctl::set(\"net.ipv4.conf.nope.forwarding\", 1);",
        "no sysctl net.ipv4.conf.nope.forwarding",
    ),
    ("netns::del(\"red\");", "netns red does not exist"),
    (
        "netns::add(\"red\");\nprobe::serve(\"red\", 80);\nprobe::serve(\"red\", 80);",
        "port 80 is already in use",
    ),
    (
        "netns::add(\"red\");\nveth::add(\"v\", \"v\", \"red\");\nlink::set_netns(\"v\", \"red\");",
        "netns red already has a link named v",
    ),
    ("veth::add(\"a\", \"b\");\nbridge::fdb(\"a\");", "a is a veth link, not a bridge"),
    ("bridge::add(\"br0\");\nlink::set_master(\"lo\", \"br0\");", "lo cannot join a bridge"),
    ("veth::add(\"x\", \"x\");", "a veth's two ends cannot both be named x in one netns"),
    ("netns::add(\"red\");\nprobe::serve(\"red\", 70000);", "port 70000 is out of range"),
    (
        "netns::add(\"red\");\nprobe::ping(\"red\", \"10.0.0.1\", #{count: 20000});",
        "option `count` is at most 10000",
    ),
    ("bridge::add(\"all\");", "`all` and `default` are the names of the sysctl sets"),
    (
        "bridge::add(\"linux-bridge\");\nveth::add(\"a\", \"b\");\nlink::set_master(\"a\", \"linux-brige\");",
        "did you mean linux-bridge?",
    ),
    (
        "nat::masquerade(\"10.8.0.0/24\");\nnat::masquerade(\"10.8.0.0/24\");",
        "the nat table in the host already has this rule in POSTROUTING",
    ),
    (
        "netns::add(\"red\");\nroute::add(\"red\", \"default\", \"fe80::1\");",
        "gateway fe80::1 is link-local: the route needs its link",
    ),
    (
        "bridge::add(\"br0\");\nbridge::add(\"br1\");\nlink::set_master(\"br1\", \"br0\");",
        "cannot plug bridge br1 into bridge br0: bridges do not nest",
    ),
    // Ownership: run refuses changes to what the lab did not create; so does the plan.
    ("link::down(\"lo\");", "link lo in the host was not created by lab"),
    (
        "addr::del(\"lo\", \"127.0.0.1/8\");",
        "address 127.0.0.1/8 on lo in the host was not created by lab",
    ),
    (
        "route::del(\"default\", \"203.0.113.1\");",
        "route default in the host was not created by lab",
    ),
    (
        "netns::add(\"h\");\nveth::add(\"va\", \"b\", \"h\");\nlink::up(\"h\", \"b\");\naddr::add(\"h\", \"b\", \"10.5.0.2/24\");\nroute::add(\"h\", \"default\", \"10.5.0.1\");\nroute::add(\"h\", \"0.0.0.0/0\", \"10.5.0.1\");",
        "netns h already has a route 0.0.0.0/0",
    ),
    (
        "netns::add(\"h\");\nroute::add(\"h\", \"10.6.0.0/16\", \"fd00::1\");",
        "gateway fd00::1 is IPv6 but the destination 10.6.0.0/16 is IPv4",
    ),
    ("nat::masquerade(\"fd00::/64\");", "masquerading IPv6 subnets (fd00::/64) is not supported"),
    ("netns::add(\"h\");\nprobe::ping(\"h\", \"fe80::1%nope\");", "no link nope in netns h"),
    (
        "sysctl::set(\"net.ipv4.ip_forward\", \"banana\");",
        "the kernel rejected the value \"banana\" for net.ipv4.ip_forward",
    ),
    (
        "sysctl::set(\"net.ipv4.ip_forward\", \"1;echo PWNED>&2\");",
        "the kernel rejected the value \"1;echo PWNED>&2\" for net.ipv4.ip_forward",
    ),
    // Down drops every IPv6 address of a link, nodad ones too; up brings none back.
    (
        "netns::add(\"h\");\nveth::add(\"va\", \"b\", \"h\");\naddr::add(\"h\", \"b\", \"fd00::1/64\");\nlink::up(\"h\", \"b\");\nlink::down(\"h\", \"b\");\nlink::up(\"h\", \"b\");\naddr::del(\"h\", \"b\", \"fd00::1/64\");",
        "b in netns h has no address fd00::1/64",
    ),
];

/// A plan fails where `nslab run` fails, at the same line, with the same words, and prints no
/// half a script.
#[test]
fn plan_fails_where_run_fails_with_the_same_words() {
    let kernel = kernel_tests_possible();
    let headline = |s: &str| s.lines().find(|l| l.contains('×')).unwrap_or("").trim().to_string();
    for (i, (text, words)) in REFUSED.iter().enumerate() {
        let path = recipe(&format!("plan-refused-{i}.rhai"), &format!("{text}\n"));
        let r = nslab(&["plan", &path]);
        r.failed();
        assert!(r.stdout.is_empty(), "a failed plan prints no script:\n{}", r.stdout);
        assert!(r.stderr.contains(words), "{text}\n{}", r.stderr);
        let line = text.lines().count();
        assert!(
            r.stderr.contains(&format!("plan-refused-{i}.rhai:{line}:")),
            "{text}\n{}",
            r.stderr
        );
        if kernel {
            let run = nslab(&["run", "--sandbox", &path]);
            run.failed();
            assert_eq!(headline(&r.stderr), headline(&run.stderr), "{text}");
        }
    }
    let path = recipe("plan-param.rhai", "param n = 1;\n");
    let r = nslab(&["plan", &path, "--set", "m=2"]);
    r.failed();
    assert!(r.stderr.contains("unknown param `m`"), "{}", r.stderr);
}

/// Queries answered from the plan's model read like the kernel's answers: the same recipe
/// prints the same under `nslab run` and `nslab plan` (both in a sandbox, so the plan knows
/// the sandbox's uplink), apart from what the kernel picks (MACs, ifindexes, link-local
/// IPv6).
// `oper` is left out: the kernel derives it asynchronously (linkwatch), so a bridge reads
// "unknown" or "up" depending on timing.
const QUERY_RECIPE: &str = r#"fn strip(v) { v.map(|m| { let x = m; x.remove("mac"); x.remove("index"); x.remove("peer_index"); x.remove("oper"); x }) }
bridge::add("br0");
link::up("br0");
netns::add("red");
link::up("red", "lo");
veth::add("v-red", "v-red-br");
link::set_netns("v-red", "red");
link::set_master("v-red-br", "br0");
addr::add("br0", "10.0.0.1/24");
addr::add("red", "v-red", "10.0.0.10/24");
addr::add("red", "v-red", "fd00::10/64");
link::up("red", "v-red");
link::up("v-red-br");
route::add("red", "default", "10.0.0.1");
route::add("red", "10.9.0.0/16", "dev:v-red");
route::add("red", "default", "fd00::1");
sysctl::ip_forward(true);
nat::masquerade("10.0.0.0/24");
nat::port_forward(8080, "10.0.0.10:80");
nat::masquerade("10.0.0.0/24", #{out: "uplink"});
nat::port_forward(8081, "10.0.0.10:81", #{proto: "udp", iface: "uplink"});
print(probe::ping("red", "10.0.0.1").ok);
print(`L ${strip(link::list())}`);
print(`L ${strip(link::list("red"))}`);
print(`A ${addr::list().filter(|a| !a.cidr.starts_with("fe80"))}`);
print(`A ${addr::list("red").filter(|a| !a.cidr.starts_with("fe80"))}`);
print(`R ${route::list().filter(|a| !a.dest.starts_with("fe80"))}`);
print(`R ${route::list("red").filter(|a| !a.dest.starts_with("fe80"))}`);
print(`N ${nat::list()}`);
print(`P ${strip(bridge::ports("br0"))}`);
print(`S ${sysctl::get("net.ipv4.ip_forward")} ${sysctl::get("red", "net.ipv4.ip_forward")} ${sysctl::get("red", "net.ipv4.conf.all.rp_filter")}`);
print(`X ${netns::list()} ${netns::exists("red")}`);
print(`NB ${neigh::list("red").map(|n| n.ip)}`);
"#;

#[test]
fn plan_queries_answer_like_the_kernel() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("plan-queries.rhai", QUERY_RECIPE);
    let run = nslab(&["run", "--sandbox", &path]);
    run.ok();
    let plan = sandboxed(&format!("nslab plan {path}"));
    plan.ok();
    let printed: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with("nslab plan ") && !l.starts_with("params:"))
        .collect();
    let ran: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("lab ")).collect();
    assert_eq!(printed, ran);
}

/// A VLAN on a VLAN (QinQ) is a path the plan model does not follow: its probes answer
/// `()` (the plan cannot tell), never a confident "no path". Without the stacked tag the
/// same lab pings.
#[test]
fn a_probe_over_a_vlan_on_a_vlan_is_unknown_in_a_plan() {
    let lab = |stacked: bool| {
        let (a, b) = if stacked { ("vva", "vvb") } else { ("va", "vb") };
        format!(
            r#"netns::add("b");
veth::add("ea", "eb", "b");
link::up("ea");
link::up("b", "eb");
link::add("va", "vlan", #{{parent: "ea", id: 10}});
link::add("b", "vb", "vlan", #{{parent: "eb", id: 10}});
link::up("va");
link::up("b", "vb");
link::add("vva", "vlan", #{{parent: "va", id: 20}});
link::add("b", "vvb", "vlan", #{{parent: "vb", id: 20}});
link::up("vva");
link::up("b", "vvb");
addr::add("{a}", "10.9.0.1/24");
addr::add("b", "{b}", "10.9.0.2/24");
let p = probe::ping("b", "10.9.0.1");
print(`PING ${{if p == () {{ "unknown" }} else {{ p.ok }}}}`);
let t = probe::tcp("b", "10.9.0.1:80");
print(`TCP ${{if t == () {{ "unknown" }} else {{ t.ok }}}}`);
"#
        )
    };
    let plan = nslab(&["plan", &recipe("plan-qinq.rhai", &lab(true))]);
    plan.ok();
    assert!(plan.stdout.contains("# PING unknown\n"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# TCP unknown\n"), "{}", plan.stdout);
    let plan = nslab(&["plan", &recipe("plan-vlan.rhai", &lab(false))]);
    plan.ok();
    assert!(plan.stdout.contains("# PING true\n"), "{}", plan.stdout);
}

/// Plans `text` (with `flags`), runs the printed script with bash in one sandbox and `nslab
/// run` in another, and returns (plan, bash's stderr) after checking both built the same.
fn plan_and_run_agree(name: &str, text: &str, flags: &[&str], keys: &str) -> (String, String) {
    let path = recipe(name, text);
    let mut a = vec!["plan", &path];
    a.extend(flags);
    let plan = nslab(&a);
    plan.ok();
    let file = plan_file(&format!("{name}.sh"), &plan.stdout);
    let by_bash = sandboxed(&format!(
        "{STATE_DUMP}\nEXTRA_KEYS='{keys}'\nbash {} >&2\ndump_state",
        common::shq(&file)
    ));
    assert_eq!(by_bash.status, 0, "{}\n--- stderr:\n{}", plan.stdout, by_bash.stderr);
    let by_run = sandboxed(&format!(
        "{STATE_DUMP}\nEXTRA_KEYS='{keys}'\nnslab run {} {path} >&2\ndump_state",
        flags.join(" ")
    ));
    assert_eq!(by_run.status, 0, "{}", by_run.stderr);
    let (x, y) = (normalise(&by_bash.stdout), normalise(&by_run.stdout));
    assert_eq!(x, y, "{name}: the planned script and nslab run built different labs");
    (plan.stdout, by_bash.stderr)
}

/// Names and values a shell would run or split are quoted in the plan (and `--explain`):
/// the printed script runs nothing of them and builds what `nslab run` builds.
const HOSTILE_RECIPE: &str = r#"param note = "x";
bridge::add("b$(id>&2)");
bridge::add("b`id>&2`;x");
bridge::add("b'q\"|x");
link::up("b$(id>&2)");
netns::add("h");
veth::add("v$(id>&2)", "p>&2;id", "h");
link::set_master("v$(id>&2)", "b$(id>&2)");
link::up("v$(id>&2)");
link::up("h", "p>&2;id");
addr::add("h", "p>&2;id", "10.8.0.2/24");
addr::add("b$(id>&2)", "10.8.0.1/24");
route::add("h", "default", "10.8.0.1");
route::add("h", "10.9.0.0/16", "dev:p>&2;id");
sysctl::set("net.ipv4.ping_group_range", "0 0");
nat::masquerade("10.8.0.0/24", #{out: "b$(id>&2)"});
print(`done ${note}\nid >&2`);
netns::exec("h", "echo $(id)");
"#;

#[test]
fn hostile_names_and_values_are_quoted() {
    let path = recipe("plan-hostile.rhai", HOSTILE_RECIPE);
    let plan = nslab(&["plan", &path, "--set", "note=a\nid >&2"]);
    plan.ok();
    assert!(plan.stdout.contains("ip link add 'b$(id>&2)' type bridge\n"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("sysctl -qw 'net.ipv4.ping_group_range=0 0'\n"),
        "{}",
        plan.stdout
    );
    // Every line that is not a comment is a command the recipe asked for.
    for l in plan.stdout.lines() {
        assert!(!l.starts_with("id"), "a newline escaped a comment: {l:?}\n{}", plan.stdout);
    }
    if !kernel_tests_possible() {
        return;
    }
    let (_, stderr) =
        plan_and_run_agree("plan-hostile.rhai", HOSTILE_RECIPE, &[], "net.ipv4.ping_group_range");
    assert!(!stderr.contains("uid="), "the plan ran a command hidden in a name:\n{stderr}");
    // --explain prints the same quoted lines.
    let run = nslab(&["run", "--sandbox", "--explain", &path]);
    run.ok();
    assert!(run.stdout.contains("+ ip link add 'b$(id>&2)' type bridge\n"), "{}", run.stdout);
}

/// What `nslab run` accepts the plan accepts too, and the script builds the same.
const AGREED: &[&str] = &[
    // Moving a link into the netns it is in changes nothing.
    "netns::add(\"red\");\nveth::add(\"v\", \"w\", \"red\");\nlink::set_netns(\"red\", \"w\", \"red\");",
    // A gateway that is the netns's own address.
    "netns::add(\"h\");\nveth::add(\"va\", \"eth0\", \"h\");\nlink::up(\"h\", \"eth0\");\naddr::add(\"h\", \"eth0\", \"10.5.0.2/24\");\nroute::add(\"h\", \"default\", \"10.5.0.2\");",
    // A default route straight out of a link (IPv4, as `ip route` makes it).
    "netns::add(\"h\");\nveth::add(\"va\", \"eth0\", \"h\");\nlink::up(\"h\", \"eth0\");\nroute::add(\"h\", \"default\", \"dev:eth0\");",
    // Names `ip link` would read as its keywords (`a` as `address`, `up`, `he` as `help`):
    // the plan writes `name`/`dev` before them.
    // A dotted link name in a sysctl key (`/` for `.`), and a ping out of a named link.
    "bridge::add(\"br.10\");\nsysctl::set(\"net.ipv4.conf.br/10.forwarding\", \"1\");\nnetns::add(\"red\");\nveth::add(\"v1\", \"v2\", \"red\");\naddr::add(\"v1\", \"10.44.0.1/24\");\nlink::up(\"v1\");\naddr::add(\"red\", \"v2\", \"10.44.0.2/24\");\nlink::up(\"red\", \"v2\");\nassert(probe::ping(\"red\", \"10.44.0.1%v2\").ok);",
    "bridge::add(\"br\");\nveth::add(\"a\", \"up\");\nlink::set_master(\"a\", \"br\");\nlink::up(\"up\");\nlink::up(\"a\");\nnetns::add(\"m\");\nveth::add(\"he\", \"t\", \"m\");\nlink::del(\"he\");",
];

#[test]
fn plan_succeeds_where_run_succeeds() {
    for (i, text) in AGREED.iter().enumerate() {
        let path = recipe(&format!("plan-agreed-{i}.rhai"), &format!("{text}\n"));
        nslab(&["plan", &path]).ok();
        if kernel_tests_possible() {
            plan_and_run_agree(&format!("plan-agreed-{i}.rhai"), &format!("{text}\n"), &[], "");
        }
    }
}

/// `--no-ipv6`: the plan's model has IPv6 off where the run has it off.
const NO_IPV6_RECIPE: &str = r#"netns::add("a");
veth::add("v", "vb", "a");
link::up("a", "lo");
link::up("a", "vb");
print(`A ${addr::list("a").map(|x| x.cidr)}`);
print(`S ${sysctl::get("a", "net.ipv6.conf.vb.disable_ipv6")} ${sysctl::get("a", "net.ipv6.conf.all.disable_ipv6")} ${sysctl::get("net.ipv6.conf.v.disable_ipv6")}`);
addr::add("a", "vb", "fd00::1/64");
"#;

#[test]
fn plan_no_ipv6_refuses_ipv6_like_run() {
    let path = recipe("plan-noipv6.rhai", NO_IPV6_RECIPE);
    let plan = nslab(&["plan", "--no-ipv6", &path]);
    plan.failed();
    assert!(
        plan.stderr.contains("IPv6 is off in this lab: cannot add fd00::1/64 to vb"),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains("plan-noipv6.rhai:7:"), "{}", plan.stderr);
    // The queries before the refusal (a failed plan prints nothing, so plan them alone).
    let head: String = NO_IPV6_RECIPE.lines().take(6).map(|l| format!("{l}\n")).collect();
    let path2 = recipe("plan-noipv6-q.rhai", &head);
    let plan = nslab(&["plan", "--no-ipv6", &path2]);
    plan.ok();
    let printed: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.starts_with("A ") || l.starts_with("S "))
        .collect();
    assert_eq!(printed, ["A [\"127.0.0.1/8\"]", "S 1 1 1"], "{}", plan.stdout);
    if !kernel_tests_possible() {
        return;
    }
    let run = nslab(&["run", "--sandbox", "--no-ipv6", &path]);
    run.failed();
    let headline = |s: &str| s.lines().find(|l| l.contains('×')).unwrap_or("").trim().to_string();
    let plan = nslab(&["plan", "--no-ipv6", &path]);
    assert_eq!(headline(&plan.stderr), headline(&run.stderr));
    let run = nslab(&["run", "--sandbox", "--no-ipv6", &path2]);
    run.ok();
    let ran: Vec<&str> =
        run.stdout.lines().filter(|l| l.starts_with("A ") || l.starts_with("S ")).collect();
    assert_eq!(printed, ran);
}
