//! A database outage answers 503 with a JSON body, never a panic. Runs on
//! PostgreSQL (its database can be dropped under the server) when
//! ATOM_TEST_POSTGRES_URL is set, as .ci/run does; otherwise SKIPPED.

use atom_credentials::Backend;
use atom_credentials::test_util::TestDb;
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

use crate::common::TestServer;

#[tokio::test]
async fn a_dropped_database_answers_503() {
    let Some(db) = TestDb::new(Backend::Postgres, "a_dropped_database_answers_503").await else {
        return;
    };
    let (admin, name) = db.server().expect("a server database");
    let admin_db = Database::connect(admin).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &db.url).await;
    let c = Client::new();
    let alice = s.token("alice", false);
    let path = s.url("/api/users/alice/credentials/slack");
    let resp = c
        .put(&path)
        .bearer_auth(&alice)
        .json(&json!({"token": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    admin_db
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();

    for _ in 0..3 {
        let resp = c.get(&path).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
    }
    // The server is still up.
    assert_eq!(
        c.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    s.stop().await;
}
