//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nslab")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How many times slower than this machine the one running the tests is:
/// `NSLAB_TEST_SLOWDOWN`, which `tests/kernel2.sh` sets to 10 for qemu without KVM (TCG),
/// else 1. Deadlines of waits that end as soon as their condition holds, and bounds on how
/// long something may take, are multiplied by it; plain sleeps never are.
pub fn slowdown() -> u32 {
    std::env::var("NSLAB_TEST_SLOWDOWN").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

/// Kernel tests build labs in sandboxes: as root, or as an ordinary user where the kernel
/// allows unprivileged user namespaces (the sandbox is then rootless). In CI (root) they
/// must run; elsewhere they are skipped loudly, with the reason.
pub fn kernel_tests_possible() -> bool {
    use std::sync::OnceLock;
    static WHY_NOT: OnceLock<Option<String>> = OnceLock::new();
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must run kernel tests as root");
    let why_not = WHY_NOT.get_or_init(|| {
        let r = sandboxed("true");
        (r.status != 0).then(|| r.stderr.trim().to_string())
    });
    if let Some(why) = why_not {
        eprintln!("skipping: kernel tests need root or a rootless sandbox, which failed:\n{why}");
    }
    why_not.is_none()
}

/// True when the tests run as root (the sandboxes then need no user namespace).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A copy of the nslab binary and of `scripts/` in a directory everyone may enter, for
/// running nslab as another user (uid 65534): the checkout may lie in a directory others
/// cannot enter (a clone in `mktemp -d`, under /root). Made once per test process.
pub fn public_copy() -> &'static Path {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::OnceLock;
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One per test process; those of test processes that ended go.
        for e in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("nslab-test-")
                && pid.parse::<u32>().is_ok()
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = std::env::temp_dir().join(format!("nslab-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("scripts/lib")).unwrap();
        for d in [dir.clone(), dir.join("scripts"), dir.join("scripts/lib")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::copy(bin(), dir.join("nslab")).unwrap();
        for sub in ["scripts", "scripts/lib"] {
            for e in std::fs::read_dir(root().join(sub)).unwrap().flatten() {
                if e.path().is_file() {
                    let to = dir.join(sub).join(e.file_name());
                    std::fs::copy(e.path(), &to).unwrap();
                    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
                }
            }
        }
        dir
    })
}

/// `nslab ARGS` as an ordinary user without capabilities, from [`public_copy`]: as uid
/// 65534 when the tests run as root, else as the user running them. Its PATH is an
/// ordinary user's on Debian, without the sbin directories.
pub fn nslab_unprivileged(args: &[&str]) -> Run {
    nslab_unprivileged_with_input(args, "")
}

/// [`nslab_unprivileged`] with `input` on its stdin.
pub fn nslab_unprivileged_with_input(args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let dir = public_copy();
    let nslab = dir.join("nslab");
    let mut c = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]).arg(nslab);
        c
    } else {
        Command::new(nslab)
    };
    let mut child = c
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env_remove("NSLAB_SANDBOX")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nslab runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    to_run(child.wait_with_output().expect("nslab runs"))
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.status, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn failed(&self) -> &Self {
        assert_ne!(
            self.status, 0,
            "expected failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "nslab panicked:\n{}", self.stderr);
        self
    }
}

