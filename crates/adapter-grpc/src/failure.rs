//! The one mapping of core error kinds to gRPC status codes.

use aki_core::{EmbedError, ErrorKind};
use tonic::{Code, Status};

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

/// A core error as a gRPC status; internal details are logged, not returned.
pub fn to_status(error: &EmbedError) -> Status {
    let code = status_of(error.kind());
    match error.kind() {
        ErrorKind::Backend => {
            tracing::error!(%error, "backend error");
            Status::new(code, "the model failed to compute the embeddings")
        }
        ErrorKind::Internal => {
            tracing::error!(%error, "internal error");
            Status::new(code, "internal error")
        }
        _ => Status::new(code, error.to_string()),
    }
}
