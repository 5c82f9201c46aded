//! The one error type of the core ports and its transport-neutral kind.

/// Result alias used by every port.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Transport-neutral classification of an [`EmbedError`].
///
/// Adapters map each kind to a status code (HTTP, gRPC) in one exhaustive `match`,
/// so adding a kind fails to compile until every adapter has mapped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is wrong: too long, too many inputs, bad option. Retrying will not help.
    Validation,
    /// The request holds no input at all (TEI answers these with 400, not 422).
    Empty,
    /// A key is required and the request's is missing or wrong.
    Unauthorized,
    /// The server is saturated (queue full). Retrying later may succeed.
    Overloaded,
    /// The model is not loaded or not healthy (yet).
    Unavailable,
    /// The request's deadline passed before it could be served.
    Timeout,
    /// The named model (or other resource) does not exist or is not allowed.
    NotFound,
    /// Inference failed inside the model backend (TEI answers these with 424).
    Backend,
    /// A fault inside the server or its backend; details are logged, not returned.
    Internal,
}

impl ErrorKind {
    /// A short snake-case name, the same on every transport (metric labels, native error bodies).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Empty => "empty",
            Self::Unauthorized => "unauthorized",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::NotFound => "not_found",
            Self::Backend => "backend",
            Self::Internal => "internal",
        }
    }
}

/// Every failure a port can report.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EmbedError {
    /// Bad input; the message is safe to show to the caller.
    #[error("{0}")]
    Validation(String),
    /// No input at all.
    #[error("the request holds no input")]
    Empty,
    /// Missing or wrong API key.
    #[error("missing or invalid API key (Authorization: Bearer <key>)")]
    Unauthorized,
    /// The bounded queue is full.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The work cannot be taken now but can later: the queue ahead of it would not finish
    /// before its deadline, or its tenant spent its token rate. Nothing of it was computed.
    #[error("overloaded: {message}; retry in {} s", retry_after.as_secs())]
    Busy {
        /// Why, safe to show to the caller.
        message: String,
        /// When a retry can succeed (whole seconds, at least 1).
        retry_after: std::time::Duration,
    },
    /// The model is not ready or the worker has stopped.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The deadline passed before the work was done.
    #[error("deadline exceeded")]
    Timeout,
    /// No model (or file) of that name can be served.
    #[error("not found: {0}")]
    NotFound(String),
    /// The tokenizer rejected the input or failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// Loading a model failed (missing or corrupt file, unknown architecture).
    #[error("model load failed: {0}")]
    Load(String),
    /// Inference failed inside the backend.
    #[error("backend error: {0}")]
    Backend(String),
    /// Any other internal fault (a panic caught in a worker, a broken invariant).
    #[error("internal error: {0}")]
    Internal(String),
}

impl EmbedError {
    /// The transport-neutral kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::Empty => ErrorKind::Empty,
            Self::Unauthorized => ErrorKind::Unauthorized,
            Self::Overloaded(_) | Self::Busy { .. } => ErrorKind::Overloaded,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Timeout => ErrorKind::Timeout,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Tokenizer(_) => ErrorKind::Validation,
            Self::Load(_) => ErrorKind::Unavailable,
            Self::Backend(_) => ErrorKind::Backend,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl EmbedError {
    /// Refused now, retry after `wait` (rounded up to whole seconds, at least 1).
    pub fn busy(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::Busy { message: message.into(), retry_after: std::time::Duration::from_secs(seconds.max(1)) }
    }

    /// When a refused request may be retried: its own estimate, 1 s for a full queue, `None`
    /// for errors a retry does not cure.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Busy { retry_after, .. } => Some(*retry_after),
            Self::Overloaded(_) => Some(std::time::Duration::from_secs(1)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_transport_neutral_classes() {
        assert_eq!(EmbedError::Tokenizer("x".into()).kind(), ErrorKind::Validation);
        assert_eq!(EmbedError::Load("x".into()).kind(), ErrorKind::Unavailable);
        assert_eq!(EmbedError::Backend("x".into()).kind(), ErrorKind::Backend);
        assert_eq!(EmbedError::Timeout.kind(), ErrorKind::Timeout);
        assert_eq!(EmbedError::Overloaded("q".into()).kind(), ErrorKind::Overloaded);
        assert_eq!(EmbedError::NotFound("m".into()).to_string(), "not found: m");
    }

    #[test]
    fn a_busy_refusal_says_when_to_retry_in_whole_seconds() {
        let busy = EmbedError::busy("queue ahead", std::time::Duration::from_millis(2_100));
        assert_eq!(busy.kind(), ErrorKind::Overloaded);
        assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(3)));
        assert_eq!(busy.to_string(), "overloaded: queue ahead; retry in 3 s");
        assert_eq!(
            EmbedError::busy("x", std::time::Duration::ZERO).retry_after(),
            Some(std::time::Duration::from_secs(1))
        );
        assert_eq!(EmbedError::Timeout.retry_after(), None);
    }
}
