//! The kernel features tests ask for with `common::kernel_has`, probed the same way on both
//! kernels. On the second kernel (`tests/kernel2.sh`, DESIGN §7) every one must be there.

use crate::common;

#[test]
fn every_feature_probe_answers() {
    if !common::kernel_tests_possible() {
        return;
    }
    let missing: Vec<&str> = common::FEATURES
        .iter()
        .map(|(feature, _)| *feature)
        .filter(|feature| !common::kernel_has(feature))
        .collect();
    // Positive controls: even this machine's minimal kernel has these, so a "no" for one of
    // them means the probe harness is broken (and would hide every other feature too).
    for feature in ["tbf", "htb", "macvlan", "vxlan"] {
        assert!(!missing.contains(&feature), "the probe for {feature} failed: {missing:?}");
    }
    eprintln!("this kernel lacks: {missing:?}");
}
