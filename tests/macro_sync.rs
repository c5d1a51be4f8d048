//! `#[circuit_breaker]` on sync functions, observed through the global
//! registry. Every test uses its own breaker names: tests run in parallel.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, Config, ManualClock, State};

#[derive(Debug, PartialEq)]
enum ApiError {
    Down,
    NotFound,
    Unavailable(State),
}

impl From<CircuitOpenError> for ApiError {
    fn from(open: CircuitOpenError) -> Self {
        ApiError::Unavailable(open.state())
    }
}

fn state(name: &str) -> State {
    registry()
        .get(name)
        .expect("registered on first call")
        .state()
}

static TRIP_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "macro_sync.trip",
    failure_threshold = 3,
    recovery_timeout = "1h"
)]
fn flaky(fail: bool) -> Result<u32, ApiError> {
    TRIP_RUNS.fetch_add(1, Ordering::SeqCst);
    if fail {
        return Err(ApiError::Down);
    }
    Ok(7)
}

#[test]
fn trips_after_failure_threshold_consecutive_failures() {
    assert_eq!(flaky(false), Ok(7));
    assert_eq!(flaky(true), Err(ApiError::Down));
    assert_eq!(flaky(true), Err(ApiError::Down));
    assert_eq!(state("macro_sync.trip"), State::Closed);
    assert_eq!(flaky(true), Err(ApiError::Down));
    assert_eq!(state("macro_sync.trip"), State::Open);

    let runs = TRIP_RUNS.load(Ordering::SeqCst);
    assert_eq!(flaky(false), Err(ApiError::Unavailable(State::Open)));
    assert_eq!(
        TRIP_RUNS.load(Ordering::SeqCst),
        runs,
        "an open breaker rejects without running the body"
    );
    let metrics = registry().get("macro_sync.trip").unwrap().metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.successful_calls,
            metrics.rejected_calls
        ),
        (3, 1, 1)
    );
}

#[circuit_breaker(failure_threshold = 1)]
fn default_named() -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn the_default_name_is_the_functions_path() {
    default_named().unwrap();
    assert!(registry().get("macro_sync::default_named").is_some());
}

#[circuit_breaker(name = "macro_sync.fallback", failure_threshold = 1, fallback = cached_quote)]
fn quote(symbol: &str, amount: u32) -> Result<String, ApiError> {
    Err(ApiError::Down).map(|()| format!("{symbol}{amount}"))
}

#[allow(clippy::unnecessary_wraps)]
fn cached_quote(symbol: &str, amount: u32) -> Result<String, ApiError> {
    Ok(format!("cached {symbol} x{amount}"))
}

#[test]
fn the_fallback_gets_the_arguments_of_a_rejected_call() {
    assert_eq!(
        quote("ACME", 3),
        Err(ApiError::Down),
        "failures are the caller's"
    );
    assert_eq!(quote("ACME", 4).unwrap(), "cached ACME x4");
    assert_eq!(state("macro_sync.fallback"), State::Open);
}

#[circuit_breaker(
    name = "macro_sync.any_error",
    failure_threshold = 2,
    fallback = backup_lookup,
    fallback_on = "any_error"
)]
fn lookup(key: String, attempts: &mut u32) -> Result<String, ApiError> {
    *attempts += 1;
    drop(key); // moved: the fallback gets the clone taken before the call
    Err(ApiError::Down)
}

#[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
fn backup_lookup(key: String, attempts: &mut u32) -> Result<String, ApiError> {
    let breaker = registry().get("macro_sync.any_error").unwrap();
    Ok(format!(
        "backup {key} after {attempts} attempt(s), {} failure(s) recorded",
        breaker.metrics().failed_calls
    ))
}

#[test]
fn any_error_sends_failed_calls_to_the_fallback_after_recording_them() {
    let mut attempts = 0;
    assert_eq!(
        lookup("k".to_owned(), &mut attempts).unwrap(),
        "backup k after 1 attempt(s), 1 failure(s) recorded"
    );
    assert_eq!(
        lookup("k".to_owned(), &mut attempts).unwrap(),
        "backup k after 2 attempt(s), 2 failure(s) recorded"
    );
    assert_eq!(state("macro_sync.any_error"), State::Open);
    // Rejected: the body does not run, the fallback gets the originals.
    assert_eq!(
        lookup("k".to_owned(), &mut attempts).unwrap(),
        "backup k after 2 attempt(s), 2 failure(s) recorded"
    );
}

