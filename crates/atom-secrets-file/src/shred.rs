//! `shred_plaintext`: after a successful verify, remove `secrets.json` and
//! `secrets.json.backup` (the seed's production checklist), but only when
//! `secrets.enc` holds every value they hold.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use atom_crypto::{ExposeSecret as _, Keyring};
use serde::Serialize;
use serde_json::Value;

use crate::atomic;
use crate::dir::{BACKUP_FILE, PLAINTEXT_FILE, SecretsDir};
use crate::error::{Error, Result};
use crate::parse::{self, Entries};
use crate::seal;

/// Options of [`SecretsDir::shred_plaintext`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ShredOptions {
    /// Remove the backup even if it holds names or values `secrets.enc` no
    /// longer has (removed or changed after migration on purpose).
    pub drop_stale_backup: bool,
}

impl ShredOptions {
    /// Sets [`ShredOptions::drop_stale_backup`].
    pub fn drop_stale_backup(mut self, yes: bool) -> ShredOptions {
        self.drop_stale_backup = yes;
        self
    }
}

/// What `shred_plaintext` did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ShredReport {
    /// Values of `secrets.enc` verified before anything was removed.
    pub verified: usize,
    /// The files removed.
    pub removed: Vec<PathBuf>,
    /// Other plaintext copies found and left alone (e.g. `secrets.json.kept.1`).
    pub other_plaintext_copies: Vec<PathBuf>,
}

impl SecretsDir {
    /// Verifies `secrets.enc`, checks it holds every value of `secrets.json`
    /// (and of the backup, unless `drop_stale_backup`), then overwrites and
    /// removes both plaintext files. Overwriting is best effort: on
    /// copy-on-write file systems and SSDs old blocks may survive.
    pub fn shred_plaintext(&self, keyring: &Keyring, options: ShredOptions) -> Result<ShredReport> {
        let _lock = self.lock()?;
        let enc_path = self.encrypted_path();
        let entries = self.read_encrypted()?;
        let mut items: Vec<(&String, &Value)> = entries.iter().collect();
        let opened = seal::par_map(&mut items, |(name, value)| match value {
            Value::String(text) => seal::open(keyring, name, text)
                .map(|s| Value::String(s.expose_secret().to_owned()))
                .map_err(|class| vec![((*name).clone(), class)]),
            other if seal::has_nested_strings(other) => {
                seal::open_value(keyring, name, other, false)
            }
            other => Ok((*other).clone()),
        });
        let mut clear = Entries::with_capacity(entries.len());
        let mut failures = Vec::new();
        for ((name, _), result) in items.iter().zip(opened) {
            match result {
                Ok(value) => {
                    clear.insert((*name).clone(), value);
                }
                Err(mut failed) => failures.append(&mut failed),
            }
        }
        if !failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: enc_path,
                failures,
            });
        }

        let mut to_remove = Vec::new();
        for (path, is_backup) in [(self.plaintext_path(), false), (self.backup_path(), true)] {
            let Some(plain) = parse::read_entries_if_exists(&path, self.max_size())? else {
                continue;
            };
            let missing = uncovered(&plain, &clear, &entries);
            let may_drop = is_backup && options.drop_stale_backup;
            if !missing.is_empty() && !may_drop {
                return Err(Error::PlaintextNotCovered {
                    plaintext: path,
                    encrypted: enc_path,
                    names: missing,
                    backup: is_backup,
                });
            }
            to_remove.push(path);
        }
        for path in &to_remove {
            shred_file(path)?;
        }
        let report = ShredReport {
            verified: clear.len(),
            removed: to_remove,
            other_plaintext_copies: other_copies(self.dir()),
        };
        tracing::info!(
            removed = report.removed.len(),
            other_copies = report.other_plaintext_copies.len(),
            "shred-plaintext"
        );
        Ok(report)
    }
}

/// Names of `plain` whose value `secrets.enc` lacks. `clear` holds the
/// opened values, `stored` the values as stored (a sealed value copied into
/// the plaintext file counts as covered).
fn uncovered(plain: &Entries, clear: &Entries, stored: &Entries) -> Vec<String> {
    plain
        .iter()
        .filter(|(name, value)| {
            clear.get(*name) != Some(*value) && stored.get(*name) != Some(*value)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn shred_file(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, "inspect", e))?;
    // Best effort: overwrite in place before unlinking, but only a regular
    // file that has no other name: zeroing through a link would destroy the
    // file it points at, or a kept copy that shares the inode.
    if meta.file_type().is_file()
        && link_count(&meta) == 1
        && let Ok(mut file) = OpenOptions::new().write(true).open(path)
    {
        let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
        if file.write_all(&zeros).is_ok() {
            let _ = file.sync_all();
        }
    }
    std::fs::remove_file(path).map_err(|e| Error::io(path, "remove", e))?;
    atomic::sync_dir(&atomic::parent_dir(path))
        .map_err(|e| Error::io(path, atomic::STEP_SYNC_DIR, e))
}

fn other_copies(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut copies: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PLAINTEXT_FILE) && name != PLAINTEXT_FILE && name != BACKUP_FILE
        })
        .map(|e| e.path())
        .collect();
    copies.sort();
    copies
}

#[cfg(unix)]
fn link_count(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    meta.nlink()
}

#[cfg(not(unix))]
fn link_count(_meta: &std::fs::Metadata) -> u64 {
    1
}
