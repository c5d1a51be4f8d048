//! What kind of error an error is, for deciding whether to try again.

use std::io;
use std::time::Duration;

use crate::{CallError, CircuitOpenError};

/// The kind of failure an error reports, which decides whether a retry can
/// help.
///
/// ```
/// use circuit_runtime::retry::ErrorCategory;
/// assert!(ErrorCategory::Network.is_retryable());
/// assert!(!ErrorCategory::Permanent.is_retryable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The network failed: a refused or reset connection, an unreachable
    /// host. Worth retrying.
    Network,
    /// The dependency asked to slow down. Worth retrying, after its
    /// `retry_after` if it gave one.
    RateLimit,
    /// Something ran out (memory, connections, quota). Worth retrying,
    /// later.
    Resource,
    /// A passing failure: a timeout, an interruption. Worth retrying.
    Transient,
    /// Retrying cannot help: bad input, not found, not allowed, or a
    /// breaker that rejected the call.
    Permanent,
}

impl ErrorCategory {
    /// Whether a retry can help: every category but `Permanent`.
    pub const fn is_retryable(self) -> bool {
        !matches!(self, ErrorCategory::Permanent)
    }

    /// The category in `snake_case`, as logs and metrics labels spell it.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::retry::ErrorCategory::RateLimit.as_str(), "rate_limit");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Network => "network",
            ErrorCategory::RateLimit => "rate_limit",
            ErrorCategory::Resource => "resource",
            ErrorCategory::Transient => "transient",
            ErrorCategory::Permanent => "permanent",
        }
    }

    /// The severity an error of this category has unless it says
    /// otherwise.
    pub const fn default_severity(self) -> Severity {
        match self {
            ErrorCategory::Transient | ErrorCategory::RateLimit => Severity::Low,
            ErrorCategory::Network => Severity::Medium,
            ErrorCategory::Resource | ErrorCategory::Permanent => Severity::High,
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad an error is, for logs and alerts; ordered from `Low` to
/// `Critical`.
///
/// ```
/// use circuit_runtime::retry::Severity;
/// assert!(Severity::Critical > Severity::Low);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Expected now and then.
    Low,
    /// Worth a look when it repeats.
    Medium,
    /// Something is wrong.
    High,
    /// Someone should act now.
    Critical,
}

impl Severity {
    /// The severity in `snake_case`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that knows its [`ErrorCategory`], its [`Severity`], and how
/// long the dependency asked to be left alone.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::retry::{should_retry, Classify, ErrorCategory};
///
/// enum ApiError { TooManyRequests { retry_after: Duration }, BadRequest }
///
/// impl Classify for ApiError {
///     fn category(&self) -> ErrorCategory {
///         match self {
///             ApiError::TooManyRequests { .. } => ErrorCategory::RateLimit,
///             ApiError::BadRequest => ErrorCategory::Permanent,
///         }
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::TooManyRequests { retry_after } => Some(*retry_after),
///             ApiError::BadRequest => None,
///         }
///     }
/// }
///
/// let limited = ApiError::TooManyRequests { retry_after: Duration::from_secs(2) };
/// assert!(should_retry(&limited, 1, 3));
/// assert!(!should_retry(&ApiError::BadRequest, 1, 3));
/// ```
pub trait Classify {
    /// The kind of failure.
    fn category(&self) -> ErrorCategory;

    /// How bad it is; by default, its category's
    /// [`default_severity`](ErrorCategory::default_severity).
    fn severity(&self) -> Severity {
        self.category().default_severity()
    }

    /// How long the dependency asked to wait before the next attempt (a
    /// rate limit's `Retry-After`), if it did.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn category(&self) -> ErrorCategory {
        (**self).category()
    }

    fn severity(&self) -> Severity {
        (**self).severity()
    }

    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
}

/// By [`io::ErrorKind`]: connection failures are `Network`, timeouts and
/// interruptions `Transient`, exhaustion `Resource`, and what a retry
/// cannot fix (bad input, not found, not allowed) `Permanent`. Kinds not
/// named here are `Transient`: an unknown I/O error is worth one more try.
///
/// ```
/// use std::io;
/// use circuit_runtime::retry::{classify_error, ErrorCategory, Severity};
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert_eq!(classify_error(&refused), (ErrorCategory::Network, Severity::Medium));
/// ```
impl Classify for io::Error {
    fn category(&self) -> ErrorCategory {
        use io::ErrorKind as Kind;
        match self.kind() {
            Kind::ConnectionRefused
            | Kind::ConnectionReset
            | Kind::ConnectionAborted
            | Kind::NotConnected
            | Kind::BrokenPipe
            | Kind::AddrInUse
            | Kind::AddrNotAvailable
            | Kind::UnexpectedEof => ErrorCategory::Network,
            Kind::OutOfMemory => ErrorCategory::Resource,
            Kind::NotFound
            | Kind::PermissionDenied
            | Kind::AlreadyExists
            | Kind::InvalidInput
            | Kind::InvalidData
            | Kind::Unsupported => ErrorCategory::Permanent,
            _ => ErrorCategory::Transient,
        }
    }
}

/// Never retried: the breaker says the dependency is down, and trying
/// again at once would only be rejected again. Its `retry_after` is the
/// time until the breaker's next trial.
impl Classify for CircuitOpenError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Permanent
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn retry_after(&self) -> Option<Duration> {
        CircuitOpenError::retry_after(self)
    }
}

/// A rejection as [`CircuitOpenError`] is, a failure as its error is.
impl<E: Classify> Classify for CallError<E> {
    fn category(&self) -> ErrorCategory {
        match self {
            CallError::Rejected(rejection) => rejection.category(),
            CallError::Failed(err) => err.category(),
        }
    }

    fn severity(&self) -> Severity {
        match self {
            CallError::Rejected(rejection) => Classify::severity(rejection),
            CallError::Failed(err) => err.severity(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Rejected(rejection) => Classify::retry_after(rejection),
            CallError::Failed(err) => err.retry_after(),
        }
    }
}

/// `error`'s category and severity.
///
/// ```
/// use circuit_runtime::retry::{classify_error, ErrorCategory, Severity};
/// let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// assert_eq!(classify_error(&timeout), (ErrorCategory::Transient, Severity::Low));
/// ```
pub fn classify_error<E: Classify + ?Sized>(error: &E) -> (ErrorCategory, Severity) {
    (error.category(), error.severity())
}

/// Whether to retry after attempt number `attempt` failed with `error`
/// (attempts count from one), when at most `max_retries` retries are
/// allowed: its category must be retryable, and `attempt` at most
/// `max_retries`.
///
/// ```
/// use circuit_runtime::retry::should_retry;
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert!(should_retry(&reset, 3, 3), "the third attempt failed: one retry left");
/// assert!(!should_retry(&reset, 4, 3), "three retries made");
/// let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
/// assert!(!should_retry(&missing, 1, 3));
/// ```
pub fn should_retry<E: Classify + ?Sized>(error: &E, attempt: u32, max_retries: u32) -> bool {
    error.category().is_retryable() && attempt <= max_retries
}
