//! The one-sided Mann-Whitney U test: is `recent` stochastically larger than `baseline`?
//!
//! Test durations are skewed and have outliers (a GC pause, a noisy neighbour), so a
//! rank test is used instead of comparing means. The normal approximation with tie
//! and continuity corrections is accurate enough from about five samples a side,
//! which the caller enforces with its minimum sample size.

/// One-sided p-value for H1: values in `recent` tend to be larger than in `baseline`.
/// Returns 1.0 when either side is empty or all values tie.
pub fn mann_whitney_greater(recent: &[f64], baseline: &[f64]) -> f64 {
    let (n1, n2) = (recent.len(), baseline.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = recent
        .iter()
        .map(|&v| (v, true))
        .chain(baseline.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Average ranks over ties, and accumulate the tie correction term.
    let n = all.len();
    let mut rank_sum_recent = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_recent += all[i..=j].iter().filter(|x| x.1).count() as f64 * avg_rank;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = rank_sum_recent - n1f * (n1f + 1.0) / 2.0;
    let mean = n1f * n2f / 2.0;
    let variance = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (u1 - mean - 0.5) / variance.sqrt();
    upper_tail(z)
}

/// P(Z > z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearly_slower_sample_is_significant() {
        let baseline = [10.0, 11.0, 10.5, 9.8, 10.2, 10.1, 9.9, 10.4];
        let recent = [14.0, 15.0, 14.5, 13.9, 14.2];
        assert!(mann_whitney_greater(&recent, &baseline) < 0.01);
    }

    #[test]
    fn same_distribution_is_not_significant() {
        let baseline = [10.0, 11.0, 10.5, 9.8, 10.2, 10.1, 9.9, 10.4];
        let recent = [10.3, 9.7, 10.9, 10.0, 10.6];
        assert!(mann_whitney_greater(&recent, &baseline) > 0.05);
    }

    #[test]
    fn faster_sample_is_not_a_slowdown() {
        let baseline = [10.0, 11.0, 10.5, 9.8, 10.2];
        let recent = [5.0, 5.5, 5.2, 5.1, 5.3];
        assert!(mann_whitney_greater(&recent, &baseline) > 0.99);
    }

    #[test]
    fn all_ties_give_no_evidence() {
        assert_eq!(mann_whitney_greater(&[1.0; 5], &[1.0; 5]), 1.0);
    }

    #[test]
    fn erfc_matches_known_values() {
        // erfc(0) = 1, erfc(1) = 0.157299..., erfc(-1) = 1.842700...
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_79).abs() < 1e-6);
    }
}
