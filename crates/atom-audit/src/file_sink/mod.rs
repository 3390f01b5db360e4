//! The append-only, hash-chained JSON Lines log.
//!
//! # Chain
//! Every line is a record whose MAC (under the audit key) covers its
//! sequence number and the previous record's MAC; see the format in
//! `record.rs` (and [`verify`](crate::verify)). Without the audit key no one
//! can change, insert, remove or reorder records and recompute the chain.
//!
//! # Checkpoints (tail truncation)
//! A chain alone cannot show that its end was cut off: a prefix of a valid
//! chain is a valid chain. So every [`FileSinkOptions::checkpoint_every`]
//! records, on [`AuditSink::flush`], and when an existing log is opened,
//! the sink appends a checkpoint record, syncs the log, and then writes a
//! copy of that checkpoint record to the sidecar file
//! [`checkpoint_path`]`(log)` atomically (temporary file, fsync, rename,
//! fsync of the directory). `verify` then requires the log to contain that
//! very record: cutting the log anywhere before the last checkpoint is
//! detected. Records after the last checkpoint (fewer than the interval, or
//! none after a clean `flush`) are "unanchored" and `verify` reports how
//! many. Someone who can write both files can still roll both back to an
//! older checkpoint; ship the tracing output (which logs each checkpoint's
//! sequence number and MAC at INFO, target `atom_audit::checkpoint`) off
//! the host to detect that too.
//!
//! # Concurrency
//! Within a process, appends are serialized by one `tokio::sync::Mutex`
//! around the writer; across processes (the server and an operator's
//! `atom` command share the default log), by an exclusive `flock` on the
//! log taken around each append. Under both, a writer first checks whether
//! the file grew since its own last write and, if so, continues the chain
//! from the last record (after authenticating it), then encodes, chains and
//! writes its record with a single `write` of one whole line: lines never
//! interleave and the chain never forks. When the file lock is free (the
//! usual case) the append runs inline, with no `.await` between taking the
//! locks and updating the chain state; when another process holds it, the
//! append waits on tokio's blocking pool in a job that owns the guard.
//! Either way a caller that gives up waiting (its future is dropped) cannot
//! leave the chain state behind the file. The fsync (milliseconds on some disks) runs after both locks
//! are released, so other tasks keep appending meanwhile and one fsync
//! covers all of their records written so far. Checkpoints are written
//! under both locks, so the checkpoint file always names the newest one.
//!
//! # Fail-closed
//! Any I/O error, or finding that the log path no longer names the open
//! file (removed, renamed, replaced), fails the append; after that the sink
//! refuses all events ([`AuditError::Poisoned`]) because the end of the
//! file is uncertain. Opening refuses a log whose last record is torn, does
//! not authenticate, is under another audit key, or is shorter than its
//! checkpoint file says.

use std::fs::File;
use std::io;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use atom_crypto::{Key, MacKey};

use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::record;
use crate::sink::AuditSink;

mod files;
mod writer;

use writer::Writer;

/// When the log is fsynced. Whatever the setting, the log is synced before
/// every checkpoint is anchored, so the checkpoint file never points past
/// what is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `fdatasync` after every record, before `record` returns: an event
    /// that was reported recorded survives a power loss. The default,
    /// because an audit record that can vanish after the access it records
    /// went ahead is what fail-closed is meant to prevent.
    #[default]
    EveryRecord,
    /// `fdatasync` after every N records: a power loss can lose up to N-1
    /// records whose operations went ahead.
    EveryN(NonZeroU32),
    /// Never sync (except at checkpoints): the operating system writes when
    /// it likes; a power loss can lose everything since the last
    /// checkpoint. A process crash loses nothing.
    Never,
}

/// Settings of a [`FileSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSinkOptions {
    /// When to fsync; default [`Durability::EveryRecord`].
    pub durability: Durability,
    /// A checkpoint after this many records; default 100. Smaller anchors
    /// the tail more tightly at the cost of three more fsyncs per
    /// checkpoint.
    pub checkpoint_every: NonZeroU64,
    /// A second copy of each checkpoint, kept away from the log (e.g.
    /// beside the audit key file): the sidecar can be deleted with the log,
    /// this one is meant not to be, so a log emptied or removed together
    /// with its sidecar is still found out. `None`: the sidecar only.
    pub anchor: Option<PathBuf>,
}

impl Default for FileSinkOptions {
    fn default() -> FileSinkOptions {
        FileSinkOptions {
            durability: Durability::default(),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            anchor: None,
        }
    }
}

impl FileSinkOptions {
    /// The same options with another durability.
    pub fn durability(mut self, durability: Durability) -> FileSinkOptions {
        self.durability = durability;
        self
    }