fn to_run(o: Output) -> Run {
    Run {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `nslab ARGS` from the project root, with no colours.
pub fn nslab(args: &[&str]) -> Run {
    to_run(
        Command::new(bin())
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env_remove("NSLAB_SANDBOX")
            .output()
            .expect("nslab runs"),
    )
}

/// Runs a bash script inside a fresh sandbox (`nslab sandbox -- bash -c SCRIPT`), with
/// `nslab` on PATH and the project root as working directory. `set -e` is on.
pub fn sandboxed(script: &str) -> Run {
    let dir = Path::new(bin()).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    to_run(
        Command::new(bin())
            .args(["sandbox", "--", "bash", "-ec", script])
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("PATH", path)
            .output()
            .expect("nslab runs"),
    )
}

/// Writes a recipe to a temporary file named `name` and returns its path (relative names
/// appear in diagnostics, so snapshots stay stable).
pub fn recipe(name: &str, text: &str) -> String {
    let dir = root().join("target").join("test-recipes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
    format!("target/test-recipes/{name}")
}

/// Compares `actual` with `tests/snapshots/NAME`; `UPDATE_SNAPSHOTS=1` rewrites it.
pub fn snapshot(name: &str, actual: &str) {
    let path = root().join("tests").join("snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some()
        || !path.exists() && std::env::var_os("CI").is_none()
    {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(actual, expected, "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it)");
}

/// Parses JSON printed by `ip -j`.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

/// The features `kernel_has` knows, each with the iproute2 commands that need it.
pub const FEATURES: &[(&str, &str)] = &[
    ("netem", "ip link add t0 type veth peer t1; tc qdisc add dev t0 root netem delay 1ms"),
    (
        "tbf",
        "ip link add t0 type veth peer t1; tc qdisc add dev t0 root tbf rate 1mbit burst 32kbit latency 50ms",
    ),
    ("htb", "ip link add t0 type veth peer t1; tc qdisc add dev t0 root handle 1: htb default 10"),
    ("sfq", "ip link add t0 type veth peer t1; tc qdisc add dev t0 root sfq"),
    ("fq_codel", "ip link add t0 type veth peer t1; tc qdisc add dev t0 root fq_codel"),
    ("prio", "ip link add t0 type veth peer t1; tc qdisc add dev t0 root prio"),
    ("dummy", "ip link add t0 type dummy"),
    ("vlan", "ip link add t0 type veth peer t1; ip link add link t0 name t0.5 type vlan id 5"),
    ("bond", "ip link add t0 type bond"),
    ("wireguard", "ip link add t0 type wireguard"),
    (
        "macvlan",
        "ip link add t0 type veth peer t1; ip link add link t0 name m0 type macvlan mode bridge",
    ),
    ("ipvlan", "ip link add t0 type veth peer t1; ip link add link t0 name i0 type ipvlan mode l2"),
    ("vxlan", "ip link add t0 type vxlan id 42 dstport 4789 local 10.0.0.1"),
    // Read back from netlink, not sysfs: /sys/class/net/t0/bridge/vlan_filtering exists (and
    // says 0) on a kernel that accepted the bridge but not the filtering.
    (
        "bridge_vlan",
        "ip link add t0 type bridge vlan_filtering 1; ip -d -j link show t0 | grep -q '\"vlan_filtering\":1'",
    ),
];

/// Whether this kernel has `feature`, one of [`FEATURES`] (`bridge_vlan` is bridge VLAN
/// filtering). The first call probes them all in one throwaway sandbox, each in a netns of
/// its own, with iproute2; the answers are kept for the test process.
///
/// A feature the kernel lacks is never skipped in silence: the test prints why it stops, and
/// on the second kernel (`NSLAB_SECOND_KERNEL=1`, DESIGN §7, which has every module) a
/// missing feature fails the test. Call it after `kernel_tests_possible()`.
pub fn kernel_has(feature: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static HAS: OnceLock<HashMap<String, bool>> = OnceLock::new();
    let has = HAS.get_or_init(|| {
        let mut script = String::new();
        for (name, probe) in FEATURES {
            let probe = probe.replace('\'', r"'\''");
            script += &format!(
                "if unshare -n bash -ec '{probe}' >/dev/null 2>&1; then echo '{name} yes'; else echo '{name} no'; fi\n"
            );
        }
        let run = sandboxed(&script);
        // A sandbox that failed says nothing about the kernel: never turn it into "missing".
        run.ok();
        let seen: HashMap<String, bool> = run
            .stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, answer)| (name.to_string(), answer == "yes"))
            .collect();
        assert_eq!(seen.len(), FEATURES.len(), "feature probe output:\n{}", run.stdout);
        seen
    });
    let Some(&has) = has.get(feature) else { panic!("kernel_has: unknown feature {feature:?}") };
    report_feature(feature, has)
}

/// Whether this kernel has what recipe `path` (relative to the project root) needs, as its
/// `//! needs: vlan, bridge_vlan (...)` line says; a recipe without one needs nothing. Where
/// something is missing it says NOT RUN HERE (and on the second kernel, fails).
pub fn kernel_runs(path: &str) -> bool {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let needs: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("//! needs:"))
        .map(|n| n.split('(').next().unwrap().split(',').map(|w| w.trim().to_string()).collect())
        .unwrap_or_default();
    let missing: Vec<&String> = needs.iter().filter(|n| !kernel_has(n)).collect();
    if !missing.is_empty() {
        eprintln!("NOT RUN HERE: {path} needs {missing:?}");
    }
    missing.is_empty()
}

fn report_feature(feature: &str, has: bool) -> bool {
    if !has {
        assert!(
            std::env::var_os("NSLAB_SECOND_KERNEL").is_none(),
            "the second kernel must have {feature}"
        );
        eprintln!(
            "NOT RUN HERE: this kernel has no {feature}; this test runs on the second kernel (DESIGN §7, tests/kernel2.sh)"
        );
    }
    has
}

/// `p` quoted for a shell script (the checkout may live in a path with spaces).
pub fn shq(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// A diagnostic as one text: miette wraps long messages over lines that start with `  │ `.
pub fn unwrapped(s: &str) -> String {
    s.replace("\n  │ ", " ")
}
