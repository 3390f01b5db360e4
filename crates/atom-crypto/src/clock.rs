#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The source of "now" for token timestamps, injected so tests can move time
/// without sleeping.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        // A clock before 1970 is a broken host; read it as the epoch rather
        // than panicking, and let max-age checks treat tokens as new.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that stays where it is set, for tests (the `test-util`
/// feature).
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

#[cfg(feature = "test-util")]
impl FixedClock {
    /// A clock showing `unix` seconds.
    pub fn at(unix: u64) -> FixedClock {
        FixedClock(AtomicU64::new(unix))
    }

    /// Moves the clock to `unix` seconds.
    pub fn set(&self, unix: u64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    /// Moves the clock forward, saturating at `u64::MAX`.
    pub fn advance(&self, secs: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

#[cfg(feature = "test-util")]
impl Clock for FixedClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
