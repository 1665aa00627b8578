//! A kernel-backed lab session: every Op is checked for ownership, journaled, applied and
//! remembered, so a failed run can be rolled back and `nslab destroy` can undo it later.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::net::bridge_vlan::VlanInfo;
use crate::net::exec::ExecOutput;
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo, RouteInfo};
use crate::net::kernel::LinkTag;
use crate::net::probe::{Echoes, PingResult, TcpResult};
use crate::net::refusal::qdisc_not_restorable;
use crate::net::{Kernel, NetError, NetResult, Op, exec, kernel, nat, netns, probe};

use super::backend::Backend;
use super::journal::{self, Journal, Meta};
use super::teardown::{Owned, teardown};
use super::{INTERRUPTED, fault, route_claims, sysctl_claims, tc_claims};

pub(crate) struct Session {
    kernel: Kernel,
    lab: String,
    journal: RefCell<Journal>,
    applied: RefCell<Vec<Op>>,
    owned: RefCell<Owned>,
    /// The identity of each netns this lab made (`netns::identity`), to notice one replaced
    /// by hand under the same name.
    netns_ids: RefCell<std::collections::HashMap<String, crate::net::netns::NetnsId>>,
    explain: bool,
    /// `probe::serve` servers started (each holds a thread), at most [`MAX_SERVERS`].
    servers: std::cell::Cell<usize>,
}

/// Most `probe::serve` servers one lab may run: each is a thread and a socket. 500 of them
/// under a pids limit made nslab panic (issue 14); a clear error rolls the lab back instead.
pub(crate) const MAX_SERVERS: usize = 128;

