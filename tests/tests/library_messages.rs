//! Library crates say what is wrong and which variable or file; the
//! binaries add the `atom ...` command that helps (atom-app's hints). No
//! string in a library crate names an `atom` subcommand.

use std::path::{Path, PathBuf};

const LIBRARIES: &[&str] = &[
    "atom-crypto",
    "atom-io",
    "atom-audit",
    "atom-secrets-file",
    "atom-credentials",
    "atom-rotation",
    "atom-app",
];

/// Where the binaries' hints live, on purpose.
const HINTS: &str = "atom-app/src/hints.rs";

const SUBCOMMANDS: &[&str] = &[
    "keys",
    "key",
    "secrets",
    "credentials",
    "audit",
    "db",
    "status",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_library_message_names_an_atom_command() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut offenders = Vec::new();
    let mut scanned = 0;
    for lib in LIBRARIES {
        let mut files = Vec::new();
        rust_files(&crates.join(lib).join("src"), &mut files);
        for file in files {
            if file.ends_with(HINTS) {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                // Comments, and byte strings (labels such as the key id's
                // HMAC input), are not messages.
                if code.starts_with("//") || code.contains("b\"") {
                    continue;
                }
                // Only text inside string literals counts.
                for literal in code.split('"').skip(1).step_by(2) {
                    for sub in SUBCOMMANDS {
                        if literal.contains(&format!("atom {sub} "))
                            || literal.ends_with(&format!("atom {sub}"))
                        {
                            offenders.push(format!("{}:{}: {line}", file.display(), n + 1));
                        }
                    }
                }
            }
        }
    }
    assert!(scanned > 50, "scanned {scanned} files");
    assert!(
        offenders.is_empty(),
        "library strings naming atom commands:\n{}",
        offenders.join("\n")
    );
}
