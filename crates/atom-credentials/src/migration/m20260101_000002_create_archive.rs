//! Creates `user_credentials_archive`: rows that adoption took out of
//! `user_credentials` (older duplicates, incomplete rows), kept verbatim so
//! that no token is lost. `original_id` is unique, which makes archiving
//! idempotent when an interrupted migration runs again.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20260101_000001_create_user_credentials::{text_col, time_col};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        // Copied columns are nullable: a legacy row may lack any of them.
        let nullable = |mut c: ColumnDef| c.null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Archive::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Archive::Id))
                    .col(big_integer_uniq(Archive::OriginalId))
                    .col(nullable(text_col(backend, Archive::UserId, 255)))
                    .col(nullable(text_col(backend, Archive::Provider, 255)))
                    .col(text_null(Archive::EncryptedToken))
                    .col(string_len_null(Archive::KeyId, 16))
                    .col(nullable(time_col(backend, Archive::CreatedAt)))
                    .col(nullable(time_col(backend, Archive::UpdatedAt)))
                    .col(time_col(backend, Archive::ArchivedAt))
                    .col(string_len(Archive::Reason, 32))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Archive {
    #[sea_orm(iden = "user_credentials_archive")]
    Table,
    Id,
    OriginalId,
    UserId,
    Provider,
    EncryptedToken,
    KeyId,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
    Reason,
}
