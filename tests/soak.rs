//! Stress soak: many threads calling one breaker every way a program can,
//! through the attribute (sync and async) and the runtime (`call_with`,
//! permits, futures), with failures, ignored errors, panics and
//! cancellations, while the manual clock moves. Afterwards the metrics must
//! add up to exactly what the threads saw, no trial slot may be missing, and
//! the breaker must still recover.
//!
//! Bounded: two seconds by default; set `CIRCUIT_SOAK_SECONDS` to soak
//! longer, e.g. `CIRCUIT_SOAK_SECONDS=300 cargo test --release --test soak`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use circuit_runtime::{
    circuit_breaker, registry, CallError, CircuitBreaker, CircuitOpenError, Config, ManualClock,
    State,
};

#[path = "common/poll.rs"]
mod poll;
use poll::poll_once;

const NAME: &str = "soak";
const THREADS: usize = 8;
const HALF_OPEN_MAX_CALLS: u32 = 2;

#[derive(Debug)]
enum SoakError {
    Down,
    Invalid,
    Rejected,
}

impl From<CircuitOpenError> for SoakError {
    fn from(_: CircuitOpenError) -> Self {
        SoakError::Rejected
    }
}

fn is_failure(err: &SoakError) -> bool {
    !matches!(err, SoakError::Invalid)
}

/// What a protected body does, chosen at random per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Succeed,
    Fail,
    Ignore,
    Panic,
}

fn act(act: Act) -> Result<u32, SoakError> {
    match act {
        Act::Succeed => Ok(1),
        Act::Fail => Err(SoakError::Down),
        Act::Ignore => Err(SoakError::Invalid),
        // resume_unwind skips the panic hook: the soak would print thousands.
        Act::Panic => std::panic::resume_unwind(Box::new("the dependency blew up")),
    }
}

#[circuit_breaker(name = "soak", is_failure = is_failure)]
fn protected(what: Act) -> Result<u32, SoakError> {
    act(what)
}

#[circuit_breaker(name = "soak", is_failure = is_failure)]
async fn protected_async(what: Act) -> Result<u32, SoakError> {
    YieldOnce(false).await;
    act(what)
}

/// Pending on its first poll, ready on the second: a call that is "in
/// flight" long enough to be cancelled.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// What the threads saw, to hold the breaker's metrics against.
#[derive(Default)]
struct Seen {
    successful: AtomicU64,
    failed: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    cancelled: AtomicU64,
}

