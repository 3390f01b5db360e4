//! Schema migrations of the credential tables, run programmatically at
//! start-up. They are idempotent (each checks what exists before it acts)
//! and recorded in their own table, `atom_credentials_migrations`, so that
//! a database shared with other sea-orm applications does not clash.
//!
//! 1. create `user_credentials` if it does not exist (with `key_id`);
//! 2. create the archive table;
//! 3. add and fill `key_id` on a table made by the Python original;
//! 4. adopt such a table: archive incomplete and duplicate rows (the newest
//!    row of a (user_id, provider) stays), then add the unique index.

mod m20260101_000001_create_user_credentials;
mod m20260101_000002_create_archive;
mod m20260101_000003_add_key_id;
mod m20260101_000004_unique_user_provider;
mod report;

use sea_orm::DatabaseConnection;
use sea_orm_migration::prelude::*;

pub use report::MigrationReport;

use crate::error::CredentialError;

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
        ]
    }

    fn migration_table_name() -> DynIden {
        "atom_credentials_migrations".into_iden()
    }
}

/// Applies every pending migration and reports what was done.
pub(crate) async fn run(db: &DatabaseConnection) -> Result<MigrationReport, CredentialError> {
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
        tracing::info!(%report, "credential tables migrated");
    }
    Ok(report)
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
