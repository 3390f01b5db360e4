//! Envelope encryption through the `atom` binary on SQLite, with the key
//! store in a file of its own: values under per-user data keys, a master
//! key rotation that rewraps the data keys and leaves every credential row
//! as it was, one user's key rotated, and an erasure that shreds.

use std::path::Path;
use std::process::Output;

use crate::common::{self, atom, atom_with_stdin, text};

const TOKENS: [(&str, &str, &str); 3] = [
    ("alice", "slack", "xoxb-alice-0123456789"),
    ("alice", "github", "gho_alice_abcdefghij"),
    ("bob", "github", "gho_bob_klmnopqrstu"),
];

/// [`common::ok`], and no token on stderr.
fn ok(out: &Output) -> String {
    let stdout = common::ok(out);
    for (_, _, token) in TOKENS {
        assert!(!text(&out.stderr).contains(token), "stderr leaks a token");
    }
    stdout
}

struct Setup {
    vars: Vec<(String, String)>,
}

impl Setup {
    fn new(d: &Path) -> Setup {
        let keys = d.join("keys");
        std::fs::create_dir(&keys).unwrap();
        let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
        std::fs::write(keys.join("encryption.key"), key).unwrap();
        std::fs::write(keys.join("previous.keys"), "").unwrap();
        let vars = vec![
            ("ENCRYPTION_KEY_FILE", keys.join("encryption.key")),
            ("ENCRYPTION_PREVIOUS_KEYS_FILE", keys.join("previous.keys")),
        ]
        .into_iter()
        .map(|(k, p)| (k.to_owned(), p.display().to_string()))
        .chain([
            ("ATOM_ENVELOPE_ENCRYPTION".to_owned(), "1".to_owned()),
            (
                "DATABASE_URL".to_owned(),
                format!("sqlite://{}/atom.db", d.display()),
            ),
            (
                "ATOM_KEYSTORE_URL".to_owned(),
                format!("sqlite://{}/keys.db", d.display()),
            ),
        ])
        .collect();
        Setup { vars }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn json(&self, d: &Path, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&ok(&atom(d, &args, &self.env()))).unwrap()
    }

    fn get(&self, d: &Path, user: &str, provider: &str) -> Output {
        atom(d, &["credentials", "get", user, provider], &self.env())
    }
}

#[test]
fn envelope_encryption_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Setup::new(d);
    for (user, provider, token) in TOKENS {
        ok(&atom_with_stdin(
            d,
            &["credentials", "put", user, provider],
            &s.env(),
            token.as_bytes(),
        ));
    }
    let status = s.json(d, &["credentials", "status"]);
    assert_eq!(status["enveloped"], 3, "{status}");
    assert_eq!(status["data_keys"]["total"], 2, "{status}");
    let old_key = status["data_keys"]["by_key"][0]["key_id"].clone();

    // Rotate the master key: the data keys are rewrapped, the rows stay.
    let listed = |s: &Setup| ["alice", "bob"].map(|u| s.json(d, &["credentials", "list", u]));
    let rows_before = listed(&s);
    let rotated = atom(d, &["keys", "rotate", "--yes", "--json"], &s.env());
    let report: serde_json::Value = serde_json::from_str(&ok(&rotated)).unwrap();
    assert_eq!(report["outcome"], "finished", "{report}");
    assert_eq!(report["data_keys_rewrapped"], 2, "{report}");
    assert_eq!(report["rows_rewrapped"], 0, "{report}");
    let status = s.json(d, &["credentials", "status"]);
    assert_eq!(status["data_keys"]["need_rewrap"], 0, "{status}");
    let new_key = status["data_keys"]["by_key"][0]["key_id"].clone();
    assert_ne!(old_key, new_key);
    assert_eq!(report["new_key_id"], new_key, "{report}");
    assert_eq!(status["enveloped"], 3);
    // Same data key ids, same update times: no row was written.
    assert_eq!(listed(&s), rows_before);
    for (user, provider, token) in TOKENS {
        assert_eq!(ok(&s.get(d, user, provider)).trim_end(), token);
    }
    // The old master key was retired by the rotation; nothing needs it,
    // so it can be destroyed, and everything still opens.
    let old = old_key.as_str().unwrap();
    ok(&atom(d, &["keys", "destroy", old, "--yes"], &s.env()));

    // One user's data key rotated: bob's rows are untouched.
    let rotation = s.json(d, &["credentials", "rotate-user-key", "alice"]);
    assert_eq!(rotation["resealed"], 2, "{rotation}");
    assert_eq!(rotation["destroyed"], 1, "{rotation}");
    for (user, provider, token) in TOKENS {
        assert_eq!(ok(&s.get(d, user, provider)).trim_end(), token);
    }

    // Erasure destroys alice's data key with her rows.
    let erased = s.json(d, &["credentials", "erase-user", "alice", "--yes"]);
    assert_eq!(erased["data_keys_destroyed"], 1, "{erased}");
    let out = s.get(d, "alice", "slack");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ok(&s.get(d, "bob", "github")).trim_end(), TOKENS[2].2);
    ok(&atom(d, &["audit", "verify"], &s.env()));
}

/// `keys destroy` with the key store in a database of its own: run without
/// `ATOM_KEYSTORE_URL`, it names that setting (the credentials database
/// records where its key store lives) instead of calling the database
/// not migrated; with it, it counts the data keys still wrapped under the
/// key and refuses.
#[test]
fn keys_destroy_finds_the_key_store_or_names_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Setup::new(d);
    for (user, provider, token) in TOKENS {
        ok(&atom_with_stdin(
            d,
            &["credentials", "put", user, provider],
            &s.env(),
            token.as_bytes(),
        ));
    }
    // The key that wraps the data keys is retired by hand (as a careless
    // operator would), and a new one made primary.
    let keys = d.join("keys");
    let old = std::fs::read_to_string(keys.join("encryption.key")).unwrap();
    let old_id = s.json(d, &["keys", "list"])["keys"][0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
    std::fs::write(keys.join("encryption.key"), new).unwrap();
    std::fs::write(keys.join("retired.keys"), &old).unwrap();

    let without: Vec<(&str, &str)> = s
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "ATOM_KEYSTORE_URL")
        .collect();
    let out = atom(d, &["keys", "destroy", &old_id, "--yes"], &without);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("ATOM_KEYSTORE_URL"), "{err}");
    assert!(
        err.contains("keys.db"),
        "names where the key store is: {err}"
    );
    assert!(!err.contains("not migrated"), "{err}");

    let out = atom(d, &["keys", "destroy", &old_id, "--yes"], &s.env());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("data key"), "counts the wrapped keys: {err}");
    assert!(
        std::fs::read_to_string(keys.join("retired.keys"))
            .unwrap()
            .contains(old.trim()),
        "the key is kept"
    );
}
