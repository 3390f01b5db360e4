//! Rotating the master key in O(users): rewrap every data key not wrapped
//! under the primary key, in keyset batches over `id`, each
//! batch one transaction of compare-and-swap updates. The credentials
//! sealed under the data keys are not touched.

use atom_audit::{Action, Outcome};
use atom_crypto::{KeyId, Keyring, OpenFailure};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};

use super::migration::KEYS_TABLE;
use super::{KeyStore, parse_id};
use crate::audit::StoreAudit;
use crate::error::CredentialError;
use crate::sql::statement;

/// A data key that could not be rewrapped or opened (never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataKeyFailure {
    /// The user it belongs to.
    pub user: String,
    /// The data key's id as stored.
    pub key_id: String,
    /// The master key it names as its wrapper.
    pub kek_id: String,
    /// The class of failure.
    pub reason: OpenFailure,
    /// What went wrong, for the operator.
    pub message: String,
}

/// Where a data key rewrap (or check) is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataKeyProgress {
    /// Keys now wrapped under the primary key (checked, for a check).
    pub done: u64,
    /// Keys changed by someone else between read and write.
    pub skipped: u64,
    /// Keys that do not open.
    pub failed: u64,
    /// The first failures with their reasons.
    pub failures: Vec<DataKeyFailure>,
    /// Batches processed.
    pub batches: u64,
}

/// A batch read and rewrapped in memory, not yet written.
struct Prepared {
    swaps: Vec<(Row, String)>,
    failures: Vec<DataKeyFailure>,
    /// The id of the last key read (where the next batch starts).
    last: Option<i64>,
    /// The batch was full, so there may be more.
    full: bool,
}

/// A key as read for rewrapping.
struct Row {
    id: i64,
    user: String,
    key_id: String,
    kek_id: String,
    wrapped: String,
}

/// What rotation events call the key store.
pub(crate) const DATA_KEYS_SCOPE: &str = "data keys";

/// Rows bound per statement on SQLite and MySQL (3 parameters each).
const ROWS_PER_STATEMENT: usize = 500;

