//! Packet capture: `capture::` in recipes, `nslab capture`, and the tutorial's proof of NAT
//! on the wire — checked against tcpdump reading the pcap files nslab writes.

use crate::common::{kernel_tests_possible, nslab, recipe, sandboxed};

/// Two namespaces on one veth pair: a (10.9.0.1) and b (10.9.0.2).
const PAIR: &str = r#"
netns::add("a");
netns::add("b");
veth::add("va", "vb");
link::set_netns("va", "a");
link::set_netns("vb", "b");
addr::add("a", "va", "10.9.0.1/24");
addr::add("b", "vb", "10.9.0.2/24");
link::up("a", "va");
link::up("b", "vb");
"#;

/// The tutorial's egress probe, captured on `uplink` into a pcap: tcpdump (independent
/// eyes) sees only 203.0.113.2 as the source towards the internet, as the recipe asserts.
#[test]
fn the_tutorial_proves_masquerade_on_the_wire() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT  # the sandbox shares /tmp with the host
        P=$T/uplink.pcap
        nslab run scripts/tutorial.rhai --set pcap=$P
        echo "== tcpdump"
        tcpdump -n -r $P 2>/dev/null
        "#,
    );
    r.ok();
    let (out, dump) = r.stdout.split_once("== tcpdump\n").unwrap();
    assert!(
        out.contains("ok: captured: veth-red-br carries 192.168.24.10 -> 203.0.113.1, uplink 203.0.113.2 -> 203.0.113.1"),
        "{out}"
    );
    assert!(
        out.contains("ok: captured: veth-red-br carries 203.0.113.1 -> 192.168.24.10:80 (DNAT)"),
        "{out}"
    );
    let to_internet: Vec<&str> =
        dump.lines().filter(|l| l.contains(" > 203.0.113.1.80:")).collect();
    assert!(to_internet.len() >= 3, "the handshake at least:\n{dump}");
    for l in &to_internet {
        assert!(l.contains(" IP 203.0.113.2."), "not masqueraded: {l}\n{dump}");
    }
    assert!(!dump.contains("192.168.24."), "an inside address leaked onto the uplink:\n{dump}");
}

