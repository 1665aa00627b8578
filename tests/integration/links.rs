//! Link kinds (`link::add`), veths between two namespaces, bridge settings and VLANs,
//! WireGuard: built in sandboxes and checked with `ip -d -j link`, `bridge -j vlan` and real
//! probes. Kinds this kernel lacks are tested on the second kernel (`common::kernel_has`).

use crate::common::{json, kernel_has, kernel_tests_possible, nslab, recipe, sandboxed};

/// The `ip -d -j link` entry of `dev` in the JSON of a whole netns.
fn link<'a>(all: &'a serde_json::Value, dev: &str) -> &'a serde_json::Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == dev)
        .unwrap_or_else(|| panic!("no {dev} in {all}"))
}

/// Runs `text` as lab `t` in a sandbox, then `after` (bash), and returns stdout.
fn in_sandbox(name: &str, text: &str, after: &str) -> String {
    let path = recipe(name, text);
    let r = sandboxed(&format!(
        "nslab run --lab t {path} | {{ grep -v '^lab t is up' || true; }}\n{after}"
    ));
    r.ok();
    r.stdout
}

const KINDS_RECIPE: &str = r#"
netns::add("n");
veth::add("n", "eth0", "n", "eth1");
addr::add("n", "eth0", "10.1.0.1/24");
link::add("n", "vx0", "vxlan", #{id: 42, remote: "10.1.0.2", local: "10.1.0.1", dev: "eth0"});
link::add("n", "vx1", "vxlan", #{id: 43, group: "239.1.1.1", dev: "eth0", port: 8472});
link::add("n", "mv0", "macvlan", #{parent: "eth0"});
link::add("n", "mv1", "macvlan", #{parent: "eth0", mode: "private"});
link::add("ifb0", "ifb");
for l in link::list("n") {
    if l.name == "vx0" { print(`VX ${l.kind} ${l.vxlan_id} ${l.remote} ${l.local} ${l.port} ${l.parent}`); }
    if l.name == "vx1" { print(`VX1 ${l.group} ${l.port}`); }
    if l.name == "mv1" { print(`MV ${l.kind} ${l.mode} ${l.parent}`); }
    if l.name == "eth0" { print(`ETH ${l.vxlan_id ?? "none"}`); }
}
"#;

#[test]
fn link_kinds_are_made_tagged_and_listed_with_their_details() {
    if !kernel_tests_possible() {
        return;
    }
    let out = in_sandbox(
        "links-kinds.rhai",
        KINDS_RECIPE,
        "echo '### n'; ip -n n -d -j link show; echo '### host'; ip -d -j link show ifb0\n\
         nslab destroy t > /dev/null; echo \"### after $(ls /run/netns | grep -cx n) $(ip link show ifb0 2>&1)\"",
    );
    assert!(out.contains("VX vxlan 42 10.1.0.2 10.1.0.1 4789 eth0\n"), "{out}");
    assert!(out.contains("VX1 239.1.1.1 8472\n"), "{out}");
    assert!(out.contains("MV macvlan private eth0\n"), "{out}");
    assert!(out.contains("ETH none\n"), "a veth has no vxlan_id: {out}");
    let section =
        |s: &str| out.split(&format!("### {s}\n")).nth(1).unwrap().lines().next().unwrap();
    let n = json(section("n"));
    let vx = &link(&n, "vx0")["linkinfo"];
    assert_eq!(vx["info_kind"], "vxlan");
    assert_eq!(vx["info_data"]["id"], 42);
    assert_eq!(vx["info_data"]["port"], 4789, "the IANA port, not Linux's 8472: {vx}");
    assert_eq!(vx["info_data"]["remote"], "10.1.0.2");
    assert_eq!(vx["info_data"]["local"], "10.1.0.1");
    assert_eq!(link(&n, "mv0")["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(link(&n, "mv0")["link"], "eth0");
    for dev in ["vx0", "vx1", "mv0", "mv1"] {
        assert_eq!(link(&n, dev)["ifalias"], "nslab:t", "{dev} carries the lab's tag");
        assert_ne!(link(&n, dev)["group"], "default", "{dev} is in the lab's group");
    }
    let host = json(section("host"));
    assert_eq!(link(&host, "ifb0")["linkinfo"]["info_kind"], "ifb");
    assert_eq!(link(&host, "ifb0")["ifalias"], "nslab:t");
    assert!(out.contains("### after 0 "), "destroy left links: {out}");
    assert!(out.contains("does not exist"), "ifb0 survived destroy: {out}");
}

/// A tap is made through /dev/net/tun, like `ip tuntap add`, tagged like any link.
#[test]
fn a_tap_is_made_through_dev_net_tun() {
    if !kernel_tests_possible() {
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        // Loud, like kernel_has: the tun module is not loaded (`modprobe tun` makes the node).
        eprintln!("NOT RUN HERE: no /dev/net/tun on this machine (modprobe tun)");
        return;
    }
    let out = in_sandbox(
        "links-tap.rhai",
        "netns::add(\"n\");\nlink::add(\"n\", \"tap0\", \"tap\");\nprint(`TAP ${link::list(\"n\").filter(|l| l.name == \"tap0\")[0].kind}`);\n",
        "ip -n n -d -j link show tap0; nslab destroy t > /dev/null; echo \"after $(ls /run/netns | grep -cx n)\"",
    );
    assert!(out.contains("TAP tun\n"), "{out}");
    let j = json(out.lines().nth(1).unwrap());
    assert_eq!(j[0]["linkinfo"]["info_data"]["type"], "tap");
    assert_eq!(j[0]["ifalias"], "nslab:t");
    assert!(out.contains("after 0"), "{out}");
}

#[test]
fn explain_and_plan_print_ip_lines() {
    let path = recipe(
        "links-plan.rhai",
        "veth::add(\"e0\", \"e1\");\nlink::add(\"vx0\", \"vxlan\", #{id: 7, remote: \"10.0.0.2\"});\nlink::add(\"m0\", \"macvlan\", #{parent: \"e0\"});\nlink::add(\"t0\", \"tap\");\n",
    );
    let plan = nslab(&["plan", &path]);
    plan.ok();
    for line in [
        "ip link add vx0 type vxlan id 7 remote 10.0.0.2 dstport 4789\n",
        "ip link add link e0 m0 type macvlan mode bridge\n",
        "ip tuntap add dev t0 mode tap\n",
    ] {
        assert!(plan.stdout.contains(line), "{line}\n{}", plan.stdout);
    }
    if !kernel_tests_possible() {
        return;
    }
    // Without /dev/net/tun (the second kernel's VM) the tap fails after these lines.
    let run = nslab(&["run", "--sandbox", "--explain", &path]);
    assert!(
        run.stdout.contains("+ ip link add vx0 type vxlan id 7 remote 10.0.0.2 dstport 4789\n"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn veth_between_two_namespaces_is_one_request_with_nothing_on_the_host() {
    if !kernel_tests_possible() {
        return;
    }
    let out = in_sandbox(
        "links-veth4.rhai",
        "netns::add(\"a\");\nnetns::add(\"b\");\nveth::add(\"a\", \"x\", \"b\", \"y\");\naddr::add(\"a\", \"x\", \"10.2.0.1/24\");\naddr::add(\"b\", \"y\", \"10.2.0.2/24\");\nlink::up(\"a\", \"x\");\nlink::up(\"b\", \"y\");\nassert(probe::ping(\"a\", \"10.2.0.2\").ok);\n",
        "ip -n a -d -j link show x; ip -n b -d -j link show y; echo HOST $(ip -o link | grep -c -e ' x@' -e ' y@')",
    );
    let mut lines = out.lines();
    let x = json(lines.next().unwrap());
    let y = json(lines.next().unwrap());
    assert_eq!(x[0]["linkinfo"]["info_kind"], "veth");
    assert_eq!(y[0]["linkinfo"]["info_kind"], "veth");
    assert_eq!(x[0]["ifalias"], "nslab:t");
    assert_eq!(y[0]["ifalias"], "nslab:t");
    assert!(out.contains("HOST 0"), "{out}");
}

/// Each refused before anything is journaled: a diagnostic at the line, nothing left.
#[test]
fn bad_link_input_gets_a_diagnostic_and_leaves_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        ("link::add(\"x0\", \"vlna\");", "unknown link kind \"vlna\"", "did you mean vlan?"),
        (
            "link::add(\"x0\", \"vlan\", #{parent: \"e0\", id: 5000});",
            "VLAN id 5000 is out of range",
            "1 to 4094",
        ),
        ("link::add(\"x0\", \"vxlan\", #{remote: \"10.0.0.2\"});", "a vxlan needs `id`", "id: 42"),
        (
            "link::add(\"x0\", \"macvlan\", #{parent: \"e0\", mod: \"bridge\"});",
            "unknown option `mod` for macvlan",
            "did you mean mode?",
        ),
        (
            "wireguard::set(\"x0\", #{private_key: \"bm90IGEga2V5\"});",
            "private_key is not a WireGuard key: 9 bytes, not 32",
            "44 characters",
        ),
        ("bridge::vlan_add(\"e0\", 5000);", "VLAN id 5000 is out of range", "1 to 4094"),
    ];
    for (i, (call, msg, help)) in cases.iter().enumerate() {
        let name = format!("links-bad-{i}.rhai");
        let path = recipe(&name, &format!("veth::add(\"e0\", \"e1\");\n{call}\n"));
        let plan = nslab(&["plan", &path]);
        plan.failed();
        assert!(plan.stderr.contains(msg), "{call}: {}", plan.stderr);
        assert!(plan.stderr.contains(help), "{call}: {}", plan.stderr);
        assert!(plan.stderr.contains(&format!("{name}:2:")), "{call}: {}", plan.stderr);
        if !kernel_tests_possible() {
            continue;
        }
        let r = sandboxed(&format!(
            "nslab run {path} 2>&1 || true; echo LINKS $(ip -o link | wc -l); ls /run/nslab"
        ));
        assert!(r.stdout.contains(msg), "{call}: {}", r.stdout);
        assert!(r.stdout.contains(&format!("{name}:2:")), "{call}: {}", r.stdout);
        assert!(r.stdout.contains("LINKS 2\n"), "{call} left links: {}", r.stdout);
    }
}

/// A kind whose module the kernel lacks: advice, not a bare "Operation not supported".
#[test]
fn a_missing_kind_gets_advice() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("links-dummy.rhai", "link::add(\"d0\", \"dummy\");\n");
    let r = nslab(&["run", "--sandbox", &path]);
    if kernel_has("dummy") {
        r.ok();
        return;
    }
    r.failed();
    assert!(r.stderr.contains("this kernel cannot make dummy links"), "{}", r.stderr);
    assert!(
        r.stderr.contains("modprobe dummy") || r.stderr.contains("has no dummy links"),
        "{}",
        r.stderr
    );
}

#[test]
fn vlan_links_sit_on_their_parent() {
    if !kernel_tests_possible() || !kernel_has("vlan") {
        return;
    }
    let out = in_sandbox(
        "links-vlan.rhai",
        "netns::add(\"a\");\nnetns::add(\"b\");\nveth::add(\"a\", \"eth0\", \"b\", \"eth0\");\nfor n in [\"a\", \"b\"] { link::add(n, \"eth0.10\", \"vlan\", #{parent: \"eth0\", id: 10}); link::up(n, \"eth0\"); link::up(n, \"eth0.10\"); }\naddr::add(\"a\", \"eth0.10\", \"10.10.0.1/24\");\naddr::add(\"b\", \"eth0.10\", \"10.10.0.2/24\");\nassert(probe::ping(\"a\", \"10.10.0.2\").ok);\nlet v = link::list(\"a\").filter(|l| l.name == \"eth0.10\")[0];\nprint(`V ${v.vlan_id} ${v.parent}`);\n",
        "ip -n a -d -j link show eth0.10",
    );
    assert!(out.contains("V 10 eth0\n"), "{out}");
    let j = json(out.lines().last().unwrap());
    assert_eq!(j[0]["linkinfo"]["info_data"]["id"], 10);
}

#[test]
fn bonds_take_ports() {
    if !kernel_tests_possible() || !kernel_has("bond") {
        return;
    }
    let out = in_sandbox(
        "links-bond.rhai",
        "link::add(\"bond0\", \"bond\", #{mode: \"active-backup\"});\nveth::add(\"p0\", \"q0\");\nlink::set_master(\"p0\", \"bond0\");\nlet b = link::list().filter(|l| l.name == \"bond0\")[0];\nprint(`B ${b.mode}`);\n",
        "ip -d -j link show p0",
    );
    assert!(out.contains("B active-backup\n"), "{out}");
    let j = json(out.lines().last().unwrap());
    assert_eq!(j[0]["master"], "bond0");
}

#[test]
fn bridge_stp_and_vlans() {
    if !kernel_tests_possible() {
        return;
    }
    // STP works on this kernel; VLAN filtering only where the kernel has it.
    let out = in_sandbox(
        "links-stp.rhai",
        "bridge::add(\"br0\");\nbridge::set(\"br0\", #{stp: true});\n",
        "ip -d -j link show br0",
    );
    assert_eq!(json(out.lines().last().unwrap())[0]["linkinfo"]["info_data"]["stp_state"], 1);
    let path = recipe(
        "links-vf.rhai",
        "bridge::add(\"br0\");\nbridge::set(\"br0\", #{vlan_filtering: true});\nveth::add(\"p0\", \"q0\");\nlink::set_master(\"p0\", \"br0\");\nbridge::vlan_add(\"p0\", 10, #{pvid: true, untagged: true});\nbridge::vlan_add(\"p0\", 20);\nprint(`VL ${bridge::vlans(\"p0\").map(|v| `${v.vid}:${v.pvid}:${v.untagged}`)}`);\n",
    );
    if !kernel_has("bridge_vlan") {
        let r = nslab(&["run", "--sandbox", &path]);
        r.failed();
        assert!(r.stderr.contains("this kernel's bridge has none"), "{}", r.stderr);
        return;
    }
    let r = sandboxed(&format!("nslab run --lab t {path} | grep VL\nbridge -j vlan show dev p0"));
    r.ok();
    // A port joins with VLAN 1 (PVID, untagged); a new PVID takes the flag from it.
    assert!(
        r.stdout.contains("VL [\"1:false:true\", \"10:true:true\", \"20:false:false\"]"),
        "{}",
        r.stdout
    );
    let j = json(r.stdout.lines().last().unwrap());
    let vlans = j[0]["vlans"].as_array().unwrap();
    assert!(vlans.iter().any(|v| v["vlan"] == 10 && v["flags"].to_string().contains("PVID")));
    assert!(vlans.iter().any(|v| v["vlan"] == 20));
}

/// The 1024th port of a bridge: EXFULL, with advice.
#[test]
fn a_full_bridge_gets_advice() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "links-full.rhai",
        "veth::add(\"last\", \"last-p\");\nlink::set_master(\"last\", \"br0\");\n",
    );
    let r = sandboxed(&format!(
        "B=$(mktemp); trap 'rm -f $B' EXIT\n\
         ip link add br0 type bridge\n\
         for i in $(seq 1 1023); do echo \"link add v$i type veth peer name p$i\"; echo \"link set v$i master br0\"; done > $B\n\
         ip -batch $B\n\
         nslab run {path} 2>&1 || true"
    ));
    assert!(r.stdout.contains("the bridge is full"), "{}", r.stdout);
    assert!(r.stdout.contains("at most 1023 ports"), "{}", r.stdout);
}

const WG_RECIPE: &str = r#"
netns::add("a");
netns::add("b");
veth::add("a", "eth0", "b", "eth0");
addr::add("a", "eth0", "192.168.60.1/24");
addr::add("b", "eth0", "192.168.60.2/24");
let ka = wireguard::keypair();
let kb = wireguard::keypair();
print(`KEY ${ka.private_key}`);
for n in ["a", "b"] { link::up(n, "eth0"); link::add(n, "wg0", "wireguard"); }
wireguard::set("a", "wg0", #{private_key: ka.private_key, listen_port: 51820,
    peers: [#{public_key: kb.public_key, endpoint: "192.168.60.2:51820", allowed_ips: ["10.60.0.2/32"]}]});
wireguard::set("b", "wg0", #{private_key: kb.private_key, listen_port: 51820,
    peers: [#{public_key: ka.public_key, endpoint: "192.168.60.1:51820", allowed_ips: ["10.60.0.1/32"]}]});
addr::add("a", "wg0", "10.60.0.1/24");
addr::add("b", "wg0", "10.60.0.2/24");
link::up("a", "wg0");
link::up("b", "wg0");
assert(probe::ping("a", "10.60.0.2").ok, "no ping through the tunnel");
print("TUNNEL OK");
"#;

#[test]
fn a_wireguard_tunnel_carries_a_ping_and_keeps_its_key_private() {
    if !kernel_tests_possible() || !kernel_has("wireguard") {
        return;
    }
    let path = recipe("links-wg.rhai", WG_RECIPE);
    let r = sandboxed(&format!(
        "nslab run --explain --lab t {path}\n\
         echo JOURNAL; cat /run/nslab/t/journal*; echo; echo LS; nslab ls; nslab show t\n\
         echo KEYFILES; stat -c '%a %n' /run/nslab/t/*.key"
    ));
    r.ok();
    assert!(r.stdout.contains("TUNNEL OK"), "{}", r.stdout);
    let key = r.stdout.lines().find_map(|l| l.strip_prefix("KEY ")).unwrap();
    let after_key: String = r.stdout.lines().filter(|l| !l.starts_with("KEY ")).collect();
    assert!(!after_key.contains(key), "the private key was printed:\n{}", r.stdout);
    assert!(r.stdout.contains("private-key '<private key>'"), "{}", r.stdout);
    assert!(r.stdout.contains("600 /run/nslab/t/"), "{}", r.stdout);
}

/// The plan follows a ping over a VXLAN, macvlans on one parent and VLANs of one id (it
/// learns the neighbour the ping would leave), as it does over veths and bridges.
#[test]
fn plan_traces_pings_over_the_new_kinds() {
    let path = recipe(
        "links-plan-trace.rhai",
        r#"netns::add("a");
netns::add("b");
veth::add("a", "eth0", "b", "eth0");
addr::add("a", "eth0", "192.168.9.1/24");
addr::add("b", "eth0", "192.168.9.2/24");
link::add("a", "vx0", "vxlan", #{id: 9, remote: "192.168.9.2"});
link::add("b", "vx0", "vxlan", #{id: 9, remote: "192.168.9.1"});
link::add("a", "mv0", "macvlan", #{parent: "eth0"});
link::add("a", "mv1", "macvlan", #{parent: "eth0"});
netns::add("c");
link::set_netns("a", "mv1", "c");
addr::add("a", "vx0", "10.9.0.1/24");
addr::add("b", "vx0", "10.9.0.2/24");
addr::add("a", "mv0", "10.8.0.1/24");
addr::add("c", "mv1", "10.8.0.2/24");
for n in ["a", "b"] { link::up(n, "eth0"); link::up(n, "vx0"); }
link::up("a", "mv0");
link::up("c", "mv1");
probe::ping("a", "10.9.0.2", #{timeout_ms: 5000});
probe::ping("c", "10.8.0.1", #{timeout_ms: 5000});
// One IP may be learnt on two links (mv0 sits on eth0 and hears b's ARP broadcasts).
let ips = neigh::list("a").map(|n| n.ip).filter(|ip| !ip.contains(":"));
ips.sort();
ips.dedup();
print(`NEIGH ${ips}`);
"#,
    );
    let plan = nslab(&["plan", &path]);
    plan.ok();
    // The underlay neighbour too: the VXLAN resolved its remote.
    let want = "NEIGH [\"10.8.0.2\", \"10.9.0.2\", \"192.168.9.2\"]";
    assert!(plan.stdout.contains(&format!("# {want}")), "{}", plan.stdout);
    if !kernel_tests_possible() {
        return;
    }
    // IPv4 only: IPv6 neighbours (router solicitations, MLD) come and go with timing.
    let run = nslab(&["run", "--sandbox", &path]);
    run.ok();
    assert!(run.stdout.contains(want), "{}", run.stdout);
}

/// The links(N) benchmark's recipe builds what benches/links.sh counts.
#[test]
fn the_links_bench_recipe_builds() {
    if !kernel_tests_possible() {
        return;
    }
    for kind in ["vxlan", "macvlan"] {
        let r = sandboxed(&format!(
            "nslab run benches/links.rhai --set n=3 --set kind={kind} > /dev/null\n\
             ip -o link | grep -c -e ' vx[0-9]*:' -e ' mv[0-9]*@'"
        ));
        r.ok();
        assert_eq!(r.stdout.trim(), "3", "{kind}: {}", r.stdout);
    }
}
