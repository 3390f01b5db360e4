//! Parallel credential rewrap: atom-credentials' `rewrap` run by several
//! workers at once, each on its own id range from `split_ids` (any
//! backend) or all sharing the table with `SKIP LOCKED` (PostgreSQL), with
//! cursors for resuming, a progress bar, and a final single-worker sweep
//! that catches rows a worker passed before an app wrote them under an old
//! key.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atom_credentials::{
    Backend, CredentialStore, IdRange, MAX_REPORTED_FAILURES, RewrapFailure, RewrapOptions,
    RewrapProgress,
};
use indicatif::ProgressBar;

use crate::error::Error;
use crate::state::RangeCursor;

/// The default number of rewrap workers for a database URL: the number of
/// cores for SQLite (the work is in this process, and SQLite has one
/// writer), four times that for a server database (there a worker mostly
/// waits on round trips and commits; measured on PostgreSQL: 2 workers
/// 47k rows/s, 8 workers 91k rows/s on 2 cores).
pub fn default_workers(database_url: Option<&str>) -> NonZeroU32 {
    let cores = cores();
    match database_url {
        Some(url) if !url.trim_start().to_ascii_lowercase().starts_with("sqlite") => {
            cores.saturating_mul(NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN))
        }
        _ => cores,
    }
}

/// The number of cores, at least one.
pub(crate) fn cores() -> NonZeroU32 {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| NonZeroU32::try_from(n).ok())
        .unwrap_or(NonZeroU32::MIN)
}

/// How to run the workers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineConfig {
    pub(crate) workers: NonZeroU32,
    pub(crate) batch_size: NonZeroU32,
    /// Share one range with `FOR UPDATE SKIP LOCKED` (PostgreSQL only).
    pub(crate) skip_locked: bool,
    /// Seal plaintext rows (only when the operator asked for it).
    pub(crate) seal_plaintext: bool,
}

/// What a pass did, over all workers.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Rows rewrapped (dry run: rows that open and would be).
    pub(crate) done: u64,
    /// Rows changed concurrently by an app, left as the app wrote them.
    pub(crate) skipped: u64,
    /// Rows that do not open.
    pub(crate) failed: u64,
    /// The first failures, with reasons.
    pub(crate) failures: Vec<RewrapFailure>,
}

impl Totals {
    fn add(&mut self, p: &RewrapProgress) {
        self.done += p.done;
        self.skipped += p.skipped;
        self.failed += p.failed;
        let room = MAX_REPORTED_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(p.failures.iter().take(room).cloned());
    }
}

/// Called (at most once a second, and at the end) with the cursors and the
/// rows done so far, to persist them.
pub(crate) type Checkpoint = Box<dyn FnMut(&[RangeCursor], u64) -> Result<(), Error> + Send>;

struct Shared {
    cursors: Vec<RangeCursor>,
    done: u64,
    checkpoint: Option<Checkpoint>,
    last_saved: Instant,
    error: Option<Error>,
}

impl Shared {
    fn save(&mut self, force: bool) {
        if !force && self.last_saved.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_saved = Instant::now();
        if let Some(checkpoint) = self.checkpoint.as_mut()
            && let Err(e) = checkpoint(&self.cursors, self.done)
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }
}

/// The ranges to work on: the saved cursors, or a fresh split.
pub(crate) async fn plan_ranges(
    store: &CredentialStore,
    config: &EngineConfig,
    saved: &[RangeCursor],
) -> Result<Vec<RangeCursor>, Error> {
    if use_skip_locked(store, config) {
        return Ok(Vec::new());
    }
    if !saved.is_empty() {
        return Ok(saved.to_vec());
    }
    Ok(store
        .split_ids(config.workers)
        .await?
        .into_iter()
        .map(|r| RangeCursor {
            after: r.after,
            up_to: r.up_to,
            last_id: None,
            finished: false,
        })
        .collect())
}

fn use_skip_locked(store: &CredentialStore, config: &EngineConfig) -> bool {
    config.skip_locked && store.backend() == Backend::Postgres
}

