//! Confirmation of destructive commands, and secrets typed at a terminal.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// Whether the operator confirms: always with `yes`, and when standard
/// input is not a terminal (scripts decide for themselves); otherwise
/// `prompt` is shown on stderr and the answer must be `expected`.
pub(crate) fn confirm(prompt: &str, expected: &str, yes: bool) -> std::io::Result<bool> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{prompt} ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}
