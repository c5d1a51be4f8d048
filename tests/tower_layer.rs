//! The tower layer (feature `tower`) around mock services, driven with
//! `tower::ServiceExt` as a service author drives it.

mod common;

use std::future::{pending, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_runtime::tower::{CircuitBreakerLayer, Classification};
use circuit_runtime::{registry, CallError, CircuitBreaker, Config, ManualClock, State};
use futures::FutureExt;
use tower::{service_fn, Layer, Service, ServiceExt};

fn config(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(10))
        .half_open_max_calls(1)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A layer over a breaker of the test's own, on a manual clock.
fn layer(name: &str) -> (CircuitBreakerLayer, Arc<CircuitBreaker>, ManualClock) {
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::new(name, config(&clock)));
    (
        CircuitBreakerLayer::from_breaker(Arc::clone(&breaker)),
        breaker,
        clock,
    )
}

/// A service that answers `Ok(status)` for a status below 600, and an
/// error otherwise, counting the calls that reach it.
fn upstream(
    reached: &Arc<AtomicUsize>,
) -> impl Service<
    u16,
    Response = u16,
    Error = &'static str,
    Future = impl Future<Output = Result<u16, &'static str>> + Send,
> + Clone {
    let reached = Arc::clone(reached);
    service_fn(move |status: u16| {
        reached.fetch_add(1, Ordering::Relaxed);
        async move {
            if status < 600 {
                Ok(status)
            } else {
                Err("connection reset")
            }
        }
    })
}

#[tokio::test]
async fn errors_trip_the_breaker_and_rejections_never_reach_the_service() {
    let (layer, breaker, clock) = layer("tower.trip");
    let reached = Arc::new(AtomicUsize::new(0));
    let mut service = layer.layer(upstream(&reached));

    assert_eq!(service.ready().await.unwrap().call(200).await, Ok(200));
    for _ in 0..2 {
        let failed = service.ready().await.unwrap().call(600).await;
        assert_eq!(failed, Err(CallError::Failed("connection reset")));
    }
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_millis(2500));
    match service.ready().await.unwrap().call(200).await {
        Err(CallError::Rejected(open)) => {
            assert_eq!(open.state(), State::Open);
            assert_eq!(open.retry_after_secs(), Some(8), "7.5 s left, rounded up");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        reached.load(Ordering::Relaxed),
        3,
        "the rejected call never reached it"
    );

    clock.advance(Duration::from_secs(8));
    assert_eq!(service.ready().await.unwrap().call(204).await, Ok(204));
    assert_eq!(breaker.state(), State::Closed, "the trial closed it");
}

#[tokio::test]
async fn a_response_classifier_counts_5xx_as_failures_and_404_as_nothing() {
    let (layer, breaker, _clock) = layer("tower.classify");
    let reached = Arc::new(AtomicUsize::new(0));
    let by_status = |outcome: Result<&u16, &&str>| match outcome {
        Ok(status) if *status >= 500 => Classification::Failure,
        Ok(404) => Classification::Ignored,
        Ok(_) => Classification::Success,
        Err(_) => Classification::Failure,
    };
    let mut service = layer.classify(by_status).layer(upstream(&reached));

    assert_eq!(
        service.ready().await.unwrap().call(503).await,
        Ok(503),
        "a 5xx is still returned"
    );
    assert_eq!(service.ready().await.unwrap().call(404).await, Ok(404));
    assert_eq!(
        breaker.metrics().consecutive_failures,
        1,
        "the 404 broke no run"
    );
    assert_eq!(service.ready().await.unwrap().call(502).await, Ok(502));
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.ignored_calls,
            metrics.successful_calls
        ),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn a_dropped_response_future_is_a_cancellation_that_gives_back_its_trial_slot() {
    let (layer, breaker, clock) = layer("tower.cancel");
    breaker.record_failure();
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    let hanging = service_fn(|hang: bool| async move {
        if hang {
            pending::<()>().await;
        }
        Ok::<_, &str>("answer")
    });
    let mut service = layer.layer(hanging);

    let trial = service.ready().await.unwrap().call(true);
    {
        let mut trial = pin!(trial);
        let waker = futures::task::noop_waker();
        assert!(trial
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(
            matches!(
                service.ready().await.unwrap().call(false).await,
                Err(CallError::Rejected(_))
            ),
            "the one trial slot is taken while the trial runs"
        );
    } // the client gave up: the trial's future is dropped

    assert_eq!(
        service.ready().await.unwrap().call(false).await,
        Ok("answer")
    );
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.ignored_calls
        ),
        (1, 2, 0),
        "the cancelled trial counted as nothing"
    );
}

