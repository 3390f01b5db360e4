//! Creates `atom_store_settings(name, value)`: facts about the store that
//! every process must agree on, recorded in the credentials database
//! itself. The first is where the key store lives (see
//! `crate::keystore::location`): a fingerprint and a location without
//! credentials, never a password.

use sea_orm_migration::{prelude::*, schema::*};

use crate::keystore::location::SETTINGS_TABLE;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SETTINGS_TABLE)
                    .if_not_exists()
                    .col(string_len(Alias::new("name"), 64).primary_key())
                    .col(string_len(Alias::new("value"), 512))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SETTINGS_TABLE).if_exists().to_owned())
            .await
    }
}
