//! The plan's probes: printed as the equivalent command (or a comment) and answered from
//! the model — the path a trace finds, the filter rules on it (plan/filter.rs), the server
//! at its end — or with `()` where the model cannot know (never a hopeful guess).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Plan;
use super::filter::Fate;
use super::trace::{Miss, Trace, Why};
use crate::net::NetResult;
use crate::net::op::{is_link_local, q};
use crate::net::probe::{Echoes, PingResult, TcpResult, UdpResult, serve_line};

/// What a TCP client says when a REJECT's error may or may not have reached it.
const BLOCKED: &str = "blocked by a REJECT rule: refused or timed out (the plan cannot tell which)";

/// The client port the plan shows (the kernel picks an ephemeral one).
const CLIENT_PORT: u16 = 40000;

impl Plan {
    /// No server can be listening at the end of `t` but nslab's own: a lab netns (or the
    /// sandbox's root) where no `netns::exec`/`host::exec` may have started one.
    fn surely_unserved(&self, t: &Trace) -> bool {
        !self.ran_exec() && (t.server.is_some() || self.sandboxed.get())
    }

    /// Whether a netem qdisc in a netns the probe crosses makes its echoes a matter of
    /// chance: loss, or delays that may add up to the time ping waits. Any link of those
    /// namespaces counts (the trace names the links where filter chains look, not every
    /// bridge port a frame leaves by), so the answer is `()` rather than a guess.
    fn impaired(&self, t: &Trace, wait: Duration) -> bool {
        let m = self.model.borrow();
        let mut delay_ns = 0u64;
        let spaces: std::collections::BTreeSet<_> = t.checks.iter().map(|c| &c.ns).collect();
        for ns in spaces {
            let Ok(space) = m.space(ns.as_deref()) else { continue };
            for q in space.qdiscs.values() {
                if let crate::net::tc::Qdisc::Netem(n) = q {
                    if n.loss > 0 || n.corrupt > 0 {
                        return true;
                    }
                    delay_ns += n.delay_ns + n.jitter_ns;
                }
            }
        }
        // Each delayed link may be crossed both ways.
        Duration::from_nanos(delay_ns.saturating_mul(2)) >= wait
    }

    fn tcp_failure(target_err: String) -> TcpResult {
        TcpResult {
            ok: false,
            reply: String::new(),
            seen: None,
            local: None,
            rtt_ms: 0.0,
            error: Some(target_err),
        }
    }

    /// What a client hears when the model sees no path (it fails either way), in the words
    /// `nslab run` reports; None where the model does not know them.
    fn miss_words(
        &self,
        miss: &Miss,
        dst: IpAddr,
        proto: &'static str,
        timeout: Duration,
    ) -> Option<String> {
        let m = self.model.borrow();
        let t = miss.partial(dst);
        let (quiet, refused) = if proto == "tcp" {
            (format!("timed out after {} ms", timeout.as_millis()), "connection refused")
        } else {
            (
                format!("no reply within {} ms", timeout.as_millis()),
                "connection refused (port unreachable)",
            )
        };
        match m.request_fate(&t, proto) {
            Fate::Pass => {}
            Fate::Dropped => return Some(quiet),
            Fate::Refused => return Some(refused.into()),
            Fate::Blocked => return Some(BLOCKED.into()),
            Fate::Unknown => return None,
        }
        match miss.why {
            // connect() fails at once.
            Why::NoRouteHere => Some("network unreachable".into()),
            Why::Silent => Some(quiet),
            // nslab's UDP probe waits on through ICMP errors other than "port unreachable";
            // a TCP connect gives up on the router's "net unreachable", if it gets back.
            Why::NoRouteThere if proto == "udp" => Some(quiet),
            Why::NoRouteThere => {
                let mut t = t;
                t.checks.push(miss.router.clone()?);
                match m.error_fate(&t, t.checks.len() - 1) {
                    Fate::Refused => Some("network unreachable".into()),
                    Fate::Dropped => Some(quiet),
                    _ => None,
                }
            }
            // ARP gives up after about 3 s ("host unreachable" for TCP after that).
            Why::NoNeighbour if proto == "udp" || timeout <= Duration::from_millis(2500) => {
                Some(quiet)
            }
            Why::NoNeighbour | Why::Other | Why::Untraced => None,
        }
    }