#[tokio::test]
async fn poll_ready_holds_no_permit() {
    let (layer, breaker, clock) = layer("tower.ready");
    breaker.record_failure();
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    let mut first = layer.layer(service_fn(|()| async { Ok::<_, &str>(1) }));
    let mut second = first.clone();
    for _ in 0..10 {
        first.ready().await.unwrap();
        second.ready().await.unwrap();
    }
    assert_eq!(breaker.metrics().rejected_calls, 0);
    assert_eq!(second.call(()).await, Ok(1), "readiness took no trial slot");
    assert_eq!(breaker.state(), State::Closed);
}

/// A service that is never ready: its connection pool is gone.
#[derive(Clone)]
struct PoolGone;

impl Service<()> for PoolGone {
    type Response = ();
    type Error = &'static str;
    type Future = std::future::Ready<Result<(), &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Err("pool closed"))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        unreachable!("never ready, never called")
    }
}

#[tokio::test]
async fn an_inner_readiness_error_is_the_services_own_and_counts_nothing() {
    let (layer, breaker, _clock) = layer("tower.not_ready");
    let mut service = layer.layer(PoolGone);
    assert_eq!(
        service.ready().await.map(|_| ()),
        Err(CallError::Failed("pool closed"))
    );
    assert_eq!(breaker.metrics().total_calls, 0, "no call was made");
}

#[tokio::test]
async fn a_panic_while_polling_the_call_counts_as_a_failure() {
    let (layer, breaker, _clock) = layer("tower.panic");
    let mut service = layer.layer(service_fn(|()| async {
        panic!("the upstream client has a bug");
        #[allow(unreachable_code)]
        Ok::<(), &str>(())
    }));
    let call = service.ready().await.unwrap().call(());
    let unwound = AssertUnwindSafe(call).catch_unwind().await;
    assert!(unwound.is_err());
    assert_eq!(breaker.metrics().failed_calls, 1);
}

#[tokio::test]
async fn a_named_layer_follows_the_registry_when_the_name_is_reconfigured() {
    let name = "tower.named";
    let layer = CircuitBreakerLayer::with_config(name, Config::default());
    let mut service = layer.layer(service_fn(|()| async { Err::<(), _>("down") }));
    let _ = service.ready().await.unwrap().call(()).await;
    assert_eq!(registry().get(name).unwrap().metrics().failed_calls, 1);

    // A test's manual clock gives the name a fresh breaker; the layer's
    // services switch to it on their next call.
    let clock = ManualClock::new();
    registry().configure(name, config(&clock));
    for _ in 0..2 {
        let _ = service.ready().await.unwrap().call(()).await;
    }
    let current = registry().get(name).unwrap();
    assert_eq!(current.state(), State::Open);
    assert!(std::ptr::eq(&*current, layer.breaker()));
    let result = common::returns_within("a rejected call", Duration::from_secs(10), move || {
        futures::executor::block_on(async move { service.ready().await.unwrap().call(()).await })
    });
    assert!(matches!(result, Err(CallError::Rejected(_))));
}

#[test]
fn a_fallback_after_the_layer_is_told_why_through_the_errors_cause() {
    let (layer, breaker, _clock) = layer("tower.fallback_cause");
    let reached = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&breaker);
    let service = layer.layer(upstream(&reached)).map_result(
        move |result: Result<u16, CallError<&'static str>>| {
            result.or_else(|error| -> Result<u16, CallError<&'static str>> {
                let cause = error.cause();
                counted.record_fallback(cause.reason());
                match cause {
                    circuit_runtime::FallbackCause::Failed(reason) => {
                        Ok(if *reason == "connection reset" { 1 } else { 2 })
                    }
                    circuit_runtime::FallbackCause::Rejected(open) => {
                        Ok(u16::try_from(open.retry_after_secs().unwrap()).unwrap())
                    }
                }
            })
        },
    );
    futures::executor::block_on(async {
        let mut service = service;
        for _ in 0..2 {
            assert_eq!(service.ready().await.unwrap().call(600).await, Ok(1));
        }
        assert_eq!(
            service.ready().await.unwrap().call(200).await,
            Ok(10),
            "rejected: the fallback sees the time until the next trial"
        );
    });
    assert_eq!(reached.load(Ordering::Relaxed), 2);
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.fallbacks_after_failure,
            metrics.fallbacks_after_rejection
        ),
        (2, 1)
    );
}
