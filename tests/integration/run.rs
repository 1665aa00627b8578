//! `nslab run`: the walk-through recipes, the kernel state they leave (seen with iproute2,
//! iptables and real sockets), and the diagnostics for bad input.

use crate::common::{json, kernel_tests_possible, nslab, recipe, sandboxed, snapshot};

#[test]
fn every_script_passes_in_a_sandbox() {
    if !kernel_tests_possible() {
        return;
    }
    let mut scripts: Vec<_> = std::fs::read_dir(crate::common::root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 6, "the walk-through recipes are missing");
    for s in scripts {
        let rel = s.strip_prefix(crate::common::root()).unwrap().display().to_string();
        if !crate::common::kernel_runs(&rel) {
            continue;
        }
        let r = nslab(&["run", "--sandbox", &rel]);
        r.ok();
        assert!(r.stdout.contains("ok: "), "{rel} verified nothing:\n{}", r.stdout);
        assert!(!r.stdout.contains("FAIL"), "{rel}:\n{}", r.stdout);
    }
}

/// Issue 2's "done when": on a host (here a sandbox standing for one), `nslab run
/// scripts/tutorial.rhai` leaves exactly the walk-through's lab, checked without nslab.
#[test]
fn the_tutorial_leaves_the_walkthrough_lab() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        nslab run scripts/tutorial.rhai > /dev/null
        echo "== netns"; ip -j netns list
        echo "== bridge"; ip -j -d link show linux-bridge
        echo "== ports"; ip -j link show master linux-bridge
        echo "== braddr"; ip -j addr show dev linux-bridge
        for ns in red green blue; do
            echo "== addr $ns"; ip -n $ns -j addr show dev veth-$ns
            echo "== route $ns"; ip -n $ns -j route show default
        done
        echo "== forward"; cat /proc/sys/net/ipv4/ip_forward
        echo "== nat"; iptables -t nat -S
        "#,
    );
    r.ok();
    let section = |name: &str| -> String {
        let start = r
            .stdout
            .find(&format!("== {name}\n"))
            .unwrap_or_else(|| panic!("no section {name}:\n{}", r.stdout));
        let rest = &r.stdout[start + name.len() + 4..];
        rest[..rest.find("\n== ").unwrap_or(rest.len())].trim().to_string()
    };
    let netns: Vec<String> = json(&section("netns"))
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    for ns in ["red", "green", "blue", "internet"] {
        assert!(netns.contains(&ns.to_string()), "netns {ns} missing: {netns:?}");
    }
    let br = json(&section("bridge"));
    assert_eq!(br[0]["linkinfo"]["info_kind"], "bridge");
    assert!(br[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let ports: Vec<String> = json(&section("ports"))
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ports, ["veth-red-br", "veth-green-br", "veth-blue-br"]);
    let braddr = json(&section("braddr"));
    assert!(
        braddr[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["local"] == "192.168.24.1" && a["prefixlen"] == 24)
    );
    for (i, ns) in ["red", "green", "blue"].iter().enumerate() {
        let a = json(&section(&format!("addr {ns}")));
        let want = format!("192.168.24.{}", 10 + i);
        assert!(
            a[0]["addr_info"].as_array().unwrap().iter().any(|x| x["local"] == want.as_str()),
            "{ns}: {a}"
        );
        assert!(a[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
        let r = json(&section(&format!("route {ns}")));
        assert_eq!(r[0]["gateway"], "192.168.24.1", "{ns}: {r}");
    }
    assert_eq!(section("forward"), "1");
    let nat = section("nat");
    assert!(nat.contains("-A POSTROUTING -s 192.168.24.0/24 ! -d 192.168.24.0/24 -m comment --comment \"nslab:tutorial\" -j MASQUERADE"), "{nat}");
    assert!(
        nat.contains("--dport 8080") && nat.contains("--to-destination 192.168.24.10:80"),
        "{nat}"
    );
}

/// A tiny TCP server (python3, not nslab) that answers each client with the address it saw.
const SERVER: &str = r#"import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); print("ready", flush=True)
s.settimeout(300)
while True:
    c,a=s.accept(); c.sendall((a[0]+"\n").encode()); c.close()
"#;

/// A client (python3): prints the address the server saw, or FAIL.
const CLIENT: &str = r#"import socket,sys
try:
    c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print(c.recv(100).decode().strip())
except Exception as e:
    print("FAIL", e)
"#;

#[test]
fn the_tutorial_works_for_real_clients() {
    if !kernel_tests_possible() {
        return;
    }
    let script = format!(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT  # the sandbox shares /tmp with the host
        cat > $T/nslab-srv.py <<'PY'
{SERVER}PY
        cat > $T/nslab-cli.py <<'PY'
{CLIENT}PY
        nslab run scripts/tutorial.rhai > /dev/null
        serve() {{ ip netns exec $1 python3 $T/nslab-srv.py $2 > $T/srv-$1.log & for i in $(seq 600); do grep -q ready $T/srv-$1.log && break; sleep 0.1; done; }}
        serve red 80; serve green 80; serve internet 80
        echo "ping: $(ip netns exec red ping -c1 -W2 192.168.24.11 >/dev/null && echo ok)"
        echo "green-sees: $(ip netns exec red python3 $T/nslab-cli.py 192.168.24.11 80)"
        echo "internet-sees: $(ip netns exec red python3 $T/nslab-cli.py 203.0.113.1 80)"
        echo "forward: $(ip netns exec internet python3 $T/nslab-cli.py 203.0.113.2 8080)"
        iptables -t nat -D POSTROUTING -s 192.168.24.0/24 ! -d 192.168.24.0/24 -m comment --comment nslab:tutorial -j MASQUERADE
        echo "no-masquerade: $(ip netns exec red python3 $T/nslab-cli.py 203.0.113.1 80)"
        kill $(jobs -p)
        "#
    );
    let r = sandboxed(&script);
    r.ok();
    let line = |k: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap_or_else(|| panic!("no {k}:\n{}\n{}", r.stdout, r.stderr))
            .to_string()
    };
    assert_eq!(line("ping"), "ok");
    assert_eq!(line("green-sees"), "192.168.24.10", "green must see red's own address");
    assert_eq!(line("internet-sees"), "203.0.113.2", "egress must be masqueraded");
    assert_eq!(
        line("forward"),
        "203.0.113.1",
        "the port forward must reach red, which sees the client"
    );
    assert!(
        line("no-masquerade").starts_with("FAIL"),
        "without masquerade red must not reach upstream"
    );
}

/// Runs a bad recipe in a sandbox: it must fail with a diagnostic naming `recipe:line`,
/// leave the sandbox as it was, and print exactly the snapshot.
fn bad(name: &str, text: &str, line: usize, extra: &[&str]) {
    let path = recipe(&format!("{name}.rhai"), text);
    let mut args = vec!["run", "--sandbox", path.as_str()];
    args.extend_from_slice(extra);
    let r = nslab(&args);
    r.failed();
    assert!(
        r.stderr.contains(&format!("{path}:{line}:")) || line == 0,
        "no {path}:{line} in:\n{}",
        r.stderr
    );
    snapshot(&format!("run-{name}.txt"), &r.stderr);
}

#[test]
fn bad_input_gets_a_diagnostic() {
    if !kernel_tests_possible() {
        return;
    }
    bad(
        "invalid-cidr",
        "bridge::add(\"br0\");\naddr::add(\"br0\", \"192.168.24.300/24\");\n",
        2,
        &[],
    );
    bad("long-name", "veth::add(\"veth-much-too-long\", \"p\");\n", 1, &[]);
    bad("unknown-function", "netns::ad(\"red\");\n", 1, &[]);
    bad("syntax", "let x = [1, 2;\n", 1, &[]);
    bad("duplicate-netns", "netns::add(\"red\");\nnetns::add(\"red\");\n", 2, &[]);
    bad("missing-netns", "link::up(\"nowhere\", \"lo\");\n", 1, &[]);
    bad(
        "missing-device",
        "netns::add(\"red\");\naddr::add(\"red\", \"eth9\", \"10.0.0.1/24\");\n",
        2,
        &[],
    );
    bad("port-range", "nat::port_forward(70000, \"192.168.24.10:80\");\n", 1, &[]);
    bad("target-no-port", "nat::port_forward(8080, \"192.168.24.10\");\n", 1, &[]);
    bad(
        "unreachable-gateway",
        "netns::add(\"red\");\nveth::add(\"v0\", \"v1\", \"red\");\naddr::add(\"red\", \"v1\", \"10.0.0.2/24\");\nlink::up(\"red\", \"v1\");\nroute::add(\"red\", \"default\", \"10.9.9.9\");\n",
        5,
        &[],
    );
    bad("unknown-option", "nat::masquerade(\"10.0.0.0/24\", #{outt: \"uplink\"});\n", 1, &[]);
    bad("failed-assert", "let ok = false;\nassert(ok, \"red cannot reach green\");\n", 2, &[]);
    bad(
        "stdlib-chain",
        "import \"lab\" as lab;\nbridge::add(\"br0\");\nlab::attach(\"h1\", \"br0\", \"v1\", \"v1-br\", \"10.0.0.2/24\", \"10.9.9.9\");\n",
        3,
        &[],
    );
}

#[test]
fn bad_params_are_refused_before_anything_runs() {
    if !kernel_tests_possible() {
        return;
    }
    let text = "// how many hosts\nparam hosts = 3;\nparam subnet = \"10.0.0.0/24\";\nnetns::add(\"h\");\n";
    let path = recipe("params.rhai", text);
    let r = nslab(&["run", "--sandbox", &path, "--set", "host=4"]);
    r.failed();
    snapshot("run-unknown-param.txt", &r.stderr);
    let r = nslab(&["run", "--sandbox", &path, "--set", "hosts=many"]);
    r.failed();
    snapshot("run-wrong-param-type.txt", &r.stderr);
    let r = nslab(&["run", "--sandbox", &path, "--set", "hosts"]);
    r.failed();
    assert!(r.stderr.contains("expected NAME=VALUE"), "{}", r.stderr);
    // A file name that makes no lab name: says so, and how to name the lab.
    let spaced = recipe("my lab.rhai", "netns::add(\"h\");\n");
    let r = nslab(&["run", "--sandbox", &spaced]);
    r.failed();
    assert!(
        r.stderr.contains("the recipe's file name makes an invalid lab name")
            && r.stderr.contains("name the lab with --lab NAME"),
        "{}",
        r.stderr
    );
    nslab(&["run", "--sandbox", "--lab", "my-lab", &spaced]).ok();
}

#[test]
fn a_failed_run_leaves_the_host_as_it_was() {
    if !kernel_tests_possible() {
        return;
    }
    let bad = recipe(
        "half-a-lab.rhai",
        "import \"lab\" as lab;\nbridge::add(\"br0\");\nlink::up(\"br0\");\nlab::attach(\"h1\", \"br0\", \"v1\", \"v1-br\", \"10.0.0.2/24\", \"10.0.0.1\");\nsysctl::ip_forward(true);\nnat::masquerade(\"10.0.0.0/24\");\nlab::attach(\"h2\", \"br0\", \"v2\", \"v2-br\", \"10.0.0.300/24\", \"10.0.0.1\");\n",
    );
    let r = sandboxed(&format!(
        r#"
        state() {{ ip -o link | awk -F': ' '{{print $2}}' | sort; ip netns list; iptables -t nat -S; cat /proc/sys/net/ipv4/ip_forward; }}
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        state > $T/before
        if nslab run {bad} 2>$T/err; then echo "should have failed"; exit 1; fi
        state > $T/after
        diff $T/before $T/after && echo SAME
        grep -q "rolled back" $T/err && echo ROLLED
        "#
    ));
    r.ok();
    assert!(r.stdout.contains("SAME"), "state changed:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ROLLED"), "{}", r.stdout);
}

