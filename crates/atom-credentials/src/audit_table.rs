//! The audit trail in the credentials database: [`DatabaseAuditSink`].
//!
//! One chain for every process writing to the database. `audit_events`
//! holds one row per record, `seq` and the record's text (the file log's
//! line format, so `verify` reads both); `audit_chain_head` holds one row,
//! the next sequence number and the last record's MAC. An append locks the
//! head row, seals its events after it, inserts them and moves the head,
//! all in one transaction: appenders of every process take turns on that
//! lock (SQLite's single writer does the same), so two processes can
//! never give out one number twice or fork the chain.
//!
//! - A credential write records its event in its own transaction
//!   ([`DatabaseAuditSink::append_in`], through the store): the change and
//!   its record commit together, or neither does. On SQLite, whose writers
//!   take turns anyway, the event is chained right there. On PostgreSQL and
//!   MySQL it goes to `audit_pending` under its MAC, without the head's
//!   lock, so concurrent writes still commit in parallel; it is chained by
//!   the next group commit (nudged after the write commits, and swept every
//!   second), of this process or another.
//! - Other events (reads, refusals, events of other crates) go to one task
//!   per process that chains everything waiting, pending rows first, in one
//!   transaction (group commit): a read returns its token only once that
//!   commit is done.

use std::any::Any;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use atom_audit::{
    AuditError, AuditEvent, AuditSink, ChainHead, ChainKey, Ledger, PendingEvent, VerifyReport,
    verify_records,
};
use atom_crypto::Key;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait, Value,
};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, Notify, oneshot};

use crate::config::StoreConfig;
use crate::error::CredentialError;
use crate::sql::statement;
use crate::url::{Backend, DatabaseUrl};

/// The records.
pub(crate) const EVENTS_TABLE: &str = "audit_events";
/// The chain's head: one row, id 1.
pub(crate) const HEAD_TABLE: &str = "audit_chain_head";
/// Events recorded in a change's transaction, waiting to be chained.
pub(crate) const PENDING_TABLE: &str = "audit_pending";
/// Most pending events one group commit chains.
const MAX_PENDING: usize = 2000;
/// How often the group-commit task looks for pending events when nothing
/// else wakes it (a write whose nudge came before its commit).
const SWEEP: std::time::Duration = std::time::Duration::from_secs(1);
/// Most events one group commit appends.
const MAX_GROUP: usize = 512;
/// Records read per query by `verify`.
const VERIFY_PAGE: u64 = 5000;

/// Audit events chained in the credentials database (see the module
/// documentation). Cheap to clone; clones share the pool and the
/// group-commit task, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct DatabaseAuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    url: DatabaseUrl,
    chain: ChainKey,
    /// This process's SQLite writers take turns here (the store adopts
    /// it, see `CredentialStore::assemble`).
    sqlite_writer: Arc<Mutex<()>>,
    /// Events waiting for a group commit; shared with the task.
    queue: Arc<Queue>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last clone of the sink is gone: the task ends once the
        // queue is empty.
        self.queue.closed.store(true, Ordering::SeqCst);
        self.queue.wake.notify_one();
    }
}

/// What the group-commit task waits on: events (with who waits for
/// them), a wake-up for pending rows, and whether the sink is gone.
#[derive(Default)]
struct Queue {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    wake: Notify,
    closed: AtomicBool,
}

impl Queue {
    /// Queues `waiter`; answers it with an error at once when the task is
    /// gone (under the same lock the task's exit takes, so none is left
    /// waiting forever).
    fn push(&self, waiter: Waiting) {
        let mut waiting = self.lock();
        if self.closed.load(Ordering::SeqCst) {
            drop(waiting);
            let _ = waiter
                .done
                .send(Err("its group-commit task has stopped".to_owned()));
            return;
        }
        waiting.push(waiter);
        drop(waiting);
        self.wake.notify_one();
    }

    /// The task is ending (the sink is gone, or the task panicked or its
    /// runtime stopped): everything still waiting gets an error.
    fn close(&self) {
        let left = {
            let mut waiting = self.lock();
            self.closed.store(true, Ordering::SeqCst);
            std::mem::take(&mut *waiting)
        };
        for waiter in left {
            let _ = waiter
                .done
                .send(Err("its group-commit task has stopped".to_owned()));
        }
    }

