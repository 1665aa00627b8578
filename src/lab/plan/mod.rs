//! The plan executor (`nslab plan`): a [`Backend`] that never touches the kernel. Every Op is
//! rendered as the equivalent `ip` / `iptables` / `sysctl` command line and applied to a model
//! of what the plan has built so far; queries (`link::list`, `netns::exists`, ...) are answered
//! from that model, and probes are printed as the equivalent command (or a comment) and
//! answered from the model (plan/probes.rs), or with `()` where it cannot know.
//!
//! The model starts as a fresh host: nothing but `lo`, no named netns. It checks what the
//! kernel would refuse where that is cheap (a duplicate netns or link is EEXIST, a missing link
//! ENODEV, an unreachable gateway ENETUNREACH) with the same words `nslab run` uses, so a
//! recipe that would fail at run time fails at plan time, at the same line.
//!
//! Probes are traced through the model (routes, veth peers, bridges, `ip_forward`, the nat
//! table's DNAT, MASQUERADE and SNAT rules, plan/trace.rs) and meet the filter rules on their
//! way (plan/filter.rs): the answer is the kernel's — whether it passes, the address a server
//! sees, which netns answers a port forward, the ARP entries a ping leaves behind — or `()`
//! where the model cannot tell. Never a confident wrong answer (issue 14).

mod filter;
mod graph;
mod links;
mod model;
mod probes;
mod routing;
mod rules;
mod sysctl;
#[cfg(test)]
mod tests;
mod trace;

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use model::Model;

use super::backend::Backend;
use super::teardown::Owned;
use crate::net::bridge_vlan::VlanInfo;
use crate::net::exec::ExecOutput;
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo, RouteInfo};
use crate::net::op::{q, shell_words};
use crate::net::probe::{Echoes, Flavour, PingResult, TcpResult, Throughput, UdpResult};
use crate::net::refusal::{not_a_bridge_kind, port_in_use, udp_port_in_use};
use crate::net::{NetResult, Op};

pub(crate) use crate::net::nat_syntax::save_line;

/// The plan executor. Build one per plan, install it as the script backend, run the recipe,
/// then print [`Plan::lines`].
pub(crate) struct Plan {
    lab: String,
    model: RefCell<Model>,
    owned: RefCell<Owned>,
    lines: RefCell<Vec<String>>,
    next_port: Cell<u16>,
    /// `--no-ipv6`.
    no_ipv6: Cell<bool>,
    /// The recipe called `netns::exec`, whose effects the plan cannot see (it runs nothing).
    ran_exec: Cell<bool>,
    /// Planned for nslab's sandbox: its root runs no server of its own.
    sandboxed: Cell<bool>,
    /// A probe was answered `()` (the model cannot know): a recipe that then fails on it may
    /// not fail in a run.
    unknown_probe: Cell<bool>,
}

impl Plan {
    /// A plan for lab `lab` on a fresh host.
    pub(crate) fn new(lab: &str) -> Plan {
        Plan {
            lab: lab.to_string(),
            model: RefCell::new(Model::new(lab)),
            owned: RefCell::new(Owned::default()),
            lines: RefCell::new(Vec::new()),
            next_port: Cell::new(40000),
            no_ipv6: Cell::new(false),
            ran_exec: Cell::new(false),
            sandboxed: Cell::new(false),
            unknown_probe: Cell::new(false),
        }
    }

    /// Whether the recipe called `netns::exec` (see `cli::plan`: a failure after one may be
    /// the plan's blindness, not the recipe's mistake).
    pub fn ran_exec(&self) -> bool {
        self.ran_exec.get()
    }

    /// Whether a probe was answered `()` because the model cannot know its result.
    pub fn answered_unknown(&self) -> bool {
        self.unknown_probe.get()
    }

    /// Notes a `()` answer (see [`Plan::answered_unknown`]).
    fn known<T>(&self, r: NetResult<Option<T>>) -> NetResult<Option<T>> {
        if matches!(r, Ok(None)) {
            self.unknown_probe.set(true);
        }
        r
    }

