//! The source of event timestamps, injected so that tests never sleep.

use chrono::{DateTime, Utc};

/// Gives the time events are stamped with.
///
/// Implemented for atom-crypto's clocks so one injected clock can drive a
/// keyring and an auditor: [`atom_crypto::SystemClock`] reads the system
/// time (full precision), [`atom_crypto::FixedClock`] stays where a test
/// puts it (whole seconds).
pub trait AuditClock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

impl AuditClock for atom_crypto::SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(feature = "test-util")]
impl AuditClock for atom_crypto::FixedClock {
    fn now(&self) -> DateTime<Utc> {
        use atom_crypto::Clock as _;
        let secs = i64::try_from(self.now_unix()).unwrap_or(i64::MAX);
        // Out of chrono's range only for a clock set beyond year 262143;
        // such a test clock reads as the latest representable time.
        DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
