//! Refused requests, counted per source address: the first refusal of a
//! window is audited as it is, the rest of the window as one event with
//! their count, and past a limit the source gets 429 without any work. A
//! flood of bad requests so costs neither disk (one fsync'd record per
//! source and window) nor the latency of other callers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use atom_audit::Action;

/// How refusals are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DenialLimits {
    /// The window refusals are counted in.
    pub window: Duration,
    /// Refusals of one source in one window before it gets 429.
    pub limit: NonZeroU32,
}

impl Default for DenialLimits {
    fn default() -> DenialLimits {
        DenialLimits {
            window: Duration::from_secs(10),
            limit: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The first of its window: audit it.
    Record,
    /// Counted, audited later with the window's count.
    Count,
    /// Over the limit: answer 429, counted.
    Refuse,
}

/// Sources remembered at most; past that, new sources share one count (a
/// flood from many addresses is still counted and limited).
const MAX_SOURCES: usize = 65_536;

struct Window {
    started: Instant,
    /// Refusals in this window, the first included.
    refusals: u64,
}

/// The per-source counts.
pub(crate) struct Denials {
    limits: DenialLimits,
    windows: Mutex<HashMap<Option<IpAddr>, Window>>,
}

impl Denials {
    pub(crate) fn new(limits: DenialLimits) -> Denials {
        Denials {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a refusal from `source`. Also returns the aggregate event of
    /// the source's previous window if it ended with uncounted refusals.
    pub(crate) fn refused(&self, source: Option<IpAddr>) -> (Gate, Option<Action>) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let key = if windows.len() >= MAX_SOURCES && !windows.contains_key(&source) {
            None
        } else {
            source
        };
        let mut ended = None;
        let window = windows.entry(key).or_insert(Window {
            started: now,
            refusals: 0,
        });
        if now.duration_since(window.started) >= self.limits.window {
            ended = self.aggregate(key, window.refusals);
            *window = Window {
                started: now,
                refusals: 0,
            };
        }
        window.refusals += 1;
        let gate = if window.refusals == 1 {
            Gate::Record
        } else if window.refusals > u64::from(self.limits.limit.get()) {
            Gate::Refuse
        } else {
            Gate::Count
        };
        (gate, ended)
    }

    /// The aggregate events of every window that has ended, which are
    /// forgotten; for a periodic sweep and for shutdown (`all`: every
    /// window, ended or not).
    pub(crate) fn sweep(&self, all: bool) -> Vec<Action> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Vec::new();
        windows.retain(|source, w| {
            if all || now.duration_since(w.started) >= self.limits.window {
                events.extend(self.aggregate(*source, w.refusals));
                false
            } else {
                true
            }
        });
        events
    }

    /// The event for a window with `refusals`: the first was audited on
    /// its own, the rest are counted here.
    fn aggregate(&self, source: Option<IpAddr>, refusals: u64) -> Option<Action> {
        (refusals > 1).then(|| Action::AccessDeniedRepeatedly {
            source: source.map_or_else(|| "other sources".to_owned(), |ip| ip.to_string()),
            denials: refusals - 1,
            window_secs: self.limits.window.as_secs(),
        })
    }

    pub(crate) fn window(&self) -> Duration {
        self.limits.window
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_is_recorded_then_counted_then_refused_and_aggregated() {
        let d = Denials::new(DenialLimits {
            window: Duration::from_secs(3600),
            limit: NonZeroU32::new(3).unwrap(),
        });
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let other: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        let gates: Vec<Gate> = (0..5).map(|_| d.refused(ip).0).collect();
        assert_eq!(
            gates,
            [
                Gate::Record,
                Gate::Count,
                Gate::Count,
                Gate::Refuse,
                Gate::Refuse
            ]
        );
        assert_eq!(
            d.refused(other).0,
            Gate::Record,
            "sources are counted apart"
        );
        assert!(d.sweep(false).is_empty(), "the window has not ended");
        let events = d.sweep(true);
        assert_eq!(
            events,
            [Action::AccessDeniedRepeatedly {
                source: "10.0.0.1".into(),
                denials: 4,
                window_secs: 3600
            }]
        );
        assert_eq!(d.refused(ip).0, Gate::Record, "a new window");
    }
}
