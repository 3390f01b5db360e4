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

/// Runs `f` on every item, split over the available cores. Results come back
/// in item order.
pub(crate) fn par_map<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    par_map_min(items, PARALLEL_THRESHOLD, f)
}

/// [`par_map`] with threads from `min_items` items on.
pub(crate) fn par_map_min<T: Send, R: Send>(
    items: &mut [T],
    min_items: usize,
    f: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < min_items {
        return items.iter_mut().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(chunk)
            .map(|part| scope.spawn(move || part.iter_mut().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                // A panic in a worker is a bug; carry it to the caller as is.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The string value of an entry, if it is one.
pub(crate) fn as_string(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}
