//! The store's side of auditing: atom-audit's [`Auditor`] (which holds the
//! sink, its clock, the actor and the failure mode), with errors mapped to
//! [`CredentialError::AuditFailed`], plus the clock rows are stamped with.
//!
//! When the auditor's sinks include the audit table of the store's own
//! database ([`DatabaseAuditSink`]), an event recorded during a write
//! transaction is appended in that transaction ([`StoreAudit::record_on`]),
//! and the other sinks get it beside: the change and its record commit
//! together. On SQLite this is also what keeps a writer from waiting on
//! itself: the table's group commit needs the write lock the writer holds.

use std::sync::Arc;

use atom_audit::{Action, AuditClock, AuditEvent, Auditor, Outcome};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

use crate::audit_table::{DatabaseAuditSink, Riders};
use crate::error::CredentialError;
use crate::url::DatabaseUrl;

/// A connection events may be recorded through: a write transaction (the
/// event joins it when the audit table is in that database) or the pool.
pub(crate) trait WriteScope: ConnectionTrait + Sync {
    /// The transaction, if this is one.
    fn transaction(&self) -> Option<&DatabaseTransaction>;
}

impl WriteScope for DatabaseTransaction {
    fn transaction(&self) -> Option<&DatabaseTransaction> {
        Some(self)
    }
}

impl WriteScope for DatabaseConnection {
    fn transaction(&self) -> Option<&DatabaseTransaction> {
        None
    }
}

/// Records the store's events; fail-closed unless the auditor was
/// explicitly configured fail-open.
#[derive(Clone)]
pub(crate) struct StoreAudit {
    auditor: Auditor,
    /// The auditor's audit table, when it is in the store's database.
    ledger: Option<DatabaseAuditSink>,
    /// Stamps `created_at`/`updated_at` (injected in tests).
    clock: Arc<dyn AuditClock>,
}

impl StoreAudit {
    /// Records through `auditor` for a store on `database`.
    pub(crate) fn new(auditor: Auditor, database: &DatabaseUrl) -> StoreAudit {
        let ledger = auditor
            .ledger()
            .and_then(|l| l.as_any().downcast_ref::<DatabaseAuditSink>())
            .filter(|sink| sink.is_in(database))
            .cloned();
        StoreAudit {
            auditor,
            ledger,
            clock: Arc::new(atom_crypto::SystemClock),
        }
    }

    /// The audit table in the store's database, if events go there.
    pub(crate) fn ledger(&self) -> Option<&DatabaseAuditSink> {
        self.ledger.as_ref()
    }

    pub(crate) fn with_clock(mut self, clock: Arc<dyn AuditClock>) -> StoreAudit {
        self.clock = clock;
        self
    }

    /// Keeps the row clock of `other`.
    pub(crate) fn with_clock_of(mut self, other: &StoreAudit) -> StoreAudit {
        self.clock = Arc::clone(&other.clock);
        self
    }

    pub(crate) fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The time rows are stamped with.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Records `action` with its usual outcome. An error means the event is
    /// not recorded and the caller must not go ahead.
    pub(crate) async fn record(&self, action: Action) -> Result<(), CredentialError> {
        let event = self.auditor.event(action);
        self.record_event(event).await
    }

    /// Records `action` with an explicit outcome.
    pub(crate) async fn record_outcome(
        &self,
        action: Action,
        outcome: Outcome,
    ) -> Result<(), CredentialError> {
        let event = self.auditor.event(action).with_outcome(outcome);
        self.record_event(event).await
    }

    /// Records `action` (with `outcome`, or its usual one) through `conn`:
    /// appended in the transaction when `conn` is one on the audit table's
    /// database (`same_database`), the other sinks beside; through every
    /// sink otherwise. An error means the event is not recorded (and the
    /// caller rolls back).
    pub(crate) async fn record_on(
        &self,
        conn: &impl WriteScope,
        same_database: bool,
        action: Action,
        outcome: Option<Outcome>,
    ) -> Result<(), CredentialError> {
        let event = self.event(action, outcome);
        match (&self.ledger, conn.transaction()) {
            (Some(ledger), Some(txn)) if same_database => {
                self.append_in(ledger, txn, event, false).await.map(drop)
            }
            _ => self.record_event(event).await,
        }
    }

    /// [`StoreAudit::record_on`] for the store's own write transaction
    /// `txn`, about to commit: with the audit table on SQLite, the events
    /// waiting for a group commit ride along in `txn`; the caller answers
    /// them with [`Riders::committed`] once `txn` committed.
    pub(crate) async fn record_before_commit(
        &self,
        txn: &DatabaseTransaction,
        action: Action,
        outcome: Option<Outcome>,
    ) -> Result<Option<Riders>, CredentialError> {
        let event = self.event(action, outcome);
        match &self.ledger {
            Some(ledger) => self.append_in(ledger, txn, event, true).await,
            None => self.record_event(event).await.map(|()| None),
        }
    }

    fn event(&self, action: Action, outcome: Option<Outcome>) -> AuditEvent {
        let event = self.auditor.event(action);
        match outcome {
            Some(outcome) => event.with_outcome(outcome),
            None => event,
        }
    }

    /// Appends `event` in `txn` (with riders when asked), then gives it to
    /// the other sinks.
    async fn append_in(
        &self,
        ledger: &DatabaseAuditSink,
        txn: &DatabaseTransaction,
        event: AuditEvent,
        with_riders: bool,
    ) -> Result<Option<Riders>, CredentialError> {
        let name = event.name();
        let appended = match with_riders {
            true => ledger.append_in_with_riders(txn, &event).await.map(Some),
            false => ledger.append_in(txn, &[&event]).await.map(|()| None),
        };
        let riders = match appended {
            Ok(riders) => riders,
            Err(e) => {
                metrics::counter!("atom_audit_records_total", "result" => "failed").increment(1);
                tracing::error!(event = name, error = %e, "audit event not appended; credential operation refused");
                return Err(e);
            }
        };
        if let Err(e) = self.auditor.record_event_beside_ledger(event).await {
            tracing::error!(event = name, error = %e, "audit event not recorded; credential operation refused");
            // The caller rolls back: the riders go back to the group commit.
            if let Some(riders) = riders {
                riders.put_back();
            }
            return Err(CredentialError::AuditFailed(e));
        }
        Ok(riders)
    }

    async fn record_event(&self, event: atom_audit::AuditEvent) -> Result<(), CredentialError> {
        let name = event.name();
        self.auditor.record_event(event).await.map_err(|e| {
            tracing::error!(event = name, error = %e, "audit event not recorded; credential operation refused");
            CredentialError::AuditFailed(e)
        })
    }
}
