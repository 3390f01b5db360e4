//! The operator's walkthrough, end to end on SQLite: every documented exit
//! code, and no secret on stdout or stderr except from `get`.

use std::path::Path;
use std::process::Output;

use crate::common::{atom, atom_with_stdin, ok, text};

const OPENAI: &str = "sk-live-openai-0123456789abcdef";
const SLACK: &str = "xoxb-slack-9876543210";
const ADDED: &str = "added-secret-value-42";
const TOKEN: &str = "ya29.user-token-abcdefghijklmnop";

struct Env {
    key: String,
}

impl Env {
    fn vars(&self) -> Vec<(&str, &str)> {
        vec![("ENCRYPTION_KEY", self.key.as_str())]
    }
}

/// Neither stream of a command that does not exist to print a secret holds one.
fn no_secret(out: &Output) {
    for secret in [OPENAI, SLACK, ADDED, TOKEN] {
        assert!(
            !text(&out.stdout).contains(secret),
            "stdout leaks a secret: {}",
            text(&out.stdout)
        );
        assert!(
            !text(&out.stderr).contains(secret),
            "stderr leaks a secret: {}",
            text(&out.stderr)
        );
    }
}

fn run(dir: &Path, env: &Env, args: &[&str]) -> Output {
    let out = atom(dir, args, &env.vars());
    no_secret(&out);
    out
}

#[test]
fn secrets_lifecycle_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]))
        .trim()
        .to_owned();
    let env = Env { key };
    std::fs::write(
        d.join("secrets.json"),
        format!(r#"{{"openai_api_key": "{OPENAI}", "slack_token": "{SLACK}", "port": 8080}}"#),
    )
    .unwrap();

    ok(&run(d, &env, &["secrets", "migrate"]));
    let enc = std::fs::read_to_string(d.join("secrets.enc")).unwrap();
    assert!(!enc.contains(OPENAI) && enc.contains("atom:v1:"));

    let status: serde_json::Value =
        serde_json::from_str(&ok(&run(d, &env, &["secrets", "status", "--json"]))).unwrap();
    assert_eq!(status["total_secrets"], 3);
    assert_eq!(status["encrypted_secrets"], 2);
    assert_eq!(status["plaintext_secrets"], 0);

    let got = atom(d, &["secrets", "get", "openai_api_key"], &env.vars());
    assert_eq!(ok(&got).trim_end(), OPENAI);

    let out = atom_with_stdin(
        d,
        &["secrets", "set", "added"],
        &env.vars(),
        ADDED.as_bytes(),
    );
    no_secret(&out);
    ok(&out);
    assert_eq!(
        ok(&atom(d, &["secrets", "get", "added"], &env.vars())).trim_end(),
        ADDED
    );

    ok(&run(d, &env, &["secrets", "rewrap"]));
    ok(&run(d, &env, &["secrets", "verify"]));

    // Exit 3: a value moved to another name no longer opens.
    let mut doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("secrets.enc")).unwrap()).unwrap();
    let moved = doc["openai_api_key"].clone();
    doc.insert("slack_token".into(), moved);
    std::fs::write(d.join("secrets.enc"), serde_json::to_string(&doc).unwrap()).unwrap();
    let out = run(d, &env, &["secrets", "verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("FAILED  slack_token"));
    doc.remove("slack_token");
    std::fs::write(d.join("secrets.enc"), serde_json::to_string(&doc).unwrap()).unwrap();

    // Exit 1: a bad key is refused without echoing it; nothing is changed.
    let before = std::fs::read(d.join("secrets.enc")).unwrap();
    let out = atom(
        d,
        &["secrets", "rewrap"],
        &[("ENCRYPTION_KEY", "not-a-key")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ENCRYPTION_KEY is 9 characters"));
    assert_eq!(std::fs::read(d.join("secrets.enc")).unwrap(), before);

    // Exit 2: usage.
    assert_eq!(
        atom(d, &["secrets", "frobnicate"], &[]).status.code(),
        Some(2)
    );

    ok(&run(d, &env, &["secrets", "rollback"]));
    let plain = std::fs::read_to_string(d.join("secrets.json")).unwrap();
    assert!(
        plain.contains(OPENAI) && plain.contains(ADDED),
        "rollback keeps later edits"
    );

    // The audit log recorded all of it and is intact.
    let out = run(d, &env, &["audit", "verify"]);
    assert!(ok(&out).contains("intact"), "{}", text(&out.stdout));
    let tail = ok(&run(d, &env, &["audit", "tail", "-n", "50"]));
    assert!(tail.contains("secret_read - secret=openai_api_key"));
    assert!(tail.contains("secrets_rolled_back"));

    // Exit 3: one byte of the log changed.
    let log = d.join(".atom/audit.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.windows(6).position(|w| w == b"secret").unwrap();
    bytes[at] = b'S';
    std::fs::write(&log, bytes).unwrap();
    let out = run(d, &env, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
}

#[test]
fn credentials_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]))
        .trim()
        .to_owned();
    let env = Env { key };

    let out = atom_with_stdin(
        d,
        &["credentials", "put", "alice", "slack"],
        &env.vars(),
        TOKEN.as_bytes(),
    );
    no_secret(&out);
    ok(&out);
    assert_eq!(
        ok(&atom(
            d,
            &["credentials", "get", "alice", "slack"],
            &env.vars()
        ))
        .trim_end(),
        TOKEN
    );
    let list: serde_json::Value = serde_json::from_str(&ok(&run(
        d,
        &env,
        &["credentials", "list", "alice", "--json"],
    )))
    .unwrap();
    assert_eq!(list["credentials"][0]["provider"], "slack");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&run(d, &env, &["credentials", "status", "--json"]))).unwrap();
    assert_eq!(status["total"], 1);
    ok(&run(d, &env, &["credentials", "rewrap"]));
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&run(d, &env, &["status", "--json"]))).unwrap();
    assert_eq!(doc["encryption_enabled"], true);
    assert_eq!(doc["credentials"]["total"], 1);

    // Another user's name is just another row: bob has nothing.
    let out = run(d, &env, &["credentials", "get", "bob", "slack"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no credential is stored for user bob"));
    // A bad user id or provider is refused with a message.
    let out = run(d, &env, &["credentials", "list", " padded "]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("user id"),
        "{}",
        text(&out.stderr)
    );
    let out = run(d, &env, &["credentials", "get", "alice", "sl ack"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a provider name"),
        "{}",
        text(&out.stderr)
    );

    ok(&run(d, &env, &["credentials", "delete", "alice", "slack"]));
    assert_eq!(
        run(d, &env, &["credentials", "delete", "alice", "slack"])
            .status
            .code(),
        Some(1)
    );
    let out = atom_with_stdin(
        d,
        &["credentials", "put", "alice", "github"],
        &env.vars(),
        TOKEN.as_bytes(),
    );
    ok(&out);
    let erased: serde_json::Value = serde_json::from_str(&ok(&run(
        d,
        &env,
        &["credentials", "erase-user", "alice", "--json"],
    )))
    .unwrap();
    assert_eq!(erased["removed"], serde_json::json!(["github"]));
    ok(&run(d, &env, &["audit", "verify"]));
}
