//! `cargo xtask`: project automation. Argument definitions and output only;
//! the logic lives in the xtask library (src/lib.rs).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use xtask::BenchOptions;

/// Exit code of a failure.
const FAILURE: u8 = 1;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Atom project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Seal/open throughput of an 85-byte token: atom-crypto, the raw fernet
    /// crate and the Python original (pyca/cryptography), in one run.
    BenchTokens {
        /// Folder of the Python anchor (bench_tokens.py).
        #[arg(long, default_value = "../shared/anchors/atom_py")]
        anchor_dir: PathBuf,
    },
    /// Rotate the encryption key: builds the `atom` binary in release mode
    /// and runs `atom keys rotate` with these arguments (see
    /// `atom keys rotate --help` and docs/ROTATION.md).
    #[command(disable_help_flag = true)]
    RotateKeys {
        /// The arguments of `atom keys rotate` (and atom's global flags).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Seed N credentials, time a full parallel rewrap (rows/s, CPU, peak
    /// memory last), optionally beside the Python anchor. The database is
    /// scratch: its credential tables are dropped. Runs in release mode.
    BenchRotate(BenchArgs),
    /// Load-test atom-server (release build, durable file audit) with a
    /// mixed workload (30% PUT, 50% GET, 10% list, 10% DELETE) from N
    /// keep-alive clients, beside the Python original's server.py on the
    /// same kind of database: req/s and p50/p99/max per operation.
    BenchHttp(HttpArgs),
    /// Master key rotation with envelope encryption (one data key per user
    /// rewrapped) against the rewrap of every credential row, on the same
    /// data in one run: seconds, speed-up, memory.
    BenchEnvelope(EnvelopeArgs),
    /// The Python package against the Python original, from Python:
    /// encrypt/decrypt per call, get_user_credential on SQLite and
    /// PostgreSQL, threads. Builds the release wheel into a virtualenv of
    /// its own (target/bench-python-venv) and runs bindings/python/bench.
    BenchPython(PythonArgs),
}

#[derive(clap::Args)]
struct PythonArgs {
    /// A PostgreSQL server to measure on too (two scratch databases are
    /// created and dropped); `none` to skip.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Calls of encrypt and of decrypt.
    #[arg(long, default_value_t = 100_000)]
    tokens: u64,
    /// Calls of get_user_credential per database.
    #[arg(long, default_value_t = 5_000)]
    reads: u64,
    /// Use the wheel already installed in the virtualenv.
    #[arg(long)]
    no_build: bool,
    /// Folder of the Python anchor.
    #[arg(long, default_value = "../shared/anchors/atom_py")]
    anchor_dir: PathBuf,
}

#[derive(clap::Args)]
struct EnvelopeArgs {
    /// Credentials.
    #[arg(long, default_value_t = 1_000_000)]
    credentials: u64,
    /// Users they belong to.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// A scratch database, e.g. sqlite:///tmp/bench-envelope.db.
    #[arg(long, value_name = "URL")]
    database_url: String,
    /// Workers of the row rewrap [default: as rotate-keys].
    #[arg(long)]
    workers: Option<NonZeroU32>,
    /// Rows (or keys) per batch.
    #[arg(long, default_value_t = atom_credentials::DEFAULT_BATCH_SIZE)]
    batch_size: NonZeroU32,
}

#[derive(clap::Args)]
struct HttpArgs {
    /// `sqlite` (a file in a temporary folder) or `postgres`.
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    database: String,
    /// Admin URL of the PostgreSQL server; scratch databases are created
    /// there and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured seconds per server.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Users (each with four credentials).
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// atom-server's audit trail: `file` (a log, fsync per record) or
    /// `database` (the audit_events table: a write's event in its own
    /// transaction, reads group-committed).
    #[arg(long, default_value = "file", value_parser = ["file", "database"])]
    audit_sink: String,
    /// Also load the Python original's server.py (needs fastapi, uvicorn).
    #[arg(long)]
    python: bool,
    /// Folder of the Python anchor.
    #[arg(long, default_value = "../shared/anchors/atom_py")]
    anchor_dir: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Credentials to seed and rewrap.
    #[arg(long)]
    rows: u64,
    /// A scratch database, e.g. sqlite:///tmp/bench.db or
    /// postgres://postgres@127.0.0.1:5432/test.
    #[arg(long, value_name = "URL")]
    database_url: String,
    /// Parallel rewrap workers [default: as rotate-keys].
    #[arg(long)]
    workers: Option<NonZeroU32>,
    /// Rows per batch.
    #[arg(long, default_value_t = atom_credentials::DEFAULT_BATCH_SIZE)]
    batch_size: NonZeroU32,
    /// Also run the Python anchor (bench_rotate.py) on the same backend.
    #[arg(long)]
    python: bool,
    /// Folder of the Python anchor.
    #[arg(long, default_value = "../shared/anchors/atom_py")]
    anchor_dir: PathBuf,
}

