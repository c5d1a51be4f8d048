//! Many threads against one breaker: the half-open trial limit holds at
//! every instant (measured inside the calls), and every trial slot comes
//! back afterwards. Time only moves between storms, on a `ManualClock`, so
//! each storm sees exactly one half-open period.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_runtime::{CallError, CircuitBreaker, Config, ManualClock, Permit, State};

const THREADS: usize = 8;
const TRIAL_SLOTS: u32 = 3;
const RECOVERY: Duration = Duration::from_secs(10);

/// Counts the calls inside their bodies and remembers the highest count.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
    entered: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.entered.fetch_add(1, Ordering::SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// Runs `body` counted as one call in flight, holding the slot for a few
    /// scheduler turns so that calls overlap.
    fn run<T>(&self, body: impl FnOnce() -> T) -> T {
        self.enter();
        for _ in 0..4 {
            std::thread::yield_now();
        }
        let result = body();
        self.exit();
        result
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A call that never finishes: counted in flight from its first poll until
/// it is dropped.
struct Hung<'a> {
    in_flight: &'a InFlight,
    entered: bool,
}

impl Future for Hung<'_> {
    type Output = Result<(), &'static str>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.entered {
            self.entered = true;
            self.in_flight.enter();
        }
        std::thread::yield_now();
        Poll::Pending
    }
}

impl Drop for Hung<'_> {
    fn drop(&mut self) {
        if self.entered {
            self.in_flight.exit();
        }
    }
}

/// Starts an async call, polls it once, and cancels it by dropping it.
/// Returns whether the breaker admitted it (it then reached `Hung`).
fn cancelled_async_call(breaker: &CircuitBreaker, in_flight: &InFlight) -> bool {
    let call = breaker.call_async(Hung {
        in_flight,
        entered: false,
    });
    let mut call = pin!(call);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match call.as_mut().poll(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(CallError::Rejected(rejection))) => {
            assert_eq!(rejection.state(), State::HalfOpen);
            false
        }
        Poll::Ready(other) => panic!("a hung call cannot finish: {other:?}"),
    }
}

/// xorshift64: a fixed, different sequence of choices for every thread.
struct Choices(u64);

impl Choices {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn half_open_breaker(success_threshold: u32) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .half_open_max_calls(TRIAL_SLOTS)
        .success_threshold(success_threshold)
        .recovery_timeout(RECOVERY)
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("contended", config);
    breaker.record_failure();
    clock.advance(RECOVERY);
    (breaker, clock)
}

/// Acquires every trial slot of a half-open breaker and checks there is no
/// extra one.
fn take_every_slot(breaker: &CircuitBreaker) -> Vec<Permit<'_>> {
    let permits: Vec<_> = (0..TRIAL_SLOTS)
        .map(|i| {
            breaker
                .try_acquire()
                .unwrap_or_else(|e| panic!("trial slot {i} did not come back: {e}"))
        })
        .collect();
    assert!(permits.iter().all(|p| p.admitted_in() == State::HalfOpen));
    let extra = breaker
        .try_acquire()
        .expect_err("no slot beyond half_open_max_calls");
    assert_eq!(extra.state(), State::HalfOpen);
    permits
}