impl Seen {
    fn outcome(&self, what: Act, result: &Result<u32, SoakError>) {
        let counter = match (what, result) {
            (_, Err(SoakError::Rejected)) => &self.rejected,
            (Act::Succeed, _) => &self.successful,
            (Act::Fail | Act::Panic, _) => &self.failed,
            (Act::Ignore, _) => &self.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn panicked(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// xorshift64: reproducible per-thread randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }

    fn act(&mut self) -> Act {
        match self.below(10) {
            0..=4 => Act::Succeed,
            5..=7 => Act::Fail,
            8 => Act::Ignore,
            _ => Act::Panic,
        }
    }
}

/// One random operation on the breaker, accounted in `seen`.
fn operate(breaker: &CircuitBreaker, clock: &ManualClock, rng: &mut Rng, seen: &Seen) {
    let what = rng.act();
    match rng.below(8) {
        // Through the attribute, sync.
        0 | 1 => match catch_unwind(|| protected(what)) {
            Ok(result) => seen.outcome(what, &result),
            Err(_) => seen.panicked(),
        },
        // Through the attribute, async: completed, or cancelled mid-call.
        2 | 3 => {
            let cancel = rng.below(3) == 0;
            let polled = catch_unwind(AssertUnwindSafe(|| {
                let mut call = pin!(protected_async(what));
                match poll_once(call.as_mut()) {
                    Poll::Ready(result) => Some(result),
                    Poll::Pending if cancel => None,
                    Poll::Pending => match poll_once(call.as_mut()) {
                        Poll::Ready(result) => Some(result),
                        Poll::Pending => unreachable!("YieldOnce is ready on its second poll"),
                    },
                }
            }));
            match polled {
                Ok(Some(result)) => seen.outcome(what, &result),
                Ok(None) => {
                    seen.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => seen.panicked(),
            }
        }
        // Through the runtime's call_with.
        4 | 5 => match catch_unwind(|| breaker.call_with(is_failure, || act(what))) {
            Ok(Err(CallError::Rejected(_))) => {
                seen.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(value)) => seen.outcome(what, &Ok(value)),
            Ok(Err(CallError::Failed(err))) => seen.outcome(what, &Err(err)),
            Err(_) => seen.panicked(),
        },
        // The two-step permit, sometimes dropped without a verdict.
        6 => match breaker.try_acquire() {
            Err(_) => {
                seen.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Ok(permit) => match (what, rng.below(4)) {
                (_, 0) => {
                    drop(permit);
                    seen.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                (Act::Succeed, _) => {
                    permit.record_success();
                    seen.outcome(what, &Ok(1));
                }
                (Act::Ignore, _) => {
                    permit.record_ignored();
                    seen.outcome(what, &Err(SoakError::Invalid));
                }
                (Act::Fail | Act::Panic, _) => {
                    permit.record_failure();
                    seen.outcome(Act::Fail, &Err(SoakError::Down));
                }
            },
        },
        // Time passes: recovery timeouts and half-open timeouts elapse.
        _ => clock.advance(Duration::from_millis(rng.below(15))),
    }
}

#[test]
fn soak_keeps_every_count_and_slot_and_still_recovers() {
    let seconds = std::env::var("CIRCUIT_SOAK_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2);
    let clock = ManualClock::new();
    let breaker = registry().replace(
        NAME,
        Config::builder()
            .failure_threshold(3)
            .failure_rate_threshold(0.5)
            .window_size(20)
            .success_threshold(2)
            .half_open_max_calls(HALF_OPEN_MAX_CALLS)
            .recovery_timeout(Duration::from_millis(20))
            .recovery_backoff(1.5)
            .max_recovery_timeout(Duration::from_millis(200))
            .half_open_timeout(Duration::from_millis(100))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let seen = Seen::default();
    let start = Barrier::new(THREADS);
    let deadline = Instant::now() + Duration::from_secs(seconds);

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (breaker, clock, seen, start) = (&breaker, &clock, &seen, &start);
            scope.spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1));
                start.wait();
                while Instant::now() < deadline {
                    for _ in 0..64 {
                        operate(breaker, clock, &mut rng, seen);
                    }
                }
            });
        }
    });

    let metrics = breaker.metrics();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    assert_eq!(metrics.successful_calls, load(&seen.successful));
    assert_eq!(metrics.failed_calls, load(&seen.failed));
    assert_eq!(metrics.ignored_calls, load(&seen.ignored));
    assert_eq!(metrics.rejected_calls, load(&seen.rejected));
    assert_eq!(
        metrics.total_calls,
        metrics.successful_calls + metrics.failed_calls + metrics.ignored_calls
    );
    assert!(
        metrics.times_opened > 0 && metrics.times_closed > 0,
        "the soak should have tripped and recovered the breaker: {metrics:?}"
    );
    assert!(
        load(&seen.cancelled) > 0,
        "the soak should have cancelled calls"
    );

    // Every trial slot of the current period is free again.
    if breaker.state() == State::HalfOpen {
        let permits: Vec<_> = (0..HALF_OPEN_MAX_CALLS)
            .map(|_| {
                breaker
                    .try_acquire()
                    .expect("a trial slot was never given back")
            })
            .collect();
        assert!(breaker.try_acquire().is_err());
        drop(permits);
    }

    // And it still recovers: past every timeout, succeeding calls close it.
    for _ in 0..10 {
        if breaker.state() == State::Closed {
            break;
        }
        clock.advance(Duration::from_secs(1));
        let _ = protected(Act::Succeed);
        let _ = protected(Act::Succeed);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert!(protected(Act::Succeed).is_ok());
}
