//! The sandbox as seen from inside (issue 10): its own sysfs, /etc/resolv.conf and
//! /etc/hosts, a PID namespace whose processes end with it, mounts nobody outside sees, and
//! all of it without root.

use std::time::{Duration, Instant};

use crate::common::{is_root, kernel_tests_possible, nslab_unprivileged, recipe, sandboxed};

/// The host's links (sysfs as the test sees it): none of them but `lo` may show inside.
/// (`ls -I bonding_masters`: once the bonding module is loaded, as on the second kernel,
/// every netns's sysfs has that file beside its links.)
fn host_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo" && n != "bonding_masters")
        .collect()
}

#[test]
fn sysfs_shows_only_the_sandbox_links() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        ls -I bonding_masters /sys/class/net
        echo ==
        ip link add s-a type veth peer name s-b
        ls -I bonding_masters /sys/class/net | tr '\n' ' '; echo
        echo ==
        ip netns add red
        ip link set s-b netns red
        ip netns exec red ls -I bonding_masters /sys/class/net | tr '\n' ' '; echo
        "#,
    );
    r.ok();
    let parts: Vec<&str> = r.stdout.split("==\n").collect();
    assert_eq!(parts[0], "lo\nuplink\n", "{}", r.stdout);
    assert_eq!(parts[1], "lo s-a s-b uplink \n", "{}", r.stdout);
    assert_eq!(parts[2], "lo s-b \n", "{}", r.stdout);
    for l in host_links() {
        assert!(!r.stdout.contains(&l), "the host's {l} shows in the sandbox: {}", r.stdout);
    }
}

