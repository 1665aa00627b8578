//! The lab journal: `/run/nslab/LAB/journal`, one JSON line per Op, written *before* the Op
//! is applied (so a `kill -9` between the two leaves at worst an entry for an object that
//! does not exist, which teardown tolerates), and a `failed` line when the kernel refused it.
//! One `write(2)` per line on tmpfs: microseconds, and nothing is lost when the process dies.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::net::info::AddrId;
use crate::net::netns::NetnsId;
use crate::net::{NetError, NetResult, Op};

pub const STATE_DIR: &str = "/run/nslab";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Op {
        seq: u64,
        op: Op,
    },
    Failed {
        failed: u64,
    },
    /// The lab's netns `forget` was deleted and made again by someone else: from here on it
    /// is not the lab's. Written by nslab before `Op::NetnsForget`; read as that Op.
    Forget {
        forget: String,
    },
    /// The kernel's identity of the address Op `addr` put on a link the lab did not make
    /// (see [`AddrId`]), written right after the kernel made it.
    AddrMade {
        addr: u64,
        ifindex: u32,
        cstamp: u32,
    },
    /// A process group `netns::exec` left running in netns `netns` (inode `net_ino`).
    Background {
        background: i32,
        members: Vec<(i32, u64)>,
        netns: Option<String>,
        net_ino: u64,
    },
}

/// A process group the lab's `netns::exec` left running (see `ExecOutput::background`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Background {
    pub pgid: i32,
    /// (pid, start time) of its members when recorded (`exec::group_members`).
    pub members: Vec<(i32, u64)>,
    pub netns: Option<String>,
    pub net_ino: u64,
}

/// The process groups lab `lab` left running, for teardown to stop.
pub fn backgrounds(lab: &str) -> Vec<Background> {
    backgrounds_in(&std::fs::read(lab_dir(lab).join("journal")).unwrap_or_default())
}

fn backgrounds_in(bytes: &[u8]) -> Vec<Background> {
    bytes
        .split(|b| *b == b'\n')
        // Only the lines nslab writes for one: every destroy reads this, and reading each of
        // lab(1000)'s 8000 Op lines for nothing took 61 ms right after its build.
        .filter(|raw| raw.starts_with(b"{\"background\":"))
        .filter_map(|raw| unseal(raw).ok())
        .filter_map(|l| match read_line(l) {
            Ok(Line::Background { background, members, netns, net_ino }) => {
                Some(Background { pgid: background, members, netns, net_ino })
            }
            _ => None,
        })
        .collect()
}

/// Where an address is: (netns, link name, address).
pub(crate) type AddrKey = (crate::net::Ns, String, ipnet::IpNet);

/// The kernel's identity of each address lab `lab` put on a link it did not make, as its
/// journal records it (the latest for each address: the one still there). An address
/// without one (a line injected by hand, a journal older than this record, nslab killed
/// between the kernel's answer and this record) is not provably the lab's.
pub(crate) fn addr_ids(lab: &str) -> HashMap<AddrKey, AddrId> {
    addr_ids_in(&std::fs::read(lab_dir(lab).join("journal")).unwrap_or_default())
}

fn addr_ids_in(bytes: &[u8]) -> HashMap<AddrKey, AddrId> {
    let mut ops: HashMap<u64, Op> = HashMap::new();
    let mut ids = HashMap::new();
    for l in bytes.split(|b| *b == b'\n').filter_map(|raw| unseal(raw).ok()) {
        match read_line(l) {
            Ok(Line::Op { seq, op: op @ Op::AddrAdd { .. } }) => {
                ops.insert(seq, op);
            }
            Ok(Line::AddrMade { addr, ifindex, cstamp }) => {
                if let Some(Op::AddrAdd { ns, dev, cidr }) = ops.get(&addr) {
                    ids.insert((ns.clone(), dev.clone(), *cidr), AddrId { ifindex, cstamp });
                }
            }
            _ => {}
        }
    }
    ids
}

/// What a lab is, written once when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub lab: String,
    pub recipe: Option<String>,
    pub params: Vec<(String, String)>,
    /// Seconds since the epoch.
    pub created: u64,
    pub pid: u32,
    pub group: u32,
    /// Set by a destroy while it holds the lab: `pid` is then the destroy's, and a run it
    /// refuses says so instead of advising `kill PID` to roll back a run.
    #[serde(default)]
    pub destroying: bool,
    /// The number of the journal's last Op when the process that wrote it ended without
    /// being killed (a run that finished, a REPL left): while the journal still ends with
    /// that Op, nothing it names can be missing, and a destroy need not look for the lab's
    /// marks beyond it (see `sweep`). A journal cut short by hand, or written on by a
    /// process that then died, ends elsewhere.
    #[serde(default)]
    pub ended: Option<u64>,
}