fn tag(lab: &str) -> LinkTag {
    LinkTag { alias: format!("nslab:{lab}"), group: journal::group_of(lab) }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Session {
    /// Starts lab `lab`. Refuses when it is already up: a second run must change nothing.
    pub(crate) fn start(
        lab: &str,
        recipe: Option<String>,
        params: Vec<(String, String)>,
        explain: bool,
    ) -> NetResult<Session> {
        journal::check_lab_name(lab)?;
        if journal::exists(lab) {
            return Err(already_up(lab));
        }
        let meta = Meta {
            lab: lab.to_string(),
            recipe,
            params,
            created: now_secs(),
            pid: std::process::id(),
            group: journal::group_of(lab),
            destroying: false,
            ended: None,
        };
        let journal = Journal::create(&meta)
            .map_err(|e| if e.errno == Some(libc::EEXIST) { already_up(lab) } else { e })?;
        let kernel = Kernel::new(Some(tag(lab)))?;
        let log = journal.netns_log();
        // Called on the netns thread, twice per netns in order: without the mount, then
        // with it (`netns_background::make`); the fault points of tests sit between.
        let made = std::sync::Mutex::new((0, String::new()));
        kernel.set_netns_recorder(std::sync::Arc::new(move |name, id| {
            let mut made = made.lock().unwrap_or_else(|p| p.into_inner());
            if made.1 == name {
                made.1.clear();
                fault::in_netns(made.0, fault::NetnsStep::Mounted)?;
                return log.write(name, id);
            }
            *made = (made.0 + 1, name.to_string());
            log.write(name, id)?;
            fault::in_netns(made.0, fault::NetnsStep::Recorded)
        }));
        Ok(Session {
            kernel,
            lab: lab.to_string(),
            journal: RefCell::new(journal),
            applied: RefCell::new(Vec::new()),
            owned: RefCell::new(Owned::default()),
            netns_ids: RefCell::new(Default::default()),
            explain,
            servers: Default::default(),
        })
    }

    /// Continues lab `lab` if it is up (the REPL's lab survives between sessions), or
    /// starts it.
    pub(crate) fn resume_or_start(lab: &str, explain: bool) -> NetResult<Session> {
        journal::check_lab_name(lab)?;
        if !journal::exists(lab) {
            return Session::start(lab, None, vec![], explain);
        }
        // Two processes appending to one journal would each undo only their own half.
        if let Some(pid) = journal::running_pid(lab) {
            return Err(super::destroy::lab_busy_help(
                lab,
                pid,
                format!(
                    "wait for it, or stop it (`kill {pid}` rolls a run back); --lab NAME works on another lab"
                ),
            ));
        }
        let ops = journal::read(lab)?;
        Ok(Session {
            kernel: Kernel::new(Some(tag(lab)))?,
            lab: lab.to_string(),
            journal: RefCell::new(Journal::reopen(lab)?),
            owned: RefCell::new(Owned::from_ops(&ops)),
            applied: RefCell::new(ops),
            netns_ids: RefCell::new(journal::netns_ids(lab)),
            explain,
            servers: Default::default(),
        })
    }

    pub(crate) fn applied(&self) -> usize {
        self.applied.borrow().len()
    }

    pub(crate) fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Undoes everything this session applied and forgets the lab.
    pub(crate) fn rollback(&self) -> Vec<NetError> {
        let ops = std::mem::take(&mut *self.applied.borrow_mut());
        self.kernel.discard_pending();
        // The lab's probe servers go with it, also those listening outside its namespaces
        // (say in the sandbox's `internet`): a rebuilt lab wants their ports again.
        crate::net::probe::stop_all();
        // Captures end with their lab (what they kept stays readable by capture::stop).
        crate::net::capture::stop_all();
        self.servers.set(0);
        let mut errors = teardown(&self.kernel, &self.lab, &ops).into_errors(&self.lab);
        *self.owned.borrow_mut() = Owned::default();
        if errors.is_empty()
            && let Err(e) = journal::remove(&self.lab)
        {
            errors.push(e);
        }
        errors
    }

    /// Ends a successful run or a REPL: a lab that changed nothing is removed, a lab that did
    /// is marked whole (`Meta::ended`) so that its destroy need not search for lost marks.
    pub(crate) fn finish(&self) -> NetResult<()> {
        // A lab that only left something running in the background (netns::exec in a
        // netns it does not own) stays, so that destroy can stop it.
        // (Asked only then: it reads the whole journal, 17 ms after lab(1000).)
        if self.applied.borrow().is_empty()
            && !journal::backgrounds(&self.lab).iter().any(|b| exec::group_lives(&b.members))
        {
            return journal::remove(&self.lab);
        }
        // Without the mark a destroy only searches more: not worth failing a built lab for.
        let _ = self.journal.borrow().mark_ended(&self.lab);
        Ok(())
    }

    /// Journals and applies one Op whose ownership was checked.
    fn apply_one(&self, mut op: Op) -> NetResult<()> {
        // Exactly one object: a loose delete names the lab's own, a rule gets the priority
        // the kernel would pick (rules have no owner tag; the journal must name this one).
        self.owned.borrow().complete_del(&mut op);
        // A route that will outlive the lab carries nslab's mark (destroy deletes no other).
        self.owned.borrow().mark(&mut op);
        if let Op::RuleAdd { ns, rule } = &mut op
            && rule.priority.is_none()
        {
            rule.priority = Some(self.kernel.next_rule_priority(ns.as_deref(), rule)?);
        }
        // Every sysctl a lab sets is claimed, in its own namespaces too: another lab must not
        // flip a value this one relies on.
        let mut claimed = None;
        if let Op::SysctlSet { ns, key, value, old } = &mut op {
            let now = kernel::sysctl_get(ns.as_deref(), key)?;
            *value = sysctl_claims::normalise(key, value, &now)?;
            let (current, before) = sysctl_claims::claim(&self.lab, ns.as_deref(), key, value)?;
            claimed = Some(before);
            *old = Some(current);
        }
        if let Op::LinkSet { ns, dev, old, .. } = &mut op {
            *old = Some(self.kernel.link_attrs(ns.as_deref(), dev)?);
        }
        if let Op::TcSet { ns, dev, old, .. } = &mut op {
            // What was there comes back at teardown; a qdisc nslab cannot rebuild (htb with
            // its classes, say) is refused rather than lost, unless the link dies with the lab.
            let root = self.kernel.root_qdisc(ns.as_deref(), dev)?;
            let goes = self.owned.borrow().link_goes(ns.as_deref(), dev);
            *old = match root.restorable() {
                Ok(q) => Some(q),
                Err(_) if goes => None,
                Err(kind) => return Err(qdisc_not_restorable(dev, ns.as_deref(), &kind)),
            };
            // Put back at teardown only on the claim's word, not the journal's alone.
            if !goes {
                let index = self.kernel.link_index(ns.as_deref(), dev)?;
                tc_claims::claim(&self.lab, ns.as_deref(), dev, index)?;
            }
        }
        if self.explain {
            // Not println!: a closed stdout (`| head`) must not panic half-way through a lab.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "+ {}", op.command());
            for w in self.kernel.no_ipv6_writes(&op) {
                let _ = writeln!(out, "+ {}", w.command());
            }
        }
        if let Op::NetnsDel { name } = &op {
            // A listening socket, or a capture's packet socket, keeps its netns alive.
            probe::stop(Some(name));
            crate::net::capture::stop_in(name);
        }
        // A route or rule that outlives the lab is claimed too: its mark says "nslab", not
        // which lab (route_claims).
        let marked = outliving_mark(&op);
        if marked {
            route_claims::claim(&self.lab, &op)?;
        }
        let seq = self.journal.borrow_mut().record(&op)?;
        let applied = self
            .kernel
            .apply(&op)
            .and_then(|()| stored_as_written(&self.kernel, &op))
            .and_then(|()| self.identify(seq, &op));
        if marked {
            route_claims::settle(&self.lab, &op, applied.is_ok());
        }
        if let Err(e) = applied {
            self.journal.borrow_mut().failed(seq)?;
            if let (Some(before), Op::SysctlSet { ns, key, .. }) = (&claimed, &op) {
                // Best effort: a claim left behind is recognised as stale by the next one.
                let _ = sysctl_claims::unclaim(ns.as_deref(), key, before.as_ref());
            }
            return Err(e);
        }
        // The socket the kernel layer opened inside the new netns tells its cookie.
        // (One made in the background records itself: `netns_background`.)
        if let Op::NetnsAdd { name } = &op
            && !self.kernel.in_background(name)
            && let Some(id) = netns::identity_with(name, self.kernel.netns_cookie(name))
        {
            self.journal.borrow().netns_made(name, id)?;
            self.netns_ids.borrow_mut().insert(name.clone(), id);
        }
        if let Op::WireguardSet { ns, dev, private_key: Some(k), .. } = &op {
            save_key(&self.lab, ns.as_deref(), dev, k)?;
        }
        self.owned.borrow_mut().note(&op);
        self.applied.borrow_mut().push(op);
        fault::after_op(self.applied.borrow().len());
        Ok(())
    }

    /// An address just added to a link the lab did not make: its kernel identity goes into
    /// the journal (destroy deletes that address only while the kernel still shows it, not
    /// one someone else made or a line injected into the journal names), or the address is
    /// taken back and the Op fails. Addresses on the lab's own links go with them: no
    /// request here.
    fn identify(&self, seq: u64, op: &Op) -> NetResult<()> {
        let Op::AddrAdd { ns, dev, cidr } = op else { return Ok(()) };
        if self.owned.borrow().link_goes(ns.as_deref(), dev) {
            return Ok(());
        }
        let recorded = match self.kernel.addr_id(ns.as_deref(), dev, cidr) {
            Ok(Some(id)) => self.journal.borrow_mut().addr_made(seq, id),
            Ok(None) => Err(NetError::new(format!(
                "address {cidr} on {dev} is not in the kernel's list right after it was added"
            ))
            .with_help("someone removed it at once; try again")),
            Err(e) => Err(e),
        };
        if recorded.is_err() {
            let undo = op.inverse().expect("an address has a delete");
            let _ = self.kernel.promote_write(&undo).and_then(|temp| {
                crate::net::op::bracketed(temp, undo, |op| self.kernel.apply(&op))
            });
        }
        recorded
    }

    /// `owner::check` against the kernel.
    fn check_owner(&self, op: &Op) -> NetResult<()> {
        self.forget_replaced(op)?;
        super::owner::check(&self.lab, &self.owned.borrow(), op, self)
    }

    /// A netns of this lab that someone deleted and made again under the same name is not
    /// the lab's any more. Before any op that names it, the lab forgets it, as if it had
    /// deleted it itself, and journals that (`Op::NetnsForget`): what the lab made there
    /// afterwards is then the lab's objects in someone else's netns, undone one by one like
    /// those on the host, and the netns itself is left alone.
    fn forget_replaced(&self, op: &Op) -> NetResult<()> {
        self.netns_ids.borrow_mut().extend(self.kernel.take_made_ids());
        for name in op.netns_named() {
            // Being made in the background right now: ours, identity to come.
            if self.kernel.in_background(name) {
                continue;
            }
            if !self.owned.borrow().netns.contains(name)
                || self.netns_ids.borrow().get(name).is_some_and(|m| netns::surely_same(m, name))
                || super::teardown::still_ours(name, &self.netns_ids.borrow())
            {
                continue;
            }
            let forget = Op::NetnsForget { name: name.to_string() };
            self.journal.borrow_mut().record(&forget)?;
            self.owned.borrow_mut().note(&forget);
            self.applied.borrow_mut().push(forget);
            self.netns_ids.borrow_mut().remove(name);
        }
        Ok(())
    }
}

impl super::owner::World for Session {
    fn netns_exists(&self, name: &str) -> bool {
        netns::exists(name)
    }

    /// By index, the way the kernel resolves a name: an altname (systemd gives NICs some)
    /// reaches a link whose dump name differs, and must not slip past ownership.
    fn link(&self, ns: Option<&str>, dev: &str) -> NetResult<Option<LinkInfo>> {
        let index = match self.kernel.link_index(ns, dev) {
            Ok(i) => i,
            Err(e) if e.errno == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self.kernel.links(ns)?.into_iter().find(|l| l.index == index))
    }
}

/// A route or rule add that carries nslab's mark (`Owned::mark`: it outlives the lab).
fn outliving_mark(op: &Op) -> bool {
    use crate::net::routing::PROTO_NSLAB;
    if let Op::RouteAdd { opts, .. } = op {
        return opts.protocol == Some(PROTO_NSLAB);
    }
    if let Op::RuleAdd { rule, .. } = op {
        return rule.protocol == Some(PROTO_NSLAB);
    }
    false
}

/// A sysctl reads back as written (compared as the kernel prints it), or is put back as it
/// was and refused: destroy restores a value only while it is still the lab's, so a value
/// the kernel stores differently would stay for good.
fn stored_as_written(kernel: &Kernel, op: &Op) -> NetResult<()> {
    let Op::SysctlSet { ns, key, value, old: Some(_) } = op else { return Ok(()) };
    let now = kernel::sysctl_get(ns.as_deref(), key)?;
    if sysctl_claims::same(&now, value) {
        return Ok(());
    }
    kernel.apply(&op.inverse().expect("the old value is known"))?;
    Err(NetError::new(format!("the kernel stores {key} = {value:?} as {now:?}"))
        .with_errno(libc::EINVAL)
        .with_help(format!("write {now:?}, the value as the kernel keeps it")))
}

fn already_up(lab: &str) -> NetError {
    let e = NetError::new(format!("lab {lab} is already up")).with_errno(libc::EEXIST);
    // Two runs racing for one lab: the winner may not have locked its journal or written
    // meta.json yet; a moment's wait tells "running" from "left up".
    let mut holder = (journal::running_pid(lab), journal::read_meta(lab));
    for _ in 0..20 {
        if holder.0.is_some() || holder.1.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        holder = (journal::running_pid(lab), journal::read_meta(lab));
    }
    match holder {
        (Some(p), _) if journal::being_destroyed(lab) || p == 0 => {
            super::destroy::lab_busy_help(
                lab,
                p,
                "wait for that run to end; --lab NAME runs another lab".into(),
            )
            .with_errno(libc::EEXIST)
        }
        (Some(p), _) => NetError {
            message: format!("lab {lab} is already up (being run by process {p})"),
            ..e
        }
        .with_help(format!("wait for that run to end, or stop it (`kill {p}` rolls it back); --lab NAME runs another lab")),
        (None, meta) => NetError {
            message: match meta {
                Some(_) => format!("lab {lab} is already up (its run has ended or was killed)"),
                None => e.message.clone(),
            },
            ..e
        }
        .with_help(format!("remove it with `nslab destroy {lab}`, or run again with --replace; --lab NAME builds another copy when the recipe's names do not clash (params can make them differ)")),
    }
}

impl Backend for Session {
    fn lab(&self) -> &str {
        &self.lab
    }

    fn apply(&self, op: Op) -> NetResult<()> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(NetError::new("interrupted").with_errno(libc::EINTR));
        }
        // A veth the kernel layer holds back must exist before anything looks (Kernel::set_defer_veth).
        self.kernel.flush_unless_merges(&op)?;
        self.check_owner(&op)?;
        // An address delete that would take a foreign link's secondaries along is bracketed
        // by a temporary `promote_secondaries` write, journaled like any Op: killed in
        // between, destroy puts the old value back.
        let temp = self.kernel.promote_write(&op)?;
        crate::net::op::bracketed(temp, op, |op| self.apply_one(op))
    }

    fn settle(&self) -> NetResult<()> {
        self.kernel.flush()
    }

    fn set_site(&self, site: u64) {
        self.kernel.set_site(site);
    }

    fn netns_list(&self) -> NetResult<Vec<String>> {
        netns::list()
    }

    fn netns_exists(&self, name: &str) -> NetResult<bool> {
        Ok(netns::exists(name))
    }

    fn links(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.kernel.links(ns)
    }

    fn addrs(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
        self.kernel.addrs(ns)
    }

    fn routes(&self, ns: Option<&str>, table: Option<u32>) -> NetResult<Vec<RouteInfo>> {
        self.kernel.routes(ns, table)
    }

    fn rules(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::rule::RuleInfo>> {
        self.kernel.rules(ns)
    }

    fn neighbours(&self, ns: Option<&str>) -> NetResult<Vec<NeighInfo>> {
        self.kernel.neighbours(ns)
    }

    fn fdb(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<FdbEntry>> {
        self.kernel.fdb(ns, bridge)
    }

    fn bridge_ports(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<LinkInfo>> {
        self.kernel.bridge_ports(ns, bridge)
    }

    fn bridge_vlans(&self, ns: Option<&str>, port: &str) -> NetResult<Vec<VlanInfo>> {
        self.kernel.bridge_vlans(ns, port)
    }

    fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String> {
        kernel::sysctl_get(ns, key)
    }

    fn nat_list(&self, ns: Option<&str>) -> NetResult<Vec<String>> {
        nat::list(ns, "nat")
    }

    fn ipt_list(&self, ns: Option<&str>, table: &str) -> NetResult<Vec<String>> {
        nat::list(ns, table)
    }

    fn qdiscs(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::tc::QdiscInfo>> {
        self.kernel.qdiscs(ns)
    }

    fn exec(
        &self,
        ns: Option<&str>,
        argv: Vec<String>,
        timeout: Option<std::time::Duration>,
    ) -> NetResult<ExecOutput> {
        let stop = || INTERRUPTED.load(Ordering::Relaxed);
        let net = match ns {
            Some(n) => netns::identity(n).map(|i| i.ino),
            None => std::fs::metadata("/proc/self/ns/net").ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            }),
        };
        let record = |pgid: i32| -> NetResult<()> {
            let Some(net_ino) = net else { return Ok(()) };
            let bg = journal::Background {
                pgid,
                members: exec::group_members(pgid),
                netns: ns.map(str::to_string),
                net_ino,
            };
            self.journal.borrow_mut().background(&bg)
        };
        // Journaled before nslab waits on it: killed (-9) meanwhile, nslab leaves a command
        // that would keep the lab's netns and links alive after destroy said "destroyed"
        // (issue 14). Destroy stops the group while a recorded member lives.
        let mut started = |pgid: i32| record(pgid);
        let limits = exec::ExecLimits { timeout, stop: Some(stop) };
        let out = exec::exec_watched(ns, argv, limits, &mut started)?;
        if let Some(pgid) = out.background {
            // What it left running in the background, recorded so that rollback and destroy
            // stop it too.
            record(pgid)?;
        }
        Ok(out)
    }

    fn ping(
        &self,
        ns: Option<&str>,
        addr: IpAddr,
        dev: Option<&str>,
        echoes: Echoes,
    ) -> NetResult<Option<PingResult>> {
        let stop = || INTERRUPTED.load(Ordering::Relaxed);
        probe::ping(ns, addr, dev, probe::Echoes { stop: Some(stop), ..echoes }).map(Some)
    }

    fn tcp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> NetResult<Option<TcpResult>> {
        probe::tcp(ns, target, timeout).map(Some)
    }

    fn serve(&self, ns: Option<&str>, port: u16) -> NetResult<u16> {
        self.serve_flavour(ns, port, crate::net::probe::Flavour::Tcp)
    }

    fn serve_flavour(
        &self,
        ns: Option<&str>,
        port: u16,
        flavour: crate::net::probe::Flavour,
    ) -> NetResult<u16> {
        if self.servers.get() >= MAX_SERVERS {
            return Err(NetError::new(format!(
                "too many probe::serve servers: a lab runs at most {MAX_SERVERS}"
            ))
            .with_errno(libc::EMFILE)
            .with_help("serve one port per host you test; a probe::tcp to the same server works as often as you like"));
        }
        let port = probe::serve(ns, port, flavour)?;
        self.servers.set(self.servers.get() + 1);
        Ok(port)
    }

    fn capture_start(
        &self,
        ns: Option<&str>,
        dev: &str,
        opts: crate::net::capture::Options,
    ) -> NetResult<Option<crate::net::capture::Capture>> {
        // The link exists by now: script::query settles held-back writes first.
        crate::net::capture::start(ns, dev, opts, None).map(Some)
    }

    fn udp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
        payload: Vec<u8>,
    ) -> NetResult<Option<crate::net::probe::UdpResult>> {
        crate::net::probe::udp(ns, target, timeout, payload).map(Some)
    }

    fn throughput(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        duration: Duration,
    ) -> NetResult<Option<crate::net::probe::Throughput>> {
        let stop = || INTERRUPTED.load(Ordering::Relaxed);
        crate::net::probe::throughput(ns, target, duration, Some(stop)).map(Some)
    }
}

/// Keeps a WireGuard private key the lab set where only root reads it, beside the journal
/// (`/run/nslab/LAB/wg-NETNS-DEV.key`, mode 0600, base64 like `wg genkey`): the journal,
/// `--explain`, `plan`, `ls` and `show` print `<private key>` instead.
fn save_key(
    lab: &str,
    ns: Option<&str>,
    dev: &str,
    key: &crate::net::wireguard::Secret,
) -> NetResult<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(b64) = key.to_base64() else { return Ok(()) };
    let path = journal::lab_dir(lab).join(format!("wg-{}-{dev}.key", ns.unwrap_or("host")));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            NetError::new(format!("cannot keep the private key in {}: {e}", path.display()))
        })?;
    writeln!(f, "{b64}").map_err(NetError::from)
}
