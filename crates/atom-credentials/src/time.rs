//! Timestamps as the tables store them: UTC without a zone, to the
//! microsecond (the precision of every backend's column and of
//! SQLAlchemy's strings, so that a value reads back equal).

use chrono::{DateTime, NaiveDateTime, SubsecRound as _, Utc};

/// `at` as stored.
pub(crate) fn db_now(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc().trunc_subsecs(6)
}

/// A stored timestamp as UTC.
pub(crate) fn from_db(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}
