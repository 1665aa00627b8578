use super::*;

fn ops(p: &Plan, ops: Vec<Op>) {
    for op in ops {
        p.apply(op).unwrap();
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

fn walkthrough(p: &Plan) {
    let red = Some(s("red"));
    ops(
        p,
        vec![
            Op::BridgeAdd { ns: None, name: s("br") },
            Op::LinkUp { ns: None, dev: s("br") },
            Op::AddrAdd { ns: None, dev: s("br"), cidr: "10.0.0.1/24".parse().unwrap() },
            Op::NetnsAdd { name: s("red") },
            Op::VethAdd { ns: None, name: s("v-red"), peer: s("v-red-br"), peer_ns: None },
            Op::LinkSetNetns { ns: None, dev: s("v-red"), to: s("red") },
            Op::LinkSetMaster { ns: None, dev: s("v-red-br"), master: Some(s("br")) },
            Op::LinkUp { ns: None, dev: s("v-red-br") },
            Op::AddrAdd { ns: red.clone(), dev: s("v-red"), cidr: "10.0.0.10/24".parse().unwrap() },
            Op::LinkUp { ns: red.clone(), dev: s("v-red") },
            Op::RouteAdd {
                ns: red.clone(),
                dest: None,
                via: Some("10.0.0.1".parse().unwrap()),
                dev: None,
                opts: Default::default(),
            },
        ],
    );
}

#[test]
fn ops_render_and_build_the_model() {
    let p = Plan::new("t");
    walkthrough(&p);
    assert_eq!(p.lines()[0], "ip link add name br type bridge", "`br` alone reads as `broadcast`");
    assert_eq!(p.lines()[5], "ip link set v-red netns red");
    let red = p.links(Some("red")).unwrap();
    assert_eq!(red.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["lo", "v-red"]);
    assert_eq!(red[1].alias.as_deref(), Some("nslab:t"));
    assert_eq!(red[1].oper, "up");
    let ports = p.bridge_ports(None, "br").unwrap();
    assert_eq!(ports.len(), 1);
    let routes = p.routes(Some("red"), Some(254)).unwrap();
    assert_eq!(routes[0].dest, "default");
    assert_eq!(routes[0].via.as_deref(), Some("10.0.0.1"));
    assert_eq!(routes[1].dest, "10.0.0.0/24");
    assert_eq!(routes[1].proto, "kernel");
    assert!(p.netns_exists("red").unwrap());
    assert_eq!(p.netns_list().unwrap(), ["red"]);
}

#[test]
fn the_kernel_refusals_come_back_in_its_words() {
    let p = Plan::new("t");
    walkthrough(&p);
    let e = p.apply(Op::NetnsAdd { name: s("red") }).unwrap_err();
    assert_eq!((e.message.as_str(), e.errno), ("netns red already exists", Some(libc::EEXIST)));
    let e = p.apply(Op::LinkUp { ns: Some(s("red")), dev: s("nope") }).unwrap_err();
    assert_eq!((e.message.as_str(), e.errno), ("no link nope in netns red", Some(libc::ENODEV)));
    let e = p.apply(Op::LinkUp { ns: Some(s("blue")), dev: s("lo") }).unwrap_err();
    assert_eq!(e.message, "netns blue does not exist");
    let e = p.apply(Op::BridgeAdd { ns: None, name: s("br") }).unwrap_err();
    assert_eq!(e.message, "link br already exists in the host");
    // A gateway outside every connected subnet, as the kernel's nexthop check sees it.
    let e = p
        .apply(Op::RouteAdd {
            ns: Some(s("red")),
            dest: Some("10.9.0.0/16".parse().unwrap()),
            via: Some("10.1.0.1".parse().unwrap()),
            dev: None,
            opts: Default::default(),
        })
        .unwrap_err();
    assert_eq!(e.errno, Some(libc::ENETUNREACH));
    let e = p
        .apply(Op::RouteAdd {
            ns: Some(s("red")),
            dest: None,
            via: Some("10.0.0.1".parse().unwrap()),
            dev: None,
            opts: Default::default(),
        })
        .unwrap_err();
    assert_eq!(e.message, "netns red already has a route default");
    let e = p.apply(Op::LinkDel { ns: None, dev: s("lo") }).unwrap_err();
    assert_eq!(e.errno, Some(libc::EPERM));
    // Nothing failed is rendered.
    assert_eq!(p.lines().len(), 11);
}

#[test]
fn deleting_a_netns_takes_the_veth_peer_along() {
    let p = Plan::new("t");
    walkthrough(&p);
    p.apply(Op::NetnsDel { name: s("red") }).unwrap();
    assert!(p.links(None).unwrap().iter().all(|l| l.name != "v-red-br"));
    assert!(!p.netns_exists("red").unwrap());
}

#[test]
fn probes_print_commands_and_learn_neighbours() {
    let p = Plan::new("t");
    walkthrough(&p);
    let r = p
        .ping(
            Some("red"),
            "10.0.0.1".parse().unwrap(),
            None,
            Echoes::new(3, Duration::from_secs(1), true),
        )
        .unwrap()
        .unwrap();
    assert!(r.ok);
    assert_eq!(
        p.lines().last().unwrap(),
        "ip netns exec red ping -c1 -w3 10.0.0.1 || echo 'ping failed (nslab run goes on: only an assert of its result stops it)' >&2"
    );
    let n = p.neighbours(Some("red")).unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].ip, "10.0.0.1");
    assert!(p.fdb(None, "br").unwrap().iter().any(|e| !e.local && e.port == "v-red-br"));
}

