//! Adopts a `user_credentials` table written by the Python original (no
//! unique index, nullable columns, SQLAlchemy timestamps, several rows for
//! one user and provider) and adds the unique index on (user_id, provider).
//!
//! No row is lost: a row that cannot be a credential (no user id, provider
//! or token, or identifiers that do not parse) and every older duplicate are
//! copied to `user_credentials_archive` before they leave the table. The
//! newest row of a duplicated pair (latest `updated_at`, then `created_at`,
//! then highest id) stays. Each step is idempotent, so an interrupted run
//! simply runs again.

use chrono::NaiveDateTime;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};
use sea_orm_migration::prelude::*;

use super::report;
use crate::entity::{ARCHIVE_TABLE, TABLE, UNIQUE_INDEX};
use crate::provider::Provider;
use crate::sql::statement;
use crate::user_id::UserId;

/// Rows read per query while scanning, and ids per archive statement.
const PAGE: usize = 500;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let now = crate::time::db_now(chrono::Utc::now());
        let incomplete = archive_incomplete(manager, now).await?;
        let filled = fill_timestamps(manager, now).await?;
        tighten_columns(manager).await?;
        let duplicates = archive_duplicates(manager, now).await?;
        if !manager.has_index(TABLE, UNIQUE_INDEX).await? {
            manager
                .create_index(
                    Index::create()
                        .name(UNIQUE_INDEX)
                        .table(TABLE)
                        .col("user_id")
                        .col("provider")
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        let kept = count(manager).await?;
        report::update(|r| {
            r.incomplete_archived += incomplete;
            r.timestamps_filled += filled;
            r.duplicates_archived += duplicates;
            r.rows_kept = kept;
        });
        Ok(())
    }
}

/// Moves rows that cannot be a credential to the archive.
async fn archive_incomplete(manager: &SchemaManager<'_>, now: NaiveDateTime) -> Result<u64, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut last = i64::MIN;
    let mut bad = Vec::new();
    loop {
        let rows = db
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, user_id, provider, encrypted_token FROM {TABLE} WHERE id > ? ORDER BY id LIMIT {PAGE}"
                ),
                vec![last.into()],
            ))
            .await?;
        let Some(row) = rows.last() else { break };
        last = row.try_get("", "id")?;
        for row in &rows {
            let user: Option<String> = row.try_get("", "user_id")?;
            let provider: Option<String> = row.try_get("", "provider")?;
            let token: Option<String> = row.try_get("", "encrypted_token")?;
            let usable = token.is_some()
                && user.as_deref().is_some_and(|u| UserId::parse(u).is_ok())
                && provider
                    .as_deref()
                    .is_some_and(|p| Provider::parse(p).is_ok());
            if !usable {
                bad.push(row.try_get::<i64>("", "id")?);
            }
        }
        if rows.len() < PAGE {
            break;
        }
    }
    archive(manager, &bad, "incomplete", now).await
}

/// Sets missing timestamps: `created_at` from `updated_at` or now, then
/// `updated_at` from `created_at`.
async fn fill_timestamps(manager: &SchemaManager<'_>, now: NaiveDateTime) -> Result<u64, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let a = db
        .execute_raw(statement(
            backend,
            &format!(
                "UPDATE {TABLE} SET created_at = COALESCE(updated_at, ?) WHERE created_at IS NULL"
            ),
            vec![now.into()],
        ))
        .await?
        .rows_affected();
    let b = db
        .execute_unprepared(&format!(
            "UPDATE {TABLE} SET updated_at = created_at WHERE updated_at IS NULL"
        ))
        .await?
        .rows_affected();
    Ok(a + b)
}

