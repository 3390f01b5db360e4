//! Schema migrations of the credential tables, run programmatically at
//! start-up. They are idempotent (each checks what exists before it acts)
//! and recorded in their own table, `atom_credentials_migrations`, so that
//! a database shared with other sea-orm applications does not clash.
//!
//! 1. create `user_credentials` if it does not exist (with `key_id`);
//! 2. create the archive table;
//! 3. add and fill `key_id` on a table made by the Python original;
//! 4. adopt such a table: archive incomplete and duplicate rows (the newest
//!    row of a (user_id, provider) stays), then add the unique index;
//! 5. add `data_key_id` for enveloped rows;
//! 6. create the audit trail's tables, `audit_events` and
//!    `audit_chain_head` (see `crate::audit_table`);
//! 7. create `atom_store_settings`, where the store records where its key
//!    store lives (see `crate::keystore::location`).
//!
//! The key store (`atom_user_keys`) has migrations of its own
//! (`crate::keystore::migration`), recorded in `atom_keystore_migrations`,
//! since it may live in another database.

mod m20260101_000001_create_user_credentials;
mod m20260101_000002_create_archive;
mod m20260101_000003_add_key_id;
mod m20260101_000004_unique_user_provider;
mod m20260101_000005_add_data_key_id;
mod m20260101_000006_create_audit_events;
mod m20261207_000007_create_store_settings;
mod report;

use std::num::NonZeroU32;

use sea_orm::DatabaseConnection;
use sea_orm_migration::prelude::*;

pub(crate) use m20260101_000001_create_user_credentials::{text_col, time_col, token_col};
pub use report::MigrationReport;

use crate::error::CredentialError;
use crate::url::{Backend, DatabaseUrl};

/// The credential migrations.
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_user_credentials::Migration),
            Box::new(m20260101_000002_create_archive::Migration),
            Box::new(m20260101_000003_add_key_id::Migration),
            Box::new(m20260101_000004_unique_user_provider::Migration),
            Box::new(m20260101_000005_add_data_key_id::Migration),
            Box::new(m20260101_000006_create_audit_events::Migration),
            Box::new(m20261207_000007_create_store_settings::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "atom_credentials_migrations".into_iden()
    }
}

/// [`run`] on a connection of its own to `config.database_url`, closed
/// before this returns (so that no pooled connection prepared statements
/// against the old schema).
pub(crate) async fn run_alone(
    config: &crate::config::StoreConfig,
) -> Result<MigrationReport, CredentialError> {
    let migrating =
        crate::connect::connect(&config.clone().with_max_connections(NonZeroU32::MIN)).await?;
    let report = run(
        &migrating,
        &config.database_url,
        config.keystore_url.is_none(),
    )
    .await;
    migrating.close().await?;
    report
}

/// Applies every pending migration and reports what was done. Processes
/// starting at once on one database take turns (see [`MigrationLock`]):
/// the first migrates, the others then find nothing to do.
///
/// `db` must be a pool of one connection, so that PostgreSQL's and MySQL's
/// session locks and the migrations share a session.
pub(crate) async fn run(
    db: &DatabaseConnection,
    url: &DatabaseUrl,
    with_keystore: bool,
) -> Result<MigrationReport, CredentialError> {
    let lock = MigrationLock::acquire(db, url).await?;
    let result = async {
        let report = run_locked(db).await?;
        // A key store in the credentials database is migrated under the
        // same lock, in the same session.
        if with_keystore {
            crate::keystore::migration::run_unlocked(db).await?;
        }
        Ok::<_, CredentialError>(report)
    }
    .await;
    // A failed migration's error wins over a failed release (the session
    // ends when the caller closes the pool, which releases the lock too).
    let released = lock.release(db).await;
    let report = result?;
    released?;
    Ok(report)
}

async fn run_locked(db: &DatabaseConnection) -> Result<MigrationReport, CredentialError> {
    let pending: Vec<String> = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let mut report = report::collect(Migrator::up(db, None)).await?;
    report.applied = pending;
    if report.applied.is_empty() {
        tracing::debug!("credential tables are up to date");
    } else {
        // Callers print the report once, with the store they open.
        tracing::debug!(%report, "credential tables migrated");
    }
    Ok(report)
}

/// The names of every migration of this version, in order.
pub(crate) fn all_names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// The migrations not yet applied, read without changing anything (not even
/// creating the table that records them).
pub(crate) async fn pending(db: &DatabaseConnection) -> Result<Vec<String>, CredentialError> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// Runs `migrate` under the migration lock of `url` (for the key store in
/// a database of its own).
pub(crate) async fn locked<T>(
    db: &DatabaseConnection,
    url: &DatabaseUrl,
    migrate: impl std::future::Future<Output = Result<T, CredentialError>>,
) -> Result<T, CredentialError> {
    let lock = MigrationLock::acquire(db, url).await?;
    let result = migrate.await;
    let released = lock.release(db).await;
    let value = result?;
    released?;
    Ok(value)
}