    fn no_path(target: SocketAddr) -> String {
        format!("no path to {target} in the plan's model")
    }

    pub(super) fn probe_ping(
        &self,
        ns: Option<&str>,
        addr: IpAddr,
        dev: Option<&str>,
        echoes: Echoes,
    ) -> NetResult<Option<PingResult>> {
        {
            let m = self.model.borrow();
            m.space(ns)?;
            // `ADDR%DEV` sends out of DEV: the kernel path looks it up first.
            if let Some(d) = dev {
                m.lookup(ns, d)?;
            }
        }
        let secs = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        let interval = if echoes.interval < Duration::from_secs(1) {
            format!(" -i{}", echoes.interval.as_secs_f64())
        } else {
            String::new()
        };
        // ping(8) counts late answers too, like nslab; `-c1 -w DEADLINE` is its "echo until
        // the first answer" idiom.
        let (args, sent) = if echoes.until_first {
            (format!("-c1 -w{}{interval}", secs(echoes.deadline())), 1)
        } else {
            (format!("-c{} -W{}{interval}", echoes.count, secs(echoes.wait)), echoes.count)
        };
        // iputils takes `ADDR%DEV` for an IPv6 link-local address only; `-I DEV` for the rest.
        let target = match dev {
            Some(d) if is_link_local(addr) => q(&format!("{addr}%{d}")),
            Some(d) => format!("-I {} {addr}", q(d)),
            None => addr.to_string(),
        };
        // A failing probe does not fail a run (only an `assert` of its result does): under
        // the script's `set -e` a bare failing `ping` line stopped the plan where the run
        // went on (issue 14).
        self.out(format!(
            "{}ping {args} {target} || echo 'ping failed (nslab run goes on: only an assert of its result stops it)' >&2",
            Plan::prefix(ns)
        ));
        // The model's answer, not a hopeful one: with no path (forwarding off on the way, no
        // route, no address at the far end) the kernel would not answer either; a firewall
        // rule on the way may drop the echo or its reply.
        let trace = self.model.borrow_mut().trace(ns, addr, None);
        let received = match trace {
            Err(miss) if miss.why == Why::Untraced => return Ok(None),
            Err(_) => 0,
            Ok(t) => {
                if self.impaired(&t, echoes.wait) {
                    return Ok(None);
                }
                let m = self.model.borrow();
                match (m.request_fate(&t, "icmp"), m.reply_fate(&t, "icmp")) {
                    (Fate::Unknown, _) | (Fate::Pass, Fate::Unknown) => return Ok(None),
                    (Fate::Pass, Fate::Pass) => match m.next_fate(&t, "icmp") {
                        Fate::Pass => sent,
                        Fate::Unknown => return Ok(None),
                        // After the first reply the next echoes are ESTABLISHED.
                        _ => 1,
                    },
                    _ => 0,
                }
            }
        };
        Ok(Some(PingResult { ok: received > 0, sent, received, rtt_ms: 0.0, rtts_ms: vec![] }))
    }

