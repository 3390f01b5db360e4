//! Shared helpers: keys, events, logs as lines.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atom_audit::{Action, AuditEvent, AuditSink, Auditor, FileSink, FileSinkOptions};
use atom_crypto::{FixedClock, Key};

/// The audit key of the tests.
pub(crate) fn audit_key() -> Key {
    Key::from_bytes([0x11; 32])
}

/// Another key, for "wrong key" cases.
pub(crate) fn other_key() -> Key {
    Key::from_bytes([0x22; 32])
}

pub(crate) fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::at(1_700_000_000))
}

/// An event with a distinct subject per `i`, at a fixed time.
pub(crate) fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
        Action::CredentialAccessed {
            user: format!("user-{i}"),
            provider: "github".into(),
            key_id: Some(other_key().id()),
        },
    )
}

pub(crate) fn every(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

/// Writes `n` events to a new log at `dir/audit.jsonl` with `options`;
/// flushes (final checkpoint) when `flush`.
pub(crate) async fn write_log(
    dir: &Path,
    n: u64,
    options: FileSinkOptions,
    flush: bool,
) -> PathBuf {
    let path = dir.join("audit.jsonl");
    let sink = FileSink::open_with(&path, &audit_key(), options)
        .await
        .unwrap();
    for i in 0..n {
        sink.record(&event(i)).await.unwrap();
    }
    if flush {
        sink.flush().await.unwrap();
    }
    path
}

/// The log's lines, each with its `\n`.
pub(crate) fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub(crate) fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

/// An auditor on a fixed clock.
pub(crate) fn auditor(sink: impl AuditSink + 'static) -> Auditor {
    Auditor::new(sink).with_clock(clock())
}
