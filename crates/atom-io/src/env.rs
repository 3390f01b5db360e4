//! Configuration from the environment: secrets from `VAR` or `VAR_FILE`,
//! and boolean flags, with errors that name the variable, the problem and
//! the next step, never the value.

use std::path::Path;

use zeroize::Zeroizing;

/// The largest secret file read: a key or a JWT secret is a line; anything
/// much bigger is the wrong file.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Why a variable cannot be used. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Both forms of one setting are set.
    #[error("both {var} and {var_file} are set; set only one of them")]
    Both {
        /// The variable holding the value.
        var: String,
        /// The variable naming a file that holds it.
        var_file: String,
    },
    /// The file cannot be read.
    #[error("cannot read {var_file} {path}: {kind}; check the path and its permissions")]
    Unreadable {
        /// The variable naming the file.
        var_file: String,
        /// The file.
        path: String,
        /// What the operating system said.
        kind: std::io::ErrorKind,
    },
    /// The file is not text.
    #[error("{var_file} {path} is not UTF-8 text; it should hold the value on one line")]
    NotText {
        /// The variable naming the file.
        var_file: String,
        /// The file.
        path: String,
    },
    /// The file is far larger than a secret.
    #[error(
        "{var_file} {path} holds more than {MAX_SECRET_FILE_BYTES} bytes (at least {size}), more than a secret file holds; check that it names the right file"
    )]
    TooLarge {
        /// The variable naming the file.
        var_file: String,
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A boolean flag with another value.
    #[error("{name} must be 1, true, 0 or false")]
    BadFlag {
        /// The variable.
        name: String,
    },
}

/// A secret read from the environment, and where it came from.
pub struct EnvSecret {
    /// The text: the variable's value, or the file's content with one
    /// trailing line break removed.
    pub text: Zeroizing<String>,
    /// Where it came from, for messages: `VAR`, or `VAR_FILE (path)`.
    pub origin: String,
}

impl std::fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSecret")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The secret in `var`, or in the file `var_file` names, through `lookup`
/// (an environment); `None` when neither is set. A file readable by group
/// or others is warned about.
pub fn secret_from_env(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &str,
    var_file: &str,
) -> Result<Option<EnvSecret>, EnvError> {
    match (lookup(var), lookup(var_file)) {
        (Some(_), Some(_)) => Err(EnvError::Both {
            var: var.to_owned(),
            var_file: var_file.to_owned(),
        }),
        (Some(text), None) => Ok(Some(EnvSecret {
            text: Zeroizing::new(text),
            origin: var.to_owned(),
        })),
        (None, Some(path)) => {
            let text = read_secret_file(Path::new(&path), var_file)?;
            Ok(Some(EnvSecret {
                text,
                origin: format!("{var_file} ({path})"),
            }))
        }
        (None, None) => Ok(None),
    }
}

fn read_secret_file(path: &Path, var_file: &str) -> Result<Zeroizing<String>, EnvError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| EnvError::Unreadable {
        var_file: var_file.to_owned(),
        path: shown.clone(),
        kind: e.kind(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let bytes = crate::read_bounded_secret(path, MAX_SECRET_FILE_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            EnvError::TooLarge {
                var_file: var_file.to_owned(),
                path: shown.clone(),
                size: meta.len().max(MAX_SECRET_FILE_BYTES + 1),
            }
        } else {
            unreadable(e)
        }
    })?;
    warn_if_readable_by_others(&meta, path, var_file);
    let text = std::str::from_utf8(&bytes).map_err(|_| EnvError::NotText {
        var_file: var_file.to_owned(),
        path: shown,
    })?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(meta: &std::fs::Metadata, path: &Path, var_file: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            "{var_file} is readable by group or others; restrict it with: chmod 600 {}",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &std::fs::Metadata, _: &Path, _: &str) {}

/// A boolean variable through `lookup`: unset, empty, `0` or `false` is
/// off; `1` or `true` is on; anything else is an error naming it.
pub fn flag_from_env(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<bool, EnvError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(EnvError::BadFlag {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn flags() {
        for (value, on) in [
            ("1", true),
            ("true", true),
            ("0", false),
            ("false", false),
            ("", false),
        ] {
            assert_eq!(flag_from_env(&env(&[("F", value)]), "F").unwrap(), on);
        }
        assert!(!flag_from_env(&env(&[]), "F").unwrap());
        let err = flag_from_env(&env(&[("F", "yes")]), "F").unwrap_err();
        assert_eq!(err.to_string(), "F must be 1, true, 0 or false");
    }

    #[test]
    fn secrets_from_the_variable_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "hunter2\n").unwrap();
        let path = file.display().to_string();
        let s = secret_from_env(&env(&[("S", "x")]), "S", "S_FILE")
            .unwrap()
            .unwrap();
        assert_eq!((s.text.as_str(), s.origin.as_str()), ("x", "S"));
        let s = secret_from_env(&env(&[("S_FILE", &path)]), "S", "S_FILE")
            .unwrap()
            .unwrap();
        assert_eq!(s.text.as_str(), "hunter2");
        assert!(s.origin.contains(&path));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(secret_from_env(&env(&[]), "S", "S_FILE").unwrap().is_none());
        let both = secret_from_env(&env(&[("S", "x"), ("S_FILE", &path)]), "S", "S_FILE");
        assert!(matches!(both, Err(EnvError::Both { .. })));
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        let err = secret_from_env(&env(&[("S_FILE", &path)]), "S", "S_FILE").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let missing = dir.path().join("nope").display().to_string();
        let err = secret_from_env(&env(&[("S_FILE", &missing)]), "S", "S_FILE").unwrap_err();
        assert!(err.to_string().contains("S_FILE"), "{err}");
    }
}
