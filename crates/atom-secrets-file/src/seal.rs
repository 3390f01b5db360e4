//! Sealing and opening the string values of a file, bound to their names,
//! on all cores for large files.

use atom_crypto::{Classification, Context, ExposeSecret as _, Keyring, SecretString, classify};
use serde_json::Value;

use atom_crypto::OpenFailure;

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
) -> Result<SecretString, OpenFailure> {
    keyring
        .open(&Context::secret(name), stored)
        .map_err(|e| OpenFailure::of(&e))
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

/// A string of an entry's value: the value itself when it is a string, or
/// a string inside its objects and arrays. Each is sealed under a context
/// of its own, so a string moved to another place does not open.
pub(crate) struct Leaf {
    /// Where it is: the entry's name, then `.key` and `[index]` steps,
    /// e.g. `database.hosts[0]`. For messages and reports.
    pub(crate) path: String,
    /// The context it is sealed under: `secret` with the entry's name, then
    /// one component per step (`.key` or `[index]`), so a top-level string
    /// has exactly [`Context::secret`] of its name.
    pub(crate) context: Context,
}

/// Calls `f` with every string of `value`, the value of entry `name`.
pub(crate) fn leaves(name: &str, value: &Value, f: &mut impl FnMut(Leaf, &str)) {
    fn walk(name: &str, steps: &mut Vec<String>, value: &Value, f: &mut impl FnMut(Leaf, &str)) {
        match value {
            Value::String(text) => f(leaf(name, steps), text),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    steps.push(format!("[{i}]"));
                    walk(name, steps, item, f);
                    steps.pop();
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    steps.push(format!(".{key}"));
                    walk(name, steps, item, f);
                    steps.pop();
                }
            }
            _ => {}
        }
    }
    walk(name, &mut Vec::new(), value, f);
}

/// Calls `f` with every string of `value`, the value of entry `name`, to
/// change it in place.
pub(crate) fn leaves_mut(name: &str, value: &mut Value, f: &mut impl FnMut(Leaf, &mut String)) {
    fn walk(
        name: &str,
        steps: &mut Vec<String>,
        value: &mut Value,
        f: &mut impl FnMut(Leaf, &mut String),
    ) {
        match value {
            Value::String(text) => f(leaf(name, steps), text),
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    steps.push(format!("[{i}]"));
                    walk(name, steps, item, f);
                    steps.pop();
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    steps.push(format!(".{key}"));
                    walk(name, steps, item, f);
                    steps.pop();
                }
            }
            _ => {}
        }
    }
    walk(name, &mut Vec::new(), value, f);
}

fn leaf(name: &str, steps: &[String]) -> Leaf {
    if steps.is_empty() {
        return Leaf {
            path: name.to_owned(),
            context: Context::secret(name),
        };
    }
    let mut parts: Vec<&str> = Vec::with_capacity(steps.len() + 1);
    parts.push(name);
    parts.extend(steps.iter().map(String::as_str));
    Leaf {
        path: parts.concat(),
        context: Context::from_parts("secret", &parts),
    }
}

/// The paths of the plaintext strings inside `value` (of entry `name`).
pub(crate) fn plaintext_leaves(name: &str, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaves(name, value, &mut |leaf, text| {
        if matches!(classify(text), Ok(Classification::Plaintext)) {
            out.push(leaf.path);
        }
    });
    out
}

/// Whether `value` is an object or array with strings inside.
pub(crate) fn has_nested_strings(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| v.is_string() || has_nested_strings(v)),
        Value::Object(map) => map.values().any(|v| v.is_string() || has_nested_strings(v)),
        _ => false,
    }
}

/// `value` (of entry `name`) with every plaintext string sealed under its
/// context; strings that are already ciphertext are kept as they are
/// (never sealed twice).
pub(crate) fn seal_value(keyring: &Keyring, form: SealForm, name: &str, value: &Value) -> Value {
    let mut out = value.clone();
    leaves_mut(name, &mut out, &mut |leaf, text| {
        if matches!(classify(text), Ok(Classification::Plaintext)) {
            let sealed = match form {
                SealForm::Sealed => keyring.seal(&leaf.context, text),
                SealForm::Legacy => keyring.seal_legacy(text),
            };
            *text = sealed.into_string();
        }
    });
    out
}

/// `value` (of entry `name`) with every string opened. A plaintext string
/// is kept as it is when `plaintext_ok`, else it fails like every string
/// that does not open; the failures name each string's path.
pub(crate) fn open_value(
    keyring: &Keyring,
    name: &str,
    value: &Value,
    plaintext_ok: bool,
) -> Result<Value, Vec<(String, OpenFailure)>> {
    let mut out = value.clone();
    let mut failures = Vec::new();
    leaves_mut(name, &mut out, &mut |leaf, text| {
        if plaintext_ok && matches!(classify(text), Ok(Classification::Plaintext)) {
            return;
        }
        match keyring.open(&leaf.context, text) {
            Ok(secret) => *text = secret.expose_secret().to_owned(),
            Err(e) => failures.push((leaf.path, OpenFailure::of(&e))),
        }
    });
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(failures)
    }
}
