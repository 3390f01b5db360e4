//! The `secrets.json` -> `secrets.enc` lifecycle of the Atom backend:
//! migrate, rollback, verify, status, get/set/unset/list, rewrap, exec and
//! shred-plaintext, atomic and lossless.
//!
//! # Format
//! `secrets.enc` is a JSON object like `secrets.json`. String values are
//! sealed with atom-crypto under [`atom_crypto::Context::secret`] of their
//! name, so a value moved to another name fails to open; numbers, booleans,
//! null, objects and arrays are kept as they are. Bare Fernet values written
//! by the Python original (legacy) are read; they are written only with
//! [`SealForm::Legacy`]. Names keep their file order. A name twice in one
//! object is an error (JSON readers would silently keep one).
//!
//! # Safety of the files
//! - Every write replaces the file atomically: a temp file in the same
//!   directory, fsync, rename, fsync of the directory, mode 0600. A crash
//!   leaves the old or the new file, never a torn one. A write hook (the
//!   `test-util` feature) lets tests fail any step.
//! - Writers are serialized by an advisory lock on `secrets.enc.lock`;
//!   readers need none.
//! - Every operation reads and checks everything before it writes: bad input
//!   is an [`Error`] naming the file, the problem and the next step, with
//!   nothing changed on disk. A value that looks sealed but does not open is
//!   an error, never plaintext.
//! - Files replaced by rollback and older backups are kept as
//!   `<name>.kept.<n>`.
//!
//! # Reports, not values
//! Operations return reports (names, counts, key ids) for the CLI and the
//! audit layer, [`AuditedSecrets`] (fail-closed: reads are recorded before
//! anything is revealed, changes record `started` before they begin). No error, report, log line or `Debug` output holds a
//! secret value.
//!
//! # Environment
//! - [`ENV_AUTO_MIGRATE`] (`ATOM_AUTO_MIGRATE=0`) turns start-up
//!   auto-migration off.
//! - [`env_var_name`] documents how `exec` names variables.

mod atomic;
mod audited;
mod auto;
mod dir;
mod edit;
mod error;
mod exec;
mod keep;
mod lock;
mod migrate;
mod parse;
mod rewrap;
mod rollback;
mod seal;
mod shred;
mod status;
mod verify;

#[cfg(feature = "test-util")]
pub use atom_io::{WriteHook, WriteStep};
pub use audited::AuditedSecrets;
pub use auto::{AutoMigration, ENV_AUTO_MIGRATE};
pub use dir::{
    BACKUP_FILE, DEFAULT_MAX_SIZE, ENCRYPTED_FILE, LOCK_FILE, PLAINTEXT_FILE, SecretsDir,
};
pub use edit::{EditAction, EditReport, SecretValue};
pub use error::{Error, Result};
pub use exec::{SecretEnv, env_var_name};
pub use migrate::MigrateReport;
pub use parse::parse_secrets;
pub use rewrap::RewrapReport;
pub use rollback::RollbackReport;
pub use seal::SealForm;
pub use shred::{ShredOptions, ShredReport};
pub use status::{KeyUse, NestedCounts, Status};
pub use verify::{EntryCheck, NameCheck, VerifyReport};
