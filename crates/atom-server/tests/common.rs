use std::net::SocketAddr;
use std::path::Path;

use atom_audit::{Auditor, MemorySink};
use atom_credentials::{CredentialStore, DatabaseUrl, StoreConfig};
use atom_crypto::{Key, Keyring, Protection};
use atom_secrets_file::SecretsDir;
use atom_server::{
    AppState, Authenticator, DenialLimits, JwtKeys, ServerLimits, Tls, router, serve_with,
};
use tokio::sync::oneshot;

pub(crate) const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// A server on 127.0.0.1:<free port> over `database_url`, with its audit
/// events in `events`.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) events: MemorySink,
    pub(crate) jwt: JwtKeys,
    pub(crate) state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// How a test server is set up; `TestServer::launch` fills in the rest.
struct Setup {
    limits: ServerLimits,
    denials: DenialLimits,
    /// With `None`, events go to the server's `MemorySink`.
    auditor: Option<Auditor>,
    tls: Option<Tls>,
    /// With `None`, HS256 with [`JWT_SECRET`].
    auth: Option<Authenticator>,
    /// A rotation state file whose progress `/metrics` exports.
    rotation_state: Option<std::path::PathBuf>,
    /// Seal credentials under per-user data keys (`atom:v2`).
    envelope: bool,
    /// How long an operation waits for a database connection.
    acquire_timeout: Option<std::time::Duration>,
}

impl Setup {
    /// Default limits, every refused request audited on its own (a
    /// window of zero), HS256, plain HTTP.
    fn auditing_every_refusal() -> Setup {
        let mut denials = DenialLimits::default();
        denials.window = std::time::Duration::ZERO;
        denials.limit = std::num::NonZeroU32::MAX;
        Setup {
            limits: ServerLimits::default(),
            denials,
            auditor: None,
            tls: None,
            auth: None,
            rotation_state: None,
            envelope: false,
            acquire_timeout: None,
        }
    }
}

impl TestServer {
    /// A server that audits every refused request on its own (a window of
    /// zero), with the default connection limits.
    pub(crate) async fn start(dir: &Path, database_url: &str) -> TestServer {
        TestServer::launch(dir, database_url, Setup::auditing_every_refusal()).await
    }

    /// A server with these limits.
    pub(crate) async fn start_with(
        dir: &Path,
        database_url: &str,
        limits: ServerLimits,
        denials: DenialLimits,
    ) -> TestServer {
        let setup = Setup {
            limits,
            denials,
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server checking bearer tokens with `auth` (e.g. an identity
    /// provider's keys), auditing every refusal on its own.
    pub(crate) async fn start_authenticating(
        dir: &Path,
        database_url: &str,
        auth: Authenticator,
    ) -> TestServer {
        let setup = Setup {
            auth: Some(auth),
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server exporting the progress of the rotation state file `path`.
    pub(crate) async fn start_watching_rotation(
        dir: &Path,
        database_url: &str,
        path: &Path,
    ) -> TestServer {
        let setup = Setup {
            rotation_state: Some(path.to_owned()),
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server sealing credentials under per-user data keys.
    pub(crate) async fn start_enveloped(dir: &Path, database_url: &str) -> TestServer {
        let setup = Setup {
            envelope: true,
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server whose operations wait at most `timeout` for a database
    /// connection.
    pub(crate) async fn start_waiting_at_most(
        dir: &Path,
        database_url: &str,
        timeout: std::time::Duration,
    ) -> TestServer {
        let setup = Setup {
            acquire_timeout: Some(timeout),
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server over HTTPS with `tls`, with the default denial limits.
    pub(crate) async fn start_tls(dir: &Path, database_url: &str, tls: Tls) -> TestServer {
        let setup = Setup {
            tls: Some(tls),
            denials: DenialLimits::default(),
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    /// A server auditing through `auditor` (e.g. over a real file sink);
    /// `events` stays empty.
    pub(crate) async fn start_audited(
        dir: &Path,
        database_url: &str,
        auditor: Auditor,
    ) -> TestServer {
        let setup = Setup {
            auditor: Some(auditor),
            ..Setup::auditing_every_refusal()
        };
        TestServer::launch(dir, database_url, setup).await
    }

    async fn launch(dir: &Path, database_url: &str, setup: Setup) -> TestServer {
        let events = MemorySink::new();
        let auditor = setup
            .auditor
            .unwrap_or_else(|| Auditor::new(events.clone()));
        let keyring = Keyring::new(Key::from_bytes([3; 32]), []).unwrap();
        let protection = Protection::Encrypted(keyring);
        let mut config = StoreConfig::new(DatabaseUrl::parse(database_url).unwrap())
            .with_envelope(setup.envelope);
        if let Some(timeout) = setup.acquire_timeout {
            config = config.with_acquire_timeout(timeout);
        }
        let (store, _) = CredentialStore::open(&config, protection.clone(), auditor.clone())
            .await
            .unwrap();
        let jwt = JwtKeys::new(JWT_SECRET).unwrap();
        let state = AppState::new(
            store,
            protection,
            SecretsDir::new(dir),
            setup.auth.unwrap_or_else(|| jwt.clone().into()),
            auditor,
        )
        .with_denial_limits(setup.denials);
        let state = match &setup.rotation_state {
            Some(path) => state.with_rotation_state(path),
            None => state,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve_with(
            listener,
            router(state.clone()),
            setup.limits,
            setup.tls,
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            events,
            jwt,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn token(&self, user: &str, admin: bool) -> String {
        self.jwt.issue(user, admin, now(), 600).unwrap()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("atom.db").display())
}

/// The built `atom-server`, started in `dir` on 127.0.0.1:<free port> with
/// only `env` (and `RUST_LOG=info`); returns it and the address it says
/// it listens on. Its log keeps draining into the returned channel.
pub(crate) fn spawn_binary(
    dir: &Path,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::process::{Command, Stdio};

    let mut command = Command::new(env!("CARGO_BIN_EXE_atom-server"));
    command
        .current_dir(dir)
        .args(["--bind", "127.0.0.1:0"])
        .env_clear()
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let (addr, rx) = listen_address(&mut child);
    (child, addr, rx)
}

/// Reads a started server's log (its stderr, piped) until it says where it
/// listens; returns that address and the rest of the log, which keeps
/// draining into the channel so the server never blocks on its pipe.
pub(crate) fn listen_address(
    child: &mut std::process::Child,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader};
    use std::time::Duration;

    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!("the server did not start:\n{}", seen.join("\n"));
        };
        if let Some(i) = line.find("address=") {
            let addr = line[i + "address=".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            return (addr, rx);
        }
        seen.push(line);
    }
}

/// Stops a spawned server with SIGTERM and checks that it exits cleanly.
pub(crate) fn terminate(mut child: std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
}
