//! `UserId`: the owner of a credential, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use crate::error::CredentialError;

/// A user id: 1 to [`UserId::MAX_LEN`] bytes of UTF-8 with no control
/// characters, no leading or trailing whitespace, no `/` or `\\`, and not
/// `.` or `..` (nothing a file-minded layer could read as a path). The
/// limit is the Python original's `String(255)` column. This is the one
/// rule for user ids: the CLI, the HTTP API and the Python package all
/// parse them here.
///
/// User ids are identifiers, not secrets: they appear in audit events and
/// error messages.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// The longest user id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Parses a user id.
    pub fn parse(text: &str) -> Result<UserId, CredentialError> {
        let problem = if text.is_empty() {
            Some("is empty")
        } else if text.len() > UserId::MAX_LEN {
            Some("is longer than 255 bytes")
        } else if text.chars().any(char::is_control) {
            Some("contains a control character")
        } else if text.trim() != text {
            Some("has leading or trailing whitespace")
        } else if looks_like_a_path(text) {
            Some("looks like a file path ('/' or '\\', or '.' or '..')")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(CredentialError::InvalidInput(format!(
                "user id {} {problem}; a user id is 1 to 255 bytes of text without control characters, surrounding spaces, '/' or '\\'",
                shown(text)
            ))),
            None => Ok(UserId(text.to_owned())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An identifier that a file-minded layer could read as traversal: `.`,
/// `..`, or one holding a path separator.
pub(crate) fn looks_like_a_path(text: &str) -> bool {
    text == "." || text == ".." || text.contains(['/', '\\'])
}

/// Shows a rejected identifier in an error: escaped, and cut short so that
/// a huge input does not make a huge message.
pub(crate) fn shown(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    let more = if cut.len() < text.len() { "..." } else { "" };
    format!("{:?}{more}", cut)
}

impl FromStr for UserId {
    type Err = CredentialError;

    fn from_str(text: &str) -> Result<UserId, CredentialError> {
        UserId::parse(text)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["42", "user_1", "alice@example.com", "ü-ñ", &"x".repeat(255)] {
            assert_eq!(UserId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_bad_ids() {
        for id in ["", " a", "a ", "a\nb", "a\0b", &"x".repeat(256)] {
            let err = UserId::parse(id).unwrap_err();
            assert!(matches!(err, CredentialError::InvalidInput(_)), "{id:?}");
        }
    }

    #[test]
    fn error_is_short_for_huge_input() {
        let err = UserId::parse(&"y".repeat(10_000)).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }
}