#[test]
fn half_open_admits_at_most_max_calls_under_contention() {
    let (breaker, _clock) = half_open_breaker(TRIAL_SLOTS);
    let in_flight = InFlight::default();
    let ignored = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);

    // Every call ends without a verdict that moves the breaker (an ignored
    // error, a dropped permit, a cancelled future), so the whole storm runs
    // in one half-open period.
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (breaker, in_flight, ignored, barrier) = (&breaker, &in_flight, &ignored, &barrier);
            scope.spawn(move || {
                let mut choices = Choices(0x9E37_79B9 + thread as u64);
                barrier.wait();
                for _ in 0..2_000 {
                    match choices.next(3) {
                        0 => match breaker
                            .call_with(|_| false, || in_flight.run(|| Err::<(), _>("busy")))
                        {
                            Err(CallError::Failed("busy")) => {
                                ignored.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(CallError::Rejected(rejection)) => {
                                assert_eq!(rejection.state(), State::HalfOpen);
                            }
                            other => panic!("unexpected {other:?}"),
                        },
                        1 => {
                            // The permit outlives the counted body, as it
                            // does around a real call.
                            if let Ok(permit) = breaker.try_acquire() {
                                in_flight.run(|| ());
                                drop(permit);
                            }
                        }
                        _ => {
                            cancelled_async_call(breaker, in_flight);
                        }
                    }
                }
            });
        }
    });

    let peak = in_flight.peak();
    assert!(
        peak <= TRIAL_SLOTS as usize,
        "{peak} trials ran at once with half_open_max_calls = {TRIAL_SLOTS}"
    );
    assert!(peak >= 1 && in_flight.entered.load(Ordering::SeqCst) > 0);
    assert_eq!(in_flight.now.load(Ordering::SeqCst), 0);

    assert_eq!(breaker.state(), State::HalfOpen);
    let metrics = breaker.metrics();
    assert_eq!(metrics.ignored_calls, ignored.load(Ordering::SeqCst) as u64);
    assert_eq!(
        (metrics.successful_calls, metrics.failed_calls),
        (0, 1),
        "dropped permits and cancelled calls count as nothing"
    );

    // Every slot came back: all of them can be taken at once, and their
    // successes close the breaker.
    for permit in take_every_slot(&breaker) {
        permit.record_success();
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().times_closed, 1);
}

#[test]
fn half_open_trial_limit_holds_across_many_recoveries() {
    const ROUNDS: usize = 150;
    let (breaker, clock) = half_open_breaker(2);
    let trials = InFlight::default();
    let barrier = Barrier::new(THREADS);
    let mut outcomes = [0_usize; 3]; // closed, reopened, still half-open

    for round in 0..ROUNDS {
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (breaker, trials, barrier) = (&breaker, &trials, &barrier);
                scope.spawn(move || {
                    let mut choices = Choices((round * THREADS + thread) as u64 + 1);
                    barrier.wait();
                    for _ in 0..40 {
                        let Ok(permit) = breaker.try_acquire() else {
                            continue;
                        };
                        if permit.admitted_in() != State::HalfOpen {
                            // The trials closed the breaker: an ordinary call.
                            permit.record_success();
                            continue;
                        }
                        let verdict = choices.next(20);
                        // The slot is held until the verdict, which is given
                        // after the body has left the in-flight count.
                        trials.run(|| ());
                        match verdict {
                            0 => permit.record_failure(),
                            1..=4 => permit.record_success(),
                            5..=11 => permit.record_ignored(),
                            _ => drop(permit),
                        }
                    }
                });
            }
        });

        let peak = trials.peak();
        assert!(
            peak <= TRIAL_SLOTS as usize,
            "round {round}: {peak} trials at once with half_open_max_calls = {TRIAL_SLOTS}"
        );
        match breaker.state() {
            State::Closed => outcomes[0] += 1,
            State::Open => outcomes[1] += 1,
            State::HalfOpen => {
                outcomes[2] += 1;
                // No call is in flight: every slot of this period is free.
                drop(take_every_slot(&breaker));
            }
            other => panic!("round {round} ended {other}"),
        }
        // Start the next round with a fresh half-open period.
        breaker.reset();
        breaker.record_failure();
        clock.advance(RECOVERY);
    }

    assert!(trials.peak() >= 1);
    assert_eq!(trials.now.load(Ordering::SeqCst), 0);
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.total_calls,
        metrics.successful_calls + metrics.failed_calls + metrics.ignored_calls
    );
    // The storms reached both verdicts, or the test would prove little.
    assert!(outcomes[0] > 0, "no round closed the breaker: {outcomes:?}");
    assert!(
        outcomes[1] > 0,
        "no round reopened the breaker: {outcomes:?}"
    );
}

