//! Firewall rules (`fw::`) and the nat table's SNAT, DNAT, MASQUERADE exclude and the port
//! forward's OUTPUT rule, in sandboxes, checked with `iptables -S`, real sockets and curl.

use crate::common::{kernel_tests_possible, nslab, recipe, sandboxed, snapshot};

/// Rules on the sandbox root: exactly these lines in `iptables -S`, and gone after destroy.
#[test]
fn fw_rules_are_installed_as_written_and_removed_with_the_lab() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "fw-rules.rhai",
        r#"
fw::allow("input", #{state: ["established", "related"]});
fw::allow("input", #{proto: "tcp", dport: 22, src: "10.0.0.0/8", iif: "uplink"});
fw::reject("input", #{proto: "udp", dport: "5000:5010"});
fw::drop("forward", #{src: "10.9.0.5", oif: "uplink"});
fw::allow("output", #{proto: "icmp", dst: "203.0.113.1"});
let rules = fw::list();
assert(rules.len() == 5, `${rules}`);
assert(rules[0].contains("nslab:fwr"));
"#,
    );
    let r = sandboxed(&format!(
        r#"
        before=$(iptables -S)
        nslab run --lab fwr {path}
        echo "== filter"; iptables -S | grep nslab
        nslab destroy fwr
        [ "$(iptables -S)" = "$before" ] && echo "== same after destroy"
        "#
    ));
    r.ok();
    let want = r#"== filter
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "nslab:fwr" -j ACCEPT
-A INPUT -s 10.0.0.0/8 -i uplink -p tcp -m tcp --dport 22 -m comment --comment "nslab:fwr" -j ACCEPT
-A INPUT -p udp -m udp --dport 5000:5010 -m comment --comment "nslab:fwr" -j REJECT --reject-with icmp-port-unreachable
-A FORWARD -s 10.9.0.5/32 -o uplink -m comment --comment "nslab:fwr" -j DROP
-A OUTPUT -d 203.0.113.1/32 -p icmp -m comment --comment "nslab:fwr" -j ACCEPT
"#;
    assert!(r.stdout.contains(want), "{}", r.stdout);
    assert!(r.stdout.contains("== same after destroy"), "{}", r.stdout);
}

/// Issue 12: `#{out: "x'"}` installed `-o x` (the iptables crate drops quotes) while
/// --explain printed `'x'\''`. Such names are refused before anything is journaled.
#[test]
fn names_with_quotes_never_reach_iptables() {
    if !kernel_tests_possible() {
        return;
    }
    for (name, text) in [
        ("fw-quote", "fw::drop(\"forward\", #{oif: \"x'\"});\n"),
        ("nat-quote", "nat::masquerade(\"10.0.0.0/24\", #{out: \"x'\"});\n"),
        (
            "dnat-quote",
            "nat::dnat(#{iif: \"a\\\"b\", proto: \"tcp\", dport: 80}, \"10.0.0.1:80\");\n",
        ),
    ] {
        let path = recipe(&format!("{name}.rhai"), text);
        let r = sandboxed(&format!(
            "! nslab run --lab q {path} 2> $T/err; cat $T/err; iptables -S | grep -c nslab || true; iptables -t nat -S | grep -c nslab || true"
        ));
        r.ok();
        assert!(
            r.stdout.contains("cannot be used in an iptables rule: it has a quote"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.ends_with("0\n0\n"), "a rule was installed:\n{}", r.stdout);
    }
    let r = nslab(&[
        "run",
        "--sandbox",
        &recipe("fw-quote.rhai", "fw::drop(\"forward\", #{oif: \"x'\"});\n"),
    ]);
    r.failed();
    snapshot("fw-quote.txt", &r.stderr);
}

#[test]
fn bad_matches_get_a_diagnostic() {
    if !kernel_tests_possible() {
        return;
    }
    for (name, text) in [
        ("fw-chain", "fw::allow(\"prerouting\", #{});\n"),
        ("fw-ports-no-proto", "fw::allow(\"input\", #{dport: 80});\n"),
        ("fw-bad-key", "fw::drop(\"input\", #{port: 80});\n"),
        ("fw-bad-state", "fw::allow(\"forward\", #{state: \"open\"});\n"),
        ("fw-input-oif", "fw::drop(\"input\", #{oif: \"eth0\"});\n"),
        ("fw-bad-range", "fw::drop(\"input\", #{proto: \"tcp\", dport: \"90:80\"});\n"),
        ("nat-dnat-oif", "nat::dnat(#{oif: \"eth0\"}, \"10.0.0.1:80\");\n"),
        ("nat-snat-v6", "nat::snat(\"10.0.0.0/24\", \"fd00::1\");\n"),
    ] {
        let r = nslab(&["run", "--sandbox", &recipe(&format!("{name}.rhai"), text)]);
        r.failed();
        snapshot(&format!("{name}.txt"), &r.stderr);
    }
}

/// The nat table's new forms, as `iptables -t nat -S` shows them, inside a netns.
#[test]
fn snat_dnat_and_masquerade_exclude() {
    if !kernel_tests_possible() {
        return;
    }
    let path = recipe(
        "nat-forms.rhai",
        r#"
netns::add("node1");
nat::masquerade("node1", "10.200.1.0/24", #{exclude: "10.200.0.0/16"});
nat::masquerade("node1", "10.201.1.0/24", #{out: "eth0"});
nat::snat("node1", "10.202.1.0/24", "198.51.100.7", #{out: "eth0", exclude: "10.202.0.0/16"});
nat::dnat("node1", #{iif: "eth0", proto: "udp", dport: 53}, "10.200.1.53:5353");
"#,
    );
    let r = sandboxed(&format!(
        "nslab run --lab natf {path}; ip netns exec node1 iptables -t nat -S | grep nslab; nslab destroy natf"
    ));
    r.ok();
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("-A")).collect::<Vec<_>>(),
        [
            r#"-A PREROUTING -i eth0 -p udp -m udp --dport 53 -m comment --comment "nslab:natf" -j DNAT --to-destination 10.200.1.53:5353"#,
            r#"-A POSTROUTING -s 10.200.1.0/24 ! -d 10.200.0.0/16 -m comment --comment "nslab:natf" -j MASQUERADE"#,
            r#"-A POSTROUTING -s 10.201.1.0/24 ! -d 10.201.1.0/24 -o eth0 -m comment --comment "nslab:natf" -j MASQUERADE"#,
            r#"-A POSTROUTING -s 10.202.1.0/24 ! -d 10.202.0.0/16 -o eth0 -m comment --comment "nslab:natf" -j SNAT --to-source 198.51.100.7"#,
        ]
    );
}

/// Issue 12's "done when": `curl HOST_IP:8080` from the sandbox root reaches the forwarded
/// host (OUTPUT rule), like the internet does (PREROUTING); destroy removes both rules.
#[test]
fn port_forward_answers_curl_on_the_host_itself() {
    if !kernel_tests_possible() {
        return;
    }
    // Relative to the project root, where the sandbox's commands run (its path may hold spaces).
    let path = "scripts/port-forward-local.rhai";
    let r = sandboxed(&format!(
        r#"
        nslab run --lab pfl {path} > /dev/null
        # A tiny HTTP server in red (python's http.server would first look its address up in
        # DNS, which the sandbox cannot answer quickly).
        ip netns exec red timeout 20 python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.24.10", 80)); s.listen()
for _ in range(3):
    c, _ = s.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nhello from red\n"); c.close()
' &
        server=$!
        for i in $(seq 50); do ip netns exec red ss -ltn | grep -q ':80 ' && break; sleep 0.1; done
        echo "uplink: $(curl -s -m 5 http://203.0.113.2:8080/)"
        echo "bridge: $(curl -s -m 5 http://192.168.24.1:8080/)"
        echo "internet: $(ip netns exec internet curl -s -m 5 http://203.0.113.2:8080/)"
        wait $server || true
        nslab destroy pfl > /dev/null
        echo "left: $(iptables -t nat -S | grep -c nslab)"
        "#
    ));
    r.ok();
    assert_eq!(
        r.stdout,
        "uplink: hello from red\nbridge: hello from red\ninternet: hello from red\nleft: 0\n"
    );
}

/// The recipes pass in a sandbox, with their own probes.
#[test]
fn firewall_recipe_proves_itself() {
    if !kernel_tests_possible() {
        return;
    }
    let r = nslab(&["run", "--sandbox", "scripts/firewall.rhai"]);
    r.ok();
    for line in [
        "ok: client -> web:80 passes",
        "ok: client -> db:80 is dropped",
        "ok: web -> client:8000 is dropped the other way too",
    ] {
        assert!(r.stdout.contains(line), "{}", r.stdout);
    }
}
