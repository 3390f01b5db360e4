//! Re-sealing a batch of rows in memory, spread over the CPU cores.

use atom_crypto::OpenFailure;
use atom_crypto::{Context, Keyring};

use crate::provider::Provider;
use crate::user_id::UserId;

/// A row as read for rewrapping.
pub(super) struct Row {
    pub(super) id: i64,
    pub(super) user: String,
    pub(super) provider: String,
    pub(super) token: String,
}

/// What to do with a row.
pub(super) enum Verdict {
    /// Replace the token (compare-and-swap on the old one).
    Swap(String),
    /// Already sealed under the primary key; only its `key_id` column was
    /// stale. Swap the token for itself, which sets the key id.
    FixKeyId,
    /// Cannot be rewrapped.
    Fail(OpenFailure, String),
}

/// Rows a parallel job takes at least.
const MIN_ROWS_PER_JOB: usize = 64;

/// Re-seals `rows` under the primary key of `keyring`, in order, on rayon's
/// pool (long-lived threads, so each keeps its own malloc arena; threads
/// made per batch could share one and wait on its lock). A panic in sealing
/// is a bug and reaches the caller as is.
pub(super) fn rewrap_rows(keyring: &Keyring, rows: &[Row], seal_plaintext: bool) -> Vec<Verdict> {
    use rayon::prelude::*;
    rows.par_iter()
        .with_min_len(MIN_ROWS_PER_JOB)
        .map(|r| verdict(keyring, r, seal_plaintext))
        .collect()
}

fn verdict(keyring: &Keyring, row: &Row, seal_plaintext: bool) -> Verdict {
    if let Err(e) = UserId::parse(&row.user).and_then(|_| Provider::parse(&row.provider)) {
        return Verdict::Fail(OpenFailure::Other, e.to_string());
    }
    let context = Context::credential(&row.user, &row.provider);
    match keyring.rewrap(&context, &row.token, seal_plaintext) {
        Ok(Some(sealed)) => Verdict::Swap(sealed.into_string()),
        Ok(None) => Verdict::FixKeyId,
        Err(e) => Verdict::Fail(OpenFailure::of(&e), e.to_string()),
    }
}
