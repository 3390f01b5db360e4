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
        MIGRATIONS_TABLE.into_iden()
    }
}

/// Applies the key store's pending migrations; the caller holds the
/// database's migration lock.
pub(crate) async fn run_unlocked(db: &DatabaseConnection) -> Result<Vec<String>, CredentialError> {
    adopt_undated_name(db).await?;
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
    // Read as the migrator would, with the undated name counted as the
    // dated one (renaming it would be a write).
    let applied: Vec<String> = if SchemaManager::new(db).has_table(MIGRATIONS_TABLE).await? {
        let select = Query::select()
            .column("version")
            .from(MIGRATIONS_TABLE)
            .to_owned();
        db.query_all(&select)
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "version"))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let applied: Vec<&str> = applied
        .iter()
        .map(|v| {
            if v == UNDATED_NAME {
                CREATE_USER_KEYS
            } else {
                v.as_str()
            }
        })
        .collect();
    Ok(KeyStoreMigrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .filter(|name| !applied.contains(&name.as_str()))
        .collect())
}

/// The key store's migrations table.
const MIGRATIONS_TABLE: &str = "atom_keystore_migrations";

/// The name of the first migration, dated like the credential ones.
const CREATE_USER_KEYS: &str = "m20261201_000001_create_user_keys";

/// The name that migration was recorded under before it had one of its
/// own (sea-orm named it after its file, `migration.rs`). Databases that
/// recorded it keep working: the next migrating start renames the record
/// under the migration lock, and read-only commands count it as applied.
pub(crate) const UNDATED_NAME: &str = "migration";

/// Renames a recorded undated first migration to its dated name (a
/// database migrated by an earlier version), so that the migrator finds
/// every recorded name among its migrations.
async fn adopt_undated_name(db: &DatabaseConnection) -> Result<(), CredentialError> {
    if !SchemaManager::new(db).has_table(MIGRATIONS_TABLE).await? {
        return Ok(());
    }
    let rename = Query::update()
        .table(MIGRATIONS_TABLE)
        .value("version", CREATE_USER_KEYS)
        .and_where(Expr::col("version").eq(UNDATED_NAME))
        .to_owned();
    if db.execute(&rename).await?.rows_affected() > 0 {
        tracing::info!(
            from = UNDATED_NAME,
            to = CREATE_USER_KEYS,
            "key store migration record renamed"
        );
    }
    Ok(())
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
struct CreateUserKeys;

impl MigrationName for CreateUserKeys {
    fn name(&self) -> &str {
        CREATE_USER_KEYS
    }
}

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
