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

/// Reads a secret: from a terminal, at a prompt naming `what` that does
/// not echo; otherwise all of standard input, less one trailing line break.
pub(crate) fn read_secret(what: &str) -> anyhow::Result<atom_crypto::SecretString> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what} (not echoed): "))
            .context("cannot read the value from the terminal")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the value from standard input")?;
        text
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        anyhow::bail!(
            "no value on standard input; pipe it in, e.g. printf %s \"$VALUE\" | atom ..."
        );
    }
    Ok(atom_crypto::SecretString::from(text))
}
