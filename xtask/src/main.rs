//! `cargo xtask`: project automation. Argument definitions and output only;
//! the logic lives in the xtask library (src/lib.rs).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use xtask::{BenchOptions, KeyFiles, RotateOptions, exit};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Atom project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

const ROTATE_HELP: &str = "\
Phases (each recorded in .atom-rotation.json next to the key file, so a run
that stopped or crashed is continued by running the same command again):
  1. plan      open every value with the current keys; count them per key id,
               legacy and plaintext; any value that does not open stops the
               rotation before anything changes (exit 3). --dry-run stops here.
  2. introduce append a new key (generated, or --new-key-file) to the
               previous-keys file as decrypt-only. Then roll the key files out
               to every app instance (reload/restart) and run the command
               again (exit 4), unless --yes.
  3. promote   the new key becomes primary; the old primary becomes
               decrypt-only.
  4. rewrap    secrets.enc and every credential row are sealed again under the
               new key (legacy Fernet and plaintext upgraded), in batches, by
               --workers in parallel, online: an app's concurrent write is
               never overwritten.
  5. verify    every value opens under the new key alone, none is left under
               another key. Then roll out again so that no instance still
               seals with the old key, and run the command again (exit 4),
               unless --yes.
  6. retire    the old key is removed from the previous-keys file.

Keys must be files (ENCRYPTION_KEY_FILE and ENCRYPTION_PREVIOUS_KEYS_FILE, or
--key-file/--previous-keys-file): a running app's environment cannot be
edited. Every key file is replaced atomically (mode 0600).

Exit codes: 0 done (or dry run clean), 1 failure, 2 usage or configuration,
3 values that do not open / verification problems, 4 waiting for the operator
to roll out the key files (run the printed next command afterwards).

See docs/ROTATION.md.";

#[derive(Subcommand)]
enum Cmd {
    /// Seal/open throughput of an 85-byte token: atom-crypto, the raw fernet
    /// crate and the Python original (pyca/cryptography), in one run.
    BenchTokens {
        /// Folder of the Python anchor (bench_tokens.py).
        #[arg(long, default_value = "../shared/anchors/atom_py")]
        anchor_dir: PathBuf,
    },
    /// Rotate the encryption key online: plan, introduce, promote, rewrap
    /// the secrets file and the credential table, verify, retire.
    #[command(after_long_help = ROTATE_HELP)]
    RotateKeys(RotateArgs),
    /// Seed N credentials, time a full parallel rewrap (rows/s, CPU, peak
    /// memory last), optionally beside the Python anchor. The database is
    /// scratch: its credential tables are dropped. Runs in release mode.
    BenchRotate(BenchArgs),
}

#[derive(clap::Args)]
struct RotateArgs {
    /// The primary key file the apps read [default: $ENCRYPTION_KEY_FILE].
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// The previous-keys file the apps read (one key a line, `#` comments;
    /// may be missing at first) [default: $ENCRYPTION_PREVIOUS_KEYS_FILE].
    #[arg(long, value_name = "PATH")]
    previous_keys_file: Option<PathBuf>,
    /// Rotate to the key in this file instead of a generated one.
    #[arg(long, value_name = "PATH")]
    new_key_file: Option<PathBuf>,
    /// The directory holding secrets.enc, to rotate the secrets file.
    #[arg(long, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// The credential database, to rotate `user_credentials`.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Parallel rewrap workers [default: the number of cores for SQLite,
    /// 4x that for PostgreSQL and MariaDB].
    #[arg(long, value_name = "N")]
    workers: Option<u32>,
    /// Rows per batch (one transaction each).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    batch_size: u32,
    /// On PostgreSQL, workers share the table with SELECT ... FOR UPDATE
    /// SKIP LOCKED instead of disjoint id ranges.
    #[arg(long)]
    skip_locked: bool,
    /// Plan only: report counts and values that do not open; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// One host holds every reader: do not stop for the two rollouts.
    #[arg(long)]
    yes: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also record the rotation in this hash-chained audit log (needs
    /// ATOM_AUDIT_KEY_FILE or ATOM_AUDIT_KEY).
    #[arg(long, value_name = "PATH")]
    audit_log: Option<PathBuf>,
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
    workers: Option<u32>,
    /// Rows per batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: u32,
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
        Cmd::BenchTokens { anchor_dir } => bench_tokens(&anchor_dir).map(|()| exit::DONE),
        Cmd::RotateKeys(args) => rotate_keys(args),
        Cmd::BenchRotate(args) => bench_rotate(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = err
                .downcast_ref::<xtask::Error>()
                .map_or(exit::FAILURE, xtask::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn rotate_keys(args: RotateArgs) -> Result<u8> {
    let env = |name: &str| std::env::var(name).ok();
    let key_files = KeyFiles::resolve(args.key_file, args.previous_keys_file, env)?;
    let mut options = RotateOptions::new(key_files);
    options.new_key_file = args.new_key_file;
    options.secrets_dir = args.secrets_dir;
    options.database_url = args.database_url.filter(|u| !u.trim().is_empty());
    options.workers = args
        .workers
        .unwrap_or_else(|| xtask::default_workers(options.database_url.as_deref()))
        .max(1);
    options.batch_size = args.batch_size.max(1);
    options.skip_locked = args.skip_locked;
    options.dry_run = args.dry_run;
    options.yes = args.yes;
    options.show_progress = !args.json && std::io::stderr().is_terminal();
    options.rerun_command = rerun_command();
    let report = runtime()?.block_on(async {
        let auditor = xtask::auditor_from_env(args.audit_log.as_deref(), env).await?;
        xtask::rotate_keys(&options, &auditor).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.exit_code)
}

/// `cargo xtask rotate-keys` with this run's arguments, less `--dry-run`.
fn rerun_command() -> String {
    let args: Vec<String> = std::env::args()
        .skip_while(|a| a != "rotate-keys")
        .skip(1)
        .filter(|a| a != "--dry-run")
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    let mut cmd = "cargo xtask rotate-keys".to_owned();
    for a in args {
        cmd.push(' ');
        cmd.push_str(&a);
    }
    cmd
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
        return Ok(status.code().map_or(exit::FAILURE, |c| c as u8));
    }
    let workers = args
        .workers
        .unwrap_or_else(|| xtask::default_workers(Some(&args.database_url)));
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
    Ok(exit::DONE)
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