    /// Everything waiting, up to `max`, oldest first.
    fn take(&self, max: usize) -> Vec<Waiting> {
        let mut waiting = self.lock();
        let at = waiting.len().min(max);
        let rest = waiting.split_off(at);
        std::mem::replace(&mut *waiting, rest)
    }

    /// Puts `waiters` back at the front (a transaction they rode on did
    /// not commit) and wakes the task.
    fn put_back(&self, waiters: Vec<Waiting>) {
        if waiters.is_empty() {
            return;
        }
        let mut waiting = self.lock();
        let later = std::mem::replace(&mut *waiting, waiters);
        waiting.extend(later);
        drop(waiting);
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // A panic cannot leave the Vec half-changed.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Events of other operations taken into a write's transaction on SQLite
/// (they ride on its commit instead of waiting for one of their own).
/// [`Riders::committed`] answers them once that transaction committed;
/// dropped without it, they go back to the queue for the group commit.
#[must_use = "riders are answered once the transaction commits"]
pub(crate) struct Riders {
    waiters: Vec<Waiting>,
    queue: Option<Arc<Queue>>,
}

impl Riders {
    fn none() -> Riders {
        Riders {
            waiters: Vec::new(),
            queue: None,
        }
    }

    /// The transaction they rode on committed: their events are recorded.
    pub(crate) fn committed(mut self) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.done.send(Ok(()));
        }
    }

    /// The transaction they rode on did not commit: back to the group
    /// commit, which records them.
    pub(crate) fn put_back(mut self) {
        if let Some(queue) = &self.queue {
            queue.put_back(std::mem::take(&mut self.waiters));
        }
    }
}

impl Drop for Riders {
    /// Dropped without an outcome (the write was cancelled during its
    /// commit): their events may be recorded or not, so they are neither
    /// recorded again nor reported as recorded: their operations fail.
    fn drop(&mut self) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.done.send(Err(
                "the transaction carrying its audit event ended without a known outcome".to_owned(),
            ));
        }
    }
}

/// An event waiting for a group commit (none: a flush), and who waits.
struct Waiting {
    event: Option<AuditEvent>,
    done: oneshot::Sender<Result<(), String>>,
}

impl std::fmt::Debug for DatabaseAuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseAuditSink")
            .field("database", &self.inner.url)
            .field("audit_key", &self.inner.chain.key_id())
            .finish_non_exhaustive()
    }
}

impl DatabaseAuditSink {
    /// Connects to `config.database_url`, runs the credential migrations
    /// (which create the audit tables) and starts the group-commit task.
    /// Records are chained under `audit_key`. Must be called within a Tokio
    /// runtime.
    pub async fn open(
        config: &StoreConfig,
        audit_key: &Key,
    ) -> Result<DatabaseAuditSink, CredentialError> {
        crate::migration::run_alone(config).await?;
        DatabaseAuditSink::start(config, audit_key).await
    }

    /// Connects to `config.database_url` without changing its schema: the
    /// tables must be there (an SQLite file that does not exist is not
    /// created), else [`CredentialError::NotMigrated`]. For commands that
    /// record events but must not migrate.
    pub async fn open_existing(
        config: &StoreConfig,
        audit_key: &Key,
    ) -> Result<DatabaseAuditSink, CredentialError> {
        let mut config = config.clone();
        config.database_url = config.database_url.without_create();
        if config.database_url.sqlite_file_missing() {
            return Err(CredentialError::NotMigrated {
                pending: crate::migration::all_names(),
            });
        }
        let db = connect_existing(&config.clone().with_max_connections(NonZeroU32::MIN)).await?;
        let pending = crate::migration::pending(&db).await;
        db.close().await?;
        let pending = pending?;
        if !pending.is_empty() {
            return Err(CredentialError::NotMigrated { pending });
        }
        DatabaseAuditSink::start(&config, audit_key).await
    }

