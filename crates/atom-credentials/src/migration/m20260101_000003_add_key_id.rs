//! Adds `key_id` to a table made by the Python original, fills it for rows
//! already in our sealed form (found structurally, nothing is decrypted).
//! It is deliberately not indexed: rotation walks the primary key in order
//! and filters on it, and an index on a column every rewrap changes would
//! make each of those updates maintain one more B-tree.
//! First it widens such a table's 32-bit `id` (SQLAlchemy's `Integer`) to
//! the 64 bits the store reads.

use atom_crypto::{Classification, classify};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use sea_orm_migration::{prelude::*, schema::*};

use super::report;
use crate::entity::TABLE;
use crate::sql::statement;

/// Rows read per query while filling key ids.
const PAGE: u64 = 1000;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        widen_id(manager).await?;
        if !manager.has_column(TABLE, "key_id").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(TABLE)
                        .add_column(string_len_null("key_id", 16))
                        .to_owned(),
                )
                .await?;
        }
        let filled = fill_key_ids(manager).await?;
        report::update(|r| r.key_ids_filled += filled);
        Ok(())
    }
}

/// `id` as BIGINT. A no-op for tables this crate created; SQLite's INTEGER
/// is 64-bit already.
async fn widen_id(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_unprepared(&format!("ALTER TABLE {TABLE} ALTER COLUMN id TYPE bigint"))
                .await?;
        }
        DbBackend::MySql => {
            db.execute_unprepared(&format!(
                "ALTER TABLE {TABLE} MODIFY id bigint NOT NULL AUTO_INCREMENT"
            ))
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Sets `key_id` on sealed rows that lack it, page by page (keyset).
async fn fill_key_ids(manager: &SchemaManager<'_>) -> Result<u64, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut last = i64::MIN;
    let mut filled = 0;
    loop {
        let rows = db
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, encrypted_token FROM {TABLE} WHERE key_id IS NULL AND id > ? ORDER BY id LIMIT {PAGE}"
                ),
                vec![last.into()],
            ))
            .await?;
        let Some(row) = rows.last() else { break };
        last = row.try_get("", "id")?;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let token: Option<String> = row.try_get("", "encrypted_token")?;
            if let Some(Ok(Classification::Sealed(key_id))) = token.as_deref().map(classify) {
                db.execute_raw(statement(
                    backend,
                    &format!("UPDATE {TABLE} SET key_id = ? WHERE id = ?"),
                    vec![Value::from(key_id.to_string()), id.into()],
                ))
                .await?;
                filled += 1;
            }
        }
        if (rows.len() as u64) < PAGE {
            break;
        }
    }
    Ok(filled)
}
