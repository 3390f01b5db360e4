use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `atom` binary in `dir` with only the given environment
/// (plus PATH), so the developer's own ENCRYPTION_KEY never leaks in.
pub(crate) fn atom(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    atom_with_stdin(dir, args, env, b"")
}

/// Runs `atom` with `stdin` as its standard input.
pub(crate) fn atom_with_stdin(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atom"));
    cmd.current_dir(dir).args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command's stdout, after asserting it succeeded (its exit code and
/// both streams in the message otherwise).
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
