//! How finished requests are reported to metrics: the same outcome classes on every transport.

use std::time::Duration;

use aki_core::{ErrorKind, Lane};

/// How a request ended, as metrics count it: the same classes on every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Ok,
    /// Failed with an error of this kind.
    Failed(ErrorKind),
}

impl Outcome {
    /// `ok`, or the error kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed(kind) => kind.as_str(),
        }
    }
}

/// One finished request, as metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished<'a> {
    /// The route (path pattern or gRPC method) it came on.
    pub route: &'a str,
    /// How it ended.
    pub outcome: Outcome,
    /// From arrival to answer.
    pub elapsed: Duration,
    /// Tokens processed (0 for a failure).
    pub tokens: usize,
    /// The tenant it was for (`default` without named keys, `unknown` when refused before
    /// its key was known).
    pub tenant: &'a str,
    /// The lane it waited in and how long it waited there, when it reached the queue and was
    /// answered.
    pub queued: Option<(Lane, Duration)>,
}

/// Request metrics hook: one call per finished request.
pub trait RequestObserver: Send + Sync + 'static {
    /// A request ended.
    fn finished(&self, request: &Finished<'_>);
}

/// The observer used when none is given.
#[derive(Debug, Default)]
pub struct NoRequestObserver;
impl RequestObserver for NoRequestObserver {
    fn finished(&self, _: &Finished<'_>) {}
}
