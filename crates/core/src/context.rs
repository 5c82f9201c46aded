//! `RequestContext`: what travels with a request's inference besides its inputs: when its
//! caller stops waiting, which lane it waits in, and whose work it is.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// The queue a request's inference waits in. The scheduler forms each model call from the
/// interactive lane first; bulk keeps a minimum share of model time whenever it has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "lowercase"))]
pub enum Lane {
    /// Latency-critical work: search queries, a few short texts.
    #[default]
    Interactive,
    /// Throughput work: indexing, large requests, long streams.
    Bulk,
}

impl Lane {
    /// Both lanes, interactive first.
    pub const ALL: [Lane; 2] = [Lane::Interactive, Lane::Bulk];

    /// `interactive` or `bulk`, as metrics, headers and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Bulk => "bulk",
        }
    }

    /// 0 for interactive, 1 for bulk: the lane's place in per-lane arrays.
    pub fn index(self) -> usize {
        usize::from(self == Self::Bulk)
    }
}

/// What a request asks for: a lane of its own choosing, or `auto` (the default): the lane its
/// size decides (bulk above the server's `lanes.bulk_above_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "lowercase"))]
pub enum Priority {
    /// By size.
    #[default]
    Auto,
    /// The interactive lane, whatever the size.
    Interactive,
    /// The bulk lane, whatever the size.
    Bulk,
}

impl FromStr for Priority {
    type Err = String;

    /// `auto`, `interactive` or `bulk`, in any case (as a header carries it).
    fn from_str(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "interactive" => Ok(Self::Interactive),
            "bulk" => Ok(Self::Bulk),
            other => Err(format!("priority `{other}` is not one of auto, interactive, bulk")),
        }
    }
}

/// Whose work a request is: the name of the API key it presented and that key's weight in the
/// fair share of each lane. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    /// The key's name (`default` when the server has one key or none).
    pub name: Arc<str>,
    /// Its share of a lane against other tenants with work there, relative to theirs (at
    /// least 1).
    pub weight: u32,
}

impl Tenant {
    /// A tenant named `name` with `weight` (0 counts as 1).
    pub fn new(name: &str, weight: u32) -> Self {
        Self { name: Arc::from(name), weight: weight.max(1) }
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::new("default", 1)
    }
}

/// What travels with a request's inference through every layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    /// Work not started by then is dropped, not computed, and the caller gets
    /// [`EmbedError::Timeout`](crate::EmbedError::Timeout); a batcher refuses work at once that
    /// it estimates cannot finish by then. `None`: the caller waits as long as the work takes
    /// (the application service always sets one).
    pub deadline: Option<Instant>,
    /// The lane the work waits in.
    pub lane: Lane,
    /// Whose work it is.
    pub tenant: Tenant,
    /// The connection or stream the work comes from, when it sends many requests (a gRPC
    /// stream): its requests count as one for fairness within the tenant. `None`: the request
    /// stands alone.
    pub requester: Option<u64>,
}

impl RequestContext {
    /// A context whose work must be done by `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self { deadline: Some(deadline), ..Self::default() }
    }

    /// The same context in `lane`.
    #[must_use]
    pub fn in_lane(self, lane: Lane) -> Self {
        Self { lane, ..self }
    }

    /// The same context for `tenant`.
    #[must_use]
    pub fn for_tenant(self, tenant: Tenant) -> Self {
        Self { tenant, ..self }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| d <= Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_from_headers_in_any_case() {
        assert_eq!("Bulk".parse::<Priority>(), Ok(Priority::Bulk));
        assert_eq!(" interactive ".parse::<Priority>(), Ok(Priority::Interactive));
        assert!("urgent".parse::<Priority>().expect_err("unknown").contains("auto, interactive, bulk"));
    }

    #[test]
    fn lanes_index_per_lane_arrays_and_tenants_weigh_at_least_one() {
        assert_eq!(Lane::ALL.map(Lane::index), [0, 1]);
        assert_eq!(Tenant::new("a", 0).weight, 1);
        assert_eq!(RequestContext::default().tenant.name.as_ref(), "default");
    }
}
