//! The encodings against what iproute2's `tc` 6.1 (Debian 12) sent for the same command line,
//! captured in a sandbox with `strace -e sendmsg -xx tc qdisc replace dev va root …`: the
//! payload of `TCA_OPTIONS` as hex, in `testdata/`.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn netem(pct: &[(&str, f64)]) -> Netem {
    let mut n = Netem { limit: 1000, ..Netem::default() };
    for (k, v) in pct {
        let p = probability(k, *v).unwrap();
        match *k {
            "loss" => n.loss = p,
            "duplicate" => n.duplicate = p,
            "reorder" => n.reorder = p,
            "corrupt" => n.corrupt = p,
            _ => unreachable!(),
        }
    }
    n
}

#[test]
fn netem_without_delay_is_what_tc_sends() {
    // tc qdisc replace dev va root netem loss 100%
    let n = netem(&[("loss", 100.0)]);
    assert_eq!(n.options(), hex(include_str!("testdata/netem-loss.hex")));
    // tc qdisc replace dev va root netem rate 40gbit: RATE64 first, RATE saturated.
    let n = Netem { rate: parse_rate("40gbit").unwrap(), limit: 1000, ..Netem::default() };
    assert_eq!(n.options(), hex(include_str!("testdata/netem-rate64.hex")));
    assert_eq!(Netem::decode(&n.options()), Some(n));
}

#[test]
fn netem_delay_goes_in_latency64_like_iproute2_since_2024() {
    // tc 6.1 put delay and jitter in the struct, in 64 ns ticks; iproute2 since commit
    // 9a6b231e leaves those 0 and sends TCA_NETEM_LATENCY64/JITTER64 right after the struct.
    // tc qdisc replace dev va root netem delay 50ms 10ms loss 1% duplicate 2% reorder 3%
    //   corrupt 4% rate 10mbit
    let old = hex(include_str!("testdata/netem-all.hex"));
    let n = Netem {
        delay_ns: millis("delay", 50.0).unwrap(),
        jitter_ns: millis("jitter", 10.0).unwrap(),
        rate: parse_rate("10mbit").unwrap(),
        ..netem(&[("loss", 1.0), ("duplicate", 2.0), ("reorder", 3.0), ("corrupt", 4.0)])
    };
    let mut want = old[..NETEM_STRUCT].to_vec();
    want[0..4].fill(0);
    want[20..24].fill(0);
    attr(&mut want, TCA_NETEM_LATENCY64, &50_000_000u64.to_ne_bytes());
    attr(&mut want, TCA_NETEM_JITTER64, &10_000_000u64.to_ne_bytes());
    want.extend(&old[NETEM_STRUCT..]); // reorder, corrupt, rate: as tc 6.1 sent them
    assert_eq!(n.options(), want);
    // Both layouts read back as the same qdisc (a dump of a qdisc `tc` made).
    assert_eq!(Netem::decode(&old), Some(n.clone()));
    assert_eq!(Netem::decode(&n.options()), Some(n.clone()));
    assert_eq!(
        Qdisc::Netem(n).command(Some("red"), "va"),
        "tc -n red qdisc replace dev va root netem delay 50ms 10ms loss 1% duplicate 2% \
         reorder 3% corrupt 4% rate 10mbit"
    );
    let d = Netem::decode(&hex(include_str!("testdata/netem-delay.hex"))).unwrap();
    assert_eq!(Qdisc::Netem(d).args(), "netem delay 50ms");
}

#[test]
fn tbf_is_what_tc_sends() {
    // tc qdisc replace dev va root tbf rate 8mbit burst 16384 latency 50ms
    let t = Tbf::new(parse_rate("8mbit").unwrap(), 16384, 50_000);
    assert_eq!(t.limit, 66384);
    let old = hex(include_str!("testdata/tbf-8mbit.hex"));
    let new = t.options();
    assert_eq!(without_tables(new.clone()), without_tables(old.clone()));
    assert_eq!(t.buffer_ticks(), 256_000);
    // The rate tables: each slot is a whole number of microseconds at 8mbit, but tc 6.1 cut
    // float noise like 1991.9999 us down to 1991 us (16 ticks less) before multiplying.
    let table = |b: &[u8]| -> Vec<i64> {
        b[b.len() - 1024..]
            .chunks(4)
            .map(|c| i64::from(u32::from_ne_bytes(c.try_into().unwrap())))
            .collect()
    };
    for (a, b) in table(&new).iter().zip(table(&old)) {
        assert!((0..=16).contains(&(a - b)), "{a} vs {b}");
    }
    assert_eq!(Tbf::decode(&t.options()), Some(t.clone()));
    assert_eq!(
        Qdisc::Tbf(t).command(None, "va"),
        "tc qdisc replace dev va root tbf rate 8mbit burst 16384 limit 66384"
    );
}

