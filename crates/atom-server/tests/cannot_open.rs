//! A stored value whose key cannot open it answers 422 `cannot_open`, as
//! the README promises, whatever the reason: a data key deleted from the
//! key store, an enveloped value copied into another user's row, an
//! erased user's row come back from a backup (crypto-shredding).

use atom_credentials::Backend;
use atom_credentials::test_util::TestDb;
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::common::TestServer;

async fn put(s: &TestServer, user: &str, provider: &str, token: &str) {
    let resp = Client::new()
        .put(s.url(&format!("/api/users/{user}/credentials/{provider}")))
        .bearer_auth(s.token(user, false))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

/// The answer to a GET of `user`'s `provider` credential: status and body.
async fn get(s: &TestServer, user: &str, provider: &str) -> (StatusCode, Value) {
    let resp = Client::new()
        .get(s.url(&format!("/api/users/{user}/credentials/{provider}")))
        .bearer_auth(s.token(user, false))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn stored(db: &DatabaseConnection, user: &str, provider: &str) -> String {
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT encrypted_token FROM user_credentials WHERE user_id = $1 AND provider = $2"
                }
                _ => "SELECT encrypted_token FROM user_credentials WHERE user_id = ? AND provider = ?",
            },
            [user.into(), provider.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "encrypted_token").unwrap()
}

async fn set_stored(db: &DatabaseConnection, user: &str, provider: &str, value: &str) {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "UPDATE user_credentials SET encrypted_token = $1 WHERE user_id = $2 AND provider = $3"
        }
        _ => "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = ? AND provider = ?",
    };
    let done = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [value.into(), user.into(), provider.into()],
        ))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

fn assert_cannot_open((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
    assert_eq!(body["error"]["code"], "cannot_open", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("xoxb-"), "{what}: {message}");
}

async fn each_case(backend: Backend, name: &str) {
    let Some(db) = TestDb::new(backend, name).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_enveloped(dir.path(), &db.url).await;
    put(&s, "alice", "slack", "xoxb-alice-1").await;
    put(&s, "alice", "github", "xoxb-alice-2").await;
    put(&s, "bob", "slack", "xoxb-bob-1").await;
    assert_eq!(get(&s, "alice", "slack").await.0, StatusCode::OK);
    let conn = Database::connect(db.url.as_str()).await.unwrap();

    // A v2 value copied into another user's row: bob has no such data key.
    let alices = stored(&conn, "alice", "slack").await;
    assert!(alices.starts_with("atom:v2:"), "{alices}");
    set_stored(&conn, "bob", "slack", &alices).await;
    assert_cannot_open(get(&s, "bob", "slack").await, "another user's v2 value");

    // An erased user's row restored from a backup: the key is gone.
    let github = stored(&conn, "alice", "github").await;
    let data_key_id = github.split(':').nth(2).unwrap().to_owned();
    let erased = Client::new()
        .delete(s.url("/api/users/alice/credentials"))
        .bearer_auth(s.token("alice", false))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    let now = chrono::Utc::now().naive_utc();
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        conn.get_database_backend(),
        match conn.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO user_credentials (user_id, provider, encrypted_token, data_key_id, created_at, updated_at) VALUES ('alice', 'github', $1, $2, $3, $3)"
            }
            _ => {
                "INSERT INTO user_credentials (user_id, provider, encrypted_token, data_key_id, created_at, updated_at) VALUES ('alice', 'github', ?, ?, ?, ?)"
            }
        },
        match conn.get_database_backend() {
            sea_orm::DbBackend::Postgres => vec![github.clone().into(), data_key_id.into(), now.into()],
            _ => vec![github.clone().into(), data_key_id.into(), now.into(), now.into()],
        },
    ))
    .await
    .unwrap();
    assert_cannot_open(
        get(&s, "alice", "github").await,
        "an erased user's restored row",
    );

    // A data key deleted from the key store, read by a process that has
    // not unwrapped it yet (a new server on the same database).
    put(&s, "carol", "slack", "xoxb-carol-1").await;
    conn.execute_unprepared("DELETE FROM atom_user_keys WHERE user_id = 'carol'")
        .await
        .unwrap();
    let fresh = TestServer::start_enveloped(dir.path(), &db.url).await;
    assert_cannot_open(
        get(&fresh, "carol", "slack").await,
        "a deleted key-store row",
    );
    fresh.stop().await;
    conn.close().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn values_whose_data_key_is_missing_answer_422_on_sqlite() {
    each_case(Backend::Sqlite, "cannot_open_sqlite").await;
}

#[tokio::test]
async fn values_whose_data_key_is_missing_answer_422_on_postgres() {
    each_case(Backend::Postgres, "cannot_open_pg").await;
}

#[tokio::test]
async fn values_whose_data_key_is_missing_answer_422_on_mysql() {
    each_case(Backend::MySql, "cannot_open_my").await;
}
