//! The rewrap primitive of key rotation: re-seal every row that is not
//! under the primary key, in keyset-paginated batches, online.
//!
//! - Rows are found by `key_id` (NULL or not the primary), never by
//!   decrypting: `id > last ORDER BY id LIMIT n`, never OFFSET, so each
//!   batch costs the same however far the run has got.
//! - Each batch's writes are one transaction. A row is replaced only if
//!   its token is still the one that was read (compare-and-swap in the
//!   UPDATE's WHERE), so a concurrent `put` is never overwritten; such a
//!   row counts as skipped (the put sealed it under the primary anyway).
//! - Progress (done, skipped, failed with reasons, last id) lets a caller
//!   report and resume: pass `last_id` back as the range start.
//! - Pipelined: the next batch is read and sealed (CPU) while the current
//!   one is written and committed (database), on another connection;
//!   writes stay in order and at most two batches are in memory.
//! - Several workers: give each a disjoint [`IdRange`] from
//!   [`CredentialStore::split_ids`] (any backend, any host), and/or on
//!   PostgreSQL let them share a range with `skip_locked` (each batch is
//!   `SELECT ... FOR UPDATE SKIP LOCKED`, so workers take different rows).

use std::num::NonZeroU32;

mod batch;
mod crypto;
mod swap_sql;

use atom_audit::Action;
use atom_crypto::Keyring;
use atom_crypto::OpenFailure;
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use crate::entity;
use crate::error::CredentialError;
use crate::store::CredentialStore;

/// Rows per batch unless set otherwise.
pub const DEFAULT_BATCH_SIZE: NonZeroU32 = NonZeroU32::new(1000).unwrap();
/// At most this many failures are kept with their reasons in a
/// [`RewrapProgress`]; all are counted.
pub const MAX_REPORTED_FAILURES: usize = 1000;

/// A range of row ids: `after < id <= up_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdRange {
    /// Rows with ids above this (exclusive). To resume, pass the last
    /// progress's `last_id`.
    pub after: i64,
    /// Rows with ids up to this (inclusive); `None` is unbounded.
    pub up_to: Option<i64>,
}

impl IdRange {
    /// Every row.
    pub const ALL: IdRange = IdRange {
        after: i64::MIN,
        up_to: None,
    };

    /// `after < id <= up_to`.
    pub fn new(after: i64, up_to: Option<i64>) -> IdRange {
        IdRange { after, up_to }
    }

    /// The rest of this range after `last_id` (to resume).
    pub fn resume_after(self, last_id: i64) -> IdRange {
        IdRange {
            after: last_id.max(self.after),
            ..self
        }
    }
}

impl Default for IdRange {
    fn default() -> IdRange {
        IdRange::ALL
    }
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.after, self.up_to) {
            (i64::MIN, None) => f.write_str("all ids"),
            (after, None) => write!(f, "ids > {after}"),
            (i64::MIN, Some(up_to)) => write!(f, "ids <= {up_to}"),
            (after, Some(up_to)) => write!(f, "ids {after} < id <= {up_to}"),
        }
    }
}

/// How to rewrap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapOptions {
    /// Rows per batch (and per transaction).
    pub batch_size: NonZeroU32,
    /// Seal plaintext rows (from the no-key development mode) too; when
    /// off they are reported as failed with reason `not_sealed`.
    pub seal_plaintext: bool,
    /// Read and re-seal in memory, write nothing: proves every row opens.
    pub dry_run: bool,
    /// Which rows.
    pub range: IdRange,
    /// On PostgreSQL, lock each batch with `FOR UPDATE SKIP LOCKED` so that
    /// workers sharing a range take different rows. Ignored elsewhere.
    pub skip_locked: bool,
}

impl Default for RewrapOptions {
    fn default() -> RewrapOptions {
        RewrapOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            seal_plaintext: false,
            dry_run: false,
            range: IdRange::ALL,
            skip_locked: false,
        }
    }
}

impl RewrapOptions {
    /// The defaults: batches of [`DEFAULT_BATCH_SIZE`], every row, writes.
    pub fn new() -> RewrapOptions {
        RewrapOptions::default()
    }

    /// Rows per batch.
    pub fn batch_size(mut self, n: NonZeroU32) -> RewrapOptions {
        self.batch_size = n;
        self
    }

