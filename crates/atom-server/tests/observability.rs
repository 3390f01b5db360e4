//! `/metrics` and `/readyz`: what a monitoring system sees, and that it
//! never sees a user id or a secret.

use atom_audit::{Auditor, FileSink};
use atom_credentials::Backend;
use atom_credentials::test_util::TestDb;
use atom_crypto::Key;
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait as _, Database};
use serde_json::{Value, json};

use crate::common::{TestServer, sqlite_url};

const USER: &str = "metrics-user-7f3a";
const TOKEN: &str = "xoxb-metrics-secret-91c2";

#[tokio::test]
async fn metrics_count_requests_audit_and_refusals_without_ids_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let path = s.url(&format!("/api/users/{USER}/credentials/slack"));
    let token = s.token(USER, false);
    let put = c
        .put(&path)
        .bearer_auth(&token)
        .json(&json!({"token": TOKEN}));
    assert_eq!(put.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let got = c.get(&path).bearer_auth(&token).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    // Refused: no token, and another user's credential.
    assert_eq!(
        c.get(&path).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let other = s.token("someone-else", false);
    let refused = c.get(&path).bearer_auth(&other).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get(s.url("/nowhere")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let resp = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    let route = r#"route="/api/users/{user}/credentials/{provider}""#;
    for (what, needle) in [
        (
            "PUT counted by its route template",
            format!(r#"atom_http_requests_total{{{route},method="PUT",status="204"}}"#),
        ),
        (
            "GET counted",
            format!(r#"atom_http_requests_total{{{route},method="GET",status="200"}}"#),
        ),
        (
            "401 counted",
            format!(r#"atom_http_requests_total{{{route},method="GET",status="401"}}"#),
        ),
        ("no route", r#"route="unmatched""#.to_owned()),
        (
            "latency histogram",
            format!(
                r#"atom_http_request_duration_seconds_bucket{{{route},method="GET",le="0.005"}}"#
            ),
        ),
        (
            "audit records",
            r#"atom_audit_records_total{result="recorded"}"#.to_owned(),
        ),
        (
            "refusals by reason",
            r#"atom_requests_refused_total{reason="not_authenticated"}"#.to_owned(),
        ),
        (
            "refusals by reason",
            r#"atom_requests_refused_total{reason="not_permitted"}"#.to_owned(),
        ),
        (
            "pool",
            r#"atom_db_pool_connections{state="max"}"#.to_owned(),
        ),
    ] {
        assert!(text.contains(&needle), "{what}: {needle} not in\n{text}");
    }
    for secret in [USER, "someone-else", TOKEN, "slack", "/nowhere"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_value_that_does_not_open_is_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let s = TestServer::start(dir.path(), &url).await;
    let c = Client::new();
    let token = s.token(USER, false);
    for provider in ["github", "gitlab"] {
        let put = c
            .put(s.url(&format!("/api/users/{USER}/credentials/{provider}")))
            .bearer_auth(&token)
            .json(&json!({"token": TOKEN}));
        assert_eq!(put.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    }
    // Swap the two sealed tokens: each is bound to its own row.
    let db = Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared(
        "UPDATE user_credentials SET encrypted_token = (SELECT encrypted_token FROM user_credentials WHERE provider = 'gitlab') WHERE provider = 'github'",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    let resp = c
        .get(s.url(&format!("/api/users/{USER}/credentials/github")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"atom_decrypt_failures_total{reason="not_authentic"}"#),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn readyz_fails_while_the_audit_log_cannot_be_written_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let sink = FileSink::open(&log, &Key::from_bytes([9; 32]))
        .await
        .unwrap();
    let s =
        TestServer::start_audited(dir.path(), &sqlite_url(dir.path()), Auditor::new(sink)).await;
    let c = Client::new();
    let ready = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "audit": "ok"}})
    );

    // The log moved away: appends would fail, so the server is not ready,
    // while /healthz (liveness) still answers.
    let aside = dir.path().join("audit.log.moved");
    std::fs::rename(&log, &aside).unwrap();
    let resp = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(
        body["checks"],
        json!({"database": "ok", "audit": "failing"})
    );
    assert_eq!(
        c.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Back in place: the probe changed nothing, so the sink is ready again.
    std::fs::rename(&aside, &log).unwrap();
    assert_eq!(
        c.get(s.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn readyz_fails_while_the_database_is_gone() {
    let Some(db) = TestDb::new(Backend::Postgres, "readyz_fails_while_the_database_is_gone").await
    else {
        return;
    };
    let (admin, name) = db.server().expect("a server database");
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &db.url).await;
    let c = Client::new();
    assert_eq!(
        c.get(s.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let admin_db = Database::connect(admin).await.unwrap();
    admin_db
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    let resp = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "failing");
    assert_eq!(body["checks"]["audit"], "ok");
    s.stop().await;
}

/// A rotation run by `atom keys rotate` (another process) shows its
/// progress in the server's metrics, read from its state file at each
/// scrape.
#[tokio::test]
async fn rotation_progress_is_exported_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join(atom_rotation::STATE_FILE);
    let s =
        TestServer::start_watching_rotation(dir.path(), &sqlite_url(dir.path()), &state_file).await;
    let c = Client::new();
    let scrape = || async {
        c.get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = scrape().await;
    assert!(
        text.contains(r#"atom_rotation_phase{phase="none"} 1"#),
        "{text}"
    );

    let (old, new) = (Key::from_bytes([1; 32]).id(), Key::from_bytes([2; 32]).id());
    let write = |phase: &str, rows: u64| {
        let state = json!({
            "version": 1, "phase": phase,
            "old_key_id": old.to_string(), "new_key_id": new.to_string(),
            "started_at": "2026-12-01T03:00:00Z", "updated_at": "2026-12-01T03:05:00Z",
            "secrets_rewrapped": true, "rows_rewrapped": rows, "cursors": [],
        });
        std::fs::write(&state_file, state.to_string()).unwrap();
        // The file is what the rotation engine reads back.
        atom_rotation::RotationState::load(&state_file)
            .unwrap()
            .unwrap();
    };
    write("promoted", 1234);
    let text = scrape().await;
    for needle in [
        r#"atom_rotation_phase{phase="promoted"} 1"#,
        r#"atom_rotation_phase{phase="none"} 0"#,
        "atom_rotation_rows_rewrapped 1234",
        "atom_rotation_secrets_rewrapped 1",
        "atom_rotation_updated_timestamp_seconds 1796094300",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    write("finished", 5000);
    let text = scrape().await;
    assert!(
        text.contains(r#"atom_rotation_phase{phase="finished"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"atom_rotation_phase{phase="promoted"} 0"#),
        "{text}"
    );
    assert!(text.contains("atom_rotation_rows_rewrapped 5000"), "{text}");
    s.stop().await;
}

/// Invented methods, paths and header values from an unauthenticated
/// client leave the number of series and the size of `/metrics` bounded:
/// every label value comes from a fixed set (issue #20: 1,000 methods of
/// 7,000 characters once grew `/metrics` to 124 MB).
#[tokio::test]
async fn invented_methods_paths_and_headers_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    // A deterministic stream of invented names (xorshift): what matters is
    // that each request differs from every other.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut invent = |len: usize| -> String {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'A' + (state % 26) as u8)
            })
            .collect()
    };
    let long_method = invent(7000);
    for i in 0..3000 {
        let method = match i % 3 {
            0 => format!("{long_method}{}", invent(8)),
            1 => invent(13),
            _ => "GET".to_owned(),
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let path = match i % 4 {
            0 => "/healthz".to_owned(),
            1 => format!("/{}", invent(40)),
            2 => format!("/api/users/{}/credentials/{}", invent(12), invent(12)),
            _ => format!("/api/users/{}/credentials", invent(12)),
        };
        let resp = c
            .request(method, s.url(&path))
            .header("x-invented", invent(64))
            .header(reqwest::header::USER_AGENT, invent(32))
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() < 500, "{}", resp.status());
    }
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "other",
    ];
    let routes = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/security/configuration",
        "/api/users/{user}/credentials",
        "/api/users/{user}/credentials/{provider}",
        "unmatched",
    ];
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("atom_http_request"))
        .collect();
    for line in &series {
        if let Some(m) = label(line, "method") {
            assert!(methods.contains(&m.as_str()), "method label {m:?}");
        }
        if let Some(r) = label(line, "route") {
            assert!(routes.contains(&r.as_str()), "route label {r:?}");
        }
        if let Some(st) = label(line, "status") {
            assert!(st.len() == 3, "status label {st:?}");
        }
    }
    assert!(
        text.contains(r#"method="other""#),
        "invented methods are counted as other"
    );
    // Every test of this binary shares the recorder, so the bound is that
    // of the fixed sets, not of this test's requests: routes x methods x
    // (statuses + histogram buckets).
    assert!(series.len() < 2000, "{} series", series.len());
    assert!(text.len() < 512 * 1024, "/metrics is {} bytes", text.len());
    s.stop().await;
}