#[test]
fn closed_breaker_counts_every_call_from_many_threads() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "counted",
        Config::builder()
            .failure_threshold(u32::MAX)
            .clock(clock)
            .build()
            .unwrap(),
    );
    let barrier = Barrier::new(THREADS);
    let per_thread = 5_000;
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (breaker, barrier) = (&breaker, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    let _ = match (thread + i) % 3 {
                        0 => breaker.call(|| Ok::<_, ()>(())),
                        1 => breaker.call(|| Err(())),
                        _ => breaker.call_with(|()| false, || Err(())),
                    };
                }
            });
        }
    });
    let metrics = breaker.metrics();
    let calls = (THREADS * per_thread) as u64;
    assert_eq!(metrics.total_calls, calls);
    assert_eq!(
        metrics.successful_calls + metrics.failed_calls + metrics.ignored_calls,
        calls
    );
    assert_eq!(metrics.rejected_calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

/// Counted from a thread-local's destructor: a call made while its thread
/// tears down, after or before the breaker's own thread-locals are gone.
struct CallsOnExit(&'static CircuitBreaker);

impl Drop for CallsOnExit {
    fn drop(&mut self) {
        let _ = self.0.call(|| Ok::<_, ()>(()));
    }
}

thread_local! {
    static CALLS_ON_EXIT: std::cell::RefCell<Option<CallsOnExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn counts_survive_threads_that_exit_outnumber_the_stripes_and_call_while_exiting() {
    // Leaked: thread-local destructors outlive any borrow of the test.
    let breaker: &'static CircuitBreaker = Box::leak(Box::new(CircuitBreaker::new(
        "counted-across-threads",
        Config::builder()
            .failure_threshold(u32::MAX)
            .build()
            .unwrap(),
    )));
    // Hundreds of threads, more than any machine's stripe count (at most
    // 256), in waves that overlap, so stripes are claimed, given back by
    // exiting threads, reused, and run out.
    let (waves, per_wave, per_thread) = (6_u64, 64_u64, 50_u64);
    for wave in 0..waves {
        // Joined, not scoped: a scope can end before its threads'
        // thread-local destructors have run, a join cannot.
        let running: Vec<_> = (0..per_wave)
            .map(|thread| {
                std::thread::spawn(move || {
                    // Half the threads register their exit call before any
                    // call of their own, so it may be their first.
                    if thread % 2 == 0 {
                        CALLS_ON_EXIT
                            .with(|on_exit| *on_exit.borrow_mut() = Some(CallsOnExit(breaker)));
                    }
                    for i in 0..per_thread {
                        let _ = if (wave + thread + i) % 2 == 0 {
                            breaker.call(|| Ok::<_, ()>(()))
                        } else {
                            breaker.call(|| Err(()))
                        };
                    }
                    if thread % 2 == 1 {
                        CALLS_ON_EXIT
                            .with(|on_exit| *on_exit.borrow_mut() = Some(CallsOnExit(breaker)));
                    }
                })
            })
            .collect();
        for thread in running {
            thread.join().expect("no call panics");
        }
    }
    let threads = waves * per_wave;
    let metrics = breaker.metrics();
    assert_eq!(metrics.total_calls, threads * (per_thread + 1));
    assert_eq!(metrics.failed_calls, threads * per_thread / 2);
    assert_eq!(metrics.successful_calls, threads * (per_thread / 2 + 1));
}

#[test]
fn concurrent_failures_trip_the_breaker_exactly_once() {
    for _ in 0..50 {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::new(
            "tripped-once",
            Config::builder()
                .failure_threshold(5)
                .recovery_timeout(RECOVERY)
                .clock(clock)
                .build()
                .unwrap(),
        );
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let (breaker, barrier) = (&breaker, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for _ in 0..20 {
                        let _ = breaker.call(|| Err::<(), _>(()));
                    }
                });
            }
        });
        let metrics = breaker.metrics();
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(metrics.times_opened, 1);
        assert_eq!(metrics.failed_calls + metrics.rejected_calls, 160);
        assert!(metrics.failed_calls >= 5);
    }
}
