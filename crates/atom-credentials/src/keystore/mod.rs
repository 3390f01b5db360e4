//! The key store of envelope encryption (issue #13): each user's data keys,
//! wrapped under the master keyring, in `atom_user_keys`.
//!
//! - The key store lives beside the credentials (the default) or in a
//!   database of its own (`ATOM_KEYSTORE_URL`). Beside them, a write and
//!   the key it uses share one transaction, and an erasure destroys keys
//!   and rows in one commit. Apart, a backup of the credentials alone
//!   holds nothing that opens once the user's keys are destroyed.
//! - Unwrapped keys are cached per process (bounded); the first unwrap of
//!   a key in a process is audited (`data_key_unwrapped`), and so is every
//!   key made (`data_key_created`) and destroyed (`data_key_destroyed`),
//!   fail-closed.
//! - A write reads the user's newest key from the store every time (a
//!   cached key is only a saving on the unwrap), so a key destroyed by
//!   another process is never used again for a new value.

pub(crate) mod location;
pub(crate) mod migration;
pub(crate) mod rotate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atom_audit::{Action, Outcome};
use atom_crypto::{CryptoError, DataKey, KeyId, Keyring};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Value};

use crate::audit::{StoreAudit, WriteScope};
use crate::error::CredentialError;
use crate::sql::statement;
use crate::time::db_now;
use crate::url::Backend;
use migration::KEYS_TABLE;

pub use rotate::{DataKeyFailure, DataKeyProgress};

/// Unwrapped keys kept per process before the cache starts over.
const CACHE_CAPACITY: usize = 10_000;

/// The wrapped data keys, and this process's cache of unwrapped ones.
#[derive(Clone)]
pub(crate) struct KeyStore {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: Backend,
    /// The key store is the credentials database (same pool).
    pub(crate) shared: bool,
    /// A redacted description for messages: "the credentials database" or
    /// the key store's URL without its password.
    pub(crate) place: String,
    cache: Arc<Mutex<HashMap<(String, KeyId), DataKey>>>,
    /// Writers of a key store in an SQLite file of its own take turns here
    /// (the credentials store's queue when shared).
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

/// A data key row as stored.
pub(crate) struct StoredKey {
    pub(crate) key_id: String,
    pub(crate) kek_id: String,
    pub(crate) wrapped: String,
}

impl StoredKey {
    fn from_row(row: &QueryResult) -> Result<StoredKey, CredentialError> {
        Ok(StoredKey {
            key_id: row.try_get("", "key_id")?,
            kek_id: row.try_get("", "kek_id")?,
            wrapped: row.try_get("", "wrapped_key")?,
        })
    }
}

impl KeyStore {
    pub(crate) fn new(
        db: DatabaseConnection,
        backend: Backend,
        shared: bool,
        place: String,
        sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    ) -> KeyStore {
        KeyStore {
            db,
            backend,
            shared,
            place,
            cache: Arc::default(),
            sqlite_writer,
        }
    }

    fn cached(&self, user: &str, id: KeyId) -> Option<DataKey> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(&(user.to_owned(), id)).cloned()
    }

