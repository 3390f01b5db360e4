//! What the store says about credentials without revealing them.

use atom_crypto::KeyId;
use chrono::{DateTime, Utc};

use crate::provider::Provider;
use crate::user_id::UserId;

/// The connection pool at one moment ([`crate::CredentialStore::pool_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// One credential's metadata: never its token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialInfo {
    /// The provider.
    pub provider: Provider,
    /// The key that sealed it (the data key of an enveloped value); `None`
    /// for a legacy Fernet token or a plaintext row.
    pub key_id: Option<KeyId>,
    /// When it was first stored (kept across updates).
    pub created_at: DateTime<Utc>,
    /// When it was last stored.
    pub updated_at: DateTime<Utc>,
}

/// What [`erase_user`](crate::CredentialStore::erase_user) removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureReport {
    /// The user whose credentials were erased.
    pub user: UserId,
    /// The credentials removed.
    pub removed: Vec<CredentialInfo>,
    /// Archived rows of the user (older duplicates kept by the legacy
    /// adoption) removed as well.
    pub archived_removed: u64,
    /// The user's data keys destroyed (crypto-shredding): enveloped values
    /// of the user in any copy of the database no longer open.
    pub data_keys_destroyed: u64,
}
