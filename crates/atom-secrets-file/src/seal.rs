//! Sealing and opening the string values of a file, bound to their names,
//! on all cores for large files.

use atom_crypto::{Context, Keyring, SecretString};
use serde_json::Value;

use crate::verify::FailureClass;

/// The form in which new string values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SealForm {
    /// `atom:v1:<key id>:<token>`, bound to the entry's name (the default).
    #[default]
    Sealed,
    /// A bare Fernet token under the raw primary key, readable by the Python
    /// original; not bound to the name. Explicit opt-in only.
    Legacy,
}

/// Seals `plaintext` as the value of `name`.
pub(crate) fn seal(keyring: &Keyring, form: SealForm, name: &str, plaintext: &str) -> String {
    match form {
        SealForm::Sealed => keyring.seal(&Context::secret(name), plaintext),
        SealForm::Legacy => keyring.seal_legacy(plaintext),
    }
    .into_string()
}

/// Opens the stored value of `name`; plaintext and every failure become a
/// reason class (never the value).
pub(crate) fn open(
    keyring: &Keyring,
    name: &str,
    stored: &str,
) -> Result<SecretString, FailureClass> {
    keyring
        .open(&Context::secret(name), stored)
        .map_err(|e| FailureClass::of(&e))
}

/// Below this many items the cost of threads is not worth it.
const PARALLEL_THRESHOLD: usize = 2048;

/// Items a parallel job takes at least, so that one job's work outweighs
/// handing it to another thread.
const MIN_ITEMS_PER_JOB: usize = 256;

/// Runs `f` on every item, split over the available cores. Results come back
/// in item order.
pub(crate) fn par_map<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    par_map_min(items, PARALLEL_THRESHOLD, f)
}

/// [`par_map`] with threads from `min_items` items on.
///
/// The work runs on rayon's pool, whose threads live as long as the
/// process. Threads made per call (as this did before) each get a glibc
/// malloc arena as they start, and two of them sometimes get the same one:
/// a 100k-secret migrate then spent up to three times as long sealing,
/// waiting on the arena's lock. A panic in `f` reaches the caller as is.
pub(crate) fn par_map_min<T: Send, R: Send>(
    items: &mut [T],
    min_items: usize,
    f: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    if rayon::current_num_threads() < 2 || items.len() < min_items {
        return items.iter_mut().map(f).collect();
    }
    let per_job = (items.len() / rayon::current_num_threads()).clamp(1, MIN_ITEMS_PER_JOB);
    let f = &f;
    items.par_iter_mut().with_min_len(per_job).map(f).collect()
}

/// The string value of an entry, if it is one.
pub(crate) fn as_string(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}