#[test]
fn scripts_can_exec_commands_in_a_netns() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "exec.rhai",
        "netns::add(\"red\");\nlet r = netns::exec(\"red\", [\"sh\", \"-c\", \"cat /proc/net/dev | grep -c lo:; exit 3\"]);\nassert(r.status == 3, `status ${r.status}`);\nlet out = r.stdout;\nout.trim();\nassert(out == \"1\", out);\nprint(\"ok: exec\");\n",
    );
    nslab(&["run", "--sandbox", &path]).ok();
}

#[test]
fn a_lab_is_named_after_its_recipe_and_tagged() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        nslab run --lab walk scripts/02-bridge-veth.rhai > /dev/null
        ip -j -d link show veth-red-br
        "#,
    );
    r.ok();
    let l = json(r.stdout.trim());
    assert_eq!(l[0]["ifalias"], "nslab:walk");
    assert_eq!(l[0]["master"], "linux-bridge");
}

/// A netns deleted and made again under the same name behind nslab's back (another
/// terminal during a REPL session): nslab acts on the new one, not on the dead one its
/// cached socket pointed at.
#[test]
fn a_netns_replaced_by_hand_is_the_one_used() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "replaced.rhai",
        r#"netns::add("x");
assert(link::list("x").len() == 1);
netns::exec("internet", ["sh", "-c", "ip netns del x && ip netns add x"]);
bridge::add("x", "br9");
"#,
    );
    let r = sandboxed(&format!("nslab run {path} > /dev/null; ip -n x -o link show br9 | wc -l"));
    r.ok();
    assert_eq!(r.stdout, "1\n");
}

