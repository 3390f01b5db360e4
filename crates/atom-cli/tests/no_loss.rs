//! The data-loss reproduction of issue #11, run as an operator would: a
//! legacy token damaged by one stray space is never sealed as if it were
//! the secret, the rotation stops before anything changes, a retired key is
//! kept (and can be restored), and destroying it is refused while anything
//! is still under it. The original value stays recoverable throughout.

use std::path::Path;
use std::process::Output;

use atom_crypto::{Context, ExposeSecret as _, Key, Keyring};
use serde_json::Value;

use crate::common::{atom, text};

const SECRET: &str = "real-db-password";

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Key files in `dir/keys`, the way rotation manages them.
fn key_env(dir: &Path) -> Vec<(String, String)> {
    let keys = dir.join("keys");
    vec![
        (
            "ENCRYPTION_KEY_FILE".to_owned(),
            keys.join("encryption.key").display().to_string(),
        ),
        (
            "ENCRYPTION_PREVIOUS_KEYS_FILE".to_owned(),
            keys.join("previous.keys").display().to_string(),
        ),
        ("ATOM_AUDIT_KEY".to_owned(), audit_key()),
    ]
}

fn audit_key() -> String {
    // A fixed audit key for this test (not an encryption key).
    Key::from_bytes([7; 32]).expose_base64().to_string()
}

fn run(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = atom(dir, args, &env);
    // Only `get` exists to print a secret, on stdout.
    let streams = if args.get(1) == Some(&"get") {
        vec![&out.stderr]
    } else {
        vec![&out.stdout, &out.stderr]
    };
    for stream in streams {
        assert!(
            !text(stream).contains(SECRET),
            "a secret in the output: {}",
            explain(&out)
        );
    }
    out
}

