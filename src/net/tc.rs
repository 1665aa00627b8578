//! Root queueing disciplines: netem (delay, loss, …) and tbf (a rate limit), as plain data,
//! their rtnetlink encoding and the `tc` command line they stand for.
//!
//! netlink-packet-route 0.34 knows no netem or tbf options, so `TCA_OPTIONS` is built here
//! byte by byte, following iproute2 (tc/q_netem.c, tc/q_tbf.c, tc/tc_core.c). The unit tests
//! compare the bytes with what `tc` 6.1 sends (captured with `strace -e sendmsg -xx`).
//!
//! Values are kept as the kernel holds them (percentages as fractions of `u32::MAX`, times in
//! nanoseconds, rates in bytes per second), so a qdisc read back from a dump and the one a
//! recipe asked for compare equal and an undo restores exactly what was there.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A root qdisc nslab can set and restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Qdisc {
    /// No root qdisc of anyone's: the one the kernel attaches by itself (noqueue on a veth,
    /// pfifo_fast or mq on hardware), handle 0.
    Default,
    Netem(Netem),
    Tbf(Tbf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netem {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    /// Probabilities as the kernel holds them: `u32::MAX` is 100 %.
    pub loss: u32,
    pub duplicate: u32,
    pub reorder: u32,
    pub corrupt: u32,
    /// Bytes per second; 0 is no rate limit.
    pub rate: u64,
    /// Queue length in packets (iproute2's default is 1000).
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// Bucket size in bytes.
    pub burst: u32,
    /// Bytes that may wait in the queue (iproute2 turns `latency` into this).
    pub limit: u32,
}

// include/uapi/linux/pkt_sched.h
const TCA_OPTIONS: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;

/// psched ticks per microsecond. `/proc/net/psched` reads `000003e8 00000040 000f4240 …` on
/// every kernel since 2.6.x (NSEC_PER_USEC, PSCHED_TICKS2NS(1) = 64 ns, 1000000), which
/// tc_core_init turns into 1000 / 64 = 15.625.
const TICKS_PER_USEC: f64 = 15.625;
const NETEM_STRUCT: usize = 24;
const TBF_STRUCT: usize = 36;

/// iproute2's tc_calc_xmittime: the ticks `size` bytes take at `rate` bytes per second,
/// rounded up, saturating at `u32::MAX` (same float expression, same results).
fn xmittime(rate: u64, size: u64) -> u32 {
    let v = ((1_000_000.0 * (size as f64 / rate as f64)) * TICKS_PER_USEC).ceil();
    if v > u32::MAX as f64 { u32::MAX } else { v as u32 }
}

/// iproute2's tc_calc_xmitsize, rounded: the bytes `ticks` carry at `rate`.
fn xmitsize(rate: u64, ticks: u32) -> u64 {
    (rate as f64 * (ticks as f64 / TICKS_PER_USEC) / 1_000_000.0).round() as u64
}

fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend(((4 + value.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// The attributes after a fixed-size struct: (kind without flags, value).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let value = &b[4..len];
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((kind, value))
    })
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i * 4..i * 4 + 4)?.try_into().ok()?))
}

