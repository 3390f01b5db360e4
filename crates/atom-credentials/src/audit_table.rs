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
//! - A credential write appends its event in its own transaction
//!   ([`DatabaseAuditSink::append_in`], through the store): the change and
//!   its record commit together, or neither does.
//! - Other events (reads, refusals, events of other crates) go to one task
//!   per process that appends everything waiting in one transaction (group
//!   commit): a read returns its token only once that commit is done.

use std::any::Any;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use atom_audit::{
    AuditError, AuditEvent, AuditSink, ChainHead, ChainKey, Ledger, VerifyReport, verify_records,
};
use atom_crypto::Key;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait, Value,
};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::config::StoreConfig;
use crate::error::CredentialError;
use crate::sql::statement;
use crate::url::{Backend, DatabaseUrl};

/// The records.
pub(crate) const EVENTS_TABLE: &str = "audit_events";
/// The chain's head: one row, id 1.
pub(crate) const HEAD_TABLE: &str = "audit_chain_head";
/// Most events one group commit appends.
const MAX_GROUP: usize = 512;
/// Events waiting for a group commit before `record` waits for room.
const QUEUE: usize = 8192;
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
    queue: mpsc::Sender<Pending>,
}

/// An event waiting for a group commit, and who waits for it.
struct Pending {
    event: AuditEvent,
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
        let migrating =
            crate::connect::connect(&config.clone().with_max_connections(NonZeroU32::MIN)).await?;
        let migrated = crate::migration::run(
            &migrating,
            &config.database_url,
            config.keystore_url.is_none(),
        )
        .await;
        migrating.close().await?;
        migrated?;
        // One connection appends; a second answers `check`.
        let pool = config
            .clone()
            .with_max_connections(NonZeroU32::MIN.saturating_add(1));
        let db = crate::connect::connect(&pool).await?;
        let chain = ChainKey::new(audit_key);
        let head = read_head(&db).await?;
        let sqlite_writer: Arc<Mutex<()>> = Arc::default();
        let (queue, waiting) = mpsc::channel(QUEUE);
        let backend = config.database_url.backend();
        tokio::spawn(commit_groups(
            db.clone(),
            backend,
            chain.clone(),
            Arc::clone(&sqlite_writer),
            waiting,
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

    /// Appends `events` in `txn`, a write transaction on this sink's
    /// database: locks the head, seals the events after it, inserts them
    /// and moves the head. They commit with `txn`, or not at all.
    pub(crate) async fn append_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[&AuditEvent],
    ) -> Result<(), CredentialError> {
        append(txn, &self.inner.chain, events).await
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
        let (done, committed) = oneshot::channel();
        let pending = Pending {
            event: event.clone(),
            done,
        };
        if self.inner.queue.send(pending).await.is_err() {
            return Err(self.failed("its group-commit task has stopped".to_owned()));
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.failed(message)),
            Err(_) => Err(self.failed("its group-commit task has stopped".to_owned())),
        }
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

/// The group-commit task: takes everything waiting (up to [`MAX_GROUP`]),
/// appends it in one transaction and answers every waiter with the result.
async fn commit_groups(
    db: DatabaseConnection,
    backend: Backend,
    chain: ChainKey,
    sqlite_writer: Arc<Mutex<()>>,
    mut waiting: mpsc::Receiver<Pending>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let events: Vec<&AuditEvent> = group.iter().map(|p| &p.event).collect();
        let result = async {
            let _turn = match backend {
                Backend::Sqlite => Some(sqlite_writer.lock().await),
                _ => None,
            };
            let mut options = TransactionOptions::default();
            if backend == Backend::Sqlite {
                options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
            }
            let txn = db.begin_with_options(options).await?;
            append(&txn, &chain, &events).await?;
            txn.commit().await?;
            Ok::<_, CredentialError>(())
        }
        .await;
        metrics::histogram!("atom_audit_group_commit_events").record(group.len() as f64);
        let result = result.map_err(|e| e.to_string());
        if let Err(message) = &result {
            tracing::error!(events = group.len(), error = %message, "audit group commit failed; its operations are refused");
        }
        for pending in group.drain(..) {
            // A waiter that gave up (its request was cancelled) needs no
            // answer; its event is recorded all the same.
            let _ = pending.done.send(result.clone());
        }
    }
}

/// Appends `events` after the head, in `txn` (see [`DatabaseAuditSink::append_in`]).
async fn append(
    txn: &DatabaseTransaction,
    chain: &ChainKey,
    events: &[&AuditEvent],
) -> Result<(), CredentialError> {
    if events.is_empty() {
        return Ok(());
    }
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
    let mut values: Vec<Value> = Vec::with_capacity(events.len() * 2);
    for event in events {
        let seq = stored_seq(head.next_seq())?;
        let (record, next) = chain.append(&head, event);
        values.push(seq.into());
        values.push(record.into());
        head = next;
    }
    let rows = vec!["(?, ?)"; events.len()].join(", ");
    txn.execute_raw(statement(
        backend,
        &format!("INSERT INTO {EVENTS_TABLE} (seq, record) VALUES {rows}"),
        values,
    ))
    .await?;
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

/// Checks the trail in the database at `config.database_url` under
/// `audit_key`, in one consistent snapshot: every record authentic, in
/// order, chained, and the last one the stored head (see
/// [`atom_audit::verify_records`]). Changes nothing and runs no migration;
/// returns the report and the head. An `Err` when the database or its
/// tables cannot be read.
pub async fn verify_audit_table(
    config: &StoreConfig,
    audit_key: &Key,
) -> Result<(VerifyReport, ChainHead), CredentialError> {
    let mut config = config.clone();
    config.database_url = config.database_url.without_create();
    let db = crate::connect::connect(&config.with_max_connections(NonZeroU32::MIN)).await?;
    let result = verify_in(&db, audit_key).await;
    db.close().await?;
    result
}

async fn verify_in(
    db: &DatabaseConnection,
    audit_key: &Key,
) -> Result<(VerifyReport, ChainHead), CredentialError> {
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
    let mut from: i64 = 0;
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
        from = last.try_get::<i64>("", "seq")? + 1;
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
    txn.commit().await?;
    Ok((verifier.finish(), head))
}

/// The last `n` records of the trail in the database at
/// `config.database_url`, oldest first: their text, a line of the file
/// log each. Changes nothing and runs no migration.
pub async fn audit_table_tail(
    config: &StoreConfig,
    n: u64,
) -> Result<Vec<String>, CredentialError> {
    let mut config = config.clone();
    config.database_url = config.database_url.without_create();
    let db = crate::connect::connect(&config.with_max_connections(NonZeroU32::MIN)).await?;
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