    /// Also seal plaintext rows.
    pub fn seal_plaintext(mut self, on: bool) -> RewrapOptions {
        self.seal_plaintext = on;
        self
    }

    /// Write nothing.
    pub fn dry_run(mut self, on: bool) -> RewrapOptions {
        self.dry_run = on;
        self
    }

    /// Only rows in `range`.
    pub fn range(mut self, range: IdRange) -> RewrapOptions {
        self.range = range;
        self
    }

    /// Share rows between workers with `SKIP LOCKED` (PostgreSQL).
    pub fn skip_locked(mut self, on: bool) -> RewrapOptions {
        self.skip_locked = on;
        self
    }
}

/// A row that could not be rewrapped, and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapFailure {
    /// The row's id.
    pub id: i64,
    /// Its user id.
    pub user: String,
    /// Its provider.
    pub provider: String,
    /// The class of failure, as audited.
    pub reason: OpenFailure,
    /// What went wrong, for the operator.
    pub message: String,
}

/// Where a rewrap run is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapProgress {
    /// Rows now sealed under the primary key (in a dry run: rows that
    /// would be).
    pub done: u64,
    /// Rows changed by someone else between read and write (left as they
    /// are: a concurrent put already sealed them under the primary key).
    pub skipped: u64,
    /// Rows that could not be rewrapped.
    pub failed: u64,
    /// The first [`MAX_REPORTED_FAILURES`] failures with their reasons.
    pub failures: Vec<RewrapFailure>,
    /// The id of the last row looked at; resume with
    /// [`IdRange::resume_after`].
    pub last_id: Option<i64>,
    /// Batches processed.
    pub batches: u64,
    /// The range is exhausted.
    pub finished: bool,
}

impl RewrapProgress {
    fn absorb(&mut self, batch: batch::BatchOutcome) {
        self.done += batch.done;
        self.skipped += batch.skipped;
        self.failed += batch.failures.len() as u64;
        let room = MAX_REPORTED_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(batch.failures.into_iter().take(room));
        if batch.last_id.is_some() {
            self.last_id = batch.last_id;
        }
        self.batches += 1;
    }
}

/// What rotation events call the credential table.
const SCOPE: &str = "credentials";

impl CredentialStore {
    /// Rewraps every row of `options.range` not under the primary key,
    /// batch by batch, calling `on_batch` after each one. Audited as
    /// `key_rotation_started`, one `key_rotation_progressed` per batch (in
    /// the batch's transaction), `decryption_failed` per failed row and
    /// `key_rotation_finished`; a dry run records nothing.
    ///
    /// An error (database, audit) stops the run; batches already committed
    /// stay done, and the last progress seen by `on_batch` says where to
    /// resume.
    pub async fn rewrap(
        &self,
        options: &RewrapOptions,
        mut on_batch: impl FnMut(&RewrapProgress) + Send,
    ) -> Result<RewrapProgress, CredentialError> {
        let keyring = self.keyring_for("rewrap")?;
        let scope = match options.range {
            IdRange::ALL => SCOPE.to_owned(),
            range => format!("{SCOPE} ({range})"),
        };
        let to = keyring.primary_id();
        // The count for the start event (a scan of the range) runs while
        // the first batch is read and sealed; both come before any write.
        let first = self.prepare_batch(&keyring, options.range.after, options);
        let mut prepared = if options.dry_run {
            first.await?
        } else {
            let (total, first) = tokio::join!(self.pending(&keyring, options.range), first);
            self.audit
                .record(Action::KeyRotationStarted {
                    scope: scope.clone(),
                    to,
                    total: Some(total?),
                })
                .await?;
            first?
        };
        let mut progress = RewrapProgress::default();
        loop {
            // Pipelined: while batch N is written and committed (database
            // work), batch N+1 is read and sealed (CPU work) on another
            // connection. Its rows lie past N's last id, so the two never
            // share a row; compare-and-swap still guards every write, and
            // progress (hence the resume point) only moves when N commits.
            // At most two batches are in memory.
            let next_after = match (prepared.more, prepared.last_id) {
                (true, Some(last)) => Some(last),
                _ => None,
            };
            let write = self.write_batch(&keyring, prepared, options, &scope, progress.done);
            let (written, next) = match next_after {
                Some(after) => {
                    let (written, next) =
                        tokio::join!(write, self.prepare_batch(&keyring, after, options));
                    (written, Some(next))
                }
                None => (write.await, None),
            };
            let outcome = written?;
            let more = outcome.more;
            progress.absorb(outcome);
            progress.finished = !more;
            on_batch(&progress);
            match next {
                Some(next) => prepared = next?,
                None => break,
            }
        }
        if !options.dry_run {
            self.audit
                .record(Action::KeyRotationFinished {
                    scope,
                    to,
                    rewrapped: progress.done,
                    failed: progress.failed,
                })
                .await?;
        }
        Ok(progress)
    }