fn u64_of(b: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

impl Netem {
    /// The payload of `TCA_OPTIONS`: `struct tc_netem_qopt`, then attributes (not a nest:
    /// the kernel reads it with nla_parse_nested_compat). Delay and jitter go in
    /// `TCA_NETEM_LATENCY64`/`JITTER64` (nanoseconds), leaving the struct's tick fields 0,
    /// as iproute2 does since 2024 (commit 9a6b231e); the kernel has read them since 4.15.
    pub fn options(&self) -> Vec<u8> {
        // latency, limit, loss, gap, duplicate, jitter. A reorder needs a gap: iproute2
        // makes it 1 (every other packet is a candidate).
        let gap = u32::from(self.reorder != 0);
        let mut b = u32s(&[0, self.limit, self.loss, gap, self.duplicate, 0]);
        if self.delay_ns != 0 {
            attr(&mut b, TCA_NETEM_LATENCY64, &self.delay_ns.to_ne_bytes());
        }
        if self.jitter_ns != 0 {
            attr(&mut b, TCA_NETEM_JITTER64, &self.jitter_ns.to_ne_bytes());
        }
        if self.reorder != 0 {
            attr(&mut b, TCA_NETEM_REORDER, &u32s(&[self.reorder, 0]));
        }
        if self.corrupt != 0 {
            attr(&mut b, TCA_NETEM_CORRUPT, &u32s(&[self.corrupt, 0]));
        }
        if self.rate != 0 {
            // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
            let rate32 = u32::try_from(self.rate).unwrap_or(u32::MAX);
            if rate32 == u32::MAX {
                attr(&mut b, TCA_NETEM_RATE64, &self.rate.to_ne_bytes());
            }
            attr(&mut b, TCA_NETEM_RATE, &u32s(&[rate32, 0, 0, 0]));
        }
        b
    }

    /// Reads netem's `TCA_OPTIONS` payload back (from a dump).
    pub fn decode(b: &[u8]) -> Option<Netem> {
        let at = |i| u32_at(b, i);
        let mut n = Netem {
            delay_ns: u64::from(at(0)?) << 6, // ticks of 64 ns, for kernels before 4.15
            limit: at(1)?,
            loss: at(2)?,
            duplicate: at(4)?,
            jitter_ns: u64::from(at(5)?) << 6,
            ..Netem::default()
        };
        let mut rate32 = 0;
        for (kind, v) in attrs(b.get(NETEM_STRUCT..)?) {
            match kind {
                TCA_NETEM_LATENCY64 => n.delay_ns = u64_of(v)?,
                TCA_NETEM_JITTER64 => n.jitter_ns = u64_of(v)?,
                TCA_NETEM_REORDER => n.reorder = u32_at(v, 0)?,
                TCA_NETEM_CORRUPT => n.corrupt = u32_at(v, 0)?,
                TCA_NETEM_RATE => rate32 = u32_at(v, 0)?,
                TCA_NETEM_RATE64 => n.rate = u64_of(v)?,
                _ => {}
            }
        }
        if n.rate == 0 {
            n.rate = u64::from(rate32);
        }
        Some(n)
    }
}

impl Tbf {
    /// tbf with iproute2's defaults: `latency` turned into a queue limit in bytes.
    pub fn new(rate: u64, burst: u32, latency_us: u64) -> Tbf {
        let limit = rate as f64 * latency_us as f64 / 1_000_000.0 + f64::from(burst);
        Tbf { rate, burst, limit: limit.min(u32::MAX as f64) as u32 }
    }

    /// The bucket in psched ticks; `u32::MAX` means the burst is out of range at this rate.
    pub fn buffer_ticks(&self) -> u32 {
        xmittime(u64::from(self.rate32()), u64::from(self.burst))
    }

    fn rate32(&self) -> u32 {
        u32::try_from(self.rate).unwrap_or(u32::MAX)
    }

    /// The payload of `TCA_OPTIONS` (a nest): `TCA_TBF_PARMS` (`struct tc_tbf_qopt`), the
    /// burst in bytes, the 64-bit rate when it does not fit, and the rate table. The kernel
    /// has not used the table since 3.8 but still reads it for an old-style rate spec; it
    /// is sent like iproute2 sends it.
    pub fn options(&self) -> Vec<u8> {
        let rate32 = self.rate32();
        // No mtu given: 2047, so cell_log 3 (table slots of 8 bytes).
        let cell_log: u8 = 3;
        // struct tc_ratespec: cell_log, linklayer, overhead u16, cell_align i16, mpu u16, rate.
        let mut parms = vec![cell_log, TC_LINKLAYER_ETHERNET, 0, 0];
        parms.extend((-1i16).to_ne_bytes());
        parms.extend(0u16.to_ne_bytes());
        parms.extend(rate32.to_ne_bytes());
        parms.extend([0; 12]); // peakrate: none
        parms.extend(u32s(&[self.limit, self.buffer_ticks(), 0]));
        let rtab: Vec<u32> =
            (1..=256u64).map(|i| xmittime(u64::from(rate32), i << cell_log)).collect();
        let mut b = Vec::with_capacity(1080);
        attr(&mut b, TCA_TBF_PARMS, &parms);
        attr(&mut b, TCA_TBF_BURST, &self.burst.to_ne_bytes());
        if rate32 == u32::MAX {
            attr(&mut b, TCA_TBF_RATE64, &self.rate.to_ne_bytes());
        }
        attr(&mut b, TCA_TBF_RTAB, &u32s(&rtab));
        b
    }

    /// Reads tbf's `TCA_OPTIONS` payload back (from a dump). The kernel reports the bucket in
    /// ticks only; the burst is computed back from it, as `tc qdisc show` does.
    pub fn decode(b: &[u8]) -> Option<Tbf> {
        let mut parms = None;
        let mut rate64 = None;
        for (kind, v) in attrs(b) {
            match kind {
                TCA_TBF_PARMS if v.len() >= TBF_STRUCT => parms = Some(v),
                TCA_TBF_RATE64 => rate64 = u64_of(v),
                _ => {}
            }
        }
        let p = parms?;
        let rate = rate64.unwrap_or(u64::from(u32_at(p, 2)?));
        let (limit, ticks) = (u32_at(p, 6)?, u32_at(p, 7)?);
        let burst = u32::try_from(xmitsize(rate, ticks)).unwrap_or(u32::MAX);
        Some(Tbf { rate, burst, limit })
    }
}

impl Qdisc {
    pub fn kind(&self) -> &'static str {
        match self {
            Qdisc::Default => "default",
            Qdisc::Netem(_) => "netem",
            Qdisc::Tbf(_) => "tbf",
        }
    }

    /// The `TCA_OPTIONS` attribute (header included), for an RTM_NEWQDISC.
    pub fn options_attr(&self) -> Option<Vec<u8>> {
        let payload = match self {
            Qdisc::Default => return None,
            Qdisc::Netem(n) => n.options(),
            Qdisc::Tbf(t) => t.options(),
        };
        let mut a = Vec::with_capacity(payload.len() + 4);
        attr(&mut a, TCA_OPTIONS, &payload);
        Some(a)
    }

    /// A dumped qdisc of `kind` with `TCA_OPTIONS` payload `options`, if it is one of ours.
    pub fn decode(kind: &str, options: &[u8]) -> Option<Qdisc> {
        match kind {
            "netem" => Netem::decode(options).map(Qdisc::Netem),
            "tbf" => Tbf::decode(options).map(Qdisc::Tbf),
            _ => None,
        }
    }

    /// The words after `root` in `tc qdisc replace dev DEV root …`.
    pub fn args(&self) -> String {
        let mut s = String::new();
        match self {
            Qdisc::Default => {}
            Qdisc::Netem(n) => {
                s.push_str("netem");
                if n.limit != 1000 {
                    let _ = write!(s, " limit {}", n.limit);
                }
                if n.delay_ns != 0 || n.jitter_ns != 0 {
                    let _ = write!(s, " delay {}", time(n.delay_ns));
                    if n.jitter_ns != 0 {
                        let _ = write!(s, " {}", time(n.jitter_ns));
                    }
                }
                for (word, p) in [
                    ("loss", n.loss),
                    ("duplicate", n.duplicate),
                    ("reorder", n.reorder),
                    ("corrupt", n.corrupt),
                ] {
                    if p != 0 {
                        let _ = write!(s, " {word} {}%", percent_text(p));
                    }
                }
                if n.rate != 0 {
                    let _ = write!(s, " rate {}", rate_text(n.rate));
                }
            }
            Qdisc::Tbf(t) => {
                let _ =
                    write!(s, "tbf rate {} burst {} limit {}", rate_text(t.rate), t.burst, t.limit);
            }
        }
        s
    }

    /// `tc [-n NS] qdisc replace dev DEV root …`, or `… del dev DEV root` for the default.
    /// `dev` comes quoted for the shell by the caller.
    pub fn command(&self, ns: Option<&str>, dev: &str) -> String {
        let n = ns.map(|ns| format!("-n {ns} ")).unwrap_or_default();
        match self {
            Qdisc::Default => format!("tc {n}qdisc del dev {dev} root"),
            q => format!("tc {n}qdisc replace dev {dev} root {}", q.args()),
        }
    }
}