/// Zeroes the rate table (and the bucket ticks) of a tbf payload: tc 6.1 truncated times to
/// whole microseconds before turning them into ticks, iproute2 since d947f365 (2025) rounds
/// up; the kernel uses neither (it reads TCA_TBF_BURST and computes in ns).
fn without_tables(mut b: Vec<u8>) -> Vec<u8> {
    let rtab_at = b.len() - 1024;
    b[rtab_at..].fill(0);
    b[4 + 28..4 + 32].fill(0); // tc_tbf_qopt.buffer
    b
}

#[test]
fn tbf_with_a_limit_and_with_a_64_bit_rate() {
    // tc qdisc replace dev va root tbf rate 1500kbit burst 3000 limit 10000
    let old = hex(include_str!("testdata/tbf-1500kbit.hex"));
    let t = Tbf { rate: parse_rate("1500kbit").unwrap(), burst: 3000, limit: 10000 };
    assert_eq!(without_tables(t.options()), without_tables(old.clone()));
    assert_eq!(t.buffer_ticks(), 250_000, "16 ms exactly: both versions agree");
    assert_eq!(Tbf::decode(&old), Some(t));
    // tc qdisc replace dev va root tbf rate 50gbit burst 1mb latency 10ms
    let old = hex(include_str!("testdata/tbf-50gbit.hex"));
    let t = Tbf::new(parse_rate("50gbit").unwrap(), 1 << 20, 10_000);
    assert_eq!(without_tables(t.options()), without_tables(old.clone()));
    let back = Tbf::decode(&old).unwrap();
    assert_eq!((back.rate, back.limit), (t.rate, t.limit));
}

#[test]
fn ticks_round_up_like_current_iproute2() {
    assert_eq!(xmittime(187_500, 8), 667);
    assert_eq!(xmittime(1, u64::MAX), u32::MAX);
    let t = Tbf { rate: 100, burst: 1 << 30, limit: 1 };
    assert_eq!(t.buffer_ticks(), u32::MAX, "out of range: the caller refuses it");
}

#[test]
fn values_and_their_refusals() {
    assert_eq!(parse_rate("10mbit"), Ok(1_250_000));
    assert_eq!(parse_rate("10Mbit"), Ok(1_250_000));
    assert_eq!(parse_rate("1MBps"), Ok(1_000_000));
    assert_eq!(parse_rate("1.5mbit"), Ok(187_500));
    assert_eq!(parse_rate("8000"), Ok(1000));
    for bad in ["", "fast", "10 mbits", "-1mbit", "mbit", "1e999", "1.2.3mbit"] {
        assert!(parse_rate(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_rate("4bit").unwrap_err(), "rate \"4bit\" is less than one byte per second");
    assert_eq!(parse_size("32kb"), Ok(32768));
    assert_eq!(parse_size("16384"), Ok(16384));
    assert_eq!(parse_size("32kbit"), Ok(4096));
    assert!(parse_size("1.5").is_err());
    assert!(parse_size("lots").is_err());
    assert_eq!(probability("loss", 100.0), Ok(u32::MAX));
    assert_eq!(probability("loss", 0.0), Ok(0));
    assert_eq!(
        probability("loss_pct", 101.0).unwrap_err(),
        "loss_pct must be between 0 and 100 (percent), not 101"
    );
    assert!(probability("loss", -1.0).is_err());
    assert!(probability("loss", f64::NAN).is_err());
    assert_eq!(millis("delay_ms", 0.5), Ok(500_000));
    assert_eq!(millis("delay_ms", -5.0).unwrap_err(), "delay_ms must not be negative, not -5");
    assert!(millis("delay_ms", f64::NAN).is_err());
}

#[test]
fn words_are_exact() {
    assert_eq!(time(50_000_000), "50ms");
    assert_eq!(time(1_500_000), "1500us");
    assert_eq!(time(7), "7ns");
    assert_eq!(rate_text(1_000_000), "8mbit");
    assert_eq!(rate_text(187_500), "1500kbit");
    assert_eq!(rate_text(5_000_000_000), "40gbit");
    assert_eq!(rate_text(3), "24bit");
    assert_eq!(percent_text(probability("l", 0.5).unwrap()), "0.5");
    assert_eq!(percent_text(probability("l", 100.0 / 3.0).unwrap()), "33.3333");
    assert_eq!(Qdisc::Default.command(None, "va"), "tc qdisc del dev va root");
    let limited = Qdisc::Netem(Netem { limit: 50, loss: u32::MAX, ..Netem::default() });
    assert_eq!(limited.args(), "netem limit 50 loss 100%");
}

#[test]
fn decoding_tolerates_short_and_foreign_payloads() {
    assert_eq!(Netem::decode(&[0; 10]), None);
    assert_eq!(Tbf::decode(&[]), None);
    assert_eq!(Qdisc::decode("htb", &[0; 40]), None);
    // A truncated attribute after the struct is ignored, not read past its end.
    let mut b = netem(&[("loss", 1.0)]).options();
    b.extend([200, 0, 10, 0, 1, 2]);
    assert_eq!(Netem::decode(&b).map(|n| n.loss), Some(probability("l", 1.0).unwrap()));
}
