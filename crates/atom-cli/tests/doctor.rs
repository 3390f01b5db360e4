//! `atom doctor`, pinned trycmd-style: each case sets up a folder, runs
//! `atom doctor` and compares its output (the case folder's path shown as
//! `[DIR]`, key ids as `[ID]`) with `tests/doctor/<case>.stdout`, and its
//! exit code. Every case also checks that the doctor only reads: the
//! folder (database included) is byte for byte as it was, and no file was
//! created. Run with `ATOM_BLESS=1` to write the expected files anew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{atom, atom_with_stdin, ok, text};

/// A folder set up as a deployment, with the environment of its commands.
struct Deployment {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Deployment {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.env.insert(name.to_owned(), value.into());
    }

    fn unset(&mut self, name: &str) {
        self.env.remove(name);
    }

    fn run(&self, args: &[&str]) -> String {
        ok(&atom(self.path(), args, &self.env()))
    }

    fn run_with(&self, args: &[&str], stdin: &[u8]) -> String {
        ok(&atom_with_stdin(self.path(), args, &self.env(), stdin))
    }

    fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    fn key(&self) -> String {
        self.run(&["keys", "generate", "--quiet"]).trim().to_owned()
    }

    /// Records `days` ago as the introduction of the primary key.
    fn key_introduced_days_ago(&self, days: i64) {
        let list: serde_json::Value =
            serde_json::from_str(&self.run(&["keys", "list", "--json"])).unwrap();
        let id = list["keys"][0]["key_id"].as_str().unwrap().to_owned();
        let at = chrono::Utc::now() - chrono::Duration::days(days);
        let ages = serde_json::json!({"version": 1, "keys": { id: at.to_rfc3339() }});
        self.write("keys/.atom-keys.json", ages.to_string().as_bytes());
    }
}

/// The production setup the checklist asks for: keys in files (the primary
/// key's age recorded), secrets migrated and the plaintext shredded, the
/// database migrated with a credential in it, the audit key apart from the
/// log, TLS and an identity provider configured for the server.
fn healthy() -> Deployment {
    let mut d = Deployment {
        dir: tempfile::tempdir().unwrap(),
        env: BTreeMap::new(),
    };
    let key = d.key();
    let audit = d.key();
    let key_file = d.write("keys/encryption.key", format!("{key}\n").as_bytes());
    let previous = d.write("keys/previous.keys", b"");
    let audit_file = d.write("audit-keys/audit.key", format!("{audit}\n").as_bytes());
    d.set("ENCRYPTION_KEY_FILE", key_file.display().to_string());
    d.set(
        "ENCRYPTION_PREVIOUS_KEYS_FILE",
        previous.display().to_string(),
    );
    d.set("ATOM_AUDIT_KEY_FILE", audit_file.display().to_string());
    d.key_introduced_days_ago(0);
    d.write(
        "secrets.json",
        br#"{"openai_api_key": "sk-doctor", "database": {"password": "pw"}, "port": 5432}"#,
    );
    d.run(&["secrets", "migrate"]);
    d.run(&["secrets", "shred-plaintext", "--yes"]);
    d.run(&["db", "migrate"]);
    d.run_with(&["credentials", "put", "alice", "slack"], b"xoxb-doctor");
    let cert = d.write("tls/cert.pem", b"-----BEGIN CERTIFICATE-----\n");
    let tls_key = d.write("tls/key.pem", b"-----BEGIN PRIVATE KEY-----\n");
    d.set("ATOM_TLS_CERT", cert.display().to_string());
    d.set("ATOM_TLS_KEY", tls_key.display().to_string());
    let jwks = d.write("jwks.json", br#"{"keys": []}"#);
    d.set("ATOM_JWKS_FILE", jwks.display().to_string());
    d.set("ATOM_JWT_ISSUER", "https://idp.example/");
    d.set("ATOM_JWT_AUDIENCE", "atom-api");
    d
}

/// Every file under `dir` with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            #[cfg(unix)]
            let mode = {
                use std::os::unix::fs::PermissionsExt as _;
                meta.permissions().mode()
            };
            #[cfg(not(unix))]
            let mode = 0;
            let bytes = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), (bytes, mode));
        }
    }
    out
}

