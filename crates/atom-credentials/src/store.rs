//! `CredentialStore`: put, get, list, delete and erase a user's tokens, each
//! audited, fail-closed.
//!
//! Auditing order. A read records its event before the secret is returned.
//! A write runs in a transaction and records its event after the statement
//! and before the commit: if the event cannot be recorded, the transaction
//! rolls back and nothing changes. With the audit table in the store's own
//! database the event is appended in that transaction, so the change and
//! its record commit together. With another sink (a file), if the commit
//! fails after the event was recorded, a second event with outcome
//! `failure` is attempted, so the trail never claims a change that did not
//! happen without saying so.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use atom_audit::{Action, AuditClock, Auditor, Outcome, Subject};
use atom_crypto::{ExposeSecret, KeyId, Protection, SecretString};
use chrono::NaiveDateTime;
use sea_orm::sea_query::{Expr, ExprTrait as _, LockType, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::audit::StoreAudit;
use crate::audit_table::DatabaseAuditSink;
use crate::config::StoreConfig;
use crate::entity::{self, ARCHIVE_TABLE};
use crate::error::CredentialError;
use crate::info::{CredentialInfo, ErasureReport, PoolUsage};
use crate::keystore::KeyStore;
use crate::migration::{self, MigrationReport};
use crate::provider::Provider;
use crate::reveal::{conceal, reveal};
use crate::time::{db_now, from_db};
use crate::url::{Backend, DatabaseUrl};
use crate::user_id::UserId;

/// Per-user credentials in `user_credentials`, sealed under the context
/// (user id, provider) so that a token copied to another row does not open.
/// Cheap to clone: clones share the pool, the keyring and the audit sink.
#[derive(Clone)]
pub struct CredentialStore {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: Backend,
    /// Where `db` is (to recognize an audit table in the same database).
    pub(crate) database_url: DatabaseUrl,
    pub(crate) protection: Protection,
    pub(crate) plaintext_transition: bool,
    pub(crate) audit: StoreAudit,
    /// Taken on SQLite around every write transaction of this store (puts,
    /// deletes, erasures, rewrap batches). SQLite has one writer at a time;
    /// a second `BEGIN IMMEDIATE` waits in SQLite's busy handler, which
    /// sleeps in growing steps (1, 2, 5, 10 ms...) and leaves the lock idle
    /// after it is freed: under concurrent writes that made the tail (a PUT
    /// p99 of tens of ms). Queueing this store's writers here, first come
    /// first served, hands the lock over at once. Other processes still
    /// meet the busy timeout. Shared with the audit table's group commit
    /// when that is in this database.
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// The users' data keys (envelope encryption).
    pub(crate) keystore: KeyStore,
    /// Seal new values under data keys (`atom:v2`).
    pub(crate) envelope: bool,
    /// Said once by the faces when envelopes are off (`crate::mode`).
    pub(crate) envelope_notice: Option<Arc<str>>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("backend", &self.backend)
            .field("protection", &self.protection)
            .field("plaintext_transition", &self.plaintext_transition)
            .field("envelope", &self.envelope)
            .field("keystore", &self.keystore.place)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Connects to `config.database_url`, runs the migrations (creating the
    /// tables, or adopting a table of the Python original) and returns the
    /// store with what the migrations did. Every operation is recorded
    /// through `auditor`; when it cannot record (fail-closed, the default),
    /// the operation fails.
    pub async fn open(
        config: &StoreConfig,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<(CredentialStore, MigrationReport), CredentialError> {
        // Migrations get a connection of their own, closed before the pool
        // opens: an SQLite connection that read the schema before the
        // migration changed it can prepare statements against the old one
        // (e.g. "ON CONFLICT clause does not match any UNIQUE constraint").
        let report = migration::run_alone(config).await?;
        if let Some(config) = keystore_config(config) {
            let migrating =
                crate::connect::connect(&config.clone().with_max_connections(NonZeroU32::MIN))
                    .await?;
            let migrated = migration::locked(
                &migrating,
                &config.database_url,
                crate::keystore::migration::run_unlocked(&migrating),
            )
            .await;
            migrating.close().await?;
            migrated?;
        }
        let db = crate::connect::connect(config).await?;
        crate::keystore::location::check(&db, config, true).await?;
        let mode = envelope_mode(&db, config, true).await?;
        let keystore_db = match keystore_config(config) {
            Some(config) => Some(crate::connect::connect(&config).await?),
            None => None,
        };
        let store = CredentialStore::assemble(db, keystore_db, config, mode, protection, auditor);
        // Adopting a table moves rows aside: that is recorded. The rows are
        // already migrated (and none lost) when the record is written; if it
        // cannot be written the store does not open, and the next start
        // finds the table adopted and records nothing more.
        if report.adopted_existing_table {
            store
                .audit
                .record(Action::CredentialTableAdopted {
                    rows_kept: report.rows_kept,
                    duplicates_archived: report.duplicates_archived,
                    incomplete_archived: report.incomplete_archived,
                })
                .await?;
        }
        Ok((store, report))
    }

    /// Connects to an existing, migrated database without changing it: no
    /// migration runs and an SQLite file is not created. For inspection and
    /// dry runs; [`CredentialError::NotMigrated`] when the tables are
    /// missing or older than this version.
    pub async fn open_existing(
        config: &StoreConfig,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<CredentialStore, CredentialError> {
        let mut config = config.clone();
        config.database_url = config.database_url.without_create();
        config.keystore_url = config.keystore_url.map(|u| u.without_create());
        CredentialStore::open_unchanged(config, protection, auditor).await
    }

    /// [`CredentialStore::open_existing`] for commands that only read
    /// (status, dry runs): an SQLite database (and key store) is opened
    /// read-only, so the file stays byte for byte as it was. Give it an
    /// auditor that writes nothing to this database (the tracing line, or
    /// the file log): a read-only connection cannot record an event.
    pub async fn open_read_only(
        config: &StoreConfig,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<CredentialStore, CredentialError> {
        let mut config = config.clone();
        config.database_url = config.database_url.read_only();
        config.keystore_url = config.keystore_url.map(|u| u.read_only());
        CredentialStore::open_unchanged(config, protection, auditor).await
    }

    async fn open_unchanged(
        config: StoreConfig,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<CredentialStore, CredentialError> {
        let db = match crate::connect::connect(&config).await {
            Ok(db) => db,
            Err(CredentialError::DatabaseUnavailable { message })
                if config.database_url.backend() == Backend::Sqlite =>
            {
                return Err(CredentialError::DatabaseUnavailable {
                    message: format!(
                        "{message}: the SQLite database does not exist or cannot be opened, and only a run that may change the database creates it, not a dry run"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let pending = migration::pending(&db).await?;
        if !pending.is_empty() {
            db.close().await?;
            return Err(CredentialError::NotMigrated { pending });
        }
        // A key store configured elsewhere than the database records is
        // named before its tables are looked for.
        if let Err(e) = crate::keystore::location::check(&db, &config, false).await {
            db.close().await?;
            return Err(e);
        }
        let mode = match envelope_mode(&db, &config, false).await {
            Ok(mode) => mode,
            Err(e) => {
                db.close().await?;
                return Err(e);
            }
        };
        let keystore_db = match keystore_config(&config) {
            Some(config) => Some(crate::connect::connect(&config).await?),
            None => None,
        };
        let pending =
            crate::keystore::migration::pending(keystore_db.as_ref().unwrap_or(&db)).await?;
        if !pending.is_empty() {
            db.close().await?;
            if let Some(keystore_db) = keystore_db {
                keystore_db.close().await?;
            }
            return Err(CredentialError::NotMigrated { pending });
        }
        Ok(CredentialStore::assemble(
            db,
            keystore_db,
            &config,
            mode,
            protection,
            auditor,
        ))
    }

    fn assemble(
        db: DatabaseConnection,
        keystore_db: Option<DatabaseConnection>,
        config: &StoreConfig,
        mode: crate::mode::Mode,
        protection: Protection,
        auditor: Auditor,
    ) -> CredentialStore {
        let audit = StoreAudit::new(auditor, &config.database_url);
        let sqlite_writer = audit
            .ledger()
            .map_or_else(Arc::default, DatabaseAuditSink::sqlite_writer);
        let keystore = match (keystore_db, &config.keystore_url) {
            (Some(keystore_db), Some(url)) => KeyStore::new(
                keystore_db,
                url.backend(),
                false,
                format!("the key store at {url}"),
                Arc::default(),
            ),
            _ => KeyStore::new(
                db.clone(),
                config.database_url.backend(),
                true,
                "the credentials database".to_owned(),
                Arc::clone(&sqlite_writer),
            ),
        };
        CredentialStore {
            db,
            backend: config.database_url.backend(),
            database_url: config.database_url.clone(),
            protection,
            plaintext_transition: config.plaintext_transition,
            audit,
            sqlite_writer,
            keystore,
            envelope: mode.envelope,
            envelope_notice: mode.notice.map(Arc::from),
        }
    }

    /// The same store stamping `created_at`/`updated_at` with `clock`
    /// (tests; events take the auditor's own clock).
    pub fn with_clock(mut self, clock: Arc<dyn AuditClock>) -> CredentialStore {
        self.audit = self.audit.with_clock(clock);
        self
    }

    /// The same store recording through `auditor` (e.g. one acting as
    /// another actor: `auditor.acting_as(actor)`).
    pub fn with_auditor(mut self, auditor: Auditor) -> CredentialStore {
        self.audit = StoreAudit::new(auditor, &self.database_url).with_clock_of(&self.audit);
        self
    }

    /// The auditor events go through.
    pub fn auditor(&self) -> &Auditor {
        self.audit.auditor()
    }

    /// The same store (same pool and sink) under other keys, e.g. after a
    /// key was promoted or retired.
    pub fn with_protection(mut self, protection: Protection) -> CredentialStore {
        self.protection = protection;
        self
    }

    /// The keys in use.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Whether the database answers now (a readiness probe): one round
    /// trip, nothing read or written, not audited.
    pub async fn ping(&self) -> Result<(), CredentialError> {
        Ok(self.db.ping().await?)
    }

    /// The connection pool now: connections open, idle among them, and the
    /// most it opens. For metrics.
    pub fn pool_usage(&self) -> PoolUsage {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolUsage {
            PoolUsage {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        // Each getter panics only for another backend; this one is ours.
        match self.backend {
            Backend::Sqlite => of(self.db.get_sqlite_connection_pool()),
            Backend::Postgres => of(self.db.get_postgres_connection_pool()),
            Backend::MySql => of(self.db.get_mysql_connection_pool()),
        }
    }

    /// The database backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, and the key store's when it has its own (waits for
    /// connections in use).
    pub async fn close(self) -> Result<(), CredentialError> {
        if !self.keystore.shared {
            self.keystore.db.close().await?;
        }
        self.db.close().await?;
        Ok(())
    }

    /// Stores `token` as `user`'s credential for `provider`, replacing any
    /// earlier one and keeping its `created_at`. Audited as
    /// `credential_stored`.
    pub async fn put(
        &self,
        user: &UserId,
        provider: &Provider,
        token: &SecretString,
    ) -> Result<(), CredentialError> {
        if let (true, Protection::Encrypted(keyring)) = (self.envelope, &self.protection) {
            return self.put_enveloped(keyring, user, provider, token).await;
        }
        let (stored, key_id) = conceal(&self.protection, user, provider, token.expose_secret())?;
        let _turn = self.sqlite_write_turn().await;
        let txn = self.begin_write().await?;
        self.upsert(&txn, user, provider, stored, key_id, None)
            .await?;
        let action = Action::CredentialStored {
            user: user.to_string(),
            provider: provider.to_string(),
            key_id,
        };
        self.commit_audited(txn, action, Outcome::Success).await
    }

    /// Writes `user`'s row for `provider` in `txn`: inserted, or replaced
    /// keeping its `created_at`. A row is either sealed under a master key
    /// (`key_id`) or enveloped (`data_key_id`), never both.
    pub(crate) async fn upsert(
        &self,
        txn: &DatabaseTransaction,
        user: &UserId,
        provider: &Provider,
        stored: String,
        key_id: Option<KeyId>,
        data_key_id: Option<KeyId>,
    ) -> Result<(), CredentialError> {
        let now = db_now(self.audit.now());
        let row = entity::ActiveModel {
            user_id: Set(user.as_str().to_owned()),
            provider: Set(provider.as_str().to_owned()),
            encrypted_token: Set(stored),
            key_id: Set(key_id.map(|k| k.to_string())),
            data_key_id: Set(data_key_id.map(|k| k.to_string())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        entity::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([entity::Column::UserId, entity::Column::Provider])
                    .update_columns([
                        entity::Column::EncryptedToken,
                        entity::Column::KeyId,
                        entity::Column::DataKeyId,
                        entity::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        Ok(())
    }

    /// `user`'s token for `provider`. The read is recorded as
    /// `credential_accessed` before the token is returned; a value that
    /// does not open (another user's ciphertext, a wrong or missing key,
    /// tampering, refused plaintext) is recorded as `decryption_failed`.
    pub async fn get(
        &self,
        user: &UserId,
        provider: &Provider,
    ) -> Result<SecretString, CredentialError> {
        let stored: Option<String> = entity::Entity::find()
            .select_only()
            .column(entity::Column::EncryptedToken)
            .filter(entity::Column::UserId.eq(user.as_str()))
            .filter(entity::Column::Provider.eq(provider.as_str()))
            .into_tuple()
            .one(&self.db)
            .await?;
        let access = |key_id| Action::CredentialAccessed {
            user: user.to_string(),
            provider: provider.to_string(),
            key_id,
        };
        let Some(stored) = stored else {
            self.audit
                .record_outcome(access(None), Outcome::Failure)
                .await?;
            return Err(CredentialError::NotFound {
                user: user.to_string(),
                provider: provider.to_string(),
            });
        };
        let revealed = match atom_crypto::enveloped_key_id(&stored) {
            Ok(Some(id)) => self.reveal_enveloped(user, provider, &stored, id).await?,
            _ => reveal(
                &self.protection,
                self.plaintext_transition,
                user,
                provider,
                &stored,
            ),
        };
        match revealed {
            Ok((secret, key_id)) => {
                self.audit.record(access(key_id)).await?;
                Ok(secret)
            }
            Err(refusal) => {
                metrics::counter!("atom_decrypt_failures_total", "reason" => refusal.reason.as_str())
                    .increment(1);
                self.audit
                    .record(Action::DecryptionFailed {
                        subject: Subject::Credential {
                            user: user.to_string(),
                            provider: provider.to_string(),
                        },
                        key_id: refusal.key_id,
                        reason: refusal.reason,
                    })
                    .await?;
                Err(refusal.error)
            }
        }
    }

    /// `user`'s credentials by provider: names, key ids and timestamps,
    /// never tokens (the token column is not even read). Audited as
    /// `credentials_listed` before the list is returned.
    pub async fn list(&self, user: &UserId) -> Result<Vec<CredentialInfo>, CredentialError> {
        let rows: Vec<ListedRow> = entity::Entity::find()
            .select_only()
            .columns([
                entity::Column::Provider,
                entity::Column::KeyId,
                entity::Column::DataKeyId,
                entity::Column::CreatedAt,
                entity::Column::UpdatedAt,
            ])
            .filter(entity::Column::UserId.eq(user.as_str()))
            .order_by_asc(entity::Column::Provider)
            .into_tuple()
            .all(&self.db)
            .await?;
        let infos = rows
            .into_iter()
            .map(|(provider, key_id, data_key_id, created, updated)| {
                info(&provider, key_id.or(data_key_id), created, updated)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.audit
            .record(Action::CredentialsListed {
                user: user.to_string(),
                count: infos.len() as u64,
            })
            .await?;
        Ok(infos)
    }

    /// Deletes `user`'s credential for `provider`; `false` when there was
    /// none. Audited as `credential_deleted` (outcome `failure` when there
    /// was nothing to delete).
    pub async fn delete(
        &self,
        user: &UserId,
        provider: &Provider,
    ) -> Result<bool, CredentialError> {
        let _turn = self.sqlite_write_turn().await;
        let txn = self.begin_write().await?;
        let removed = entity::Entity::delete_many()
            .filter(entity::Column::UserId.eq(user.as_str()))
            .filter(entity::Column::Provider.eq(provider.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        let action = Action::CredentialDeleted {
            user: user.to_string(),
            provider: provider.to_string(),
        };
        let outcome = if removed > 0 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.commit_audited(txn, action, outcome).await?;
        Ok(removed > 0)
    }

    /// Erases every credential of `user` (right to erasure), including
    /// archived rows, and returns what was removed. Audited as
    /// `user_credentials_erased`.
    pub async fn erase_user(&self, user: &UserId) -> Result<ErasureReport, CredentialError> {
        use entity::Column as C;
        // Crypto-shredding: the user's data keys go first: in this
        // transaction when the key store shares the database, before it
        // (and before this store's write turn) otherwise.
        let destroyed_apart = match self.keystore.shared {
            true => None,
            false => Some(self.destroy_data_keys_apart(user).await?),
        };
        let _turn = self.sqlite_write_turn().await;
        let txn = self.begin_write().await?;
        let destroyed_here = match destroyed_apart {
            Some(_) => Ok(0),
            None => self.destroy_data_keys(&txn, user).await,
        };
        let data_keys_destroyed = match destroyed_here {
            Ok(n) => n + destroyed_apart.unwrap_or(0),
            Err(e) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %CredentialError::from(rollback), "rollback after a failed key destruction");
                }
                return Err(e);
            }
        };
        let columns = [
            C::Provider,
            C::KeyId,
            C::DataKeyId,
            C::CreatedAt,
            C::UpdatedAt,
        ];
        let rows = match self.db.get_database_backend() {
            // One statement removes and reports, so a row inserted
            // concurrently is either reported or left for a later erasure.
            DbBackend::Postgres | DbBackend::Sqlite => {
                let delete = Query::delete()
                    .from_table(entity::Entity)
                    .and_where(C::UserId.eq(user.as_str()))
                    .returning(Query::returning().columns(columns))
                    .to_owned();
                txn.query_all(&delete).await?
            }
            // No RETURNING: lock the user's rows (InnoDB's next-key locks also
            // keep new ones out), then delete them.
            _ => {
                let select = Query::select()
                    .columns(columns)
                    .from(entity::Entity)
                    .and_where(C::UserId.eq(user.as_str()))
                    .lock(LockType::Update)
                    .to_owned();
                let rows = txn.query_all(&select).await?;
                entity::Entity::delete_many()
                    .filter(C::UserId.eq(user.as_str()))
                    .exec(&txn)
                    .await?;
                rows
            }
        };
        let mut removed = rows.iter().map(info_row).collect::<Result<Vec<_>, _>>()?;
        removed.sort_by(|a, b| a.provider.cmp(&b.provider));
        let archived = Query::delete()
            .from_table(ARCHIVE_TABLE)
            .and_where(Expr::col("user_id").eq(user.as_str()))
            .to_owned();
        let archived_removed = txn.execute(&archived).await?.rows_affected();
        let action = Action::UserCredentialsErased {
            user: user.to_string(),
            count: removed.len() as u64,
        };
        self.commit_audited(txn, action, Outcome::Success).await?;
        Ok(ErasureReport {
            user: user.clone(),
            removed,
            archived_removed,
            data_keys_destroyed,
        })
    }

    /// This store's turn to write on SQLite (see `sqlite_writer`); hold it
    /// until the transaction ends. `None` on the other backends, whose
    /// writers do not exclude each other.
    pub(crate) async fn sqlite_write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            _ => None,
        }
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`), so two writers queue on the busy
    /// timeout instead of one failing when it upgrades a read lock.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, CredentialError> {
        let mut options = TransactionOptions::default();
        if self.backend == Backend::Sqlite {
            options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
        }
        Ok(self.db.begin_with_options(options).await?)
    }

    /// Records `action`, then commits; see the module documentation.
    pub(crate) async fn commit_audited(
        &self,
        txn: DatabaseTransaction,
        action: Action,
        outcome: Outcome,
    ) -> Result<(), CredentialError> {
        let recorded = self
            .audit
            .record_before_commit(&txn, action.clone(), Some(outcome))
            .await;
        let riders = match recorded {
            Ok(riders) => riders,
            Err(e) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %CredentialError::from(rollback), "rollback after audit failure");
                }
                return Err(e);
            }
        };
        if let Err(e) = txn.commit().await {
            // It did not commit: the riders go back to the group commit.
            if let Some(riders) = riders {
                riders.put_back();
            }
            let e = CredentialError::from(e);
            // With the event in the transaction, nothing claims the change.
            if self.audit.ledger().is_none()
                && let Err(audit) = self.audit.record_outcome(action, Outcome::Failure).await
            {
                tracing::error!(error = %audit, "could not record that a commit failed");
            }
            return Err(e);
        }
        if let Some(riders) = riders {
            riders.committed();
        }
        if let Some(ledger) = self.audit.ledger() {
            // Its event, pending on a server database, is chained soon.
            ledger.nudge();
        }
        Ok(())
    }

    /// Records `action` during the write transaction `txn` (in it when the
    /// audit table is in this database). An error means it is not
    /// recorded: the caller returns it, and dropping `txn` rolls it back.
    pub(crate) async fn record_in(
        &self,
        txn: &DatabaseTransaction,
        action: Action,
        outcome: Option<Outcome>,
    ) -> Result<(), CredentialError> {
        self.audit.record_on(txn, true, action, outcome).await
    }
}

/// A row as `list` reads it: provider, key id, data key id, created and
/// updated.
type ListedRow = (
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
);

fn info(
    provider: &str,
    key_id: Option<String>,
    created: NaiveDateTime,
    updated: NaiveDateTime,
) -> Result<CredentialInfo, CredentialError> {
    Ok(CredentialInfo {
        provider: Provider::parse(provider)?,
        key_id: key_id.and_then(|k| k.parse::<KeyId>().ok()),
        created_at: from_db(created),
        updated_at: from_db(updated),
    })
}

fn info_row(row: &QueryResult) -> Result<CredentialInfo, CredentialError> {
    let key_id: Option<String> = row.try_get("", "key_id")?;
    let data_key_id: Option<String> = row.try_get("", "data_key_id")?;
    info(
        &row.try_get::<String>("", "provider")?,
        key_id.or(data_key_id),
        row.try_get("", "created_at")?,
        row.try_get("", "updated_at")?,
    )
}

/// The settings of the key store's own database, when it has one: the
/// credentials settings with the key store's URL.
/// The envelope mode of the store in `db` for `config`: the caller's own
/// choice (a library caller), or the setting resolved against the mode
/// recorded in the database (recorded when `may_record`).
async fn envelope_mode(
    db: &DatabaseConnection,
    config: &StoreConfig,
    may_record: bool,
) -> Result<crate::mode::Mode, CredentialError> {
    match config.envelope_setting {
        Some(setting) => crate::mode::resolve(db, setting, may_record).await,
        None => Ok(crate::mode::Mode {
            envelope: config.envelope,
            notice: None,
        }),
    }
}

fn keystore_config(config: &StoreConfig) -> Option<StoreConfig> {
    let url = config.keystore_url.clone()?;
    let mut keystore = config.clone();
    keystore.database_url = url;
    keystore.keystore_url = None;
    Some(keystore)
}
