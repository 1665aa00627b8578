//! What script functions talk to. The kernel-backed [`super::Session`] applies Ops and asks
//! the kernel; the plan backend (`nslab plan`) renders Ops and answers from its own model.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::net::bridge_vlan::VlanInfo;
use crate::net::capture::{self, Capture};
use crate::net::exec::ExecOutput;
use crate::net::info::{AddrInfo, FdbEntry, LinkInfo, NeighInfo, RouteInfo};
use crate::net::probe::Flavour;
use crate::net::probe::{Echoes, PingResult, TcpResult};
use crate::net::probe::{Throughput, UdpResult};
use crate::net::{NetResult, Op};

pub trait Backend {
    /// The lab that owns what this backend creates (`nslab:LAB` tags).
    fn lab(&self) -> &str;
    /// Applies one change.
    fn apply(&self, op: Op) -> NetResult<()>;
    /// Makes everything applied so far real before a query looks (the kernel backend
    /// creates a veth it held back, see `Kernel::set_defer_veth`). `script::query` calls it
    /// before every query: the one place a script's question waits for its changes.
    fn settle(&self) -> NetResult<()> {
        Ok(())
    }
    /// Where the script asks for what comes next: a number from `script::site`, kept with
    /// what a run holds back so a late error can point at its call (`NetError::site`).
    fn set_site(&self, _site: u64) {}
    fn netns_list(&self) -> NetResult<Vec<String>>;
    fn netns_exists(&self, name: &str) -> NetResult<bool>;
    fn links(&self, ns: Option<&str>) -> NetResult<Vec<LinkInfo>>;
    fn addrs(&self, ns: Option<&str>) -> NetResult<Vec<AddrInfo>>;
    /// Routes of `table` (None: every table but local).
    fn routes(&self, ns: Option<&str>, table: Option<u32>) -> NetResult<Vec<RouteInfo>>;
    /// Policy routing rules, IPv4 then IPv6, each in the kernel's order.
    fn rules(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::rule::RuleInfo>>;
    fn neighbours(&self, ns: Option<&str>) -> NetResult<Vec<NeighInfo>>;
    fn fdb(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<FdbEntry>>;
    fn bridge_ports(&self, ns: Option<&str>, bridge: &str) -> NetResult<Vec<LinkInfo>>;
    /// `bridge vlan show dev PORT`.
    fn bridge_vlans(&self, ns: Option<&str>, port: &str) -> NetResult<Vec<VlanInfo>>;
    fn sysctl_get(&self, ns: Option<&str>, key: &str) -> NetResult<String>;
    /// `iptables -t nat -S` rule lines.
    fn nat_list(&self, ns: Option<&str>) -> NetResult<Vec<String>>;
    /// `iptables -t TABLE -S` rule lines (nat or filter).
    fn ipt_list(&self, ns: Option<&str>, table: &str) -> NetResult<Vec<String>>;
    /// The qdiscs in `ns`, like `tc qdisc show`.
    fn qdiscs(&self, ns: Option<&str>) -> NetResult<Vec<crate::net::tc::QdiscInfo>>;
    /// Runs a command; `timeout` kills it and fails. An interruption (Ctrl-C) kills it too.
    fn exec(
        &self,
        ns: Option<&str>,
        argv: Vec<String>,
        timeout: Option<std::time::Duration>,
    ) -> NetResult<ExecOutput>;
    /// None when the backend cannot know the answer (the plan, past a rule it cannot
    /// evaluate).
    fn ping(
        &self,
        ns: Option<&str>,
        addr: IpAddr,
        dev: Option<&str>,
        echoes: Echoes,
    ) -> NetResult<Option<PingResult>>;
    /// None when the backend cannot know the answer (the plan, past a rule it cannot
    /// evaluate).
    fn tcp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> NetResult<Option<TcpResult>>;
    /// Starts the built-in server; returns its port.
    fn serve(&self, ns: Option<&str>, port: u16) -> NetResult<u16>;
    /// Starts a packet capture on `dev`; None where nothing is captured (the plan, which
    /// prints the `tcpdump` line instead). Not a kernel change: no Op, nothing journaled.
    fn capture_start(
        &self,
        _ns: Option<&str>,
        _dev: &str,
        _opts: capture::Options,
    ) -> NetResult<Option<Capture>> {
        Ok(None)
    }
    /// Starts a built-in server of another flavour (UDP, HTTP); returns its port.
    fn serve_flavour(&self, ns: Option<&str>, port: u16, flavour: Flavour) -> NetResult<u16> {
        let _ = flavour;
        self.serve(ns, port)
    }
    /// A UDP request/reply probe; None when the backend cannot know the answer.
    fn udp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
        payload: Vec<u8>,
    ) -> NetResult<Option<UdpResult>> {
        let _ = (ns, target, timeout, payload);
        Ok(None)
    }
    /// A throughput test against a built-in server; None when the backend cannot know.
    fn throughput(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        duration: Duration,
    ) -> NetResult<Option<Throughput>> {
        let _ = (ns, target, duration);
        Ok(None)
    }
}