pub fn lab_dir(lab: &str) -> PathBuf {
    Path::new(STATE_DIR).join(lab)
}

pub fn exists(lab: &str) -> bool {
    lab_dir(lab).join("journal").exists()
}

/// Every lab that has a journal, sorted by name.
pub fn labs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(STATE_DIR)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("journal").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Written to a temporary file and renamed: a reader never sees it half written (a loser of
/// two same-lab runs read an empty meta.json and named "process 0", issue 14).
pub fn write_meta(meta: &Meta) -> NetResult<()> {
    let dir = lab_dir(&meta.lab);
    let tmp = dir.join(format!(".meta.json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(meta).expect("meta serialises"))
        .and_then(|()| std::fs::rename(&tmp, dir.join("meta.json")))
        .map_err(|e| {
            NetError::from(e)
                .with_help(format!("nslab keeps its labs under {STATE_DIR}: is it writable?"))
        })
}

/// The process that runs lab `lab` right now, if any. A running lab's journal is locked
/// (flock) by the process that writes it; the kernel drops the lock when that process dies,
/// `kill -9` included, so the lock says "running" whatever the binary is called and however
/// pids get reused. meta.json only supplies the pid to show.
pub fn running_pid(lab: &str) -> Option<u32> {
    let pid = read_meta(lab).map(|m| m.pid);
    if pid == Some(std::process::id()) {
        return None;
    }
    let file = File::open(lab_dir(lab).join("journal")).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        // Locked: someone writes it. Its pid is in meta.json, written right after the lock
        // is taken: a moment's wait finds it.
        Err(std::fs::TryLockError::WouldBlock) => {
            Some(pid.or_else(|| meta_pid_soon(lab)).unwrap_or(0))
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// The pid in meta.json within ~200 ms (a run that just won the journal writes it next).
fn meta_pid_soon(lab: &str) -> Option<u32> {
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if let Some(m) = read_meta(lab) {
            return Some(m.pid);
        }
    }
    None
}

/// Whether a destroy holds lab `lab` right now (see [`Meta::destroying`]).
pub fn being_destroyed(lab: &str) -> bool {
    read_meta(lab).is_some_and(|m| m.destroying)
}

/// Holds lab `lab`'s journal lock for a destroy, so that no run or REPL takes the lab up
/// while it goes. None when someone holds it (see [`running_pid`]) or there is no journal.
pub fn lock_for_destroy(lab: &str) -> Option<File> {
    let file = File::open(lab_dir(lab).join("journal")).ok()?;
    file.try_lock().ok()?;
    Some(file)
}

pub fn read_meta(lab: &str) -> Option<Meta> {
    serde_json::from_str(&std::fs::read_to_string(lab_dir(lab).join("meta.json")).ok()?).ok()
}

/// The Ops a lab applied successfully, in order (lines found damaged are left out: see
/// [`read_all`] for those who must know).
pub fn read(lab: &str) -> NetResult<Vec<Op>> {
    read_all(lab).map(|c| c.ops)
}

/// What a journal says, and where it is damaged.
#[derive(Debug, Default)]
pub struct Contents {
    /// The Ops from the lines that read back intact, in order.
    pub ops: Vec<Op>,
    /// The number of the last Op line (a failed one too).
    pub last_seq: u64,
    /// Each damaged line: "line N: why". Never acted on (a damaged line may say anything).
    pub damage: Vec<String>,
}

/// Reads lab `lab`'s journal as bytes, line by line: one bad byte (`\xff`) spoils its line,
/// not the journal (it made `nslab ls` fail for every lab, issue 14).
pub fn read_all(lab: &str) -> NetResult<Contents> {
    let path = lab_dir(lab).join("journal");
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NetError::new(format!("no lab named {lab}"))
            .with_help("`nslab ls` lists the labs that are up"),
        _ => NetError::new(format!("cannot read the journal of lab {lab} ({}): {e}", path.display()))
            .with_errno(e.raw_os_error().unwrap_or(libc::EIO))
            .with_help(format!(
                "it should be a file nslab wrote; if it is not, remove {} and what the lab made by hand (`nslab doctor` lists objects tagged nslab:{lab})",
                lab_dir(lab).display()
            )),
    })?;
    Ok(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Contents {
    let mut ops: Vec<(u64, Op)> = Vec::new();
    let mut damage = Vec::new();
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // The last piece has no newline: empty, or a line cut short by a crash mid-write. The
    // Op it announced was never applied (the line is written first).
    lines.pop();
    let mut last_seq = 0;
    let mut after_damage = false;
    for (i, raw) in lines.into_iter().enumerate() {
        let n = i + 1;
        let parsed = unseal(raw)
            .map_err(str::to_string)
            .and_then(|l| read_line(l).map_err(|e| e.to_string()));
        let line = match parsed {
            Ok(l) => l,
            Err(why) => {
                damage.push(format!("line {n}: {why}"));
                after_damage = true;
                continue;
            }
        };
        match line {
            Line::Op { seq, op } => {
                // A line deleted from the middle leaves a gap in the numbers (one after a
                // damaged line is that line's, already counted).
                if seq != last_seq + 1 && !after_damage {
                    damage.push(format!("line {n}: operation {seq} follows {last_seq}"));
                }
                last_seq = seq;
                ops.push((seq, op))
            }
            Line::Failed { failed } => ops.retain(|(s, _)| *s != failed),
            Line::Forget { forget } => ops.push((u64::MAX, Op::NetnsForget { name: forget })),
            Line::Background { .. } | Line::AddrMade { .. } => {}
        }
        after_damage = false;
    }
    Contents { ops: ops.into_iter().map(|(_, op)| op).collect(), last_seq, damage }
}

/// A line is `JSON<TAB>CRC32` (hex): the checksum tells a line nslab wrote from one damaged
/// on disk or edited by hand. It is no signature: whoever can write /run/nslab (root) can
/// compute it; ownership checks at teardown do not rest on it alone.
fn seal(json: &[u8]) -> Vec<u8> {
    let mut out = json.to_vec();
    out.extend_from_slice(format!("\t{:08x}\n", crc32(json)).as_bytes());
    out
}

fn unseal(raw: &[u8]) -> Result<&str, &'static str> {
    let Some(tab) = raw.iter().rposition(|b| *b == b'\t') else {
        return Err("no checksum (damaged, or not written by nslab)");
    };
    let (json, sum) = (&raw[..tab], &raw[tab + 1..]);
    let sum = std::str::from_utf8(sum).ok().and_then(|s| u32::from_str_radix(s, 16).ok());
    if sum != Some(crc32(json)) {
        return Err("checksum mismatch (damaged, or edited by hand)");
    }
    std::str::from_utf8(json).map_err(|_| "not UTF-8")
}

/// CRC-32 (IEEE) by table: lab(1000)'s journal is 8000 lines that every destroy reads, and
/// bit by bit that was 5 ms of it.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |crc, &b| (crc >> 8) ^ TABLE[((crc ^ b as u32) & 0xff) as usize])
}

/// An Op line, read without the untagged [`Line`]'s detour (serde buffers an untagged
/// line whole and tries each variant on the copy).
#[derive(Deserialize)]
struct OpLine {
    seq: u64,
    op: Op,
}

/// One unsealed line. Every line nslab writes starts with its variant's first key, so Op
/// lines (nearly all of them) go straight to [`OpLine`]; anything else, a hand-made line
/// with its keys in another order included, is read as [`Line`] (lab(1000)'s journal: 20
/// ms to read through `Line` alone).
fn read_line(l: &str) -> serde_json::Result<Line> {
    if l.starts_with("{\"seq\":")
        && let Ok(OpLine { seq, op }) = serde_json::from_str(l)
    {
        return Ok(Line::Op { seq, op });
    }
    serde_json::from_str(l)
}

pub struct Journal {
    file: File,
    seq: u64,
    /// `netns` beside the journal: "NAME ID" for each netns the lab made (see
    /// [`netns_ids`], `netns::identity`).
    ids: NetnsLog,
}

/// The `netns` file beside a journal, opened on first use, shared with the thread that
/// makes netns in the background (`netns_background`), which writes there itself.
#[derive(Clone)]
pub struct NetnsLog {
    path: std::path::PathBuf,
    file: std::sync::Arc<std::sync::Mutex<Option<File>>>,
}

impl NetnsLog {
    fn new(lab: &str) -> NetnsLog {
        NetnsLog { path: lab_dir(lab).join("netns"), file: Default::default() }
    }

    /// One line, in one write: lines from two threads never mix.
    pub fn write(&self, name: &str, id: &NetnsId) -> std::io::Result<()> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(OpenOptions::new().append(true).create(true).open(&self.path)?);
        }
        let mut line = serde_json::to_vec(&(name, id)).expect("ids serialise");
        line.push(b'\n');
        f.as_mut().expect("just opened").write_all(&line)
    }
}