/// `text` with the case folder as `[DIR]` and every key id (12 lower-case
/// hex digits standing alone) as `[ID]`.
fn normalized(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| is_hex(**c)).count();
        let before_ok = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let after_ok = chars
            .get(i + run)
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if run == 12 && before_ok && after_ok {
            out.push_str("[ID]");
            i += run;
        } else if run > 0 {
            out.extend(&chars[i..i + run]);
            i += run;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Runs `atom doctor` in `d` and checks the case `name`: its exit code, its
/// output against `tests/doctor/<name>.stdout`, nothing changed.
fn case(name: &str, d: &Deployment, exit: i32) {
    let before = snapshot(d.path());
    let out = atom(d.path(), &["doctor"], &d.env());
    let after = snapshot(d.path());
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(
        changed.is_empty(),
        "{name}: atom doctor changed {changed:?}"
    );
    let stdout = normalized(&text(&out.stdout), d.path());
    let expected_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/doctor")
        .join(format!("{name}.stdout"));
    if std::env::var_os("ATOM_BLESS").is_some() {
        std::fs::write(&expected_file, &stdout).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_file).unwrap_or_else(|_| {
        panic!(
            "{name}: no {}; run with ATOM_BLESS=1",
            expected_file.display()
        )
    });
    assert_eq!(stdout, expected, "{name}: stderr {}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(exit), "{name}: {stdout}");
    // The JSON form says the same.
    let json = atom(d.path(), &["doctor", "--json"], &d.env());
    let value: serde_json::Value = serde_json::from_str(&text(&json.stdout)).unwrap();
    assert_eq!(value["exit_code"], exit, "{name}");
    assert_eq!(json.status.code(), Some(exit), "{name}");
}

#[test]
fn a_healthy_setup_passes_every_line() {
    case("healthy", &healthy(), 0);
}

#[test]
fn each_failing_line_says_why_and_what_to_run() {
    // No key in the environment.
    let mut d = healthy();
    d.unset("ENCRYPTION_KEY_FILE");
    d.unset("ENCRYPTION_PREVIOUS_KEYS_FILE");
    case("no_key", &d, 2);

    // The key in a variable, not a file.
    let mut d = healthy();
    let key = std::fs::read_to_string(d.path().join("keys/encryption.key")).unwrap();
    d.unset("ENCRYPTION_KEY_FILE");
    d.set("ENCRYPTION_KEY", key.trim());
    case("key_in_variable", &d, 1);

    // secrets.json never migrated, then migrated but not shredded.
    let d = healthy();
    std::fs::remove_file(d.path().join("secrets.enc")).unwrap();
    d.write("secrets.json", br#"{"token": "xoxb-plain"}"#);
    case("not_migrated", &d, 2);
    let d = healthy();
    d.write("secrets.json.backup", br#"{"token": "xoxb-plain"}"#);
    case("plaintext_copies", &d, 2);

    // A secret sealed under a key that was then retired by hand.
    let d = healthy();
    let old = std::fs::read_to_string(d.path().join("keys/encryption.key")).unwrap();
    d.write("keys/retired.keys", old.as_bytes());
    let new = d.key();
    d.write("keys/encryption.key", format!("{new}\n").as_bytes());
    d.key_introduced_days_ago(0);
    case("retired_key", &d, 2);

    // The primary key past the policy of 90 days.
    let d = healthy();
    d.key_introduced_days_ago(200);
    case("key_too_old", &d, 1);

    // The audit trail altered.
    let d = healthy();
    let log = d.path().join(".atom/audit.jsonl");
    let altered = std::fs::read_to_string(&log)
        .unwrap()
        .replacen("alice", "mallo", 1);
    std::fs::write(&log, altered).unwrap();
    case("audit_trail_altered", &d, 2);

    // The server would run without TLS and without an identity provider.
    let mut d = healthy();
    for name in [
        "ATOM_TLS_CERT",
        "ATOM_TLS_KEY",
        "ATOM_JWKS_FILE",
        "ATOM_JWT_ISSUER",
        "ATOM_JWT_AUDIENCE",
    ] {
        d.unset(name);
    }
    d.set("ATOM_JWT_SECRET", "a-shared-secret-of-more-than-32-bytes!!");
    case("server_settings", &d, 1);
}

#[test]
fn development_defaults_and_older_databases_are_named() {
    // Everything in development mode: the audit key next to the log.
    let mut d = healthy();
    d.unset("ATOM_AUDIT_KEY_FILE");
    let dir = d.path().to_path_buf();
    std::fs::remove_dir_all(dir.join(".atom")).unwrap();
    d.run(&["db", "migrate"]);
    d.run_with(&["credentials", "put", "alice", "slack"], b"xoxb-doctor");
    case("development_audit_key", &d, 2);

    // A database written before envelopes became the default (a new
    // trail too: its anchor goes with it).
    let mut d = healthy();
    std::fs::remove_dir_all(d.path().join(".atom")).unwrap();
    std::fs::remove_file(d.path().join("audit-keys/audit.key.anchor")).unwrap();
    d.set("ATOM_ENVELOPE_ENCRYPTION", "0");
    d.run(&["db", "migrate"]);
    d.run_with(&["credentials", "put", "alice", "slack"], b"xoxb-doctor");
    d.unset("ATOM_ENVELOPE_ENCRYPTION");
    case("envelope_off", &d, 1);
}
