//! Cross-crate test harness of the Atom workspace: scenarios that span
//! atom-crypto, atom-audit, atom-secrets-file and atom-credentials, run as
//! `cargo test -p atom-tests`. The helpers here locate the fixtures the
//! crates commit (made by the Python original) and capture log output.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A file committed by one of the crates, e.g.
/// `fixture("atom-credentials", "tests/data/python_legacy.db")`.
pub fn fixture(krate: &str, path: &str) -> PathBuf {
    workspace_root().join("crates").join(krate).join(path)
}

/// Everything written through it, for checking what logs contain.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// The text captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> CapturedLog {
        self.clone()
    }
}

/// A subscriber that records every level of every crate into `log`.
pub fn capturing_subscriber(log: &CapturedLog) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish()
}
