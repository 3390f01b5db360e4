//! The sink trait and the sinks that hold no files: in-memory and fan-out.

use std::sync::Arc;
#[cfg(feature = "test-util")]
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::chain::Ledger;
use crate::error::AuditError;
use crate::event::AuditEvent;

/// Somewhere audit events go. `record` returns only once the event is
/// recorded as far as the sink promises (for the file sink: written, and
/// synced per its durability setting); an `Err` means it is not, and the
/// caller must not proceed with the audited operation.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Records one event.
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;

    /// Makes everything recorded so far durable and anchored (the file sink
    /// syncs and writes a checkpoint). Call it before a clean shutdown.
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Whether the sink can record now, without recording anything (for a
    /// readiness probe): the file sink fails once poisoned or when its path
    /// no longer names the open log.
    async fn check(&self) -> Result<(), AuditError> {
        Ok(())
    }

    /// The [`Ledger`] this sink is or holds, if any (the first one).
    fn ledger(&self) -> Option<&dyn Ledger> {
        None
    }

    /// Records `event` in every sink but the [`Ledger`]: its writer
    /// records the event itself, in the transaction of the change.
    async fn record_beside_ledger(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.record(event).await
    }
}

#[async_trait]
impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        (**self).record(event).await
    }

    async fn flush(&self) -> Result<(), AuditError> {
        (**self).flush().await
    }

    async fn check(&self) -> Result<(), AuditError> {
        (**self).check().await
    }

    fn ledger(&self) -> Option<&dyn Ledger> {
        (**self).ledger()
    }

    async fn record_beside_ledger(&self, event: &AuditEvent) -> Result<(), AuditError> {
        (**self).record_beside_ledger(event).await
    }
}

/// Keeps events in memory, for tests (the `test-util` feature). Clones
/// share the same events.
#[cfg(feature = "test-util")]
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

#[cfg(feature = "test-util")]
impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// The events recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        // A panic while holding this lock cannot leave the Vec half-pushed,
        // so a poisoned lock still holds a consistent list.
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(feature = "test-util")]
#[async_trait]
impl AuditSink for MemorySink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}

/// Sends every event to several sinks, in order. Every sink is tried even
/// when one fails (so the tracing line still appears when the file cannot
/// be written); the first error is returned, so one failing sink fails the
/// operation.
#[derive(Default, Clone)]
pub struct FanOut {
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl FanOut {
    /// A fan-out to no sink yet.
    pub fn new() -> FanOut {
        FanOut::default()
    }

    /// Adds a sink.
    pub fn with(mut self, sink: impl AuditSink + 'static) -> FanOut {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Number of sinks.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there is no sink.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

#[async_trait]
impl AuditSink for FanOut {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(e) = sink.record(event).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn flush(&self) -> Result<(), AuditError> {
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(e) = sink.flush().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn check(&self) -> Result<(), AuditError> {
        for sink in &self.sinks {
            sink.check().await?;
        }
        Ok(())
    }

    fn ledger(&self) -> Option<&dyn Ledger> {
        self.sinks.iter().find_map(|sink| sink.ledger())
    }

    async fn record_beside_ledger(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(e) = sink.record_beside_ledger(event).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
