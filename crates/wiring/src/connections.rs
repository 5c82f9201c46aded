//! Open connections, held under `limits.max_connections` and the process's open-file limit: a
//! new connection beyond the limit has the longest-idle one told to close first (it is counted
//! until it has), so the server can always take a new client; only when every connection has a
//! request in flight is the newcomer refused. Also raises the soft `RLIMIT_NOFILE` to the hard
//! limit at start-up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

/// File descriptors kept free for what is not a connection: model files, the listener, logs.
const RESERVED_FILES: u64 = 64;

/// Raises the soft open-file limit to the hard one and logs both; returns the soft limit in
/// force (`None` where it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => {
            tracing::info!(soft_before = soft, soft = raised, hard, "open-file limit");
            Some(raised)
        }
        Err(error) => {
            tracing::warn!(soft, hard, %error, "could not raise the open-file limit");
            Some(soft)
        }
    }
}

/// The connections a server may hold: `configured`, lowered to fit `open_files` with a reserve.
pub fn connection_limit(configured: usize, open_files: Option<u64>) -> usize {
    let fits =
        open_files.map_or(usize::MAX, |n| usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX));
    if fits < configured {
        tracing::warn!(
            configured,
            open_files,
            held = fits,
            "limits.max_connections lowered to fit the open-file limit"
        );
    }
    configured.min(fits).max(1)
}

/// Why a connection was closed by the server's bounds, as metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Refused on arrival: every held connection had a request in flight.
    Refused,
    /// Closed to make room for a new one, being the longest idle.
    Evicted,
    /// Its client did not send a request's headers (or anything) in time.
    HeaderTimeout,
    /// Its client did not send a request's body in time.
    BodyTimeout,
    /// Its client never spoke its protocol (a gRPC connection without the HTTP/2 preface).
    Idle,
}

impl Closed {
    /// `refused`, `evicted`, `header_timeout`, `body_timeout`, `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Evicted => "evicted",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::Idle => "idle",
        }
    }
}

/// What the registry reports to metrics.
pub trait ConnectionObserver: Send + Sync + 'static {
    /// Connections open now.
    fn open(&self, count: usize);
    /// A connection was closed (or refused) by a bound.
    fn closed(&self, why: Closed);
}

struct Entry {
    /// Told to close; counted until it has.
    evicting: bool,
    busy: Arc<AtomicUsize>,
    /// Milliseconds since the registry started when it was last active.
    active_at: Arc<AtomicU64>,
    close: Arc<Notify>,
}

/// The registry of open connections.
pub struct Connections {
    limit: usize,
    epoch: Instant,
    open: Mutex<BTreeMap<u64, Entry>>,
    next: AtomicUsize,
    observer: Arc<dyn ConnectionObserver>,
}

impl Connections {
    /// A registry holding at most `limit` connections.
    pub fn new(limit: usize, observer: Arc<dyn ConnectionObserver>) -> Arc<Self> {
        let open = Mutex::new(BTreeMap::new());
        Arc::new(Self { limit, epoch: Instant::now(), open, next: AtomicUsize::new(0), observer })
    }

    /// The most connections held at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reports a closing by a bound.
    pub fn closed(&self, why: Closed) {
        self.observer.closed(why);
    }

    /// Takes a new connection: at the limit, the longest-idle one is told to close to make
    /// room; `None` when every one has a request in flight (the caller refuses the newcomer).
    pub fn admit(self: &Arc<Self>) -> Option<Connection> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let closing = open.values().filter(|e| e.evicting).count();
        if open.len() - closing >= self.limit {
            let idlest = open
                .iter_mut()
                .filter(|(_, e)| !e.evicting && e.busy.load(Ordering::SeqCst) == 0)
                .min_by_key(|(_, e)| e.active_at.load(Ordering::SeqCst))
                .map(|(_, e)| e);
            let Some(entry) = idlest else {
                drop(open);
                self.observer.closed(Closed::Refused);
                return None;
            };
            entry.evicting = true;
            entry.close.notify_one();
            self.observer.closed(Closed::Evicted);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) as u64;
        let entry = Entry {
            evicting: false,
            busy: Arc::default(),
            active_at: Arc::new(AtomicU64::new(self.now())),
            close: Arc::new(Notify::new()),
        };
        let connection = Connection {
            id,
            busy: Arc::clone(&entry.busy),
            active_at: Arc::clone(&entry.active_at),
            close: Arc::clone(&entry.close),
            registry: Arc::clone(self),
        };
        open.insert(id, entry);
        self.observer.open(open.len());
        Some(connection)
    }
}

impl Connections {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One held connection; dropping it frees its place.
pub struct Connection {
    id: u64,
    busy: Arc<AtomicUsize>,
    active_at: Arc<AtomicU64>,
    close: Arc<Notify>,
    registry: Arc<Connections>,
}

impl Connection {
    /// A request on it has started; it is busy until the token is dropped.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            busy: Arc::clone(&self.busy),
            active_at: Arc::clone(&self.active_at),
            registry: Arc::clone(&self.registry),
        }
    }

    /// It carried bytes now: the longest-idle connection is the one that carried none longest
    /// (for protocols whose requests the registry does not see, gRPC's).
    pub fn touch(&self) {
        self.active_at.store(self.registry.now(), Ordering::Relaxed);
    }

    /// Resolves when the registry wants this connection closed to make room.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }

    /// The same, owning what it waits on (for poll-based I/O wrappers).
    pub fn eviction(&self) -> tokio::sync::futures::OwnedNotified {
        Arc::clone(&self.close).notified_owned()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(&self.id);
        self.registry.observer.open(open.len());
    }
}

/// A request in flight on a connection.
pub struct Busy {
    busy: Arc<AtomicUsize>,
    active_at: Arc<AtomicU64>,
    registry: Arc<Connections>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.active_at.store(self.registry.now(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<&'static str>>);
    impl ConnectionObserver for Seen {
        fn open(&self, _: usize) {}
        fn closed(&self, why: Closed) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(why.as_str());
        }
    }

    #[tokio::test]
    async fn at_the_limit_the_idlest_connection_makes_room_and_busy_ones_stay() {
        let seen = Arc::new(Seen::default());
        let registry = Connections::new(2, Arc::clone(&seen) as Arc<dyn ConnectionObserver>);
        let first = registry.admit().expect("room");
        let second = registry.admit().expect("room");
        let busy = second.busy();
        // Full: the idle first one is told to close, the busy second one is not.
        let third = registry.admit().expect("room made");
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted()).await.expect("first evicted");
        let _working = third.busy();
        // Now both held connections are busy: a fourth is refused.
        assert!(registry.admit().is_none());
        drop(busy);
        assert!(registry.admit().is_some(), "the second is idle again and makes room");
        assert_eq!(*seen.0.lock().expect("lock"), ["evicted", "refused", "evicted"]);
    }

    #[test]
    fn the_limit_fits_the_open_file_limit() {
        assert_eq!(connection_limit(10_000, Some(1024)), 960);
        assert_eq!(connection_limit(100, Some(1024)), 100);
        assert_eq!(connection_limit(100, None), 100);
        assert_eq!(connection_limit(100, Some(10)), 1);
    }
}
