//! A breaker as a [`tower`](https://docs.rs/tower) layer (feature `tower`):
//! wrap any `Service` (an HTTP client, a gRPC channel, an axum route) so
//! its calls go through a breaker.
//!
//! ```
//! use circuit_runtime::tower::CircuitBreakerLayer;
//! use circuit_runtime::CallError;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # futures::executor::block_on(async {
//! let upstream = service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id * 2) });
//! let mut service = CircuitBreakerLayer::new("docs.tower.upstream").layer(upstream);
//! assert_eq!(service.ready().await?.call(21).await?, 42);
//! # Ok::<(), CallError<std::io::Error>>(())
//! # }).unwrap();
//! ```
//!
//! `poll_ready` only asks the inner service: no permit is held between
//! calls. Each call asks the breaker when it is made, and its response
//! future carries the permit: dropping the future before it completes is a
//! cancellation (it counts as nothing and gives back a half-open trial
//! slot), a panic while polling it is a failure. A rejected call never
//! reaches the inner service and fails with [`CallError::Rejected`];
//! the inner service's own errors come back as [`CallError::Failed`].
//!
//! A fallback is tower's own `map_result` (or `or_else` on the future)
//! after the layer: [`CallError::cause`] tells it why it runs, and
//! [`CircuitBreaker::record_fallback`] counts it in the breaker's metrics.
//!
//! ```
//! use circuit_runtime::tower::CircuitBreakerLayer;
//! use circuit_runtime::{CallError, FallbackCause};
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # futures::executor::block_on(async {
//! let layer = CircuitBreakerLayer::new("docs.tower.fallback");
//! let breaker = layer.breaker();
//! breaker.force_open();
//! let upstream = service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id * 2) });
//! let mut service = layer.layer(upstream).map_result(move |result| {
//!     result.or_else(|error: CallError<std::io::Error>| {
//!         let cause = error.cause();
//!         breaker.record_fallback(cause.reason());
//!         match cause {
//!             FallbackCause::Rejected(_) => Ok(0),
//!             FallbackCause::Failed(_) => Err(error),
//!         }
//!     })
//! });
//! assert_eq!(service.ready().await?.call(21).await?, 0);
//! # Ok::<(), CallError<std::io::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::__private::CallSite;
use crate::breaker::permit::{Permit, Verdict};
use crate::cell::keep_forever;
use crate::{CallError, CircuitBreaker, CircuitOpenError, Config};

/// What a finished call says about the dependency.
///
/// ```
/// use circuit_runtime::tower::Classification;
/// let by_status = |status: u16| if status >= 500 { Classification::Failure } else { Classification::Success };
/// assert_eq!(by_status(503), Classification::Failure);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Classification {
    /// The dependency did its job.
    Success,
    /// The dependency failed: counts toward opening the breaker.
    Failure,
    /// Says nothing about the dependency (a 404, a validation error):
    /// neither success nor failure.
    Ignored,
}

/// Decides what a response or an error of the inner service means for the
/// breaker. Any `Fn(Result<&Response, &Error>) -> Classification` is one.
///
/// ```
/// use circuit_runtime::tower::{Classification, CircuitBreakerLayer};
///
/// // An HTTP client whose `Ok` can be a 5xx.
/// struct Response { status: u16 }
/// let layer = CircuitBreakerLayer::new("docs.tower.classify").classify(
///     |outcome: Result<&Response, &std::io::Error>| match outcome {
///         Ok(response) if response.status >= 500 => Classification::Failure,
///         Ok(response) if response.status == 404 => Classification::Ignored,
///         Ok(_) => Classification::Success,
///         Err(_) => Classification::Failure,
///     },
/// );
/// # let _ = layer;
/// ```
pub trait ClassifyOutcome<Response, Error> {
    /// The classification of one finished call.
    fn classify_outcome(&self, outcome: Result<&Response, &Error>) -> Classification;
}

impl<F, Response, Error> ClassifyOutcome<Response, Error> for F
where
    F: Fn(Result<&Response, &Error>) -> Classification,
{
    fn classify_outcome(&self, outcome: Result<&Response, &Error>) -> Classification {
        self(outcome)
    }
}

/// The default classification: every `Ok` is a success, every `Err` a
/// failure.
///
/// ```
/// use circuit_runtime::tower::{Classification, ClassifyOutcome, EveryErrorFails};
/// assert_eq!(ClassifyOutcome::<u8, ()>::classify_outcome(&EveryErrorFails, Err(&())), Classification::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EveryErrorFails;

impl<Response, Error> ClassifyOutcome<Response, Error> for EveryErrorFails {
    fn classify_outcome(&self, outcome: Result<&Response, &Error>) -> Classification {
        match outcome {
            Ok(_) => Classification::Success,
            Err(_) => Classification::Failure,
        }
    }
}

/// Where a layer's services find their breaker.
#[derive(Clone)]
enum Source {
    /// The global registry's breaker of this name, cached as a
    /// `#[circuit_breaker]` call site caches it: it follows the registry
    /// when the registry replaces the breaker.
    Named {
        name: Arc<str>,
        config: Option<Arc<Config>>,
        site: &'static CallSite,
    },
    /// One breaker, given.
    Given(&'static CircuitBreaker),
}

impl Source {
    fn breaker(&self) -> &'static CircuitBreaker {
        match self {
            Source::Named { name, config, site } => {
                site.breaker(name, || config.as_deref().cloned().unwrap_or_default())
            }
            Source::Given(breaker) => breaker,
        }
    }
}

