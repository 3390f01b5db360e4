//! `status()`: what the table holds, by key, without decrypting anything.

use atom_audit::Action;
use atom_crypto::{Classification, KeyCount, KeyId, classify};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QuerySelect};

use crate::entity;

use crate::entity::TABLE;
use crate::error::CredentialError;
use crate::store::CredentialStore;

/// Rows read per query when classifying rows without a key id.
const PAGE: u16 = 1000;

/// Counts of stored credentials by how they are protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStatus {
    /// All rows.
    pub total: u64,
    /// Rows sealed under each key, with its role in the keyring, most rows
    /// first (the shape every status report shares).
    pub by_key: Vec<KeyCount>,
    /// Bare Fernet tokens of the Python original (no key id).
    pub legacy: u64,
    /// Plaintext rows from the no-key development mode.
    pub plaintext: u64,
    /// Rows whose value or key id is not well formed.
    pub malformed: u64,
    /// Rows sealed under their user's data key (`atom:v2`), which hang off
    /// the data keys below rather than a master key.
    pub enveloped: u64,
    /// The users' data keys, by the master key that wraps them.
    pub data_keys: crate::DataKeyCounts,
    /// The key that seals new values; `None` in plaintext mode.
    pub primary: Option<KeyId>,
    /// Rows a rewrap would process: those not sealed under the primary key
    /// or, with envelope encryption on, every row not yet enveloped.
    pub needs_rewrap: u64,
    /// Data keys not wrapped under the primary key (what a master key
    /// rotation rewraps).
    pub data_keys_need_rewrap: u64,
    /// The first [`MAX_LISTED_ROWS`] plaintext rows, so that they can be
    /// checked before anything seals them.
    pub plaintext_rows: Vec<RowRef>,
}

/// At most this many plaintext rows are listed in a [`StoreStatus`].
pub const MAX_LISTED_ROWS: usize = 1000;

/// A row named by its id, user and provider (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowRef {
    /// The row's id.
    pub id: i64,
    /// Its user id.
    pub user: String,
    /// Its provider.
    pub provider: String,
}

impl CredentialStore {
    /// Counts rows in total, per key id, legacy and plaintext. Reads key ids
    /// and, for rows without one, classifies the value by its structure;
    /// nothing is decrypted. Audited as `credential_status_read`.
    pub async fn status(&self) -> Result<StoreStatus, CredentialError> {
        let keyring = self.protection.keyring();
        let mut status = StoreStatus {
            primary: keyring.map(|k| k.primary_id()),
            ..StoreStatus::default()
        };
        let groups: Vec<(Option<String>, bool, i64)> = entity::Entity::find()
            .select_only()
            .column(entity::Column::KeyId)
            .column_as(entity::Column::DataKeyId.is_not_null(), "enveloped")
            .column_as(entity::Column::Id.count(), "n")
            .group_by(entity::Column::KeyId)
            .group_by(Expr::col(entity::Column::DataKeyId).is_not_null())
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut unkeyed = 0;
        let mut by_key = Vec::new();
        for (key_id, enveloped, n) in groups {
            let n = u64::try_from(n).unwrap_or(0);
            status.total += n;
            match key_id.map(|k| k.parse::<KeyId>()) {
                _ if enveloped => status.enveloped += n,
                None => unkeyed = n,
                Some(Err(_)) => status.malformed += n,
                Some(Ok(key_id)) => by_key.push((key_id, n)),
            }
        }
        status.by_key = KeyCount::list(by_key, keyring);
        if unkeyed > 0 {
            self.classify_unkeyed(&mut status).await?;
        }
        let under_primary = status
            .by_key
            .iter()
            .filter(|k| Some(k.key_id) == status.primary)
            .map(|k| k.count)
            .sum::<u64>();
        status.needs_rewrap = if self.envelope && keyring.is_some() {
            status.total - status.enveloped
        } else {
            status.total - status.enveloped - under_primary
        };
        status.data_keys = self.data_key_counts().await?;
        status.data_keys_need_rewrap = match status.primary {
            Some(primary) => status.data_keys.not_under(primary),
            None => 0,
        };
        self.audit
            .record(Action::CredentialStatusRead {
                total: status.total,
                needs_rewrap: status.needs_rewrap,
            })
            .await?;
        Ok(status)
    }

