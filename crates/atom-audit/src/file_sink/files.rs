//! File helpers of the log: the checkpoint copy check, the last line, the
//! chain head, the inter-process lock and atomic replacement.

use std::fs::{File, OpenOptions};
use std::io::{self, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use atom_crypto::MacKey;

use crate::error::AuditError;
use crate::record::{self, Kind, Tag};

/// Checks a copy of the last checkpoint (the sidecar, or the anchor kept
/// away from the log) against a log of `next_seq` records: it must
/// authenticate, and the log must reach it. The record it anchors; `None`
/// for a missing copy, which is fine here (a new log, a crash before the
/// first copy was written, or an anchor configured since): the writer
/// writes a checkpoint at once.
pub(super) fn check_checkpoint_copy(
    copy: &Path,
    mac: &MacKey,
    next_seq: u64,
    damaged: &dyn Fn(String) -> AuditError,
) -> Result<Option<u64>, AuditError> {
    let bytes = match atom_io::read_bounded(copy, record::MAX_RECORD_BYTES + 1) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuditError::Read {
                path: copy.to_path_buf(),
                source,
            });
        }
    };
    let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let parsed = record::parse(line).map_err(|m| {
        damaged(format!(
            "its checkpoint copy {} is not a record: {m}",
            copy.display()
        ))
    })?;
    if parsed.key != mac.key_id() || !parsed.authentic(mac) {
        return Err(damaged(format!(
            "its checkpoint copy {} does not authenticate under audit key {}",
            copy.display(),
            mac.key_id()
        )));
    }
    if parsed.seq >= next_seq {
        return Err(damaged(format!(
            "its checkpoint copy {} says record {} was written, but the log has only {next_seq} records: the tail was cut (or the log emptied)",
            copy.display(),
            parsed.seq
        )));
    }
    Ok(Some(parsed.seq))
}

pub(super) fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// The last line of the file (with its `\n`, if it has one), reading
/// backwards from the end so that a large log costs no more than a small
/// one. `None` for an empty file.
pub(super) fn last_line(
    file: &mut (impl io::Read + io::Seek),
    len: u64,
) -> io::Result<Option<Vec<u8>>> {
    const CHUNK: u64 = 4096;
    if len == 0 {
        return Ok(None);
    }
    let mut tail: Vec<u8> = Vec::new();
    let mut end = len;
    loop {
        let start = end.saturating_sub(CHUNK);
        // Invariant: end - start <= CHUNK, which fits usize.
        let mut chunk = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        // A line break before the last byte ends the previous line.
        let search = &tail[..tail.len() - 1];
        if let Some(pos) = search.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(tail[pos + 1..].to_vec()));
        }
        if start == 0 {
            return Ok(Some(tail));
        }
        if tail.len() as u64 > record::MAX_RECORD_BYTES + 1 {
            // Not a record: say so without reading the rest of the file.
            return Ok(Some(tail));
        }
        end = start;
    }
}

/// The last record of the log: its sequence number, tag and kind, after
/// checking that it is whole, under `mac`'s key and authentic. `None` for
/// an empty log.
pub(super) fn chain_head(
    path: &Path,
    file: &mut (impl io::Read + io::Seek),
    len: u64,
    mac: &MacKey,
) -> Result<Option<(u64, Tag, Kind)>, AuditError> {
    let damaged = |problem: String| AuditError::Damaged {
        path: path.to_path_buf(),
        problem,
    };
    let Some(line) = last_line(file, len).map_err(|source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    })?
    else {
        return Ok(None);
    };
    let Some(line) = line.strip_suffix(b"\n") else {
        return Err(damaged(
            "its last line has no line break: the file was cut inside a record, or a write was interrupted".into(),
        ));
    };
    let parsed =
        record::parse(line).map_err(|m| damaged(format!("its last line is not a record: {m}")))?;
    if parsed.key != mac.key_id() {
        return Err(AuditError::WrongKey {
            path: path.to_path_buf(),
            needed: parsed.key,
            configured: mac.key_id(),
        });
    }
    if !parsed.authentic(mac) {
        return Err(damaged(format!(
            "its last record (number {}) does not authenticate under audit key {}",
            parsed.seq,
            mac.key_id()
        )));
    }
    Ok(Some((parsed.seq, parsed.tag, parsed.kind)))
}

/// An exclusive advisory lock on an open file (flock), released on drop.
pub(super) struct FileLock(Arc<File>);

impl FileLock {
    pub(super) fn take(file: &Arc<File>) -> io::Result<FileLock> {
        file.lock()?;
        Ok(FileLock(Arc::clone(file)))
    }

    /// The lock if it is free now, `None` if another holder has it.
    pub(super) fn try_take(file: &Arc<File>) -> io::Result<Option<FileLock>> {
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock(Arc::clone(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file would release it too; an unlock error leaves
        // nothing to repair.
        let _ = self.0.unlock();
    }
}

/// Writes `contents` to `path` so that a crash leaves the old or the new
/// file, never a torn one: a new temporary file in the same directory
/// (never an existing path, so a planted link is not followed), fsync,
/// rename, fsync of the directory.
pub(super) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    atom_io::write_atomically(path, contents).map_err(|e| e.source)
}