fn is_outage(err: &ApiError) -> bool {
    *err == ApiError::Down
}

#[circuit_breaker(name = "macro_sync.is_failure", failure_threshold = 1, is_failure = is_outage)]
fn find(id: u32) -> Result<u32, ApiError> {
    if id == 0 {
        Err(ApiError::NotFound)
    } else {
        Err(ApiError::Down)
    }
}

#[test]
fn errors_is_failure_rejects_are_ignored() {
    for _ in 0..5 {
        assert_eq!(find(0), Err(ApiError::NotFound));
    }
    let breaker = registry().get("macro_sync.is_failure").unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().ignored_calls, 5);
    assert_eq!(find(1), Err(ApiError::Down));
    assert_eq!(breaker.state(), State::Open);
}

#[circuit_breaker(name = "macro_sync.shared", failure_threshold = 2)]
fn shared_read() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

#[circuit_breaker(name = "macro_sync.shared", failure_threshold = 2)]
fn shared_write() -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn functions_sharing_a_name_share_one_breaker() {
    assert_eq!(shared_read(), Err(ApiError::Down));
    assert_eq!(shared_read(), Err(ApiError::Down));
    assert_eq!(
        shared_write(),
        Err(ApiError::Unavailable(State::Open)),
        "tripped by the other function"
    );
    assert!(registry()
        .conflicts()
        .iter()
        .all(|c| c.name != "macro_sync.shared"));
}

thread_local! {
    static HEALTHY: Cell<bool> = const { Cell::new(false) };
}

#[circuit_breaker(name = "macro_sync.recovery", failure_threshold = 5)]
fn recovering() -> Result<&'static str, ApiError> {
    if HEALTHY.get() {
        Ok("up")
    } else {
        Err(ApiError::Down)
    }
}

#[test]
fn a_breaker_configured_with_a_manual_clock_drives_recovery() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap();
    registry().configure("macro_sync.recovery", config);

    assert_eq!(recovering(), Err(ApiError::Down));
    assert_eq!(
        state("macro_sync.recovery"),
        State::Open,
        "the configured threshold (1) is used, not the attribute's (5)"
    );
    assert_eq!(recovering(), Err(ApiError::Unavailable(State::Open)));

    clock.advance(Duration::from_secs(30));
    HEALTHY.set(true);
    assert_eq!(recovering(), Ok("up"), "the trial call runs");
    assert_eq!(state("macro_sync.recovery"), State::Closed);
}

#[circuit_breaker(name = "macro_sync.panic", failure_threshold = 1)]
fn explodes() -> Result<(), ApiError> {
    panic!("the body panicked")
}

#[test]
fn a_panic_counts_as_a_failure_and_keeps_unwinding() {
    let unwound = catch_unwind(AssertUnwindSafe(explodes));
    assert!(unwound.is_err());
    let breaker = registry().get("macro_sync.panic").unwrap();
    assert_eq!(breaker.metrics().failed_calls, 1);
    assert_eq!(breaker.state(), State::Open);
}

#[circuit_breaker(name = "macro_sync.conflict", failure_threshold = 2)]
fn conflict_first() -> Result<(), ApiError> {
    Ok(())
}

#[circuit_breaker(name = "macro_sync.conflict", failure_threshold = 7)]
fn conflict_second() -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn two_call_sites_declaring_one_name_differently_are_listed_as_a_conflict() {
    conflict_first().unwrap();
    conflict_second().unwrap();
    let breaker = registry().get("macro_sync.conflict").unwrap();
    assert_eq!(
        breaker.config().failure_threshold(),
        2,
        "the first registration wins"
    );
    let conflicts: Vec<_> = registry()
        .conflicts()
        .into_iter()
        .filter(|conflict| conflict.name == "macro_sync.conflict")
        .collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].registered.failure_threshold(), 2);
    assert_eq!(conflicts[0].requested.failure_threshold(), 7);
}