/// A [`tower_layer::Layer`] that puts a breaker in front of a service.
///
/// Build layers when the program starts, not per request: each keeps a
/// small call-site cache for the rest of the program, as a
/// `#[circuit_breaker]` function does.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::tower::CircuitBreakerLayer;
/// use circuit_runtime::{CallError, Config};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let config = Config::builder().failure_threshold(1).build()?;
/// let failing = service_fn(|_: ()| async { Err::<(), _>("connection refused") });
/// let mut service = CircuitBreakerLayer::with_config("docs.tower.layer", config).layer(failing);
///
/// let first = service.ready().await.unwrap().call(()).await;
/// assert_eq!(first, Err(CallError::Failed("connection refused")));
/// match service.ready().await.unwrap().call(()).await {
///     Err(CallError::Rejected(open)) => assert_eq!(open.retry_after_secs(), Some(60)),
///     other => panic!("expected a rejection, got {other:?}"),
/// }
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = EveryErrorFails> {
    source: Source,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer over the global registry's breaker called `name`, with the
    /// configuration the registry gives that name (a
    /// [`configure`](crate::Registry::configure)d one, a configuration
    /// file's, or the defaults).
    pub fn new(name: impl Into<String>) -> Self {
        Self::named(name.into(), None)
    }

    /// A layer over the global registry's breaker called `name`,
    /// registered with `config` unless the name has a configuration
    /// already, as a `#[circuit_breaker]` with options would.
    pub fn with_config(name: impl Into<String>, config: Config) -> Self {
        Self::named(name.into(), Some(config))
    }

    /// A layer over `breaker`, which then lives for the rest of the
    /// program (from a [`Registry`](crate::Registry) of a test's own, or
    /// made by hand).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use circuit_runtime::{tower::CircuitBreakerLayer, CircuitBreaker, Config};
    /// let breaker = Arc::new(CircuitBreaker::new("docs.tower.given", Config::default()));
    /// let layer = CircuitBreakerLayer::from_breaker(Arc::clone(&breaker));
    /// # let _ = layer;
    /// ```
    pub fn from_breaker(breaker: Arc<CircuitBreaker>) -> Self {
        CircuitBreakerLayer {
            source: Source::Given(keep_forever(breaker)),
            classifier: EveryErrorFails,
        }
    }

    fn named(name: String, config: Option<Config>) -> Self {
        CircuitBreakerLayer {
            source: Source::Named {
                name: name.into(),
                config: config.map(Arc::new),
                site: Box::leak(Box::new(CallSite::new())),
            },
            classifier: EveryErrorFails,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// The same layer, classifying outcomes with `classifier`: which
    /// errors, and which responses (a 5xx), count as failures.
    pub fn classify<D>(self, classifier: D) -> CircuitBreakerLayer<D> {
        CircuitBreakerLayer {
            source: self.source,
            classifier,
        }
    }

    /// The breaker the layer's services call through now.
    ///
    /// ```
    /// let layer = circuit_runtime::tower::CircuitBreakerLayer::new("docs.tower.breaker");
    /// assert_eq!(layer.breaker().name(), "docs.tower.breaker");
    /// ```
    pub fn breaker(&self) -> &'static CircuitBreaker {
        self.source.breaker()
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker().name())
            .finish_non_exhaustive()
    }
}

impl<S, C: Clone> tower_layer::Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            source: self.source.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service whose calls go through a breaker: what
/// [`CircuitBreakerLayer`] makes.
#[derive(Clone)]
pub struct CircuitBreakerService<S, C = EveryErrorFails> {
    inner: S,
    source: Source,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The breaker its calls go through now.
    pub fn breaker(&self) -> &'static CircuitBreaker {
        self.source.breaker()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker().name())
            .finish_non_exhaustive()
    }
}

impl<S, C, Request> tower_service::Service<Request> for CircuitBreakerService<S, C>
where
    S: tower_service::Service<Request>,
    C: ClassifyOutcome<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CallError::Failed)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match self.source.breaker().try_acquire() {
            Ok(permit) => State::Running {
                future: self.inner.call(request),
                permit: Some(permit),
                classifier: self.classifier.clone(),
            },
            Err(rejection) => State::Rejected {
                rejection: Some(rejection),
            },
        };
        ResponseFuture { state }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`CircuitBreakerService`]: the inner
    /// service's future under its call's permit, or a rejection.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F, C> {
        Running {
            #[pin]
            future: F,
            // `None` once the call completed.
            permit: Option<Permit<'static>>,
            classifier: C,
        },
        Rejected {
            rejection: Option<CircuitOpenError>,
        },
    }
}

impl<F, C, Response, Error> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response, Error>>,
    C: ClassifyOutcome<Response, Error>,
{
    type Output = Result<Response, CallError<Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Rejected { rejection } => {
                Poll::Ready(Err(CallError::Rejected(rejection.take().expect(
                    "a circuit breaker's response future polled after it completed",
                ))))
            }
            StateProjection::Running {
                future,
                permit,
                classifier,
            } => {
                let running = permit
                    .as_mut()
                    .expect("a circuit breaker's response future polled after it completed");
                let Poll::Ready(outcome) = running.poll_body(future, cx) else {
                    return Poll::Pending;
                };
                if let Some(permit) = permit.take() {
                    permit.judge(|| match classifier.classify_outcome(outcome.as_ref()) {
                        Classification::Success => Verdict::Success,
                        Classification::Failure => Verdict::Failure,
                        Classification::Ignored => Verdict::Ignored,
                    });
                }
                Poll::Ready(outcome.map_err(CallError::Failed))
            }
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rejected = matches!(self.state, State::Rejected { .. });
        f.debug_struct("ResponseFuture")
            .field("rejected", &rejected)
            .finish_non_exhaustive()
    }
}
