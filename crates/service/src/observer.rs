//! How finished requests are reported to metrics: the same outcome classes on every transport.

use std::time::Duration;

use aki_core::ErrorKind;

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

/// Request metrics hook: one call per finished request.
pub trait RequestObserver: Send + Sync + 'static {
    /// A request on `route` ended with `outcome` after `elapsed`, having processed `tokens`.
    fn finished(&self, route: &str, outcome: Outcome, elapsed: Duration, tokens: usize);
}

/// The observer used when none is given.
#[derive(Debug, Default)]
pub struct NoRequestObserver;
impl RequestObserver for NoRequestObserver {
    fn finished(&self, _: &str, _: Outcome, _: Duration, _: usize) {}
}
