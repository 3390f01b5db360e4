//! Rotating the master key in O(users): rewrap every data key not wrapped
//! under the primary key, in keyset batches over `(user_id, key_id)`, each
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

/// A key as read for rewrapping.
struct Row {
    user: String,
    key_id: String,
    kek_id: String,
    wrapped: String,
}

/// What rotation events call the key store.
pub(crate) const DATA_KEYS_SCOPE: &str = "data keys";

/// Rows bound per statement on SQLite and MySQL (4 parameters each).
const ROWS_PER_STATEMENT: usize = 400;

impl KeyStore {
    /// The next batch of keys after `after` (exclusive), in key order;
    /// with `only_stale`, only those not wrapped under `primary`.
    async fn read_batch(
        &self,
        after: Option<&(String, String)>,
        primary: Option<KeyId>,
        limit: u32,
    ) -> Result<Vec<Row>, CredentialError> {
        let backend = self.db.get_database_backend();
        let mut sql = format!("SELECT user_id, key_id, kek_id, wrapped_key FROM {KEYS_TABLE}");
        let mut values: Vec<Value> = Vec::new();
        let mut clauses = Vec::new();
        if let Some(primary) = primary {
            clauses.push("kek_id <> ?");
            values.push(primary.to_string().into());
        }
        if let Some((user, key)) = after {
            clauses.push("(user_id > ? OR (user_id = ? AND key_id > ?))");
            values.push(user.clone().into());
            values.push(user.clone().into());
            values.push(key.clone().into());
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY user_id, key_id LIMIT {limit}"));
        let rows = self
            .db
            .query_all_raw(statement(backend, &sql, values))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Row {
                    user: r.try_get("", "user_id")?,
                    key_id: r.try_get("", "key_id")?,
                    kek_id: r.try_get("", "kek_id")?,
                    wrapped: r.try_get("", "wrapped_key")?,
                })
            })
            .collect()
    }

    /// Rewraps every data key not under `keyring`'s primary key, calling
    /// `on_batch` after each committed batch. With `dry_run`, only opens
    /// them. Keys that do not open are reported and left as they are.
    pub(crate) async fn rewrap(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        batch_size: u32,
        dry_run: bool,
        mut on_batch: impl FnMut(&DataKeyProgress) + Send,
    ) -> Result<DataKeyProgress, CredentialError> {
        let primary = keyring.primary_id();
        let mut progress = DataKeyProgress::default();
        let mut after: Option<(String, String)> = None;
        loop {
            let rows = self
                .read_batch(after.as_ref(), Some(primary), batch_size)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.user.clone(), last.key_id.clone()));
            let full = rows.len() == batch_size as usize;
            let worker = keyring.clone();
            let (rows, verdicts) = tokio::task::spawn_blocking(move || {
                let verdicts = rewrap_rows(&worker, &rows, true);
                (rows, verdicts)
            })
            .await
            .map_err(cancelled)?;
            let mut swaps = Vec::with_capacity(rows.len());
            for (row, verdict) in rows.into_iter().zip(verdicts) {
                match verdict {
                    Ok(Some(new)) => swaps.push((row, new)),
                    Ok(None) => {}
                    Err(failure) => push_failure(&mut progress, failure),
                }
            }
            if dry_run {
                progress.done += swaps.len() as u64;
            } else if !swaps.is_empty() {
                let attempted = swaps.len() as u64;
                let done = self.write(primary, swaps, audit, progress.done).await?;
                progress.done += done;
                progress.skipped += attempted - done;
            }
            progress.batches += 1;
            on_batch(&progress);
            if !full {
                break;
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
        let mut after: Option<(String, String)> = None;
        loop {
            let rows = self.read_batch(after.as_ref(), None, batch_size).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.user.clone(), last.key_id.clone()));
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
    /// its wrapped value is still the one read. Returns how many changed.
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
        if let Err(e) = audit.record(progressed.clone()).await {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(error = %CredentialError::from(rollback), "rollback after audit failure");
            }
            return Err(e);
        }
        if let Err(e) = txn.commit().await {
            if let Err(audit_error) = audit.record_outcome(progressed, Outcome::Failure).await {
                tracing::error!(error = %audit_error, "could not record that a commit failed");
            }
            return Err(e.into());
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
            let key = keyring
                .unwrap_data_key(&row.user, id, &row.wrapped)
                .map_err(|e| fail(OpenFailure::of(&e), e.to_string()))?;
            Ok(rewrap.then(|| keyring.wrap_data_key(&row.user, &key).into_string()))
        })
        .collect()
}

/// `UPDATE atom_user_keys SET wrapped_key = new, kek_id = primary WHERE
/// user_id = ? AND key_id = ? AND wrapped_key = old`, many rows at once.
fn swap_statements(backend: DbBackend, kek: &str, swaps: Vec<(Row, String)>) -> Vec<Statement> {
    if backend == DbBackend::Postgres {
        let mut users = Vec::with_capacity(swaps.len());
        let mut keys = Vec::with_capacity(swaps.len());
        let mut olds = Vec::with_capacity(swaps.len());
        let mut news = Vec::with_capacity(swaps.len());
        for (row, new) in swaps {
            users.push(row.user);
            keys.push(row.key_id);
            olds.push(row.wrapped);
            news.push(new);
        }
        return vec![statement(
            backend,
            &format!(
                "UPDATE {KEYS_TABLE} AS t SET wrapped_key = v.new_key, kek_id = ? \
                 FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS v(user_id, key_id, old_key, new_key) \
                 WHERE t.user_id = v.user_id AND t.key_id = v.key_id AND t.wrapped_key = v.old_key"
            ),
            vec![
                kek.into(),
                users.into(),
                keys.into(),
                olds.into(),
                news.into(),
            ],
        )];
    }
    let mut statements = Vec::new();
    let mut swaps = swaps.into_iter().peekable();
    while swaps.peek().is_some() {
        let chunk: Vec<(Row, String)> = swaps.by_ref().take(ROWS_PER_STATEMENT).collect();
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4 + 1);
        if backend == DbBackend::MySql {
            let mut union = String::new();
            for (i, (row, new)) in chunk.into_iter().enumerate() {
                union.push_str(if i == 0 {
                    "SELECT ? AS user_id, ? AS key_id, ? AS old_key, ? AS new_key"
                } else {
                    " UNION ALL SELECT ?, ?, ?, ?"
                });
                values.extend([
                    row.user.into(),
                    row.key_id.into(),
                    row.wrapped.into(),
                    new.into(),
                ]);
            }
            values.push(kek.into());
            statements.push(statement(
                backend,
                &format!(
                    "UPDATE {KEYS_TABLE} AS t JOIN ({union}) AS v \
                     ON t.user_id = v.user_id AND t.key_id = v.key_id AND t.wrapped_key = v.old_key COLLATE utf8mb4_bin \
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
                list.push_str("(?, ?, ?, ?)");
                values.extend([
                    row.user.into(),
                    row.key_id.into(),
                    row.wrapped.into(),
                    new.into(),
                ]);
            }
            statements.push(statement(
                backend,
                &format!(
                    "UPDATE {KEYS_TABLE} SET wrapped_key = v.column4, kek_id = ? \
                     FROM (VALUES {list}) AS v \
                     WHERE {KEYS_TABLE}.user_id = v.column1 AND {KEYS_TABLE}.key_id = v.column2 \
                     AND {KEYS_TABLE}.wrapped_key = v.column3"
                ),
                values,
            ));
        }
    }
    statements
}
