//! Per-user encrypted tokens in the `user_credentials` table, through
//! sea-orm on SQLite (default, `sqlite://atom.db`), PostgreSQL and
//! MariaDB/MySQL.
//!
//! - [`CredentialStore::open`] connects, runs the migrations (creating the
//!   tables, or adopting a table written by the Python original without
//!   losing a row) and returns a [`MigrationReport`].
//! - Tokens are sealed by atom-crypto under the context (user id,
//!   provider): a token copied into another user's row does not open.
//! - Every operation is audited through the given `AuditSink`, fail-closed.
//! - [`CredentialStore::rewrap`] is the rotation primitive: keyset batches,
//!   one transaction each, compare-and-swap writes, resumable progress,
//!   parallel workers by [`IdRange`] or `SKIP LOCKED`.
//!
//! Environment: [`ENV_DATABASE_URL`], [`ENV_PLAINTEXT_TRANSITION`],
//! [`ENV_DB_MAX_CONNECTIONS`] (read by [`StoreConfig::from_env`]); keys come
//! from atom-crypto's variables.

mod audit;
mod audit_table;
mod config;
mod connect;
mod entity;
mod envelope;
mod error;
mod info;
mod keystore;
mod migration;
mod mode;
mod provider;
mod reveal;
mod rewrap;
mod sql;
mod status;
mod store;
#[cfg(feature = "test-util")]
// Test set-up that cannot work is a failed test: these helpers panic, as
// their `# Panics` sections say.
#[allow(clippy::expect_used, clippy::panic)]
pub mod test_util;
mod time;
mod url;
mod user_id;

pub use audit_table::{DatabaseAuditSink, TableReport, audit_table_tail, verify_audit_table};
pub use config::{
    DEFAULT_ACQUIRE_TIMEOUT, ENV_DATABASE_URL, ENV_DB_ACQUIRE_TIMEOUT_SECS, ENV_DB_MAX_CONNECTIONS,
    ENV_ENVELOPE, ENV_KEYSTORE_URL, ENV_PLAINTEXT_TRANSITION, EnvelopeSetting, StoreConfig,
};
pub use envelope::{DataKeyCounts, UserKeyRotation};
pub use error::CredentialError;
pub use info::{CredentialInfo, ErasureReport, PoolUsage};
pub use keystore::{DataKeyFailure, DataKeyProgress};
pub use migration::{MigrationReport, SchemaState, schema_state};
pub use provider::Provider;
pub use rewrap::{
    DEFAULT_BATCH_SIZE, IdRange, MAX_REPORTED_FAILURES, RewrapFailure, RewrapOptions,
    RewrapProgress,
};
pub use status::{KeyRows, MAX_LISTED_ROWS, RowRef, StoreStatus};
pub use store::CredentialStore;
pub use url::{Backend, DatabaseUrl, redact_url};
pub use user_id::UserId;
