//! `migrate`: `secrets.json` -> `secrets.enc`, keeping `secrets.json.backup`.
//! Idempotent, and it never overwrites a value that only `secrets.enc` has.

use std::path::PathBuf;

use atom_crypto::{Classification, ExposeSecret as _, KeyId, Keyring, classify};
use serde::Serialize;
use serde_json::Value;

use crate::dir::{SecretsDir, render_entry, render_name};
use crate::error::{Error, Result};
use crate::keep::keep_aside;
use crate::parse::{self, Entries};
use crate::seal::{self, SealForm};
use atom_crypto::OpenFailure;

/// What `migrate` did. Names and counts only, never values.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct MigrateReport {
    /// `secrets.json`.
    pub plaintext_file: PathBuf,
    /// `secrets.enc`.
    pub encrypted_file: PathBuf,
    /// `secrets.json.backup`.
    pub backup_file: PathBuf,
    /// Entries in the result.
    pub total: usize,
    /// Names whose value was sealed by this run.
    pub sealed_names: Vec<String>,
    /// String values already sealed (in `secrets.enc`, or sealed values found
    /// in `secrets.json`) and kept as they were: never sealed twice.
    pub already_sealed: usize,
    /// Non-string values, kept as they are.
    pub not_secret: usize,
    /// The key that sealed new values (`None` when written in legacy form).
    pub key_id: Option<KeyId>,
    /// `sealed` or `legacy`.
    pub form: &'static str,
    /// Whether `secrets.enc` was written (false: it was already up to date).
    pub wrote_encrypted: bool,
    /// Whether `secrets.json.backup` was written.
    pub wrote_backup: bool,
    /// Where an older, different backup was kept before being replaced.
    pub kept_old_backup: Option<PathBuf>,
}

/// The decision for one entry of `secrets.json` (its value, when it has
/// one, is already rendered).
enum Plan {
    /// Taken unchanged from the existing `secrets.enc` (a string or not).
    Existing { string: bool },
    /// Already sealed in `secrets.json`, or not a string: copied as is.
    Copy { sealed: bool },
    /// Newly sealed.
    Sealed,
    /// `secrets.enc` has another value under this name.
    Differs,
    /// A value of `secrets.json` that looks sealed does not open.
    PlainFails(OpenFailure),
    /// A value of `secrets.enc` does not open.
    EncryptedFails(OpenFailure),
}

/// Entries per share below which one thread plans and renders them all.
const RENDER_SHARE_MIN: usize = 1024;

/// Plans every entry of `share` and renders those that go into
/// `secrets.enc` (see [`crate::dir::render_entry`]). Once an entry fails,
/// rendering stops (the file will not be written) but planning goes on, so
/// that every failure is reported.
fn plan_and_render(
    keyring: &Keyring,
    form: SealForm,
    share: &[(&String, &Value)],
    existing: Option<&Entries>,
) -> (std::io::Result<Vec<u8>>, Vec<Plan>) {
    let mut out = Vec::with_capacity(share.iter().map(|(n, v)| rendered_len(n, v)).sum());
    let mut plans = Vec::with_capacity(share.len());
    let mut rendering = true;
    let mut result = Ok(());
    for (name, value) in share {
        let (plan, text) = plan_entry(keyring, form, name, value, existing);
        if rendering && result.is_ok() {
            result = match text {
                Some(Rendered::Sealed(text)) => render_sealed_entry(&mut out, name, &text),
                Some(Rendered::Value(value)) => render_entry(&mut out, name, value),
                Some(Rendered::Owned(value)) => render_entry(&mut out, name, &value),
                None => {
                    rendering = false;
                    Ok(())
                }
            };
        }
        plans.push(plan);
    }
    (result.map(|()| out), plans)
}

