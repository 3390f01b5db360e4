//! `Provider`: the service a credential is for, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use crate::error::CredentialError;
use crate::user_id::shown;

/// A provider name such as `github` or `google_drive`: 1 to
/// [`Provider::MAX_LEN`] ASCII letters, digits, `_`, `-` or `.`. The limit
/// is the Python original's `String(50)` column.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provider(String);

impl Provider {
    /// The longest provider name, in bytes.
    pub const MAX_LEN: usize = 50;

    /// Parses a provider name.
    pub fn parse(text: &str) -> Result<Provider, CredentialError> {
        let problem = if crate::user_id::looks_like_a_path(text) {
            Some("looks like a file path ('/' or '\\', or '.' or '..')")
        } else if text.is_empty()
            || text.len() > Provider::MAX_LEN
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            Some("is not a provider name")
        } else {
            None
        };
        match problem {
            None => Ok(Provider(text.to_owned())),
            Some(problem) => Err(CredentialError::InvalidInput(format!(
                "provider {} {problem}; a provider name is 1 to 50 ASCII letters, digits, '_', '-' or '.', and not '.' or '..' (e.g. github, google_drive)",
                shown(text)
            ))),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Provider {
    type Err = CredentialError;

    fn from_str(text: &str) -> Result<Provider, CredentialError> {
        Provider::parse(text)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provider({:?})", self.0)
    }
}

impl AsRef<str> for Provider {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_provider_names() {
        for p in [
            "github",
            "google_drive",
            "Slack",
            "ms-graph",
            "a.b",
            &"p".repeat(50),
        ] {
            assert_eq!(Provider::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn refuses_bad_names() {
        for p in ["", "git hub", "a/b", "ü", "a\n", &"p".repeat(51)] {
            assert!(matches!(
                Provider::parse(p),
                Err(CredentialError::InvalidInput(_))
            ));
        }
    }
}
