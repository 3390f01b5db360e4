//! Atomic replacement of a file: temp file in the same directory, write,
//! fsync, rename over the target, fsync the directory; mode 0600. The
//! previous file stays in place until the rename, and the rename happens only
//! after the new bytes are durable. A [`WriteHook`] can fail any step, so
//! tests prove that an interrupted write leaves the old or the new file.

use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an atomic write failed: the file, the step, the I/O error. The
/// previous file is untouched (or, after the rename, already replaced).
#[derive(Debug, thiserror::Error)]
#[error("could not {} {}: {source}", step.describe(), target.display())]
pub struct AtomicWriteError {
    /// The file being replaced.
    pub target: PathBuf,
    /// The step that failed.
    pub step: WriteStep,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

/// A step of an atomic write, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteStep {
    /// Creating the temp file next to the target.
    CreateTemp,
    /// Writing the new bytes into the temp file.
    Write,
    /// Fsyncing the temp file.
    SyncFile,
    /// Renaming the temp file over the target.
    Rename,
    /// Fsyncing the directory so the rename is durable.
    SyncDir,
}

impl WriteStep {
    /// Every step, in the order they happen.
    pub const ALL: [WriteStep; 5] = [
        WriteStep::CreateTemp,
        WriteStep::Write,
        WriteStep::SyncFile,
        WriteStep::Rename,
        WriteStep::SyncDir,
    ];

    /// What the step does to a file, for messages ("rename a temporary file over").
    pub fn describe(self) -> &'static str {
        match self {
            WriteStep::CreateTemp => "create a temporary file for",
            WriteStep::Write => "write a temporary file for",
            WriteStep::SyncFile => "fsync a temporary file for",
            WriteStep::Rename => "rename a temporary file over",
            WriteStep::SyncDir => "fsync the directory of",
        }
    }
}

impl fmt::Display for WriteStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteStep::CreateTemp => "create-temp",
            WriteStep::Write => "write",
            WriteStep::SyncFile => "sync-file",
            WriteStep::Rename => "rename",
            WriteStep::SyncDir => "sync-dir",
        })
    }
}

/// Called before each step of every atomic write; an error aborts the write
/// at that step as a real I/O failure would. The seam for crash-safety tests;
/// production code installs none.
pub trait WriteHook: Send + Sync {
    /// About to perform `step` for the file `target`.
    fn before(&self, step: WriteStep, target: &Path) -> io::Result<()>;
}

/// Replaces files atomically: temp file in the same directory (mode
/// 0600), write, fsync, rename over the target, fsync of the directory.
#[derive(Clone, Default)]
pub struct AtomicWriter {
    hook: Option<Arc<dyn WriteHook>>,
}

impl std::fmt::Debug for AtomicWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicWriter")
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// [`AtomicWriter::write`] with no hook.
pub fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    AtomicWriter::default().write(target, bytes)
}

impl AtomicWriter {
    /// A writer that calls `hook` before every step (tests of crash
    /// safety).
    #[cfg(feature = "test-util")]
    pub fn with_hook(hook: Arc<dyn WriteHook>) -> AtomicWriter {
        AtomicWriter { hook: Some(hook) }
    }

    fn check(&self, step: WriteStep, target: &Path) -> Result<(), AtomicWriteError> {
        match &self.hook {
            Some(hook) => hook
                .before(step, target)
                .map_err(|source| AtomicWriteError {
                    target: target.to_owned(),
                    step,
                    source,
                }),
            None => Ok(()),
        }
    }

    /// Replaces `target` with `bytes`. On any error before the rename the
    /// temp file is removed and `target` is untouched.
    pub fn write(&self, target: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
        self.write_parts(target, &[bytes])
    }

    /// [`write`](Self::write) of the concatenation of `parts`, without
    /// concatenating them in memory first.
    pub fn write_parts(&self, target: &Path, parts: &[&[u8]]) -> Result<(), AtomicWriteError> {
        let dir = parent_dir(target);
        let io_err = |step: WriteStep| {
            move |source: io::Error| AtomicWriteError {
                target: target.to_owned(),
                step,
                source,
            }
        };

        self.check(WriteStep::CreateTemp, target)?;
        let prefix = temp_prefix(target);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(TEMP_SUFFIX);
        #[cfg(unix)]
        builder.permissions(private_permissions());
        let mut temp = builder
            .tempfile_in(&dir)
            .map_err(io_err(WriteStep::CreateTemp))?;

        self.check(WriteStep::Write, target)?;
        for part in parts {
            temp.write_all(part).map_err(io_err(WriteStep::Write))?;
        }

        self.check(WriteStep::SyncFile, target)?;
        temp.as_file()
            .sync_all()
            .map_err(io_err(WriteStep::SyncFile))?;

        self.check(WriteStep::Rename, target)?;
        // On failure the PersistError owns the temp file; dropping it deletes it.
        temp.persist(target)
            .map_err(|e| io_err(WriteStep::Rename)(e.error))?;

        self.check(WriteStep::SyncDir, target)?;
        sync_dir(&dir).map_err(io_err(WriteStep::SyncDir))
    }
}

const TEMP_SUFFIX: &str = ".tmp";

fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

/// Removes temp files a killed writer left next to `target`. Call only while
/// holding the write lock, so no live writer owns them.
pub fn remove_stale_temps(target: &Path) {
    let prefix = temp_prefix(target);
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(TEMP_SUFFIX) {
            tracing::debug!(file = %entry.path().display(), "removing a temp file left by an interrupted write");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The folder of `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Fsyncs a folder, so that a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for fsync here; rename is durable
        // once the file system flushes its metadata.
        let _ = dir;
        Ok(())
    }
}

#[cfg(unix)]
fn private_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::Permissions::from_mode(0o600)
}