impl KeyStore {
    /// The next batch of keys after `after` (exclusive), in key order;
    /// with `only_stale`, only those not wrapped under `primary`.
    async fn read_batch(
        &self,
        after: Option<i64>,
        up_to: Option<i64>,
        primary: Option<KeyId>,
        limit: u32,
    ) -> Result<Vec<Row>, CredentialError> {
        let backend = self.db.get_database_backend();
        let mut sql = format!("SELECT id, user_id, key_id, kek_id, wrapped_key FROM {KEYS_TABLE}");
        let mut values: Vec<Value> = Vec::new();
        let mut clauses = Vec::new();
        if let Some(primary) = primary {
            clauses.push("kek_id <> ?");
            values.push(primary.to_string().into());
        }
        if let Some(after) = after {
            clauses.push("id > ?");
            values.push(after.into());
        }
        if let Some(up_to) = up_to {
            clauses.push("id <= ?");
            values.push(up_to.into());
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
        let rows = self
            .db
            .query_all_raw(statement(backend, &sql, values))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Row {
                    id: r.try_get("", "id")?,
                    user: r.try_get("", "user_id")?,
                    key_id: r.try_get("", "key_id")?,
                    kek_id: r.try_get("", "kek_id")?,
                    wrapped: r.try_get("", "wrapped_key")?,
                })
            })
            .collect()
    }

    /// Reads the next batch of keys not under the primary key after
    /// `after`, and rewraps them in memory (on rayon's pool).
    async fn prepare(
        &self,
        keyring: &Keyring,
        after: Option<i64>,
        up_to: Option<i64>,
        batch_size: u32,
    ) -> Result<Prepared, CredentialError> {
        let rows = self
            .read_batch(after, up_to, Some(keyring.primary_id()), batch_size)
            .await?;
        let last = rows.last().map(|r| r.id);
        let full = rows.len() == batch_size as usize;
        let worker = keyring.clone();
        let (rows, verdicts) = tokio::task::spawn_blocking(move || {
            let verdicts = rewrap_rows(&worker, &rows, true);
            (rows, verdicts)
        })
        .await
        .map_err(cancelled)?;
        let mut prepared = Prepared {
            swaps: Vec::with_capacity(rows.len()),
            failures: Vec::new(),
            last,
            full,
        };
        for (row, verdict) in rows.into_iter().zip(verdicts) {
            match verdict {
                Ok(Some(new)) => prepared.swaps.push((row, new)),
                Ok(None) => {}
                Err(failure) => prepared.failures.push(failure),
            }
        }
        Ok(prepared)
    }

    /// Rewraps every data key not under `keyring`'s primary key, with
    /// `workers` concurrent workers over disjoint id ranges (reading and
    /// rewrapping in parallel; on SQLite the writes still take turns).
    /// With `dry_run`, only opens them. Keys that do not open are reported
    /// and left as they are.
    pub(crate) async fn rewrap(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        batch_size: u32,
        workers: u32,
        dry_run: bool,
    ) -> Result<DataKeyProgress, CredentialError> {
        let ranges = self.split(keyring.primary_id(), workers).await?;
        let runs = ranges.into_iter().map(|(after, up_to)| {
            self.rewrap_range(keyring, audit, batch_size, after, up_to, dry_run)
        });
        let mut total = DataKeyProgress::default();
        for result in futures_util::future::join_all(runs).await {
            let progress = result?;
            total.done += progress.done;
            total.skipped += progress.skipped;
            total.batches += progress.batches;
            total.failed += progress.failed;
            let room = crate::MAX_REPORTED_FAILURES.saturating_sub(total.failures.len());
            total
                .failures
                .extend(progress.failures.into_iter().take(room));
        }
        Ok(total)
    }

    /// Up to `workers` disjoint id ranges `(after, up_to)` covering every
    /// key not under `primary`; the last is open-ended, so a key made
    /// meanwhile is covered too (it is made under the primary anyway).
    async fn split(
        &self,
        primary: KeyId,
        workers: u32,
    ) -> Result<Vec<(Option<i64>, Option<i64>)>, CredentialError> {
        let row = self
            .db
            .query_one_raw(statement(
                self.db.get_database_backend(),
                &format!("SELECT MIN(id) AS lo, MAX(id) AS hi FROM {KEYS_TABLE} WHERE kek_id <> ?"),
                vec![primary.to_string().into()],
            ))
            .await?;
        let bounds = match row {
            Some(row) => (
                row.try_get::<Option<i64>>("", "lo")?,
                row.try_get::<Option<i64>>("", "hi")?,
            ),
            None => (None, None),
        };
        let (Some(lo), Some(hi)) = bounds else {
            return Ok(vec![(None, None)]);
        };
        let workers = i64::from(workers.max(1));
        let width = ((hi - lo) / workers).max(1);
        let mut ranges = Vec::new();
        let mut after = None;
        for i in 1..=workers {
            let end = lo + width * i - 1;
            if i == workers || end >= hi {
                ranges.push((after, None));
                break;
            }
            ranges.push((after, Some(end)));
            after = Some(end);
        }
        Ok(ranges)
    }

    /// Rewraps the keys of one id range. Pipelined as the row rewrap is:
    /// while batch N is written and committed, batch N+1 (keys after N's
    /// last) is read and rewrapped.
    async fn rewrap_range(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        batch_size: u32,
        after: Option<i64>,
        up_to: Option<i64>,
        dry_run: bool,
    ) -> Result<DataKeyProgress, CredentialError> {
        let primary = keyring.primary_id();
        let mut progress = DataKeyProgress::default();
        let mut prepared = self.prepare(keyring, after, up_to, batch_size).await?;
        loop {
            let Prepared {
                swaps,
                failures,
                last,
                full,
            } = prepared;
            for failure in failures {
                push_failure(&mut progress, failure);
            }
            let attempted = swaps.len() as u64;
            let done_before = progress.done;
            let write = async {
                if dry_run || swaps.is_empty() {
                    Ok(attempted)
                } else {
                    self.write(primary, swaps, audit, done_before).await
                }
            };
            let next_after = if full { last } else { None };
            let (written, next) = match next_after {
                Some(after) => {
                    let (written, next) =
                        tokio::join!(write, self.prepare(keyring, Some(after), up_to, batch_size));
                    (written, Some(next))
                }
                None => (write.await, None),
            };
            let done = written?;
            progress.done += done;
            progress.skipped += attempted - done;
            progress.batches += 1;
            match next {
                Some(next) => prepared = next?,
                None => break,
            }
        }
        Ok(progress)
    }

    /// Opens every data key with `keyring` (nothing is written): how many
    /// open, and the ones that do not.
    pub(crate) async fn check(
        &self,
        keyring: &Keyring,
        batch_size: u32,
    ) -> Result<DataKeyProgress, CredentialError> {
        let mut progress = DataKeyProgress::default();
        let mut after: Option<i64> = None;
        loop {
            let rows = self.read_batch(after, None, None, batch_size).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            let full = rows.len() == batch_size as usize;
            let worker = keyring.clone();
            let verdicts = tokio::task::spawn_blocking(move || rewrap_rows(&worker, &rows, false))
                .await
                .map_err(cancelled)?;
            for verdict in verdicts {
                match verdict {
                    Ok(_) => progress.done += 1,
                    Err(failure) => push_failure(&mut progress, failure),
                }
            }
            progress.batches += 1;
            if !full {
                break;
            }
        }
        Ok(progress)
    }

    /// Writes one batch of rewrapped keys in one transaction, each only if
    /// it is still wrapped under the master key it was read under. Returns
    /// how many changed.
    async fn write(
        &self,
        primary: KeyId,
        swaps: Vec<(Row, String)>,
        audit: &StoreAudit,
        done_before: u64,
    ) -> Result<u64, CredentialError> {
        let _turn = match self.backend {
            crate::url::Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            _ => None,
        };
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        let kek = primary.to_string();
        let mut done = 0;
        for statement in swap_statements(backend, &kek, swaps) {
            done += txn.execute_raw(statement).await?.rows_affected();
        }
        let progressed = Action::KeyRotationProgressed {
            scope: DATA_KEYS_SCOPE.to_owned(),
            to: primary,
            done: done_before + done,
            total: None,
        };
        if let Err(e) = audit
            .record_on(&txn, self.shared, progressed.clone(), None)
            .await
        {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(error = %CredentialError::from(rollback), "rollback after audit failure");
            }
            return Err(e);
        }
        if let Err(e) = txn.commit().await {
            // An event appended in the transaction went with it.
            let in_transaction = self.shared && audit.ledger().is_some();
            if !in_transaction
                && let Err(audit_error) = audit.record_outcome(progressed, Outcome::Failure).await
            {
                tracing::error!(error = %audit_error, "could not record that a commit failed");
            }
            return Err(e.into());
        }
        if let Some(ledger) = audit.ledger() {
            // Its event, pending on a server database, is chained soon.
            ledger.nudge();
        }
        Ok(done)
    }
}