/// One qdisc as `tc qdisc show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QdiscInfo {
    pub dev: String,
    /// The kernel's name: `noqueue`, `pfifo_fast`, `netem`, `tbf`, `htb`, ...
    pub kind: String,
    /// `8001:`, or `0:` for the one the kernel attached by itself.
    pub handle: String,
    /// `root`, `ingress` or the parent's handle (`1:1`).
    pub parent: String,
    /// Decoded options of a netem or tbf qdisc.
    pub qdisc: Option<Qdisc>,
}

impl QdiscInfo {
    /// The root qdisc as nslab can restore it, or the kind it cannot.
    pub fn restorable(&self) -> Result<Qdisc, String> {
        match &self.qdisc {
            Some(q) => Ok(q.clone()),
            None if self.handle == "0:" => Ok(Qdisc::Default),
            None => Err(self.kind.clone()),
        }
    }
}

/// A handle as tc prints it: `8001:` (minor 0), `1:1`, `root`, `ingress`.
pub fn handle_text(h: u32) -> String {
    match h {
        u32::MAX => "root".into(),
        0xffff_fff1 => "ingress".into(),
        h if h & 0xffff == 0 => format!("{:x}:", h >> 16),
        h => format!("{:x}:{:x}", h >> 16, h & 0xffff),
    }
}

