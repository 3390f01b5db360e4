//! The store's envelope encryption (issue #13): values sealed under their
//! user's data key (`atom:v2:<data key id>:<token>`), the data keys wrapped
//! under the master keyring in the key store.
//!
//! - A write seals under the user's newest data key, made on first use.
//! - A read finds the data key its value names; a value whose key was
//!   destroyed (the user was erased) never opens again, in any copy.
//! - Rotating the master key rewraps the data keys only
//!   ([`CredentialStore::rewrap_data_keys`]); rotating one user's data key
//!   re-seals that user's values ([`CredentialStore::rotate_user_key`]).

use atom_audit::{Action, Outcome, Subject};
use atom_crypto::{Context, DataKey, ExposeSecret as _, KeyId, Keyring, OpenFailure, SecretString};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend};

use crate::audit::WriteScope;
use crate::error::CredentialError;
use crate::keystore::{DataKeyProgress, rotate::DATA_KEYS_SCOPE};
use crate::provider::Provider;
use crate::reveal::Refusal;
use crate::sql::statement;
use crate::store::CredentialStore;
use crate::user_id::UserId;

/// What [`CredentialStore::rotate_user_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserKeyRotation {
    /// The user.
    pub user: UserId,
    /// The new data key.
    pub key_id: KeyId,
    /// Credentials re-sealed under it.
    pub resealed: u64,
    /// Old data keys destroyed.
    pub destroyed: u64,
}

/// Data keys by the master key that wraps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataKeyCounts {
    /// All data keys.
    pub total: u64,
    /// Keys per master key id, most first.
    pub by_kek: Vec<atom_crypto::KeyCount>,
    /// Keys whose master key id is not well formed.
    pub malformed: u64,
}

impl DataKeyCounts {
    /// Keys not wrapped under `key_id`.
    pub fn not_under(&self, key_id: KeyId) -> u64 {
        self.total - self.by_key(key_id)
    }

    /// Keys wrapped under `key_id`.
    pub fn by_key(&self, key_id: KeyId) -> u64 {
        self.by_kek
            .iter()
            .filter(|k| k.key_id == key_id)
            .map(|k| k.count)
            .sum()
    }
}

impl CredentialStore {
    /// Whether new values are sealed under data keys.
    pub fn envelope(&self) -> bool {
        self.envelope
    }

    /// When envelopes are off for a store that records its mode: how to
    /// turn them on and what that means, for the faces to say once.
    pub fn envelope_notice(&self) -> Option<&str> {
        self.envelope_notice.as_deref()
    }

    /// Where the data keys are: "the credentials database" or the key
    /// store's URL, password redacted.
    pub fn keystore_place(&self) -> &str {
        &self.keystore.place
    }

    /// `put` in the v2 form: the user's data key is read (or made) in the
    /// write's own transaction when the key store shares the database,
    /// before it otherwise.
    pub(crate) async fn put_enveloped(
        &self,
        keyring: &Keyring,
        user: &UserId,
        provider: &Provider,
        token: &SecretString,
    ) -> Result<(), CredentialError> {
        let context = Context::credential(user.as_str(), provider.as_str());
        let (txn, key, _turn) = if self.keystore.shared {
            self.begin_with_data_key(keyring, user).await?
        } else {
            let key = {
                let _own = self.keystore.own_write_turn().await;
                self.keystore
                    .ensure(keyring, &self.audit, user.as_str(), self.audit.now())
                    .await?
            };
            let turn = self.sqlite_write_turn().await;
            (self.begin_write().await?, key, turn)
        };
        let sealed = keyring.seal_enveloped(&key, &context, token.expose_secret());
        self.upsert(&txn, user, provider, sealed, None, Some(key.id()))
            .await?;
        let action = Action::CredentialStored {
            user: user.to_string(),
            provider: provider.to_string(),
            key_id: Some(key.id()),
        };
        self.commit_audited(txn, action, Outcome::Success).await
    }