/// About the bytes an entry takes in `secrets.enc` once its value is
/// sealed, so that a share's buffer is allocated once.
fn rendered_len(name: &str, value: &Value) -> usize {
    const LAYOUT: usize = 10; // `,\n  "name": "value"` around the two
    const PREFIX: usize = 21; // `atom:v1:<12 hex>:`
    match value {
        // A Fernet token: base64 of 57 bytes plus the padded ciphertext.
        Value::String(text) => {
            let token = (57 + (text.len() / 16 + 1) * 16).div_ceil(3) * 4;
            LAYOUT + name.len() + PREFIX + token
        }
        _ => LAYOUT + name.len() + 16,
    }
}

/// [`render_entry`] for a value this run sealed: the stored form is
/// url-safe base64 and `:` only, so it is copied without JSON escaping (the
/// check, for what JSON would escape, runs without branches).
fn render_sealed_entry(out: &mut Vec<u8>, name: &str, sealed: &str) -> std::io::Result<()> {
    let needs_escaping = sealed.bytes().fold(false, |any, b| {
        any | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if needs_escaping {
        return render_entry(out, name, sealed);
    }
    render_name(out, name)?;
    out.push(b'"');
    out.extend_from_slice(sealed.as_bytes());
    out.push(b'"');
    Ok(())
}

/// What an entry puts into `secrets.enc`.
enum Rendered<'a> {
    Sealed(String),
    Value(&'a Value),
    /// An object or array whose strings this run sealed.
    Owned(Value),
}

impl SecretsDir {
    /// Seals every string value of `secrets.json` into `secrets.enc` under
    /// its name, keeps a byte-for-byte `secrets.json.backup`, and leaves
    /// `secrets.json` untouched.
    ///
    /// Running it again changes nothing: values already in `secrets.enc`
    /// with the same content are kept, not sealed again. It refuses (and
    /// changes nothing) when `secrets.enc` has names `secrets.json` lacks or
    /// different values, or when a value does not open.
    pub fn migrate(&self, keyring: &Keyring) -> Result<MigrateReport> {
        let _lock = self.lock()?;
        let plain_path = self.plaintext_path();
        let enc_path = self.encrypted_path();
        let plain_bytes = parse::read_bytes(
            &plain_path,
            self.max_size(),
            "nothing to migrate; create it or point to the directory that holds it",
        )?;
        let plain = parse::parse_entries(&plain_path, &plain_bytes)?;
        let existing = parse::read_entries_if_exists(&enc_path, self.max_size())?;
        let form = self.form();

        // Each core plans its share of the entries and renders the result
        // as it goes: the sealed text goes straight into that share of
        // secrets.enc, never into a map of its own.
        let items: Vec<(&String, &Value)> = plain.iter().collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let share_len = items.len().div_ceil(threads).max(RENDER_SHARE_MIN);
        let mut shares: Vec<&[(&String, &Value)]> = items.chunks(share_len).collect();
        let shares = seal::par_map_min(&mut shares, 2, |share| {
            plan_and_render(keyring, form, share, existing.as_ref())
        });

        let mut rendered = Vec::with_capacity(shares.len());
        let mut sealed_names = Vec::new();
        let (mut already_sealed, mut not_secret, mut from_existing) = (0, 0, 0);
        let (mut plain_failures, mut enc_failures, mut differing) = (vec![], vec![], vec![]);
        let mut share_items = items.chunks(share_len);
        for (share, plans) in shares {
            let share_items = share_items.next().unwrap_or_default();
            rendered.push(share.map_err(|e| Error::io(&enc_path, "render", e))?);
            for ((name, _), plan) in share_items.iter().zip(plans) {
                match plan {
                    Plan::Existing { string } => {
                        from_existing += 1;
                        if string {
                            already_sealed += 1;
                        } else {
                            not_secret += 1;
                        }
                    }
                    Plan::Copy { sealed: true } => already_sealed += 1,
                    Plan::Copy { sealed: false } => not_secret += 1,
                    Plan::Sealed => sealed_names.push((*name).clone()),
                    Plan::Differs => differing.push((*name).clone()),
                    Plan::PlainFails(class) => plain_failures.push(((*name).clone(), class)),
                    Plan::EncryptedFails(class) => enc_failures.push(((*name).clone(), class)),
                }
            }
        }
        let total = items.len();
        if !plain_failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: plain_path,
                failures: plain_failures,
            });
        }
        if !enc_failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: enc_path,
                failures: enc_failures,
            });
        }
        let only_encrypted: Vec<String> = existing
            .iter()
            .flat_map(|e| e.keys())
            .filter(|name| !plain.contains_key(*name))
            .cloned()
            .collect();
        if !only_encrypted.is_empty() || !differing.is_empty() {
            return Err(Error::WouldLoseSecrets {
                encrypted: enc_path,
                plaintext: plain_path,
                only_encrypted,
                differing,
            });
        }

        // Checked: nothing can fail for a reason in the files any more. The
        // backup (I/O bound) is written while secrets.enc is rendered.
        let wrote_encrypted = existing.is_none() || from_existing != total;
        let (backup, encrypted) = std::thread::scope(|scope| {
            let backup = scope.spawn(|| self.write_backup(&plain_bytes));
            let encrypted = if wrote_encrypted {
                self.write_rendered(&enc_path, &rendered)
            } else {
                Ok(())
            };
            (backup.join(), encrypted)
        });
        let (wrote_backup, kept_old_backup) = match backup {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        encrypted?;
        let report = MigrateReport {
            plaintext_file: plain_path,
            encrypted_file: enc_path,
            backup_file: self.backup_path(),
            total,
            already_sealed,
            not_secret,
            key_id: match form {
                SealForm::Sealed => Some(keyring.primary_id()),
                SealForm::Legacy => None,
            },
            form: match form {
                SealForm::Sealed => "sealed",
                SealForm::Legacy => "legacy",
            },
            sealed_names,
            wrote_encrypted,
            wrote_backup,
            kept_old_backup,
        };
        tracing::info!(
            file = %report.encrypted_file.display(),
            sealed = report.sealed_names.len(),
            already_sealed = report.already_sealed,
            not_secret = report.not_secret,
            wrote = report.wrote_encrypted,
            "migrate"
        );
        Ok(report)
    }

    /// Writes `secrets.json.backup` unless it already holds these bytes; an
    /// older different backup is kept aside first.
    fn write_backup(&self, plain_bytes: &[u8]) -> Result<(bool, Option<PathBuf>)> {
        let backup = self.backup_path();
        let kept = match atom_io::read_bounded(&backup, self.max_size()) {
            Ok(old) if old == plain_bytes => return Ok((false, None)),
            Ok(_) => Some(keep_aside(&backup)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&backup, "read", e)),
        };
        self.write_bytes(&backup, plain_bytes)?;
        Ok((true, kept))
    }
}

