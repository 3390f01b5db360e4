//! [`SecretsDir`]: the directory holding `secrets.json`, `secrets.enc` and
//! `secrets.json.backup`, with the settings every operation shares.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::atomic::{self, AtomicWriter};
use crate::error::{Error, Result};
use crate::lock::WriteLock;
use crate::parse::{self, Entries};
use crate::seal::{self, SealForm};
use serde_json::Value;

/// The plaintext file of the seed.
pub const PLAINTEXT_FILE: &str = "secrets.json";
/// The encrypted file.
pub const ENCRYPTED_FILE: &str = "secrets.enc";
/// The copy of `secrets.json` that migrate keeps.
pub const BACKUP_FILE: &str = "secrets.json.backup";
/// The advisory lock file that serializes writers.
pub const LOCK_FILE: &str = "secrets.enc.lock";
/// The default limit on the size of a file read (64 MiB: 100,000 sealed
/// entries take about 25 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;

/// A directory of secrets files and the settings of the operations on it.
/// Cheap to clone. Operations are methods in the files named after them.
#[derive(Clone)]
pub struct SecretsDir {
    dir: PathBuf,
    max_size: u64,
    form: SealForm,
    writer: AtomicWriter,
}

impl fmt::Debug for SecretsDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsDir")
            .field("dir", &self.dir)
            .field("max_size", &self.max_size)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl SecretsDir {
    /// The secrets files in `dir`, with default settings: files up to
    /// [`DEFAULT_MAX_SIZE`], values written in the current sealed form.
    pub fn new(dir: impl Into<PathBuf>) -> SecretsDir {
        SecretsDir {
            dir: dir.into(),
            max_size: DEFAULT_MAX_SIZE,
            form: SealForm::Sealed,
            writer: AtomicWriter::default(),
        }
    }

    /// Refuses to read files larger than `bytes`.
    pub fn with_max_size(mut self, bytes: u64) -> SecretsDir {
        self.max_size = bytes;
        self
    }

    /// The form new values are written in by migrate and set.
    /// [`SealForm::Legacy`] is only for running the Python original side by
    /// side; rewrap always writes [`SealForm::Sealed`].
    pub fn with_seal_form(mut self, form: SealForm) -> SecretsDir {
        self.form = form;
        self
    }

    /// Installs a hook called before every step of every file write (for
    /// crash-safety tests; see [`atom_io::WriteHook`]).
    #[cfg(feature = "test-util")]
    pub fn with_write_hook(mut self, hook: std::sync::Arc<dyn atom_io::WriteHook>) -> SecretsDir {
        self.writer = AtomicWriter::with_hook(hook);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `secrets.json`.
    pub fn plaintext_path(&self) -> PathBuf {
        self.dir.join(PLAINTEXT_FILE)
    }

    /// `secrets.enc`.
    pub fn encrypted_path(&self) -> PathBuf {
        self.dir.join(ENCRYPTED_FILE)
    }

    /// `secrets.json.backup`.
    pub fn backup_path(&self) -> PathBuf {
        self.dir.join(BACKUP_FILE)
    }

    /// `secrets.enc.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    pub(crate) fn form(&self) -> SealForm {
        self.form
    }

    pub(crate) fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Takes the write lock and clears temp files of killed writers.
    pub(crate) fn lock(&self) -> Result<WriteLock> {
        if !self.dir.is_dir() {
            return Err(Error::Missing {
                path: self.dir.clone(),
                hint: "create the directory or point to the one that holds secrets.json",
            });
        }
        let lock = WriteLock::acquire(&self.lock_path())?;
        for path in [
            self.plaintext_path(),
            self.encrypted_path(),
            self.backup_path(),
        ] {
            atomic::remove_stale_temps(&path);
        }
        Ok(lock)
    }

    /// Reads `secrets.enc`; when it is missing, says whether to migrate.
    pub(crate) fn read_encrypted(&self) -> Result<Entries> {
        let path = self.encrypted_path();
        let hint = if self.plaintext_path().exists() {
            "secrets.json exists: run migrate to create it"
        } else {
            "set a secret to create it, or point to the directory that holds it"
        };
        parse::read_entries(&path, self.max_size, hint)
    }

    pub(crate) fn read_plaintext(&self) -> Result<Entries> {
        parse::read_entries(
            &self.plaintext_path(),
            self.max_size,
            "nothing to migrate; create it or point to the directory that holds it",
        )
    }

    /// Reads `secrets.enc` for editing: a missing file is an empty one,
    /// unless `secrets.json` exists (then the files are not migrated).
    pub(crate) fn read_encrypted_for_edit(&self) -> Result<Entries> {
        match parse::read_entries_if_exists(&self.encrypted_path(), self.max_size)? {
            Some(entries) => Ok(entries),
            None if self.plaintext_path().exists() => Err(Error::NotMigrated {
                encrypted: self.encrypted_path(),
                plaintext: self.plaintext_path(),
            }),
            None => Ok(Entries::new()),
        }
    }

    /// Atomically replaces `path` with `entries` (see [`render`]).
    pub(crate) fn write_entries(&self, path: &Path, entries: &Entries) -> Result<()> {
        let bytes = render(entries).map_err(|e| Error::io(path, "render", e))?;
        Ok(self.writer.write(path, &bytes)?)
    }

    /// Atomically replaces `path` with the file whose entries `parts` hold,
    /// each rendered by [`render_entry`] in order (a part may be empty).
    pub(crate) fn write_rendered(&self, path: &Path, parts: &[Vec<u8>]) -> Result<()> {
        let mut slices: Vec<&[u8]> = Vec::with_capacity(parts.len() * 2 + 2);
        slices.push(b"{");
        let mut any = false;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            if any {
                slices.push(b",");
            }
            slices.push(part);
            any = true;
        }
        slices.push(if any { b"\n}\n" } else { b"}\n" });
        Ok(self.writer.write_parts(path, &slices)?)
    }

    /// Atomically replaces `path` with `bytes`.
    pub(crate) fn write_bytes(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        Ok(self.writer.write(path, bytes)?)
    }
}