    fn remember(&self, user: &str, key: &DataKey) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert((user.to_owned(), key.id()), key.clone());
    }

    /// Drops `user`'s keys from this process's cache.
    pub(crate) fn forget(&self, user: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(u, _), _| u != user);
    }

    /// This process's turn to write to a key store in an SQLite file of
    /// its own. `None` when shared (the caller's turn covers it) or on a
    /// server database.
    pub(crate) async fn own_write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match (self.backend, self.shared) {
            (Backend::Sqlite, false) => Some(self.sqlite_writer.lock().await),
            _ => None,
        }
    }

    /// Unwraps `stored`, `user`'s key, under `keyring`: from the cache, or
    /// unwrapped now and audited as the first unwrap in this process.
    async fn unwrap(
        &self,
        conn: &impl WriteScope,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        stored: &StoredKey,
    ) -> Result<DataKey, CredentialError> {
        let id = parse_id(&stored.key_id, user)?;
        if let Some(key) = self.cached(user, id) {
            return Ok(key);
        }
        let kek_id = parse_id(&stored.kek_id, user)?;
        let key = keyring
            .unwrap_data_key(user, id, &stored.wrapped)
            .map_err(|source| CredentialError::DataKey {
                user: user.to_owned(),
                key_id: Some(id),
                reason: atom_crypto::OpenFailure::of(&source),
                message: unwrap_problem(keyring, kek_id, &source),
            })?;
        let unwrapped = Action::DataKeyUnwrapped {
            user: user.to_owned(),
            key_id: id,
            kek_id,
        };
        audit.record_on(conn, self.shared, unwrapped, None).await?;
        // An event appended in the caller's transaction goes if it rolls
        // back: the key is then not cached, so that the next unwrap is
        // recorded again rather than served unrecorded.
        let in_transaction =
            self.shared && conn.transaction().is_some() && audit.ledger().is_some();
        if !in_transaction {
            self.remember(user, &key);
        }
        Ok(key)
    }

    /// The key of `row` (as read from the key store), unwrapped.
    async fn unwrap_row(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        row: Option<&QueryResult>,
    ) -> Result<Option<DataKey>, CredentialError> {
        match row {
            None => Ok(None),
            Some(row) => {
                let stored = StoredKey::from_row(row)?;
                Ok(Some(
                    self.unwrap(&self.db, keyring, audit, user, &stored).await?,
                ))
            }
        }
    }

    /// `user`'s data key `id`, to open a value it sealed; `None` when the
    /// key store does not hold it (destroyed by an erasure, or another key
    /// store).
    pub(crate) async fn find(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        id: KeyId,
    ) -> Result<Option<DataKey>, CredentialError> {
        if let Some(key) = self.cached(user, id) {
            return Ok(Some(key));
        }
        let row = self
            .db
            .query_one_raw(statement(
                self.db.get_database_backend(),
                &format!(
                    "SELECT key_id, kek_id, wrapped_key FROM {KEYS_TABLE} WHERE user_id = ? AND key_id = ?"
                ),
                vec![user.into(), id.to_string().into()],
            ))
            .await?;
        self.unwrap_row(keyring, audit, user, row.as_ref()).await
    }

    /// `user`'s newest data key, if any (nothing is made or locked).
    pub(crate) async fn newest(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
    ) -> Result<Option<DataKey>, CredentialError> {
        let row = self
            .db
            .query_one_raw(statement(
                self.db.get_database_backend(),
                &format!(
                    "SELECT key_id, kek_id, wrapped_key FROM {KEYS_TABLE} WHERE user_id = ? ORDER BY seq DESC, key_id LIMIT 1"
                ),
                vec![user.into()],
            ))
            .await?;
        self.unwrap_row(keyring, audit, user, row.as_ref()).await
    }

    /// `user`'s newest data key, read through `conn` (the write's own
    /// transaction when the key store is shared, so that an erasure and
    /// this write are ordered: on PostgreSQL and MySQL the key row is read
    /// with a share lock), or a new one made, stored and audited as
    /// `data_key_created` when the user has none.
    ///
    /// Without `may_create`, a user without a key is
    /// [`CredentialError::NoDataKeyYet`]: on MySQL a key
    /// is not made inside a write transaction, whose share lock on the
    /// missing row (a gap lock) would deadlock with a concurrent first
    /// write's insert; the caller makes it outside and tries again.
    pub(crate) async fn for_write(
        &self,
        conn: &impl WriteScope,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        now: chrono::DateTime<chrono::Utc>,
        may_create: bool,
    ) -> Result<DataKey, CredentialError> {
        let backend = conn.get_database_backend();
        let lock = match (self.shared, backend) {
            (true, DbBackend::Postgres) => " FOR SHARE",
            (true, DbBackend::MySql) => " LOCK IN SHARE MODE",
            _ => "",
        };
        let newest = statement(
            backend,
            &format!(
                "SELECT key_id, kek_id, wrapped_key FROM {KEYS_TABLE} WHERE user_id = ? ORDER BY seq DESC, key_id LIMIT 1{lock}"
            ),
            vec![user.into()],
        );
        if let Some(row) = conn.query_one_raw(newest.clone()).await? {
            let stored = StoredKey::from_row(&row)?;
            return self.unwrap(conn, keyring, audit, user, &stored).await;
        }
        if !may_create {
            return Err(CredentialError::NoDataKeyYet {
                user: user.to_owned(),
            });
        }
        if let Some(key) = self.create(conn, keyring, audit, user, 0, now).await? {
            return Ok(key);
        }
        // Another writer made the user's first key meanwhile (its insert
        // waited for theirs to commit): use that one.
        match conn.query_one_raw(newest).await? {
            Some(row) => {
                let stored = StoredKey::from_row(&row)?;
                self.unwrap(conn, keyring, audit, user, &stored).await
            }
            None => Err(CredentialError::Contended {
                message: format!(
                    "another writer was making the data key of user {user} and it cannot be read yet; retry the write"
                ),
            }),
        }
    }

    /// `user`'s newest data key, made now if the user has none, each
    /// statement on its own (no transaction of the caller's).
    pub(crate) async fn ensure(
        &self,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<DataKey, CredentialError> {
        self.for_write(&self.db, keyring, audit, user, now, true)
            .await
    }

    /// Makes a new data key for `user` with order `seq`, stores it wrapped
    /// under the primary key through `conn`, and records
    /// `data_key_created` first (fail-closed; if the insert then fails, a
    /// `failure` event says so). `None` when another writer stored a key
    /// with this order first (`(user_id, seq)` is unique): nothing was
    /// stored, and the caller reads theirs.
    pub(crate) async fn create(
        &self,
        conn: &impl WriteScope,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
        seq: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<DataKey>, CredentialError> {
        let key = DataKey::generate().map_err(|_| CredentialError::RandomUnavailable {
            what: format!("no data key could be made for user {user}"),
        })?;
        let action = Action::DataKeyCreated {
            user: user.to_owned(),
            key_id: key.id(),
            kek_id: keyring.primary_id(),
        };
        audit
            .record_on(conn, self.shared, action.clone(), None)
            .await?;
        let wrapped = keyring.wrap_data_key(user, &key);
        let backend = conn.get_database_backend();
        let (insert, skip) = match backend {
            DbBackend::MySql => ("INSERT IGNORE", ""),
            _ => ("INSERT", " ON CONFLICT DO NOTHING"),
        };
        let inserted = conn
            .execute_raw(statement(
                backend,
                &format!(
                    "{insert} INTO {KEYS_TABLE} (user_id, key_id, seq, kek_id, wrapped_key, created_at) VALUES (?, ?, ?, ?, ?, ?){skip}"
                ),
                vec![
                    user.into(),
                    key.id().to_string().into(),
                    seq.into(),
                    keyring.primary_id().to_string().into(),
                    Value::from(wrapped.into_string()),
                    db_now(now).into(),
                ],
            ))
            .await;
        match inserted {
            Ok(done) if done.rows_affected() > 0 => {
                self.remember(user, &key);
                Ok(Some(key))
            }
            Ok(_) => {
                // Lost the race: this key was never stored.
                if let Err(audit_error) = audit
                    .record_on(conn, self.shared, action, Some(Outcome::Failure))
                    .await
                {
                    tracing::error!(error = %audit_error, "could not record that a data key was not stored");
                }
                Ok(None)
            }
            Err(e) => {
                // A failed statement may have ended the caller's transaction
                // (PostgreSQL): that failure record is then the last thing
                // tried, and it goes with it.
                if let Err(audit_error) = audit
                    .record_on(conn, self.shared, action, Some(Outcome::Failure))
                    .await
                {
                    tracing::error!(error = %audit_error, "could not record that a data key was not stored");
                }
                Err(e.into())
            }
        }
    }

    /// Every data key of `user`, unwrapped (for re-sealing their values).
    pub(crate) async fn all_of(
        &self,
        conn: &impl WriteScope,
        keyring: &Keyring,
        audit: &StoreAudit,
        user: &str,
    ) -> Result<Vec<(DataKey, i64)>, CredentialError> {
        let rows = conn
            .query_all_raw(statement(
                conn.get_database_backend(),
                &format!(
                    "SELECT key_id, kek_id, wrapped_key, seq FROM {KEYS_TABLE} WHERE user_id = ? ORDER BY seq, key_id"
                ),
                vec![user.into()],
            ))
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("", "seq")?;
            let stored = StoredKey::from_row(row)?;
            keys.push((self.unwrap(conn, keyring, audit, user, &stored).await?, seq));
        }
        Ok(keys)
    }

    /// Deletes `user`'s data keys through `conn`, all of them or all but
    /// `keep`, and forgets them here. Returns how many were deleted.
    pub(crate) async fn destroy(
        &self,
        conn: &impl ConnectionTrait,
        user: &str,
        keep: Option<KeyId>,
    ) -> Result<u64, CredentialError> {
        let backend = conn.get_database_backend();
        let result = match keep {
            None => {
                conn.execute_raw(statement(
                    backend,
                    &format!("DELETE FROM {KEYS_TABLE} WHERE user_id = ?"),
                    vec![user.into()],
                ))
                .await?
            }
            Some(keep) => {
                conn.execute_raw(statement(
                    backend,
                    &format!("DELETE FROM {KEYS_TABLE} WHERE user_id = ? AND key_id <> ?"),
                    vec![user.into(), keep.to_string().into()],
                ))
                .await?
            }
        };
        self.forget(user);
        Ok(result.rows_affected())
    }

    /// Data keys per master key id (`kek_id`), and the total.
    pub(crate) async fn counts_by_kek(&self) -> Result<(Vec<(String, u64)>, u64), CredentialError> {
        let rows = self
            .db
            .query_all_raw(statement(
                self.db.get_database_backend(),
                &format!("SELECT kek_id, COUNT(*) AS n FROM {KEYS_TABLE} GROUP BY kek_id"),
                vec![],
            ))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut total = 0;
        for row in &rows {
            let n = u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
            total += n;
            out.push((row.try_get::<String>("", "kek_id")?, n));
        }
        Ok((out, total))
    }
}

fn parse_id(text: &str, user: &str) -> Result<KeyId, CredentialError> {
    text.parse::<KeyId>()
        .map_err(|_| CredentialError::Database {
            message: format!(
                "the key store holds a malformed key id for user {user}; the {KEYS_TABLE} table was changed outside atom"
            ),
        })
}

/// Why a wrapped data key did not open, for the operator.
fn unwrap_problem(keyring: &Keyring, kek_id: KeyId, source: &CryptoError) -> String {
    if keyring.contains(kek_id) {
        format!(
            "it is wrapped under master key {kek_id}, which is configured, but it does not open ({source}): the key store row was altered or copied from another user"
        )
    } else {
        format!(
            "it is wrapped under master key {kek_id}, which is not configured: add it back to the keyring as a previous key (ENCRYPTION_KEY_PREVIOUS; restore it first if it was retired)"
        )
    }
}
