//! `nslab capture [NS] DEV`: live decoded packets on a link, like `tcpdump -n -i DEV`, until
//! Ctrl-C (or `--count` packets). Works on the host, on a lab's netns, and in `nslab sandbox`.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use super::{Failed, fail};
use crate::lab::INTERRUPTED;
use crate::net::capture::{self, Filter, Options, clock};
use crate::net::op;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `[NS] DEV`: the link, in netns NS (default: where nslab runs)
    #[arg(num_args = 1..=2, value_names = ["NS", "DEV"], required = true)]
    place: Vec<String>,
    /// Stop after N packets
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Also write the packets to this pcap file (`tcpdump -r` and Wireshark read it)
    #[arg(long, short = 'w')]
    pcap: Option<std::path::PathBuf>,
    /// Only this protocol: arp, icmp, icmp6, tcp, udp, ip, ip6
    #[arg(long, value_parser = capture::PROTOS)]
    proto: Option<String>,
    /// Only packets from or to this address
    #[arg(long)]
    host: Option<std::net::IpAddr>,
    /// Only packets from or to this port
    #[arg(long)]
    port: Option<u16>,
}

pub fn run(a: Args) -> Result<(), Failed> {
    let (ns, dev) = match a.place.as_slice() {
        [dev] => (None, dev.clone()),
        [ns, dev] => {
            op::check_netns_name(ns).map_err(fail)?;
            (Some(ns.clone()), dev.clone())
        }
        _ => unreachable!("clap takes one or two values"),
    };
    op::check_ifname(&dev).map_err(fail)?;
    crate::lab::catch_signals();
    let filter = Filter { proto: a.proto, host: a.host, port: a.port };
    let shown = filter.expression();
    let opts = Options {
        filter,
        max_packets: a.count.map_or(usize::MAX, |c| c as usize),
        pcap: a.pcap,
        ..Options::default()
    };
    let (tx, rx) = mpsc::channel::<String>();
    let sink = Box::new(move |p: &capture::Packet| {
        let _ = tx.send(format!("{} {}", clock(p.wall), p.decoded.summary));
    });
    let c = capture::start(ns.as_deref(), &dev, opts, Some(sink)).map_err(fail)?;
    let place = match &ns {
        Some(n) => format!("{dev} in netns {n}"),
        None => dev.clone(),
    };
    let filter_text = if shown.is_empty() { String::new() } else { format!(" ({shown})") };
    eprintln!("listening on {place}{filter_text}; Ctrl-C stops");
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                // A closed pipe (`| head`) ends the capture like Ctrl-C.
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    break;
                }
                printed += 1;
                if a.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if INTERRUPTED.load(Ordering::Relaxed) || c.finished() {
            break;
        }
    }
    let r = c.stop().map_err(fail)?;
    // Lines the reader queued after we stopped looking are not printed (the count is exact
    // for what was shown).
    let dropped = r.dropped;
    eprintln!(
        "{printed} packet{} captured{}",
        if printed == 1 { "" } else { "s" },
        if dropped > 0 { format!(", {dropped} dropped") } else { String::new() }
    );
    Ok(())
}