fn cancelled(e: tokio::task::JoinError) -> CredentialError {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(_) => CredentialError::Database {
            message: "the data key worker was cancelled (runtime shutting down)".to_owned(),
        },
    }
}

fn push_failure(progress: &mut DataKeyProgress, failure: DataKeyFailure) {
    progress.failed += 1;
    if progress.failures.len() < crate::MAX_REPORTED_FAILURES {
        progress.failures.push(failure);
    }
}

/// Opens each key under `keyring` and, with `rewrap`, wraps it under the
/// primary key (`Some(new wrapped value)`), in order, on rayon's pool.
fn rewrap_rows(
    keyring: &Keyring,
    rows: &[Row],
    rewrap: bool,
) -> Vec<Result<Option<String>, DataKeyFailure>> {
    use rayon::prelude::*;
    rows.par_iter()
        .with_min_len(32)
        .map(|row| {
            let fail = |reason: OpenFailure, message: String| DataKeyFailure {
                user: row.user.clone(),
                key_id: row.key_id.clone(),
                kek_id: row.kek_id.clone(),
                reason,
                message,
            };
            let id = parse_id(&row.key_id, &row.user)
                .map_err(|e| fail(OpenFailure::Other, e.to_string()))?;
            if rewrap {
                return keyring
                    .rewrap_data_key(&row.user, id, &row.wrapped)
                    .map(|w| Some(w.into_string()))
                    .map_err(|e| fail(OpenFailure::of(&e), e.to_string()));
            }
            keyring
                .unwrap_data_key(&row.user, id, &row.wrapped)
                .map(|_| None)
                .map_err(|e| fail(OpenFailure::of(&e), e.to_string()))
        })
        .collect()
}

