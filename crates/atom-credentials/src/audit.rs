//! The store's side of auditing: atom-audit's [`Auditor`] (which holds the
//! sink, its clock, the actor and the failure mode), with errors mapped to
//! [`CredentialError::AuditFailed`], plus the clock rows are stamped with.

use std::sync::Arc;

use atom_audit::{Action, AuditClock, Auditor, Outcome};

use crate::error::CredentialError;

/// Records the store's events; fail-closed unless the auditor was
/// explicitly configured fail-open.
#[derive(Clone)]
pub(crate) struct StoreAudit {
    auditor: Auditor,
    /// Stamps `created_at`/`updated_at` (injected in tests).
    clock: Arc<dyn AuditClock>,
}

impl StoreAudit {
    pub(crate) fn new(auditor: Auditor) -> StoreAudit {
        StoreAudit {
            auditor,
            clock: Arc::new(atom_crypto::SystemClock),
        }
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

    async fn record_event(&self, event: atom_audit::AuditEvent) -> Result<(), CredentialError> {
        let name = event.name();
        self.auditor.record_event(event).await.map_err(|e| {
            tracing::error!(event = name, error = %e, "audit event not recorded; credential operation refused");
            CredentialError::AuditFailed(e)
        })
    }
}