/// `netns::exec` gives its command the netns's own sysfs, as `ip netns exec` does, and the
/// files of /etc/netns/NAME are not needed for that.
#[test]
fn netns_exec_sees_the_netns_sysfs() {
    if !kernel_tests_possible() {
        return;
    }
    let rec = recipe(
        "sb-sysfs.rhai",
        r#"netns::add("red");
veth::add("to-red", "eth0", "red");
let r = netns::exec("red", "ls -I bonding_masters /sys/class/net");
print(`red: ${r.stdout.split("\n").filter(|l| l != "")}`);
"#,
    );
    // With every mount shared, as systemd leaves a host: the command's sysfs stays its own.
    let r = sandboxed(&format!(
        "mount --make-rshared /; grep -c ' /sys ' /proc/self/mountinfo; nslab run {rec}; grep -c ' /sys ' /proc/self/mountinfo; ls -I bonding_masters /sys/class/net | tr '\n' ' '"
    ));
    r.ok();
    assert!(r.stdout.contains(r#"red: ["eth0", "lo"]"#), "{}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.first(), lines.get(3), "a command's sysfs showed outside: {}", r.stdout);
    assert_eq!(lines.last(), Some(&"lo to-red uplink "), "{}", r.stdout);
}

/// A lookup fails at once (or answers from the sandbox's /etc/hosts), also from a lab
/// netns whose default route leads to the simulated internet.
#[test]
fn name_lookups_answer_at_once() {
    if !kernel_tests_possible() {
        return;
    }
    let r = sandboxed(
        r#"
        ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
        s=$(date +%s%N); getent hosts localhost > /dev/null; echo "base: $(ms $s) ms"
        s=$(date +%s%N); getent hosts example.com && exit 9 || true; echo "root: $(ms $s) ms"
        getent hosts internet
        ip netns add red
        ip link add v-red type veth peer name eth0 netns red
        ip addr add 10.5.0.1/24 dev v-red; ip link set v-red up
        ip -n red addr add 10.5.0.2/24 dev eth0; ip -n red link set eth0 up; ip -n red link set lo up
        ip -n red route add default via 10.5.0.1
        echo 1 > /proc/sys/net/ipv4/ip_forward
        s=$(date +%s%N); ip netns exec red getent hosts localhost > /dev/null; echo "red base: $(ms $s) ms"
        s=$(date +%s%N); ip netns exec red getent hosts example.com && exit 9 || true; echo "red: $(ms $s) ms"
        ip netns exec red python3 -c 'import socket, time; t = time.time(); socket.getfqdn(); print(f"fqdn: {int((time.time() - t) * 1000)} ms")' 
        "#,
    );
    r.ok();
    assert!(r.stdout.contains("203.0.113.1     internet\n"), "{}", r.stdout);
    let ms = |what: &str| -> u64 {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{what}: "))?.strip_suffix(" ms")?.parse().ok())
            .unwrap_or_else(|| panic!("no time for {what}: {}", r.stdout))
    };
    // On the second kernel (emulated, ~10x slower) starting getent alone takes a while: what
    // counts there is the time beyond a lookup /etc/hosts answers.
    let second = std::env::var_os("NSLAB_SECOND_KERNEL").is_some();
    for (what, base) in [("root", "base"), ("red", "red base"), ("fqdn", "")] {
        let base = if second && !base.is_empty() { ms(base) } else { 0 };
        let t = ms(what);
        let limit = 1000 * u64::from(crate::common::slowdown()) + base;
        assert!(t < limit, "{what} took {t} ms (base {base} ms): {}", r.stdout);
    }
}

/// PID 1 of the sandbox is nslab: /proc shows the sandbox's processes only, and what was
/// started inside ends with the sandbox, even when it left its session.
#[test]
fn what_runs_inside_ends_with_the_sandbox() {
    if !kernel_tests_possible() {
        return;
    }
    let marker = format!("1000.{}", std::process::id());
    let r = sandboxed(&format!(
        r#"
        setsid sleep {marker} > /dev/null 2>&1 < /dev/null &
        ls /proc | grep -c '^[0-9]' 
        ps -o pid=,comm= -p 1
        "#
    ));
    r.ok();
    let mut lines = r.stdout.lines();
    let n: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(n < 10, "/proc shows {n} processes: {}", r.stdout);
    assert_eq!(lines.next().unwrap().split_whitespace().nth(1), Some("nslab"), "{}", r.stdout);
    // Killed when PID 1 went; the kernel may take a moment to reap it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        });
        if !left {
            break;
        }
        assert!(Instant::now() < deadline, "setsid sleep {marker} outlived its sandbox");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a sandbox mounts stays inside it.
#[test]
fn sandbox_mounts_stay_inside() {
    if !kernel_tests_possible() {
        return;
    }
    let dir = tempdir("mounts");
    let d = dir.display();
    std::fs::create_dir(dir.join("m")).unwrap();
    let mut child = std::process::Command::new(crate::common::bin())
        .args([
            "sandbox",
            "--",
            "bash",
            "-ec",
            &format!("mount -t tmpfs nslab-marker '{d}/m'; touch '{d}/m/inside'; touch '{d}/ready'; while [ ! -e '{d}/done' ]; do sleep 0.05; done"),
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("ready").exists() {
        assert!(Instant::now() < deadline, "the sandbox did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked = mounts.contains("nslab-marker") || dir.join("m/inside").exists();
    let sysfs = mounts.lines().filter(|l| l.contains(" - sysfs ")).count();
    std::fs::write(dir.join("done"), "").unwrap();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!leaked, "the sandbox's tmpfs shows outside:\n{mounts}");
    assert!(sysfs <= 1, "a sandbox's sysfs shows outside:\n{mounts}");
}

/// A directory in /tmp for one test (removed by the test).
fn tempdir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("nslab-sb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The README's first command, as uid 65534 (or the ordinary user running the tests).
#[test]
fn the_walkthrough_runs_without_root() {
    if !kernel_tests_possible() {
        return;
    }
    let r = nslab_unprivileged(&["run", "--sandbox", "scripts/tutorial.rhai"]);
    r.ok();
    let oks = r.stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert_eq!(oks, 9, "{}", r.stdout);
    assert!(r.stdout.contains("lab tutorial is up (34 operations)"), "{}", r.stdout);
    // A sandbox without root: uid 0 inside, the caller outside; host links unseen.
    let r = nslab_unprivileged(&[
        "sandbox",
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; ls -I bonding_masters /sys/class/net",
    ]);
    r.ok();
    let uid = if is_root() { "65534".to_string() } else { nix::unistd::geteuid().to_string() };
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("0"), "{}", r.stdout);
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", uid.as_str(), "1"], "{}", r.stdout);
    assert_eq!(lines.collect::<Vec<_>>(), ["lo", "uplink"], "{}", r.stdout);
    // The REPL too.
    let r = crate::common::nslab_unprivileged_with_input(
        &["repl", "--sandbox"],
        "netns::add(\"red\");\nprint(netns::list());\nprint(probe::ping(\"internet\", \"203.0.113.2\").ok);\n",
    );
    r.ok();
    assert!(r.stdout.contains(r#"["internet", "red"]"#), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("true\n"), "{}", r.stdout);
    // Without --sandbox the user gets the clear "needs root" (lifecycle tests `run`).
    let r = nslab_unprivileged(&["repl"]);
    r.failed();
    assert!(r.stderr.contains("nslab needs root"), "{}", r.stderr);
}

/// SIGTERM to the nslab that made a sandbox reaches its PID 1: a run rolls back and ends.
#[test]
fn sigterm_reaches_a_sandboxed_run() {
    if !kernel_tests_possible() {
        return;
    }
    let rec = recipe(
        "sb-forever.rhai",
        "netns::add(\"red\");\nprint(\"built\");\nlet x = 0;\nloop { x += 1; }\n",
    );
    let mut child = std::process::Command::new(crate::common::bin())
        .args(["run", "--sandbox", &rec])
        .current_dir(crate::common::root())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the recipe runs (it prints "built"): the second kernel runs under emulation, where
    // a fixed wait would be too short.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "built\n");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(start.elapsed() < Duration::from_secs(20), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rolled back"), "{err}");
}
