//! Reachability probes that run from inside a netns: ICMP echo (`ping`, with ping(8)'s
//! statistics), a TCP connect that reads the server's greeting (`tcp`), a UDP request/reply
//! (`udp`), a throughput test (`throughput`), and tiny TCP/UDP/HTTP servers that tell each
//! client which address they saw (`serve`) — the questions a lab recipe asks, answered
//! without `ping`, `curl`, `nc` or `iperf3` being installed.
//!
//! Every socket is created on a `run_in` thread: a socket stays bound to the netns it was
//! created in, so the rest of the work may happen on any thread.

mod icmp;
mod ping;
mod serve;
mod tcp;
mod throughput;
mod udp;

pub(crate) use ping::*;
pub(crate) use serve::*;
pub(crate) use tcp::*;
pub(crate) use throughput::*;
pub(crate) use udp::*;