#[test]
fn capture_decodes_filters_bounds_and_writes_pcap() {
    if !kernel_tests_possible() {
        return;
    }
    let pid = std::process::id();
    let script = format!(
        r#"{PAIR}
let all = capture::start("a", "va", #{{pcap: "target/test-capture-a-{pid}.pcap"}});
let icmp = capture::start("b", "vb", #{{proto: "icmp", host: "10.9.0.1"}});
let few = capture::start("b", "vb", #{{max: 2}});
assert(probe::ping("a", "10.9.0.2", #{{count: 3, timeout_ms: 100}}).received == 3);
let pkts = capture::stop(all);
let arp = pkts.filter(|p| p.proto == "arp");
assert(arp.len() >= 2, `no ARP exchange: ${{pkts.map(|p| p.summary)}}`);
print(arp[0].summary);
let echo = pkts.filter(|p| p.proto == "icmp");
assert(echo.len() == 6, `${{echo.map(|p| p.summary)}}`);
print(`${{echo[0].dir}} ${{echo[0].summary}}`);
print(`${{echo[1].dir}} ${{echo[1].src}} > ${{echo[1].dst}} len ${{echo[1].len}} no ports ${{echo[1].sport == () && echo[1].dport == ()}}`);
let icmp = capture::stop(icmp);
assert(icmp.len() == 6 && icmp.all(|p| p.proto == "icmp" && p.dev == "vb"), `${{icmp.map(|p| p.summary)}}`);
assert(icmp[0].time <= icmp[5].time);
let few_pkts = capture::stop(few);
assert(few_pkts.len() == 2 && capture::dropped(few) >= 6, `kept ${{few_pkts.len()}}, dropped ${{capture::dropped(few)}}`);
print(`bounded: kept 2, dropped ${{capture::dropped(few) > 0}}`);
assert(capture::stop(few).len() == 0, "a second stop returns nothing");
print(`${{capture::start("b", "vb")}}`);
"#
    );
    let path = recipe("capture-basics.rhai", &script);
    let pcap = format!("target/test-capture-a-{}.pcap", std::process::id());
    let r = sandboxed(&format!(
        "nslab run {path}\necho '== tcpdump'\ntcpdump -n -r {pcap} 2>/dev/null | cut -d' ' -f2-; rm -f {pcap}"
    ));
    r.ok();
    let (out, dump) = r.stdout.split_once("== tcpdump\n").unwrap();
    assert!(out.contains("ARP, Request who-has 10.9.0.2 tell 10.9.0.1, length 28"), "{out}");
    assert!(out.contains("out IP 10.9.0.1 > 10.9.0.2: ICMP echo request, id "), "{out}");
    assert!(out.contains(", seq 0, length 64"), "{out}");
    assert!(out.contains("in 10.9.0.2 > 10.9.0.1 len 98 no ports true"), "{out}");
    assert!(out.contains("bounded: kept 2, dropped true"), "{out}");
    assert!(out.contains("<capture vb>"), "{out}");
    // The same packets, as tcpdump reads them from the pcap file.
    assert_eq!(dump.matches("ICMP echo request").count(), 3, "{dump}");
    assert_eq!(dump.matches("ICMP echo reply").count(), 3, "{dump}");
    assert!(dump.contains("ARP, Request who-has 10.9.0.2 tell 10.9.0.1"), "{dump}");
}

#[test]
fn capture_refuses_bad_input_with_help() {
    if !kernel_tests_possible() {
        return;
    }
    let cases = [
        (r#"capture::start("a", "nope0")"#, "no link nope0 in netns a"),
        (r#"capture::start("a", "va", #{proto: "sctp"})"#, "unknown protocol \"sctp\""),
        (r#"capture::start("a", "va", #{colour: 1})"#, "unknown option `colour`"),
        (r#"capture::start("a", "va", #{max: 0})"#, "option `max` must be an integer from 1"),
        (r#"capture::start("a", "va", #{host: "10.0.0.300"})"#, "invalid IP address"),
        (
            r#"capture::start("a", "va", #{pcap: "/nonexistent/dir/x.pcap"})"#,
            "cannot write pcap file",
        ),
        (r#"capture::start("zz", "va")"#, "netns zz does not exist"),
    ];
    for (call, want) in cases {
        let path = recipe("capture-bad.rhai", &format!("{PAIR}\n{call};\n"));
        let r = sandboxed(&format!("nslab run {path} 2>&1 || true"));
        assert!(r.stdout.contains(want), "{call}: wanted {want:?} in\n{}", r.stdout);
        assert!(r.stdout.contains("nothing is left behind"), "{call}:\n{}", r.stdout);
    }
}

/// Under `nslab plan` nothing is captured: stop returns (), never invented packets.
#[test]
fn plan_captures_nothing() {
    let path = recipe(
        "capture-plan.rhai",
        &format!(
            "{PAIR}\nlet c = capture::start(\"a\", \"va\");\nprobe::ping(\"a\", \"10.9.0.2\");\nlet p = capture::stop(c);\nprint(`stop gave ${{type_of(p)}}`);\n"
        ),
    );
    let r = nslab(&["plan", &path]);
    r.ok();
    assert!(r.stdout.contains("# stop gave ()"), "{}", r.stdout);
    assert!(
        r.stdout.contains("# capture::start (in the background until capture::stop): ip netns exec a tcpdump -n -i va\n"),
        "{}",
        r.stdout
    );
}

/// `nslab capture NS DEV` prints a ping's ICMP lines as tcpdump would and stops cleanly on
/// SIGINT, with the count on stderr.
#[test]
fn nslab_capture_prints_live_lines_until_sigint() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe("capture-live.rhai", PAIR);
    let r = sandboxed(&format!(
        r#"
        T=$(mktemp -d); trap 'rm -rf $T' EXIT
        nslab run {path} > /dev/null
        nslab capture b vb --proto icmp > $T/lines 2> $T/err &
        pid=$!
        sleep 0.5
        ip netns exec a ping -c 2 -i 0.2 -q 10.9.0.2 > /dev/null
        sleep 0.3
        kill -INT $pid
        wait $pid && echo "exit 0"
        cat $T/lines; cat $T/err
        nslab capture a va --count 1 --proto icmp > $T/one &
        pid=$!
        sleep 0.5
        ip netns exec b ping -c 1 -q 10.9.0.1 > /dev/null
        wait $pid && echo "count exit 0"
        cat $T/one
        "#
    ));
    r.ok();
    let o = &r.stdout;
    assert!(o.contains("exit 0"), "{o}\n{}", r.stderr);
    let before = o.split("count exit 0").next().unwrap_or_default();
    let requests: Vec<&str> = before.lines().filter(|l| l.contains("ICMP echo request")).collect();
    assert_eq!(requests.len(), 2, "{o}");
    // `HH:MM:SS.uuuuuu IP 10.9.0.1 > 10.9.0.2: ICMP echo request, id N, seq 1, length 64`
    let first = requests[0];
    assert_eq!(first.as_bytes()[2], b':', "{first}");
    assert!(first[16..].starts_with("IP 10.9.0.1 > 10.9.0.2: ICMP echo request, id "), "{first}");
    assert!(o.contains("IP 10.9.0.2 > 10.9.0.1: ICMP echo reply"), "{o}");
    assert!(o.contains("listening on vb in netns b (icmp); Ctrl-C stops"), "{o}");
    assert!(o.contains("4 packets captured"), "{o}");
    assert!(o.contains("count exit 0"), "{o}");
    let after = o.split("count exit 0\n").nth(1).unwrap_or_default();
    assert!(after.contains("IP 10.9.0.2 > 10.9.0.1: ICMP echo request"), "{o}");
}

/// A capture on the path of a ping does not slow it noticeably (< 1 ms per echo).
#[test]
fn a_capture_does_not_slow_a_ping() {
    if !kernel_tests_possible() {
        return;
    }
    let script = format!(
        r#"{PAIR}
probe::ping("a", "10.9.0.2");
let best = |on| {{
    let r = [];
    for i in 0..5 {{
        let c = if on {{ [capture::start("a", "va"), capture::start("b", "vb")] }} else {{ [] }};
        r.push(probe::ping("a", "10.9.0.2", #{{count: 20, timeout_ms: 20}}).rtt_ms);
        for x in c {{ capture::stop(x); }}
    }}
    r.sort();
    r[2]
}};
let off = best.call(false);
let on = best.call(true);
print(`rtt_ms without ${{off}} with ${{on}}`);
assert(on < off + 1.0, `a capture slowed the ping from ${{off}} ms to ${{on}} ms`);
"#
    );
    let path = recipe("capture-speed.rhai", &script);
    let r = sandboxed(&format!("nslab run {path}"));
    r.ok();
    eprintln!("{}", r.stdout.lines().find(|l| l.starts_with("rtt_ms")).unwrap_or(""));
}
