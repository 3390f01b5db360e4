//! The open log and the chain's state under the sink's lock: opening
//! (with the checks that refuse a damaged or foreign log), appending,
//! checkpoints, catching up with other processes, and noticing that the
//! path no longer names the open file.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atom_crypto::MacKey;

use super::files::{FileLock, chain_head, check_checkpoint_copy, open_options, write_atomically};
use super::{Durability, FileSinkOptions, Next, SyncHandle, checkpoint_path};
use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::record::{self, GENESIS, Kind, Tag};

/// What identifies the open file, to notice that its path now names
/// another file or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    pub(super) fn of(meta: &std::fs::Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt as _;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    pub(super) fn of(_meta: &std::fs::Metadata) -> Identity {
        Identity {}
    }
}

/// The open log and the chain's state, under the sink's lock.
pub(super) struct Writer {
    path: PathBuf,
    anchor: PathBuf,
    file: Arc<File>,
    identity: Identity,
    mac: MacKey,
    options: FileSinkOptions,
    next_seq: u64,
    head: Tag,
    /// The log's length after our last write: a longer file means another
    /// process appended, and the chain head is read back from it.
    end: u64,
    unsynced: u32,
    since_checkpoint: u64,
    /// Set when a write or sync failed; shared with [`SyncHandle`]s.
    poisoned: Arc<AtomicBool>,
}

