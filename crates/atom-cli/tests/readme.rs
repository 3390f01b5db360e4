//! The README's walkthrough runs as written: the shell block after
//! `<!-- walkthrough -->` is run by bash in a fresh folder, and fails this
//! test when a command does not work as shown.
//!
//! Two things differ from a reader's shell, both here in the prelude:
//! `cargo run -q -p atom-cli --` and `cargo run -q -p atom-server` run the
//! binaries this test run built (instead of building them again), and the
//! address `127.0.0.1:8000` becomes a free port.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::text;

fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED readme walkthrough: {why}");
}

/// The block of shell after the `<!-- walkthrough -->` marker.
fn walkthrough(readme: &str) -> String {
    let start = readme
        .find("<!-- walkthrough -->")
        .expect("the README marks its walkthrough with <!-- walkthrough -->");
    let rest = &readme[start..];
    let open = rest
        .find("```sh\n")
        .expect("a ```sh block after the marker")
        + "```sh\n".len();
    let close = rest[open..]
        .find("\n```")
        .expect("the block's closing fence");
    rest[open..open + close].to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let atom = PathBuf::from(env!("CARGO_BIN_EXE_atom"));
    let server = atom.with_file_name("atom-server");
    if !server.exists() {
        return skip(
            "the atom-server binary is not built; run the whole suite (cargo test --workspace)",
        );
    }
    for program in ["bash", "curl"] {
        if !available(program) {
            return skip(&format!("{program} is not installed"));
        }
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let block = walkthrough(&readme);
    let port = free_port();
    let block = block.replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let prelude = r#"set -euo pipefail
cargo() {
  if [ "$#" -ge 5 ] && [ "$1 $2 $3 $4 $5" = "run -q -p atom-cli --" ]; then
    shift 5; "$ATOM_BIN" "$@"; return
  fi
  if [ "$#" -ge 4 ] && [ "$1 $2 $3 $4" = "run -q -p atom-server" ]; then
    shift 4; if [ "${1:-}" = "--" ]; then shift; fi
    exec "$ATOM_SERVER_BIN" "$@"
  fi
  echo "the README runs a cargo command this test does not know: cargo $*" >&2
  return 99
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}\n{block}"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("ATOM_BIN", &atom)
        .env("ATOM_SERVER_BIN", &server)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let what = format!(
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    assert!(out.status.success(), "{what}");
    for expected in [
        "sk-example",                  // atom secrets get
        "{\"status\":\"ok\"}",         // healthz
        "xoxb-your-slack-token",       // the GET of the credential
        "\"encryption_enabled\":true", // the status document
        "github",                      // atom credentials list
        "intact",                      // atom audit verify
        "dry run",                     // atom keys rotate --dry-run
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}\n{what}");
    }
    // The development files stayed in .atom; the plaintext copies are gone.
    assert!(dir.path().join(".atom/.gitignore").exists());
    assert!(!dir.path().join("secrets.json").exists());
    assert!(dir.path().join("secrets.enc").exists());
}
