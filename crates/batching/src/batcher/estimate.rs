//! Admission: how fast each lane's model calls go (tokens per second, a moving average), and
//! whether work queued behind what is there now could finish before its deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aki_core::{EmbedError, Lane};

/// Weight of the newest call in the moving average.
const NEWEST: f64 = 0.2;

/// Measured tokens per second of each lane's model calls; unmeasured until a call finishes.
#[derive(Default)]
pub(super) struct Throughput {
    /// `f64` bits per lane; 0 is unmeasured.
    rates: [AtomicU64; 2],
}

impl Throughput {
    /// A call of `tokens` from `lane` took `took`.
    pub(super) fn record(&self, lane: Lane, tokens: usize, took: Duration) {
        if tokens == 0 || took.is_zero() {
            return;
        }
        let measured = tokens as f64 / took.as_secs_f64();
        let slot = &self.rates[lane.index()];
        let old = f64::from_bits(slot.load(Ordering::Relaxed));
        let new = if old > 0.0 { old + NEWEST * (measured - old) } else { measured };
        slot.store(new.to_bits(), Ordering::Relaxed);
    }

    /// Tokens per second of `lane`'s calls, once measured.
    pub(super) fn rate(&self, lane: Lane) -> Option<f64> {
        Some(f64::from_bits(self.rates[lane.index()].load(Ordering::Relaxed))).filter(|r| *r > 0.0)
    }

    /// How long work of `own` tokens entering `lane` would take to finish, with `queued`
    /// tokens per lane ahead of it: the interactive queue is served first, so bulk waits for it
    /// too, and bulk may get no more than its share (`bulk_share`, 0 to 1) of the model while
    /// queries keep coming. A lane not measured yet goes at the other's rate; with neither
    /// measured, work counts as instant.
    pub(super) fn finish_in(&self, lane: Lane, own: usize, queued: [usize; 2], bulk_share: f64) -> Duration {
        let other = |lane: Lane| if lane == Lane::Bulk { Lane::Interactive } else { Lane::Bulk };
        let at = |lane: Lane, tokens: usize| {
            self.rate(lane).or_else(|| self.rate(other(lane))).map_or(0.0, |rate| tokens as f64 / rate)
        };
        let seconds = match lane {
            Lane::Interactive => at(Lane::Interactive, queued[0] + own),
            Lane::Bulk => at(Lane::Interactive, queued[0]) + at(Lane::Bulk, queued[1] + own) / bulk_share.max(0.1),
        };
        Duration::from_secs_f64(seconds)
    }
}

/// Refuses work that would finish after `deadline`, saying when a retry would fit: once the
/// excess ahead of it has been served.
pub(super) fn admit(
    finish_in: Duration,
    now: Instant,
    deadline: Option<Instant>,
    lane: Lane,
) -> Result<(), EmbedError> {
    let Some(deadline) = deadline else { return Ok(()) };
    let allowed = deadline.saturating_duration_since(now);
    if finish_in <= allowed {
        return Ok(());
    }
    Err(EmbedError::busy(
        format!(
            "the {} queue would take about {:.1} s to reach this request's end, past its deadline in {:.1} s",
            lane.as_str(),
            finish_in.as_secs_f64(),
            allowed.as_secs_f64()
        ),
        finish_in - allowed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_a_moving_average_per_lane() {
        let throughput = Throughput::default();
        assert_eq!(throughput.rate(Lane::Bulk), None);
        throughput.record(Lane::Bulk, 1000, Duration::from_secs(1));
        throughput.record(Lane::Bulk, 2000, Duration::from_secs(1));
        assert_eq!(throughput.rate(Lane::Bulk), Some(1200.0));
        assert_eq!(throughput.rate(Lane::Interactive), None);
    }

    #[test]
    fn bulk_waits_for_the_interactive_queue_too() {
        let throughput = Throughput::default();
        throughput.record(Lane::Interactive, 100, Duration::from_secs(1));
        throughput.record(Lane::Bulk, 1000, Duration::from_secs(1));
        // 2 s of queries ahead, then 2 s of bulk work at half the model: 6 s.
        assert_eq!(throughput.finish_in(Lane::Bulk, 500, [200, 1500], 0.5), Duration::from_secs(6));
        assert_eq!(throughput.finish_in(Lane::Interactive, 100, [200, 1500], 0.5), Duration::from_secs(3));
        // An unmeasured lane goes at the other's rate.
        let fresh = Throughput::default();
        assert_eq!(fresh.finish_in(Lane::Bulk, 100, [0, 0], 1.0), Duration::ZERO);
        fresh.record(Lane::Bulk, 100, Duration::from_secs(1));
        assert_eq!(fresh.finish_in(Lane::Interactive, 100, [100, 0], 1.0), Duration::from_secs(2));
    }

    #[test]
    fn work_that_cannot_meet_its_deadline_is_refused_with_when_to_retry() {
        let now = Instant::now();
        assert!(admit(Duration::from_secs(5), now, Some(now + Duration::from_secs(5)), Lane::Bulk).is_ok());
        assert!(admit(Duration::from_secs(500), now, None, Lane::Bulk).is_ok());
        let refused = admit(Duration::from_millis(7_500), now, Some(now + Duration::from_secs(5)), Lane::Bulk)
            .expect_err("too late");
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(3)));
        assert!(refused.to_string().contains("bulk queue"), "{refused}");
    }
}
