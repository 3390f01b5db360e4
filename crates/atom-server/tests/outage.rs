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

/// What the database behind [`Proxy`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Passes bytes both ways.
    Forward,
    /// Nothing listens: a connection is refused at once.
    Refuse,
    /// Accepts connections and never answers.
    Hang,
}

/// A TCP proxy in front of the test database that a test can switch from
/// forwarding to refusing or hanging; switching closes the connections it
/// carried, so the server's pool must connect anew.
struct Proxy {
    addr: std::net::SocketAddr,
    behaviour: std::sync::Arc<std::sync::Mutex<Behaviour>>,
    accept: tokio::task::JoinHandle<()>,
    carried: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(Behaviour::Forward));
        let carried: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (b, c) = (Arc::clone(&behaviour), Arc::clone(&carried));
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let now = *b.lock().unwrap();
                if now == Behaviour::Hang {
                    // Accepted, and never a byte back.
                    held.push(inbound);
                    continue;
                }
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            behaviour,
            accept,
            carried,
        }
    }

    /// Switches to `behaviour`, closing every connection carried so far.
    fn switch(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
        if behaviour == Behaviour::Refuse {
            self.accept.abort();
        }
        for task in self.carried.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// The server keeps answering fast while the database refuses
/// connections or accepts them and never answers: `/readyz` within its
/// deadline, PUT, GET and DELETE 503 within the acquire timeout, instead
/// of waiting 30 s for the pool (issue #20). The client gives up after
/// 10 s, so an answer that waits for sqlx's default fails the test.
#[tokio::test]
async fn a_database_that_refuses_or_hangs_is_answered_fast() {
    for behaviour in [Behaviour::Refuse, Behaviour::Hang] {
        let name = format!("refuses_or_hangs_{behaviour:?}").to_lowercase();
        let Some(db) = TestDb::new(Backend::Postgres, &name).await else {
            return;
        };
        let mut url = url::Url::parse(&db.url).unwrap();
        let target = url.socket_addrs(|| Some(5432)).unwrap()[0];
        let proxy = Proxy::start(target).await;
        url.set_port(Some(proxy.addr.port())).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = TestServer::start_waiting_at_most(
            dir.path(),
            url.as_str(),
            std::time::Duration::from_secs(1),
        )
        .await;
        let c = Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let alice = s.token("alice", false);
        let path = s.url("/api/users/alice/credentials/slack");
        let put = || {
            c.put(&path)
                .bearer_auth(&alice)
                .json(&json!({"token": "t"}))
        };
        assert_eq!(put().send().await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(
            c.get(s.url("/readyz")).send().await.unwrap().status(),
            StatusCode::OK
        );

        proxy.switch(behaviour);
        let ready = c.get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{behaviour:?}"
        );
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["checks"]["database"], "failing", "{behaviour:?}");
        for request in [
            put(),
            c.get(&path).bearer_auth(&alice),
            c.delete(&path).bearer_auth(&alice),
        ] {
            let resp = request.send().await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{behaviour:?}"
            );
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unavailable", "{behaviour:?}");
        }
        s.stop().await;
    }
}
