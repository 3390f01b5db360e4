//! `bench-http`: a mixed workload against a running HTTP server (atom-server
//! or the Python original's `server.py`), N keep-alive clients for a fixed
//! time, with requests per second and p50/p99/max latency per operation.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

/// The providers every simulated user stores a credential for.
const PROVIDERS: [&str; 4] = ["github", "gitlab", "slack", "google"];

/// One kind of request of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `PUT /api/users/{user}/credentials/{provider}`.
    Put,
    /// `GET /api/users/{user}/credentials/{provider}`.
    Get,
    /// `GET /api/users/{user}/credentials`.
    List,
    /// `DELETE /api/users/{user}/credentials/{provider}`.
    Delete,
}

impl Op {
    /// The workload's mix: 30% PUT, 50% GET, 10% list, 10% DELETE.
    fn pick(roll: u64) -> Op {
        match roll % 100 {
            0..30 => Op::Put,
            30..80 => Op::Get,
            80..90 => Op::List,
            _ => Op::Delete,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::List => "list",
            Op::Delete => "DELETE",
        })
    }
}

/// How to drive a server.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent keep-alive clients.
    pub clients: usize,
    /// Measured time.
    pub duration: Duration,
    /// Distinct users (each with the four providers).
    pub users: usize,
}

/// What one server did under the load.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Latencies per operation, sorted.
    pub latencies: BTreeMap<Op, Vec<Duration>>,
    /// Answers that were neither 2xx nor an expected 404, by status.
    pub errors: BTreeMap<u16, u64>,
    /// Expected 404s (a GET or DELETE after a DELETE).
    pub not_found: u64,
    /// The measured time.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Requests answered per second, all operations.
    pub fn rate(&self) -> f64 {
        let n: usize = self.latencies.values().map(Vec::len).sum();
        n as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of `op`'s latencies.
    pub fn quantile(&self, op: Op, q: f64) -> Option<Duration> {
        let l = self.latencies.get(&op)?;
        let i = ((l.len() as f64 - 1.0) * q).round() as usize;
        l.get(i).copied()
    }

    /// The `q` quantile over every operation.
    pub fn overall(&self, q: f64) -> Option<Duration> {
        let mut all: Vec<Duration> = self.latencies.values().flatten().copied().collect();
        all.sort_unstable();
        let i = ((all.len() as f64 - 1.0) * q).round() as usize;
        all.get(i).copied()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        writeln!(
            f,
            "    {:.0} req/s over {:.1} s; p50 {:.2} ms, p99 {:.2} ms",
            self.rate(),
            self.elapsed.as_secs_f64(),
            ms(self.overall(0.5)),
            ms(self.overall(0.99))
        )?;
        for (op, l) in &self.latencies {
            writeln!(
                f,
                "    {op:<6} {:>7} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
                l.len(),
                ms(self.quantile(*op, 0.5)),
                ms(self.quantile(*op, 0.99)),
                ms(l.last().copied())
            )?;
        }
        write!(f, "    expected 404s: {}", self.not_found)?;
        if !self.errors.is_empty() {
            write!(f, "; ERRORS by status: {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// Makes a bearer token for a user.
pub type TokenMaker = Box<dyn Fn(&str) -> String + Send + Sync>;

/// A server to drive: its base URL and, for atom-server, how to make a
/// bearer token for a user.
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A bearer token for the user, or `None` (the Python original has no
    /// authentication).
    pub token: Option<TokenMaker>,
}

/// A small, fast, non-cryptographic generator for picking operations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Stores every user's four credentials (not measured), then runs the mix
/// for `load.duration` with `load.clients` clients.
pub async fn drive(target: &Target, load: &Load) -> Result<LoadReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.clients)
        .tcp_nodelay(true)
        .build()?;
    let tokens: Vec<Option<String>> = (0..load.users)
        .map(|u| target.token.as_ref().map(|t| t(&user_name(u))))
        .collect();
    let tokens = std::sync::Arc::new(tokens);

    // Seed: every user's credentials, spread over the clients.
    let mut seeders = Vec::new();
    for c in 0..load.clients {
        let (client, base, tokens) = (client.clone(), target.base.clone(), tokens.clone());
        let (users, clients) = (load.users, load.clients);
        seeders.push(tokio::spawn(async move {
            for u in (c..users).step_by(clients) {
                for p in PROVIDERS {
                    let status = send(&client, &base, &tokens, Op::Put, u, p).await?;
                    if !status.is_success() {
                        bail!("seeding: PUT answered {status}");
                    }
                }
            }
            Ok(())
        }));
    }
    for s in seeders {
        s.await??;
    }

    let started = Instant::now();
    let deadline = started + load.duration;
    let mut workers = Vec::new();
    for c in 0..load.clients {
        let (client, base, tokens) = (client.clone(), target.base.clone(), tokens.clone());
        let users = load.users;
        workers.push(tokio::spawn(async move {
            let mut rng = XorShift(
                0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            let mut report = LoadReport::default();
            while Instant::now() < deadline {
                let op = Op::pick(rng.next());
                let user = (rng.next() % users as u64) as usize;
                let provider = PROVIDERS[(rng.next() % 4) as usize];
                let t = Instant::now();
                let status = send(&client, &base, &tokens, op, user, provider).await?;
                let took = t.elapsed();
                if status.is_success() {
                    report.latencies.entry(op).or_default().push(took);
                } else if status == reqwest::StatusCode::NOT_FOUND
                    && matches!(op, Op::Get | Op::Delete)
                {
                    report.not_found += 1;
                    report.latencies.entry(op).or_default().push(took);
                } else {
                    *report.errors.entry(status.as_u16()).or_default() += 1;
                }
            }
            anyhow::Ok(report)
        }));
    }
    let mut total = LoadReport::default();
    for w in workers {
        let r = w.await??;
        for (op, l) in r.latencies {
            total.latencies.entry(op).or_default().extend(l);
        }
        for (s, n) in r.errors {
            *total.errors.entry(s).or_default() += n;
        }
        total.not_found += r.not_found;
    }
    total.elapsed = started.elapsed();
    for l in total.latencies.values_mut() {
        l.sort_unstable();
    }
    Ok(total)
}

fn user_name(u: usize) -> String {
    format!("bench-user-{u}")
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    tokens: &[Option<String>],
    op: Op,
    user: usize,
    provider: &str,
) -> Result<reqwest::StatusCode> {
    let name = user_name(user);
    let one = format!("{base}/api/users/{name}/credentials/{provider}");
    let request = match op {
        Op::Put => client
            .put(&one)
            .json(&serde_json::json!({ "token": format!("tok-{name}-{provider}-0123456789abcdef0123456789abcdef") })),
        Op::Get => client.get(&one),
        Op::List => client.get(format!("{base}/api/users/{name}/credentials")),
        Op::Delete => client.delete(&one),
    };
    let request = match &tokens[user] {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("{op} {one}"))?;
    let status = response.status();
    // Read the body so that the connection is reused.
    let _ = response.bytes().await?;
    Ok(status)
}

/// A server process, stopped (SIGTERM, then kill) when dropped.
pub struct ServerProcess {
    child: Child,
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release `atom-server` in `dir` on `database_url`, with the
/// variables `env` (keys, JWT secret, audit sink).
pub fn start_atom_server<'a>(
    binary: &Path,
    dir: &Path,
    database_url: &str,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ServerProcess> {
    let mut child = Command::new(binary)
        .current_dir(dir)
        .args(["--bind", "127.0.0.1:0"])
        .envs(env)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!("atom-server exited before it listened");
        };
        let line = line?;
        if let Some(i) = line.find("address=") {
            break line[i + "address=".len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("atom-server did not start listening within 60 s");
        }
    };
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(ServerProcess {
        child,
        base: format!("http://{addr}"),
    })
}

/// Starts the Python original's `server.py` (uvicorn, 2 workers) on a free
/// port with `database_url` (an SQLAlchemy URL).
pub fn start_python_server(
    anchor_dir: &Path,
    dir: &Path,
    database_url: &str,
    encryption_key: &str,
) -> Result<ServerProcess> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let python = || {
        let mut cmd = Command::new("python3");
        cmd.current_dir(anchor_dir)
            .env("ENCRYPTION_KEY", encryption_key)
            .env("DATABASE_URL", database_url)
            .env("AUDIT_LOG", dir.join("py_audit.log"))
            .env("ATOM_SECRETS_DIR", dir);
        cmd
    };
    // server.py creates its table when imported; two workers importing it
    // at once race to CREATE TABLE and one dies, leaving one worker to
    // serve. Import it once first, so the workers find the table.
    let status = python()
        .args(["-c", "import server"])
        .stdout(Stdio::null())
        .status()
        .context("cannot start python3; the Python side needs: pip install fastapi uvicorn sqlalchemy cryptography")?;
    if !status.success() {
        bail!(
            "python3 -c 'import server' failed in {}: is fastapi/uvicorn/sqlalchemy installed?",
            anchor_dir.display()
        );
    }
    let child = python()
        .args(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--workers", "2", "--log-level", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start python3 -m uvicorn; it needs: pip install fastapi uvicorn sqlalchemy cryptography (and psycopg2-binary for PostgreSQL)")?;
    let server = ServerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the Python server did not listen within 60 s (is fastapi/uvicorn installed?)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both workers up: one request each way is enough to load the modules.
    std::thread::sleep(Duration::from_millis(1500));
    Ok(server)
}

/// The release build of `atom-server`, built if needed.
pub fn build_atom_server(root: &Path) -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--quiet", "--release", "-p", "atom-server"])
        .status()
        .context("cannot start cargo to build atom-server")?;
    if !status.success() {
        bail!("building atom-server failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/atom-server"))
}
