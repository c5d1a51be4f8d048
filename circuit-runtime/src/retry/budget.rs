//! A retry budget: retries may add at most a share of recent first
//! attempts to a dependency's load, so a retry storm cannot multiply the
//! load on a dependency that is already struggling.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::clock::{Clock, Timeline};
use crate::sync::lock_std;
use crate::{ConfigError, ManualClock};

/// How long a first attempt or a retry counts against the budget.
const WINDOW: Duration = Duration::from_secs(10);
/// The window's buckets: one per second.
const BUCKET_NANOS: u64 = 1_000_000_000;

/// Retries allowed as a share of recent first attempts (`retry_ratio`),
/// plus a floor per second (`min_retries_per_second`) so a quiet client can
/// still retry, over the last ten seconds. Shared by every configuration
/// that holds it: name one with [`RetryBudget::named`] to share it across
/// call sites.
///
/// ```
/// use std::sync::Arc;
/// use circuit_runtime::retry::RetryBudget;
///
/// let budget = RetryBudget::builder().retry_ratio(0.1).min_retries_per_second(0).build()?;
/// for _ in 0..20 {
///     budget.record_first_attempt();
/// }
/// assert!(budget.try_retry() && budget.try_retry(), "10% of 20 first attempts");
/// assert!(!budget.try_retry(), "spent");
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    retry_ratio: f64,
    min_retries_per_second: u32,
    timeline: Timeline,
    buckets: Mutex<VecDeque<Bucket>>,
}

/// One second of the window.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    second: u64,
    first_attempts: u64,
    retries: u64,
}

impl RetryBudget {
    /// A builder: 20% of first attempts, plus 10 retries per second.
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            clock: Clock::Monotonic,
        }
    }

    /// The program's budget called `name`, made with the builder's
    /// defaults on first use: every call site that names it shares it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use circuit_runtime::retry::RetryBudget;
    /// assert!(Arc::ptr_eq(&RetryBudget::named("payments"), &RetryBudget::named("payments")));
    /// ```
    pub fn named(name: &str) -> Arc<RetryBudget> {
        let mut budgets = lock_std(named_budgets());
        Arc::clone(
            budgets
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(RetryBudget::builder().into_budget())),
        )
    }

    /// Makes `budget` the program's budget called `name`, for the call
    /// sites that look it up from now on.
    pub fn set_named(name: &str, budget: Arc<RetryBudget>) {
        lock_std(named_budgets()).insert(name.to_owned(), budget);
    }

    /// Counts a first attempt: it earns `retry_ratio` of a retry.
    pub fn record_first_attempt(&self) {
        self.update(|bucket| bucket.first_attempts += 1);
    }

    /// Takes one retry from the budget if it has one; `false` when it is
    /// spent, and the caller should give up.
    pub fn try_retry(&self) -> bool {
        let mut buckets = lock_std(&self.buckets);
        // Read under the lock: a second read before it could be older than
        // the newest bucket by the time the lock is taken.
        let now = self.second();
        Self::expire(&mut buckets, now);
        let (first_attempts, retries) = buckets.iter().fold((0, 0), |(first, retried), bucket| {
            (first + bucket.first_attempts, retried + bucket.retries)
        });
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let allowed = self.retry_ratio * first_attempts as f64
            + f64::from(self.min_retries_per_second) * WINDOW.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let spent = retries as f64;
        if spent + 1.0 > allowed {
            return false;
        }
        Self::bucket(&mut buckets, now).retries += 1;
        true
    }

    fn update(&self, change: impl FnOnce(&mut Bucket)) {
        let mut buckets = lock_std(&self.buckets);
        let now = self.second();
        Self::expire(&mut buckets, now);
        change(Self::bucket(&mut buckets, now));
    }

    fn second(&self) -> u64 {
        self.timeline.now_nanos() / BUCKET_NANOS
    }

    /// Drops the buckets that left the window.
    fn expire(buckets: &mut VecDeque<Bucket>, now: u64) {
        while buckets
            .front()
            .is_some_and(|bucket| bucket.second + WINDOW.as_secs() <= now)
        {
            buckets.pop_front();
        }
    }

    fn bucket(buckets: &mut VecDeque<Bucket>, now: u64) -> &mut Bucket {
        if buckets.back().map_or(true, |bucket| bucket.second != now) {
            buckets.push_back(Bucket {
                second: now,
                first_attempts: 0,
                retries: 0,
            });
        }
        buckets.back_mut().expect("just pushed")
    }
}

fn named_budgets() -> &'static Mutex<HashMap<String, Arc<RetryBudget>>> {
    static BUDGETS: OnceLock<Mutex<HashMap<String, Arc<RetryBudget>>>> = OnceLock::new();
    BUDGETS.get_or_init(Mutex::default)
}

/// Builds a [`RetryBudget`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryBudgetBuilder {
    retry_ratio: f64,
    min_retries_per_second: u32,
    clock: Clock,
}

impl RetryBudgetBuilder {
    /// Retries allowed per first attempt, from 0 to 1000 (default 0.2:
    /// retries add at most 20% to the load).
    pub fn retry_ratio(mut self, ratio: f64) -> Self {
        self.retry_ratio = ratio;
        self
    }

    /// Retries allowed per second whatever the first attempts (default 10).
    pub fn min_retries_per_second(mut self, retries: u32) -> Self {
        self.min_retries_per_second = retries;
        self
    }

    /// Counts seconds on `clock`, for tests.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// The budget.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for a `retry_ratio` outside 0 to 1000.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if !(0.0..=1000.0).contains(&self.retry_ratio) {
            return Err(ConfigError::OutOfRange {
                option: "retry_ratio",
                expected: "between 0 and 1000",
                value: self.retry_ratio.to_string(),
            });
        }
        Ok(self.into_budget())
    }

    /// The budget, its options already checked.
    fn into_budget(self) -> RetryBudget {
        RetryBudget {
            retry_ratio: self.retry_ratio,
            min_retries_per_second: self.min_retries_per_second,
            timeline: Timeline::new(self.clock),
            buckets: Mutex::new(VecDeque::new()),
        }
    }
}
