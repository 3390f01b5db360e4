//! Adds `data_key_id` to `user_credentials`: the data key that sealed an
//! enveloped (`atom:v2`) row. Such a row has no master `key_id`; rotation
//! of the master key leaves it alone (it rewraps the data keys instead),
//! and the row's owner's data key is found by this id.

use sea_orm_migration::{prelude::*, schema::*};

use crate::entity::TABLE;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column(TABLE, "data_key_id").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(TABLE)
                        .add_column(string_len_null("data_key_id", 16))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
