//! `Deadline`: how long a request may take, from `?deadline_ms=` or a
//! default, as an axum extractor.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::fmt;
use std::time::{Duration, Instant};

/// The moment a request must be answered by: its handlers are told to stop
/// (their [`CancelToken`](workpool::CancelToken) is cancelled) and the
/// answer goes out with the results that have arrived, as 504.
///
/// As an extractor it reads the query parameter `deadline_ms` (milliseconds
/// from when the request was extracted), else the [`DefaultDeadline`] in
/// the request's extensions, else [`Deadline::DEFAULT`]. A value that is no
/// number, or above [`Deadline::MAX`], is refused with 400.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool_http::Deadline;
///
/// let deadline = Deadline::after(Duration::from_millis(250));
/// assert_eq!(deadline.budget(), Duration::from_millis(250));
/// assert!(!deadline.has_passed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
}

impl Deadline {
    /// The budget of a request that names none: 10 s.
    pub const DEFAULT: Duration = Duration::from_secs(10);

    /// The longest budget a request may ask for: 5 minutes. Graceful
    /// shutdown waits for requests in flight, so none may ask for ever.
    pub const MAX: Duration = Duration::from_secs(300);

    /// A deadline `budget` from now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::Deadline;
    ///
    /// let deadline = Deadline::after(Duration::from_secs(2));
    /// assert_eq!(deadline.at(), deadline.start() + Duration::from_secs(2));
    /// assert!(!deadline.has_passed());
    /// ```
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            start: Instant::now(),
            budget,
        }
    }

    /// The time the request was given.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::Deadline;
    ///
    /// let deadline = Deadline::after(Duration::from_millis(250));
    /// assert_eq!(deadline.budget(), Duration::from_millis(250));
    /// assert_eq!(Deadline::after(Deadline::DEFAULT).budget(), Duration::from_secs(10));
    /// ```
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// When the deadline was set (the request's start, as handlers see it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use workpool_http::Deadline;
    ///
    /// let before = Instant::now();
    /// let deadline = Deadline::after(Duration::from_secs(1));
    /// assert!(before <= deadline.start() && deadline.start() <= Instant::now());
    /// ```
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The moment itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use workpool_http::Deadline;
    ///
    /// let deadline = Deadline::after(Duration::from_millis(500));
    /// assert_eq!(deadline.at() - deadline.start(), Duration::from_millis(500));
    /// // The time left:
    /// let left = deadline.at().saturating_duration_since(Instant::now());
    /// assert!(left <= Duration::from_millis(500));
    /// ```
    pub fn at(&self) -> Instant {
        // `after` took a budget of at most years; an overflow is a budget
        // beyond any wait, so the latest representable moment will do.
        self.start
            .checked_add(self.budget)
            .unwrap_or_else(|| self.start + Duration::from_secs(u32::MAX.into()))
    }

    /// Time since the start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::Deadline;
    ///
    /// let deadline = Deadline::after(Duration::from_secs(1));
    /// std::thread::sleep(Duration::from_millis(10));
    /// assert!(deadline.elapsed() >= Duration::from_millis(10));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether the moment has come.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::Deadline;
    ///
    /// assert!(Deadline::after(Duration::ZERO).has_passed());
    /// assert!(!Deadline::after(Duration::from_secs(60)).has_passed());
    /// ```
    pub fn has_passed(&self) -> bool {
        Instant::now() >= self.at()
    }

    /// For `tokio::time::timeout_at`.
    pub(crate) fn tokio_at(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.at())
    }
}

/// The budget of requests that name none, for the [`Deadline`] extractor:
/// put it in the request extensions, e.g. with
/// `router.layer(axum::Extension(DefaultDeadline(Duration::from_secs(2))))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultDeadline(pub Duration);

/// Why the [`Deadline`] extractor refused a request: answered as 400 with
/// this text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadlineRejection {
    /// `deadline_ms` is not a whole number of milliseconds.
    NotANumber {
        /// The parser's words.
        reason: String,
    },
    /// `deadline_ms` is above [`Deadline::MAX`].
    TooLong {
        /// What the request asked for, in milliseconds.
        asked_ms: u64,
    },
}

impl fmt::Display for DeadlineRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadlineRejection::NotANumber { reason } => {
                write!(
                    f,
                    "deadline_ms must be a whole number of milliseconds: {reason}"
                )
            }
            DeadlineRejection::TooLong { asked_ms } => write!(
                f,
                "deadline_ms must be at most {}, got {asked_ms}",
                Deadline::MAX.as_millis()
            ),
        }
    }
}

impl std::error::Error for DeadlineRejection {}

impl IntoResponse for DeadlineRejection {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, format!("{self}\n")).into_response()
    }
}

#[derive(Deserialize)]
struct DeadlineQuery {
    deadline_ms: Option<u64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Deadline {
    type Rejection = DeadlineRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = Query::<DeadlineQuery>::try_from_uri(&parts.uri).map_err(|e| {
            DeadlineRejection::NotANumber {
                reason: e.body_text(),
            }
        })?;
        let budget = match query.0.deadline_ms {
            Some(ms) if Duration::from_millis(ms) > Deadline::MAX => {
                return Err(DeadlineRejection::TooLong { asked_ms: ms })
            }
            Some(ms) => Duration::from_millis(ms),
            None => parts
                .extensions
                .get::<DefaultDeadline>()
                .map_or(Deadline::DEFAULT, |d| d.0.min(Deadline::MAX)),
        };
        Ok(Deadline::after(budget))
    }
}