/// The bytes of a secrets file: a JSON object with one entry a line (nested
/// values compact), in entry order, and a final newline. Rendered on all
/// cores for large files.
pub(crate) fn render(entries: &Entries) -> std::io::Result<Vec<u8>> {
    let mut items: Vec<(&String, &Value)> = entries.iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1024);
    let mut chunks: Vec<&mut [(&String, &Value)]> = items.chunks_mut(chunk).collect();
    let parts = seal::par_map_min(&mut chunks, 2, |chunk| render_entries(chunk));
    let mut bytes = Vec::with_capacity(
        parts
            .iter()
            .map(|p| p.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + 4,
    );
    bytes.push(b'{');
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(&part?);
    }
    bytes.extend_from_slice(if entries.is_empty() { b"}\n" } else { b"\n}\n" });
    Ok(bytes)
}

fn render_entries(items: &[(&String, &Value)]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(items.len() * 64);
    for (name, value) in items {
        render_entry(&mut out, name, value)?;
    }
    Ok(out)
}

/// Appends one entry of a secrets file to `out` as [`render`] lays it out:
/// a comma unless `out` is empty, then a new line, the name and the value.
pub(crate) fn render_entry(
    out: &mut Vec<u8>,
    name: &str,
    value: &(impl serde::Serialize + ?Sized),
) -> std::io::Result<()> {
    render_name(out, name)?;
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)
}

/// The part of [`render_entry`] before the value.
pub(crate) fn render_name(out: &mut Vec<u8>, name: &str) -> std::io::Result<()> {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"\n  ");
    serde_json::to_writer(&mut *out, name).map_err(std::io::Error::other)?;
    out.extend_from_slice(b": ");
    Ok(())
}