    async fn start(
        config: &StoreConfig,
        audit_key: &Key,
    ) -> Result<DatabaseAuditSink, CredentialError> {
        // One connection appends; a second answers `check`.
        let pool = config
            .clone()
            .with_max_connections(NonZeroU32::MIN.saturating_add(1));
        let db = crate::connect::connect(&pool).await?;
        let chain = ChainKey::new(audit_key);
        let head = read_head(&db).await?;
        let sqlite_writer: Arc<Mutex<()>> = Arc::default();
        let queue: Arc<Queue> = Arc::default();
        tokio::spawn(commit_groups(
            Appender {
                db: db.clone(),
                backend: config.database_url.backend(),
                chain: chain.clone(),
                sqlite_writer: Arc::clone(&sqlite_writer),
                rejected: Rejected::default(),
            },
            Arc::clone(&queue),
        ));
        tracing::debug!(%head, "audit trail in the credentials database");
        Ok(DatabaseAuditSink {
            inner: Arc::new(Inner {
                db,
                url: config.database_url.clone(),
                chain,
                sqlite_writer,
                queue,
            }),
        })
    }

    /// Whether this sink's table is in the database at `url`.
    pub fn is_in(&self, url: &DatabaseUrl) -> bool {
        self.inner.url.without_create() == url.without_create()
    }

    /// The turn this process's SQLite writers take.
    pub(crate) fn sqlite_writer(&self) -> Arc<Mutex<()>> {
        Arc::clone(&self.inner.sqlite_writer)
    }

    /// Where the chain ends now.
    pub async fn head(&self) -> Result<ChainHead, CredentialError> {
        read_head(&self.inner.db).await
    }

    /// Records `events` in `txn`, a write transaction on this sink's
    /// database: chained at once on SQLite, pending (under their MACs) on
    /// the other backends. They commit with `txn`, or not at all; call
    /// [`DatabaseAuditSink::nudge`] once it committed.
    pub(crate) async fn append_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[&AuditEvent],
    ) -> Result<(), CredentialError> {
        match txn.get_database_backend() {
            DbBackend::Sqlite => chain_in(txn, &self.inner.chain, events, None).await,
            _ => {
                let pending = events.iter().map(|e| self.inner.chain.pending(e));
                insert_pending(txn, pending).await?;
                self.nudge();
                Ok(())
            }
        }
    }

    /// [`DatabaseAuditSink::append_in`], and on SQLite the events waiting
    /// for a group commit ride along: chained in `txn` too, answered by
    /// [`Riders::committed`] once `txn` committed. SQLite has one writer,
    /// so this saves their own commit and its sync.
    pub(crate) async fn append_in_with_riders(
        &self,
        txn: &DatabaseTransaction,
        event: &AuditEvent,
    ) -> Result<Riders, CredentialError> {
        if txn.get_database_backend() != DbBackend::Sqlite {
            self.append_in(txn, &[event]).await?;
            return Ok(Riders::none());
        }
        let riders = Riders {
            waiters: self.inner.queue.take(MAX_GROUP),
            queue: Some(Arc::clone(&self.inner.queue)),
        };
        let events: Vec<&AuditEvent> = riders
            .waiters
            .iter()
            .filter_map(|w| w.event.as_ref())
            .chain([event])
            .collect();
        match chain_in(txn, &self.inner.chain, &events, None).await {
            Ok(()) => Ok(riders),
            Err(e) => {
                riders.put_back();
                Err(e)
            }
        }
    }

    /// Asks the group-commit task to chain pending events now.
    pub(crate) fn nudge(&self) {
        self.inner.queue.wake.notify_one();
    }

    async fn wait_for_group(&self, event: Option<AuditEvent>) -> Result<(), AuditError> {
        let (done, committed) = oneshot::channel();
        self.inner.queue.push(Waiting { event, done });
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.failed(message)),
            Err(_) => Err(self.failed("its group-commit task has stopped".to_owned())),
        }
    }

    fn failed(&self, message: String) -> AuditError {
        AuditError::Sink {
            sink: format!("audit table {EVENTS_TABLE} in {}", self.inner.url),
            message,
        }
    }
}

