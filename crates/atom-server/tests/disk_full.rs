//! A disk that fills up under the server: SQLite's COMMIT fails with
//! SQLITE_FULL. Reproduced without root by lowering the server process's
//! file-size limit (RLIMIT_FSIZE, with `prlimit`) just above its WAL file,
//! then raising it again. Every write answered 2xx must be in the database
//! after a restart, none answered 5xx may be, and the audit log's success
//! events must match the database exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, listen_address};

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the binary in `dir` with SIGXFSZ ignored (so that a write past
    /// the file-size limit fails with EFBIG instead of killing it).
    fn start(dir: &Path, key: &str, audit_key: &str) -> Server {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_atom-server"))
            .args(["--bind", "127.0.0.1:0"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ENCRYPTION_KEY", key)
            .env("ATOM_JWT_SECRET", std::str::from_utf8(JWT_SECRET).unwrap())
            .env("ATOM_AUDIT_KEY", audit_key)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/atom.db", dir.display()),
            )
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (addr, rx) = listen_address(&mut child);
        // Keep draining the log so the server never blocks on its pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Server { child, addr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let _ = self.child.wait();
    }
}

/// Sets the soft file-size limit of process `pid` (`None`: unlimited).
fn set_file_size_limit(pid: &str, bytes: Option<u64>) {
    let soft = bytes.map_or("unlimited".to_owned(), |b| b.to_string());
    let status = Command::new("prlimit")
        .args(["--pid", pid, &format!("--fsize={soft}:")])
        .status()
        .unwrap();
    assert!(status.success(), "prlimit failed");
}

fn prlimit_available() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_never_acknowledges_a_write_it_did_not_store() {
    if !prlimit_available() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED a_full_disk_never_acknowledges_a_write_it_did_not_store (prlimit from util-linux is not installed)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = atom_crypto::Key::generate().unwrap();
    let key_text = key.expose_base64().to_string();
    let audit_key = atom_crypto::Key::generate()
        .unwrap()
        .expose_base64()
        .to_string();
    let server = Server::start(dir.path(), &key_text, &audit_key);
    let jwt = atom_server::JwtKeys::new(JWT_SECRET).unwrap();
    let admin = jwt.issue("ops", true, crate::common::now(), 3600).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    // Large tokens make the WAL, not the audit log, the file that grows
    // fastest, so the limit hits the database's COMMIT.
    let value = |i: usize| format!("tok-{i}-{}", "z".repeat(9000));
    let put = |i: usize| {
        let req = client
            .put(format!(
                "http://{}/api/users/u{i}/credentials/p",
                server.addr
            ))
            .bearer_auth(&admin)
            .json(&json!({ "token": value(i) }));
        async move { req.send().await.map(|r| r.status()) }
    };
    let mut answers: BTreeMap<usize, StatusCode> = BTreeMap::new();
    let mut i = 0;
    for _ in 0..8 {
        answers.insert(i, put(i).await.unwrap());
        i += 1;
    }
    // Full: the WAL may grow by about two more pages.
    let wal = std::fs::metadata(dir.path().join("atom.db-wal"))
        .unwrap()
        .len();
    let audit = std::fs::metadata(dir.path().join(".atom/audit.jsonl"))
        .unwrap()
        .len();
    assert!(
        wal > audit * 4,
        "the WAL ({wal}) must outgrow the audit log ({audit})"
    );
    set_file_size_limit(&server.pid(), Some(wal + 6000));
    for _ in 0..10 {
        answers.insert(i, put(i).await.unwrap());
        i += 1;
    }
    // Room again.
    set_file_size_limit(&server.pid(), None);
    for _ in 0..10 {
        answers.insert(i, put(i).await.unwrap());
        i += 1;
    }
    server.stop();

    let failed: Vec<usize> = answers
        .iter()
        .filter(|(_, s)| s.is_server_error())
        .map(|(i, _)| *i)
        .collect();
    assert!(
        !failed.is_empty(),
        "the full disk refused no write: {answers:?}"
    );
    assert!(
        failed.iter().all(|&i| (8..18).contains(&i)),
        "only writes while the disk was full may fail: {answers:?}"
    );
    for (i, status) in &answers {
        assert!(
            *status == StatusCode::NO_CONTENT || status.is_server_error(),
            "write {i}: {status}"
        );
    }

    // A clean restart sees exactly the acknowledged writes.
    let server = Server::start(dir.path(), &key_text, &audit_key);
    for (i, status) in &answers {
        let resp = client
            .get(format!(
                "http://{}/api/users/u{i}/credentials/p",
                server.addr
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if *status == StatusCode::NO_CONTENT {
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "acknowledged write {i} is lost"
            );
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["token"], json!(value(*i)), "write {i}");
        } else {
            assert_eq!(
                resp.status(),
                StatusCode::NOT_FOUND,
                "refused write {i} was stored"
            );
        }
    }
    server.stop();

    // The audit log: the last `credential_stored` of each user says
    // success exactly for the users whose write is stored.
    let log = std::fs::read_to_string(dir.path().join(".atom/audit.jsonl")).unwrap();
    let mut last = BTreeMap::new();
    for line in log.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let event = &record["event"];
        if event["action"]["event"] == "credential_stored" {
            let user = event["action"]["user"].as_str().unwrap().to_owned();
            last.insert(user, event["outcome"] == "success");
        }
    }
    let audited: BTreeSet<String> = last
        .into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(u, _)| u)
        .collect();
    let stored: BTreeSet<String> = answers
        .iter()
        .filter(|(_, s)| **s == StatusCode::NO_CONTENT)
        .map(|(i, _)| format!("u{i}"))
        .collect();
    assert_eq!(audited, stored);
}