    /// Rewraps one batch: the first `options.batch_size` rows after `after`
    /// (within `options.range`) not under the primary key. For callers that
    /// drive their own loop (e.g. with a pause between batches); the
    /// returned progress covers this batch only and `finished` says the
    /// range is exhausted.
    pub async fn rewrap_batch(
        &self,
        after: i64,
        options: &RewrapOptions,
    ) -> Result<RewrapProgress, CredentialError> {
        let keyring = self.keyring_for("rewrap")?;
        let prepared = self.prepare_batch(&keyring, after, options).await?;
        let outcome = self
            .write_batch(&keyring, prepared, options, SCOPE, 0)
            .await?;
        let mut progress = RewrapProgress {
            finished: !outcome.more,
            ..RewrapProgress::default()
        };
        progress.absorb(outcome);
        Ok(progress)
    }

    /// Splits the ids of rows that need rewrapping into `workers` disjoint
    /// ranges of about equal width, for parallel workers (on one host or
    /// several). The last range is open-ended. Empty when nothing needs
    /// rewrapping.
    pub async fn split_ids(&self, workers: NonZeroU32) -> Result<Vec<IdRange>, CredentialError> {
        let keyring = self.keyring_for("splitting the rewrap work")?;
        let bounds: Option<(Option<i64>, Option<i64>)> = entity::Entity::find()
            .select_only()
            .column_as(entity::Column::Id.min(), "lo")
            .column_as(entity::Column::Id.max(), "hi")
            .filter(not_under(&keyring, self.envelope))
            .into_tuple()
            .one(&self.db)
            .await?;
        let Some((Some(lo), Some(hi))) = bounds else {
            return Ok(Vec::new());
        };
        let workers = i128::from(workers.get());
        let (lo, hi) = (i128::from(lo) - 1, i128::from(hi));
        let width = ((hi - lo) + workers - 1) / workers;
        let mut ranges = Vec::new();
        let mut start = lo;
        while start < hi {
            let end = (start + width).min(hi);
            // Values lie in [lo - 1, hi]; only lo - 1 can leave i64 (an id of
            // i64::MIN), and saturating keeps that range's meaning.
            let to_i64 =
                |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
            let up_to = if end >= hi { None } else { Some(to_i64(end)) };
            ranges.push(IdRange::new(to_i64(start), up_to));
            start = end;
        }
        Ok(ranges)
    }

    pub(crate) fn keyring_for(&self, what: &str) -> Result<Keyring, CredentialError> {
        self.protection
            .keyring()
            .cloned()
            .ok_or_else(|| CredentialError::KeyRequired {
                what: what.to_owned(),
            })
    }

    /// Rows of `range` not under the primary key.
    async fn pending(&self, keyring: &Keyring, range: IdRange) -> Result<u64, CredentialError> {
        let mut query = entity::Entity::find()
            .filter(entity::Column::Id.gt(range.after))
            .filter(not_under(keyring, self.envelope));
        if let Some(up_to) = range.up_to {
            query = query.filter(entity::Column::Id.lte(up_to));
        }
        Ok(query.count(&self.db).await?)
    }
}

/// The rows a rewrap processes. Enveloped rows never: they hang off their
/// data key, which a master rotation rewraps instead. Of the others, with
/// `envelope` every one (to be upgraded), otherwise
/// `key_id IS NULL OR key_id <> primary`.
pub(crate) fn not_under(keyring: &Keyring, envelope: bool) -> Condition {
    let not_enveloped = Condition::all().add(entity::Column::DataKeyId.is_null());
    if envelope {
        return not_enveloped;
    }
    not_enveloped.add(
        Condition::any()
            .add(entity::Column::KeyId.is_null())
            .add(entity::Column::KeyId.ne(keyring.primary_id().to_string())),
    )
}
