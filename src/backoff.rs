//! Full-jitter exponential backoff, shared by the DTS client and the outbox:
//! a pure function of the retry number and a random number.

use std::time::Duration;

/// Uniform in `[0, min(max, base·2^retry)]`, with `unit` a random number in `[0, 1)`.
pub fn delay(retry: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let ceiling = base
        .checked_mul(2u32.saturating_pow(retry.min(20)))
        .unwrap_or(max)
        .min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)`, the jitter's draw.
pub fn random_unit() -> f64 {
    use rand::RngExt as _;
    rand::rng().random::<f64>()
}

/// `delay` with a fresh random number.
pub fn jittered(retry: u32, base: Duration, max: Duration) -> Duration {
    delay(retry, base, max, random_unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_exponential_with_full_jitter() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(10);
        assert_eq!(delay(0, base, max, 1.0), Duration::from_millis(500));
        assert_eq!(delay(1, base, max, 1.0), Duration::from_secs(1));
        assert_eq!(delay(3, base, max, 1.0), Duration::from_secs(4));
        assert_eq!(delay(10, base, max, 1.0), max);
        assert_eq!(delay(3, base, max, 0.5), Duration::from_secs(2));
        assert_eq!(delay(3, base, max, 0.0), Duration::ZERO);
        assert_eq!(delay(u32::MAX, base, max, 1.0), max);
        assert!(jittered(2, base, max) <= Duration::from_secs(2));
    }
}
