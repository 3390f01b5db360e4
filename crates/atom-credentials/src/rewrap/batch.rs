//! One rewrap batch, in two halves that a run overlaps (the next batch is
//! read and sealed while this one is written):
//!
//! - [`Prepared`]: read rows not under the primary key, re-seal them in
//!   memory (no write, no lock unless `SKIP LOCKED`);
//! - write them back with compare-and-swap in one transaction, and audit
//!   the batch in that transaction.

use std::collections::HashMap;

use atom_audit::{Action, Outcome, Subject};
use atom_crypto::{Classification, DataKey, KeyId, Keyring, classify};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::crypto::{Row, Verdict, rewrap_rows};
use super::swap_sql::{Swap, swap_statements};
use super::{RewrapFailure, RewrapOptions, not_under};
use crate::entity::{self, Column};
use crate::error::CredentialError;
use crate::store::CredentialStore;
use crate::time::db_now;
use crate::url::Backend;

/// What one batch did.
pub(super) struct BatchOutcome {
    pub(super) done: u64,
    pub(super) skipped: u64,
    pub(super) failures: Vec<RewrapFailure>,
    pub(super) last_id: Option<i64>,
    /// The batch was full, so there may be more rows.
    pub(super) more: bool,
}

/// A batch read and re-sealed in memory, not yet written.
pub(super) struct Prepared {
    /// Open when the rows were read `FOR UPDATE SKIP LOCKED`: their locks
    /// are held until the write commits.
    txn: Option<DatabaseTransaction>,
    swaps: Vec<Swap>,
    failures: Vec<(RewrapFailure, Option<KeyId>)>,
    pub(super) last_id: Option<i64>,
    pub(super) more: bool,
}

impl CredentialStore {
    /// Reads the first `options.batch_size` rows after `after` (within
    /// `options.range`) not under the primary key, and re-seals them.
    pub(super) async fn prepare_batch(
        &self,
        keyring: &Keyring,
        after: i64,
        options: &RewrapOptions,
    ) -> Result<Prepared, CredentialError> {
        let limit = options.batch_size.get();
        let mut query = entity::Entity::find()
            .select_only()
            .columns([
                Column::Id,
                Column::UserId,
                Column::Provider,
                Column::EncryptedToken,
            ])
            .filter(Column::Id.gt(after))
            .filter(not_under(keyring, self.envelope))
            .order_by_asc(Column::Id)
            .limit(u64::from(limit));
        if let Some(up_to) = options.range.up_to {
            query = query.filter(Column::Id.lte(up_to));
        }
        // With SKIP LOCKED the rows stay locked from the read to the commit,
        // so the read is part of the batch's transaction. Otherwise the read
        // takes no lock and compare-and-swap guards the write.
        let locking = options.skip_locked && self.backend == Backend::Postgres && !options.dry_run;
        let (txn, rows): (_, Vec<(i64, String, String, String)>) = if locking {
            let txn = self.db.begin().await?;
            let rows = query
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .into_tuple()
                .all(&txn)
                .await?;
            (Some(txn), rows)
        } else {
            (None, query.into_tuple().all(&self.db).await?)
        };
        let more = rows.len() == limit as usize;
        let last_id = rows.last().map(|r| r.0);
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|(id, user, provider, token)| Row {
                id,
                user,
                provider,
                token,
            })
            .collect();

        // Upgrading to the enveloped form: each user's data key, made for
        // users who have none yet (a dry run makes throwaway ones).
        let data_keys = if self.envelope && !rows.is_empty() {
            Some(self.data_keys_for(keyring, &rows, options.dry_run).await?)
        } else {
            None
        };

        // Sealing is CPU work: keep it off the async threads.
        let worker_keyring = keyring.clone();
        let seal_plaintext = options.seal_plaintext;
        let (rows, verdicts) = tokio::task::spawn_blocking(move || {
            let verdicts = rewrap_rows(&worker_keyring, &rows, seal_plaintext, data_keys.as_ref());
            (rows, verdicts)
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => CredentialError::Database {
                message: "the rewrap worker was cancelled (runtime shutting down)".to_owned(),
            },
        })?;

