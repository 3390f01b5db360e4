//! Key rotation for Atom data protection: the engine behind
//! `atom keys rotate` (and `cargo xtask rotate-keys`).
//!
//! - [`rotate_keys`] runs the phases plan -> introduce -> promote ->
//!   rewrap -> verify -> retire from wherever the [`RotationState`] file
//!   says, and returns a [`RotationReport`] with its exit code.
//! - [`KeyFiles`] are the key files the apps read; every change to them is
//!   atomic (temp file, fsync, rename, fsync of the directory, mode 0600).
//!
//! The rollout is documented in docs/ROTATION.md.

mod ages;
mod engine;
mod error;
pub mod exit;
mod inventory;
mod keyfiles;
mod keys;
mod options;
mod output;
mod report;
mod rotate;
mod state;

pub use ages::{AGES_FILE, DEFAULT_MAX_AGE_DAYS, KeyAges, is_due};
pub use engine::{RewrapTotals, default_workers, rewrap_credentials};
pub use error::Error;
pub use inventory::{BadValue, CredentialCounts, Inventory, SecretsCounts};
pub use keyfiles::{ENV_RETIRED_KEYS_FILE, KeyFiles, RETIRED_KEYS_FILE};
pub use keys::{
    KeyChange, KeyEntry, KeyStanding, KeyUsage, destroy_key, key_usage, list_keys, parse_key_id,
    restore_key, retire_key, retired_keyring,
};
pub use options::{Keys, RotateOptions};
pub use report::{Outcome, RotationReport};
pub use rotate::rotate_keys;
pub use state::{LOCK_FILE, Phase, RangeCursor, RotationState, STATE_FILE};
