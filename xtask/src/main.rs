//! `cargo xtask`: project automation (benchmarks beside the Python anchor;
//! key rotation comes with its issue).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

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
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::BenchTokens { anchor_dir } => bench_tokens(&anchor_dir),
    }
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
        "throughput",
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