#[test]
fn masquerade_and_port_forward_are_traced() {
    let p = Plan::new_sandboxed("t");
    walkthrough(&p);
    let rule = |w: &str| w.split(' ').map(String::from).collect::<Vec<_>>();
    ops(
        &p,
        vec![
            Op::SysctlSet { ns: None, key: s("net.ipv4.ip_forward"), value: s("1"), old: None },
            Op::IptAppend {
                ns: None,
                table: s("nat"),
                chain: s("POSTROUTING"),
                rule: rule("-s 10.0.0.0/24 ! -d 10.0.0.0/24 -j MASQUERADE"),
            },
            Op::IptAppend {
                ns: None,
                table: s("nat"),
                chain: s("PREROUTING"),
                rule: rule(
                    "-p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment nslab:t -j DNAT --to-destination 10.0.0.10:80",
                ),
            },
        ],
    );
    p.serve(Some("internet"), 80).unwrap();
    let r = p
        .tcp(Some("red"), "203.0.113.1:80".parse().unwrap(), Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert_eq!(r.seen.as_deref(), Some("203.0.113.2"));
    p.serve(Some("red"), 80).unwrap();
    let r = p
        .tcp(Some("internet"), "203.0.113.2:8080".parse().unwrap(), Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert!(r.reply.starts_with("nslab-serve ns=red seen=203.0.113.1:"), "{}", r.reply);
    assert_eq!(
        p.nat_list(None).unwrap()[0],
        "-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -m comment --comment \"nslab:t\" -j DNAT --to-destination 10.0.0.10:80"
    );
    // The sandbox's own objects are known but not rendered.
    assert!(!p.lines().iter().any(|l| l.contains("uplink")));
    assert_eq!(p.serve(Some("red"), 80).unwrap_err().errno, Some(libc::EADDRINUSE));
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

#[test]
fn the_plan_writes_no_refusal_of_its_own() {
    // Its refusals are the kernel executor's words, from net/refusal.rs: a sentence written
    // here would drift from what `nslab run` says.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lab/plan");
    for (path, text) in sources(&dir) {
        if path.ends_with("tests.rs") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            for banned in ["NetError::new(", "NetError { message", "generic(", ".with_help("] {
                assert!(
                    !line.contains(banned),
                    "{}:{}: hand-written refusal ({banned}); add it to net/refusal.rs",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn no_match_on_op_has_a_wildcard_arm() {
    // A new Op must not compile until every place that gives an Op its meaning has an arm for
    // it: a `_ =>` among `Op::` arms would take it silently.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (path, text) in sources(&dir) {
        let lines: Vec<&str> = text.lines().collect();
        let indent = |l: &str| l.len() - l.trim_start().len();
        for (i, l) in lines.iter().enumerate() {
            if !l.trim_start().starts_with("_ =>") {
                continue;
            }
            // The other arms of this match: the lines above at the same indentation, up to
            // the `match` line.
            let arms = lines[..i]
                .iter()
                .rev()
                .take_while(|a| a.trim().is_empty() || indent(a) >= indent(l))
                .filter(|a| indent(a) == indent(l));
            let on_op = arms.clone().any(|a| {
                let a = a.trim_start().trim_start_matches("| ");
                a.starts_with("Op::") || a.starts_with("(Op::") || a.starts_with("Some(Op::")
            });
            assert!(!on_op, "{}:{}: a wildcard arm in a match on Op", path.display(), i + 1);
        }
    }
}

#[test]
fn links_are_found_by_name_after_moves_and_deletes() {
    let p = Plan::new("t");
    walkthrough(&p);
    ops(
        &p,
        vec![
            Op::NetnsAdd { name: s("blue") },
            Op::VethAdd { ns: None, name: s("a"), peer: s("b"), peer_ns: Some(s("blue")) },
            // Deleting v-red (and its peer outside) shifts every later link in the model.
            Op::LinkDel { ns: Some(s("red")), dev: s("v-red") },
            Op::LinkSetNetns { ns: None, dev: s("a"), to: s("red") },
        ],
    );
    let names = |ns| p.links(ns).unwrap().into_iter().map(|l| l.name).collect::<Vec<_>>();
    assert_eq!(names(Some("red")), ["lo", "a"]);
    assert_eq!(names(Some("blue")), ["lo", "b"]);
    assert_eq!(names(None), ["lo", "br"], "v-red-br went with its peer");
    let m = p.model.borrow();
    assert!(m.find(None, "a").is_none() && m.find(None, "v-red-br").is_none());
    let a = m.find(Some("red"), "a").expect("a moved to red");
    assert_eq!(m.links[a].name, "a");
    assert_eq!(m.by_uid(m.links[a].uid).map(|l| l.name.as_str()), Some("a"));
    let b = m.links[a].peer.and_then(|p| m.by_uid(p)).expect("a's peer");
    assert_eq!((b.ns.as_deref(), b.name.as_str()), (Some("blue"), "b"));
}
