//! Issue 14, "the journal is evidence, not gospel": a valid line injected into a lab's
//! journal (with a correct checksum) must not make destroy delete what the lab did not
//! make — an address, a route, a link, a netns — and destroy says what it left, never
//! "destroyed". Each test fails without the fix. Kernel tests run in sandboxes.

use crate::common::{kernel_has, kernel_tests_possible, recipe, sandboxed, unwrapped};

/// `forge LAB JSON`: appends Op JSON to lab LAB's journal as nslab writes a line (the next
/// sequence number, a tab, the CRC-32 in hex), as an attacker who can write /run/nslab can.
const FORGE: &str = r#"forge() {
python3 - "$1" "$2" <<'PY'
import json, sys, zlib
lab, op = sys.argv[1], json.loads(sys.argv[2])
path = "/run/nslab/%s/journal" % lab
seq = 0
for raw in open(path, "rb").read().split(b"\n"):
    if raw:
        seq = max(seq, json.loads(raw.rsplit(b"\t", 1)[0]).get("seq", 0))
line = json.dumps({"seq": seq + 1, "op": op}, separators=(",", ":")).encode()
open(path, "ab").write(line + b"\t%08x\n" % zlib.crc32(line))
PY
}
has_addr() { ip -j addr show dev uplink | grep -q "\"local\":\"$1\""; }
has_default() { ip -j route show default | grep -q '"gateway":"203.0.113.1"'; }
"#;

fn run(script: &str) -> crate::common::Run {
    sandboxed(&format!("{FORGE}\n{script}"))
}

