//! What a rotation is asked to do: where the keys are, what is rotated,
//! and how.

use std::num::NonZeroU32;
use std::path::PathBuf;

use atom_crypto::Keyring;

use crate::keyfiles::KeyFiles;

/// Where the keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Keys {
    /// Key files the apps read: every phase can run.
    Files(KeyFiles),
    /// Keys held in environment variables: only a dry run (the plan) can
    /// run, since the later phases change key files.
    Environment(Keyring),
}

/// What `rotate_keys` is asked to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateOptions {
    /// Where the keys come from.
    pub keys: Keys,
    /// Rotate to this key instead of a generated one (one key, one line).
    pub new_key_file: Option<PathBuf>,
    /// The directory holding `secrets.enc`, if a secrets file is rotated.
    /// A directory with neither `secrets.enc` nor `secrets.json` is
    /// skipped (the report says so).
    pub secrets_dir: Option<PathBuf>,
    /// The credential database, if one is rotated. An SQLite file that
    /// does not exist is skipped (the report says so).
    pub database_url: Option<String>,
    /// Parallel rewrap workers.
    pub workers: NonZeroU32,
    /// Rows per batch (and per transaction).
    pub batch_size: NonZeroU32,
    /// On PostgreSQL, workers share the table with `SKIP LOCKED` instead
    /// of disjoint id ranges.
    pub skip_locked: bool,
    /// Seal plaintext values (from the no-key development mode). Off, any
    /// plaintext value stops the plan: it is listed, and nothing changes.
    pub seal_plaintext: bool,
    /// Stop after the plan; change nothing.
    pub dry_run: bool,
    /// One host holds every reader: do not stop for rollouts.
    pub yes: bool,
    /// Draw progress bars on stderr.
    pub show_progress: bool,
    /// The command that continues this rotation, for the report.
    pub rerun_command: String,
    /// `--if-due`: start a rotation only when the primary key is older
    /// than this many days (or of unknown age); a rotation in progress is
    /// always continued.
    pub only_if_older_than_days: Option<u32>,
}

impl RotateOptions {
    /// Options for `keys` with defaults: every core, batches of 1000,
    /// no progress bar, stopping for rollouts, plaintext refused.
    pub fn new(keys: Keys) -> RotateOptions {
        RotateOptions {
            keys,
            new_key_file: None,
            secrets_dir: None,
            database_url: None,
            workers: crate::engine::cores(),
            batch_size: atom_credentials::DEFAULT_BATCH_SIZE,
            skip_locked: false,
            seal_plaintext: false,
            dry_run: false,
            yes: false,
            show_progress: false,
            rerun_command: "the same command".to_owned(),
            only_if_older_than_days: None,
        }
    }
}
