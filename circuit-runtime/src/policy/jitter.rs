//! Random spread of a delay, from a small generator of our own: the runtime
//! needs a few random bits per transition, not a dependency.

use std::time::Duration;

use super::saturating_mul;

/// Spreads delays uniformly by up to `share` of themselves, either way:
/// with `share` 0.1, a 10 s delay becomes anything from 9 s to 11 s.
#[derive(Clone, Debug)]
pub(crate) struct Jitter {
    share: f64,
    /// State of a splitmix64 generator.
    state: u64,
}

impl Jitter {
    /// `share` in [0, 1], as the configuration's validation ensures; `seed`
    /// differs between breakers so that breakers tripped together do not
    /// reopen together.
    pub(crate) fn new(share: f64, seed: u64) -> Self {
        Self { share, state: seed }
    }

    /// A new share, the generator where it was.
    pub(crate) fn set_share(&mut self, share: f64) {
        self.share = share;
    }

    /// `delay`, spread. Without jitter the delay comes back unchanged and
    /// the generator does not move.
    pub(crate) fn spread(&mut self, delay: Duration) -> Duration {
        if self.share > 0.0 {
            saturating_mul(delay, 1.0 + self.share * (2.0 * self.next_unit() - 1.0))
        } else {
            delay
        }
    }

    fn next_unit(&mut self) -> f64 {
        let mut random = SplitMix(self.state);
        let unit = random.next_unit();
        self.state = random.0;
        unit
    }
}

/// A splitmix64 generator: a few random bits per delay, not a dependency.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    /// A uniform number in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        #[allow(clippy::cast_precision_loss)] // 53 random bits make a uniform f64
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_share_and_spreads_over_it() {
        let mut jitter = Jitter::new(0.1, 42);
        let base = Duration::from_secs(10);
        let spread: Vec<Duration> = (0..1_000).map(|_| jitter.spread(base)).collect();
        let (low, high) = (Duration::from_secs(9), Duration::from_secs(11));
        assert!(spread.iter().all(|delay| (low..=high).contains(delay)));
        assert!(spread
            .iter()
            .any(|delay| *delay < Duration::from_millis(9_200)));
        assert!(spread
            .iter()
            .any(|delay| *delay > Duration::from_millis(10_800)));
    }

    #[test]
    fn without_a_share_changes_nothing() {
        let mut jitter = Jitter::new(0.0, 7);
        assert_eq!(
            jitter.spread(Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}