    /// Begins a write transaction holding `user`'s newest data key (read
    /// with a share lock, so that an erasure or a key rotation is ordered
    /// after this write or before it). On MySQL a missing key is made in a
    /// statement of its own first, outside the transaction (see
    /// [`KeyStore::for_write`]); an erasure racing that is retried.
    async fn begin_with_data_key(
        &self,
        keyring: &Keyring,
        user: &UserId,
    ) -> Result<
        (
            DatabaseTransaction,
            atom_crypto::DataKey,
            Option<tokio::sync::MutexGuard<'_, ()>>,
        ),
        CredentialError,
    > {
        let may_create = self.backend != crate::url::Backend::MySql;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let turn = self.sqlite_write_turn().await;
            let txn = self.begin_write().await?;
            let found = self
                .keystore
                .for_write(
                    &txn,
                    keyring,
                    &self.audit,
                    user.as_str(),
                    self.audit.now(),
                    may_create,
                )
                .await;
            match found {
                Ok(key) => return Ok((txn, key, turn)),
                Err(CredentialError::NoDataKeyYet { .. }) if attempts < 3 => {
                    txn.rollback().await?;
                    drop(turn);
                    self.keystore
                        .ensure(keyring, &self.audit, user.as_str(), self.audit.now())
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens an enveloped value of `user` for `provider` sealed under data
    /// key `id`. A refusal is for the caller to audit; an error (database,
    /// audit) stops the read.
    pub(crate) async fn reveal_enveloped(
        &self,
        user: &UserId,
        provider: &Provider,
        stored: &str,
        id: KeyId,
    ) -> Result<Result<(SecretString, Option<KeyId>), Refusal>, CredentialError> {
        let refuse = |reason: OpenFailure, error: CredentialError| Refusal {
            reason,
            key_id: Some(id),
            error,
        };
        let Some(keyring) = self.protection.keyring() else {
            return Ok(Err(refuse(
                OpenFailure::UnknownKey,
                CredentialError::KeyRequired {
                    what: format!(
                        "reading the encrypted credential of user {user} for provider {provider}"
                    ),
                },
            )));
        };
        let key = match self
            .keystore
            .find(keyring, &self.audit, user.as_str(), id)
            .await
        {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Ok(Err(refuse(
                    OpenFailure::UnknownKey,
                    CredentialError::DataKey {
                        user: user.to_string(),
                        key_id: Some(id),
                        reason: OpenFailure::UnknownKey,
                        message: format!(
                            "the credential for provider {provider} is sealed under data key {id}, which {} does not hold: it was destroyed when the user was erased (restored rows of an erased user stay unreadable by design), or {} is not the key store these rows were written with (check {})",
                            self.keystore.place,
                            self.keystore.place,
                            crate::config::ENV_KEYSTORE_URL
                        ),
                    },
                )));
            }
            Err(CredentialError::DataKey {
                user,
                key_id,
                reason,
                message,
            }) => {
                return Ok(Err(refuse(
                    reason,
                    CredentialError::DataKey {
                        user,
                        key_id,
                        reason,
                        message,
                    },
                )));
            }
            Err(e) => return Err(e),
        };
        let context = Context::credential(user.as_str(), provider.as_str());
        Ok(keyring
            .open_enveloped(&key, &context, stored)
            .map(|secret| (secret, Some(id)))
            .map_err(|source| {
                refuse(
                    OpenFailure::of(&source),
                    CredentialError::DecryptionFailed {
                        user: user.to_string(),
                        provider: provider.to_string(),
                        source,
                    },
                )
            }))
    }

    /// Destroys `user`'s data keys as part of an erasure, in `txn` when the
    /// key store shares the database (one commit with the rows), before it
    /// otherwise. Recorded as `data_key_destroyed` when there were keys.
    pub(crate) async fn destroy_data_keys(
        &self,
        txn: &DatabaseTransaction,
        user: &UserId,
    ) -> Result<u64, CredentialError> {
        if self.keystore.shared {
            let count = self.keystore.destroy(txn, user.as_str(), None).await?;
            if count > 0 {
                let destroyed = Action::DataKeyDestroyed {
                    user: user.to_string(),
                    count,
                };
                self.record_in(txn, destroyed, None).await?;
            }
            return Ok(count);
        }
        self.destroy_data_keys_apart(user).await
    }

    /// Destroys `user`'s data keys in a key store of its own: counted,
    /// recorded, then deleted (a failed delete is recorded as such).
    pub(crate) async fn destroy_data_keys_apart(
        &self,
        user: &UserId,
    ) -> Result<u64, CredentialError> {
        let _own = self.keystore.own_write_turn().await;
        let db = &self.keystore.db;
        let row = db
            .query_one_raw(statement(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM atom_user_keys WHERE user_id = ?",
                vec![user.as_str().into()],
            ))
            .await?;
        let count = match row {
            Some(row) => u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0),
            None => 0,
        };
        if count == 0 {
            self.keystore.forget(user.as_str());
            return Ok(0);
        }
        let action = Action::DataKeyDestroyed {
            user: user.to_string(),
            count,
        };
        self.audit.record(action.clone()).await?;
        match self.keystore.destroy(db, user.as_str(), None).await {
            Ok(n) => Ok(n),
            Err(e) => {
                if let Err(audit) = self.audit.record_outcome(action, Outcome::Failure).await {
                    tracing::error!(error = %audit, "could not record that data keys were not destroyed");
                }
                Err(e)
            }
        }
    }

    /// `user`'s data keys, and a new one made after them (step 1 of
    /// [`CredentialStore::rotate_user_key`]), through `conn`.
    async fn new_user_key(
        &self,
        conn: &impl WriteScope,
        keyring: &Keyring,
        user: &UserId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<DataKey>, DataKey), CredentialError> {
        let old = self
            .keystore
            .all_of(conn, keyring, &self.audit, user.as_str())
            .await?;
        let seq = old.iter().map(|(_, s)| *s).max().map_or(0, |s| s + 1);
        let new = self
            .keystore
            .create(conn, keyring, &self.audit, user.as_str(), seq, now)
            .await?
            .ok_or_else(|| CredentialError::Contended {
                message: format!(
                    "the data key of user {user} was changed by another writer during the rotation; run the rotation again"
                ),
            })?;
        Ok((old.into_iter().map(|(k, _)| k).collect(), new))
    }

    /// Replaces `user`'s data key (for a suspected compromise of it): a new
    /// key is made, every credential of the user is re-sealed under it, and
    /// the old keys are destroyed. Audited as `data_key_created` and
    /// `data_key_rotated` (then `data_key_destroyed`).
    ///
    /// With the key store in the credentials database, re-sealing and
    /// destroying are one transaction, ordered after any write still using
    /// an old key. With a key store of its own the new key is committed
    /// first, the rows next, and the old keys last, after a final sweep
    /// re-sealed anything written meanwhile under them; a run stopped
    /// half-way leaves both keys, and running it again finishes it.
    pub async fn rotate_user_key(&self, user: &UserId) -> Result<UserKeyRotation, CredentialError> {
        let keyring = self.keyring_for("rotating a user's data key")?;
        let now = self.audit.now();
        // 1. The new key, newest of the user's: every write from now on
        //    seals under it.
        let (old, new) = if self.keystore.shared && self.backend == crate::url::Backend::Sqlite {
            // In a transaction of this store's turn, so that the events
            // join it (an audit table here needs that turn to record).
            let _turn = self.sqlite_write_turn().await;
            let txn = self.begin_write().await?;
            let made = self.new_user_key(&txn, &keyring, user, now).await?;
            txn.commit().await?;
            made
        } else {
            let _own = self.keystore.own_write_turn().await;
            self.new_user_key(&self.keystore.db, &keyring, user, now)
                .await?
        };
        let mut resealed = 0;
        let destroyed;
        if self.keystore.shared {
            let _turn = self.sqlite_write_turn().await;
            let txn = self.begin_write().await?;
            // Destroying first waits for writes holding an old key (they
            // read it with a share lock); the rows read next include theirs.
            destroyed = self
                .keystore
                .destroy(&txn, user.as_str(), Some(new.id()))
                .await?;
            resealed += self.reseal_user(&txn, &keyring, user, &old, &new).await?;
            if destroyed > 0 {
                let gone = Action::DataKeyDestroyed {
                    user: user.to_string(),
                    count: destroyed,
                };
                if let Err(e) = self.record_in(&txn, gone, None).await {
                    if let Err(rollback) = txn.rollback().await {
                        tracing::warn!(error = %CredentialError::from(rollback), "rollback after audit failure");
                    }
                    return Err(e);
                }
            }
            let action = Action::DataKeyRotated {
                user: user.to_string(),
                to: new.id(),
                resealed,
            };
            self.commit_audited(txn, action, Outcome::Success).await?;
        } else {
            {
                let _turn = self.sqlite_write_turn().await;
                let txn = self.begin_write().await?;
                resealed += self.reseal_user(&txn, &keyring, user, &old, &new).await?;
                let action = Action::DataKeyRotated {
                    user: user.to_string(),
                    to: new.id(),
                    resealed,
                };
                self.commit_audited(txn, action, Outcome::Success).await?;
            }
            {
                let _own = self.keystore.own_write_turn().await;
                let count = old.iter().filter(|k| k.id() != new.id()).count() as u64;
                if count > 0 {
                    self.audit
                        .record(Action::DataKeyDestroyed {
                            user: user.to_string(),
                            count,
                        })
                        .await?;
                }
                destroyed = self
                    .keystore
                    .destroy(&self.keystore.db, user.as_str(), Some(new.id()))
                    .await?;
            }
            // A write that took an old key before step 1 and committed
            // after the re-seal: its value is re-sealed now (the old keys
            // are still in memory).
            let _turn = self.sqlite_write_turn().await;
            let txn = self.begin_write().await?;
            let late = self.reseal_user(&txn, &keyring, user, &old, &new).await?;
            txn.commit().await?;
            resealed += late;
        }
        Ok(UserKeyRotation {
            user: user.clone(),
            key_id: new.id(),
            resealed,
            destroyed,
        })
    }

    /// Re-seals, in `txn`, every row of `user` not under `new`: enveloped
    /// ones with the old key they name, others with the keyring. Rows are
    /// locked on PostgreSQL and MySQL.
    async fn reseal_user(
        &self,
        txn: &DatabaseTransaction,
        keyring: &Keyring,
        user: &UserId,
        old: &[atom_crypto::DataKey],
        new: &atom_crypto::DataKey,
    ) -> Result<u64, CredentialError> {
        let backend = txn.get_database_backend();
        let lock = match backend {
            DbBackend::Postgres | DbBackend::MySql => " FOR UPDATE",
            _ => "",
        };
        let rows = txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, provider, encrypted_token FROM user_credentials WHERE user_id = ? AND (data_key_id IS NULL OR data_key_id <> ?){lock}"
                ),
                vec![user.as_str().into(), new.id().to_string().into()],
            ))
            .await?;
        let mut resealed = 0;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let provider: String = row.try_get("", "provider")?;
            let token: String = row.try_get("", "encrypted_token")?;
            let context = Context::credential(user.as_str(), &provider);
            let old_key = match atom_crypto::enveloped_key_id(&token) {
                Ok(Some(id)) => old.iter().find(|k| k.id() == id),
                _ => None,
            };
            let sealed = keyring
                .reseal_enveloped(old_key, new, &context, &token)
                .map_err(|source| CredentialError::DecryptionFailed {
                    user: user.to_string(),
                    provider: provider.clone(),
                    source,
                })?;
            let Some(sealed) = sealed else { continue };
            txn.execute_raw(statement(
                backend,
                "UPDATE user_credentials SET encrypted_token = ?, key_id = NULL, data_key_id = ?, updated_at = ? WHERE id = ?",
                vec![
                    sealed.into(),
                    new.id().to_string().into(),
                    crate::time::db_now(self.audit.now()).into(),
                    id.into(),
                ],
            ))
            .await?;
            resealed += 1;
        }
        Ok(resealed)
    }

    /// Rewraps every data key not wrapped under the primary master key:
    /// the O(users) part of a master key rotation (the credentials they
    /// seal are not touched). Audited as `key_rotation_started`, one
    /// `key_rotation_progressed` per batch (in its transaction) and
    /// `key_rotation_finished`, scope `data keys`; a dry run only opens
    /// the keys and records nothing. Keys that do not open are reported.
    ///
    /// `workers` read and rewrap disjoint id ranges concurrently (on SQLite
    /// their writes take turns).
    pub async fn rewrap_data_keys(
        &self,
        batch_size: std::num::NonZeroU32,
        workers: std::num::NonZeroU32,
        dry_run: bool,
    ) -> Result<DataKeyProgress, CredentialError> {
        let keyring = self.keyring_for("rewrapping data keys")?;
        let to = keyring.primary_id();
        if !dry_run {
            let counts = self.data_key_counts().await?;
            self.audit
                .record(Action::KeyRotationStarted {
                    scope: DATA_KEYS_SCOPE.to_owned(),
                    to,
                    total: Some(counts.not_under(to)),
                })
                .await?;
        }
        let progress = self
            .keystore
            .rewrap(
                &keyring,
                &self.audit,
                batch_size.get(),
                workers.get(),
                dry_run,
            )
            .await?;
        if !dry_run {
            for failure in &progress.failures {
                self.audit
                    .record(Action::DecryptionFailed {
                        subject: Subject::User {
                            user: failure.user.clone(),
                        },
                        key_id: failure.kek_id.parse().ok(),
                        reason: failure.reason,
                    })
                    .await?;
            }
            self.audit
                .record(Action::KeyRotationFinished {
                    scope: DATA_KEYS_SCOPE.to_owned(),
                    to,
                    rewrapped: progress.done,
                    failed: progress.failed,
                })
                .await?;
        }
        Ok(progress)
    }

    /// Opens every data key with the configured keyring, writing nothing:
    /// how many open, and the ones that do not (for verifying a rotation
    /// before the old master key is retired).
    pub async fn check_data_keys(&self) -> Result<DataKeyProgress, CredentialError> {
        let keyring = self.keyring_for("checking data keys")?;
        self.keystore
            .check(&keyring, crate::DEFAULT_BATCH_SIZE.get())
            .await
    }

    /// Data keys per master key (nothing decrypted, not audited: counts of
    /// key ids only).
    pub async fn data_key_counts(&self) -> Result<DataKeyCounts, CredentialError> {
        let (groups, total) = self.keystore.counts_by_kek().await?;
        let mut counts = DataKeyCounts {
            total,
            ..DataKeyCounts::default()
        };
        let mut by_kek = Vec::new();
        for (kek, n) in groups {
            match kek.parse::<KeyId>() {
                Ok(id) => by_kek.push((id, n)),
                Err(_) => counts.malformed += n,
            }
        }
        counts.by_kek = atom_crypto::KeyCount::list(by_kek, self.protection.keyring());
        Ok(counts)
    }
}