    /// A plan for lab `lab` on a host that looks like nslab's sandbox: the `uplink` with its
    /// address and default route, and the netns `internet` behind it. They are known to the
    /// plan (recipes may probe them) but not created by it, and not part of its output.
    pub(crate) fn new_sandboxed(lab: &str) -> Plan {
        let p = Plan::new(lab);
        p.sandboxed.set(true);
        {
            let mut m = p.model.borrow_mut();
            for op in &super::sandbox::uplink_ops() {
                m.apply(op).expect("the sandbox's own setup is consistent");
            }
            for l in m.links.iter_mut() {
                l.tagged = false;
            }
        }
        p
    }

    /// Prints the sysctl writes `nslab run --no-ipv6` makes along with each operation.
    pub(crate) fn set_no_ipv6(&self, on: bool) {
        self.no_ipv6.set(on);
        self.model.borrow_mut().no_ipv6 = on;
    }

    /// The script lines so far: commands and comments, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// Adds a comment (each line prefixed with `# `), e.g. what the recipe prints.
    pub(crate) fn comment(&self, text: &str) {
        let mut lines = self.lines.borrow_mut();
        for l in text.lines() {
            let l = l.trim_end();
            lines.push(if l.is_empty() { "#".to_string() } else { format!("# {l}") });
        }
        if text.is_empty() {
            lines.push("#".to_string());
        }
    }

    fn out(&self, line: String) {
        self.lines.borrow_mut().push(line);
    }

    /// Applies one Op whose ownership was checked to the model, and prints it.
    fn apply_one(&self, mut op: Op) -> NetResult<()> {
        // As `nslab run` does (Session::apply_one): exact deletes, rules with their priority.
        self.owned.borrow().complete_del(&mut op);
        self.owned.borrow().mark(&mut op);
        if let Op::RuleAdd { ns, rule } = &mut op
            && rule.priority.is_none()
        {
            rule.priority = Some(self.model.borrow().next_rule_priority(ns.as_deref(), rule)?);
        }
        if let Op::SysctlSet { ns, key, old, .. } = &mut op {
            *old = Some(self.model.borrow().sysctl_get(ns.as_deref(), key)?);
        }
        if let Op::LinkSet { ns, dev, old, .. } = &mut op {
            *old = Some(self.model.borrow().link_attrs(ns.as_deref(), dev)?);
        }
        if let Op::TcSet { ns, dev, old, .. } = &mut op {
            let m = self.model.borrow();
            m.lookup(ns.as_deref(), dev)?;
            let q = m.space(ns.as_deref())?.qdiscs.get(dev.as_str()).cloned();
            *old = Some(q.unwrap_or(crate::net::tc::Qdisc::Default));
        }
        self.model.borrow_mut().apply(&op)?;
        self.owned.borrow_mut().note(&op);
        self.out(op.command());
        if self.no_ipv6.get() {
            // The writes `nslab run --no-ipv6` makes (from the same place), and the model
            // turns IPv6 off where they do.
            let writes = {
                let m = self.model.borrow();
                op.no_ipv6_writes(|ns| ns.is_some_and(|n| m.made_v6_off(n)))
            };
            for w in writes {
                self.model.borrow_mut().apply(&w)?;
                self.out(w.command());
            }
        }
        Ok(())
    }

    /// `owner::check` against the model: the ownership rules of `nslab run`.
    fn check_owner(&self, op: &Op) -> NetResult<()> {
        super::owner::check(&self.lab, &self.owned.borrow(), op, &*self.model.borrow())
    }

    fn prefix(ns: Option<&str>) -> String {
        match ns {
            Some(n) => format!("ip netns exec {} ", q(n)),
            None => String::new(),
        }
    }
}

impl Backend for Plan {
    fn lab(&self) -> &str {
        &self.lab
    }

    fn apply(&self, op: Op) -> NetResult<()> {
        self.check_owner(&op)?;
        // The temporary `promote_secondaries` write `nslab run` brackets the delete with.
        let temp = self.model.borrow().promote_write(&op)?;
        crate::net::op::bracketed(temp, op, |op| self.apply_one(op))
    }

    fn netns_list(&self) -> NetResult<Vec<String>> {
        Ok(self.model.borrow().spaces.keys().flatten().cloned().collect())
    }

    fn netns_exists(&self, name: &str) -> NetResult<bool> {
        Ok(self.model.borrow().spaces.contains_key(&Some(name.to_string())))
    }