impl Writer {
    pub(super) fn open(
        path: PathBuf,
        mac: MacKey,
        options: FileSinkOptions,
    ) -> Result<Writer, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.clone(),
            source,
        };
        let file = open_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(open_error)?;
        let file = Arc::new(file);
        let lock = FileLock::take(&file).map_err(open_error)?;
        let meta = file.metadata().map_err(open_error)?;
        let anchor = checkpoint_path(&path);
        let damaged = |problem: String| AuditError::Damaged {
            path: path.clone(),
            problem,
        };

        let (next_seq, head, last_kind) = match chain_head(&path, &mut &*file, meta.len(), &mac)? {
            None => (0, GENESIS, None),
            Some((seq, tag, kind)) => (seq + 1, tag, Some(kind)),
        };

        // Under the log's lock, no other process is writing a copy: a temp
        // file of one is what a crash left.
        let mut copies_current = true;
        for copy in std::iter::once(&anchor).chain(options.anchor.as_ref()) {
            atom_io::remove_stale_temps(copy);
            let anchored = check_checkpoint_copy(copy, &mac, next_seq, &damaged)?;
            copies_current &= anchored.is_some_and(|seq| seq + 1 == next_seq);
        }

        let mut writer = Writer {
            identity: Identity::of(&meta),
            path,
            anchor,
            file,
            mac,
            options,
            next_seq,
            head,
            end: meta.len(),
            unsynced: 0,
            since_checkpoint: 0,
            poisoned: Arc::new(AtomicBool::new(false)),
        };
        // A new log starts with a checkpoint (record 0), copied before any
        // event is written: a crash at any later instant leaves copies that
        // anchor part of the log, never a log with checkpoints and none.
        // Anchor what earlier runs wrote, so it cannot be cut unnoticed;
        // and copies that a crash left behind the log's last checkpoint (or
        // never wrote) are brought up to date the same way.
        if next_seq == 0 || last_kind == Some(Kind::Event) || !copies_current {
            writer.guarded(Writer::checkpoint)?;
        }
        drop(lock);
        Ok(writer)
    }

    /// Chains and writes one event; says what is left to do.
    /// Appends if the log's lock is free right now; `None` when another
    /// process holds it.
    pub(super) fn try_append(&mut self, event: &AuditEvent) -> Result<Option<Next>, AuditError> {
        self.guarded(|w| {
            w.check_identity()?;
            match FileLock::try_take(&w.file) {
                Ok(Some(_lock)) => w.append_locked(event).map(Some),
                Ok(None) => Ok(None),
                Err(source) => Err(AuditError::Write {
                    path: w.path.clone(),
                    source,
                }),
            }
        })
    }

    /// Appends, waiting for the log's lock (on the blocking pool).
    pub(super) fn append(&mut self, event: &AuditEvent) -> Result<Next, AuditError> {
        self.guarded(|w| {
            w.check_identity()?;
            let _lock = w.lock()?;
            w.append_locked(event)
        })
    }

    /// Chains and writes one event under the log's lock; says what is left
    /// to do.
    pub(super) fn append_locked(&mut self, event: &AuditEvent) -> Result<Next, AuditError> {
        self.catch_up()?;
        let (line, tag) = record::encode_event(&self.mac, self.next_seq, &self.head, event);
        self.write_line(&line)?;
        self.advance(tag);
        if self.since_checkpoint >= self.options.checkpoint_every.get() {
            return Ok(Next::Checkpoint);
        }
        let sync = match self.options.durability {
            Durability::EveryRecord => true,
            Durability::EveryN(n) => self.unsynced >= n.get(),
            Durability::Never => false,
        };
        if sync {
            self.unsynced = 0;
            return Ok(Next::Sync);
        }
        Ok(Next::Done)
    }

    /// A checkpoint under the log's lock (after catching up with other
    /// writers), on the blocking pool.
    pub(super) fn checkpoint_locked(&mut self) -> Result<(), AuditError> {
        self.guarded(|w| {
            let _lock = w.lock()?;
            w.catch_up()?;
            w.checkpoint()
        })
    }

    pub(super) fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            poisoned: Arc::clone(&self.poisoned),
        }
    }

    pub(super) fn flush(&mut self) -> Result<(), AuditError> {
        self.guarded(|w| {
            w.check_identity()?;
            let _lock = w.lock()?;
            w.catch_up()?;
            if w.since_checkpoint > 0 {
                w.checkpoint()
            } else {
                w.sync()
            }
        })
    }

    /// Whether an append could go ahead now: not poisoned, and the path
    /// still names the open file. Changes nothing.
    pub(super) fn ready(&self) -> Result<(), AuditError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        self.check_identity()
    }

    /// Runs `step` unless the writer is poisoned, and poisons it when the
    /// step fails: after a failed write the end of the file is uncertain.
    pub(super) fn guarded<T>(
        &mut self,
        step: impl FnOnce(&mut Writer) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        let result = step(self);
        if result.is_err() {
            self.poisoned.store(true, Ordering::SeqCst);
        }
        result
    }

    pub(super) fn advance(&mut self, tag: Tag) {
        self.head = tag;
        self.next_seq += 1;
        self.unsynced = self.unsynced.saturating_add(1);
        self.since_checkpoint += 1;
    }

    /// Appends a checkpoint record, syncs the log, then anchors the
    /// checkpoint in the sidecar file.
    pub(super) fn checkpoint(&mut self) -> Result<(), AuditError> {
        let (line, tag) = record::encode_checkpoint(&self.mac, self.next_seq, &self.head);
        self.write_line(&line)?;
        let seq = self.next_seq;
        self.advance(tag);
        self.sync()?;
        for copy in std::iter::once(&self.anchor).chain(self.options.anchor.as_ref()) {
            write_atomically(copy, &line).map_err(|source| AuditError::Write {
                path: copy.clone(),
                source,
            })?;
        }
        self.since_checkpoint = 0;
        tracing::info!(
            target: "atom_audit::checkpoint",
            log = %self.path.display(),
            seq,
            mac = %record::hex(&tag),
            "audit log checkpoint"
        );
        Ok(())
    }

    /// One `write` of one whole line (the file is in append mode).
    pub(super) fn write_line(&mut self, line: &[u8]) -> Result<(), AuditError> {
        (&*self.file)
            .write_all(line)
            .map_err(|source| AuditError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.end += line.len() as u64;
        Ok(())
    }

    /// The exclusive lock on the log that every process appending to it
    /// takes around each append, so that several processes (the server and
    /// an operator's `atom` command) extend one chain.
    pub(super) fn lock(&self) -> Result<FileLock, AuditError> {
        FileLock::take(&self.file).map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Under the lock: if another process appended since our last write,
    /// continue the chain from its last record.
    pub(super) fn catch_up(&mut self) -> Result<(), AuditError> {
        let read_error = |source| AuditError::Read {
            path: self.path.clone(),
            source,
        };
        let len = self.file.metadata().map_err(read_error)?.len();
        if len == self.end {
            return Ok(());
        }
        let mut file: &File = &self.file;
        match chain_head(&self.path, &mut file, len, &self.mac)? {
            Some((seq, tag, _)) if len > self.end => {
                self.next_seq = seq + 1;
                self.head = tag;
                self.end = len;
                Ok(())
            }
            _ => Err(AuditError::Damaged {
                path: self.path.clone(),
                problem: format!(
                    "it shrank from {} to {len} bytes while open: records were removed",
                    self.end
                ),
            }),
        }
    }

    pub(super) fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.unsynced = 0;
        Ok(())
    }

    /// Fails unless the log's path still names the file we have open: a
    /// removed or replaced log would swallow records unseen.
    pub(super) fn check_identity(&self) -> Result<(), AuditError> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if Identity::of(&meta) == self.identity => Ok(()),
            Ok(_) => Err(AuditError::Replaced {
                path: self.path.clone(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(AuditError::Replaced {
                path: self.path.clone(),
            }),
            Err(source) => Err(AuditError::Write {
                path: self.path.clone(),
                source,
            }),
        }
    }
}