/// The identity (`netns::identity`) of each netns lab `lab` made, by name. Teardown deletes
/// a netns only while its name still means that one: deleted and made again by hand (`ip
/// netns del red; ip netns add red`), it is someone else's. A netns made in the moment
/// before a crash may be missing here; it is deleted by name, as before.
pub fn netns_ids(lab: &str) -> std::collections::HashMap<String, NetnsId> {
    let text = std::fs::read_to_string(lab_dir(lab).join("netns")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<(String, NetnsId)>(l).ok()).collect()
}

impl Journal {
    /// Starts a new journal; fails if the lab already has one. The journal is created
    /// exclusively before meta.json is written, so of two runs racing for one lab name the
    /// loser changes nothing.
    pub fn create(meta: &Meta) -> NetResult<Journal> {
        let dir = lab_dir(&meta.lab);
        std::fs::create_dir_all(&dir)?;
        let file = OpenOptions::new().append(true).create_new(true).open(dir.join("journal"))?;
        // Held until this process ends or drops the journal (see running_pid).
        file.lock()?;
        write_meta(meta)?;
        Ok(Journal { file, seq: 0, ids: NetnsLog::new(&meta.lab) })
    }

    /// Continues an existing journal (the REPL reattaching to its lab); the lab now
    /// belongs to this process.
    pub fn reopen(lab: &str) -> NetResult<Journal> {
        let path = lab_dir(lab).join("journal");
        let mut file = OpenOptions::new().append(true).open(&path)?;
        if file.try_lock().is_err() {
            let by = read_meta(lab).map(|m| format!(" (process {})", m.pid)).unwrap_or_default();
            return Err(NetError::new(format!("lab {lab} is in use by another nslab{by}"))
                .with_errno(libc::EBUSY)
                .with_help("leave that REPL or let that run end first"));
        }
        let text = std::fs::read(&path)?;
        // A line torn by a crash mid-write must not swallow the next entry.
        if !text.is_empty() && !text.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        // Numbers go on from the last Op's (a gap would read as a lost line).
        let seq = text
            .split(|b| *b == b'\n')
            .filter_map(|raw| unseal(raw).ok())
            .filter_map(|l| match read_line(l) {
                Ok(Line::Op { seq, .. }) => Some(seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        if let Some(mut m) = read_meta(lab) {
            m.pid = std::process::id();
            write_meta(&m)?;
        }
        Ok(Journal { file, seq, ids: NetnsLog::new(lab) })
    }

    pub fn record(&mut self, op: &Op) -> NetResult<u64> {
        self.seq += 1;
        let line = Line::Op { seq: self.seq, op: op.clone() };
        self.write(&line)?;
        Ok(self.seq)
    }

    /// Records which netns `name` is, right after the lab made it.
    pub fn netns_made(&self, name: &str, id: NetnsId) -> NetResult<()> {
        self.ids.write(name, &id).map_err(NetError::from)
    }

    /// Where the thread that makes netns in the background records them.
    pub fn netns_log(&self) -> NetnsLog {
        self.ids.clone()
    }

    /// Records the kernel's identity of the address Op `seq` added (see [`addr_ids`]).
    pub fn addr_made(&mut self, seq: u64, id: AddrId) -> NetResult<()> {
        self.write(&Line::AddrMade { addr: seq, ifindex: id.ifindex, cstamp: id.cstamp })
    }

    /// Records a process group left running by `netns::exec`.
    pub fn background(&mut self, bg: &Background) -> NetResult<()> {
        self.write(&Line::Background {
            background: bg.pgid,
            members: bg.members.clone(),
            netns: bg.netns.clone(),
            net_ino: bg.net_ino,
        })
    }

    /// Says in meta.json that this journal is whole up to here (see [`Meta::ended`]).
    pub fn mark_ended(&self, lab: &str) -> NetResult<()> {
        match read_meta(lab) {
            Some(mut m) => {
                m.ended = Some(self.seq);
                write_meta(&m)
            }
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, seq: u64) -> NetResult<()> {
        self.write(&Line::Failed { failed: seq })
    }

    fn write(&mut self, line: &Line) -> NetResult<()> {
        let buf = seal(&serde_json::to_vec(line).expect("ops serialise"));
        self.file.write_all(&buf).map_err(NetError::from)
    }
}

/// Removes lab `lab`'s journal and what vouched for it (`tc_claims`, `route_claims`).
pub fn remove(lab: &str) -> NetResult<()> {
    match std::fs::remove_dir_all(lab_dir(lab)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => {
            super::tc_claims::forget(lab);
            super::route_claims::forget(lab);
            Ok(())
        }
    }
}

/// Creates directory `dir` (under [`STATE_DIR`]) and holds its `.lock` until the file is
/// dropped: the claims (`sysctl_claims`, `tc_claims`, `route_claims`) are read-modify-written under it, so
/// two nslab processes do not lose each other's writes.
pub(crate) fn lock_dir(dir: &Path) -> NetResult<File> {
    let locked = || -> std::io::Result<File> {
        std::fs::create_dir_all(dir)?;
        let f = File::create(dir.join(".lock"))?;
        f.lock()?;
        Ok(f)
    };
    locked().map_err(|e| claims_unusable(dir, e))
}

/// Drops lab `lab` from the `holders` of every claim in `dir` (its journal is going), under
/// the claims lock; a claim nobody holds any more goes. Best effort: a claim left behind
/// names a lab that no journal backs.
pub(crate) fn forget_holder(dir: &Path, lab: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let Ok(_lock) = lock_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let Ok(mut c) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let Some(holders) = c.get_mut("holders").and_then(|h| h.as_array_mut()) else {
            continue;
        };
        let before = holders.len();
        holders.retain(|h| h.as_str() != Some(lab));
        if holders.len() == before {
            continue;
        }
        let _ = if holders.is_empty() {
            std::fs::remove_file(&p)
        } else {
            std::fs::write(&p, c.to_string())
        };
    }
}

/// A claims directory (`/run/nslab/.sysctl`, `.tc`, `.route`) nslab cannot use: a file in
/// its place said only "File exists (os error 17)".
pub(crate) fn claims_unusable(dir: &Path, e: std::io::Error) -> NetError {
    let errno = e.raw_os_error();
    let mut n = NetError::new(format!("cannot record the lab's claim in {}: {e}", dir.display()))
        .with_help(format!(
            "nslab notes there which labs changed a shared setting, so that destroy undoes only what its lab did: {} must be a directory nslab can write (move away what is in its place)",
            dir.display()
        ));
    n.errno = errno;
    n
}

/// The file of a claim on `name` in `dir`: `NAME` for the namespace nslab runs in,
/// `NETNS@NAME` for a named netns (`@` is in neither a netns name, a link name nor a sysctl
/// key, so the two never collide). A sysctl key may hold a `/` (a dotted link name, see
/// op::sysctl_path): `%` in a file name.
pub(crate) fn claim_file(dir: &Path, ns: Option<&str>, name: &str) -> PathBuf {
    let name = name.replace('/', "%");
    dir.join(match ns {
        None => name,
        Some(n) => format!("{n}@{name}"),
    })
}

/// Lab names become directory names and iptables comments: keep them plain.
pub fn check_lab_name(name: &str) -> NetResult<()> {
    if name.is_empty()
        || name.len() > 48
        || name.starts_with('.')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(NetError::new(format!("invalid lab name {name:?}"))
            .with_help("use letters, digits, `-`, `_` and `.` (at most 48), e.g. --lab tutorial"));
    }
    Ok(())
}

/// The link group a lab's links carry: a stable hash of its name, never 0 (the default
/// group every other link is in).
pub fn group_of(lab: &str) -> u32 {
    let mut h: u32 = 2166136261;
    for b in lab.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    // Keep clear of small numbers people pick by hand.
    (h | 0x4000_0000) & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(lines: &[&str]) -> Vec<u8> {
        lines.iter().flat_map(|l| seal(l.as_bytes())).collect()
    }

    #[test]
    fn failed_entries_are_dropped_and_torn_lines_ignored() {
        let mut text = sealed(&[
            r#"{"seq":1,"op":{"op":"netns_add","name":"red"}}"#,
            r#"{"seq":2,"op":{"op":"netns_add","name":"green"}}"#,
            r#"{"failed":2}"#,
        ]);
        text.extend_from_slice(br#"{"seq":3,"op":{"op":"netns_add","name":"bl"#);
        let c = parse(&text);
        assert_eq!(c.ops, vec![Op::NetnsAdd { name: "red".into() }]);
        assert!(c.damage.is_empty(), "{:?}", c.damage);
    }

    #[test]
    fn damaged_injected_and_missing_lines_are_reported() {
        let mut text = sealed(&[
            r#"{"seq":1,"op":{"op":"netns_add","name":"red"}}"#,
            r#"{"seq":2,"op":{"op":"netns_add","name":"green"}}"#,
            r#"{"seq":4,"op":{"op":"netns_add","name":"blue"}}"#,
        ]);
        // One bad byte in line 2.
        let at = text.windows(5).position(|w| w == b"green").unwrap();
        text[at] = 0xff;
        // A valid line without a checksum, as if injected by hand.
        text.extend_from_slice(
            b"{\"op\":\"addr_add\",\"dev\":\"uplink\",\"cidr\":\"203.0.113.2/24\"}\n",
        );
        let c = parse(&text);
        assert_eq!(
            c.ops,
            vec![Op::NetnsAdd { name: "red".into() }, Op::NetnsAdd { name: "blue".into() }]
        );
        assert_eq!(
            c.damage,
            vec![
                "line 2: checksum mismatch (damaged, or edited by hand)".to_string(),
                "line 4: no checksum (damaged, or not written by nslab)".to_string(),
            ]
        );
        let gap = sealed(&[
            r#"{"seq":1,"op":{"op":"netns_add","name":"red"}}"#,
            r#"{"seq":3,"op":{"op":"netns_add","name":"blue"}}"#,
        ]);
        assert_eq!(parse(&gap).damage, vec!["line 2: operation 3 follows 1".to_string()]);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn address_identities_are_read_with_the_op_they_belong_to() {
        let text = sealed(&[
            r#"{"seq":1,"op":{"op":"addr_add","ns":null,"dev":"uplink","cidr":"203.0.113.7/24"}}"#,
            r#"{"addr":1,"ifindex":2,"cstamp":100}"#,
            r#"{"seq":2,"op":{"op":"addr_add","ns":"x","dev":"eth0","cidr":"10.0.0.1/24"}}"#,
            r#"{"seq":3,"op":{"op":"addr_del","ns":null,"dev":"uplink","cidr":"203.0.113.7/24"}}"#,
            r#"{"seq":4,"op":{"op":"addr_add","ns":null,"dev":"uplink","cidr":"203.0.113.7/24"}}"#,
            r#"{"addr":4,"ifindex":2,"cstamp":250}"#,
            // An identity for an Op that is no address, or for none at all, names nothing.
            r#"{"seq":5,"op":{"op":"netns_add","name":"red"}}"#,
            r#"{"addr":5,"ifindex":9,"cstamp":1}"#,
            r#"{"addr":77,"ifindex":9,"cstamp":1}"#,
        ]);
        let ids = addr_ids_in(&text);
        assert_eq!(ids.len(), 1, "{ids:?}");
        let key = (None, "uplink".to_string(), "203.0.113.7/24".parse().unwrap());
        assert_eq!(ids[&key], AddrId { ifindex: 2, cstamp: 250 }, "the latest: the one there");
        // The identity lines are no Ops, and no damage.
        let c = parse(&text);
        assert_eq!(c.ops.len(), 5);
        assert!(c.damage.is_empty(), "{:?}", c.damage);
    }

    #[test]
    fn lines_are_read_whatever_the_order_of_their_keys() {
        let text = sealed(&[
            r#"{"op":{"op":"netns_add","name":"red"},"seq":1}"#,
            r#"{"seq":2,"op":{"name":"blue","op":"netns_add"}}"#,
            r#"{"background":7,"members":[[7,100]],"netns":"red","net_ino":5}"#,
            r#"{"seq":3,"op":{"op":"netns_add","name":"green"}}"#,
            r#"{"failed":3}"#,
        ]);
        let c = parse(&text);
        assert_eq!(
            c.ops,
            vec![Op::NetnsAdd { name: "red".into() }, Op::NetnsAdd { name: "blue".into() }]
        );
        assert_eq!(c.last_seq, 3, "a failed Op's number counts");
        assert!(c.damage.is_empty(), "{:?}", c.damage);
        let bg = backgrounds_in(&text);
        assert_eq!(
            bg,
            vec![Background {
                pgid: 7,
                members: vec![(7, 100)],
                netns: Some("red".into()),
                net_ino: 5
            }]
        );
    }

    #[test]
    fn groups_are_stable_and_nonzero() {
        assert_eq!(group_of("tutorial"), group_of("tutorial"));
        assert_ne!(group_of("a"), group_of("b"));
        assert!(group_of("") != 0);
    }
}
