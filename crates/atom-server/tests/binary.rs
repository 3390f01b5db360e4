//! The built binary: starts on the SQLite default in an empty folder,
//! answers, and stops cleanly on SIGTERM with its audit log anchored.

use std::process::Command;

use crate::common::{spawn_binary, terminate};

#[test]
fn starts_on_the_defaults_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key = atom_crypto::Key::generate().unwrap();
    let (child, addr, _log) = spawn_binary(
        dir.path(),
        &[("ENCRYPTION_KEY", key.expose_base64().as_str())],
    );
    let body = http_get(&addr, "/healthz");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    terminate(child);
    // Everything a development run makes is in one folder, 0700, which
    // ignores itself in git; files are 0600.
    let dev = dir.path().join(".atom");
    for file in [
        "atom.db",
        "audit.jsonl",
        "audit.jsonl.key",
        "jwt.secret",
        ".gitignore",
    ] {
        assert!(dev.join(file).exists(), "{file} was not created");
    }
    let mut made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, vec![".atom"], "files outside the development folder");
    assert_eq!(
        std::fs::read_to_string(dev.join(".gitignore"))
            .unwrap()
            .lines()
            .last(),
        Some("*")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dev), 0o700);
        for file in ["atom.db", "audit.jsonl.key", "jwt.secret"] {
            assert_eq!(mode(&dev.join(file)), 0o600, "{file}");
        }
    }
}

/// A minimal HTTP/1.1 GET, so this test needs no async runtime.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn production_settings_refuse_development_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = atom_crypto::Key::generate().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atom-server"))
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .env_clear()
        .env("ENCRYPTION_KEY", key.expose_base64().as_str())
        .env("ATOM_REQUIRE_ENCRYPTION", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ATOM_JWT_SECRET"), "{err}");
    assert!(
        !dir.path().join(".atom").exists(),
        "no development secret was made"
    );
}

#[test]
fn an_identity_provider_configuration_is_complete_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atom-server"));
        cmd.current_dir(dir.path())
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env_clear();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{env:?} {args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let url = ("ATOM_JWKS_URL", "http://127.0.0.1:9/jwks");
    let iss = ("ATOM_JWT_ISSUER", "https://idp.example/");
    let aud = ("ATOM_JWT_AUDIENCE", "atom");
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Env, Vec<&str>, &str)> = vec![
        (vec![url, aud], vec![], "ATOM_JWT_ISSUER"),
        (vec![url, iss], vec![], "ATOM_JWT_AUDIENCE"),
        (vec![iss, aud], vec![], "ATOM_JWKS_URL"),
        (
            vec![("ATOM_JWKS_URL", "http://idp.example/jwks"), iss, aud],
            vec![],
            "https",
        ),
        (
            vec![url, iss, aud],
            vec!["token", "--user", "u"],
            "identity provider",
        ),
        // Complete, but nothing answers at the URL: no start, no files.
        (vec![url, iss, aud], vec![], "cannot connect"),
    ];
    for (env, args, says) in &cases {
        let err = run(env, args);
        assert!(err.contains(says), "{env:?} {args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a refused start-up leaves no file behind"
    );
}

/// The metric names that deploy/prometheus/atom.rules.yml and
/// deploy/grafana/atom.json read, as the server exports them (histogram
/// series by their base name).
fn names_used_by_alerts_and_dashboard() -> std::collections::BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut names = std::collections::BTreeSet::new();
    for file in [
        "deploy/prometheus/atom.rules.yml",
        "deploy/grafana/atom.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("atom_") {
            let before = rest[..at].chars().next_back();
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[at + name.len().max(1)..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            names.insert(base.to_owned());
        }
    }
    names
}

/// Every metric an alert or the dashboard reads is exported by a running
/// server after a little traffic: a renamed metric fails here instead of
/// leaving a silent alert.
#[test]
fn every_metric_of_the_alerts_and_the_dashboard_is_exported() {
    let names = names_used_by_alerts_and_dashboard();
    assert!(names.len() >= 12, "{names:?}");
    let dir = tempfile::tempdir().unwrap();
    let key = atom_crypto::Key::generate().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key_file = keys.join("encryption.key");
    std::fs::write(&key_file, key.expose_base64().as_str()).unwrap();
    // The key's introduction, as `atom keys rotate` records it: the age
    // series exists only for a key whose age is known.
    let introduced = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    std::fs::write(
        keys.join(atom_rotation::AGES_FILE),
        format!(
            r#"{{"version":1,"keys":{{"{}":"{introduced}"}}}}"#,
            key.id()
        ),
    )
    .unwrap();
    let key_file = key_file.display().to_string();
    let (child, addr, _log) = spawn_binary(
        dir.path(),
        &[
            ("ENCRYPTION_KEY_FILE", key_file.as_str()),
            ("ATOM_JWT_SECRET", "a-shared-secret-of-more-than-32-bytes!!"),
        ],
    );
    for path in [
        "/healthz",
        "/readyz",
        "/api/users/alice/credentials",
        "/nowhere",
    ] {
        http_get(&addr, path);
    }
    let text = http_get(&addr, "/metrics");
    terminate(child);
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            // A histogram is exported as its `_bucket`, `_sum` and `_count`.
            let series = [
                format!("{name}{{"),
                format!("{name} "),
                format!("{name}_bucket{{"),
            ];
            !text
                .lines()
                .any(|l| series.iter().any(|s| l.starts_with(s.as_str())))
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{text}");
}
