//! What the migrations did, collected while they run.
//!
//! `MigratorTrait::up` returns nothing, so each migration adds its findings
//! to a task-local report that [`collect`] sets up around the run.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;

use sea_orm::DbErr;

/// What a start-up migration did. Logged, and returned so that the CLI can
/// show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Names of the migrations applied by this run (empty: up to date).
    pub applied: Vec<String>,
    /// An existing `user_credentials` table (e.g. the Python original's)
    /// was adopted rather than created.
    pub adopted_existing_table: bool,
    /// Rows in `user_credentials` after the migration.
    pub rows_kept: u64,
    /// Older rows of a duplicated (user_id, provider) moved to the archive.
    pub duplicates_archived: u64,
    /// Rows without a user id, provider or token moved to the archive.
    pub incomplete_archived: u64,
    /// Rows whose missing `created_at`/`updated_at` was set to the
    /// migration time.
    pub timestamps_filled: u64,
    /// Sealed rows whose `key_id` was filled in from the token.
    pub key_ids_filled: u64,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            return f.write_str("up to date");
        }
        write!(f, "applied {}", self.applied.join(", "))?;
        if self.adopted_existing_table {
            write!(
                f,
                "; adopted the existing user_credentials table: {} rows kept, {} duplicates and {} incomplete rows moved to user_credentials_archive, {} timestamps filled, {} key ids filled",
                self.rows_kept,
                self.duplicates_archived,
                self.incomplete_archived,
                self.timestamps_filled,
                self.key_ids_filled
            )?;
        }
        Ok(())
    }
}

tokio::task_local! {
    static REPORT: RefCell<MigrationReport>;
}

/// Runs `migrations` with a fresh report in scope and returns it.
pub(super) async fn collect(
    migrations: impl Future<Output = Result<(), DbErr>>,
) -> Result<MigrationReport, DbErr> {
    REPORT
        .scope(RefCell::new(MigrationReport::default()), async {
            migrations.await?;
            Ok(REPORT.with(|r| r.borrow().clone()))
        })
        .await
}

/// Adds findings to the report in scope (none outside [`collect`], e.g.
/// when a migration is run by the sea-orm CLI).
pub(super) fn update(f: impl FnOnce(&mut MigrationReport)) {
    let _ = REPORT.try_with(|r| f(&mut r.borrow_mut()));
}