    /// Classifies the rows without a key id, page by page.
    async fn classify_unkeyed(&self, status: &mut StoreStatus) -> Result<(), CredentialError> {
        self.each_unkeyed_row(TABLE, &["user_id", "provider", "encrypted_token"], |row| {
            let token: String = row.try_get("", "encrypted_token")?;
            match classify(&token) {
                Ok(Classification::Plaintext) => {
                    status.plaintext += 1;
                    if status.plaintext_rows.len() < MAX_LISTED_ROWS {
                        status.plaintext_rows.push(RowRef {
                            id: row.try_get("", "id")?,
                            user: row.try_get("", "user_id")?,
                            provider: row.try_get("", "provider")?,
                        });
                    }
                }
                Ok(Classification::Legacy) => status.legacy += 1,
                // Sealed without a key id: written behind the store's back.
                _ => status.malformed += 1,
            }
            Ok(())
        })
        .await
    }

    /// Calls `f` with every row of `table` that has no key id (`id` and
    /// `columns`), page by page on the primary key, never OFFSET.
    async fn each_unkeyed_row(
        &self,
        table: &'static str,
        columns: &[&'static str],
        mut f: impl FnMut(&sea_orm::QueryResult) -> Result<(), CredentialError>,
    ) -> Result<(), CredentialError> {
        let mut last = i64::MIN;
        loop {
            let page = Query::select()
                .column("id")
                .columns(columns.iter().copied())
                .from(table)
                .and_where(Expr::col("key_id").is_null())
                .and_where(Expr::col("id").gt(last))
                .apply_if((table == TABLE).then_some(()), |q, ()| {
                    q.and_where(Expr::col("data_key_id").is_null());
                })
                .order_by("id", Order::Asc)
                .limit(u64::from(PAGE))
                .to_owned();
            let rows = self.db.query_all(&page).await?;
            let Some(row) = rows.last() else { break };
            last = row.try_get("", "id")?;
            for row in &rows {
                f(row)?;
            }
            if rows.len() < usize::from(PAGE) {
                break;
            }
        }
        Ok(())
    }
}

/// The rows a key still opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRows {
    /// Rows of `user_credentials` sealed under the key (by key id) or
    /// legacy tokens the key opens.
    pub rows: u64,
    /// The same in the archive table (`user_credentials_archive`).
    pub archived_rows: u64,
    /// Users' data keys wrapped under the key: destroying it would make
    /// every value those data keys seal unreadable.
    pub data_keys: u64,
}

impl KeyRows {
    /// Rows in both tables and data keys.
    pub fn total(&self) -> u64 {
        self.rows + self.archived_rows + self.data_keys
    }
}

impl CredentialStore {
    /// How many rows, in the table and in its archive, still need `key`:
    /// sealed under its id, or legacy tokens it opens (tried on every row
    /// without a key id); and how many data keys it wraps. For refusing to destroy a key that something
    /// still needs. Audited as `credential_status_read`.
    pub async fn rows_under_key(&self, key: &atom_crypto::Key) -> Result<KeyRows, CredentialError> {
        let probe = atom_crypto::Keyring::single(key.clone());
        let mut found = KeyRows::default();
        for (table, count) in [
            (TABLE, &mut found.rows),
            (crate::entity::ARCHIVE_TABLE, &mut found.archived_rows),
        ] {
            *count = self.rows_of_table_under(table, key.id(), &probe).await?;
        }
        found.data_keys = self.data_key_counts().await?.by_key(key.id());
        self.audit
            .record(Action::CredentialStatusRead {
                total: found.total(),
                needs_rewrap: found.total(),
            })
            .await?;
        Ok(found)
    }

    async fn rows_of_table_under(
        &self,
        table: &'static str,
        id: KeyId,
        probe: &atom_crypto::Keyring,
    ) -> Result<u64, CredentialError> {
        let count = Query::select()
            .expr_as(Func::count(Expr::col("id")), "n")
            .from(table)
            .and_where(Expr::col("key_id").eq(id.to_string()))
            .to_owned();
        let row = self.db.query_one(&count).await?;
        let mut n = match row {
            Some(row) => u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0),
            None => 0,
        };
        self.each_unkeyed_row(table, &["encrypted_token"], |row| {
            let token: Option<String> = row.try_get("", "encrypted_token")?;
            if let Some(token) = token
                && matches!(classify(&token), Ok(Classification::Legacy))
                && probe
                    .open(&atom_crypto::Context::credential("", ""), &token)
                    .is_ok()
            {
                n += 1;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }
}