/// Serializes the migrations of several processes on one database, so that
/// two first starts do not both create tables or record a migration (the
/// loser would fail on the migrations table's key, or adopt a legacy table
/// twice).
///
/// - PostgreSQL: a session advisory lock; MySQL/MariaDB: `GET_LOCK`. Both
///   are released at the end or when the session ends (a crashed migrator
///   cannot leave them held).
/// - SQLite: an exclusive `flock` on the database file itself. SQLite locks
///   with `fcntl` record locks, which on Linux are independent of `flock`,
///   so this excludes other migrators and nothing else; it is released when
///   the file is closed, including by a crash.
enum MigrationLock {
    Session,
    File(std::fs::File),
    None,
}

/// The PostgreSQL advisory lock key: "atommigr" as a big-endian integer.
const PG_LOCK_KEY: i64 = 0x6174_6f6d_6d69_6772;
/// The MySQL named lock.
const MYSQL_LOCK_NAME: &str = "atom_credentials_migrations";
/// How long a start waits for another to finish migrating.
const LOCK_WAIT_SECS: u32 = 300;

impl MigrationLock {
    async fn acquire(
        db: &DatabaseConnection,
        url: &DatabaseUrl,
    ) -> Result<MigrationLock, CredentialError> {
        use sea_orm::ConnectionTrait as _;
        match url.backend() {
            Backend::Postgres => {
                db.execute_unprepared(&format!("SELECT pg_advisory_lock({PG_LOCK_KEY})"))
                    .await?;
                Ok(MigrationLock::Session)
            }
            Backend::MySql => {
                let got = db
                    .query_one_raw(crate::sql::statement(
                        sea_orm::DbBackend::MySql,
                        "SELECT GET_LOCK(?, ?) AS got",
                        vec![MYSQL_LOCK_NAME.into(), LOCK_WAIT_SECS.into()],
                    ))
                    .await?
                    .and_then(|row| row.try_get::<Option<i64>>("", "got").ok().flatten());
                if got == Some(1) {
                    Ok(MigrationLock::Session)
                } else {
                    Err(CredentialError::Migration {
                        message: format!(
                            "another process has been migrating the credential tables for {LOCK_WAIT_SECS} s (MySQL lock {MYSQL_LOCK_NAME}); check for a stuck start-up, then retry"
                        ),
                    })
                }
            }
            Backend::Sqlite => {
                let Some(path) = url.sqlite_file() else {
                    return Ok(MigrationLock::None);
                };
                let locked = tokio::task::spawn_blocking(move || {
                    let file = std::fs::File::open(&path)?;
                    file.lock()?;
                    Ok::<_, std::io::Error>(file)
                })
                .await
                .map_err(|e| CredentialError::Migration {
                    message: format!("waiting for the migration lock failed: {e}"),
                })?
                .map_err(|e| CredentialError::Migration {
                    message: format!(
                        "cannot lock the SQLite database file for migrating: {e}; check that it is readable"
                    ),
                })?;
                Ok(MigrationLock::File(locked))
            }
        }
    }

    async fn release(self, db: &DatabaseConnection) -> Result<(), CredentialError> {
        use sea_orm::ConnectionTrait as _;
        match self {
            MigrationLock::Session => {
                let sql = match db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => {
                        format!("SELECT pg_advisory_unlock({PG_LOCK_KEY})")
                    }
                    _ => format!("SELECT RELEASE_LOCK('{MYSQL_LOCK_NAME}')"),
                };
                db.execute_unprepared(&sql).await?;
            }
            // Closing the file releases the lock.
            MigrationLock::File(file) => drop(file),
            MigrationLock::None => {}
        }
        Ok(())
    }
}

/// The schema of a credential database, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaState {
    /// The database, password redacted.
    pub database: String,
    /// Whether the database exists (an SQLite file that does not exist
    /// does not; a server database always does once it answers).
    pub exists: bool,
    /// Migrations applied, in order.
    pub applied: Vec<String>,
    /// Migrations not yet applied, in order.
    pub pending: Vec<String>,
}

/// Reads the schema state of `config`'s database: which migrations are
/// applied and which are pending. Creates nothing, migrates nothing.
pub async fn schema_state(
    config: &crate::config::StoreConfig,
) -> Result<SchemaState, CredentialError> {
    // Read-only: `atom db status` leaves an SQLite file byte for byte as
    // it was (no WAL switch, no new file).
    let url = config.database_url.read_only();
    let all: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let mut state = SchemaState {
        database: config.database_url.without_create().to_string(),
        exists: !url.sqlite_file_missing(),
        applied: Vec::new(),
        pending: all.clone(),
    };
    if !state.exists {
        return Ok(state);
    }
    let mut single = config.clone().with_max_connections(NonZeroU32::MIN);
    single.database_url = url;
    let db = crate::connect::connect(&single).await?;
    let pending = pending(&db).await;
    db.close().await?;
    state.pending = pending?;
    state.applied = all
        .into_iter()
        .filter(|m| !state.pending.contains(m))
        .collect();
    Ok(state)
}