fn plan_entry<'a>(
    keyring: &Keyring,
    form: SealForm,
    name: &str,
    value: &'a Value,
    existing: Option<&'a Entries>,
) -> (Plan, Option<Rendered<'a>>) {
    let existing = existing.and_then(|e| e.get(name));
    let Some(text) = seal::as_string(value) else {
        if seal::has_nested_strings(value) {
            return plan_nested(keyring, form, name, value, existing);
        }
        return match existing {
            Some(old) if old != value => (Plan::Differs, None),
            Some(old) => (Plan::Existing { string: false }, Some(Rendered::Value(old))),
            None => (Plan::Copy { sealed: false }, Some(Rendered::Value(value))),
        };
    };
    // A value of secrets.json that is already ciphertext is opened to
    // compare, and kept as it is: never sealed twice.
    let looks_sealed = !matches!(classify(text), Ok(Classification::Plaintext));
    let opened_plain;
    let plaintext: &str = if looks_sealed {
        match seal::open(keyring, name, text) {
            Ok(secret) => {
                opened_plain = secret;
                opened_plain.expose_secret()
            }
            Err(class) => return (Plan::PlainFails(class), None),
        }
    } else {
        text
    };
    match existing {
        None => {}
        Some(old_value @ Value::String(old)) => {
            let same = match classify(old) {
                Ok(Classification::Plaintext) => old == plaintext,
                _ => match seal::open(keyring, name, old) {
                    Ok(secret) => secret.expose_secret() == plaintext,
                    Err(class) => return (Plan::EncryptedFails(class), None),
                },
            };
            if !same {
                return (Plan::Differs, None);
            }
            if !matches!(classify(old), Ok(Classification::Plaintext)) {
                return (
                    Plan::Existing { string: true },
                    Some(Rendered::Value(old_value)),
                );
            }
        }
        Some(_) => return (Plan::Differs, None),
    }
    if looks_sealed {
        (Plan::Copy { sealed: true }, Some(Rendered::Value(value)))
    } else {
        let sealed = seal::seal(keyring, form, name, plaintext);
        (Plan::Sealed, Some(Rendered::Sealed(sealed)))
    }
}