/// Rewraps (or with `dry_run`, opens) every row of `cursors` not under the
/// primary key of `store`'s keyring, `config.workers` at a time. Without
/// `dry_run` and when every row opened, a single sweep over the whole table
/// follows, so that rows written under an old key behind a worker's cursor
/// are not missed.
pub(crate) async fn run(
    store: &CredentialStore,
    config: &EngineConfig,
    cursors: Vec<RangeCursor>,
    dry_run: bool,
    bar: &ProgressBar,
    checkpoint: Option<Checkpoint>,
) -> Result<(Totals, Vec<RangeCursor>), Error> {
    let base = RewrapOptions::new()
        .batch_size(config.batch_size)
        .seal_plaintext(config.seal_plaintext)
        .dry_run(dry_run);
    let skip_locked = use_skip_locked(store, config);
    let shared = Arc::new(Mutex::new(Shared {
        cursors: cursors.clone(),
        done: 0,
        checkpoint,
        last_saved: Instant::now(),
        error: None,
    }));
    let mut tasks = Vec::new();
    if skip_locked {
        for _ in 0..config.workers.get() {
            let options = base.clone().skip_locked(true);
            tasks.push(spawn_worker(store, options, None, &shared, bar));
        }
    } else {
        for (i, cursor) in cursors.iter().enumerate() {
            if cursor.finished {
                continue;
            }
            let mut range = IdRange::new(cursor.after, cursor.up_to);
            if let Some(last) = cursor.last_id {
                range = range.resume_after(last);
            }
            let options = base.clone().range(range);
            tasks.push(spawn_worker(store, options, Some(i), &shared, bar));
        }
    }
    let mut totals = Totals::default();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(progress)) => totals.add(&progress),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error
                    .get_or_insert(Error::Failed(format!("a rewrap worker stopped: {join}")));
            }
        }
    }
    {
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.save(true);
        if let Some(e) = shared.error.take() {
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !dry_run && totals.failed == 0 {
        // Rows an app wrote under an old key behind a cursor, or that a
        // SKIP LOCKED worker passed while an app held their lock.
        let before = bar.position();
        let sweep = store
            .rewrap(&base, |p| bar.set_position(before + p.done))
            .await?;
        totals.add(&sweep);
    }
    let cursors = shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .cursors
        .clone();
    Ok((totals, cursors))
}

/// What a full rewrap of the credential table did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapTotals {
    /// Rows sealed again under the primary key.
    pub done: u64,
    /// Rows an app changed meanwhile (left as the app wrote them).
    pub skipped: u64,
    /// Rows that did not open.
    pub failed: u64,
}

/// Rewraps every row of `store` not under its primary key with `workers`
/// in parallel on disjoint id ranges, then sweeps once, as the rewrap
/// phase of a rotation does, without a state file or audit of its own
/// beyond the store's. For benchmarks and tools that rewrap outside a
/// rotation.
pub async fn rewrap_credentials(
    store: &CredentialStore,
    workers: NonZeroU32,
    batch_size: NonZeroU32,
) -> Result<RewrapTotals, Error> {
    let config = EngineConfig {
        workers,
        batch_size,
        skip_locked: false,
        seal_plaintext: false,
    };
    let cursors = plan_ranges(store, &config, &[]).await?;
    let (totals, _) = run(store, &config, cursors, false, &ProgressBar::hidden(), None).await?;
    Ok(RewrapTotals {
        done: totals.done,
        skipped: totals.skipped,
        failed: totals.failed,
    })
}

fn spawn_worker(
    store: &CredentialStore,
    options: RewrapOptions,
    cursor: Option<usize>,
    shared: &Arc<Mutex<Shared>>,
    bar: &ProgressBar,
) -> tokio::task::JoinHandle<Result<RewrapProgress, Error>> {
    let store = store.clone();
    let shared = Arc::clone(shared);
    let bar = bar.clone();
    tokio::spawn(async move {
        let mut seen = 0;
        let progress = store
            .rewrap(&options, |p| {
                bar.inc(p.done.saturating_sub(seen));
                let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                shared.done += p.done.saturating_sub(seen);
                seen = p.done;
                if let Some(i) = cursor {
                    shared.cursors[i].last_id = p.last_id.or(shared.cursors[i].last_id);
                    shared.cursors[i].finished = p.finished;
                }
                shared.save(false);
            })
            .await?;
        Ok(progress)
    })
}
