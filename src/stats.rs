//! Small statistics shared by the evaluation, the tables and the notebooks.

/// Mean and sample standard deviation (0 for fewer than two values; the mean of none is NaN).
pub fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = mean(values);
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Mean of values (NaN when empty).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The Wilson score 95 % interval of a share `p` observed over `n` trials (Wilson 1927):
/// (low, high), within [0, 1]; (0, 1) when n is 0.
pub fn wilson_interval(p: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n) = (1.959_963_984_540_054, n as f64);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wilson_interval_holds_its_share_and_stays_in_bounds() {
        // 40 of 100: the textbook interval [0.309, 0.498].
        let (low, high) = wilson_interval(0.4, 100);
        assert!((low - 0.309).abs() < 1e-3 && (high - 0.498).abs() < 1e-3, "{low} {high}");
        let (low, high) = wilson_interval(1.0, 50);
        assert!(low > 0.9 && high == 1.0);
        assert_eq!(wilson_interval(0.5, 0), (0.0, 1.0));
    }
}
