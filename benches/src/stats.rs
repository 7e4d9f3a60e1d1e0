//! Order statistics of a set of samples.

/// Median, p90 and spread of some samples (in the unit they were given in).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

/// The summary of `samples`, or `None` when there are none. The median of an even count is
/// the mean of the middle two; p90 is the nearest-rank percentile.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Some(Summary {
        n,
        median,
        p90: v[rank - 1],
        min: v[0],
        max: v[n - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let s = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.p90, s.min, s.max), (3.0, 5.0, 1.0, 5.0));
        let s = summarize(&(1..=10).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!((s.median, s.p90), (5.5, 9.0));
        assert!(summarize(&[]).is_none());
    }
}