#[async_trait]
impl AuditSink for DatabaseAuditSink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.wait_for_group(Some(event.clone())).await
    }

    /// Chains every pending event now (before a shutdown, or a check).
    async fn flush(&self) -> Result<(), AuditError> {
        self.wait_for_group(None).await
    }

    async fn check(&self) -> Result<(), AuditError> {
        read_head(&self.inner.db)
            .await
            .map(drop)
            .map_err(|e| self.failed(e.to_string()))
    }

    fn ledger(&self) -> Option<&dyn Ledger> {
        Some(self)
    }

    async fn record_beside_ledger(&self, _event: &AuditEvent) -> Result<(), AuditError> {
        // The writer appended it in its own transaction.
        Ok(())
    }
}

impl Ledger for DatabaseAuditSink {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What the group-commit task appends with.
struct Appender {
    db: DatabaseConnection,
    backend: Backend,
    chain: ChainKey,
    sqlite_writer: Arc<Mutex<()>>,
    /// Pending rows that do not authenticate: left for verify to report,
    /// skipped (and logged once) from then on.
    rejected: Rejected,
}

/// Ids of pending rows that do not authenticate (at most
/// [`MAX_PENDING`] remembered).
#[derive(Default)]
struct Rejected(std::sync::Mutex<std::collections::BTreeSet<i64>>);

impl Rejected {
    fn ids(&self) -> Vec<i64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Remembers `id`; whether it is new.
    fn add(&self, id: i64) -> bool {
        let mut ids = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.len() < MAX_PENDING && ids.insert(id)
    }

    /// ` AND id NOT IN (...)` with one mark per rejected id, and the ids.
    fn clause(&self) -> (String, Vec<Value>) {
        let ids = self.ids();
        if ids.is_empty() {
            return (String::new(), Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        (
            format!(" AND id NOT IN ({marks})"),
            ids.into_iter().map(Value::from).collect(),
        )
    }
}

impl Appender {
    /// [`Appender::append_once`], again when another process chained the
    /// same pending events meanwhile (its transaction then rolled back).
    async fn append(&self, events: &[&AuditEvent]) -> Result<(), CredentialError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.append_once(events).await {
                // Another process chained the same events (Contended) or
                // took the same sequence numbers (a unique key: Conflict).
                Err(
                    CredentialError::Contended { message } | CredentialError::Conflict { message },
                ) if attempts < 3 => {
                    tracing::debug!(%message, "audit group commit retried");
                }
                other => return other,
            }
        }
    }

