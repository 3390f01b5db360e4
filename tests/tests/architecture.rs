//! The dependency rules of docs/ARCHITECTURE.md, checked against what cargo
//! resolves (`cargo metadata`, `cargo tree`): a new edge, a server crate
//! under the CLI, sea-orm or key material in a crate that should not have
//! them, or a test-only feature in a shipped binary fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which Atom crates each crate may depend on (normal dependencies), as the
/// crate graph of docs/ARCHITECTURE.md draws them. A crate missing here
/// fails: a new crate enters the table and the doc together.
const ALLOWED: &[(&str, &[&str])] = &[
    ("atom-io", &[]),
    ("atom-crypto", &["atom-io"]),
    ("atom-audit", &["atom-crypto", "atom-io"]),
    ("atom-kms", &["atom-crypto", "atom-io"]),
    (
        "atom-secrets-file",
        &["atom-audit", "atom-crypto", "atom-io"],
    ),
    (
        "atom-credentials",
        &["atom-audit", "atom-crypto", "atom-io"],
    ),
    (
        "atom-rotation",
        &[
            "atom-audit",
            "atom-credentials",
            "atom-crypto",
            "atom-io",
            "atom-secrets-file",
        ],
    ),
    (
        "atom-app",
        &[
            "atom-audit",
            "atom-credentials",
            "atom-crypto",
            "atom-io",
            "atom-kms",
            "atom-rotation",
            "atom-secrets-file",
        ],
    ),
    // The three faces: on the engine, never on each other.
    ("atom-cli", FACE),
    ("atom-server", FACE),
    ("atom-protect-py", FACE),
    // Tools and cross-crate tests may use anything but the Python face.
    ("xtask", TOOL),
    ("atom-tests", TOOL),
];

const FACE: &[&str] = &[
    "atom-app",
    "atom-audit",
    "atom-credentials",
    "atom-crypto",
    "atom-io",
    "atom-kms",
    "atom-rotation",
    "atom-secrets-file",
];

const TOOL: &[&str] = &[
    "atom-app",
    "atom-audit",
    "atom-credentials",
    "atom-crypto",
    "atom-io",
    "atom-kms",
    "atom-rotation",
    "atom-secrets-file",
    "atom-server",
];

/// Third-party crates only some workspace crates may depend on directly
/// (normal dependencies; tests and benchmarks may use them as
/// dev-dependencies).
const ONLY_IN: &[(&str, &[&str], &str)] = &[
    (
        "sea-orm",
        // xtask: the benchmarks create and drop scratch databases.
        &["atom-credentials", "xtask"],
        "only the database crate speaks SQL",
    ),
    (
        "sea-orm-migration",
        &["atom-credentials"],
        "only the database crate migrates",
    ),
    (
        "fernet",
        &["atom-crypto"],
        "only atom-crypto holds key bytes",
    ),
    ("hkdf", &["atom-crypto"], "only atom-crypto derives keys"),
    (
        "aws-sdk-kms",
        &["atom-kms"],
        "only atom-kms holds KMS plaintext",
    ),
    (
        "aws-smithy-http-client",
        &["atom-kms"],
        "only atom-kms talks to KMS",
    ),
    ("axum", &["atom-server"], "HTTP is the server's"),
    ("jsonwebtoken", &["atom-server"], "tokens are the server's"),
    ("pyo3", &["atom-protect-py"], "Python is the binding's"),
];

/// The shipped binaries (and the Python extension), with the crates that
/// must never be built into them.
const SHIPPED: &[(&str, &[&str])] = &[
    ("atom-cli", &["axum", "jsonwebtoken", "atom-server", "pyo3"]),
    ("atom-server", &["atom-cli", "pyo3"]),
    ("atom-protect-py", &["axum", "jsonwebtoken", "atom-server"]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(args)
        .arg("--offline")
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        out.status.success(),
        "cargo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each workspace crate's normal dependencies, by name.
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let text = cargo(&["metadata", "--format-version", "1", "--no-deps"]);
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let deps = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        out.insert(package["name"].as_str().unwrap().to_owned(), deps);
    }
    out
}

#[test]
fn atom_crates_depend_only_on_the_crates_the_architecture_allows() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (krate, deps) in normal_dependencies() {
        let Some(may) = allowed.get(krate.as_str()) else {
            wrong.push(format!(
                "{krate} is not in the crate graph: add it to ALLOWED and docs/ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in deps.iter().filter(|d| d.starts_with("atom-")) {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{krate} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges docs/ARCHITECTURE.md does not allow: {wrong:#?}"
    );
}

#[test]
fn sql_key_bytes_http_and_python_stay_in_their_crates() {
    let mut wrong = Vec::new();
    for (krate, deps) in normal_dependencies() {
        for (dep, only, why) in ONLY_IN {
            if deps.contains(*dep) && !only.contains(&krate.as_str()) {
                wrong.push(format!("{krate} depends on {dep}: {why}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The packages built for a cargo selection (`-p <crate>`, `--workspace`,
/// or nothing for the default members), each with its enabled features as
/// cargo unifies them for that build.
fn built_into(selection: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["tree", "-e", "normal", "--prefix", "none", "-f", "{p}|{f}"];
    args.extend_from_slice(selection);
    cargo(&args)
        .lines()
        .filter_map(|line| {
            let (package, features) = line.split_once('|')?;
            let name = package.split_whitespace().next()?.to_owned();
            Some((name, features.trim_end_matches(" (*)").to_owned()))
        })
        .collect()
}

#[test]
fn the_cli_and_the_python_face_carry_no_server_crates() {
    for (package, never) in SHIPPED {
        let built: BTreeSet<String> = built_into(&["-p", package])
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let found: Vec<&&str> = never.iter().filter(|n| built.contains(**n)).collect();
        assert!(found.is_empty(), "{package} is built with {found:?}");
    }
}

#[test]
fn no_test_only_feature_reaches_a_shipped_binary_built_alone_or_with_the_workspace() {
    let selections: [&[&str]; 5] = [
        &["-p", "atom-cli"],
        &["-p", "atom-server"],
        &["-p", "atom-protect-py"],
        // `cargo build --release` at the top: the default members, built
        // together (features unify across them).
        &[],
        // `cargo build --workspace`: xtask and the test harness beside them.
        &["--workspace"],
    ];
    for selection in selections {
        let wrong: BTreeSet<String> = built_into(selection)
            .into_iter()
            .filter(|(name, features)| {
                name.starts_with("atom-") && features.split(',').any(|f| f == "test-util")
            })
            .map(|(name, _)| name)
            .collect();
        assert!(
            wrong.is_empty(),
            "built with test-util ({selection:?}): {wrong:?}"
        );
    }
}