impl Qdisc {
    /// Whether `seen` (read back from the kernel) is this qdisc. The kernel keeps a tbf's
    /// bucket in time, not bytes, so its burst comes back rounded.
    pub fn same_as(&self, seen: &Qdisc) -> bool {
        match (self, seen) {
            (Qdisc::Tbf(a), Qdisc::Tbf(b)) => {
                a.rate == b.rate
                    && a.limit == b.limit
                    && a.burst.abs_diff(b.burst) <= a.burst / 100 + 64
            }
            (a, b) => a == b,
        }
    }
}

/// A time in the largest unit that keeps it exact: `50ms`, `1500us`, `7ns`.
pub fn time(ns: u64) -> String {
    match ns {
        0 => "0ms".into(),
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// A rate in bytes per second as iproute2 reads it, exactly: `8mbit`, `1500kbit`, `12bit`.
pub fn rate_text(bytes_per_s: u64) -> String {
    let bits = u128::from(bytes_per_s) * 8;
    for (unit, scale) in
        [("tbit", 1_000_000_000_000), ("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)]
    {
        if bits >= scale && bits % scale == 0 {
            return format!("{}{unit}", bits / scale);
        }
    }
    format!("{bits}bit")
}

/// A kernel probability as a percentage with at most 4 decimals: `1`, `0.5`, `33.3333`.
pub fn percent_text(p: u32) -> String {
    let s = format!("{:.4}", percent(p));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A kernel probability as a percentage.
pub fn percent(p: u32) -> f64 {
    f64::from(p) / f64::from(u32::MAX) * 100.0
}

/// A percentage as the kernel's probability (iproute2's set_percent), or why not.
pub fn probability(what: &str, pct: f64) -> Result<u32, String> {
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("{what} must be between 0 and 100 (percent), not {pct}"));
    }
    Ok((f64::from(u32::MAX) * pct / 100.0).round() as u32)
}

/// Milliseconds as nanoseconds, or why not (negative, not a number, absurdly long).
pub fn millis(what: &str, ms: f64) -> Result<u64, String> {
    if ms.is_nan() || ms < 0.0 {
        return Err(format!("{what} must not be negative, not {ms}"));
    }
    // An hour of delay is no network anyone means to simulate, and it keeps u64 safe.
    if ms > 3_600_000.0 {
        return Err(format!("{what} of {ms} ms is more than an hour"));
    }
    Ok((ms * 1_000_000.0).round() as u64)
}

/// A rate as iproute2 reads it (`10mbit`, `512kbit`, `1gbit`, `100Mbps`, `1MiBps`; a bare
/// number is bits per second), in bytes per second; or why not.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    const UNITS: &[(&str, f64)] = &[
        ("bit", 1.),
        ("kibit", 1024.),
        ("kbit", 1000.),
        ("mibit", 1024. * 1024.),
        ("mbit", 1_000_000.),
        ("gibit", 1024. * 1024. * 1024.),
        ("gbit", 1_000_000_000.),
        ("tibit", 1024. * 1024. * 1024. * 1024.),
        ("tbit", 1_000_000_000_000.),
        ("bps", 8.),
        ("kibps", 8. * 1024.),
        ("kbps", 8000.),
        ("mibps", 8. * 1024. * 1024.),
        ("mbps", 8_000_000.),
        ("gibps", 8. * 1024. * 1024. * 1024.),
        ("gbps", 8_000_000_000.),
        ("tibps", 8. * 1024. * 1024. * 1024. * 1024.),
        ("tbps", 8_000_000_000_000.),
    ];
    let bad = || {
        format!(
            "rate {text:?} is not a rate: write a number and a unit, e.g. \"10mbit\", \"512kbit\", \"1gbit\""
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = if unit.is_empty() {
        1.0
    } else {
        UNITS.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)).ok_or_else(bad)?.1
    };
    let bytes = n * scale / 8.0;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    if bytes < 1.0 {
        return Err(format!("rate {text:?} is less than one byte per second"));
    }
    Ok(bytes as u64)
}

/// A size as iproute2 reads it (`16384`, `32kb`, `1mb`, `64kbit`), in bytes; or why not.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("size {text:?} is not a size: e.g. 16384, \"32kb\", \"1mb\"");
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "kbit" => 1024.0 / 8.0,
        "mbit" => 1024.0 * 1024.0 / 8.0,
        "gbit" => 1024.0 * 1024.0 * 1024.0 / 8.0,
        _ => return Err(bad()),
    };
    let v = n * scale;
    if v.fract() != 0.0 || v >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

#[cfg(test)]
#[path = "tc_tests.rs"]
mod tests;
