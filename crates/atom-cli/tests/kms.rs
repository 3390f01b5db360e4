//! Master keys held by AWS KMS, against a real local KMS: `moto_server`
//! (moto 5), started by the test on a free port. Without moto_server the
//! tests print SKIPPED (`.ci/run` installs it).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{atom, text};

/// A moto_server process, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(test: &str) -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: moto_server is not installed (pip install 'moto[server]')"
                );
                return None;
            }
        };
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn client(&self) -> (aws_sdk_kms::Client, tokio::runtime::Runtime) {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .http_client(atom_kms::https_client())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(&self.endpoint)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (aws_sdk_kms::Client::from_conf(config), runtime)
    }

    /// A new symmetric KMS key; its id.
    fn create_key(&self) -> String {
        let (client, runtime) = self.client();
        let made = runtime
            .block_on(client.create_key().description("atom test").send())
            .unwrap();
        made.key_metadata().unwrap().key_id().to_owned()
    }

    /// The key a keys-file line holds, as Atom writes keys (url-safe
    /// base64), decrypted here only to look for it in outputs.
    fn reveal(&self, line: &str) -> String {
        use base64::Engine as _;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(line)
            .unwrap();
        let (client, runtime) = self.client();
        let answer = runtime
            .block_on(
                client
                    .decrypt()
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
                    .encryption_context("purpose", "atom-master-key")
                    .send(),
            )
            .unwrap();
        base64::engine::general_purpose::URL_SAFE.encode(answer.plaintext().unwrap().as_ref())
    }

    fn env<'a>(&'a self, keys_file: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL_KMS", &self.endpoint),
            ("ATOM_KMS_KEYS_FILE", keys_file),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The key id a secrets.enc value is sealed under.
fn sealed_under(dir: &Path, name: &str) -> String {
    let enc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("secrets.enc")).unwrap()).unwrap();
    let value = enc[name].as_str().unwrap().to_owned();
    assert!(value.starts_with("atom:v1:"), "{value}");
    value["atom:v1:".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn keys_made_and_held_by_kms_seal_open_and_rotate() {
    let Some(moto) = Moto::start("keys_made_and_held_by_kms_seal_open_and_rotate") else {
        return;
    };
    let kms_key = moto.create_key();
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("kms.keys");
    let keys_file_text = keys_file.display().to_string();
    let env = moto.env(&keys_file_text);
    let d = dir.path();

    let mut outputs = String::new();
    let mut run = |args: &[&str], what: &str| {
        let out = atom(d, args, &env);
        outputs.push_str(&text(&out.stdout));
        outputs.push_str(&text(&out.stderr));
        ok(&out, what)
    };
    let gen_args = [
        "key",
        "generate",
        "--kms-key-id",
        &kms_key,
        "--add-to",
        &keys_file_text,
        "--json",
    ];
    let made: serde_json::Value = serde_json::from_str(&run(&gen_args, "generate")).unwrap();
    let first_id = made["key_id"].as_str().unwrap().to_owned();
    // The file keeps the KMS blob, never the key: one base64 line that is
    // not 32 bytes.
    let lines: Vec<String> = std::fs::read_to_string(&keys_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() > 100, "a KMS blob, not a 44-character key");

    std::fs::write(
        d.join("secrets.json"),
        r#"{"api_token": "kms-guarded-value-5d1e"}"#,
    )
    .unwrap();
    run(&["secrets", "migrate"], "migrate");
    assert_eq!(sealed_under(d, "api_token"), first_id);
    let got = run(&["secrets", "get", "api_token"], "get");
    assert_eq!(got.trim(), "kms-guarded-value-5d1e");
    let check = run(&["key", "check"], "check");
    assert!(check.contains(&first_id), "{check}");

    // Rotation to a KMS-generated key: a new primary line, rewrap, and the
    // old line removed.
    let made: serde_json::Value = serde_json::from_str(&run(&gen_args, "generate 2")).unwrap();
    let second_id = made["key_id"].as_str().unwrap().to_owned();
    assert_ne!(first_id, second_id);
    assert_eq!(
        std::fs::read_to_string(&keys_file).unwrap().lines().count(),
        2
    );
    run(&["secrets", "rewrap"], "rewrap");
    assert_eq!(sealed_under(d, "api_token"), second_id);
    let only_new = std::fs::read_to_string(&keys_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&keys_file, format!("{only_new}\n")).unwrap();
    let got = run(&["secrets", "get", "api_token"], "get after rotation");
    assert_eq!(got.trim(), "kms-guarded-value-5d1e");

    // Neither key reached any output or any file of the folder.
    let keys: Vec<String> = [&lines[0], &only_new]
        .iter()
        .map(|l| moto.reveal(l))
        .collect();
    let mut files = String::new();
    for entry in walk(d) {
        files.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    for key in &keys {
        assert_eq!(key.len(), 44);
        let bare = key.trim_end_matches('=');
        assert!(!outputs.contains(bare), "a key in an output");
        assert!(!files.contains(bare), "a key in clear on disk");
    }

    // The rotation engine manages key files in clear: refused, with the way.
    let rotate = atom(d, &["keys", "rotate", "--dry-run"], &env);
    assert!(!rotate.status.success());
    assert!(
        text(&rotate.stderr).contains("--add-to"),
        "{}",
        text(&rotate.stderr)
    );
}

#[test]
fn a_wrong_context_an_unreachable_kms_or_a_second_key_source_loads_no_key() {
    let Some(moto) =
        Moto::start("a_wrong_context_an_unreachable_kms_or_a_second_key_source_loads_no_key")
    else {
        return;
    };
    let kms_key = moto.create_key();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys_file = d.join("kms.keys").display().to_string();
    let env = moto.env(&keys_file);
    ok(
        &atom(
            d,
            &[
                "key",
                "generate",
                "--kms-key-id",
                &kms_key,
                "--add-to",
                &keys_file,
            ],
            &env,
        ),
        "generate",
    );
    let plain = r#"{"db_password": "never-in-clear-7c2a"}"#;
    std::fs::write(d.join("secrets.json"), plain).unwrap();
    let before: Vec<_> = {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let with = |name: &'static str, value: &str| {
        let mut e: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        e.retain(|(k, _)| *k != name);
        e.push((name, value.to_owned()));
        e
    };
    let cases = [
        (
            with("ATOM_KMS_CONTEXT", "purpose=something-else"),
            "InvalidCiphertextException",
        ),
        (with("AWS_ENDPOINT_URL_KMS", &closed), "unreachable"),
        (
            with(
                "ENCRYPTION_KEY",
                "5n4A8d6Jp0rXDQ7aWj0B6Jq8bQd4mM6mQ2cZ0e1lW3A=",
            ),
            "keys come from one source",
        ),
        (with("AWS_REGION", ""), "AWS_REGION"),
    ];
    for (env, says) in &cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = atom(d, &["secrets", "migrate"], &env);
        assert!(!out.status.success(), "{says}");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{says}: {err}");
        assert!(!err.contains("never-in-clear"), "{err}");
        // Nothing migrated, nothing created: no fallback to plaintext.
        assert_eq!(
            std::fs::read_to_string(d.join("secrets.json")).unwrap(),
            plain
        );
        let mut now: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        now.sort();
        assert_eq!(now, before, "{says}: no file created or removed");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