#[test]
fn ping_counts_echoes_like_ping() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "pingcount.rhai",
        r#"netns::add("a");
veth::add("va", "vb", "a");
addr::add("va", "10.9.0.1/24");
link::up("va");
addr::add("a", "vb", "10.9.0.2/24");
link::up("a", "vb");
let r = probe::ping("a", "10.9.0.1");
assert(r.ok && r.received == 1 && r.sent <= 3, `first answer ends it: ${r}`);
let r = probe::ping("a", "10.9.0.1", #{count: 3, timeout_ms: 300});
assert(r.ok && r.sent == 3 && r.received == 3, `${r}`);
let t = timestamp();
let r = probe::ping("a", "10.9.0.99", #{timeout_ms: 200});
let took = t.elapsed;
assert(!r.ok && r.sent == 3 && r.received == 0, `${r}`);
assert(took < 2.0, `a short timeout makes a short probe: ${took} s`);
print("ok: ping");
"#,
    );
    let r = sandboxed(&format!("nslab run {path}"));
    r.ok();
    assert!(r.stdout.contains("ok: ping"), "{}", r.stdout);
}

#[test]
fn ipv6_addresses_and_routes_work_at_once() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "ipv6.rhai",
        r#"netns::add("a");
veth::add("va", "vb", "a");
addr::add("va", "fd00::1/64");
link::up("va");
addr::add("a", "vb", "fd00::2/64");
link::up("a", "vb");
route::add("a", "default", "fd00::1");
route::add("a", "10.1.0.0/16", "dev:vb");
// Up to 3 echoes: a loaded machine may take a while to bring a fresh veth up.
assert(probe::ping("a", "fd00::1").ok, "fd00::1 does not answer");
let r = route::list("a").filter(|r| r.dest == "default");
assert(r.len() == 1 && r[0].via == "fd00::1", `${r}`);
// A link-local gateway and a link-local ping name their link after a %.
addr::add("va", "fe80::1/64");
route::add("a", "fd09::/64", "fe80::1%vb");
let r = route::list("a").filter(|r| r.dest == "fd09::/64");
assert(r.len() == 1 && r[0].via == "fe80::1" && r[0].dev == "vb", `${r}`);
assert(probe::ping("a", "fe80::1%vb").ok, "fe80::1%vb does not answer");
print("ok: ipv6");
"#,
    );
    let r = sandboxed(&format!(
        "nslab run {path}; ip -n a -j route show 10.1.0.0/16; ip -n a -j -6 addr show dev vb"
    ));
    r.ok();
    let mut lines = r.stdout.lines().filter(|l| l.starts_with('['));
    let route = json(lines.next().unwrap());
    assert_eq!(route[0]["scope"], "link", "a route out of a link is directly connected: {route}");
    let addrs = json(lines.next().unwrap());
    let a = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["local"] == "fd00::2")
        .expect("fd00::2");
    assert!(a.get("tentative").is_none(), "lab addresses skip DAD: {a}");
}

#[test]
fn a_netns_made_by_ip_is_usable_and_survives_destroy() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "byhand.rhai",
        "veth::add(\"v0\", \"v1\", \"byhand\");\nlink::up(\"byhand\", \"v1\");\n",
    );
    let r = sandboxed(&format!(
        "ip netns add byhand; nslab run {path} >/dev/null; ip -n byhand -br link show v1; nslab destroy byhand; ip netns list; ip -br link show v0 || echo v0-gone"
    ));
    r.ok();
    assert!(r.stdout.contains("v1@"), "{}", r.stdout);
    assert!(r.stdout.contains("byhand"), "the foreign netns must survive: {}", r.stdout);
    assert!(r.stdout.contains("v0-gone"), "{}", r.stdout);
}
