//! The server against hostile input: a table of bad requests and bad
//! tokens (each a JSON error with its own code, a message that names the
//! problem, nothing stored, no secret echoed), a flood of refused requests
//! (one audit record per source and window, then 429), and half-sent
//! requests and too many connections (closed, capped, /healthz answers).

use std::io::{Read as _, Write as _};
use std::time::Duration;

use atom_audit::Action;
use atom_server::{DenialLimits, ServerLimits};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, TestServer, now, sqlite_url};

/// A token that must never come back in any answer.
const SECRET_TOKEN: &str = "xoxb-hostile-secret-0123456789";

fn sign(header: &Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// `header.claims.` with no signature, as an `alg: none` attacker sends.
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let t = now();
    let hs = Header::new(Algorithm::HS256);
    let claims = |extra: Value| {
        let mut c = json!({"sub": "alice", "exp": t + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not yet valid (nbf an hour ahead)",
            sign(&hs, &claims(json!({"nbf": t + 3600})), JWT_SECRET),
            "nbf",
        ),
        (
            "admin, not yet valid",
            sign(
                &hs,
                &claims(json!({"nbf": t + 3600, "admin": true})),
                JWT_SECRET,
            ),
            "nbf",
        ),
        (
            "issued in the future",
            sign(&hs, &claims(json!({"iat": t + 3600})), JWT_SECRET),
            "iat",
        ),
        (
            "expired",
            sign(&hs, &json!({"sub": "alice", "exp": t - 3600}), JWT_SECRET),
            "expired",
        ),
        (
            "no exp",
            sign(&hs, &json!({"sub": "alice"}), JWT_SECRET),
            "exp",
        ),
        (
            "no sub",
            sign(&hs, &json!({"exp": t + 600}), JWT_SECRET),
            "sub",
        ),
        (
            "sub with a line break",
            sign(&hs, &json!({"sub": "al\nice", "exp": t + 600}), JWT_SECRET),
            "sub",
        ),
        (
            "empty sub",
            sign(&hs, &json!({"sub": "", "exp": t + 600}), JWT_SECRET),
            "sub",
        ),
        (
            "wrong secret",
            sign(
                &hs,
                &claims(json!({})),
                b"another-secret-another-secret-32b",
            ),
            "signature",
        ),
        (
            "HS384",
            sign(
                &Header::new(Algorithm::HS384),
                &claims(json!({})),
                JWT_SECRET,
            ),
            "HS256",
        ),
        (
            "HS512",
            sign(
                &Header::new(Algorithm::HS512),
                &claims(json!({})),
                JWT_SECRET,
            ),
            "HS256",
        ),
        (
            "alg none",
            unsigned(
                &json!({"alg": "none", "typ": "JWT"}),
                &claims(json!({"admin": true})),
            ),
            "malformed",
        ),
        (
            "alg none, upper case",
            unsigned(&json!({"alg": "NONE"}), &claims(json!({}))),
            "malformed",
        ),
        ("garbage", "not-a-jwt".to_owned(), "malformed"),
        ("two parts", "abc.def".to_owned(), "malformed"),
        ("four parts", "a.b.c.d".to_owned(), "malformed"),
        (
            "signature cut",
            {
                let tok = sign(&hs, &claims(json!({})), JWT_SECRET);
                tok[..tok.len() - 4].to_owned()
            },
            "signature",
        ),
        (
            "claims swapped for admin",
            {
                let tok = sign(&hs, &claims(json!({})), JWT_SECRET);
                let mut parts: Vec<&str> = tok.split('.').collect();
                let forged = URL_SAFE_NO_PAD.encode(claims(json!({"admin": true})).to_string());
                parts[1] = &forged;
                parts.join(".")
            },
            "signature",
        ),
        (
            "exp as a string",
            sign(&hs, &json!({"sub": "alice", "exp": "never"}), JWT_SECRET),
            "`exp` claim is not a NumericDate",
        ),
        ("oversized", "a".repeat(4000), "malformed"),
    ];
    let path = s.url("/api/users/alice/credentials/slack");
    eprintln!("bad-input table: {} JWT cases", cases.len());
    for (what, token, reason) in &cases {
        let resp = c
            .put(&path)
            .bearer_auth(token)
            .json(&json!({"token": SECRET_TOKEN}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{what}: {message}");
        assert!(!body.to_string().contains(SECRET_TOKEN));
    }
    // No header, another scheme.
    for (what, header) in [
        ("no header", None),
        ("basic", Some("Basic YWxpY2U6cHc=")),
        ("empty bearer", Some("Bearer ")),
    ] {
        let mut req = c.get(s.url("/api/users/alice/credentials"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("missing bearer token"),
            "{what}"
        );
    }
    // Every refusal is audited, and nothing was stored.
    let denials = s
        .events
        .events()
        .iter()
        .filter(|e| matches!(e.action, Action::AccessDenied { .. }))
        .count();
    assert_eq!(denials, cases.len() + 3);
    let good = s.token("alice", false);
    let resp = c
        .get(s.url("/api/users/alice/credentials"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["credentials"],
        json!([])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_each_have_a_json_error_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let alice = s.token("alice", false);
    let bob = s.token("bob", false);
    let path = s.url("/api/users/alice/credentials/slack");
    let json_put = |body: &str| {
        c.put(&path)
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let big = "x".repeat(atom_server::MAX_BODY_BYTES + 1);
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str, &str)> = vec![
        (
            "array body",
            json_put(&format!("[\"{SECRET_TOKEN}\"]")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "JSON object",
        ),
        (
            "string body",
            json_put(&format!("\"{SECRET_TOKEN}\"")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "JSON object",
        ),
        (
            "number body",
            json_put("42"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "JSON object",
        ),
        (
            "null body",
            json_put("null"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "JSON object",
        ),
        (
            "token is a number",
            json_put("{\"token\": 42}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "token",
        ),
        (
            "token is null",
            json_put("{\"token\": null}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "token",
        ),
        (
            "token is an object",
            json_put("{\"token\": {\"a\": 1}}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "token",
        ),
        (
            "extra field",
            json_put(&format!(
                "{{\"token\": \"{SECRET_TOKEN}\", \"admin\": true}}"
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "exactly one field",
        ),
        (
            "wrong field",
            json_put("{\"secret\": \"x\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "token",
        ),
        (
            "empty object",
            json_put("{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "token",
        ),
        (
            "empty token",
            json_put("{\"token\": \"\"}"),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "empty",
        ),
        (
            "truncated JSON",
            json_put("{\"token\": "),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "not valid JSON",
        ),
        (
            "trailing garbage",
            json_put("{\"token\": \"x\"} x"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "not valid JSON",
        ),
        (
            "duplicate-looking body",
            json_put("{\"token\": \"a\"}{\"token\": \"b\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "not valid JSON",
        ),
        (
            "empty body",
            json_put(""),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "not valid JSON",
        ),
        (
            "not declared JSON",
            c.put(&path)
                .bearer_auth(&alice)
                .body(format!("token={SECRET_TOKEN}")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "text/plain",
            c.put(&path)
                .bearer_auth(&alice)
                .header("content-type", "text/plain")
                .body("{\"token\": \"x\"}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "oversized body",
            json_put(&format!("{{\"token\": \"{big}\"}}")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "larger than",
        ),
        (
            "POST on a credential",
            c.post(&path).bearer_auth(&alice),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "POST",
        ),
        (
            "PATCH on a credential",
            c.patch(&path).bearer_auth(&alice),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "PATCH",
        ),
        (
            "PUT on a list",
            c.put(s.url("/api/users/alice/credentials"))
                .bearer_auth(&alice),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "PUT",
        ),
        (
            "DELETE on healthz",
            c.delete(s.url("/healthz")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "DELETE",
        ),
        (
            "POST on the configuration",
            c.post(s.url("/api/security/configuration"))
                .bearer_auth(&alice),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "POST",
        ),
        (
            "huge header",
            c.get(s.url("/healthz"))
                .header("x-filler", "y".repeat(atom_server::MAX_HEADER_BYTES)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "headers",
        ),
        (
            "many headers",
            {
                let mut req = c.get(s.url("/healthz"));
                for i in 0..200 {
                    req = req.header(format!("x-h{i}"), "z".repeat(40));
                }
                req
            },
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "headers",
        ),
        (
            "unknown route",
            c.get(s.url("/api/nope")).bearer_auth(&alice),
            StatusCode::NOT_FOUND,
            "not_found",
            "endpoint",
        ),
        (
            "root",
            c.get(s.url("/")),
            StatusCode::NOT_FOUND,
            "not_found",
            "endpoint",
        ),
        (
            "another user's credential",
            c.put(&path)
                .bearer_auth(&bob)
                .json(&json!({"token": SECRET_TOKEN})),
            StatusCode::FORBIDDEN,
            "forbidden",
            "own user",
        ),
        (
            "another user's list",
            c.get(s.url("/api/users/alice/credentials"))
                .bearer_auth(&bob),
            StatusCode::FORBIDDEN,
            "forbidden",
            "own user",
        ),
        (
            "erase another user",
            c.delete(s.url("/api/users/alice/credentials"))
                .bearer_auth(&bob),
            StatusCode::FORBIDDEN,
            "forbidden",
            "own user",
        ),
        (
            "configuration as a user",
            c.get(s.url("/api/security/configuration"))
                .bearer_auth(&alice),
            StatusCode::FORBIDDEN,
            "forbidden",
            "administrators",
        ),
        (
            "space in provider",
            c.put(s.url("/api/users/alice/credentials/sl%20ack"))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "provider",
        ),
        (
            "encoded slash",
            c.put(s.url("/api/users/alice/credentials/..%2F..%2Fetc"))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "path",
        ),
        (
            "backslash",
            c.put(s.url("/api/users/alice/credentials/a%5Cb"))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "path",
        ),
        // Clients resolve `.` segments (encoded too) before sending: what
        // arrives is another path, which has no route.
        (
            "dot user",
            c.get(s.url("/api/users/%2E/credentials"))
                .bearer_auth(&alice),
            StatusCode::NOT_FOUND,
            "not_found",
            "endpoint",
        ),
        (
            "NUL in user",
            c.get(s.url("/api/users/al%00ice/credentials"))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "user id",
        ),
        (
            "line break in user",
            c.get(s.url("/api/users/al%0Aice/credentials"))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "user id",
        ),
        (
            "user id too long",
            c.get(s.url(&format!("/api/users/{}/credentials", "u".repeat(300))))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "user id",
        ),
        (
            "provider too long",
            c.get(s.url(&format!("/api/users/alice/credentials/{}", "p".repeat(300))))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "provider",
        ),
        // A `%` not followed by two hex digits is kept as it is: another
        // user's id, so another user's credentials.
        (
            "bad percent encoding",
            c.get(s.url("/api/users/%ZZ/credentials"))
                .bearer_auth(&alice),
            StatusCode::FORBIDDEN,
            "forbidden",
            "own user",
        ),
        (
            "missing credential",
            c.get(&path).bearer_auth(&alice),
            StatusCode::NOT_FOUND,
            "not_found",
            "no credential",
        ),
        (
            "delete a missing credential",
            c.delete(&path).bearer_auth(&alice),
            StatusCode::NOT_FOUND,
            "not_found",
            "no credential",
        ),
    ];
    let n = cases.len();
    eprintln!("bad-input table: {n} request cases");
    for (what, req, status, code, words) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{what}");
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.to_lowercase().contains(&words.to_lowercase()),
            "{what}: {message}"
        );
        assert!(!text.contains(SECRET_TOKEN), "{what} echoes the token");
    }
    assert!(n >= 40);
    // Nothing was stored by any of them.
    let resp = c
        .get(s.url("/api/users/alice/credentials"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["credentials"],
        json!([])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_requests_costs_one_record_per_window_then_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut denials = DenialLimits::default();
    denials.window = Duration::from_secs(3600);
    denials.limit = std::num::NonZeroU32::new(20).unwrap();
    let s = TestServer::start_with(
        dir.path(),
        &sqlite_url(dir.path()),
        ServerLimits::default(),
        denials,
    )
    .await;
    let c = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let resp = c
            .get(s.url("/api/users/alice/credentials"))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"]["code"], "too_many_denials");
        }
        statuses.push(status);
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A caller with a good token is not affected.
    let good = s.token("alice", false);
    let resp = c
        .get(s.url("/api/users/alice/credentials"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // One record for the first refusal; the other 99 in one count.
    let refusals = |events: &[atom_audit::AuditEvent]| {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    Action::AccessDenied { .. } | Action::AccessDeniedRepeatedly { .. }
                )
            })
            .map(|e| e.action.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(refusals(&s.events.events()).len(), 1);
    s.state.record_denials(true).await.unwrap();
    let recorded = refusals(&s.events.events());
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        recorded[1],
        Action::AccessDeniedRepeatedly {
            source: "127.0.0.1".into(),
            denials: 99,
            window_secs: 3600
        }
    );
    s.stop().await;
}

/// Opens a connection and sends part of a request's headers.
fn half_sent(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    stream
}

/// Whether the server closed `stream` (read returns end of file or an
/// error within `wait`).
fn closed_within(stream: &mut std::net::TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_and_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut limits = ServerLimits::default();
    limits.header_timeout = Duration::from_secs(1);
    limits.max_connections = std::num::NonZeroUsize::new(8).unwrap();
    let s = TestServer::start_with(
        dir.path(),
        &sqlite_url(dir.path()),
        limits,
        DenialLimits::default(),
    )
    .await;
    let addr = s.addr;
    let (held, refused) = tokio::task::spawn_blocking(move || {
        // Eight half-sent requests hold every connection...
        let mut held: Vec<_> = (0..8).map(|_| half_sent(addr)).collect();
        std::thread::sleep(Duration::from_millis(200));
        // ...so a ninth is answered 503 in JSON and closed at once.
        let mut ninth = std::net::TcpStream::connect(addr).unwrap();
        ninth
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = ninth.read_to_string(&mut answer);
        // The header timeout closes the held ones.
        let closed = held
            .iter_mut()
            .map(|c| closed_within(c, Duration::from_secs(20)))
            .filter(|closed| *closed)
            .count();
        (closed, answer)
    })
    .await
    .unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("\"code\":\"too_many_connections\""),
        "{refused}"
    );
    assert_eq!(held, 8, "half-sent requests were not closed");
    // With them gone, the server answers again.
    let resp = Client::new().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await;
}
