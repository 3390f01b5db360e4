//! Reading the audit key from the environment.

use atom_audit::{AuditError, ENV_AUDIT_KEY, ENV_AUDIT_KEY_FILE, audit_key_from};
use atom_crypto::Key;

fn env(pairs: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> {
    let pairs = pairs.to_vec();
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

#[test]
fn the_variable_names_are_documented_constants() {
    assert_eq!(ENV_AUDIT_KEY, "ATOM_AUDIT_KEY");
    assert_eq!(ENV_AUDIT_KEY_FILE, "ATOM_AUDIT_KEY_FILE");
}

#[test]
fn the_key_is_read_from_the_variable_or_the_file() {
    let key = Key::from_bytes([9; 32]);
    let text = key.expose_base64().to_string();
    let read = audit_key_from(env(&[(ENV_AUDIT_KEY, text.clone())])).unwrap();
    assert_eq!(read.id(), key.id());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.key");
    std::fs::write(&file, format!("{}\n", text.trim_end_matches('='))).unwrap();
    let read = audit_key_from(env(&[(ENV_AUDIT_KEY_FILE, file.display().to_string())])).unwrap();
    assert_eq!(read.id(), key.id());
}

#[test]
fn a_missing_doubled_or_bad_key_is_an_error_that_says_what_to_do() {
    let error = audit_key_from(env(&[])).unwrap_err();
    assert!(matches!(error, AuditError::NoAuditKey));
    assert!(error.to_string().contains("ATOM_AUDIT_KEY"));
    assert!(error.to_string().contains("never an encryption key"));

    let error = audit_key_from(env(&[
        (ENV_AUDIT_KEY, "x".into()),
        (ENV_AUDIT_KEY_FILE, "/x".into()),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("set only one"), "{error}");

    let secretish = "not-a-key-but-a-password-1234";
    let error = audit_key_from(env(&[(ENV_AUDIT_KEY, secretish.into())])).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, AuditError::BadAuditKey { .. }));
    assert!(
        message.contains("ATOM_AUDIT_KEY is 29 characters"),
        "{message}"
    );
    assert!(!message.contains(secretish));

    let error = audit_key_from(env(&[(ENV_AUDIT_KEY_FILE, "/nonexistent/k".into())])).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/k"), "{error}");
}

#[test]
fn development_key_file_is_created_once_and_reused() {
    use atom_audit::audit_key_or_development;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("atom-audit.key");
    let first = audit_key_or_development(env(&[]), &file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = audit_key_or_development(env(&[]), &file).unwrap();
    assert_eq!(first, second, "the same development key is reused");
    // A configured key wins; a bad one is an error, not the development key.
    let configured = atom_crypto::Key::generate().unwrap();
    let text = configured.expose_base64().to_string();
    assert_eq!(
        audit_key_or_development(env(&[(ENV_AUDIT_KEY, text)]), &file).unwrap(),
        configured
    );
    assert!(matches!(
        audit_key_or_development(env(&[(ENV_AUDIT_KEY, "nope".into())]), &file),
        Err(AuditError::BadAuditKey { .. })
    ));
}