    /// Chains the pending events and `events` in one transaction. Nothing
    /// to do: no transaction.
    async fn append_once(&self, events: &[&AuditEvent]) -> Result<(), CredentialError> {
        let sqlite = self.backend == Backend::Sqlite;
        if events.is_empty() && !has_pending(&self.db, &self.rejected).await? {
            return Ok(());
        }
        let _turn = match sqlite {
            true => Some(self.sqlite_writer.lock().await),
            false => None,
        };
        let mut options = TransactionOptions::default();
        if sqlite {
            options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
        } else {
            // Each statement sees what committed before it: the pending
            // rows read once the head's lock is held, whatever the
            // server's default isolation.
            options.isolation_level = Some(IsolationLevel::ReadCommitted);
        }
        let txn = self.db.begin_with_options(options).await?;
        chain_in(&txn, &self.chain, events, Some(&self.rejected)).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// The group-commit task: takes everything waiting (up to [`MAX_GROUP`]),
/// chains it after the pending events in one transaction and answers
/// every waiter with the result. A nudge or the sweep chains pending
/// events alone. Ends once the sink is gone and nothing waits.
async fn commit_groups(appender: Appender, queue: Arc<Queue>) {
    /// Closes the queue however the task ends (a panic, or its runtime
    /// shutting down, included).
    struct Closing(Arc<Queue>);
    impl Drop for Closing {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _closing = Closing(Arc::clone(&queue));
    loop {
        let group = queue.take(MAX_GROUP);
        if group.is_empty() {
            if queue.closed.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                () = queue.wake.notified() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
        }
        let group = match group.is_empty() {
            true => queue.take(MAX_GROUP),
            false => group,
        };
        let events: Vec<&AuditEvent> = group.iter().filter_map(|w| w.event.as_ref()).collect();
        let result = appender.append(&events).await;
        if !events.is_empty() {
            metrics::histogram!("atom_audit_group_commit_events").record(events.len() as f64);
        }
        let result = result.map_err(|e| e.to_string());
        if let Err(message) = &result {
            tracing::error!(events = events.len(), error = %message, "audit group commit failed; its operations are refused");
        }
        for waiter in group {
            // A waiter that gave up (its request was cancelled) needs no
            // answer; its event is recorded all the same.
            let _ = waiter.done.send(result.clone());
        }
    }
}

/// Whether any event (not rejected) waits in `audit_pending`.
async fn has_pending(
    db: &impl ConnectionTrait,
    rejected: &Rejected,
) -> Result<bool, CredentialError> {
    let (skip, values) = rejected.clause();
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            &format!("SELECT id FROM {PENDING_TABLE} WHERE 1 = 1{skip} ORDER BY id LIMIT 1"),
            values,
        ))
        .await?;
    Ok(row.is_some())
}

/// Inserts sealed pending events in `txn`.
async fn insert_pending(
    txn: &DatabaseTransaction,
    pending: impl ExactSizeIterator<Item = PendingEvent>,
) -> Result<(), CredentialError> {
    let rows = vec!["(?, ?)"; pending.len()].join(", ");
    if rows.is_empty() {
        return Ok(());
    }
    let values = pending
        .flat_map(|p| [Value::from(p.json), Value::from(p.mac)])
        .collect();
    txn.execute_raw(statement(
        txn.get_database_backend(),
        &format!("INSERT INTO {PENDING_TABLE} (event, mac) VALUES {rows}"),
        values,
    ))
    .await?;
    Ok(())
}

/// The pending events to chain, oldest first: their ids and events. One
/// that does not authenticate is left where it is (verify reports it),
/// remembered in `rejected` and skipped from then on.
async fn take_pending(
    txn: &DatabaseTransaction,
    chain: &ChainKey,
    rejected: &Rejected,
) -> Result<(Vec<i64>, Vec<AuditEvent>), CredentialError> {
    let (skip, values) = rejected.clause();
    let rows = txn
        .query_all_raw(statement(
            txn.get_database_backend(),
            &format!(
                "SELECT id, event, mac FROM {PENDING_TABLE} WHERE 1 = 1{skip} ORDER BY id LIMIT {MAX_PENDING}"
            ),
            values,
        ))
        .await?;
    let (mut ids, mut events) = (Vec::new(), Vec::new());
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let pending = PendingEvent {
            json: row.try_get("", "event")?,
            mac: row.try_get("", "mac")?,
        };
        match chain.open_pending(&pending) {
            Some(event) => {
                ids.push(id);
                events.push(event);
            }
            None if rejected.add(id) => tracing::error!(
                id,
                "a pending audit event in {PENDING_TABLE} does not authenticate under the audit key; it is left unchained for verify to report"
            ),
            None => {}
        }
    }
    Ok((ids, events))
}

/// Chains `events` after the head, in `txn`: locks the head, takes the
/// pending events first when `with_pending` (skipping rejected ones), inserts the records, removes
/// the pending rows chained and moves the head.
async fn chain_in(
    txn: &DatabaseTransaction,
    chain: &ChainKey,
    events: &[&AuditEvent],
    with_pending: Option<&Rejected>,
) -> Result<(), CredentialError> {
    let backend = txn.get_database_backend();
    let lock = match backend {
        DbBackend::Sqlite => "",
        _ => " FOR UPDATE",
    };
    let row = txn
        .query_one_raw(statement(
            backend,
            &format!("SELECT next_seq, last_mac FROM {HEAD_TABLE} WHERE id = 1{lock}"),
            vec![],
        ))
        .await?;
    let mut head = head_of(row)?;
    // Read after the head's lock is held: another process's chaining of
    // the same rows has committed (or not begun).
    let (ids, taken) = match with_pending {
        Some(rejected) => take_pending(txn, chain, rejected).await?,
        None => (Vec::new(), Vec::new()),
    };
    let all: Vec<&AuditEvent> = taken.iter().chain(events.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let mut values: Vec<Value> = Vec::with_capacity(all.len() * 2);
    for event in &all {
        let seq = stored_seq(head.next_seq())?;
        let (record, next) = chain.append(&head, event);
        values.push(seq.into());
        values.push(record.into());
        head = next;
    }
    // In slices, well under every backend's limit of bound values.
    for slice in values.chunks(2 * 500) {
        let rows = vec!["(?, ?)"; slice.len() / 2].join(", ");
        txn.execute_raw(statement(
            backend,
            &format!("INSERT INTO {EVENTS_TABLE} (seq, record) VALUES {rows}"),
            slice.to_vec(),
        ))
        .await?;
    }
    for slice in ids.chunks(500) {
        let marks = vec!["?"; slice.len()].join(", ");
        let removed = txn
            .execute_raw(statement(
                backend,
                &format!("DELETE FROM {PENDING_TABLE} WHERE id IN ({marks})"),
                slice.iter().map(|&id| Value::from(id)).collect(),
            ))
            .await?
            .rows_affected();
        if removed != slice.len() as u64 {
            return Err(CredentialError::Contended {
                message: format!(
                    "pending audit events were chained by another process meanwhile ({removed} of {} still pending)",
                    slice.len()
                ),
            });
        }
    }
    txn.execute_raw(statement(
        backend,
        &format!("UPDATE {HEAD_TABLE} SET next_seq = ?, last_mac = ? WHERE id = 1"),
        vec![
            stored_seq(head.next_seq())?.into(),
            head.last_mac_hex().into(),
        ],
    ))
    .await?;
    Ok(())
}

fn stored_seq(seq: u64) -> Result<i64, CredentialError> {
    i64::try_from(seq).map_err(|_| CredentialError::Database {
        message: format!("the audit chain in {EVENTS_TABLE} is full (record {seq})"),
    })
}

async fn read_head(db: &impl ConnectionTrait) -> Result<ChainHead, CredentialError> {
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            &format!("SELECT next_seq, last_mac FROM {HEAD_TABLE} WHERE id = 1"),
            vec![],
        ))
        .await?;
    head_of(row)
}