#[test]
fn a_damaged_token_is_never_laundered_and_no_key_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = Key::generate().unwrap();
    let token = Keyring::single(old.clone())
        .seal_legacy(SECRET)
        .into_string();
    let damaged = format!("{{\"db_password\": \" {token}\"}}\n");
    std::fs::write(d.join("secrets.enc"), &damaged).unwrap();
    let with_old = vec![
        ("ENCRYPTION_KEY".to_owned(), old.expose_base64().to_string()),
        ("ATOM_AUDIT_KEY".to_owned(), audit_key()),
    ];

    // verify fails it as malformed (exit 3); rewrap refuses it, asked to
    // seal plaintext or not, and writes nothing.
    let out = run(d, &with_old, &["secrets", "verify"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));
    assert!(
        text(&out.stdout).contains("db_password: malformed"),
        "{}",
        explain(&out)
    );
    for args in [
        &["secrets", "rewrap"][..],
        &["secrets", "rewrap", "--seal-plaintext"][..],
    ] {
        let out = run(d, &with_old, args);
        assert_eq!(code(&out), Some(3), "{args:?}: {}", explain(&out));
        assert!(text(&out.stderr).contains("malformed"), "{}", explain(&out));
        assert_eq!(
            std::fs::read_to_string(d.join("secrets.enc")).unwrap(),
            damaged
        );
    }
    // status counts it as malformed, not plaintext.
    let out = run(d, &with_old, &["status", "--json"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["malformed_secrets"], 1, "{doc}");
    assert_eq!(doc["plaintext_secrets"], 0, "{doc}");

    // The same with keys as files: the rotation stops at its plan (exit 3)
    // and changes nothing, not a key file, not the value.
    let keys = d.join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(
        keys.join("encryption.key"),
        format!("{}\n", &*old.expose_base64()),
    )
    .unwrap();
    std::fs::write(keys.join("previous.keys"), "").unwrap();
    let files = key_env(d);
    let out = run(d, &files, &["keys", "rotate", "--yes", "--seal-plaintext"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));
    assert!(
        text(&out.stdout).contains("db_password"),
        "{}",
        explain(&out)
    );
    assert_eq!(
        std::fs::read_to_string(keys.join("encryption.key"))
            .unwrap()
            .trim(),
        old.expose_base64().as_str()
    );
    assert_eq!(
        std::fs::read_to_string(keys.join("previous.keys")).unwrap(),
        ""
    );
    assert!(!keys.join(".atom-rotation.json").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("secrets.enc")).unwrap(),
        damaged
    );
    // The original value is recoverable: trimmed, the token opens.
    let opened = Keyring::single(old.clone())
        .open(&Context::secret("db_password"), &token)
        .unwrap();
    assert_eq!(opened.expose_secret(), SECRET);

    // Repaired, the rotation runs to the end, and retires the old key into
    // the retired-keys file instead of deleting it.
    std::fs::write(
        d.join("secrets.enc"),
        format!("{{\"db_password\": \"{token}\"}}\n"),
    )
    .unwrap();
    let out = run(d, &files, &["keys", "rotate", "--yes"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    let retired = std::fs::read_to_string(keys.join("retired.keys")).unwrap();
    assert!(
        retired.contains(old.expose_base64().as_str()),
        "old key not kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("retired.keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = run(d, &files, &["keys", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let standing_of = |id: &str| {
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .map(|k| k["standing"].as_str().unwrap().to_owned())
    };
    let old_id = old.id().to_string();
    assert_eq!(standing_of(&old_id).as_deref(), Some("retired"), "{listed}");
    let out = run(d, &files, &["secrets", "get", "db_password"]);
    assert_eq!(text(&out.stdout).trim_end(), SECRET, "{}", explain(&out));

    // A copy of the old file kept aside (a rollback leaves one) is still
    // under the old key: destroying it is refused and names the file.
    std::fs::write(
        d.join("secrets.enc.kept.1"),
        format!("{{\"db_password\": \"{token}\"}}\n"),
    )
    .unwrap();
    let out = run(d, &files, &["keys", "destroy", &old_id, "--yes"]);
    assert_eq!(code(&out), Some(1), "{}", explain(&out));
    assert!(
        text(&out.stderr).contains("secrets.enc.kept.1"),
        "{}",
        explain(&out)
    );
    assert!(
        std::fs::read_to_string(keys.join("retired.keys"))
            .unwrap()
            .contains(old.expose_base64().as_str())
    );

    // Restored, the old key opens that copy again for the apps; retired
    // once more and the copy gone, it can be destroyed.
    let out = run(d, &files, &["keys", "restore", &old_id]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    assert!(
        std::fs::read_to_string(keys.join("previous.keys"))
            .unwrap()
            .contains(old.expose_base64().as_str())
    );
    let out = run(d, &files, &["keys", "destroy", &old_id, "--yes"]);
    assert_eq!(
        code(&out),
        Some(2),
        "a loaded key is not destroyed: {}",
        explain(&out)
    );
    let out = run(d, &files, &["keys", "retire", &old_id]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    std::fs::remove_file(d.join("secrets.enc.kept.1")).unwrap();
    let out = run(d, &files, &["keys", "destroy", &old_id, "--yes"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    assert!(
        !std::fs::read_to_string(keys.join("retired.keys"))
            .unwrap()
            .contains(old.expose_base64().as_str())
    );
    let out = run(d, &files, &["secrets", "get", "db_password"]);
    assert_eq!(
        text(&out.stdout).trim_end(),
        SECRET,
        "the current value still opens"
    );
}

/// Every way the audit log can fail to be provably intact is exit 3, an
/// emptied log included; a refused key creates no file at all, and the
/// audit key may not be an encryption key.
#[test]
fn the_audit_trail_cannot_vanish_quietly_and_bad_keys_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Key::generate().unwrap().expose_base64().to_string();
    let audit = audit_key();
    let env = vec![
        ("ENCRYPTION_KEY".to_owned(), key.clone()),
        ("ATOM_AUDIT_KEY".to_owned(), audit.clone()),
    ];

    // Nothing recorded yet, no log: not provably intact (exit 3).
    let out = run(d, &env, &["audit", "verify"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));
    assert!(
        text(&out.stdout).contains("does not exist"),
        "{}",
        explain(&out)
    );

    // Something is recorded.
    let out = run(d, &env, &["db", "migrate"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    let out = run(d, &env, &["credentials", "status"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));
    let log = d.join(".atom/audit.jsonl");
    assert!(log.exists());
    let out = run(d, &env, &["audit", "verify"]);
    assert_eq!(code(&out), Some(0), "{}", explain(&out));

    // The key is missing: exit 3.
    let no_key = vec![("ENCRYPTION_KEY".to_owned(), key.clone())];
    let out = run(d, &no_key, &["audit", "verify"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));
    assert!(text(&out.stdout).contains("audit key"), "{}", explain(&out));

    // Emptied, its sidecar deleted: the anchor kept away from it says
    // records were written (exit 3), and no command continues the log.
    std::fs::write(&log, b"").unwrap();
    std::fs::remove_file(d.join(".atom/audit.jsonl.checkpoint")).unwrap();
    let out = run(d, &env, &["audit", "verify"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));
    assert!(text(&out.stdout).contains("cut"), "{}", explain(&out));
    let out = run(d, &env, &["credentials", "status"]);
    assert_ne!(code(&out), Some(0), "a command continued an emptied log");
    // Deleted: the same.
    std::fs::remove_file(&log).unwrap();
    let out = run(d, &env, &["audit", "verify"]);
    assert_eq!(code(&out), Some(3), "{}", explain(&out));

    // A bad encryption key, or an audit key that is the encryption key:
    // refused, and not one file is created.
    let fresh = tempfile::tempdir().unwrap();
    let f = fresh.path();
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "short key",
            vec![("ENCRYPTION_KEY".to_owned(), "tooshort".to_owned())],
        ),
        (
            "audit key = encryption key",
            vec![
                ("ENCRYPTION_KEY".to_owned(), key.clone()),
                ("ATOM_AUDIT_KEY".to_owned(), key.clone()),
            ],
        ),
        (
            "audit key = a previous key",
            vec![
                ("ENCRYPTION_KEY".to_owned(), key.clone()),
                ("ENCRYPTION_PREVIOUS_KEYS".to_owned(), audit.clone()),
                ("ATOM_AUDIT_KEY".to_owned(), audit.clone()),
            ],
        ),
    ];
    for (what, env) in &cases {
        for args in [
            &["status"][..],
            &["secrets", "list"][..],
            &["credentials", "status"][..],
        ] {
            let out = run(f, env, args);
            assert_eq!(code(&out), Some(1), "{what} {args:?}: {}", explain(&out));
            let made: Vec<_> = std::fs::read_dir(f).unwrap().collect();
            assert!(made.is_empty(), "{what} {args:?} created {made:?}");
        }
    }
    let out = run(f, &cases[1].1, &["status"]);
    assert!(
        text(&out.stderr).contains("ATOM_AUDIT_KEY"),
        "{}",
        explain(&out)
    );
}
