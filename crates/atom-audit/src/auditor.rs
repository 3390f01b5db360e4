//! The one call audited operations make before they proceed.

use std::sync::Arc;

use crate::action::Action;
use crate::chain::Ledger;
use crate::clock::AuditClock;
use crate::error::AuditError;
use crate::event::{Actor, AuditEvent};
use crate::sink::AuditSink;

/// `1` or `true`: record events fail-open (see [`FailureMode::Open`]).
/// Anything else set is an error; unset is fail-closed.
pub const ENV_AUDIT_FAIL_OPEN: &str = "ATOM_AUDIT_FAIL_OPEN";

/// What [`Auditor::record`] does when the sink cannot record an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailureMode {
    /// Return the error: the caller does not proceed with the operation.
    /// The default, as Vault refuses requests no audit device can log.
    #[default]
    Closed,
    /// Log the failure at ERROR (target `atom_audit`) and return `Ok`: the
    /// operation proceeds unaudited. Only for deployments that prefer
    /// availability over a complete trail, chosen explicitly with
    /// [`Auditor::with_failure_mode`] or [`ENV_AUDIT_FAIL_OPEN`].
    Open,
}

impl FailureMode {
    /// Reads [`ENV_AUDIT_FAIL_OPEN`] through `lookup` (an environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<FailureMode, AuditError> {
        match atom_io::flag_from_env(&lookup, ENV_AUDIT_FAIL_OPEN) {
            Ok(false) => Ok(FailureMode::Closed),
            Ok(true) => Ok(FailureMode::Open),
            Err(e) => Err(AuditError::Config(format!("{e} (unset means fail-closed)"))),
        }
    }
}

/// Stamps events with the injected clock and hands them to the sink.
/// Callers record before they proceed:
///
/// ```no_run
/// # async fn read(auditor: &atom_audit::Auditor) -> Result<(), atom_audit::AuditError> {
/// use atom_audit::Action;
/// auditor
///     .record(Action::CredentialAccessed {
///         user: "42".into(),
///         provider: "github".into(),
///         key_id: None,
///     })
///     .await?;
/// // ... only now return the credential
/// # Ok(()) }
/// ```
///
/// Cheap to clone; clones share the sink and the clock.
#[derive(Clone)]
pub struct Auditor {
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn AuditClock>,
    mode: FailureMode,
    actor: Option<Actor>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("mode", &self.mode)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `sink`, fail-closed, on the system clock.
    pub fn new(sink: impl AuditSink + 'static) -> Auditor {
        Auditor {
            sink: Arc::new(sink),
            clock: Arc::new(atom_crypto::SystemClock),
            mode: FailureMode::Closed,
            actor: None,
        }
    }

    /// The same auditor stamping events with `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn AuditClock>) -> Auditor {
        self.clock = clock;
        self
    }

    /// The same auditor with another failure mode.
    pub fn with_failure_mode(mut self, mode: FailureMode) -> Auditor {
        self.mode = mode;
        self
    }

    /// A clone that names `actor` in events that name none.
    pub fn acting_as(&self, actor: Actor) -> Auditor {
        Auditor {
            actor: Some(actor),
            ..self.clone()
        }
    }

    /// The failure mode.
    pub fn failure_mode(&self) -> FailureMode {
        self.mode
    }

    /// An event for `action`, stamped now, naming this auditor's actor.
    pub fn event(&self, action: Action) -> AuditEvent {
        let event = AuditEvent::new(self.clock.now(), action);
        match &self.actor {
            Some(actor) => event.by(actor.clone()),
            None => event,
        }
    }

    /// Records `action` now. `Err` (fail-closed) means the event was not
    /// recorded and the caller must not proceed.
    pub async fn record(&self, action: Action) -> Result<(), AuditError> {
        self.record_event(self.event(action)).await
    }

    /// Records a prepared event (with its own time, actor and outcome); an
    /// event without an actor gets this auditor's.
    pub async fn record_event(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.record_to(event, false).await
    }

    /// The [`Ledger`] among the sinks, if any: a store writing to its
    /// database records its events there itself, in its transactions.
    pub fn ledger(&self) -> Option<&dyn Ledger> {
        self.sink.ledger()
    }

    /// Records a prepared event in every sink but the [`Ledger`], whose
    /// writer has recorded it in its own transaction; same failure mode as
    /// [`Auditor::record_event`].
    pub async fn record_event_beside_ledger(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.record_to(event, true).await
    }

    async fn record_to(
        &self,
        mut event: AuditEvent,
        beside_ledger: bool,
    ) -> Result<(), AuditError> {
        if event.actor.is_none() {
            event.actor.clone_from(&self.actor);
        }
        let result = if beside_ledger {
            self.sink.record_beside_ledger(&event).await
        } else {
            self.sink.record(&event).await
        };
        metrics::counter!(
            "atom_audit_records_total",
            "result" => if result.is_ok() { "recorded" } else { "failed" }
        )
        .increment(1);
        match result {
            Ok(()) => Ok(()),
            Err(error) if self.mode == FailureMode::Open => {
                tracing::error!(
                    target: "atom_audit",
                    event = event.name(),
                    %error,
                    "audit event NOT recorded; proceeding because auditing is configured fail-open ({ENV_AUDIT_FAIL_OPEN})"
                );
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the sink can record now (for a readiness probe); records
    /// nothing.
    pub async fn check(&self) -> Result<(), AuditError> {
        self.sink.check().await
    }

    /// Flushes the sink (the file sink syncs and anchors a checkpoint).
    /// Call it at shutdown. Fails in both modes: nothing waits on it.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.sink.flush().await
    }
}
