//! `Limits`: the `[limits]` configuration section, and the input check the service runs before
//! any work.

use std::time::Duration;

use aki_core::{EmbedError, Result};
use serde::{Deserialize, Serialize};

/// Limits that protect the process from oversized or slow requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body in bytes (413 beyond); enforced by the adapters as they read it.
    pub body_limit_bytes: usize,
    /// Most inputs in one request (422 beyond).
    pub max_inputs: usize,
    /// Most characters in one input (422 beyond), before tokenization.
    pub max_input_chars: usize,
    /// Most characters in all the inputs of one request together (422 beyond), before
    /// tokenization: the tokenizer reads a whole text before it truncates.
    pub max_request_chars: usize,
    /// Requests the service works on at once, across both protocols; one more is refused at
    /// once as overloaded (429, RESOURCE_EXHAUSTED) instead of queueing into a latency collapse.
    pub max_concurrent_requests: usize,
    /// gRPC: HTTP/2 streams (calls) one connection may have open at once, and calls it may have
    /// running; one client cannot take every place of `max_concurrent_requests`.
    pub max_streams_per_connection: u32,
    /// Time a request may take, in milliseconds; queued work past it is dropped.
    pub request_timeout_ms: u64,
    /// Connections a server holds at once (lowered at start-up to fit the open-file limit);
    /// beyond it the longest-idle connection is closed to make room, and a new connection is
    /// refused (503) only when every held one has a request in flight.
    pub max_connections: usize,
    /// `aki-rest`: a request's headers must arrive within this many seconds of the connection
    /// opening or of the previous answer (so idle keep-alive connections close after it too).
    pub header_timeout_secs: u64,
    /// `aki-rest`: a request's body must arrive within this many seconds of its headers (408
    /// beyond, and the connection closes).
    pub body_timeout_secs: u64,
    /// `aki-grpc`: seconds between HTTP/2 keep-alive pings on a connection; one unanswered for
    /// as long again closes it.
    pub keepalive_secs: u64,
    /// `aki-grpc`: a stream that sends no message for this many seconds is ended
    /// (DEADLINE_EXCEEDED).
    pub stream_idle_secs: u64,
    /// On SIGINT/SIGTERM, how long the server keeps accepting work after it started answering
    /// readiness probes with "not ready", in seconds (read by the server lifecycle): the time a
    /// load balancer takes to stop sending work. 0 stops accepting at once.
    pub shutdown_delay_secs: u64,
    /// Then, how long in-flight requests and queued work may take to finish, in seconds (read by
    /// the server lifecycle).
    pub shutdown_timeout_secs: u64,
    /// Embed inputs longer than the model's maximum in overlapping windows pooled into one
    /// vector, for requests that do not say (`long_inputs`); off: they are cut (or refused
    /// without truncation), as TEI does.
    pub window_long_inputs: bool,
    /// Tokens each window shares with the one before, for requests that do not say.
    pub window_overlap_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit_bytes: 2 * 1024 * 1024,
            max_inputs: 2048,
            max_input_chars: 100_000,
            max_request_chars: 1_000_000,
            max_concurrent_requests: 512,
            max_streams_per_connection: 128,
            request_timeout_ms: 30_000,
            max_connections: 10_000,
            header_timeout_secs: 15,
            body_timeout_secs: 60,
            keepalive_secs: 30,
            stream_idle_secs: 60,
            shutdown_delay_secs: 0,
            shutdown_timeout_secs: 30,
            window_long_inputs: false,
            window_overlap_tokens: 32,
        }
    }
}

impl Limits {
    /// [`request_timeout_ms`](Self::request_timeout_ms) as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks the number of inputs, the length of the longest one and of all of them together
    /// (in characters).
    ///
    /// # Errors
    /// [`EmbedError::Empty`] for no input at all, [`EmbedError::Validation`] naming the limit
    /// exceeded.
    pub fn check(&self, count: usize, longest_chars: usize, total_chars: usize) -> Result<()> {
        if count == 0 {
            return Err(EmbedError::Empty);
        }
        if count > self.max_inputs {
            return Err(EmbedError::Validation(format!("{count} inputs, more than the limit of {}", self.max_inputs)));
        }
        if longest_chars > self.max_input_chars {
            return Err(EmbedError::Validation(format!(
                "an input has {longest_chars} characters, more than the limit of {}",
                self.max_input_chars
            )));
        }
        if total_chars > self.max_request_chars {
            return Err(EmbedError::Validation(format!(
                "the inputs have {total_chars} characters together, more than the limit of {} per request",
                self.max_request_chars
            )));
        }
        Ok(())
    }

    /// [`check`](Self::check) for texts.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub fn check_texts(&self, texts: &[String]) -> Result<()> {
        let lengths = texts.iter().map(|t| t.chars().count());
        let (longest, total) = lengths.fold((0, 0), |(longest, total), n| (longest.max(n), total + n));
        self.check(texts.len(), longest, total)
    }

    /// The keys that must not be zero, with their values, for the configuration check.
    pub fn nonzero_keys(&self) -> [(&'static str, u64); 12] {
        [
            ("limits.body_limit_bytes", self.body_limit_bytes as u64),
            ("limits.max_inputs", self.max_inputs as u64),
            ("limits.max_input_chars", self.max_input_chars as u64),
            ("limits.max_request_chars", self.max_request_chars as u64),
            ("limits.max_concurrent_requests", self.max_concurrent_requests as u64),
            ("limits.max_streams_per_connection", u64::from(self.max_streams_per_connection)),
            ("limits.request_timeout_ms", self.request_timeout_ms),
            ("limits.max_connections", self.max_connections as u64),
            ("limits.header_timeout_secs", self.header_timeout_secs),
            ("limits.body_timeout_secs", self.body_timeout_secs),
            ("limits.keepalive_secs", self.keepalive_secs),
            ("limits.stream_idle_secs", self.stream_idle_secs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_too_many_and_too_long_are_refused() {
        let limits = Limits { max_inputs: 2, max_input_chars: 3, max_request_chars: 5, ..Limits::default() };
        assert_eq!(limits.check_texts(&[]), Err(EmbedError::Empty));
        assert!(limits.check_texts(&["a".into(), "b".into()]).is_ok());
        let many = limits.check_texts(&["a".into(), "b".into(), "c".into()]).expect_err("too many");
        assert!(many.to_string().contains("3 inputs"), "{many}");
        let long = limits.check_texts(&["héllo".into()]).expect_err("too long");
        assert!(long.to_string().contains("5 characters"), "{long}");
        let together = limits.check_texts(&["abc".into(), "déf".into()]).expect_err("too much together");
        assert!(together.to_string().contains("6 characters together"), "{together}");
    }
}