fn head_of(row: Option<sea_orm::QueryResult>) -> Result<ChainHead, CredentialError> {
    let damaged = |what: &str| CredentialError::Database {
        message: format!(
            "the audit chain's head ({HEAD_TABLE}, row 1) {what}; keep the database as evidence and verify the trail"
        ),
    };
    let row = row.ok_or_else(|| damaged("is missing"))?;
    let next_seq: i64 = row.try_get("", "next_seq")?;
    let last_mac: String = row.try_get("", "last_mac")?;
    u64::try_from(next_seq)
        .ok()
        .and_then(|next| ChainHead::from_parts(next, &last_mac))
        .ok_or_else(|| damaged("is not well formed"))
}

/// What [`verify_audit_table`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableReport {
    /// The chain in `audit_events`, checked up to its stored head.
    pub chain: VerifyReport,
    /// The stored head.
    pub head: ChainHead,
    /// Events recorded in their change's transaction and not chained yet,
    /// each authentic.
    pub pending: u64,
    /// The id of the first pending row that does not authenticate under
    /// the audit key (forged or altered), if any.
    pub forged_pending: Option<i64>,
}

impl TableReport {
    /// Whether the chain is intact and every pending event authentic.
    pub fn is_intact(&self) -> bool {
        self.chain.is_intact() && self.forged_pending.is_none()
    }
}

impl std::fmt::Display for TableReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.chain.problem {
            Some(problem) => write!(
                f,
                "NOT intact: {problem} ({} records before it are in order)",
                self.chain.records
            )?,
            None => write!(
                f,
                "{}: {} records; the end is the stored head ({})",
                if self.is_intact() {
                    "intact"
                } else {
                    "NOT intact"
                },
                self.chain.records,
                self.head
            )?,
        }
        if let Some(id) = self.forged_pending {
            write!(
                f,
                "; pending event {id} in {PENDING_TABLE} does not authenticate under the audit key: it was forged or altered"
            )?;
        } else if self.pending > 0 {
            write!(
                f,
                "; {} authentic events recorded with their changes wait to be chained",
                self.pending
            )?;
        }
        Ok(())
    }
}

