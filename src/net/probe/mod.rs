//! Reachability probes that run from inside a netns: ICMP echo (`ping`), a TCP connect that
//! reads the server's greeting (`tcp`), and a tiny TCP server that tells each client which
//! address it saw (`serve`) — the three questions a lab recipe asks, answered without `ping`,
//! `curl` or `nc` being installed.
//!
//! Every socket is created on a `run_in` thread: a socket stays bound to the netns it was
//! created in, so the rest of the work may happen on any thread.

mod icmp;
mod ping;
mod serve;
mod tcp;

pub(crate) use ping::*;
pub(crate) use serve::*;
pub(crate) use tcp::*;
