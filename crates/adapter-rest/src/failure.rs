//! A failed request as the REST adapter carries it: what went wrong (a core error kind, or a body
//! that is not the route's JSON), a message safe to show, and the cause for the log. The one
//! mapping of kinds to HTTP statuses and the one mapping to log levels live here; a family's
//! error shape writes a failure's body (`family.rs`), and one layer logs it ([`log`]).

use aki_core::{EmbedError, ErrorKind};
use axum::extract::MatchedPath;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Level;

/// What went wrong, independent of the shape it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A core error of this kind.
    Kind(ErrorKind),
    /// The body could not be read as the route's JSON (its rejection's 4xx status).
    BadRequest(StatusCode),
}

/// A failed request. As a response it carries itself in the response's extensions, where the
/// family's error shape and the log layer read it; converting into one has no side effects.
#[derive(Debug, Clone)]
pub struct Failure {
    problem: Problem,
    message: String,
    cause: String,
    /// When a 429 may be retried.
    retry_after: Option<std::time::Duration>,
}

impl Failure {
    /// A body that is not the route's JSON: malformed, wrong types, wrong content type, too large.
    pub fn rejected(rejection: &JsonRejection) -> Self {
        let message = rejection.body_text();
        Self { problem: Problem::BadRequest(rejection.status()), cause: message.clone(), message, retry_after: None }
    }

    /// A body that did not arrive within `limits.body_timeout_secs`: 408.
    pub fn slow_body(message: String) -> Self {
        Self {
            problem: Problem::BadRequest(StatusCode::REQUEST_TIMEOUT),
            cause: message.clone(),
            message,
            retry_after: None,
        }
    }

    /// What went wrong.
    pub fn problem(&self) -> Problem {
        self.problem
    }

    /// The message the client sees (5xx messages say little; the cause is logged).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.problem {
            Problem::BadRequest(status) => status,
            Problem::Kind(kind) => status_of(kind),
        }
    }

    /// The name the log gives what went wrong: the kind's, or `bad_request`.
    fn kind_name(&self) -> &'static str {
        match self.problem {
            Problem::BadRequest(_) => "bad_request",
            Problem::Kind(kind) => kind.as_str(),
        }
    }
}

impl From<EmbedError> for Failure {
    fn from(error: EmbedError) -> Self {
        let kind = error.kind();
        let message = match kind {
            ErrorKind::Internal => "internal error".to_string(),
            ErrorKind::Backend => "the model failed while computing".to_string(),
            _ => error.to_string(),
        };
        Self { problem: Problem::Kind(kind), message, cause: error.to_string(), retry_after: error.retry_after() }
    }
}

/// The one mapping of core error kinds to HTTP statuses (no catch-all: a new kind must be
/// mapped here before the crate compiles).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Empty => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Backend => StatusCode::FAILED_DEPENDENCY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The level a failure of `kind` is logged at, the same in `aki-grpc`: the client's mistakes at
/// debug, a server that cannot take the work (full, late, not ready) at warn, faults at error.
pub fn failure_level(kind: ErrorKind) -> Level {
    match kind {
        ErrorKind::Validation | ErrorKind::Empty | ErrorKind::Unauthorized | ErrorKind::NotFound => Level::DEBUG,
        ErrorKind::Overloaded | ErrorKind::Timeout | ErrorKind::Unavailable => Level::WARN,
        ErrorKind::Backend | ErrorKind::Internal => Level::ERROR,
    }
}

impl IntoResponse for Failure {
    /// The status (with `Retry-After` on a 429: the service's estimate, else 1 s), the body in
    /// the native shape until the family's shape rewrites it, and the failure itself as an
    /// extension.
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, crate::native::error_body(&self)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = self.retry_after.map_or(1, |wait| wait.as_secs().max(1));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// The layer (`axum::middleware::map_response`) that logs every failed request, once, with its
/// cause: fields `route`, `kind`, `status` and `error`, as `aki-grpc` logs its calls.
pub async fn log(route: Option<MatchedPath>, response: Response) -> Response {
    if let Some(failure) = response.extensions().get::<Failure>() {
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let (kind, status, error) = (failure.kind_name(), failure.status().as_u16(), failure.cause.as_str());
        let level = match failure.problem {
            Problem::BadRequest(_) => Level::DEBUG,
            Problem::Kind(kind) => failure_level(kind),
        };
        match level {
            Level::ERROR => tracing::error!(route, kind, status, error, "request failed"),
            Level::WARN => tracing::warn!(route, kind, status, error, "request failed"),
            _ => tracing::debug!(route, kind, status, error, "request failed"),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_shows_little_and_keeps_its_cause_for_the_log() {
        let failure = Failure::from(EmbedError::Backend("CUDA out of memory".into()));
        assert_eq!(failure.status(), StatusCode::FAILED_DEPENDENCY);
        assert!(!failure.message().contains("CUDA"));
        assert!(failure.cause.contains("CUDA out of memory"));
        let response = failure.into_response();
        assert!(response.extensions().get::<Failure>().is_some(), "the log layer finds it");
    }

    #[test]
    fn overload_says_when_to_retry() {
        let response = Failure::from(EmbedError::Overloaded("queue full".into())).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