    /// The same options with checkpoints also copied to `anchor`.
    pub fn anchor(mut self, anchor: impl Into<PathBuf>) -> FileSinkOptions {
        self.anchor = Some(anchor.into());
        self
    }

    /// The same options with another checkpoint interval.
    pub fn checkpoint_every(mut self, records: NonZeroU64) -> FileSinkOptions {
        self.checkpoint_every = records;
        self
    }
}

const DEFAULT_CHECKPOINT_EVERY: NonZeroU64 = match NonZeroU64::new(100) {
    Some(n) => n,
    None => NonZeroU64::MIN,
};

/// The checkpoint file of a log: the log's name with `.checkpoint`
/// appended (`audit.jsonl` -> `audit.jsonl.checkpoint`), in the same
/// directory.
pub fn checkpoint_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint");
    log.with_file_name(name)
}

/// The hash-chained JSON Lines log; see the module documentation of this
/// type's file for the scheme. Cheap to share behind an `Arc`.
pub struct FileSink {
    path: PathBuf,
    key_id: atom_crypto::KeyId,
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl FileSink {
    /// Opens (or creates, mode 0600) the log at `path`, chained under the
    /// audit key `key`, with default options.
    pub async fn open(path: impl Into<PathBuf>, key: &Key) -> Result<FileSink, AuditError> {
        FileSink::open_with(path, key, FileSinkOptions::default()).await
    }

    /// Opens (or creates) the log at `path` with `options`. An existing log
    /// is continued after checking its last record and its checkpoint file,
    /// and a checkpoint is written at once to anchor what is already there.
    pub async fn open_with(
        path: impl Into<PathBuf>,
        key: &Key,
        options: FileSinkOptions,
    ) -> Result<FileSink, AuditError> {
        let path = path.into();
        let mac = MacKey::derive(key, record::CHAIN_PURPOSE);
        let key_id = mac.key_id();
        let open_path = path.clone();
        let writer = tokio::task::spawn_blocking(move || Writer::open(open_path, mac, options))
            .await
            .map_err(|e| AuditError::Open {
                path: path.clone(),
                source: io::Error::other(format!("the opening task failed: {e}")),
            })??;
        Ok(FileSink {
            path,
            key_id,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the audit key the log is chained under.
    pub fn key_id(&self) -> atom_crypto::KeyId {
        self.key_id
    }

    /// Runs `job` on the blocking pool. A job that holds the writer's guard
    /// keeps the lock until the file and the chain state agree again, even
    /// if the caller stops waiting.
    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| AuditError::Write {
                path: self.path.clone(),
                source: io::Error::other(format!("the writing task failed: {e}")),
            })?
    }
}

#[async_trait]
impl AuditSink for FileSink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut guard = Arc::clone(&self.writer).lock_owned().await;
        // Fast path: no other process holds the log's lock, and the write
        // (to the page cache) runs inline with no `.await` between taking
        // the lock and updating the chain, so a caller that stops waiting
        // cannot leave the chain state behind the file. When another
        // process holds the lock, wait for it on the blocking pool in a job
        // that owns the guard, for the same reason.
        let (guard, next) = match guard.try_append(event)? {
            Some(next) => (guard, next),
            None => {
                let event = event.clone();
                self.blocking(move || {
                    let next = guard.append(&event)?;
                    Ok((guard, next))
                })
                .await?
            }
        };
        match next {
            Next::Done => Ok(()),
            // fsync without the lock, so that concurrent syncs overlap.
            Next::Sync => {
                let sync = guard.sync_handle();
                drop(guard);
                self.blocking(move || sync.run()).await
            }
            Next::Checkpoint => {
                let mut guard = guard;
                self.blocking(move || guard.checkpoint_locked()).await
            }
        }
    }

    async fn flush(&self) -> Result<(), AuditError> {
        let mut guard = Arc::clone(&self.writer).lock_owned().await;
        self.blocking(move || guard.flush()).await
    }

    async fn check(&self) -> Result<(), AuditError> {
        // One stat under the lock; nothing written, nothing poisoned.
        self.writer.lock().await.ready()
    }
}

/// What an append leaves to do once the line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing: durability allows the record to stay in the page cache.
    Done,
    /// fsync the log (outside the lock).
    Sync,
    /// Write a checkpoint (on the blocking pool, owning the guard).
    Checkpoint,
}

/// An fsync of the log that runs without the writer's lock.
struct SyncHandle {
    path: PathBuf,
    file: Arc<File>,
    poisoned: Arc<AtomicBool>,
}

impl SyncHandle {
    fn run(self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| {
            // Whether the records reached the disk is now unknown.
            self.poisoned.store(true, Ordering::SeqCst);
            AuditError::Write {
                path: self.path,
                source,
            }
        })
    }
}
