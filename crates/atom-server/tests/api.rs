//! The HTTP API over a real socket on SQLite: the auth matrix, the status
//! document, the bad-request table.

use atom_audit::{Action, DenialReason, Outcome};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, sqlite_url};

const TOKEN: &str = "xoxb-alice-0123456789";

async fn put(
    c: &Client,
    s: &TestServer,
    bearer: Option<&str>,
    path: &str,
    body: Value,
) -> StatusCode {
    let mut req = c.put(s.url(path)).json(&body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap().status()
}

async fn get(c: &Client, s: &TestServer, bearer: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut req = c.get(s.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn denials(s: &TestServer) -> Vec<DenialReason> {
    s.events
        .events()
        .iter()
        .filter_map(|e| match &e.action {
            Action::AccessDenied { reason, .. } => {
                assert_eq!(e.outcome, Outcome::Denied);
                Some(*reason)
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn auth_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let alice = s.token("alice", false);
    let bob = s.token("bob", false);
    let admin = s.token("root", true);
    let path = "/api/users/alice/credentials/slack";

    assert_eq!(
        put(&c, &s, Some(&alice), path, json!({"token": TOKEN})).await,
        StatusCode::NO_CONTENT
    );

    // none, bad, other user, own user, admin
    let (status, body) = get(&c, &s, None, path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let forged = atom_server::JwtKeys::new(b"another-secret-another-secret-xx!")
        .unwrap()
        .issue("alice", true, crate::common::now(), 600)
        .unwrap();
    assert_eq!(
        get(&c, &s, Some(&forged), path).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&c, &s, Some("not.a.jwt"), path).await.0,
        StatusCode::UNAUTHORIZED
    );
    let expired = s.jwt.issue("alice", false, 1_000_000, 60).unwrap();
    assert_eq!(
        get(&c, &s, Some(&expired), path).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get(&c, &s, Some(&bob), path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.to_string().contains(TOKEN));
    assert_eq!(
        put(&c, &s, Some(&bob), path, json!({"token": "bob-overwrites"})).await,
        StatusCode::FORBIDDEN
    );
    let (status, body) = get(&c, &s, Some(&alice), path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token"], TOKEN, "bob's PUT changed nothing");
    let (status, body) = get(&c, &s, Some(&admin), path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token"], TOKEN);
    let resp = c.get(s.url(path)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "tokens are not cached"
    );

    // Every refusal is audited as a denial.
    assert_eq!(
        denials(&s),
        vec![
            DenialReason::NotAuthenticated,
            DenialReason::NotAuthenticated,
            DenialReason::NotAuthenticated,
            DenialReason::NotAuthenticated,
            DenialReason::NotPermitted,
            DenialReason::NotPermitted,
        ]
    );

    // The list never carries tokens; erasure and delete.
    let (status, body) = get(&c, &s, Some(&alice), "/api/users/alice/credentials").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["credentials"][0]["provider"], "slack");
    assert!(!body.to_string().contains(TOKEN));
    let status = c
        .delete(s.url(path))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let status = c
        .delete(s.url(path))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let status = c
        .delete(s.url(path))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        put(
            &c,
            &s,
            Some(&alice),
            "/api/users/alice/credentials/github",
            json!({"token": TOKEN})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let resp = c
        .delete(s.url("/api/users/alice/credentials"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["removed"], json!(["github"]));
    s.stop().await;
}

#[tokio::test]
async fn status_document_is_for_admins_and_has_the_seed_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secrets.enc"), "{}").unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    assert_eq!(get(&c, &s, None, "/healthz").await.0, StatusCode::OK);
    let alice = s.token("alice", false);
    put(
        &c,
        &s,
        Some(&alice),
        "/api/users/alice/credentials/slack",
        json!({"token": TOKEN}),
    )
    .await;
    assert_eq!(
        get(&c, &s, Some(&alice), "/api/security/configuration")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, doc) = get(
        &c,
        &s,
        Some(&s.token("root", true)),
        "/api/security/configuration",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "encryption_enabled",
        "encryption_key_configured",
        "secrets_file",
        "total_secrets",
        "encrypted_secrets",
        "plaintext_secrets",
    ] {
        assert!(doc.get(field).is_some(), "missing {field}: {doc}");
    }
    assert_eq!(doc["encryption_enabled"], true);
    assert_eq!(doc["credentials"]["total"], 1);
    assert_eq!(doc["keys"][0]["role"], "primary");
    assert!(!doc.to_string().contains(TOKEN));
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_json_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let alice = s.token("alice", false);
    let path = s.url("/api/users/alice/credentials/slack");
    let big = "x".repeat(atom_server::MAX_BODY_BYTES + 1);
    let table: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "malformed JSON",
            c.put(&path)
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .body("{\"token\": "),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong field",
            c.put(&path)
                .bearer_auth(&alice)
                .json(&json!({"secret": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty token",
            c.put(&path).bearer_auth(&alice).json(&json!({"token": ""})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON",
            c.put(&path).bearer_auth(&alice).body("token=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "oversized body",
            c.put(&path)
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .body(format!("{{\"token\": \"{big}\"}}")),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "odd provider",
            c.put(s.url("/api/users/alice/credentials/sl%20ack"))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        // Clients resolve a literal `..` segment before sending; what
        // arrives is another path, which has no route.
        (
            "traversal provider",
            c.put(s.url("/api/users/alice/credentials/.."))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::NOT_FOUND,
        ),
        (
            "encoded slash provider",
            c.put(s.url("/api/users/alice/credentials/..%2F..%2Fetc"))
                .bearer_auth(&alice)
                .json(&json!({"token": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "encoded slash user",
            c.get(s.url("/api/users/..%2Fetc/credentials"))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
        ),
        (
            "control character user",
            c.get(s.url("/api/users/al%0Aice/credentials"))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown route",
            c.get(s.url("/api/nope")).bearer_auth(&alice),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, req, expected) in table {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), expected, "{what}");
        let body: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    // Nothing was stored.
    let (_, body) = get(&c, &s, Some(&alice), "/api/users/alice/credentials").await;
    assert_eq!(body["credentials"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn denials_record_bounded_ids_and_actors_cannot_be_spoofed() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &sqlite_url(dir.path())).await;
    let c = Client::new();
    let long = "u".repeat(5000);
    let (status, _) = get(&c, &s, None, &format!("/api/users/{long}/credentials")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = s.events.events();
    let recorded = format!("{:?}", events.last().unwrap().action);
    assert!(
        recorded.len() < 300,
        "an unauthenticated path was recorded whole: {} bytes",
        recorded.len()
    );

    // A `sub` crafted to read like an administrator is still a user.
    let spoof = s.token("bob (admin)", false);
    let (status, _) = get(&c, &s, Some(&spoof), "/api/users/alice/credentials").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let actor = s.events.events().last().unwrap().actor.clone().unwrap();
    assert_eq!(actor.as_str(), "user:bob (admin)");
    // A `sub` that is not a user id is not a valid token.
    let bad_sub = s.token(" padded", false);
    assert_eq!(
        get(&c, &s, Some(&bad_sub), "/api/users/alice/credentials")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}
