//! Failed calls: the one mapping of core error kinds to gRPC status codes, and [`fail`], the one
//! place a failed call is logged (with the same level per kind and the same fields as `aki-rest`).

use std::fmt::Display;

use aki_core::{EmbedError, ErrorKind};
use tonic::{Code, Status};
use tracing::Level;

/// The gRPC code of a core error kind (no catch-all: a new kind fails to compile until mapped).
pub fn status_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Validation | ErrorKind::Empty => Code::InvalidArgument,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::Overloaded => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Backend | ErrorKind::Internal => Code::Internal,
    }
}

/// The level a failure of `kind` is logged at, the same as in `aki-rest`: the client's mistakes
/// at debug, a server that cannot take the work (full, late, not ready) at warn, faults at error.
pub fn failure_level(kind: ErrorKind) -> Level {
    match kind {
        ErrorKind::Validation | ErrorKind::Empty | ErrorKind::Unauthorized | ErrorKind::NotFound => Level::DEBUG,
        ErrorKind::Overloaded | ErrorKind::Timeout | ErrorKind::Unavailable => Level::WARN,
        ErrorKind::Backend | ErrorKind::Internal => Level::ERROR,
    }
}

/// A core error as a gRPC status; internal details stay out of it (they are logged). A refusal
/// that can be retried carries `retry-after` (seconds) in its metadata, as REST's header.
fn to_status(error: &EmbedError) -> Status {
    let code = status_of(error.kind());
    let mut status = match error.kind() {
        ErrorKind::Backend => Status::new(code, "the model failed while computing"),
        ErrorKind::Internal => Status::new(code, "internal error"),
        _ => Status::new(code, error.to_string()),
    };
    if let Some(wait) = error.retry_after() {
        status.metadata_mut().insert("retry-after", wait.as_secs().max(1).into());
    }
    status
}

/// The answer to a call on `route` (its method path) that failed with `error`; the call's
/// failure is logged here, once, with its cause.
pub fn fail(route: &str, error: &EmbedError) -> Status {
    let status = to_status(error);
    log(failure_level(error.kind()), route, error.kind().as_str(), status.code(), error);
    status
}

/// The answer to a message of a stream on `route` that could not be read (`status`, from the
/// transport): the client's mistake, logged like a REST body that is not the route's JSON.
pub fn fail_read(route: &str, status: Status) -> Status {
    log(Level::DEBUG, route, "bad_request", status.code(), status.message());
    status
}

fn log(level: Level, route: &str, kind: &str, code: Code, error: impl Display) {
    match level {
        Level::ERROR => tracing::error!(route, kind, status = ?code, %error, "request failed"),
        Level::WARN => tracing::warn!(route, kind, status = ?code, %error, "request failed"),
        _ => tracing::debug!(route, kind, status = ?code, %error, "request failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_shows_little_and_keeps_its_cause_out_of_the_status() {
        let status = fail("/aki.embed.v1.Embedder/Embed", &EmbedError::Backend("CUDA out of memory".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("CUDA"));
        let status = fail("/aki.embed.v1.Embedder/Embed", &EmbedError::Validation("too long".into()));
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "too long"));
    }

    #[test]
    fn a_busy_refusal_says_when_to_retry() {
        let busy = EmbedError::busy("queue ahead", std::time::Duration::from_secs(4));
        let status = fail("/aki.embed.v1.Embedder/Embed", &busy);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("4"));
    }
}