/// Set when bench-rotate re-invoked itself in release mode.
const RELEASE_MARKER: &str = "ATOM_XTASK_BENCH_RELEASE";

/// The allocator of every Atom binary: glibc's malloc made the two cores'
/// sealing threads queue on one arena lock (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match Cli::parse().command {
        Cmd::BenchTokens { anchor_dir } => bench_tokens(&anchor_dir).map(|()| 0),
        Cmd::RotateKeys { args } => rotate_keys(&args),
        Cmd::BenchRotate(args) => bench_rotate(&args),
        Cmd::BenchHttp(args) => bench_http(&args),
        Cmd::BenchEnvelope(args) => bench_envelope(&args),
        Cmd::BenchPython(args) => bench_python(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(FAILURE)
        }
    }
}

/// `cargo xtask bench-python`: a virtualenv with the Python original's
/// packages and the release wheel of bindings/python, then the benchmark
/// script beside the anchor.
fn bench_python(args: &PythonArgs) -> Result<u8> {
    let root = workspace_root();
    let venv = root.join("target").join("bench-python-venv");
    let python = venv.join("bin").join("python");
    let run = |program: &Path, what: &[&str]| -> Result<()> {
        let status = Command::new(program)
            .args(what)
            .current_dir(&root)
            .status()
            .with_context(|| format!("cannot run {}", program.display()))?;
        if !status.success() {
            bail!("{} {} failed ({status})", program.display(), what.join(" "));
        }
        Ok(())
    };
    if !python.exists() {
        run(
            Path::new("python3"),
            &["-m", "venv", &venv.display().to_string()],
        )?;
        run(
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "cryptography",
                "sqlalchemy",
                "psycopg2-binary",
            ],
        )?;
    }
    if !args.no_build {
        eprintln!("bench-python: building the release wheel (pip install ./bindings/python)");
        run(
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--force-reinstall",
                "./bindings/python",
            ],
        )?;
    }
    let anchor = args.anchor_dir.display().to_string();
    let tokens = args.tokens.to_string();
    let reads = args.reads.to_string();
    let mut script = vec![
        "bindings/python/bench/bench_python.py",
        "--anchor-dir",
        &anchor,
        "--tokens",
        &tokens,
        "--reads",
        &reads,
    ];
    if args.postgres_url != "none" {
        script.extend(["--postgres", &args.postgres_url]);
    }
    run(&python, &script)?;
    Ok(0)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `cargo xtask rotate-keys ARGS`: `atom keys rotate ARGS` from a release
/// build, so that a rotation never runs unoptimized. The next command the
/// report prints is this one.
fn rotate_keys(args: &[String]) -> Result<u8> {
    eprintln!(
        "cargo xtask rotate-keys: building and running `atom keys rotate` in release mode (the first build takes a few minutes)"
    );
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "atom-cli",
            "--bin",
            "atom",
            "--",
            "keys",
            "rotate",
        ])
        .args(args)
        .env("ATOM_ROTATE_COMMAND", "cargo xtask rotate-keys")
        .status()
        .context("cannot start cargo to build atom")?;
    Ok(status
        .code()
        .map_or(FAILURE, |c| u8::try_from(c).unwrap_or(FAILURE)))
}

/// Re-runs this xtask command from a release build (the measuring side
/// must not be the bottleneck); `None` when already optimized.
fn rerun_in_release(command: &str) -> Result<Option<u8>> {
    if !cfg!(debug_assertions) || std::env::var_os(RELEASE_MARKER).is_some() {
        return Ok(None);
    }
    let forwarded: Vec<String> = std::env::args().skip_while(|a| a != command).collect();
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--release", "-p", "xtask", "--"])
        .args(&forwarded)
        .env(RELEASE_MARKER, "1")
        .status()
        .context("cannot start cargo for the release build")?;
    Ok(Some(
        status
            .code()
            .map_or(FAILURE, |c| u8::try_from(c).unwrap_or(FAILURE)),
    ))
}

