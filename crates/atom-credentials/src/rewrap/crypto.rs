//! Re-sealing a batch of rows in memory, spread over the CPU cores.

use std::collections::HashMap;

use atom_crypto::OpenFailure;
use atom_crypto::{Classification, Context, DataKey, Keyring, classify};

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
    /// Replace the token (compare-and-swap on the old one); with the data
    /// key id when the new token is enveloped.
    Swap(String, Option<atom_crypto::KeyId>),
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
/// With `data_keys` (each row's user's data key), rows are upgraded to the
/// enveloped form instead.
pub(super) fn rewrap_rows(
    keyring: &Keyring,
    rows: &[Row],
    seal_plaintext: bool,
    data_keys: Option<&HashMap<String, DataKey>>,
) -> Vec<Verdict> {
    use rayon::prelude::*;
    rows.par_iter()
        .with_min_len(MIN_ROWS_PER_JOB)
        .map(|r| match data_keys {
            Some(keys) => envelop(keyring, keys, r, seal_plaintext),
            None => verdict(keyring, r, seal_plaintext),
        })
        .collect()
}

/// Opens `row` (a sealed, legacy or, if allowed, plaintext value) and seals
/// it under its user's data key.
fn envelop(
    keyring: &Keyring,
    keys: &HashMap<String, DataKey>,
    row: &Row,
    seal_plaintext: bool,
) -> Verdict {
    if let Err(e) = UserId::parse(&row.user).and_then(|_| Provider::parse(&row.provider)) {
        return Verdict::Fail(OpenFailure::Other, e.to_string());
    }
    let Some(key) = keys.get(&row.user) else {
        return Verdict::Fail(
            OpenFailure::Other,
            format!("no data key could be had for user {}", row.user),
        );
    };
    let context = Context::credential(&row.user, &row.provider);
    if seal_plaintext && matches!(classify(&row.token), Ok(Classification::Plaintext)) {
        return Verdict::Swap(
            keyring.seal_enveloped(key, &context, &row.token),
            Some(key.id()),
        );
    }
    match keyring.reseal_enveloped(None, key, &context, &row.token) {
        Ok(Some(sealed)) => Verdict::Swap(sealed, Some(key.id())),
        // Already under this data key: only the columns are stale.
        Ok(None) => Verdict::Swap(row.token.clone(), Some(key.id())),
        Err(e) => Verdict::Fail(OpenFailure::of(&e), e.to_string()),
    }
}

fn verdict(keyring: &Keyring, row: &Row, seal_plaintext: bool) -> Verdict {
    if let Err(e) = UserId::parse(&row.user).and_then(|_| Provider::parse(&row.provider)) {
        return Verdict::Fail(OpenFailure::Other, e.to_string());
    }
    let context = Context::credential(&row.user, &row.provider);
    match keyring.rewrap(&context, &row.token, seal_plaintext) {
        Ok(Some(sealed)) => Verdict::Swap(sealed.into_string(), None),
        Ok(None) => Verdict::FixKeyId,
        Err(e) => Verdict::Fail(OpenFailure::of(&e), e.to_string()),
    }
}
