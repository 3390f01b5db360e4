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
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(FAILURE)
        }
    }
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

fn bench_rotate(args: &BenchArgs) -> Result<u8> {
    if cfg!(debug_assertions) && std::env::var_os(RELEASE_MARKER).is_none() {
        // The measured part runs optimized: re-run this command from a
        // release build.
        let forwarded: Vec<String> = std::env::args()
            .skip_while(|a| a != "bench-rotate")
            .collect();
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["run", "--quiet", "--release", "-p", "xtask", "--"])
            .args(&forwarded)
            .env(RELEASE_MARKER, "1")
            .status()
            .context("cannot start cargo for the release build")?;
        return Ok(status.code().map_or(FAILURE, |c| c as u8));
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
