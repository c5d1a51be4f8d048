//! Exponential growth of a delay, with a cap.

use std::time::Duration;

/// A delay that starts at `base`, is multiplied by `factor` at each
/// [`grow`](Backoff::grow), and never exceeds `cap`.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    current: Duration,
    /// How many times the delay grew since the last reset.
    steps: u32,
}

impl Backoff {
    /// `factor` is at least 1.0 and `cap` at least `base`: the
    /// configuration's validation sees to both.
    pub(crate) fn new(base: Duration, factor: f64, cap: Duration) -> Self {
        Self {
            base,
            factor,
            cap,
            current: base,
            steps: 0,
        }
    }

    /// New base, factor and cap, at the same step: a breaker that reopened
    /// twice keeps backing off from its new base.
    pub(crate) fn reconfigure(&mut self, base: Duration, factor: f64, cap: Duration) {
        let steps = i32::try_from(self.steps).unwrap_or(i32::MAX);
        *self = Self {
            base,
            factor,
            cap,
            current: saturating_mul(base, factor.powi(steps)).min(cap),
            steps: self.steps,
        };
    }

    /// The delay of the current step.
    pub(crate) fn current(&self) -> Duration {
        self.current
    }

    /// Moves to the next step: the delay times `factor`, at most `cap`.
    pub(crate) fn grow(&mut self) {
        self.current = saturating_mul(self.current, self.factor).min(self.cap);
        self.steps = self.steps.saturating_add(1);
    }

    /// Back to the first step.
    pub(crate) fn reset(&mut self) {
        self.current = self.base;
        self.steps = 0;
    }
}

/// `duration * factor`, saturating at `Duration::MAX`. Not `mul_f64`: it
/// panics when the product overflows, which valid configurations reach (a
/// backoff factor of 1e20, or jitter on a delay near `Duration::MAX`), and
/// a panic there would escape from a caller's call in the middle of a
/// transition.
pub(crate) fn saturating_mul(duration: Duration, factor: f64) -> Duration {
    let product = duration.as_secs_f64() * factor;
    // Zero times an overflowed factor is NaN: still zero.
    if product.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(product).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_its_factor_up_to_its_cap_and_resets_to_its_base() {
        let mut backoff = Backoff::new(Duration::from_secs(1), 3.0, Duration::from_secs(10));
        let mut seen = vec![backoff.current()];
        for _ in 0..3 {
            backoff.grow();
            seen.push(backoff.current());
        }
        assert_eq!(seen, [1, 3, 9, 10].map(Duration::from_secs));
        backoff.reset();
        assert_eq!(backoff.current(), Duration::from_secs(1));
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(saturating_mul(Duration::MAX, 2.0), Duration::MAX);
        assert_eq!(saturating_mul(Duration::from_secs(1), 1e300), Duration::MAX);
        let mut backoff = Backoff::new(Duration::from_secs(1), 1e300, Duration::MAX);
        backoff.grow();
        backoff.grow();
        assert_eq!(backoff.current(), Duration::MAX);
    }
}