/// `UPDATE atom_user_keys SET wrapped_key = new, kek_id = primary WHERE
/// id = ? AND kek_id = old kek`, many rows at once. Compare-and-swap on the
/// master key id is enough: a key row's wrapped value changes only with
/// its `kek_id` (a rewrap), ids are never reused, and two rewraps to one
/// primary write equivalent values. Binding the old wrapped value instead
/// (150 bytes a key) made the write a third slower.
fn swap_statements(backend: DbBackend, kek: &str, swaps: Vec<(Row, String)>) -> Vec<Statement> {
    if backend == DbBackend::Postgres {
        let mut ids = Vec::with_capacity(swaps.len());
        let mut olds = Vec::with_capacity(swaps.len());
        let mut news = Vec::with_capacity(swaps.len());
        for (row, new) in swaps {
            ids.push(row.id);
            olds.push(row.kek_id);
            news.push(new);
        }
        return vec![statement(
            backend,
            &format!(
                "UPDATE {KEYS_TABLE} AS t SET wrapped_key = v.new_key, kek_id = ? \
                 FROM unnest(?::bigint[], ?::text[], ?::text[]) AS v(id, old_kek, new_key) \
                 WHERE t.id = v.id AND t.kek_id = v.old_kek"
            ),
            vec![kek.into(), ids.into(), olds.into(), news.into()],
        )];
    }
    let mut statements = Vec::new();
    let mut swaps = swaps.into_iter().peekable();
    while swaps.peek().is_some() {
        let chunk: Vec<(Row, String)> = swaps.by_ref().take(ROWS_PER_STATEMENT).collect();
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3 + 1);
        if backend == DbBackend::MySql {
            let mut union = String::new();
            for (i, (row, new)) in chunk.into_iter().enumerate() {
                union.push_str(if i == 0 {
                    "SELECT ? AS id, ? AS old_kek, ? AS new_key"
                } else {
                    " UNION ALL SELECT ?, ?, ?"
                });
                values.extend([row.id.into(), row.kek_id.into(), new.into()]);
            }
            values.push(kek.into());
            statements.push(statement(
                backend,
                &format!(
                    "UPDATE {KEYS_TABLE} AS t JOIN ({union}) AS v \
                     ON t.id = v.id AND t.kek_id = v.old_kek \
                     SET t.wrapped_key = v.new_key, t.kek_id = ?"
                ),
                values,
            ));
        } else {
            values.push(kek.into());
            let mut list = String::new();
            for (i, (row, new)) in chunk.into_iter().enumerate() {
                if i > 0 {
                    list.push_str(", ");
                }
                list.push_str("(?, ?, ?)");
                values.extend([row.id.into(), row.kek_id.into(), new.into()]);
            }
            statements.push(statement(
                backend,
                &format!(
                    "UPDATE {KEYS_TABLE} SET wrapped_key = v.column3, kek_id = ? \
                     FROM (VALUES {list}) AS v \
                     WHERE {KEYS_TABLE}.id = v.column1 AND {KEYS_TABLE}.kek_id = v.column2"
                ),
                values,
            ));
        }
    }
    statements
}
