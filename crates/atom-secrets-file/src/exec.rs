//! `exec`: run a command with the secrets in its environment only. Nothing
//! is written to disk.
//!
//! The name -> variable rule ([`env_var_name`]): ASCII letters are
//! upper-cased, ASCII digits kept, every other character (including `-`,
//! `.`, spaces and non-ASCII) becomes `_`; a name starting with a digit gets
//! a leading `_`. Two names mapping to the same variable are an error, never
//! a silent overwrite. A non-string value is passed as its compact JSON text
//! (`42`, `true`, `null`, `{"a":1}`).

use std::collections::HashMap;
use std::fmt;
use std::process::{Command, ExitStatus};

use atom_crypto::{ExposeSecret as _, Keyring, SecretString};
use serde_json::Value;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::seal;

/// The environment variable for the secret `name` (see the module rule).
pub fn env_var_name(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::InvalidName {
            name: String::new(),
            problem: "an empty name has no environment variable",
        });
    }
    let mut var = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        var.push('_');
    }
    var.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    Ok(var)
}

/// The secrets as environment variables, opened and ready for a child
/// process. `Debug` shows variable names only.
pub struct SecretEnv {
    vars: Vec<(String, SecretString)>,
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEnv")
            .field("variables", &self.variables().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretEnv {
    /// The variable names, in file order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(v, _)| v.as_str())
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Adds the variables to `command`'s environment (over inherited ones of
    /// the same name).
    pub fn apply_to(&self, command: &mut Command) {
        for (var, value) in &self.vars {
            command.env(var, value.expose_secret());
        }
    }
}

impl SecretsDir {
    /// Opens every value of `secrets.enc` and maps names to variables. Any
    /// value that does not open, a collision or a value that cannot be an
    /// environment value is an error before anything runs.
    pub fn exec_env(&self, keyring: &Keyring) -> Result<SecretEnv> {
        let entries = self.read_encrypted()?;
        let mut seen: HashMap<String, &str> = HashMap::with_capacity(entries.len());
        let mut vars = Vec::with_capacity(entries.len());
        let mut failures = Vec::new();
        for (name, value) in &entries {
            let var = env_var_name(name)?;
            if let Some(first) = seen.insert(var.clone(), name) {
                return Err(Error::EnvCollision {
                    first: first.to_owned(),
                    second: name.clone(),
                    variable: var,
                });
            }
            let text = match value {
                Value::String(stored) => match seal::open(keyring, name, stored) {
                    Ok(secret) => secret,
                    Err(class) => {
                        failures.push((name.clone(), class));
                        continue;
                    }
                },
                other if seal::has_nested_strings(other) => {
                    match seal::open_value(keyring, name, other, false) {
                        Ok(opened) => SecretString::from(opened.to_string()),
                        Err(mut failed) => {
                            failures.append(&mut failed);
                            continue;
                        }
                    }
                }
                other => SecretString::from(other.to_string()),
            };
            if text.expose_secret().contains('\0') {
                return Err(Error::EnvValue {
                    name: name.clone(),
                    variable: var,
                    problem: "it contains a NUL character",
                });
            }
            vars.push((var, text));
        }
        if !failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: self.encrypted_path(),
                failures,
            });
        }
        Ok(SecretEnv { vars })
    }

    /// Runs `command` with the secrets added to its environment and waits
    /// for it. The exit status is the child's.
    pub fn exec(&self, keyring: &Keyring, command: &mut Command) -> Result<ExitStatus> {
        let env = self.exec_env(keyring)?;
        env.apply_to(command);
        tracing::info!(
            program = %command.get_program().to_string_lossy(),
            variables = env.len(),
            "exec"
        );
        command.status().map_err(|e| Error::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            kind: e.kind(),
        })
    }
}
