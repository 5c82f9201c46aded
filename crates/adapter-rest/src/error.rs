//! Errors as each route family shows them: native, OpenAI and TEI shapes, one status mapping.

use aki_core::{EmbedError, ErrorKind};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which wire format a route's errors take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error": {"kind", "message"}}` (`/api/v1/...`).
    Native,
    /// `{"error": {"message", "type", "param", "code"}}` (`/v1/...`, `/v2/rerank`).
    OpenAi,
    /// `{"error", "error_type"}` (`/embed`, `/tokenize`, `/rerank`).
    Tei,
}

/// What went wrong, independent of the shape it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A core error of this kind.
    Kind(ErrorKind),
    /// The body could not be read as the route's JSON (its rejection's 4xx status).
    BadRequest(StatusCode),
}

/// An error response of one route family.
#[derive(Debug)]
pub struct Failure {
    shape: Shape,
    problem: Problem,
    message: String,
}

impl Shape {
    /// The shape of the route at `path`: OpenAI's under `/v1/`, TEI's for its routes, else native.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/v1/") || path.starts_with("/v2/") {
            Self::OpenAi
        } else if matches!(path, "/embed" | "/tokenize" | "/rerank") {
            Self::Tei
        } else {
            Self::Native
        }
    }
}

impl Failure {
    /// A failure shown in `shape`.
    pub fn new(shape: Shape, problem: Problem, message: impl Into<String>) -> Self {
        Self { shape, problem, message: message.into() }
    }

    /// A core error shown in `shape`; internal details are logged, not returned.
    pub fn from_core(shape: Shape, error: &EmbedError) -> Self {
        let kind = error.kind();
        let message = match kind {
            ErrorKind::Internal => {
                tracing::error!(%error, "internal error");
                "internal error".to_string()
            }
            ErrorKind::Backend => {
                tracing::error!(%error, "backend error");
                "the model failed to compute the embeddings".to_string()
            }
            _ => error.to_string(),
        };
        Self::new(shape, Problem::Kind(kind), message)
    }

    /// A core error in the native shape (for `map_err`).
    pub fn native(error: EmbedError) -> Self {
        Self::from_core(Shape::Native, &error)
    }

    /// A core error in OpenAI's shape (for `map_err`).
    pub fn openai(error: EmbedError) -> Self {
        Self::from_core(Shape::OpenAi, &error)
    }

    /// A core error in TEI's shape (for `map_err`).
    pub fn tei(error: EmbedError) -> Self {
        Self::from_core(Shape::Tei, &error)
    }

    /// A body that is not the route's JSON: malformed, wrong types, wrong content type,
    /// too large.
    pub fn from_rejection(shape: Shape, rejection: &JsonRejection) -> Self {
        Self::new(shape, Problem::BadRequest(rejection.status()), rejection.body_text())
    }

    fn status(&self) -> StatusCode {
        match self.problem {
            Problem::BadRequest(status) => status,
            Problem::Kind(kind) => status_of(kind),
        }
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

/// The native shape's `kind`: the core kind's name (no input at all is a validation error there).
fn native_kind(problem: Problem) -> &'static str {
    match problem {
        Problem::BadRequest(_) => "bad_request",
        Problem::Kind(ErrorKind::Empty) => ErrorKind::Validation.as_str(),
        Problem::Kind(kind) => kind.as_str(),
    }
}

/// OpenAI's `type` and `code` fields.
fn openai_type(problem: Problem) -> (&'static str, Option<&'static str>) {
    match problem {
        Problem::BadRequest(_) | Problem::Kind(ErrorKind::Empty | ErrorKind::Validation) => {
            ("invalid_request_error", None)
        }
        Problem::Kind(ErrorKind::Unauthorized) => ("invalid_request_error", Some("invalid_api_key")),
        Problem::Kind(ErrorKind::NotFound) => ("invalid_request_error", Some("model_not_found")),
        Problem::Kind(ErrorKind::Overloaded) => ("rate_limit_error", Some("rate_limit_exceeded")),
        Problem::Kind(ErrorKind::Timeout) => ("server_error", Some("timeout")),
        Problem::Kind(ErrorKind::Unavailable | ErrorKind::Backend | ErrorKind::Internal) => ("server_error", None),
    }
}

/// TEI's `error_type`.
fn tei_type(problem: Problem) -> &'static str {
    match problem {
        Problem::Kind(ErrorKind::Empty) => "Empty",
        Problem::BadRequest(_)
        | Problem::Kind(ErrorKind::Unauthorized | ErrorKind::Validation | ErrorKind::NotFound) => "Validation",
        Problem::Kind(ErrorKind::Overloaded) => "Overloaded",
        Problem::Kind(ErrorKind::Unavailable | ErrorKind::Timeout) => "Unhealthy",
        Problem::Kind(ErrorKind::Backend | ErrorKind::Internal) => "Backend",
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self.shape {
            Shape::Native => json!({"error": {"kind": native_kind(self.problem), "message": self.message}}),
            Shape::OpenAi => {
                let (kind, code) = openai_type(self.problem);
                json!({"error": {"message": self.message, "type": kind, "param": null, "code": code}})
            }
            Shape::Tei => json!({"error": self.message, "error_type": tei_type(self.problem)}),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
