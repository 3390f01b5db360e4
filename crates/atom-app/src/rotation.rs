//! The flags of key rotation and of the key-file commands, shared by
//! `atom keys ...` and `cargo xtask rotate-keys`.

use std::num::NonZeroU32;
use std::path::PathBuf;

use atom_rotation::{KeyFiles, Keys, RotateOptions};

use crate::error::Error;
use crate::setup::Settings;

/// Where the key files are (each flag falls back to its variable).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct KeyFileArgs {
    /// The primary key file the apps read [default: $ENCRYPTION_KEY_FILE].
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The previous-keys file the apps read (one key a line, `#` comments;
    /// may be missing at first) [default: $ENCRYPTION_PREVIOUS_KEYS_FILE].
    #[arg(long, value_name = "PATH")]
    pub previous_keys_file: Option<PathBuf>,
    /// The retired-keys file, which no app loads [default:
    /// $ENCRYPTION_RETIRED_KEYS_FILE, else retired.keys beside the
    /// previous-keys file].
    #[arg(long, value_name = "PATH")]
    pub retired_keys_file: Option<PathBuf>,
}

impl KeyFileArgs {
    /// The key files, or `None` when no primary key file is named (the keys
    /// may be in environment variables).
    pub fn key_files(&self) -> Result<Option<KeyFiles>, Error> {
        Ok(KeyFiles::resolve(
            self.key_file.clone(),
            self.previous_keys_file.clone(),
            self.retired_keys_file.clone(),
            |name| std::env::var(name).ok(),
        )?)
    }

    /// The key files, required: an error that says how to get them.
    pub fn require_key_files(&self) -> Result<KeyFiles, Error> {
        self.key_files()?.ok_or_else(|| {
            Error::Config(format!(
                "no key files: ENCRYPTION_KEY_FILE (or --key-file) names none. Key files are managed here; keys held in ENCRYPTION_KEY move to files with: {}",
                KeyFiles::move_to_files_instructions()
            ))
        })
    }
}

/// The flags of a rotation.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct RotateArgs {
    /// Where the key files are.
    #[command(flatten)]
    pub key_files: KeyFileArgs,
    /// Rotate to the key in this file instead of a generated one.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
    /// Parallel rewrap workers [default: the number of cores for SQLite,
    /// 4x that for PostgreSQL and MariaDB].
    #[arg(long, value_name = "N")]
    pub workers: Option<NonZeroU32>,
    /// Rows per batch (one transaction each).
    #[arg(long, value_name = "N", default_value_t = atom_credentials::DEFAULT_BATCH_SIZE)]
    pub batch_size: NonZeroU32,
    /// On PostgreSQL, workers share the table with SELECT ... FOR UPDATE
    /// SKIP LOCKED instead of disjoint id ranges.
    #[arg(long)]
    pub skip_locked: bool,
    /// Seal plaintext values (from the no-key development mode) on the
    /// way; without it, any plaintext value stops the plan, listed by name
    /// or row id.
    #[arg(long)]
    pub seal_plaintext: bool,
    /// Plan only: report counts and values that do not open; change
    /// nothing (works with keys in ENCRYPTION_KEY too).
    #[arg(long)]
    pub dry_run: bool,
    /// One host holds every reader: do not stop for the two rollouts.
    #[arg(long)]
    pub yes: bool,
}

impl RotateArgs {
    /// The rotation's options: the key files (or, for a dry run, the keys
    /// in the environment), the secrets folder and database of `settings`
    /// (the same defaults as every other command), and `rerun_command`
    /// printed as the next step.
    pub fn options(
        &self,
        settings: &Settings,
        show_progress: bool,
        rerun_command: String,
    ) -> Result<RotateOptions, Error> {
        let keys = match self.key_files.key_files()? {
            Some(files) => Keys::Files(files),
            None => Keys::Environment(settings.keyring("key rotation")?),
        };
        let database_url = settings.database_url();
        let mut options = RotateOptions::new(keys);
        options.new_key_file = self.new_key_file.clone();
        options.secrets_dir = Some(settings.secrets_dir.clone());
        options.workers = self
            .workers
            .unwrap_or_else(|| atom_rotation::default_workers(Some(&database_url)));
        options.database_url = Some(database_url);
        options.batch_size = self.batch_size;
        options.skip_locked = self.skip_locked;
        options.seal_plaintext = self.seal_plaintext;
        options.dry_run = self.dry_run;
        options.yes = self.yes;
        options.show_progress = show_progress;
        options.rerun_command = rerun_command;
        Ok(options)
    }
}
