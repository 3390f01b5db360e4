//! The sea-orm entity of `user_credentials`.
//!
//! `key_id` names the key that sealed `encrypted_token` (12 hex digits);
//! it is NULL for legacy Fernet tokens and plaintext rows, so rotation finds
//! every row not under the primary key with a plain query and never has to
//! decrypt to know. `data_key_id` names the data key of an enveloped
//! (`atom:v2`) row, whose `key_id` is NULL: such a row hangs off its user's
//! data key, not off a master key.

#![allow(unreachable_pub, missing_docs)] // generated items; the module is crate-private

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_credentials")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: String,
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub encrypted_token: String,
    pub key_id: Option<String>,
    pub data_key_id: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

// A hand-written Debug so that a model in a log never shows its token
// (DeriveEntityModel requires nothing of Debug).
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("key_id", &self.key_id)
            .field("data_key_id", &self.data_key_id)
            .field("encrypted_token_len", &self.encrypted_token.len())
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Table and column names shared with the migrations and raw statements.
pub(crate) const TABLE: &str = "user_credentials";
/// Where duplicates and incomplete legacy rows are kept.
pub(crate) const ARCHIVE_TABLE: &str = "user_credentials_archive";
/// The unique index on (user_id, provider).
pub(crate) const UNIQUE_INDEX: &str = "ux_user_credentials_user_provider";
