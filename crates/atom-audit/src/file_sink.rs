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

use std::fs::{File, OpenOptions};
use std::io::{self, SeekFrom, Write as _};
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use atom_crypto::{Key, MacKey};

use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::record::{self, GENESIS, Kind, Tag};
use crate::sink::AuditSink;

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

/// What identifies the open file, to notice that its path now names
/// another file or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt as _;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Identity {
        Identity {}
    }
}

/// The open log and the chain's state, under the sink's lock.
struct Writer {
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
    fn open(path: PathBuf, mac: MacKey, options: FileSinkOptions) -> Result<Writer, AuditError> {
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

        for copy in std::iter::once(&anchor).chain(options.anchor.as_ref()) {
            check_checkpoint_copy(copy, &mac, next_seq, &damaged)?;
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
        if last_kind == Some(Kind::Event) {
            // Anchor what earlier runs wrote, so it cannot be cut unnoticed.
            writer.guarded(Writer::checkpoint)?;
        }
        drop(lock);
        Ok(writer)
    }

    /// Chains and writes one event; says what is left to do.
    /// Appends if the log's lock is free right now; `None` when another
    /// process holds it.
    fn try_append(&mut self, event: &AuditEvent) -> Result<Option<Next>, AuditError> {
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
    fn append(&mut self, event: &AuditEvent) -> Result<Next, AuditError> {
        self.guarded(|w| {
            w.check_identity()?;
            let _lock = w.lock()?;
            w.append_locked(event)
        })
    }

    /// Chains and writes one event under the log's lock; says what is left
    /// to do.
    fn append_locked(&mut self, event: &AuditEvent) -> Result<Next, AuditError> {
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
    fn checkpoint_locked(&mut self) -> Result<(), AuditError> {
        self.guarded(|w| {
            let _lock = w.lock()?;
            w.catch_up()?;
            w.checkpoint()
        })
    }

    fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            poisoned: Arc::clone(&self.poisoned),
        }
    }

    fn flush(&mut self) -> Result<(), AuditError> {
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

    /// Runs `step` unless the writer is poisoned, and poisons it when the
    /// step fails: after a failed write the end of the file is uncertain.
    fn guarded<T>(
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

    fn advance(&mut self, tag: Tag) {
        self.head = tag;
        self.next_seq += 1;
        self.unsynced = self.unsynced.saturating_add(1);
        self.since_checkpoint += 1;
    }

    /// Appends a checkpoint record, syncs the log, then anchors the
    /// checkpoint in the sidecar file.
    fn checkpoint(&mut self) -> Result<(), AuditError> {
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
    fn write_line(&mut self, line: &[u8]) -> Result<(), AuditError> {
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
    fn lock(&self) -> Result<FileLock, AuditError> {
        FileLock::take(&self.file).map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Under the lock: if another process appended since our last write,
    /// continue the chain from its last record.
    fn catch_up(&mut self) -> Result<(), AuditError> {
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

    fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.unsynced = 0;
        Ok(())
    }

    /// Fails unless the log's path still names the file we have open: a
    /// removed or replaced log would swallow records unseen.
    fn check_identity(&self) -> Result<(), AuditError> {
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

/// Checks a copy of the last checkpoint (the sidecar, or the anchor kept
/// away from the log) against a log of `next_seq` records: it must
/// authenticate, and the log must reach it. A missing copy is fine (a new
/// log, or an anchor configured since).
fn check_checkpoint_copy(
    copy: &Path,
    mac: &MacKey,
    next_seq: u64,
    damaged: &dyn Fn(String) -> AuditError,
) -> Result<(), AuditError> {
    let bytes = match std::fs::read(copy) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
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
    Ok(())
}

fn open_options() -> OpenOptions {
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
fn last_line(file: &mut (impl io::Read + io::Seek), len: u64) -> io::Result<Option<Vec<u8>>> {
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
        end = start;
    }
}

/// The last record of the log: its sequence number, tag and kind, after
/// checking that it is whole, under `mac`'s key and authentic. `None` for
/// an empty log.
fn chain_head(
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
struct FileLock(Arc<File>);

impl FileLock {
    fn take(file: &Arc<File>) -> io::Result<FileLock> {
        file.lock()?;
        Ok(FileLock(Arc::clone(file)))
    }

    /// The lock if it is free now, `None` if another holder has it.
    fn try_take(file: &Arc<File>) -> io::Result<Option<FileLock>> {
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
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    atom_io::write_atomically(path, contents).map_err(|e| e.source)
}