/// Checks the trail in the database at `config.database_url` under
/// `audit_key`, in one consistent snapshot: every record authentic, in
/// order, chained, and the last one the stored head (see
/// [`atom_audit::verify_records`]); every pending event authentic.
/// Changes nothing and runs no migration. An `Err` when the database or
/// its tables cannot be read.
pub async fn verify_audit_table(
    config: &StoreConfig,
    audit_key: &Key,
) -> Result<TableReport, CredentialError> {
    let db = connect_existing(config).await?;
    let result = verify_in(&db, audit_key).await;
    db.close().await?;
    result
}

async fn verify_in(
    db: &DatabaseConnection,
    audit_key: &Key,
) -> Result<TableReport, CredentialError> {
    let backend = db.get_database_backend();
    let txn = match backend {
        // A deferred transaction reads one snapshot of the WAL.
        DbBackend::Sqlite => db.begin().await?,
        _ => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
    };
    let head = read_head(&txn).await?;
    let mut verifier = verify_records(audit_key, head);
    let mut from = i64::MIN;
    'pages: loop {
        let rows = txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT seq, record FROM {EVENTS_TABLE} WHERE seq >= ? ORDER BY seq LIMIT {VERIFY_PAGE}"
                ),
                vec![from.into()],
            ))
            .await?;
        let Some(last) = rows.last() else { break };
        from = last.try_get::<i64>("", "seq")?.saturating_add(1);
        let full = rows.len() as u64 == VERIFY_PAGE;
        for row in rows {
            let record: String = row.try_get("", "record")?;
            if !verifier.push(record.as_bytes()) {
                break 'pages;
            }
        }
        if !full {
            break;
        }
    }
    let chain = ChainKey::new(audit_key);
    let (mut pending, mut forged_pending, mut after) = (0, None, i64::MIN);
    'pending: loop {
        let rows = txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, event, mac FROM {PENDING_TABLE} WHERE id >= ? ORDER BY id LIMIT {VERIFY_PAGE}"
                ),
                vec![after.into()],
            ))
            .await?;
        let full = rows.len() as u64 == VERIFY_PAGE;
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            after = id.saturating_add(1);
            let event = PendingEvent {
                json: row.try_get("", "event")?,
                mac: row.try_get("", "mac")?,
            };
            if chain.open_pending(&event).is_none() {
                forged_pending = Some(id);
                break 'pending;
            }
            pending += 1;
        }
        if !full {
            break;
        }
    }
    txn.commit().await?;
    Ok(TableReport {
        chain: verifier.finish(),
        head,
        pending,
        forged_pending,
    })
}

/// The last `n` records of the trail in the database at
/// `config.database_url`, oldest first: their text, a line of the file
/// log each. Changes nothing and runs no migration.
pub async fn audit_table_tail(
    config: &StoreConfig,
    n: u64,
) -> Result<Vec<String>, CredentialError> {
    let db = connect_existing(config).await?;
    let rows = db
        .query_all_raw(statement(
            db.get_database_backend(),
            &format!("SELECT record FROM {EVENTS_TABLE} ORDER BY seq DESC LIMIT {n}"),
            vec![],
        ))
        .await;
    db.close().await?;
    let mut records = rows?
        .iter()
        .map(|row| row.try_get::<String>("", "record"))
        .collect::<Result<Vec<_>, _>>()?;
    records.reverse();
    Ok(records)
}

/// One connection to the existing database of `config`, for reading (an
/// SQLite file is opened read-only: not created, not written).
async fn connect_existing(config: &StoreConfig) -> Result<DatabaseConnection, CredentialError> {
    let mut config = config.clone();
    config.database_url = config.database_url.read_only();
    crate::connect::connect(&config.with_max_connections(NonZeroU32::MIN)).await
}
