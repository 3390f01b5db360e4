//! Serializing writers: an exclusive advisory lock on `secrets.enc.lock`
//! next to the files, held for the whole read-modify-write of an operation.
//! Readers take no lock: every file is replaced by an atomic rename, so a
//! reader sees a whole old or a whole new file.
//!
//! The lock is `std::fs::File::lock` (flock on Unix, LockFileEx on Windows),
//! stable since Rust 1.89; it does what the fs4 crate did, without a
//! dependency. The lock file is never removed: removing it would let two
//! writers lock two different files.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{Error, Result};

/// Held while one operation writes; released on drop (and by the kernel if
/// the process dies).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Blocks until no other writer holds the lock at `path`.
    pub(crate) fn acquire(path: &Path) -> Result<WriteLock> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| Error::io(path, "open the lock file", e))?;
        file.lock()
            .map_err(|e| Error::io(path, "lock the lock file", e))?;
        Ok(WriteLock { _file: file })
    }
}
