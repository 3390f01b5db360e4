//! Creates `user_credentials` with the full schema, or notes that a table
//! already exists (the Python original's) for the later migrations to adopt.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use super::report;
use crate::entity::TABLE;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_table(TABLE).await? {
            report::update(|r| r.adopted_existing_table = true);
            return Ok(());
        }
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(UserCredentials::Table)
                    .if_not_exists()
                    .col(big_pk_auto(UserCredentials::Id))
                    .col(text_col(backend, UserCredentials::UserId, 255))
                    .col(text_col(backend, UserCredentials::Provider, 50))
                    .col(token_col(backend, UserCredentials::EncryptedToken))
                    .col(string_len_null(UserCredentials::KeyId, 16))
                    .col(time_col(backend, UserCredentials::CreatedAt))
                    .col(time_col(backend, UserCredentials::UpdatedAt))
                    .to_owned(),
            )
            .await
    }
}

/// A NOT NULL identifier column. MariaDB/MySQL compare text
/// case-insensitively by default, which would make `Alice` and `alice` one
/// user; identifiers are compared byte for byte everywhere.
pub(crate) fn text_col(backend: DbBackend, col: impl IntoIden, len: u32) -> ColumnDef {
    match backend {
        DbBackend::MySql => custom(
            col,
            Alias::new(format!(
                "varchar({len}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )),
        ),
        _ => string_len(col, len),
    }
}

/// The token column: TEXT, compared byte for byte (compare-and-swap).
pub(crate) fn token_col(backend: DbBackend, col: impl IntoIden) -> ColumnDef {
    match backend {
        DbBackend::MySql => custom(
            col,
            Alias::new("text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        ),
        _ => text(col),
    }
}

/// A NOT NULL timestamp read as `chrono::NaiveDateTime` (UTC). MySQL's
/// plain `datetime` drops fractions of a second, hence `datetime(6)`.
pub(crate) fn time_col(backend: DbBackend, col: impl IntoIden) -> ColumnDef {
    match backend {
        DbBackend::MySql => custom(col, Alias::new("datetime(6)")),
        _ => date_time(col),
    }
}

#[derive(DeriveIden)]
enum UserCredentials {
    Table,
    Id,
    UserId,
    Provider,
    EncryptedToken,
    KeyId,
    CreatedAt,
    UpdatedAt,
}
