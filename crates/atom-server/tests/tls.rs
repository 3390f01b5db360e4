//! HTTPS: served through rustls with a certificate the test makes, reloaded
//! without dropping open connections, and refused clearly when the files
//! are wrong; the binary reloads on SIGHUP.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atom_server::{Tls, TlsError};
use reqwest::{Certificate, Client, StatusCode};

use crate::common::{TestServer, sqlite_url};

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn make_cert() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (made.cert.pem(), made.key_pair.serialize_pem())
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (cert_path, key_path)
}

/// A client that trusts only `cert` and reaches `localhost` at `addr`.
fn client_trusting(cert: &str, addr: SocketAddr) -> Client {
    Client::builder()
        .add_root_certificate(Certificate::from_pem(cert.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

#[tokio::test]
async fn serves_https_and_reloads_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert();
    let (cert_path, key_path) = write_pair(dir.path(), &first);
    let tls = Tls::load(&cert_path, &key_path).unwrap();
    let s = TestServer::start_tls(dir.path(), &sqlite_url(dir.path()), tls.clone()).await;

    let old_client = client_trusting(&first.0, s.addr);
    let resp = old_client
        .get(https(s.addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    // Plain HTTP to the HTTPS port gets no answer.
    assert!(Client::new().get(s.url("/healthz")).send().await.is_err());

    // A new certificate: new connections get it, an open one keeps its own.
    let second = make_cert();
    write_pair(dir.path(), &second);
    tls.reload().unwrap();
    let resp = old_client
        .get(https(s.addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the open connection was kept"
    );
    let fresh_old = client_trusting(&first.0, s.addr);
    assert!(
        fresh_old
            .get(https(s.addr, "/healthz"))
            .send()
            .await
            .is_err(),
        "a new connection still got the old certificate"
    );
    let new_client = client_trusting(&second.0, s.addr);
    let resp = new_client
        .get(https(s.addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A broken file is refused and the certificate in use stays.
    std::fs::write(&key_path, "not a key").unwrap();
    let err = tls.reload().unwrap_err();
    assert!(matches!(err, TlsError::NotPem { .. }), "{err}");
    assert!(err.to_string().contains("tls.key"), "{err}");
    let again = client_trusting(&second.0, s.addr);
    let resp = again.get(https(s.addr, "/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await;
}

#[test]
fn bad_certificate_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert();
    let (other_cert, other_key) = make_cert();
    let p = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (good_cert, good_key) = (p("good.crt", &cert), p("good.key", &key));
    let cases: Vec<(&str, PathBuf, PathBuf, &str)> = vec![
        (
            "missing certificate",
            dir.path().join("none.crt"),
            good_key.clone(),
            "none.crt",
        ),
        (
            "missing key",
            good_cert.clone(),
            dir.path().join("none.key"),
            "none.key",
        ),
        (
            "key in the certificate's place",
            p("swapped.crt", &key),
            good_key.clone(),
            "no certificate",
        ),
        (
            "certificate in the key's place",
            good_cert.clone(),
            p("swapped.key", &cert),
            "no private key",
        ),
        (
            "empty certificate",
            p("empty.crt", ""),
            good_key.clone(),
            "empty.crt",
        ),
        (
            "key of another certificate",
            p("other.crt", &other_cert),
            good_key.clone(),
            "not a usable certificate and key",
        ),
        (
            "a folder",
            dir.path().to_owned(),
            good_key.clone(),
            "cannot read",
        ),
    ];
    for (what, cert, key, words) in cases {
        let err = Tls::load(&cert, &key).expect_err(what).to_string();
        assert!(err.contains(words), "{what}: {err}");
        assert!(
            !err.contains("PRIVATE KEY-----\n"),
            "{what}: key material in {err}"
        );
        assert!(
            !err.contains(&other_key[30..60]),
            "{what}: key material in {err}"
        );
    }
    assert!(Tls::load(&good_cert, &good_key).is_ok());
}

#[test]
fn the_binary_serves_https_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert();
    let (cert_path, key_path) = write_pair(dir.path(), &first);
    let key = atom_crypto::Key::generate().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_atom-server"))
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env_clear()
        .env("ENCRYPTION_KEY", key.expose_base64().as_str())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let addr: SocketAddr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server output");
        if let Some(i) = line.find("address=") {
            assert!(line.contains("scheme=https"), "{line}");
            break line[i + "address=".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let get = |cert: String| async move {
            client_trusting(&cert, addr)
                .get(https(addr, "/healthz"))
                .send()
                .await
                .map(|r| r.status())
        };
        assert_eq!(get(first.0.clone()).await.unwrap(), StatusCode::OK);

        let second = make_cert();
        write_pair(dir.path(), &second);
        let hup = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
        let started = Instant::now();
        while get(second.0.clone()).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the certificate was never reloaded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            get(first.0.clone()).await.is_err(),
            "new connections still get the old certificate"
        );
    });
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_binary_refuses_a_bad_certificate_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let key = atom_crypto::Key::generate().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atom-server"))
        .current_dir(dir.path())
        .args([
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            "missing.crt",
            "--tls-key",
            "missing.key",
        ])
        .env_clear()
        .env("ENCRYPTION_KEY", key.expose_base64().as_str())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.crt") && err.contains("--tls-cert"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files were created"
    );

    // One without the other is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_atom-server"))
        .current_dir(dir.path())
        .args(["--tls-cert", "a.crt"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