/// The issue's exact case: the sandbox's own `uplink` address (the "admin's") named by an
/// injected `addr_add` line with a valid checksum. Destroy leaves it, and the default route
/// that depends on it, and says so.
#[test]
fn a_forged_address_line_deletes_no_foreign_address() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-addr.rhai", "netns::add(\"hja\");\nbridge::add(\"hjabr\");\n");
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
has_addr 203.0.113.2 && has_default
forge hj-addr '{{"op":"addr_add","ns":null,"dev":"uplink","cidr":"203.0.113.2/24"}}'
if nslab destroy hj-addr 2>&1; then echo "destroy said success"; exit 1; fi
has_addr 203.0.113.2 || {{ echo "uplink address deleted"; exit 1; }}
has_default || {{ echo "default route gone"; exit 1; }}
[ -z "$(ip netns list | grep hja)" ] && ! ip link show hjabr 2>/dev/null
[ ! -e /run/nslab/hj-addr ] || {{ echo "journal left"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(!text.contains("destroyed lab"), "{}", r.stdout);
    assert!(
        text.contains("address 203.0.113.2/24 on uplink in the host: not shown to be this lab's: the journal records no identity of it"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// What a lab legitimately puts on a link it did not make goes at destroy: the address by
/// the identity it recorded, the route by the mark it carries (proto 110).
#[test]
fn what_the_lab_put_on_a_foreign_link_is_destroyed() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "hj-own.rhai",
        "addr::add(\"uplink\", \"203.0.113.7/24\");\naddr::add(\"uplink\", \"fd00:77::7/64\");\nroute::add(\"10.99.0.0/24\", \"203.0.113.1\");\n",
    );
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
has_addr 203.0.113.7 && has_addr fd00:77::7
ip -j route show 10.99.0.0/24 | grep -q '"protocol":"110"' || {{ echo "route not marked"; ip route; exit 1; }}
grep -q '"cstamp"' /run/nslab/hj-own/journal || {{ echo "no identity recorded"; exit 1; }}
nslab destroy hj-own
! has_addr 203.0.113.7 && ! has_addr fd00:77::7 || {{ echo "address left"; exit 1; }}
[ -z "$(ip route show 10.99.0.0/24)" ] || {{ echo "route left"; exit 1; }}
has_addr 203.0.113.2 && has_default
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("destroyed lab hj-own\nclean"), "{}", r.stdout);
}

/// The admin deleted the lab's address and route and made them again by hand: they are the
/// admin's now (another creation stamp, proto boot), and stay.
#[test]
fn an_address_and_route_made_again_by_hand_stay() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "hj-again.rhai",
        "addr::add(\"uplink\", \"203.0.113.8/24\");\nroute::add(\"10.98.0.0/24\", \"203.0.113.1\");\n",
    );
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
sleep 0.05  # the creation stamp counts hundredths of a second
ip addr del 203.0.113.8/24 dev uplink; ip addr add 203.0.113.8/24 dev uplink
ip route del 10.98.0.0/24; ip route add 10.98.0.0/24 via 203.0.113.1
if nslab destroy hj-again 2>&1; then echo "destroy said success"; exit 1; fi
has_addr 203.0.113.8 || {{ echo "the admin's address deleted"; exit 1; }}
ip -j route show 10.98.0.0/24 | grep -q 203.0.113.1 || {{ echo "the admin's route deleted"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("address 203.0.113.8/24 on uplink in the host: not made by this lab: the journal's record does not match the kernel's"),
        "{}",
        r.stdout
    );
    assert!(
        text.contains("route 10.98.0.0/24 in the host: not made by this lab: the kernel's route is proto boot, not nslab's 110"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// Forged route lines for the sandbox's default route, with and without nslab's mark: the
/// kernel's delete names proto 110 and cannot take a `proto boot` route; an unmarked line
/// is not acted on.
#[test]
fn a_forged_route_line_deletes_no_foreign_route() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-route.rhai", "netns::add(\"hjr\");\n");
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
forge hj-route '{{"op":"route_add","ns":null,"dest":null,"via":"203.0.113.1","dev":null}}'
forge hj-route '{{"op":"route_add","ns":null,"dest":"203.0.113.0/24","via":null,"dev":"uplink","opts":{{"protocol":110}}}}'
if nslab destroy hj-route 2>&1; then echo "destroy said success"; exit 1; fi
has_default || {{ echo "default route gone"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("route default in the host: not shown to be this lab's: the journal's record carries no nslab mark"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// Forged lines naming the sandbox's `internet` netns and its `uplink` link as the lab's:
/// a netns is deleted only by the identity the lab recorded, a link only with the lab's
/// alias and group.
#[test]
fn forged_netns_and_link_lines_delete_nothing_foreign() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-ns.rhai", "netns::add(\"hjn\");\n");
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
forge hj-ns '{{"op":"netns_add","name":"internet"}}'
forge hj-ns '{{"op":"bridge_add","ns":null,"name":"uplink"}}'
forge hj-ns '{{"op":"veth_add","ns":null,"name":"lo","peer":"uplink","peer_ns":null}}'
if nslab destroy hj-ns 2>&1; then echo "destroy said success"; exit 1; fi
ip netns list | grep -q '^internet' || {{ echo "netns internet deleted"; exit 1; }}
ip link show uplink >/dev/null || {{ echo "uplink deleted"; exit 1; }}
ip netns exec internet ip link show eth0 >/dev/null
[ -z "$(ip netns list | grep hjn)" ] || {{ echo "the lab's netns left"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains(
            "netns internet: not shown to be this lab's: the journal records no identity of it"
        ),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// Lab A's route, deleted by hand and added again by lab B, is B's: both carry nslab's
/// mark, but the claim names B alone, so A's destroy leaves it and B's takes it.
#[test]
fn a_route_another_lab_added_again_is_that_labs() {
    if !kernel_tests_possible() {
        return;
    }
    let text = "route::add(\"10.97.0.0/24\", \"203.0.113.1\");\n";
    let (a, b) = (recipe("hj-ra.rhai", text), recipe("hj-rb.rhai", text));
    let r = run(&format!(
        r#"nslab run {a} >/dev/null
ip route del 10.97.0.0/24
nslab run {b} >/dev/null
if nslab destroy hj-ra 2>&1; then echo "destroy said success"; exit 1; fi
ip -j route show 10.97.0.0/24 | grep -q '"protocol":"110"' || {{ echo "lab B's route deleted"; exit 1; }}
nslab destroy hj-rb
[ -z "$(ip route show 10.97.0.0/24)" ] || {{ echo "lab B's route left"; exit 1; }}
[ -z "$(ls /run/nslab/.route)" ] || {{ echo "claims left"; ls -la /run/nslab/.route; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("route 10.97.0.0/24 in the host: not shown to be this lab's: the lab holds no claim on it"),
        "{}",
        r.stdout
    );
    assert!(text.contains("destroyed lab hj-rb\nclean"), "{}", r.stdout);
}

/// A route claim nslab cannot write fails the call before the route is added, says where
/// and what to do, and the run leaves nothing behind.
#[test]
fn a_route_claim_that_cannot_be_written_adds_no_route() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "hj-rclaim.rhai",
        "netns::add(\"hjc\");\nroute::add(\"10.96.0.0/24\", \"203.0.113.1\");\n",
    );
    let r = run(&format!(
        r#"mkdir -p /run/nslab && touch /run/nslab/.route
if nslab run {path} 2>&1; then echo "run said success"; exit 1; fi
[ -z "$(ip route show 10.96.0.0/24)" ] || {{ echo "route added"; exit 1; }}
! ip netns list | grep -q hjc || {{ echo "netns left"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains(
            "cannot record the lab's claim in /run/nslab/.route: File exists (os error 17)"
        ),
        "{}",
        r.stdout
    );
    assert!(text.contains("hj-rclaim.rhai:2"), "{}", r.stdout);
    assert!(text.contains("must be a directory nslab can write"), "{}", r.stdout);
    assert!(text.contains("nothing is left behind"), "{}", r.stdout);
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// A forged iptables line naming the admin's rule (no `nslab:LAB` comment): not deleted,
/// and named.
#[test]
fn a_forged_iptables_line_deletes_no_foreign_rule() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-ipt.rhai", "netns::add(\"hji\");\n");
    let r = run(&format!(
        r#"iptables -t nat -A POSTROUTING -s 10.55.0.0/24 -j MASQUERADE
nslab run {path} >/dev/null
forge hj-ipt '{{"op":"ipt_append","ns":null,"table":"nat","chain":"POSTROUTING","rule":["-s","10.55.0.0/24","-j","MASQUERADE"]}}'
if nslab destroy hj-ipt 2>&1; then echo "destroy said success"; exit 1; fi
iptables -t nat -S POSTROUTING | grep -q -- '-s 10.55.0.0/24 -j MASQUERADE' || {{ echo "the admin's rule deleted"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("nat rule `-A POSTROUTING -s 10.55.0.0/24 -j MASQUERADE` in the host: not shown to be this lab's: it carries no comment nslab:hj-ipt"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// Forged `ip rule` lines naming the admin's rule, with and without nslab's mark: the
/// rule stays (the marked line is backed by no claim, `route_claims`). The lab's own rule
/// outside its namespaces carries the mark, is claimed, and goes.
#[test]
fn a_forged_rule_line_deletes_no_foreign_rule() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-rule.rhai", "rule::add(#{from: \"10.77.1.0/24\", table: 77});\n");
    let rule = r#"{"v6":false,"from":"10.66.0.0/24","table":66,"priority":600"#;
    let r = run(&format!(
        r#"ip rule add from 10.66.0.0/24 table 66 priority 600
nslab run {path} >/dev/null
ip -j rule | grep -q '"src":"10.77.1.0","srclen":24,"table":"77","protocol":"110"' || {{ echo "rule not marked"; ip rule; exit 1; }}
forge hj-rule '{{"op":"rule_add","ns":null,"rule":{rule}}}}}'
forge hj-rule '{{"op":"rule_add","ns":null,"rule":{rule},"protocol":110}}}}'
if nslab destroy hj-rule 2>&1; then echo "destroy said success"; exit 1; fi
ip -j rule | grep -q '"priority":600,"src":"10.66.0.0"' || {{ echo "the admin's rule deleted"; exit 1; }}
! ip rule | grep -q 10.77.1.0 || {{ echo "the lab's rule left"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("rule `from 10.66.0.0/24 table 66 priority 600` in the host: not shown to be this lab's: the lab holds no claim on it"),
        "{}",
        r.stdout
    );
    assert!(
        text.contains(
            "not shown to be this lab's: the journal's record carries no nslab mark (protocol 110)"
        ),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// A forged temporary write (nslab's only one is `promote_secondaries`) naming
/// `ip_forward`: destroy does not "put back" a value the admin set.
#[test]
fn a_forged_temporary_sysctl_line_changes_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-temp.rhai", "netns::add(\"hjt\");\n");
    let r = run(&format!(
        r#"echo 1 > /proc/sys/net/ipv4/ip_forward
nslab run {path} >/dev/null
forge hj-temp '{{"op":"sysctl_temp","ns":null,"key":"net.ipv4.ip_forward","value":"1","old":"0"}}'
if nslab destroy hj-temp 2>&1; then echo "destroy said success"; exit 1; fi
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || {{ echo "ip_forward changed"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("sysctl net.ipv4.ip_forward in the host: not shown to be this lab's"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// A forged `sysctl_set` line claiming the lab turned `ip_forward` on (old value 0): no claim
/// of the lab vouches for it, so destroy leaves the admin's 1, and says so. A lab's own
/// sysctl still comes back.
#[test]
fn a_forged_sysctl_line_changes_nothing() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-sysctl.rhai", "sysctl::set(\"net.ipv4.ip_default_ttl\", \"32\");\n");
    let r = run(&format!(
        r#"echo 1 > /proc/sys/net/ipv4/ip_forward
nslab run {path} >/dev/null
forge hj-sysctl '{{"op":"sysctl_set","ns":null,"key":"net.ipv4.ip_forward","value":"1","old":"0"}}'
if nslab destroy hj-sysctl 2>&1; then echo "destroy said success"; exit 1; fi
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || {{ echo "ip_forward changed"; exit 1; }}
echo "ttl: $(cat /proc/sys/net/ipv4/ip_default_ttl)"
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("sysctl net.ipv4.ip_forward in the host: not shown to be this lab's: the lab holds no claim on it"),
        "{}",
        r.stdout
    );
    assert!(text.contains("ttl: 64\nclean"), "{}", r.stdout);
}

/// A `tc_set` line forged on the sandbox's `uplink`, saying the lab left it the kernel's
/// default qdisc (which is what uplink has) and that a tbf was there before: destroy would
/// have installed that tbf. The kernel marks no qdisc, so only a claim the lab took when it
/// changed the link vouches for such a line: none here, and uplink keeps its qdisc. The
/// lab's own claimed change on another foreign link is still put back.
#[test]
fn a_forged_qdisc_line_installs_nothing_on_a_foreign_link() {
    if !kernel_tests_possible() || !kernel_has("tbf") {
        return;
    }
    let path = recipe("hj-tc.rhai", "tc::rate(\"mine\", \"8mbit\");\n");
    let r = run(&format!(
        r#"ip link add mine type veth peer name mine2
before=$(tc qdisc show dev uplink)
nslab run {path} >/dev/null
ls /run/nslab/.tc/mine >/dev/null || {{ echo "no claim for mine"; exit 1; }}
forge hj-tc '{{"op":"tc_set","ns":null,"dev":"uplink","qdisc":{{"kind":"default"}},"old":{{"kind":"tbf","rate":1000,"burst":5000,"limit":10000}}}}'
if nslab destroy hj-tc 2>&1; then echo "destroy said success"; exit 1; fi
[ "$(tc qdisc show dev uplink)" = "$before" ] || {{ echo "uplink's qdisc changed: $(tc qdisc show dev uplink)"; exit 1; }}
tc qdisc show dev mine | grep -q tbf && {{ echo "mine kept the lab's tbf"; exit 1; }}
[ ! -e /run/nslab/.tc/mine ] || {{ echo "claim left"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let text = unwrapped(&r.stdout);
    assert!(
        text.contains("root qdisc of uplink in the host: not shown to be this lab's: the lab holds no claim on it"),
        "{}",
        r.stdout
    );
    assert!(text.contains("clean"), "{}", r.stdout);
}

/// A run killed between `ip netns add` and recording the netns's identity (seen in
/// lifecycle's kill -9 test) leaves a journal whose last line made a netns no identity
/// vouches for: it holds nothing but `lo`, so destroy takes it as the lab's. Simulated by
/// dropping the recorded identity.
#[test]
fn a_netns_made_just_before_a_kill_is_destroyed() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("hj-kill.rhai", "netns::add(\"hjk1\");\nnetns::add(\"hjk2\");\n");
    let r = run(&format!(
        r#"nslab run {path} >/dev/null
grep -v '"hjk2"' /run/nslab/hj-kill/netns > /tmp/ids; cp /tmp/ids /run/nslab/hj-kill/netns
nslab destroy hj-kill
[ -z "$(ip netns list | grep hjk)" ] || {{ echo "left: $(ip netns list)"; exit 1; }}
echo clean"#
    ));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("clean"), "{}", r.stdout);
}