        let mut swaps = Vec::with_capacity(rows.len());
        let mut failures = Vec::new();
        for (row, verdict) in rows.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Swap(new, data_key) => swaps.push(Swap {
                    id: row.id,
                    old: row.token,
                    new,
                    data_key_id: data_key.map(|k| k.to_string()).unwrap_or_default(),
                }),
                Verdict::FixKeyId => swaps.push(Swap {
                    id: row.id,
                    new: row.token.clone(),
                    old: row.token,
                    data_key_id: String::new(),
                }),
                Verdict::Fail(reason, message) => {
                    let key_id = match classify(&row.token) {
                        Ok(Classification::Sealed(id)) => Some(id),
                        _ => None,
                    };
                    failures.push((
                        RewrapFailure {
                            id: row.id,
                            user: row.user,
                            provider: row.provider,
                            reason,
                            message,
                        },
                        key_id,
                    ));
                }
            }
        }
        Ok(Prepared {
            txn,
            swaps,
            failures,
            last_id,
            more,
        })
    }

    /// Writes a prepared batch (compare-and-swap) and its audit events in
    /// one transaction; a dry run writes and records nothing.
    pub(super) async fn write_batch(
        &self,
        keyring: &Keyring,
        batch: Prepared,
        options: &RewrapOptions,
        scope: &str,
        done_before: u64,
    ) -> Result<BatchOutcome, CredentialError> {
        let Prepared {
            txn,
            swaps,
            failures,
            last_id,
            more,
        } = batch;
        let mut outcome = BatchOutcome {
            done: 0,
            skipped: 0,
            failures: Vec::new(),
            last_id,
            more,
        };
        if options.dry_run {
            outcome.done = swaps.len() as u64;
            outcome.failures = failures.into_iter().map(|(f, _)| f).collect();
            return Ok(outcome);
        }
        if swaps.is_empty() && failures.is_empty() {
            if let Some(txn) = txn {
                txn.commit().await?;
            }
            return Ok(outcome);
        }

        let _turn = self.sqlite_write_turn().await;
        let txn = match txn {
            Some(txn) => txn,
            None => self.begin_write().await?,
        };
        let backend = txn.get_database_backend();
        // Enveloped rows hang off their data key, not a master key.
        let key_id = (!self.envelope).then(|| keyring.primary_id().to_string());
        let now = db_now(self.audit.now());
        let attempted = swaps.len() as u64;
        for statement in swap_statements(backend, key_id.as_deref(), now, swaps) {
            outcome.done += txn.execute_raw(statement).await?.rows_affected();
        }
        outcome.skipped = attempted.saturating_sub(outcome.done);
        for (failure, key_id) in &failures {
            let event = Action::DecryptionFailed {
                subject: Subject::Credential {
                    user: failure.user.clone(),
                    provider: failure.provider.clone(),
                },
                key_id: *key_id,
                reason: failure.reason,
            };
            if let Err(e) = self.record_in(&txn, event, None).await {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %CredentialError::from(rollback), "rollback after audit failure");
                }
                return Err(e);
            }
        }
        let progressed = Action::KeyRotationProgressed {
            scope: scope.to_owned(),
            to: keyring.primary_id(),
            done: done_before + outcome.done,
            total: None,
        };
        self.commit_audited(txn, progressed, Outcome::Success)
            .await?;
        outcome.failures = failures.into_iter().map(|(f, _)| f).collect();
        tracing::debug!(
            done = outcome.done,
            skipped = outcome.skipped,
            failed = outcome.failures.len(),
            last_id = ?outcome.last_id,
            "rewrap batch committed"
        );
        Ok(outcome)
    }
}

impl CredentialStore {
    /// The data key of every user of `rows`: the newest stored, or one made
    /// now (all made in one transaction, each audited). A dry run makes
    /// nothing: a user without a key gets a throwaway one.
    async fn data_keys_for(
        &self,
        keyring: &Keyring,
        rows: &[Row],
        dry_run: bool,
    ) -> Result<HashMap<String, DataKey>, CredentialError> {
        let mut users: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let mut keys = HashMap::with_capacity(users.len());
        let now = self.audit.now();
        if dry_run {
            for user in users {
                let key = match self.keystore.newest(keyring, &self.audit, user).await? {
                    Some(key) => key,
                    None => DataKey::generate().map_err(|e| CredentialError::Database {
                        message: format!("no throwaway data key could be made: {e}"),
                    })?,
                };
                keys.insert(user.to_owned(), key);
            }
            return Ok(keys);
        }
        // Keys are made in statements of their own (no transaction holds
        // locks across users). A data key made for a row whose user is
        // erased meanwhile is harmless: it seals nothing, and the next
        // erasure of that user destroys it.
        if self.keystore.shared && self.backend == crate::url::Backend::Sqlite {
            // SQLite has one writer anyway: the keys are made in one
            // transaction of this store's turn, which their events join
            // (an audit table here needs that turn to record).
            let _turn = self.sqlite_write_turn().await;
            let txn = self.begin_write().await?;
            for user in users {
                let key = self
                    .keystore
                    .for_write(&txn, keyring, &self.audit, user, now, true)
                    .await?;
                keys.insert(user.to_owned(), key);
            }
            txn.commit().await?;
            return Ok(keys);
        }
        let _own = self.keystore.own_write_turn().await;
        for user in users {
            let key = self
                .keystore
                .ensure(keyring, &self.audit, user, now)
                .await?;
            keys.insert(user.to_owned(), key);
        }
        Ok(keys)
    }
}