fn bench_envelope(args: &EnvelopeArgs) -> Result<u8> {
    if let Some(code) = rerun_in_release("bench-envelope")? {
        return Ok(code);
    }
    let workers = args
        .workers
        .unwrap_or_else(|| atom_rotation::default_workers(Some(&args.database_url)));
    let options = xtask::EnvelopeOptions {
        credentials: args.credentials,
        users: args.users,
        database_url: args.database_url.clone(),
        workers,
        batch_size: args.batch_size,
    };
    println!(
        "bench-envelope: {} credentials over {} users on {}, batches of {}, {} row-rewrap workers, {} build",
        args.credentials,
        args.users,
        atom_credentials_url(&args.database_url),
        args.batch_size,
        workers,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let report = runtime()?.block_on(xtask::bench_envelope(&options))?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (name, what, phase) in [
        ("envelope: rewrap data keys", "data keys", &report.envelope),
        ("rows:     rewrap every row", "rows", &report.rows),
    ] {
        println!(
            "  {name}: {} {what} in {:.2} s = {} /s (seed {:.2} s; CPU {:.2} cores; RSS {:.1} MiB before, {:.1} MiB peak)",
            phase.rewrapped,
            phase.secs,
            thousands(phase.rewrapped as f64 / phase.secs.max(1e-9)),
            phase.seed_secs,
            phase.process_cores,
            mib(phase.rss_before_kib),
            mib(phase.rss_peak_kib)
        );
    }
    println!(
        "  master rotation with envelopes is {:.1}x faster than rewrapping every row",
        report.rows.secs / report.envelope.secs.max(1e-9)
    );
    Ok(0)
}

fn bench_http(args: &HttpArgs) -> Result<u8> {
    if let Some(code) = rerun_in_release("bench-http")? {
        return Ok(code);
    }
    use xtask::http::{
        Load, Target, build_atom_server, drive, start_atom_server, start_python_server,
    };
    let root = workspace_root();
    let binary = build_atom_server(&root)?;
    let anchor_dir = if args.anchor_dir.is_absolute() {
        args.anchor_dir.clone()
    } else {
        root.join(&args.anchor_dir)
    };
    let load = Load {
        clients: args.clients,
        duration: std::time::Duration::from_secs(args.seconds),
        users: args.users,
    };
    let key = atom_crypto::Key::generate()?;
    let key_text = key.expose_base64().to_string();
    let jwt_secret = "bench-http-secret-bench-http-secret-0123456789";
    let rt = runtime()?;
    println!(
        "bench-http: {} database, {} clients, {} s per server, {} users x 4 providers, mix 30% PUT / 50% GET / 10% list / 10% DELETE, {} cores",
        args.database,
        args.clients,
        args.seconds,
        args.users,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let rust = {
        let dir = tempfile::tempdir()?;
        let (url, _db) = rt.block_on(scratch_database(args, dir.path(), "rs", false))?;
        let server = start_atom_server(
            &binary,
            dir.path(),
            &url,
            [
                ("ENCRYPTION_KEY", key_text.as_str()),
                ("ATOM_JWT_SECRET", jwt_secret),
                ("ATOM_AUDIT_SINK", args.audit_sink.as_str()),
            ],
        )?;
        let keys = atom_server::JwtKeys::new(jwt_secret.as_bytes()).map_err(anyhow::Error::msg)?;
        let now = chrono::Utc::now().timestamp().unsigned_abs();
        let target = Target {
            base: server.base.clone(),
            token: Some(Box::new(move |user: &str| {
                keys.issue(user, false, now, 3600).unwrap_or_default()
            })),
        };
        let report = rt.block_on(drive(&target, &load))?;
        drop(server);
        let audit = match args.audit_sink.as_str() {
            "database" => {
                "the audit_events table, in the write's transaction; reads group-committed"
            }
            _ => "a file log, fsync per record",
        };
        println!("  atom-server (durable audit: {audit}):\n{report}");
        report
    };
    if args.python {
        let dir = tempfile::tempdir()?;
        let (url, _db) = rt.block_on(scratch_database(args, dir.path(), "py", true))?;
        let server = start_python_server(&anchor_dir, dir.path(), &url, &key_text)?;
        let target = Target {
            base: server.base.clone(),
            token: None,
        };
        let report = rt.block_on(drive(&target, &load))?;
        drop(server);
        println!(
            "  python server.py (uvicorn, 2 workers; audit lines to a file, no fsync; no auth):\n{report}"
        );
        let p99 = |r: &xtask::http::LoadReport| {
            r.overall(0.99)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "  atom / python: {:.1}x requests per second; p99 {:.2} ms against {:.2} ms",
            rust.rate() / report.rate(),
            p99(&rust),
            p99(&report)
        );
    }
    if let (Some(put), Some(get)) = (
        rust.quantile(xtask::http::Op::Put, 0.99),
        rust.quantile(xtask::http::Op::Get, 0.99),
    ) {
        println!(
            "  atom-server PUT p99 / GET p99: {:.1}x",
            put.as_secs_f64() / get.as_secs_f64()
        );
    }
    Ok(0)
}

/// A scratch database for one server: an SQLite file in `dir`, or a fresh
/// PostgreSQL database dropped when the guard drops. `sqlalchemy`: the URL
/// in SQLAlchemy's form.
async fn scratch_database(
    args: &HttpArgs,
    dir: &Path,
    tag: &str,
    sqlalchemy: bool,
) -> Result<(String, Option<ScratchPg>)> {
    if args.database == "sqlite" {
        let file = dir.join(format!("bench-{tag}.db"));
        let url = if sqlalchemy {
            format!("sqlite:///{}", file.display())
        } else {
            format!("sqlite://{}", file.display())
        };
        return Ok((url, None));
    }
    use sea_orm::ConnectionTrait as _;
    let name = format!("atom_bench_http_{tag}_{}", std::process::id());
    let admin = sea_orm::Database::connect(args.postgres_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    // The admin URL with its database replaced (xtask is built beside the
    // binaries, so it stays off atom-credentials' test-util feature).
    let mut url = reqwest::Url::parse(&args.postgres_url)
        .with_context(|| format!("--postgres-url {}: not a URL", args.postgres_url))?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let url = if sqlalchemy {
        url.replacen("postgres://", "postgresql+psycopg2://", 1)
    } else {
        url
    };
    Ok((
        url,
        Some(ScratchPg {
            admin: args.postgres_url.clone(),
            name,
        }),
    ))
}

/// Drops its PostgreSQL database when dropped.
struct ScratchPg {
    admin: String,
    name: String,
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sea_orm::ConnectionTrait as _;
                if let Ok(conn) = sea_orm::Database::connect(admin.as_str()).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

fn bench_rotate(args: &BenchArgs) -> Result<u8> {
    // The measured part runs optimized.
    if let Some(code) = rerun_in_release("bench-rotate")? {
        return Ok(code);
    }
    let workers = args
        .workers
        .unwrap_or_else(|| atom_rotation::default_workers(Some(&args.database_url)));
    let options = BenchOptions {
        rows: args.rows,
        database_url: args.database_url.clone(),
        workers,
        batch_size: args.batch_size,
    };
    let rt = runtime()?;
    println!(
        "bench-rotate: {} rows on {}, {} workers, batches of {}, {} build, {} cores",
        args.rows,
        atom_credentials_url(&args.database_url),
        workers,
        args.batch_size,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rust = rt.block_on(xtask::bench_rotate(&options))?;
    println!(
        "  seed (multi-row INSERTs in one transaction): {:.2} s",
        rust.seed_secs
    );
    println!(
        "  rust   rewrap: {} rows in {:.2} s = {} rows/s (CPU: this process {:.2} cores, machine {:.2} of {} cores)",
        rust.rewrapped,
        rust.rewrap_secs,
        thousands(rust.rows_per_sec),
        rust.process_cores,
        rust.machine_cores,
        rust.cores
    );
    if args.python {
        let anchor_dir = if args.anchor_dir.is_absolute() {
            args.anchor_dir.clone()
        } else {
            workspace_root().join(&args.anchor_dir)
        };
        let python = rt.block_on(xtask::run_python_anchor(
            &anchor_dir,
            args.rows,
            &args.database_url,
        ))?;
        println!(
            "  python rotate: {} rows in {:.2} s = {} rows/s (anchor bench_rotate.py, SQLAlchemy)",
            python.rows,
            python.secs,
            thousands(python.rows_per_sec)
        );
        println!(
            "  rust / python: {:.1}x",
            rust.rows_per_sec / python.rows_per_sec.max(1e-9)
        );
    }
    match xtask::peak_memory_kib() {
        Some(kib) => println!("peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak memory (VmHWM): unavailable (no /proc/self/status)"),
    }
    Ok(0)
}

fn atom_credentials_url(url: &str) -> String {
    atom_credentials::redact_url(url)
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn bench_tokens(anchor_dir: &Path) -> Result<()> {
    let root = workspace_root();
    println!(
        "== machine: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    run(Command::new(env!("CARGO")).current_dir(&root).args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "atom-crypto",
        "--example",
        "token_throughput",
    ]))?;
    let anchor = root.join(anchor_dir).join("bench_tokens.py");
    if !anchor.exists() {
        bail!(
            "the Python anchor {} is missing; pass --anchor-dir pointing at shared/anchors/atom_py",
            anchor.display()
        );
    }
    run(Command::new("python3").arg(&anchor))
        .context("the Python anchor needs pyca/cryptography: pip install cryptography")?;
    Ok(())
}