struct Account {
    balance: u32,
}

impl Account {
    #[circuit_breaker(name = "macro_sync.method", failure_threshold = 1, fallback = Self::hold)]
    fn withdraw(&mut self, amount: u32) -> Result<u32, ApiError> {
        self.balance = self.balance.checked_sub(amount).ok_or(ApiError::Down)?;
        Ok(self.balance)
    }

    #[allow(clippy::unnecessary_wraps)]
    fn hold(&mut self, amount: u32) -> Result<u32, ApiError> {
        Ok(self.balance + amount * 1000)
    }
}

#[test]
fn a_methods_fallback_gets_the_receiver_first() {
    let mut account = Account { balance: 10 };
    assert_eq!(account.withdraw(4), Ok(6));
    assert_eq!(account.withdraw(100), Err(ApiError::Down));
    assert_eq!(account.withdraw(1), Ok(1006));
}

struct Inbox;
struct Outbox<T>(T);

impl Inbox {
    #[circuit_breaker]
    fn fetch(&self) -> Result<u32, ApiError> {
        Ok(1)
    }
}

impl<T: Copy> Outbox<T> {
    #[circuit_breaker]
    fn fetch(&self) -> Result<T, ApiError> {
        Ok(self.0)
    }
}

#[test]
fn a_method_is_named_after_its_type_so_same_named_methods_do_not_share() {
    Inbox.fetch().unwrap();
    Outbox(7_u8).fetch().unwrap();
    Outbox("generic arguments are left out").fetch().unwrap();
    let inbox = registry()
        .get("macro_sync::Inbox::fetch")
        .expect("named after Inbox");
    let outbox = registry()
        .get("macro_sync::Outbox::fetch")
        .expect("named after Outbox");
    assert!(!std::sync::Arc::ptr_eq(&inbox, &outbox));
    assert_eq!(inbox.metrics().successful_calls, 1);
    assert_eq!(
        outbox.metrics().successful_calls,
        2,
        "one breaker per call site"
    );
}

fn panicking_classifier(_: &ApiError) -> bool {
    panic!("the classifier blew up")
}

#[circuit_breaker(
    name = "macro_sync.classifier_panics",
    failure_threshold = 1,
    is_failure = panicking_classifier
)]
fn misclassified() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

#[test]
fn a_panicking_is_failure_counts_the_error_as_a_failure() {
    let unwound = catch_unwind(misclassified);
    assert!(unwound.is_err());
    let breaker = registry().get("macro_sync.classifier_panics").unwrap();
    assert_eq!(breaker.metrics().failed_calls, 1);
    assert_eq!(breaker.state(), State::Open);
}

#[circuit_breaker(
    name = "macro_sync.fallback_panics",
    failure_threshold = 1,
    fallback = panicking_fallback,
    fallback_on = "any_error"
)]
fn with_panicking_fallback(fail: bool) -> Result<u32, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(1)
    }
}

fn panicking_fallback(_fail: bool) -> Result<u32, ApiError> {
    panic!("the fallback blew up")
}

/// A fallback runs after the breaker has recorded the call (or rejected
/// it): its panic reaches the caller and changes nothing in the breaker.
#[test]
fn a_panicking_fallback_leaves_the_breaker_as_it_was() {
    let breaker = || registry().get("macro_sync.fallback_panics").unwrap();
    assert!(catch_unwind(|| with_panicking_fallback(true)).is_err());
    let tripped = breaker().metrics();
    assert_eq!(breaker().state(), State::Open);
    assert_eq!((tripped.failed_calls, tripped.total_calls), (1, 1));

    assert!(catch_unwind(|| with_panicking_fallback(false)).is_err());
    let rejected = breaker().metrics();
    assert_eq!(breaker().state(), State::Open);
    assert_eq!(rejected.rejected_calls, tripped.rejected_calls + 1);
    assert_eq!(rejected.total_calls, 1);

    breaker().reset();
    assert_eq!(with_panicking_fallback(false), Ok(1));
}
