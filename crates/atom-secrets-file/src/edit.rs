//! `get`, `set`, `unset` and `list`: single entries of `secrets.enc`.

use std::fmt;
use std::path::PathBuf;

use atom_crypto::{ExposeSecret as _, KeyId, Keyring, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::parse;
use crate::seal::{self, SealForm};

/// The value of one entry.
#[non_exhaustive]
pub enum SecretValue {
    /// A string value, opened.
    Secret(SecretString),
    /// A number, boolean, null, or an object or array without strings,
    /// stored as it is.
    Plain(Value),
    /// An object or array with strings inside, every string opened: its
    /// JSON text.
    Structured(SecretString),
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither form is shown: a JSON value kept in clear may still be
        // sensitive to its owner.
        match self {
            SecretValue::Secret(_) => f.write_str("SecretValue::Secret(..)"),
            SecretValue::Structured(_) => f.write_str("SecretValue::Structured(..)"),
            SecretValue::Plain(v) => write!(f, "SecretValue::Plain({})", parse::kind_name(v)),
        }
    }
}

/// What an edit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EditAction {
    /// A new name.
    Added,
    /// A new value for an existing name.
    Replaced,
    /// A name removed.
    Removed,
}

/// What `set` or `unset` did. Never the value.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EditReport {
    /// `secrets.enc`.
    pub file: PathBuf,
    /// The entry's name.
    pub name: String,
    /// What happened.
    pub action: EditAction,
    /// The key that sealed the new value (set of a string in sealed form).
    pub key_id: Option<KeyId>,
}

/// One entry's value opened: a string under its name, an object or array
/// with strings inside every string under its path, anything else as it is.
fn open_entry(
    keyring: &Keyring,
    name: &str,
    value: &Value,
) -> std::result::Result<SecretValue, Vec<(String, atom_crypto::OpenFailure)>> {
    match value {
        Value::String(text) => seal::open(keyring, name, text)
            .map(SecretValue::Secret)
            .map_err(|class| vec![(name.to_owned(), class)]),
        other if seal::has_nested_strings(other) => seal::open_value(keyring, name, other, false)
            .map(|opened| SecretValue::Structured(SecretString::from(opened.to_string()))),
        other => Ok(SecretValue::Plain(other.clone())),
    }
}

impl SecretsDir {
    /// The value of `name` in `secrets.enc`. A string value must open; a
    /// plaintext string there is an error (rewrap seals it). An object or
    /// array with strings inside comes back as its JSON text with every
    /// string opened.
    pub fn get(&self, keyring: &Keyring, name: &str) -> Result<SecretValue> {
        let entries = self.read_encrypted()?;
        let path = self.encrypted_path();
        match entries.get(name) {
            None => Err(Error::NoSuchName {
                path,
                name: name.to_owned(),
            }),
            Some(value) => open_entry(keyring, name, value)
                .map_err(|failures| Error::DoNotOpen { path, failures }),
        }
    }

    /// Every entry of `secrets.enc` in file order, each opened as
    /// [`SecretsDir::get`] opens it. One value that does not open fails the
    /// whole read, naming every value that does not (nothing is returned
    /// half).
    pub fn get_all(&self, keyring: &Keyring) -> Result<Vec<(String, SecretValue)>> {
        let entries = self.read_encrypted()?;
        let mut values = Vec::with_capacity(entries.len());
        let mut failures = Vec::new();
        for (name, value) in &entries {
            match open_entry(keyring, name, value) {
                Ok(opened) => values.push((name.clone(), opened)),
                Err(failed) => failures.extend(failed),
            }
        }
        if failures.is_empty() {
            Ok(values)
        } else {
            Err(Error::DoNotOpen {
                path: self.encrypted_path(),
                failures,
            })
        }
    }

    /// The entries of `secrets.json` as they are: the seed's plaintext
    /// development mode, where no key is set and nothing is sealed.
    pub fn plaintext_values(&self) -> Result<Vec<(String, Value)>> {
        Ok(self.read_plaintext()?.into_iter().collect())
    }

    /// The names of `secrets.enc` in file order, or of `secrets.json` when
    /// the files are not migrated yet.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = if !self.encrypted_path().exists() && self.plaintext_path().exists() {
            self.read_plaintext()?
        } else {
            self.read_encrypted()?
        };
        Ok(entries.keys().cloned().collect())
    }

    /// Seals `value` as the value of `name` in `secrets.enc` (created when
    /// neither file exists). A new name goes last; an existing one keeps its
    /// place.
    pub fn set(&self, keyring: &Keyring, name: &str, value: &SecretString) -> Result<EditReport> {
        self.set_value(
            keyring,
            name,
            Value::String(value.expose_secret().to_owned()),
        )
    }

    /// Sets `name` to a JSON value: a string is sealed, any other value is
    /// stored as it is (as migrate does).
    /// Strings inside an object or array are sealed too, each under its
    /// path.
    pub fn set_value(&self, keyring: &Keyring, name: &str, value: Value) -> Result<EditReport> {
        check_name(name)?;
        let _lock = self.lock()?;
        let mut entries = self.read_encrypted_for_edit()?;
        let (stored, key_id) = match &value {
            Value::String(text) => {
                let key_id = match self.form() {
                    SealForm::Sealed => Some(keyring.primary_id()),
                    SealForm::Legacy => None,
                };
                (
                    Value::String(seal::seal(keyring, self.form(), name, text)),
                    key_id,
                )
            }
            _ if seal::has_nested_strings(&value) => {
                let key_id = match self.form() {
                    SealForm::Sealed => Some(keyring.primary_id()),
                    SealForm::Legacy => None,
                };
                (seal::seal_value(keyring, self.form(), name, &value), key_id)
            }
            _ => (value, None),
        };
        let action = match entries.insert(name.to_owned(), stored) {
            Some(_) => EditAction::Replaced,
            None => EditAction::Added,
        };
        let file = self.encrypted_path();
        self.write_entries(&file, &entries)?;
        tracing::info!(file = %file.display(), name, ?action, "set");
        Ok(EditReport {
            file,
            name: name.to_owned(),
            action,
            key_id,
        })
    }

    /// Removes `name` from `secrets.enc`; the others keep their order.
    pub fn unset(&self, name: &str) -> Result<EditReport> {
        let _lock = self.lock()?;
        let mut entries = self.read_encrypted()?;
        let file = self.encrypted_path();
        if entries.shift_remove(name).is_none() {
            return Err(Error::NoSuchName {
                path: file,
                name: name.to_owned(),
            });
        }
        self.write_entries(&file, &entries)?;
        tracing::info!(file = %file.display(), name, "unset");
        Ok(EditReport {
            file,
            name: name.to_owned(),
            action: EditAction::Removed,
            key_id: None,
        })
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            problem: "a name must not be empty",
        });
    }
    Ok(())
}