    fn links(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>> {
        self.model.borrow().links_of(ns)
    }

    fn addrs(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>> {
        self.model.borrow().addrs_of(ns)
    }

    fn routes(&self, ns: Option<&str>, table: Option<u32>) -> NetResult<Vec<RouteInfo>> {
        let m = self.model.borrow();
        m.space(ns)?;
        Ok(m.routes_of(ns, table))
    }

    fn rules(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::rule::RuleInfo>> {
        self.model.borrow().rules_of(ns)
    }

    fn neighbours(&self, ns: Option<&str>) -> NetResult<Vec<NeighInfo>> {
        Ok(self.model.borrow().space(ns)?.neigh.clone())
    }

    fn fdb(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<FdbEntry>> {
        let m = self.model.borrow();
        let b = &m.links[m.lookup(ns, bridge)?];
        if b.kind != "bridge" {
            return Err(not_a_bridge_kind(bridge, b.kind));
        }
        let mut out: Vec<FdbEntry> = m
            .space(ns)?
            .fdb
            .iter()
            .filter(|(bn, _)| bn == bridge)
            .map(|(_, e)| e.clone())
            .collect();
        // The bridge's own entries: each port's address (`brctl showmacs`: local).
        for p in m.links.iter().filter(|p| p.ns == b.ns && p.master.as_deref() == Some(bridge)) {
            out.push(FdbEntry {
                mac: p.mac.clone(),
                port: p.name.clone(),
                local: true,
                ageing: 0.0,
            });
        }
        Ok(out)
    }

    fn bridge_ports(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<LinkInfo>> {
        let m = self.model.borrow();
        let b = &m.links[m.lookup(ns, bridge)?];
        if b.kind != "bridge" {
            return Err(not_a_bridge_kind(bridge, b.kind));
        }
        Ok(m.links_of(ns)?.into_iter().filter(|l| l.master.as_deref() == Some(bridge)).collect())
    }

    fn bridge_vlans(&self, ns: Option<&str>, port: &str) -> NetResult<Vec<VlanInfo>> {
        self.model.borrow().vlans_of(ns, port)
    }

    fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String> {
        self.model.borrow().sysctl_get(ns, key)
    }

    fn nat_list(&self, ns: Option<&str>) -> NetResult<Vec<String>> {
        self.ipt_list(ns, "nat")
    }

    fn ipt_list(&self, ns: Option<&str>, table: &str) -> NetResult<Vec<String>> {
        let m = self.model.borrow();
        let space = m.space(ns)?;
        // `iptables -S` lists chains in their built-in order, each chain's rules in order.
        let chains = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
        let mut rules: Vec<&(String, String, Vec<String>)> =
            space.rules.iter().filter(|(t, ..)| t == table).collect();
        rules.sort_by_key(|(_, c, _)| chains.iter().position(|x| x == c).unwrap_or(chains.len()));
        Ok(rules.into_iter().map(|(_, c, r)| save_line(c, r)).collect())
    }

    fn qdiscs(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::tc::QdiscInfo>> {
        let m = self.model.borrow();
        let space = m.space(ns)?;
        let mut out = Vec::new();
        for l in m.links.iter().filter(|l| l.ns.as_deref() == ns) {
            // Every link the model knows is a software one: noqueue until a tc:: call.
            let set = space.qdiscs.get(&l.name);
            out.push(crate::net::tc::QdiscInfo {
                dev: l.name.clone(),
                kind: set.map_or("noqueue", |q| q.kind()).to_string(),
                handle: if set.is_some() { "8001:" } else { "0:" }.to_string(),
                parent: "root".into(),
                qdisc: set.cloned(),
            });
        }
        Ok(out)
    }

    fn exec(
        &self,
        ns: Option<&str>,
        argv: Vec<String>,
        timeout: Option<Duration>,
    ) -> NetResult<ExecOutput> {
        self.model.borrow().space(ns)?;
        self.ran_exec.set(true);
        // A command that may write firewall rules: the filter table is no longer known.
        // (Anything else it changes, the plan does not see either: README, `nslab plan`.)
        if argv
            .iter()
            .any(|a| ["iptables", "nft", "xtables", "ebtables"].iter().any(|w| a.contains(w)))
        {
            self.model.borrow_mut().ipt_unseen = true;
        }
        // coreutils `timeout` kills the command as nslab does (and fails the script, as the
        // run fails).
        let limit = match timeout {
            Some(t) => format!("timeout -s KILL {} ", t.as_secs_f64()),
            None => String::new(),
        };
        self.out(format!("{}{limit}{}", Plan::prefix(ns), shell_words(&argv)));
        Ok(ExecOutput { status: 0, stdout: String::new(), stderr: String::new(), background: None })
    }

    fn ping(
        &self,
        ns: Option<&str>,
        addr: IpAddr,
        dev: Option<&str>,
        echoes: Echoes,
    ) -> NetResult<Option<PingResult>> {
        self.known(self.probe_ping(ns, addr, dev, echoes))
    }

    fn tcp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> NetResult<Option<TcpResult>> {
        self.known(self.probe_tcp(ns, target, timeout))
    }

    fn serve(&self, ns: Option<&str>, port: u16) -> NetResult<u16> {
        self.serve_flavour(ns, port, Flavour::Tcp)
    }

    fn serve_flavour(&self, ns: Option<&str>, port: u16, flavour: Flavour) -> NetResult<u16> {
        let mut m = self.model.borrow_mut();
        let space = m.space_mut(ns)?;
        let port = if port == 0 {
            let p = self.next_port.get();
            self.next_port.set(p + 1);
            p
        } else {
            port
        };
        let fresh = match flavour {
            Flavour::Udp => space.served_udp.insert(port),
            Flavour::Tcp | Flavour::Http => space.served.insert(port),
        };
        if flavour == Flavour::Http {
            space.served_http.insert(port);
        }
        if !fresh {
            return Err(match flavour {
                Flavour::Udp => udp_port_in_use(port, ns),
                _ => port_in_use(port, ns),
            });
        }
        drop(m);
        let what = match flavour {
            Flavour::Tcp => "server listens on tcp port",
            Flavour::Http => "HTTP server (GET answers with the line) listens on tcp port",
            Flavour::Udp => "server answers datagrams on udp port",
        };
        self.out(format!(
            "# probe::serve: nslab's built-in {what} {port} {} and tells each client the address it saw (no standard command does this)",
            match ns {
                Some(n) => format!("in netns {n}"),
                None => "here".to_string(),
            }
        ));
        Ok(port)
    }

    fn capture_start(
        &self,
        ns: Option<&str>,
        dev: &str,
        opts: crate::net::capture::Options,
    ) -> NetResult<Option<crate::net::capture::Capture>> {
        self.model.borrow().lookup(ns, dev)?;
        let file = match &opts.pcap {
            Some(p) => format!(" -w {}", q(&p.display().to_string())),
            None => String::new(),
        };
        let expr = opts.filter.expression();
        let expr = if expr.is_empty() { String::new() } else { format!(" {expr}") };
        // A capture runs beside the recipe: as a comment, the script does not block on it.
        self.out(format!(
            "# capture::start (in the background until capture::stop): {}tcpdump -n -i {}{file}{expr}",
            Plan::prefix(ns),
            q(dev)
        ));
        // Nothing is captured: `capture::stop` returns `()`, never invented packets.
        Ok(None)
    }

    /// Known only where the model knows it: a trace to nslab's own UDP server, or to a
    /// port no server can be on; the rest (a server `netns::exec` started) is `()`.
    fn udp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
        _payload: Vec<u8>,
    ) -> NetResult<Option<UdpResult>> {
        self.known(self.probe_udp(ns, target, timeout))
    }

    /// A plan cannot measure: printed as the iperf3 equivalent, answered with `()`.
    fn throughput(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        duration: Duration,
    ) -> NetResult<Option<Throughput>> {
        self.model.borrow().space(ns)?;
        self.out(format!(
            "# probe::throughput: send to nslab's server at {target} for {} s and measure (like iperf3 -c {} -p {} -t {})",
            duration.as_secs_f64(),
            target.ip(),
            target.port(),
            duration.as_secs_f64().ceil()
        ));
        self.known(Ok(None))
    }
}