/// [`plan_entry`] for an object or array with strings inside: each string
/// is sealed under its path, compared with `secrets.enc` opened.
fn plan_nested<'a>(
    keyring: &Keyring,
    form: SealForm,
    name: &str,
    value: &'a Value,
    existing: Option<&'a Value>,
) -> (Plan, Option<Rendered<'a>>) {
    let opened = match seal::open_value(keyring, name, value, true) {
        Ok(v) => v,
        Err(failures) => return (Plan::PlainFails(failures[0].1), None),
    };
    if let Some(old) = existing {
        let old_opened = match seal::open_value(keyring, name, old, true) {
            Ok(v) => v,
            Err(failures) => return (Plan::EncryptedFails(failures[0].1), None),
        };
        if old_opened != opened {
            return (Plan::Differs, None);
        }
        if seal::plaintext_leaves(name, old).is_empty() {
            return (Plan::Existing { string: true }, Some(Rendered::Value(old)));
        }
    }
    if seal::plaintext_leaves(name, value).is_empty() {
        return (Plan::Copy { sealed: true }, Some(Rendered::Value(value)));
    }
    (
        Plan::Sealed,
        Some(Rendered::Owned(seal::seal_value(
            keyring, form, name, value,
        ))),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::Path;

    use atom_crypto::Key;

    use super::*;
    use crate::dir::render;

    /// The file `migrate` renders share by share is byte for byte what
    /// every other write renders for the same entries, whatever the values.
    #[test]
    fn migrate_renders_as_every_other_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut plain = serde_json::Map::new();
        for i in 0..3000 {
            let (name, value) = match i % 6 {
                0 => (format!("secret_{i}"), Value::from(format!("sk-{i}"))),
                1 => (format!("quote\"d\n{i}"), Value::from("tab\tand \"quotes\"")),
                2 => (format!("unicodé_{i}"), Value::from("ключ ✓")),
                3 => (format!("empty_{i}"), Value::from("")),
                4 => (format!("number_{i}"), Value::from(i)),
                _ => (
                    format!("nested_{i}"),
                    serde_json::json!({"a": [1, null, true], "b": 2.5, "c": ["x", {"d": "y"}]}),
                ),
            };
            plain.insert(name, value);
        }
        std::fs::write(
            dir.path().join("secrets.json"),
            serde_json::to_vec(&plain).unwrap(),
        )
        .unwrap();
        let keyring = Keyring::new(Key::generate().unwrap(), []).unwrap();
        let secrets = SecretsDir::new(dir.path());
        let report = secrets.migrate(&keyring).unwrap();
        assert_eq!(report.total, 3000);
        let bytes = std::fs::read(dir.path().join("secrets.enc")).unwrap();
        let entries = parse::parse_entries(Path::new("secrets.enc"), &bytes).unwrap();
        assert_eq!(render(&entries).unwrap(), bytes);
        let names: Vec<&String> = entries.keys().collect();
        assert_eq!(names, plain.keys().collect::<Vec<_>>());
        // An empty file renders as the empty object.
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("secrets.json"), b"{}").unwrap();
        SecretsDir::new(empty.path()).migrate(&keyring).unwrap();
        assert_eq!(
            std::fs::read(empty.path().join("secrets.enc")).unwrap(),
            render(&Entries::new()).unwrap()
        );
    }
}