/// Makes an adopted table's columns what the entity expects, where the
/// backend can change them in place: NOT NULL, and on MariaDB/MySQL
/// byte-wise comparison (the default collation would make `Alice` and
/// `alice` one user, and would let a token compare equal to another that
/// differs in case).
async fn tighten_columns(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        DbBackend::MySql => {
            db.execute_unprepared(&format!(
                "ALTER TABLE {TABLE} \
                 MODIFY user_id varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 MODIFY provider varchar(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 MODIFY encrypted_token text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 MODIFY created_at datetime(6) NOT NULL, \
                 MODIFY updated_at datetime(6) NOT NULL"
            ))
            .await?;
        }
        DbBackend::Postgres => {
            db.execute_unprepared(&format!(
                "ALTER TABLE {TABLE} \
                 ALTER COLUMN user_id SET NOT NULL, ALTER COLUMN provider SET NOT NULL, \
                 ALTER COLUMN encrypted_token SET NOT NULL, \
                 ALTER COLUMN created_at SET NOT NULL, ALTER COLUMN updated_at SET NOT NULL"
            ))
            .await?;
        }
        // SQLite cannot change a column's constraints in place; the store
        // never writes NULL, and the steps above removed every NULL.
        _ => {}
    }
    Ok(())
}

/// Moves every row of a duplicated (user_id, provider) except the newest
/// to the archive.
async fn archive_duplicates(manager: &SchemaManager<'_>, now: NaiveDateTime) -> Result<u64, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let groups = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT user_id, provider FROM {TABLE} GROUP BY user_id, provider HAVING COUNT(*) > 1"
            ),
            vec![],
        ))
        .await?;
    let mut losers = Vec::new();
    for group in &groups {
        let user: String = group.try_get("", "user_id")?;
        let provider: String = group.try_get("", "provider")?;
        let rows = db
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, created_at, updated_at FROM {TABLE} WHERE user_id = ? AND provider = ?"
                ),
                vec![user.into(), provider.into()],
            ))
            .await?;
        let mut ranked = rows
            .iter()
            .map(|r| Ok((rank(r)?, r.try_get::<i64>("", "id")?)))
            .collect::<Result<Vec<_>, DbErr>>()?;
        ranked.sort();
        ranked.pop(); // the newest stays
        losers.extend(ranked.into_iter().map(|(_, id)| id));
    }
    archive(manager, &losers, "duplicate", now).await
}

/// How new a row is: (updated_at, created_at, id). A timestamp that does
/// not decode counts as oldest.
fn rank(row: &QueryResult) -> Result<(Option<NaiveDateTime>, Option<NaiveDateTime>, i64), DbErr> {
    let time = |col| row.try_get::<Option<NaiveDateTime>>("", col).ok().flatten();
    Ok((
        time("updated_at"),
        time("created_at"),
        row.try_get("", "id")?,
    ))
}

/// Copies the rows `ids` to the archive (unless already there) and removes
/// them from `user_credentials`. Returns how many left the table.
async fn archive(
    manager: &SchemaManager<'_>,
    ids: &[i64],
    reason: &str,
    now: NaiveDateTime,
) -> Result<u64, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut moved = 0;
    for chunk in ids.chunks(PAGE) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<Value> = vec![now.into(), reason.into()];
        values.extend(chunk.iter().map(|&id| Value::from(id)));
        db.execute_raw(statement(
            backend,
            &format!(
                "INSERT INTO {ARCHIVE_TABLE} (original_id, user_id, provider, encrypted_token, key_id, created_at, updated_at, archived_at, reason) \
                 SELECT id, user_id, provider, encrypted_token, key_id, created_at, updated_at, ?, ? FROM {TABLE} \
                 WHERE id IN ({marks}) AND id NOT IN (SELECT original_id FROM {ARCHIVE_TABLE})"
            ),
            values,
        ))
        .await?;
        moved += db
            .execute_raw(statement(
                backend,
                &format!(
                    "DELETE FROM {TABLE} WHERE id IN ({marks}) AND id IN (SELECT original_id FROM {ARCHIVE_TABLE})"
                ),
                chunk.iter().map(|&id| Value::from(id)).collect(),
            ))
            .await?
            .rows_affected();
    }
    if moved > 0 {
        tracing::info!(
            rows = moved,
            reason,
            "moved legacy credential rows to {ARCHIVE_TABLE}"
        );
    }
    Ok(moved)
}

async fn count(manager: &SchemaManager<'_>) -> Result<u64, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(statement(
            manager.get_database_backend(),
            &format!("SELECT COUNT(*) AS n FROM {TABLE}"),
            vec![],
        ))
        .await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(<u64 as TryFrom<i64>>::try_from(n).unwrap_or(0))
}