    pub(super) fn probe_tcp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> NetResult<Option<TcpResult>> {
        self.model.borrow().space(ns)?;
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        let (ip, port) = (target.ip(), target.port());
        self.out(format!(
            "# probe::tcp: connect to {target} and read the reply (needs a server there): {}timeout {secs} bash -c 'cat </dev/tcp/{ip}/{port}'",
            Plan::prefix(ns)
        ));
        let trace = self.model.borrow_mut().trace(ns, ip, Some(("tcp", port)));
        let t = match trace {
            Ok(t) => t,
            Err(miss) if miss.why == Why::Untraced => return Ok(None),
            Err(miss) => {
                let words = self.miss_words(&miss, ip, "tcp", timeout);
                return Ok(Some(Plan::tcp_failure(words.unwrap_or_else(|| Plan::no_path(target)))));
            }
        };
        let timed_out = format!("timed out after {} ms", timeout.as_millis());
        let m = self.model.borrow();
        match m.request_fate(&t, "tcp") {
            Fate::Pass => {}
            Fate::Dropped => return Ok(Some(Plan::tcp_failure(timed_out))),
            Fate::Refused => return Ok(Some(Plan::tcp_failure("connection refused".into()))),
            Fate::Blocked => return Ok(Some(Plan::tcp_failure(BLOCKED.into()))),
            Fate::Unknown => return Ok(None),
        }
        // The SYN-ACK, or the reset of a port nobody listens on.
        match m.reply_fate(&t, "tcp") {
            Fate::Pass => {}
            Fate::Unknown => return Ok(None),
            _ => return Ok(Some(Plan::tcp_failure(timed_out))),
        }
        let dport = t.port.unwrap_or(port);
        let space = m.spaces.get(&t.server);
        if !space.is_some_and(|s| s.served.contains(&dport)) {
            if self.surely_unserved(&t) {
                return Ok(Some(Plan::tcp_failure("connection refused".into())));
            }
            // A server `netns::exec` may have started, or one of the host's own.
            return Ok(None);
        }
        // The client's ACK completes the handshake the server accepts: without it the
        // client is connected and hears nothing, which the model does not claim.
        if m.next_fate(&t, "tcp") != Fate::Pass {
            return Ok(None);
        }
        // An HTTP server waits for a request: a bare connection reads nothing.
        let greets = space.is_some_and(|s| !s.served_http.contains(&dport));
        let reply = if greets {
            serve_line(
                t.server.as_deref(),
                SocketAddr::new(t.seen, CLIENT_PORT),
                SocketAddr::new(t.dst, dport),
            )
        } else {
            String::new()
        };
        Ok(Some(TcpResult {
            ok: true,
            reply,
            seen: greets.then(|| t.seen.to_string()),
            local: Some(SocketAddr::new(t.local, CLIENT_PORT).to_string()),
            rtt_ms: 0.0,
            error: None,
        }))
    }

    pub(super) fn probe_udp(
        &self,
        ns: Option<&str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> NetResult<Option<UdpResult>> {
        self.model.borrow().space(ns)?;
        let (ip, port) = (target.ip(), target.port());
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        self.out(format!(
            "# probe::udp: send a datagram to {target} and wait for the reply (needs a server there): {}timeout {secs} nc -u -w1 {ip} {port} <<< nslab-probe",
            Plan::prefix(ns)
        ));
        let trace = self.model.borrow_mut().trace(ns, ip, Some(("udp", port)));
        let failed = |error: String| UdpResult {
            ok: false,
            reply: String::new(),
            seen: None,
            local: None,
            rtt_ms: 0.0,
            error: Some(error),
        };
        let t = match trace {
            Ok(t) => t,
            Err(miss) if miss.why == Why::Untraced => return Ok(None),
            Err(miss) => {
                let words = self.miss_words(&miss, ip, "udp", timeout);
                return Ok(Some(failed(words.unwrap_or_else(|| Plan::no_path(target)))));
            }
        };
        let no_reply = format!("no reply within {} ms", timeout.as_millis());
        let refused = "connection refused (port unreachable)".to_string();
        let m = self.model.borrow();
        let answer = |f: Fate| match f {
            Fate::Pass => None,
            Fate::Dropped => Some(Some(failed(no_reply.clone()))),
            Fate::Refused => Some(Some(failed(refused.clone()))),
            Fate::Blocked => Some(Some(failed(BLOCKED.into()))),
            Fate::Unknown => Some(None),
        };
        if let Some(a) = answer(m.request_fate(&t, "udp")) {
            return Ok(a);
        }
        let dport = t.port.unwrap_or(port);
        if !m.spaces.get(&t.server).is_some_and(|s| s.served_udp.contains(&dport)) {
            if !self.surely_unserved(&t) {
                return Ok(None);
            }
            // The far end answers with an ICMP port unreachable, from where it arrived.
            let last = t.checks.len().saturating_sub(1);
            return Ok(answer(m.error_fate(&t, last)).unwrap_or(Some(failed(refused))));
        }
        if let Some(a) = answer(m.reply_fate(&t, "udp")) {
            return Ok(a);
        }
        Ok(Some(UdpResult {
            ok: true,
            reply: serve_line(
                t.server.as_deref(),
                SocketAddr::new(t.seen, CLIENT_PORT),
                SocketAddr::new(t.dst, dport),
            ),
            seen: Some(t.seen.to_string()),
            local: Some(SocketAddr::new(t.local, CLIENT_PORT).to_string()),
            rtt_ms: 0.0,
            error: None,
        }))
    }
}
