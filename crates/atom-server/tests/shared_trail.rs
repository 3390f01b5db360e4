//! Two `atom-server` processes on one database, auditing into
//! its `audit_events` table (`ATOM_AUDIT_SINK=database`), under a mixed
//! load from concurrent clients spread over both: afterwards the one trail
//! verifies (nothing forked, nothing missing), and every acknowledged
//! operation has exactly its record. Runs on PostgreSQL and MariaDB when
//! ATOM_TEST_POSTGRES_URL / ATOM_TEST_MYSQL_URL are set, as .ci/run does;
//! otherwise SKIPPED.

use std::collections::BTreeMap;
use std::sync::Arc;

use atom_credentials::test_util::TestDb;
use atom_credentials::{Backend, DatabaseUrl, StoreConfig};
use atom_crypto::Key;
use atom_server::JwtKeys;
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, now, spawn_binary, terminate};

/// (event, user, provider) of one operation.
type Op = (&'static str, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgresql_database_keep_one_intact_trail() {
    two_servers_keep_one_intact_trail(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_mariadb_database_keep_one_intact_trail() {
    two_servers_keep_one_intact_trail(Backend::MySql).await;
}

async fn two_servers_keep_one_intact_trail(kind: Backend) {
    let Some(db) = TestDb::new(kind, "two_servers_keep_one_trail").await else {
        return;
    };
    let (encryption, audit) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (encryption_text, audit_text) = (encryption.expose_base64(), audit.expose_base64());
    let secret = std::str::from_utf8(JWT_SECRET).unwrap();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("ENCRYPTION_KEY", encryption_text.as_str()),
        ("ATOM_AUDIT_KEY", audit_text.as_str()),
        ("ATOM_AUDIT_SINK", "database"),
        ("ATOM_JWT_SECRET", secret),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (first, first_addr, _first_log) = spawn_binary(dirs[0].path(), &env);
    let (second, second_addr, _second_log) = spawn_binary(dirs[1].path(), &env);
    let servers = Arc::new([first_addr, second_addr]);
    let jwt = JwtKeys::new(JWT_SECRET).unwrap();

    let clients = 8u32;
    let rounds = 25u32;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let servers = Arc::clone(&servers);
        let user = format!("user_{c}");
        let token = jwt.issue(&user, false, now(), 600).unwrap();
        tasks.push(tokio::spawn(async move {
            let http = Client::new();
            let url =
                |i: u32, path: &str| format!("http://{}{path}", servers[((c + i) % 2) as usize]);
            let mut acknowledged: Vec<Op> = Vec::new();
            for i in 0..rounds {
                let provider = format!("p{}", i % 4);
                let one = format!("/api/users/{user}/credentials/{provider}");
                let value = format!("{c}-{i}");
                let put = http
                    .put(url(i, &one))
                    .bearer_auth(&token)
                    .json(&json!({ "token": value }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(put.status(), StatusCode::NO_CONTENT);
                acknowledged.push(("credential_stored", user.clone(), provider.clone()));
                // Read back through the other server.
                let get = http
                    .get(url(i + 1, &one))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(get.status(), StatusCode::OK);
                let body: Value = get.json().await.unwrap();
                assert_eq!(body["token"], value.as_str());
                acknowledged.push(("credential_accessed", user.clone(), provider.clone()));
                if i % 3 == 2 {
                    let list = http
                        .get(url(i, &format!("/api/users/{user}/credentials")))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(list.status(), StatusCode::OK);
                    acknowledged.push(("credentials_listed", user.clone(), String::new()));
                }
                if i % 5 == 4 {
                    let delete = http
                        .delete(url(i + 1, &one))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
                    acknowledged.push(("credential_deleted", user.clone(), provider.clone()));
                }
            }
            acknowledged
        }));
    }
    let mut expected: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for task in tasks {
        for (event, user, provider) in task.await.unwrap() {
            *expected
                .entry((event.to_owned(), user, provider))
                .or_default() += 1;
        }
    }
    terminate(first);
    terminate(second);

    // One chain, intact up to its stored head.
    let config = StoreConfig::new(DatabaseUrl::parse(&db.url).unwrap());
    let report = atom_credentials::verify_audit_table(&config, &audit)
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.head.next_seq(), report.chain.records);
    // Each instance chained what its writes left pending before it stopped.
    assert_eq!(report.pending, 0, "{report}");

    // Every acknowledged operation has exactly its record.
    let conn = Database::connect(&db.url).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT record FROM audit_events ORDER BY seq",
        ))
        .await
        .unwrap();
    let mut recorded: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut actors = std::collections::BTreeSet::new();
    for row in &rows {
        let record: Value =
            serde_json::from_str(&row.try_get_by_index::<String>(0).unwrap()).unwrap();
        let event = &record["event"];
        let name = event["action"]["event"].as_str().unwrap().to_owned();
        if ![
            "credential_stored",
            "credential_accessed",
            "credentials_listed",
            "credential_deleted",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        assert_eq!(event["outcome"], "success", "{record}");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        actors.insert(text(&event["actor"]));
        *recorded
            .entry((
                name,
                text(&event["action"]["user"]),
                text(&event["action"]["provider"]),
            ))
            .or_default() += 1;
    }
    assert_eq!(recorded, expected);
    let operations: u32 = expected.values().sum();
    assert!(operations >= clients * rounds * 2);
    assert_eq!(actors.len(), clients as usize, "{actors:?}");
}
