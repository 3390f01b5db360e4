//! The key store's schema: `atom_user_keys`, with migrations recorded in
//! `atom_keystore_migrations` so that the key store can live in a database
//! of its own (`ATOM_KEYSTORE_URL`) or beside the credentials.

use sea_orm::DatabaseConnection;
use sea_orm_migration::{prelude::*, schema::*};

use crate::error::CredentialError;
use crate::migration::{text_col, time_col, token_col};

/// The table of wrapped data keys.
pub(crate) const KEYS_TABLE: &str = "atom_user_keys";

pub(crate) struct KeyStoreMigrator;

#[async_trait::async_trait]
impl MigratorTrait for KeyStoreMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUserKeys)]
    }

    fn migration_table_name() -> DynIden {
        "atom_keystore_migrations".into_iden()
    }
}

/// Applies the key store's pending migrations; the caller holds the
/// database's migration lock.
pub(crate) async fn run_unlocked(db: &DatabaseConnection) -> Result<Vec<String>, CredentialError> {
    let pending: Vec<String> = KeyStoreMigrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    KeyStoreMigrator::up(db, None).await?;
    if !pending.is_empty() {
        tracing::info!(applied = %pending.join(", "), "key store migrated");
    }
    Ok(pending)
}

/// The key store's migrations not yet applied, read without changing
/// anything.
pub(crate) async fn pending(db: &DatabaseConnection) -> Result<Vec<String>, CredentialError> {
    Ok(KeyStoreMigrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// `atom_user_keys`: one row per data key, wrapped under a master key.
///
/// - `id` is the primary key (a master rotation walks it in order, as the
///   row rewrap walks `user_credentials.id`); `(user_id, key_id)` is
///   unique: a user has one data key, two while it is rotated.
/// - `seq` orders a user's keys: new values are sealed under the highest.
///   `(user_id, seq)` is unique, so two first writes of one user racing
///   end with one key (the loser reads the winner's).
/// - `kek_id` names the master key that wraps the key, so that rotating
///   the master key finds the keys to rewrap with a plain query.
#[derive(DeriveMigrationName)]
struct CreateUserKeys;

#[async_trait::async_trait]
impl MigrationTrait for CreateUserKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(UserKeys::Table)
                    .if_not_exists()
                    .col(big_pk_auto(UserKeys::Id))
                    .col(text_col(backend, UserKeys::UserId, 255))
                    .col(text_col(backend, UserKeys::KeyId, 16))
                    .col(big_integer(UserKeys::Seq))
                    .col(string_len(UserKeys::KekId, 16))
                    .col(token_col(backend, UserKeys::WrappedKey))
                    .col(time_col(backend, UserKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_atom_user_keys_user_key")
                    .table(UserKeys::Table)
                    .col(UserKeys::UserId)
                    .col(UserKeys::KeyId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_atom_user_keys_user_seq")
                    .table(UserKeys::Table)
                    .col(UserKeys::UserId)
                    .col(UserKeys::Seq)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UserKeys {
    #[sea_orm(iden = "atom_user_keys")]
    Table,
    Id,
    UserId,
    KeyId,
    Seq,
    KekId,
    WrappedKey,
    CreatedAt,
}
